/* check_config.c - unit tests of src/config.c: defaults, the INI parser, the
 * environment, key files, validation and the masked dump. */
/* The path, not just "config.h": the build's top directory holds autoconf's
 * own config.h, which an -I. could otherwise find first. */
#include "../src/config.h"

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY32 "0123456789abcdef0123456789ABCDEF"
#define KEY40 "k3y-for-tests-0123456789-abcdefghijklmno"

/* Writes text to a new temporary file; the caller unlinks and frees. */
static char *temp_file(const char *text)
{
    const char *dir = getenv("TMPDIR");
    char *path = NULL;
    ck_assert_int_ne(asprintf(&path, "%s/check_config.XXXXXX", dir && *dir ? dir : "/tmp"), -1);
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(text);
    ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

static void drop_file(char *path)
{
    unlink(path);
    free(path);
}

/* Loads text as the configuration file. */
static int load_text(struct config *cfg, const char *text, char *err, size_t errlen)
{
    char *path = temp_file(text);
    int rc = config_load(cfg, path, err, errlen);
    drop_file(path);
    return rc;
}

/* config_load of a file that also names a valid key. */
static int load_with_key(struct config *cfg, const char *body, char *err, size_t errlen)
{
    char *text = NULL;
    ck_assert_int_ne(asprintf(&text, "[tokens]\ncod_key = " KEY32 "\n%s", body), -1);
    int rc = load_text(cfg, text, err, errlen);
    free(text);
    return rc;
}

static char *xasprintf_cfg(const char *fmt, const char *arg)
{
    char *out = NULL;
    ck_assert_int_ne(asprintf(&out, fmt, arg), -1);
    return out;
}

static char *dump_of(const struct config *cfg)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ck_assert_ptr_nonnull(f);
    config_dump(cfg, f);
    fclose(f);
    return out;
}

/* The source tree: $top_srcdir under `make check`, else found from __FILE__. */
static char *source_path(const char *rel)
{
    char *path = NULL;
    const char *top = getenv("top_srcdir");
    if (top && *top) {
        ck_assert_int_ne(asprintf(&path, "%s/%s", top, rel), -1);
        return path;
    }
    const char *file = __FILE__;
    const char *tail = strstr(file, "tests/check_config.c");
    int n = tail ? (int)(tail - file) : 0;
    ck_assert_int_ne(asprintf(&path, "%.*s%s", n, file, rel), -1);
    return path;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *data = NULL;
    size_t cap = 0;
    ck_assert_int_ge(getdelim(&data, &cap, '\0', f), 0);
    fclose(f);
    return data;
}

/* Calls fn(section, key, env) for each line of config_help. */
static void each_setting(void (*fn)(const char *, const char *, const char *, void *), void *arg)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    config_help(f);
    fclose(f);
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
        char section[32], key[64], env[96];
        ck_assert_int_eq(sscanf(line, "%31[a-z].%63[a-z_]  (%95[A-Z_])", section, key, env), 3);
        fn(section, key, env, arg);
    }
    free(out);
}

/* Removes every MIPGW_ variable the caller's shell may have exported. */
static void clear_mipgw_env(void)
{
    for (;;) {
        char name[256] = "";
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "MIPGW_", 6) == 0) {
                size_t n = strcspn(*e, "=");
                if (n >= sizeof(name))
                    n = sizeof(name) - 1;
                memcpy(name, *e, n);
                name[n] = '\0';
                break;
            }
        }
        if (!name[0])
            return;
        unsetenv(name);
    }
}

/* ------------------------------------------------------------------ */

START_TEST(test_defaults)
{
    struct config c;
    config_defaults(&c);
    ck_assert_str_eq(c.http_listen, "127.0.0.1");
    ck_assert_int_eq(c.http_port, 8080);
    ck_assert_int_eq(c.http_workers, 0);
    ck_assert_int_eq(c.http_backlog, 4096);
    ck_assert_int_eq(c.http_max_header_size, 8192);
    ck_assert_int_eq(c.http_max_body_size, 1048576);
    ck_assert_int_eq(c.http_read_timeout_ms, 15000);
    ck_assert_int_eq(c.http_write_timeout_ms, 15000);
    ck_assert_int_eq(c.http_shutdown_grace_ms, 10000);
    ck_assert_str_eq(c.http_trusted_proxies, "127.0.0.1");
    ck_assert_int_eq(c.http_max_query_params, 32);
    ck_assert_str_eq(c.pg_conninfo,
                     "hostaddr=127.0.0.1 port=5432 dbname=mipgw user=mipgw connect_timeout=3");
    ck_assert_int_eq(c.pg_pool_size, 4);
    ck_assert_int_eq(c.pg_timeout_ms, 2000);
    ck_assert_int_eq(c.pg_connect_timeout_ms, 3000);
    ck_assert_int_eq(c.pg_queue_max, 512);
    ck_assert_int_eq(c.pg_batch_max, 32);
    ck_assert_int_eq(c.pg_batch_conns, 1);
    ck_assert_str_eq(c.redis_host, "127.0.0.1");
    ck_assert_int_eq(c.redis_port, 6379);
    ck_assert_int_eq(c.redis_timeout_ms, 500);
    ck_assert_int_eq(c.redis_connect_timeout_ms, 1000);
    ck_assert_str_eq(c.redis_password, "");
    ck_assert_str_eq(c.tokens_cod_key, "");
    ck_assert_str_eq(c.tokens_cod_key_file, "");
    ck_assert_str_eq(c.tokens_portal_key, "");
    ck_assert_str_eq(c.tokens_portal_key_file, "");
    ck_assert_int_eq(c.tokens_cod_ttl_s, 600);
    ck_assert_int_eq(c.tokens_rpgu_ttl_s, 600);
    ck_assert_int_eq(c.tokens_ident_cache_ttl_s, 60);
    ck_assert_int_eq(c.tokens_min_key_len, 32);
    ck_assert_str_eq(c.time_zone, "Europe/Moscow");
    ck_assert_int_eq(c.ratelimit_window_s, 60);
    ck_assert_int_eq(c.ratelimit_token_per_addr, 300);
    ck_assert_int_eq(c.ratelimit_token_per_identity, 20);
    ck_assert_str_eq(c.log_file, "");
    ck_assert_str_eq(c.log_level, "info");
    ck_assert(c.log_access);
    ck_assert(!c.demo_mode);
}
END_TEST

START_TEST(test_defaults_validate_but_for_the_key)
{
    struct config c;
    char err[256];
    config_defaults(&c);
    ck_assert_int_eq(config_validate(&c, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "tokens.cod_key is missing or shorter than 32 bytes "
                          "(set MIPGW_TOKENS_COD_KEY or tokens.cod_key_file)");
    strcpy(c.tokens_cod_key, KEY32);
    ck_assert_int_eq(config_validate(&c, err, sizeof(err)), 0);
}
END_TEST

START_TEST(test_help)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    config_help(f);
    fclose(f);
    int lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, 81); /* every field of struct config */
    ck_assert_ptr_nonnull(strstr(out, "http.port  (MIPGW_HTTP_PORT)  default: 8080  \u2014 "));
    ck_assert_ptr_nonnull(strstr(out, "pg.conninfo  (MIPGW_PG_CONNINFO)  default: \"hostaddr="));
    ck_assert_ptr_nonnull(strstr(out, "tokens.cod_key  (MIPGW_TOKENS_COD_KEY)  default: \"\""));
    ck_assert_ptr_nonnull(strstr(out, "demo.mode  (MIPGW_DEMO_MODE)  default: false"));
    free(out);
}
END_TEST

START_TEST(test_parse_file)
{
    struct config c;
    char err[256] = "";
    const char *text =
        "\xEF\xBB\xBF# a comment\n"
        "; another comment\n"
        "\n"
        "   [http]   # trailing comment after a header\n"
        "port=9000\n"
        "\tworkers \t=\t 3   \n"
        "listen = ::1 # the loopback\n"
        "trusted_proxies = 10.0.0.1 , 10.0.0.2,::1\n"
        "[ pg ]\r\n"
        "conninfo = \"hostaddr=10.1.2.3 dbname=x  application_name='a#b # not a comment'\"  # one\r\n"
        "[redis]\n"
        "host = /run/redis/redis.sock\n"
        "password = \"  spaced ; secret  \"\n"
        "[log]\n"
        "file = /var/log/mipgw.log;x\n"
        "level = debug\n"
        "[time]\n"
        "zone = UTC\n"
        "[tokens]\n"
        "cod_key = " KEY32 "\n"
        "[http]\n"
        "port = 9001\n"; /* the last one wins */
    ck_assert_msg(load_text(&c, text, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(c.http_port, 9001);
    ck_assert_int_eq(c.http_workers, 3);
    ck_assert_str_eq(c.http_listen, "::1");
    ck_assert_str_eq(c.http_trusted_proxies, "10.0.0.1,10.0.0.2,::1");
    ck_assert_str_eq(c.pg_conninfo, "hostaddr=10.1.2.3 dbname=x  application_name='a#b # not a comment'");
    ck_assert_str_eq(c.redis_host, "/run/redis/redis.sock");
    ck_assert_str_eq(c.redis_password, "  spaced ; secret  ");
    ck_assert_str_eq(c.log_file, "/var/log/mipgw.log;x");
    ck_assert_str_eq(c.log_level, "debug");
    ck_assert_str_eq(c.time_zone, "UTC");
    ck_assert_str_eq(c.tokens_cod_key, KEY32);
}
END_TEST

START_TEST(test_empty_and_quoted_empty)
{
    struct config c;
    char err[256] = "";
    ck_assert_msg(load_with_key(&c, "[log]\nfile = # nothing\n[http]\ntrusted_proxies = \"\"\n",
                                err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(c.log_file, "");
    ck_assert_str_eq(c.http_trusted_proxies, "");
}
END_TEST

START_TEST(test_file_errors_name_the_line)
{
    static const struct {
        const char *text;
        const char *want1;
        const char *want2;
    } cases[] = {
        {"[http]\nport = 80\nnope = 1\n", ":3: ", "unknown setting http.nope"},
        {"# c\n\n[htp]\nport = 1\n", ":3: ", "unknown section [htp]"},
        {"[http]\njust some words\n", ":2: ", "expected"},
        {"port = 80\n", ":1: ", "before any [section]"},
        {"[http\n", ":1: ", "without ']'"},
        {"[http] x\n", ":1: ", "after the section header"},
        {"[http]\n= 5\n", ":2: ", "no key"},
        {"[http]\nlisten = \"127.0.0.1\n", ":2: ", "missing closing"},
        {"[http]\nlisten = \"127.0.0.1\" x\n", ":2: ", "after the closing"},
        {"[http]\n\n\n\nport = 12abc\n", ":5: ", "http.port: \"12abc\" is not an integer"},
        {"[http]\nport = 70000\n", ":2: ", "http.port: 70000 is outside 1..65535"},
        {"[log]\naccess = maybe\n", ":2: ", "log.access"},
        {"[http]\nlisten = localhost\n", ":2: ", "http.listen"},
        {"[pg]\nconninfo = \"host=db.example dbname=x\"\n", ":2: ", "pg.conninfo: host \"db.example\" is a name"},
        {"[pg]\nconninfo = \"host=10.0.0.1,db2 dbname=x\"\n", ":2: ", "host \"db2\" is a name"},
        {"[pg]\nconninfo = \"postgresql://db.example/x\"\n", ":2: ", "host \"db.example\" is a name"},
        {"[pg]\nconninfo = \"dbname='x\"\n", ":2: ", "pg.conninfo: not a libpq connection string"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config c;
        char err[512] = "";
        ck_assert_int_eq(load_text(&c, cases[i].text, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, "check_config.") != NULL, "case %zu: %s", i, err);
        ck_assert_msg(strstr(err, cases[i].want1) != NULL, "case %zu: %s", i, err);
        ck_assert_msg(strstr(err, cases[i].want2) != NULL, "case %zu: %s", i, err);
    }
}
END_TEST

/* A connection string whose hosts need no look-up: sockets, addresses, or
 * a name with its address in hostaddr. */
START_TEST(test_conninfo_hosts)
{
    static const char *const ok[] = {
        "[pg]\nconninfo = \"host=/run/postgresql dbname=x\"\n",
        "[pg]\nconninfo = \"host=10.0.0.1,::1 dbname=x\"\n",
        "[pg]\nconninfo = \"host=db.example hostaddr=10.0.0.5 sslmode=verify-full\"\n",
        "[pg]\nconninfo = \"postgresql://10.0.0.1:5433/x\"\n",
        "[pg]\nconninfo = \"dbname=x\"\n",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct config c;
        char err[512] = "";
        ck_assert_msg(load_with_key(&c, ok[i], err, sizeof(err)) == 0, "case %zu: %s", i, err);
    }
    /* Without host= or hostaddr=, libpq takes PGHOST: the same rule. */
    struct config c;
    char err[512] = "";
    setenv("PGHOST", "db.example", 1);
    ck_assert_int_eq(load_with_key(&c, "[pg]\nconninfo = \"dbname=x\"\n", err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "PGHOST \"db.example\" is a name") != NULL, "%s", err);
    setenv("PGHOSTADDR", "10.0.0.5", 1);
    ck_assert_msg(load_with_key(&c, "[pg]\nconninfo = \"dbname=x\"\n", err, sizeof(err)) == 0, "%s", err);
    unsetenv("PGHOSTADDR");
    ck_assert_msg(load_with_key(&c, "[pg]\nconninfo = \"host=/run/postgresql\"\n", err, sizeof(err)) == 0, "%s",
                  err);
    unsetenv("PGHOST");
    /* A service file may name a host this check never sees: a service needs
     * its address in the string, where the service file cannot override it. */
    ck_assert_int_eq(load_with_key(&c, "[pg]\nconninfo = \"service=main dbname=x\"\n", err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "names a service") != NULL, "%s", err);
    setenv("PGSERVICE", "main", 1);
    ck_assert_int_eq(load_with_key(&c, "[pg]\nconninfo = \"dbname=x\"\n", err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "names a service") != NULL, "%s", err);
    ck_assert_msg(load_with_key(&c, "[pg]\nconninfo = \"hostaddr=10.0.0.5 dbname=x\"\n", err, sizeof(err)) == 0,
                  "%s", err);
    unsetenv("PGSERVICE");
    ck_assert_msg(load_with_key(&c, "[pg]\nconninfo = \"service=main host=10.0.0.5\"\n", err, sizeof(err)) == 0,
                  "%s", err);
}
END_TEST

/* The redis SMS sender keeps codes in clear in a Redis list and sends
 * nothing: refused for a cabinet outside demo mode, accepted in it and
 * when the cabinet is off (no ehealth.jwt_key). */
START_TEST(test_sms_sink_demo_only)
{
    struct config c;
    char err[512] = "";
    const char *cab = "[ehealth]\njwt_key = cabinet-key-of-thirty-two-bytes!\n";
    ck_assert_int_eq(load_with_key(&c, cab, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "ehealth.sms_sender redis") != NULL, "%s", err);
    char *hook = xasprintf_cfg("%ssms_sender = webhook\nsms_webhook_url = \"http://10.0.0.9:8025/sms\"\n", cab);
    ck_assert_msg(load_with_key(&c, hook, err, sizeof(err)) == 0, "%s", err);
    free(hook);
    char *demo = xasprintf_cfg("[demo]\nmode = true\n%s", cab);
    ck_assert_msg(load_with_key(&c, demo, err, sizeof(err)) == 0, "%s", err);
    free(demo);
    ck_assert_msg(load_with_key(&c, "[ehealth]\nsms_sender = redis\n", err, sizeof(err)) == 0, "%s", err);
}
END_TEST

START_TEST(test_missing_file)
{
    struct config c;
    char err[256] = "";
    ck_assert_int_eq(config_load(&c, "/nonexistent/mipgw.conf", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/mipgw.conf"));
}
END_TEST

START_TEST(test_long_line)
{
    struct config c;
    char err[256] = "";
    size_t n = 5000;
    char *text = malloc(n + 32);
    strcpy(text, "[log]\nfile = ");
    size_t at = strlen(text);
    memset(text + at, 'a', n);
    strcpy(text + at + n, "\n");
    ck_assert_int_eq(load_text(&c, text, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, ":2: line longer than 4096"));
    free(text);

    /* A line of 4096 characters exactly is still accepted. */
    text = malloc(4096 + 96);
    strcpy(text, "[log]\n#");
    memset(text + 7, 'b', 4095);
    strcpy(text + 7 + 4095, "\n[tokens]\ncod_key = " KEY32 "\n");
    ck_assert_msg(load_text(&c, text, err, sizeof(err)) == 0, "%s", err);
    free(text);
}
END_TEST

START_TEST(test_int_values)
{
    struct config c;
    char err[256];
    config_defaults(&c);
    ck_assert_int_eq(config_set(&c, "http", "port", "1", err, sizeof(err)), 0);
    ck_assert_int_eq(c.http_port, 1);
    ck_assert_int_eq(config_set(&c, "http", "port", "65535", err, sizeof(err)), 0);
    ck_assert_int_eq(c.http_port, 65535);
    ck_assert_int_eq(config_set(&c, "http", "port", "+443", err, sizeof(err)), 0);
    ck_assert_int_eq(c.http_port, 443);

    static const char *const bad[] = {
        "0", "65536", "-1", "12abc", "abc", "", " ", "1 ", " 1", "0x50", "1.5",
        "99999999999999999999999", "-99999999999999999999999", "9223372036854775807",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(config_set(&c, "http", "port", bad[i], err, sizeof(err)) == -1, "%s",
                      bad[i]);
        ck_assert_msg(strstr(err, "http.port") != NULL, "%s", err);
        ck_assert_int_eq(c.http_port, 443); /* unchanged */
    }
    /* Overflow is reported as such, not clamped into a range error. */
    ck_assert_int_eq(config_set(&c, "http", "port", "99999999999999999999999", err,
                                sizeof(err)), -1);
    ck_assert_str_eq(err, "http.port: \"99999999999999999999999\" is not an integer");
    ck_assert_int_eq(config_set(&c, "http", "port", "70000", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "http.port: 70000 is outside 1..65535");

    /* Some of the other bounds. */
    ck_assert_int_eq(config_set(&c, "http", "max_body_size", "1023", err, sizeof(err)), -1);
    ck_assert_int_eq(config_set(&c, "http", "max_body_size", "67108864", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&c, "http", "max_body_size", "67108865", err, sizeof(err)), -1);
    ck_assert_int_eq(config_set(&c, "http", "workers", "0", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&c, "http", "workers", "65", err, sizeof(err)), -1);
    ck_assert_int_eq(config_set(&c, "pg", "pool_size", "0", err, sizeof(err)), -1);
    ck_assert_int_eq(config_set(&c, "ratelimit", "token_per_addr", "0", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&c, "ratelimit", "token_per_addr", "10000001", err,
                                sizeof(err)), -1);
    ck_assert_int_eq(config_set(&c, "tokens", "cod_ttl_s", "2592000", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&c, "tokens", "cod_ttl_s", "2592001", err, sizeof(err)), -1);
    ck_assert_int_eq(config_set(&c, "tokens", "min_key_len", "16", err, sizeof(err)), -1);
    ck_assert_int_eq(config_set(&c, "pg", "timeout_ms", "600001", err, sizeof(err)), -1);
}
END_TEST

START_TEST(test_bool_values)
{
    struct config c;
    char err[256];
    config_defaults(&c);
    static const char *const yes[] = {"1", "true", "yes", "on", "TRUE", "Yes", "On"};
    static const char *const no[] = {"0", "false", "no", "off", "FALSE", "No", "OFF"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        c.demo_mode = false;
        ck_assert_int_eq(config_set(&c, "demo", "mode", yes[i], err, sizeof(err)), 0);
        ck_assert(c.demo_mode);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        c.demo_mode = true;
        ck_assert_int_eq(config_set(&c, "demo", "mode", no[i], err, sizeof(err)), 0);
        ck_assert(!c.demo_mode);
    }
    static const char *const bad[] = {"", "2", "y", "n", "enabled", "true ", "-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(config_set(&c, "log", "access", bad[i], err, sizeof(err)), -1);
        ck_assert_ptr_nonnull(strstr(err, "log.access"));
    }
}
END_TEST

START_TEST(test_set_unknown_and_too_long)
{
    struct config c;
    char err[256];
    config_defaults(&c);
    ck_assert_int_eq(config_set(&c, "nope", "port", "1", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "unknown section [nope]");
    ck_assert_int_eq(config_set(&c, "http", "nope", "1", err, sizeof(err)), -1);
    ck_assert_str_eq(err, "unknown setting http.nope");
    ck_assert_int_eq(config_set(&c, "HTTP", "PORT", "1", err, sizeof(err)), -1);

    char big[300];
    memset(big, 'S', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(config_set(&c, "redis", "password", big, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "redis.password: value too long"));
    ck_assert_ptr_null(strstr(err, "SSSS")); /* a secret is never echoed */
    ck_assert_str_eq(c.redis_password, "");
    big[255] = '\0';
    ck_assert_int_eq(config_set(&c, "redis", "password", big, err, sizeof(err)), 0);
    ck_assert_uint_eq(strlen(c.redis_password), 255);
}
END_TEST

START_TEST(test_env_beats_file)
{
    struct config c;
    char err[256] = "";
    setenv("MIPGW_HTTP_PORT", "9100", 1);
    setenv("MIPGW_PG_CONNINFO", "host=/run/postgresql dbname=other", 1);
    setenv("MIPGW_TOKENS_COD_KEY", KEY40, 1);
    setenv("MIPGW_DEMO_MODE", "off", 1);
    setenv("MIPGW_LOG_FILE", "", 1); /* set but empty: clears the file's value */
    ck_assert_msg(load_text(&c,
                            "[http]\nport = 9000\nbacklog = 77\n"
                            "[pg]\nconninfo = \"hostaddr=10.0.0.1\"\n"
                            "[tokens]\ncod_key = " KEY32 "\n"
                            "[demo]\nmode = on\n"
                            "[log]\nfile = /tmp/x.log\n",
                            err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(c.http_port, 9100);
    ck_assert_int_eq(c.http_backlog, 77); /* from the file */
    ck_assert_str_eq(c.pg_conninfo, "host=/run/postgresql dbname=other");
    ck_assert_str_eq(c.tokens_cod_key, KEY40);
    ck_assert(!c.demo_mode);
    ck_assert_str_eq(c.log_file, "");

    /* Without a file at all. */
    ck_assert_msg(config_load(&c, NULL, err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(c.http_port, 9100);

    setenv("MIPGW_HTTP_PORT", "80x", 1);
    ck_assert_int_eq(config_load(&c, NULL, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "MIPGW_HTTP_PORT"));
    ck_assert_ptr_nonnull(strstr(err, "http.port"));

    unsetenv("MIPGW_HTTP_PORT");
    unsetenv("MIPGW_PG_CONNINFO");
    unsetenv("MIPGW_TOKENS_COD_KEY");
    unsetenv("MIPGW_DEMO_MODE");
    unsetenv("MIPGW_LOG_FILE");
}
END_TEST

START_TEST(test_key_file)
{
    struct config c;
    char err[512] = "";
    char *key = temp_file(KEY40 "\n");
    char *portal = temp_file(KEY32 "-portal\r\n");
    char *text = NULL;
    ck_assert_int_ne(asprintf(&text, "[tokens]\ncod_key_file = %s\nportal_key_file = %s\n",
                              key, portal), -1);
    ck_assert_msg(load_text(&c, text, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(c.tokens_cod_key, KEY40);
    ck_assert_str_eq(c.tokens_portal_key, KEY32 "-portal");
    free(text);

    /* A key set directly wins over the file, which is then not read. */
    setenv("MIPGW_TOKENS_COD_KEY", KEY32, 1);
    setenv("MIPGW_TOKENS_COD_KEY_FILE", "/nonexistent/key", 1);
    ck_assert_msg(config_load(&c, NULL, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(c.tokens_cod_key, KEY32);

    /* A missing file is an error naming it. */
    unsetenv("MIPGW_TOKENS_COD_KEY");
    ck_assert_int_eq(config_load(&c, NULL, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "tokens.cod_key_file"));
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/key"));
    unsetenv("MIPGW_TOKENS_COD_KEY_FILE");
    drop_file(key);
    drop_file(portal);

    /* Only one newline is stripped. */
    key = temp_file(KEY32 "\n\n");
    setenv("MIPGW_TOKENS_COD_KEY_FILE", key, 1);
    ck_assert_msg(config_load(&c, NULL, err, sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(c.tokens_cod_key, KEY32 "\n");
    drop_file(key);

    /* 255 bytes fit, 256 do not. */
    char big[CONFIG_MAX_KEY + 2];
    memset(big, 'k', sizeof(big));
    big[CONFIG_MAX_KEY - 1] = '\n';
    big[CONFIG_MAX_KEY] = '\0';
    key = temp_file(big);
    setenv("MIPGW_TOKENS_COD_KEY_FILE", key, 1);
    ck_assert_msg(config_load(&c, NULL, err, sizeof(err)) == 0, "%s", err);
    ck_assert_uint_eq(strlen(c.tokens_cod_key), CONFIG_MAX_KEY - 1);
    drop_file(key);
    big[CONFIG_MAX_KEY - 1] = 'k';
    big[CONFIG_MAX_KEY] = '\n';
    big[CONFIG_MAX_KEY + 1] = '\0';
    key = temp_file(big);
    setenv("MIPGW_TOKENS_COD_KEY_FILE", key, 1);
    ck_assert_int_eq(config_load(&c, NULL, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "longer than 255 bytes"));
    ck_assert_ptr_null(strstr(err, "kkkk"));
    drop_file(key);

    /* An empty file. */
    key = temp_file("\n");
    setenv("MIPGW_TOKENS_COD_KEY_FILE", key, 1);
    ck_assert_int_eq(config_load(&c, NULL, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "is empty"));
    drop_file(key);
    unsetenv("MIPGW_TOKENS_COD_KEY_FILE");
}
END_TEST

START_TEST(test_missing_key_outside_demo)
{
    struct config c;
    char err[256] = "";
    ck_assert_int_eq(config_load(&c, NULL, err, sizeof(err)), -1);
    ck_assert_str_eq(err, "tokens.cod_key is missing or shorter than 32 bytes "
                          "(set MIPGW_TOKENS_COD_KEY or tokens.cod_key_file)");
}
END_TEST

START_TEST(test_short_key)
{
    struct config c;
    char err[256] = "";
    ck_assert_int_eq(load_text(&c, "[tokens]\ncod_key = 0123456789abcdef0123456789ABCDE\n",
                               err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "tokens.cod_key is missing or shorter than 32 bytes"));

    /* A raised minimum. */
    ck_assert_int_eq(load_text(&c, "[tokens]\nmin_key_len = 40\ncod_key = " KEY32 "\n",
                               err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "shorter than 40 bytes"));

    /* Short even in demo mode, once set. */
    ck_assert_int_eq(load_text(&c, "[demo]\nmode = yes\n[tokens]\ncod_key = short\n",
                               err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "tokens.cod_key"));

    /* The portal key too. */
    ck_assert_int_eq(load_with_key(&c, "portal_key = tooshort\n", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "tokens.portal_key is missing or shorter than 32 bytes"));
    ck_assert_ptr_nonnull(strstr(err, "MIPGW_TOKENS_PORTAL_KEY"));
    ck_assert_int_eq(load_with_key(&c, "portal_key = " KEY32 "\n", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "must differ"));
    ck_assert_msg(load_with_key(&c, "portal_key = " KEY40 "\n", err, sizeof(err)) == 0, "%s",
                  err);
}
END_TEST

START_TEST(test_demo_mode)
{
    struct config c;
    char err[256] = "";
    ck_assert_uint_eq(strlen(config_demo_key), 48);
    ck_assert_msg(load_text(&c, "[demo]\nmode = on\n", err, sizeof(err)) == 0, "%s", err);
    ck_assert(c.demo_mode);
    ck_assert_str_eq(c.tokens_cod_key, config_demo_key);
    ck_assert_str_eq(c.tokens_portal_key, "");

    /* With a key of its own, demo mode keeps it. */
    ck_assert_msg(load_text(&c, "[demo]\nmode = on\n[tokens]\ncod_key = " KEY40 "\n", err,
                            sizeof(err)) == 0, "%s", err);
    ck_assert_str_eq(c.tokens_cod_key, KEY40);

    /* The public demo key is refused outside demo mode. */
    char *text = NULL;
    ck_assert_int_ne(asprintf(&text, "[tokens]\ncod_key = \"%s\"\n", config_demo_key), -1);
    ck_assert_int_eq(load_text(&c, text, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "demo key"));
    free(text);
}
END_TEST

START_TEST(test_time_zone)
{
    struct config c;
    char err[256];
    config_defaults(&c);
    static const char *const good[] = {"UTC", "Europe/Moscow", "Asia/Yekaterinburg"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(config_set(&c, "time", "zone", good[i], err, sizeof(err)) == 0, "%s", err);
    static const char *const bad[] = {
        "", "Mars/Olympus_Mons", "../etc/passwd", "../../../../etc/passwd",
        "Europe/../../../etc/passwd", "/etc/passwd", "/usr/share/zoneinfo/UTC", "Europe",
        "Europe/Moscow ", "zone.tab", "Europe/..", "../zoneinfo/UTC", "Etc/../UTC",
        "/usr/share/zoneinfo/Etc/UTC",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(config_set(&c, "time", "zone", bad[i], err, sizeof(err)) == -1, "%s",
                      bad[i]);
        ck_assert_ptr_nonnull(strstr(err, "time.zone"));
    }
    ck_assert_str_eq(c.time_zone, "Asia/Yekaterinburg");

    /* Through the file, with the line. */
    ck_assert_int_eq(load_with_key(&c, "[time]\nzone = ../etc/passwd\n", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, ":4: time.zone"));

    /* Through the struct, caught by config_validate. */
    config_defaults(&c);
    strcpy(c.tokens_cod_key, KEY32);
    strcpy(c.time_zone, "../etc/passwd");
    ck_assert_int_eq(config_validate(&c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "time.zone"));
}
END_TEST

START_TEST(test_addresses)
{
    struct config c;
    char err[256];
    config_defaults(&c);
    static const char *const good[] = {"0.0.0.0", "127.0.0.1", "::", "::1", "fe80::1"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        ck_assert_msg(config_set(&c, "http", "listen", good[i], err, sizeof(err)) == 0, "%s",
                      err);
    static const char *const bad[] = {
        "", "localhost", "1.2.3", "256.1.1.1", "[::1]", "127.0.0.1:80", " 127.0.0.1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(config_set(&c, "http", "listen", bad[i], err, sizeof(err)) == -1, "%s",
                      bad[i]);
        ck_assert_ptr_nonnull(strstr(err, "http.listen"));
    }

    /* trusted_proxies: a list of literals, blanks dropped. */
    ck_assert_int_eq(config_set(&c, "http", "trusted_proxies", " 10.0.0.1 ,\t::1 ", err,
                                sizeof(err)), 0);
    ck_assert_str_eq(c.http_trusted_proxies, "10.0.0.1,::1");
    ck_assert_int_eq(config_set(&c, "http", "trusted_proxies", "", err, sizeof(err)), 0);
    ck_assert_str_eq(c.http_trusted_proxies, "");
    static const char *const bad_lists[] = {
        "10.0.0.1,,10.0.0.2", "10.0.0.1,", "10.0.0.0/8", "proxy.local", ",",
        ("1.1.1.1,1.1.1.2,1.1.1.3,1.1.1.4,1.1.1.5,1.1.1.6,1.1.1.7,1.1.1.8,1.1.1.9,"
         "1.1.1.10,1.1.1.11,1.1.1.12,1.1.1.13,1.1.1.14,1.1.1.15,1.1.1.16,1.1.1.17"),
    };
    for (size_t i = 0; i < sizeof(bad_lists) / sizeof(bad_lists[0]); i++) {
        ck_assert_msg(config_set(&c, "http", "trusted_proxies", bad_lists[i], err,
                                 sizeof(err)) == -1, "%s", bad_lists[i]);
        ck_assert_ptr_nonnull(strstr(err, "http.trusted_proxies"));
    }

    /* redis.host: a literal or a socket path. */
    ck_assert_int_eq(config_set(&c, "redis", "host", "/run/redis/redis.sock", err,
                                sizeof(err)), 0);
    ck_assert_int_eq(config_set(&c, "redis", "host", "::1", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&c, "redis", "host", "redis.local", err, sizeof(err)), -1);
    ck_assert_int_eq(config_set(&c, "redis", "host", "run/redis.sock", err, sizeof(err)), -1);
    ck_assert_int_eq(config_set(&c, "redis", "host", "", err, sizeof(err)), -1);

    /* log.level and pg.conninfo. */
    ck_assert_int_eq(config_set(&c, "log", "level", "warn", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&c, "log", "level", "verbose", err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "log.level"));
    ck_assert_int_eq(config_set(&c, "pg", "conninfo", "", err, sizeof(err)), -1);

    /* config_validate catches what was written into the struct by hand. */
    config_defaults(&c);
    strcpy(c.tokens_cod_key, KEY32);
    strcpy(c.http_listen, "localhost");
    ck_assert_int_eq(config_validate(&c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "http.listen"));
    config_defaults(&c);
    strcpy(c.tokens_cod_key, KEY32);
    c.http_port = 0;
    ck_assert_int_eq(config_validate(&c, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "http.port"));
}
END_TEST

START_TEST(test_workers_resolved)
{
    struct config c;
    char err[256] = "";
    ck_assert_msg(load_with_key(&c, "", err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_ge(c.http_workers, 1);
    ck_assert_int_le(c.http_workers, 64);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n >= 1 && n <= 64)
        ck_assert_int_eq(c.http_workers, n);
    ck_assert_msg(load_with_key(&c, "[http]\nworkers = 5\n", err, sizeof(err)) == 0, "%s", err);
    ck_assert_int_eq(c.http_workers, 5);
}
END_TEST

START_TEST(test_dump_masks_secrets)
{
    struct config c;
    char err[256];
    config_defaults(&c);
    ck_assert_int_eq(config_set(&c, "tokens", "cod_key", KEY40, err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&c, "redis", "password", "r3dis-pa55", err, sizeof(err)), 0);
    ck_assert_int_eq(config_set(&c, "pg", "conninfo",
                                "hostaddr=10.0.0.5 user=mipgw password=pg-s3cret dbname=mipgw",
                                err, sizeof(err)), 0);
    char *out = dump_of(&c);
    ck_assert_ptr_null(strstr(out, KEY40));
    ck_assert_ptr_null(strstr(out, "r3dis"));
    ck_assert_ptr_null(strstr(out, "s3cret"));
    ck_assert_ptr_nonnull(strstr(out, "[tokens]\ncod_key = (set, 40 bytes)\n"));
    ck_assert_ptr_nonnull(strstr(out, "\nportal_key = (unset)\n"));
    ck_assert_ptr_nonnull(strstr(out, "\npassword = (set, 10 bytes)\n"));
    ck_assert_ptr_nonnull(strstr(
        out, "conninfo = \"hostaddr=10.0.0.5 user=mipgw password=*** dbname=mipgw\"\n"));
    ck_assert_ptr_nonnull(strstr(out, "[http]\nlisten = \"127.0.0.1\"\nport = 8080\n"));
    ck_assert_ptr_nonnull(strstr(out, "\naccess = true\n"));
    ck_assert_ptr_nonnull(strstr(out, "[demo]\nmode = false\n"));
    free(out);

    /* Quoted values, blanks around '=', escapes. */
    ck_assert_int_eq(config_set(&c, "pg", "conninfo",
                                "password = 'a b\\'c' host=/run/postgresql password=x\\ y",
                                err, sizeof(err)), 0);
    out = dump_of(&c);
    ck_assert_ptr_nonnull(strstr(out, "conninfo = \"password = *** host=/run/postgresql "
                                      "password=***\"\n"));
    ck_assert_ptr_null(strstr(out, "a b"));
    ck_assert_ptr_null(strstr(out, "x\\ y"));
    free(out);

    /* The URI form. */
    ck_assert_int_eq(config_set(&c, "pg", "conninfo",
                                "postgresql://mipgw:pg-s3cret@10.0.0.5:5432/mipgw"
                                "?sslmode=disable&password=s3cret2&connect_timeout=3",
                                err, sizeof(err)), 0);
    out = dump_of(&c);
    ck_assert_ptr_nonnull(strstr(out, "conninfo = \"postgresql://mipgw:***@10.0.0.5:5432/mipgw"
                                      "?sslmode=disable&password=***&connect_timeout=3\"\n"));
    ck_assert_ptr_null(strstr(out, "s3cret"));
    free(out);

    /* sslpassword, and in the URI form a %-escaped name (libpq decodes it). */
    ck_assert_int_eq(config_set(&c, "pg", "conninfo",
                                "hostaddr=10.0.0.5 sslpassword=k3y-pass dbname=mipgw", err,
                                sizeof(err)), 0);
    out = dump_of(&c);
    ck_assert_ptr_nonnull(strstr(out, "conninfo = \"hostaddr=10.0.0.5 sslpassword=*** dbname=mipgw\"\n"));
    free(out);
    ck_assert_int_eq(config_set(&c, "pg", "conninfo",
                                "postgresql://10.0.0.5/mipgw?sslpassword=k3y-pass&pass%77ord=k3y-two",
                                err, sizeof(err)), 0);
    out = dump_of(&c);
    ck_assert_ptr_nonnull(strstr(out, "?sslpassword=***&pass%77ord=***\"\n"));
    ck_assert_ptr_null(strstr(out, "k3y"));
    free(out);

    /* A URL setting (an SMS webhook) without its query or user information,
     * where an operator's API key often goes. */
    ck_assert_int_eq(config_set(&c, "ehealth", "sms_webhook_url",
                                "http://10.0.0.7:8080/send?apikey=k3y-sms", err, sizeof(err)), 0);
    out = dump_of(&c);
    ck_assert_ptr_nonnull(strstr(out, "sms_webhook_url = \"http://10.0.0.7:8080/send?***\"\n"));
    ck_assert_ptr_null(strstr(out, "k3y"));
    free(out);

    /* What cannot be parsed is refused, without echoing it. */
    ck_assert_int_eq(config_set(&c, "pg", "conninfo", "password='unterminated", err,
                                sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "not a libpq connection string"));
    ck_assert_ptr_null(strstr(err, "unterminated'"));
}
END_TEST

/* etc/mipgw.conf names every setting with its default. */
static void in_example(const char *section, const char *key, const char *env, void *arg)
{
    (void)env;
    char *text = arg;
    char head[64], want[96];
    snprintf(head, sizeof(head), "\n[%s]\n", section);
    snprintf(want, sizeof(want), "\n%s =", key);
    const char *sec = strstr(text, head);
    ck_assert_msg(sec != NULL, "etc/mipgw.conf lacks [%s]", section);
    const char *next = strstr(sec + 1, "\n[");
    const char *hit = sec;
    size_t n = strlen(want);
    while ((hit = strstr(hit, want)) && hit[n] != ' ' && hit[n] != '\n')
        hit += n;
    ck_assert_msg(hit && (!next || hit < next), "etc/mipgw.conf lacks %s.%s", section, key);
}

START_TEST(test_example_file)
{
    struct config c, d;
    char err[256] = "";
    char *path = source_path("etc/mipgw.conf");
    setenv("MIPGW_TOKENS_COD_KEY", KEY32, 1);
    ck_assert_msg(config_load(&c, path, err, sizeof(err)) == 0, "%s", err);
    unsetenv("MIPGW_TOKENS_COD_KEY");
    config_defaults(&d);
    strcpy(d.tokens_cod_key, KEY32);
    d.http_workers = c.http_workers;
    char *a = dump_of(&c), *b = dump_of(&d);
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    char *text = slurp(path);
    each_setting(in_example, text);
    free(text);
    free(path);
}
END_TEST

/* docs/configuration.md has a row for every setting. */
static void in_docs(const char *section, const char *key, const char *env, void *arg)
{
    char *text = arg;
    char want[256];
    snprintf(want, sizeof(want), "| `%s.%s` | `%s` | ", section, key, env);
    ck_assert_msg(strstr(text, want) != NULL, "docs/configuration.md lacks %s", want);
}

START_TEST(test_docs_list_every_setting)
{
    char *path = source_path("docs/configuration.md");
    char *text = slurp(path);
    each_setting(in_docs, text);
    free(text);
    free(path);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_defaults_validate_but_for_the_key);
    tcase_add_test(tc, test_help);
    tcase_add_test(tc, test_parse_file);
    tcase_add_test(tc, test_empty_and_quoted_empty);
    tcase_add_test(tc, test_file_errors_name_the_line);
    tcase_add_test(tc, test_conninfo_hosts);
    tcase_add_test(tc, test_sms_sink_demo_only);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_long_line);
    tcase_add_test(tc, test_int_values);
    tcase_add_test(tc, test_bool_values);
    tcase_add_test(tc, test_set_unknown_and_too_long);
    tcase_add_test(tc, test_env_beats_file);
    tcase_add_test(tc, test_key_file);
    tcase_add_test(tc, test_missing_key_outside_demo);
    tcase_add_test(tc, test_short_key);
    tcase_add_test(tc, test_demo_mode);
    tcase_add_test(tc, test_time_zone);
    tcase_add_test(tc, test_addresses);
    tcase_add_test(tc, test_workers_resolved);
    tcase_add_test(tc, test_dump_masks_secrets);
    tcase_add_test(tc, test_example_file);
    tcase_add_test(tc, test_docs_list_every_setting);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    clear_mipgw_env();
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
