/* e2e_util.c - see e2e_util.h. */
#include "e2e_util.h"

#include <check.h>
#include <libpq-fe.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

#include <jwt.h>

#include "config.h"
#include "token.h"
#include "util.h"

const char *env(const char *name)
{
    const char *v = getenv(name);
    ck_assert_msg(v != NULL && *v, "%s is not set: run the suite through tests/e2e.sh", name);
    return v;
}

double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    ck_assert_msg(n >= 0 && s, "out of memory");
    return s;
}

/* Percent-encodes everything but RFC 3986's unreserved characters. */
void url_encode_into(const char *s, char **out, size_t *len, size_t *cap)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*len + 4 > *cap) {
            *cap = *cap * 2 + 64;
            *out = realloc(*out, *cap);
            ck_assert_ptr_nonnull(*out);
        }
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
            c == '_' || c == '.' || c == '~') {
            (*out)[(*len)++] = (char)c;
        } else {
            (*out)[(*len)++] = '%';
            (*out)[(*len)++] = hex[c >> 4];
            (*out)[(*len)++] = hex[c & 15];
        }
        (*out)[*len] = '\0';
    }
}

/* base + "?" + k1=v1&k2=v2..., values percent-encoded; NULL ends the list.
 * The caller frees. */
char *qpath(const char *base, ...)
{
    size_t cap = strlen(base) + 256, len = strlen(base);
    char *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    memcpy(out, base, len + 1);
    va_list ap;
    va_start(ap, base);
    const char *k;
    char sep = '?';
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        /* keys are plain: they, '?', '&' and '=' go in verbatim */
        size_t need = len + strlen(k) + 3;
        if (need > cap) {
            cap = need * 2;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
        out[len++] = sep;
        memcpy(out + len, k, strlen(k));
        len += strlen(k);
        out[len++] = '=';
        out[len] = '\0';
        url_encode_into(v, &out, &len, &cap);
        sep = '&';
    }
    va_end(ap);
    return out;
}

/* A short, printable view of a body for assertion messages. */
const char *show(const struct http_resp *r)
{
    static char buf[600];
    size_t n = 0;
    for (size_t i = 0; i < r->body_len && n < sizeof(buf) - 5; i++) {
        unsigned char c = (unsigned char)r->body[i];
        buf[n++] = c >= 0x20 ? (char)c : '.';
    }
    if (r->body_len > n)
        buf[n++] = '~';
    buf[n] = '\0';
    return buf;
}

/* ---- JSON ---- */

yajl_val jparse_str(const char *s)
{
    char err[256];
    return yajl_tree_parse(s, err, sizeof(err));
}

/* The body parsed as a JSON object; fails the test otherwise. */
yajl_val jbody(const struct http_resp *r, const char *what)
{
    ck_assert_msg(strlen(r->body) == r->body_len, "%s: body holds a NUL", what);
    yajl_val v = jparse_str(r->body);
    ck_assert_msg(v != NULL && YAJL_IS_OBJECT(v), "%s: body is not a JSON object: %s", what, show(r));
    return v;
}

yajl_val jget(yajl_val obj, const char *key)
{
    if (!obj || !YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}

const char *jstr(yajl_val obj, const char *key)
{
    return YAJL_GET_STRING(jget(obj, key));
}

/* True when obj has exactly these keys (each once). */
bool jkeys_exactly(yajl_val obj, const char *const *keys, size_t n)
{
    if (!obj || !YAJL_IS_OBJECT(obj) || obj->u.object.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < obj->u.object.len; j++)
            seen += strcmp(obj->u.object.keys[j], keys[i]) == 0;
        if (seen != 1)
            return false;
    }
    return true;
}

bool is_guid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* The МИП standard body, exactly {"Code","Message_code","Message"} with
 * Code the HTTP status. */
void assert_error_at(const struct http_resp *r, int status, const char *code, const char *msg,
                            const char *what, int line)
{
    ck_assert_msg(r->status == status, "line %d: %s: status %d, want %d; body %s", line, what,
                  r->status, status, show(r));
    const char *ct = http_header(r, "Content-Type");
    ck_assert_msg(ct && strncmp(ct, "application/json", 16) == 0, "line %d: %s: Content-Type %s", line,
                  what, ct ? ct : "(none)");
    yajl_val v = jbody(r, what);
    static const char *const keys[] = {"Code", "Message_code", "Message"};
    ck_assert_msg(jkeys_exactly(v, keys, 3), "line %d: %s: not the standard body: %s", line, what,
                  show(r));
    yajl_val c = jget(v, "Code");
    ck_assert_msg(YAJL_IS_INTEGER(c) && YAJL_GET_INTEGER(c) == status,
                  "line %d: %s: Code is not %d: %s", line, what, status, show(r));
    ck_assert_msg(jstr(v, "Message_code") && strcmp(jstr(v, "Message_code"), code) == 0,
                  "line %d: %s: Message_code want %s: %s", line, what, code, show(r));
    ck_assert_msg(jstr(v, "Message") && (!msg || strcmp(jstr(v, "Message"), msg) == 0),
                  "line %d: %s: Message want \"%s\", got %s", line, what, msg, show(r));
    yajl_tree_free(v);
}

/* ---- for the MIS suites ---- */

char *basic_header(const char *login, const char *password)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *plain = xasprintf("%s:%s", login, password);
    size_t n = strlen(plain);
    char *b64 = malloc(4 * ((n + 2) / 3) + 1);
    ck_assert_ptr_nonnull(b64);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)plain[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)plain[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)plain[i + 2];
        b64[o++] = tab[(v >> 18) & 63];
        b64[o++] = tab[(v >> 12) & 63];
        b64[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        b64[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    b64[o] = '\0';
    char *h = xasprintf("Authorization: Basic %s", b64);
    free(plain);
    free(b64);
    return h;
}

double metric_at(int port, const char *name)
{
    struct http_resp *r = http_get_at(port, "/metrics", NULL);
    ck_assert_int_eq(r->status, 200);
    double v;
    ck_assert_msg(metric_value(r->body, name, &v), "/metrics has no %s", name);
    http_free(r);
    return v;
}

/* Runs cmd (taken) with the shell: its exit status, 128 when a signal
 * ended it, -1 when it could not run. */
static int shell_status(char *cmd)
{
    int rc = system(cmd);
    free(cmd);
    return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

int redis_cli(const char *args)
{
    return shell_status(xasprintf("redis-cli -p %s %s >/dev/null 2>&1", env("MIPGW_TEST_REDIS_PORT"), args));
}

long redis_long(const char *args)
{
    char *cmd = xasprintf("redis-cli -p %s %s", env("MIPGW_TEST_REDIS_PORT"), args);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    long n = -1;
    int got = fscanf(f, "%ld", &n);
    pclose(f);
    ck_assert_msg(got == 1, "%s: no integer", cmd);
    free(cmd);
    return n;
}

bool metric_value(const char *text, const char *prefix, double *out)
{
    size_t n = strlen(prefix);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, prefix, n) == 0 && line[n] == ' ') {
            *out = strtod(line + n + 1, NULL);
            return true;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return false;
}

struct http_resp *post_json(const char *path, const char *auth_header, const char *body)
{
    const char *headers[] = {"Content-Type: application/json", auth_header, NULL};
    return http_request("POST", path, headers, body);
}

PGresult *pg_exec(const char *sql, int nparams, const char *const *params)
{
    PGconn *c = PQconnectdb(env("MIPGW_TEST_PG_CONNINFO"));
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "PostgreSQL: %s", PQerrorMessage(c));
    PGresult *res = PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
                  PQresultErrorMessage(res));
    PQfinish(c);
    return res;
}

char *pg_value(const char *sql, int nparams, const char *const *params)
{
    PGresult *res = pg_exec(sql, nparams, params);
    char *v = PQntuples(res) > 0 && !PQgetisnull(res, 0, 0) ? strdup(PQgetvalue(res, 0, 0)) : NULL;
    PQclear(res);
    return v;
}

char *cod_token(const char *path, const char *enp, const char *birthday)
{
    char *p = qpath(path, "n_pol", enp, "birthday", birthday, NULL);
    struct http_resp *r = http_get(p, NULL);
    ck_assert_msg(r->status == 200, "%s: status %d: %s", p, r->status, show(r));
    yajl_val v = jbody(r, p);
    const char *t = jstr(v, "token");
    ck_assert_ptr_nonnull(t);
    char *out = strdup(t);
    yajl_tree_free(v);
    http_free(r);
    free(p);
    return out;
}

char *sign_own(const char *person, long long iat, long long exp, int type)
{
    struct token_keys keys = {
        .own = (const unsigned char *)config_demo_key,
        .own_len = strlen(config_demo_key),
    };
    struct token_claims c;
    memset(&c, 0, sizeof(c));
    c.type = (enum token_type)type;
    util_guid(c.jti);
    snprintf(c.person_guid, sizeof(c.person_guid), "%s", person);
    snprintf(c.auth_source, sizeof(c.auth_source), "%s", "Internet");
    c.iat = iat;
    c.exp = exp;
    char *tok = token_sign(&keys, &c);
    ck_assert_ptr_nonnull(tok);
    return tok;
}

char *portal_token(const char *key, const char *series, const char *number, const char *birthday,
                   long long exp)
{
    jwt_t *jwt = NULL;
    ck_assert_int_eq(jwt_new(&jwt), 0);
    ck_assert_int_eq(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)key, (int)strlen(key)), 0);
    char *json = xasprintf("{\"tokenType\":\"RpguToken\",\"exp\":%lld,\"iat\":%lld,"
                           "\"Payload\":{\"PolisSeries\":\"%s\",\"PolisNumber\":\"%s\","
                           "\"Birthday\":\"%s\"}}",
                           exp, exp - 600, series, number, birthday);
    ck_assert_int_eq(jwt_add_grants_json(jwt, json), 0);
    free(json);
    char *tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    ck_assert_ptr_nonnull(tok);
    return tok;
}

int ctl(const char *what)
{
    return shell_status(xasprintf("%s %s", env("MIPGW_TEST_CTL"), what));
}

/* Polls /ready on port until `streak` answers in a row have status want
 * (each is a new connection, which the kernel may hand to any worker: a
 * streak tells that every worker agrees). Returns the milliseconds it took,
 * or -1 after timeout_ms. */
double ready_streak(int port, int want, int streak, double timeout_ms)
{
    double t0 = mono_ms();
    int run = 0;
    while (mono_ms() - t0 < timeout_ms) {
        struct http_resp *r = http_get_at(port, "/ready", NULL);
        int st = r->status;
        http_free(r);
        if (st == want) {
            if (++run >= streak)
                return mono_ms() - t0;
        } else {
            run = 0;
            sleep_ms(100);
        }
    }
    return -1;
}

/* ---- gateways a test starts itself ---- */

int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t len = sizeof(sin);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

/* Gateways this test started; reset by the setup, reaped by the teardown. */
static pid_t spawned[MAX_SPAWNED];

void spawned_reset(void)
{
    for (int i = 0; i < MAX_SPAWNED; i++)
        spawned[i] = 0;
}

void spawned_kill_all(void)
{
    for (int i = 0; i < MAX_SPAWNED; i++) {
        if (spawned[i] > 0) {
            kill(spawned[i], SIGKILL);
            waitpid(spawned[i], NULL, 0);
            spawned[i] = 0;
        }
    }
}

/* Starts `mipgw serve` on a free port with the stores of the gateway under
 * test and the given NAME=value settings; its output goes to a log file
 * next to the main gateway's. Waits until probe answers 200. Returns the
 * port. */
static int gw_spawn_until(const char *const *settings, pid_t *pid_out, const char *probe)
{
    const char *bin = env("MIPGW_TEST_BIN");
    int port = free_port();
    char *dir = strdup(env("MIPGW_TEST_GW_LOG"));
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(dir, ".");
    char *log = xasprintf("%s/mipgw-extra-%d.log", dir, port);
    free(dir);

    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* The child: the test's own variables are no settings. */
        char *names[256];
        int n = 0;
        for (char **e = environ; *e && n < 256; e++)
            if (strncmp(*e, "MIPGW_TEST_", 11) == 0 || strncmp(*e, "MIPGW_LOG_FILE=", 15) == 0 ||
                strncmp(*e, "MIPGW_RATELIMIT_", 16) == 0)
                names[n++] = strndup(*e, strcspn(*e, "="));
        for (int i = 0; i < n; i++)
            unsetenv(names[i]);
        char portbuf[16];
        snprintf(portbuf, sizeof(portbuf), "%d", port);
        setenv("MIPGW_HTTP_PORT", portbuf, 1);
        setenv("MIPGW_HTTP_LISTEN", "127.0.0.1", 1);
        setenv("MIPGW_HTTP_WORKERS", "1", 1);
        setenv("MIPGW_DEMO_MODE", "1", 1);
        for (int i = 0; settings && settings[i]; i++)
            putenv((char *)settings[i]);
        int in = open("/dev/null", O_RDONLY);
        int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (in < 0 || out < 0)
            _exit(126);
        dup2(in, 0);
        dup2(out, 1);
        dup2(out, 2);
        execl(bin, bin, "serve", (char *)NULL);
        _exit(127);
    }
    free(log);
    for (int i = 0; i < MAX_SPAWNED; i++) {
        if (spawned[i] == 0) {
            spawned[i] = pid;
            break;
        }
    }
    *pid_out = pid;

    double t0 = mono_ms();
    for (;;) {
        int status;
        ck_assert_msg(waitpid(pid, &status, WNOHANG) == 0, "the extra gateway exited at start (%d)",
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        struct http_resp *r = http_get_at(port, probe, NULL);
        int st = r->status;
        http_free(r);
        if (st == 200)
            break;
        ck_assert_msg(mono_ms() - t0 < 20000, "the extra gateway on port %d: no 200 on %s in 20 s",
                      port, probe);
        sleep_ms(100);
    }
    return port;
}

int gw_spawn(const char *const *settings, pid_t *pid_out)
{
    return gw_spawn_until(settings, pid_out, "/ready");
}

int gw_spawn_live(const char *const *settings, pid_t *pid_out)
{
    return gw_spawn_until(settings, pid_out, "/health");
}

/* SIGTERM, and the exit status (-1: it had to be killed, -2: by a signal). */
int gw_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    double t0 = mono_ms();
    int status = 0;
    pid_t got;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && mono_ms() - t0 < 15000)
        sleep_ms(50);
    for (int i = 0; i < MAX_SPAWNED; i++)
        if (spawned[i] == pid)
            spawned[i] = 0;
    if (got == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return -1;
    }
    if (got < 0)
        return -3;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
}


/* ---- the demo's cells ---- */

struct test_cell internet_cell(const char *resource, int n)
{
    char off[16];
    snprintf(off, sizeof(off), "%d", n);
    const char *v[] = {resource, off};
    PGresult *res = pg_exec("SELECT to_char(begin_at AT TIME ZONE 'Europe/Moscow', 'YYYY-MM-DD'),"
                            " to_char(begin_at AT TIME ZONE 'Europe/Moscow', 'HH24:MI'), guid::text,"
                            " extract(epoch FROM begin_at)::bigint"
                            " FROM cells WHERE resource_guid = $1::uuid"
                            " AND begin_at > now() + interval '3 hours'"
                            " AND busy_type = 1 AND 'Internet' = ANY (access)"
                            " ORDER BY begin_at OFFSET $2::int LIMIT 1",
                            2, v);
    ck_assert_int_eq(PQntuples(res), 1);
    struct test_cell c;
    snprintf(c.day, sizeof(c.day), "%s", PQgetvalue(res, 0, 0));
    snprintf(c.time, sizeof(c.time), "%s", PQgetvalue(res, 0, 1));
    snprintf(c.guid, sizeof(c.guid), "%s", PQgetvalue(res, 0, 2));
    snprintf(c.lockkey, sizeof(c.lockkey), "cell:lock:%s:%s", resource, PQgetvalue(res, 0, 3));
    c.resource = resource;
    PQclear(res);
    return c;
}

static void redis_proxy_wait(int port)
{
    for (int i = 0; i < 100; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bool up = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
        if (fd >= 0)
            close(fd);
        if (up)
            return;
        sleep_ms(50);
    }
    ck_abort_msg("stallproxy did not listen on %d", port);
}

struct redis_proxy redis_proxy_start(int port)
{
    struct redis_proxy p;
    p.control = xasprintf("%s.redis-proxy-%d", env("MIPGW_TEST_GW_LOG"), (int)getpid());
    unlink(p.control);
    p.port = port ? port : free_port();
    char lport[16];
    snprintf(lport, sizeof(lport), "%d", p.port);
    const char *bin = env("MIPGW_TEST_STALLPROXY");
    p.pid = fork();
    ck_assert_int_ge(p.pid, 0);
    if (p.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(bin, bin, lport, env("MIPGW_TEST_REDIS_PORT"), p.control, (char *)NULL);
        _exit(127);
    }
    redis_proxy_wait(p.port);
    return p;
}

void redis_proxy_control(const struct redis_proxy *p, const char *line)
{
    if (!line) {
        unlink(p->control);
        return;
    }
    FILE *f = fopen(p->control, "w");
    ck_assert_ptr_nonnull(f);
    if (*line)
        fprintf(f, "%s\n", line);
    fclose(f);
}

void redis_proxy_stop(struct redis_proxy *p)
{
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    unlink(p->control);
    free(p->control);
}
