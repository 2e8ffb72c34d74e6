/* check_e2e_mis.c - MIS logins end to end: `mipgw user ...` against the
 * test PostgreSQL, and HTTP Basic authentication through GET
 * /mis/v1/whoami against the gateway under test (tests/e2e.sh runs it with
 * mis.auth_cache_ttl_s = 2). Every test makes logins of its own. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"
#include "identity.h"
#include "ids.h"

#define MSG_4120 "Неверный логин или пароль"
#define CACHE_TTL_MS 2000

/* A login unique to this run and test. */
static char *new_login(const char *what)
{
    return xasprintf("e2e-%s-%d-%d", what, (int)getpid(), rand() % 100000);
}

/* Runs `mipgw user ARGS` with stdin_text on its standard input; returns its
 * exit status, and its standard output in *out when out is not NULL. */
static int user_cmd(const char *stdin_text, char **out, const char *args)
{
    char *outfile = xasprintf("/tmp/mipgw-e2e-user-%d.out", (int)getpid());
    char *cmd = xasprintf("'%s' user %s >'%s' 2>&1", env("MIPGW_TEST_BIN"), args, outfile);
    FILE *p = popen(cmd, "w");
    ck_assert_ptr_nonnull(p);
    if (stdin_text)
        fputs(stdin_text, p);
    int st = pclose(p);
    if (out) {
        FILE *f = fopen(outfile, "r");
        ck_assert_ptr_nonnull(f);
        char buf[8192];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        *out = strdup(buf);
    }
    unlink(outfile);
    free(cmd);
    free(outfile);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void add_user(const char *login, const char *password, const char *lpus)
{
    char *args = xasprintf("add %s %s", login, lpus);
    char *in = xasprintf("%s\n", password);
    char *out = NULL;
    int rc = user_cmd(in, &out, args);
    ck_assert_msg(rc == 0, "user %s: exit %d: %s", args, rc, out);
    free(out);
    free(in);
    free(args);
}

static struct http_resp *whoami(const char *auth_header)
{
    return auth_header ? http_get("/mis/v1/whoami", auth_header, NULL) : http_get("/mis/v1/whoami", NULL);
}

static void assert_unauthorized_at(struct http_resp *r, const char *what, int line)
{
    assert_error_at(r, 401, "4120", MSG_4120, what, line);
    const char *www = http_header(r, "WWW-Authenticate");
    ck_assert_msg(www && strncmp(www, "Basic realm=", 12) == 0, "line %d: %s: WWW-Authenticate %s", line,
                  what, www ? www : "(none)");
}
#define assert_unauthorized(r, what) assert_unauthorized_at(r, what, __LINE__)

START_TEST(user_add_list_and_login)
{
    char *login = new_login("add");
    add_user(login, "correct horse battery", "--lpu 470102 --lpu 330501");

    char *out = NULL;
    ck_assert_int_eq(user_cmd(NULL, &out, "list"), 0);
    char *line = xasprintf("%s", login);
    char *at = strstr(out, line);
    ck_assert_msg(at, "user list lacks %s: %s", login, out);
    ck_assert_msg(strstr(at, "enabled") && strstr(at, "330501,470102"), "user list: %s", out);
    free(line);
    free(out);

    /* The stored hash is argon2id, salted, never the password. */
    const char *p[] = {login};
    char *hash = pg_value("SELECT password_hash FROM mis_users WHERE login = $1", 1, p);
    ck_assert_ptr_nonnull(hash);
    ck_assert_msg(strncmp(hash, "$argon2id$v=19$", 15) == 0, "hash %s", hash);
    ck_assert_ptr_null(strstr(hash, "correct horse"));
    free(hash);

    char *h = basic_header(login, "correct horse battery");
    struct http_resp *r = whoami(h);
    ck_assert_msg(r->status == 200, "whoami: %d %s", r->status, show(r));
    yajl_val v = jbody(r, "whoami");
    ck_assert_str_eq(jstr(v, "Login"), login);
    yajl_val lpus = jget(v, "LpuMcods");
    ck_assert(YAJL_IS_ARRAY(lpus) && lpus->u.array.len == 2);
    ck_assert_str_eq(YAJL_GET_STRING(lpus->u.array.values[0]), "330501");
    ck_assert_str_eq(YAJL_GET_STRING(lpus->u.array.values[1]), "470102");
    yajl_tree_free(v);
    http_free(r);
    free(h);
    free(login);
}
END_TEST

START_TEST(user_add_refuses_bad_input)
{
    char *login = new_login("bad");
    char *args = xasprintf("add %s --lpu 470102", login);
    /* too short a password, none at all, a bad МКОД, two logins, a bad login */
    ck_assert_int_eq(user_cmd("short\n", NULL, args), 1);
    ck_assert_int_eq(user_cmd("", NULL, args), 1);
    free(args);
    args = xasprintf("add %s --lpu 47010", login);
    ck_assert_int_eq(user_cmd("long enough password\n", NULL, args), 1);
    free(args);
    args = xasprintf("add %s %s", login, login);
    ck_assert_int_eq(user_cmd("long enough password\n", NULL, args), 2);
    free(args);
    /* No LPU is a login that writes no hospital's data (a cabinet client):
     * taken, with no LPU. */
    char *bare = new_login("nolpu");
    args = xasprintf("add %s", bare);
    ck_assert_int_eq(user_cmd("long enough password\n", NULL, args), 0);
    free(args);
    const char *pb[] = {bare};
    char *nl = pg_value("SELECT count(*) FROM mis_user_lpus WHERE login = $1", 1, pb);
    ck_assert_str_eq(nl, "0");
    free(nl);
    free(bare);
    ck_assert_int_eq(user_cmd("long enough password\n", NULL, "add 'bad login' --lpu 470102"), 1);
    ck_assert_int_eq(user_cmd(NULL, NULL, "frobnicate"), 2);
    ck_assert_int_eq(user_cmd(NULL, NULL, "disable no-such-login-anywhere"), 1);

    const char *p[] = {login};
    char *n = pg_value("SELECT count(*) FROM mis_users WHERE login = $1", 1, p);
    ck_assert_str_eq(n, "0");
    free(n);

    /* A second add of one login is refused and changes nothing. */
    add_user(login, "first password here", "--lpu 470102");
    char *before = pg_value("SELECT password_hash FROM mis_users WHERE login = $1", 1, p);
    args = xasprintf("add %s --lpu 330501", login);
    ck_assert_int_eq(user_cmd("second password here\n", NULL, args), 1);
    char *after = pg_value("SELECT password_hash FROM mis_users WHERE login = $1", 1, p);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    free(args);
    free(login);
}
END_TEST

START_TEST(basic_auth_refusals)
{
    char *login = new_login("refuse");
    add_user(login, "the right password", "--lpu 470102");

    struct http_resp *r = whoami(NULL);
    assert_unauthorized(r, "no Authorization");
    http_free(r);

    static const char *const bad[] = {
        "Authorization: Bearer abc",
        "Authorization: Basic",
        "Authorization: Basic !!!!",
        "Authorization: Basic dXNlcg==",          /* "user": no colon */
        "Authorization: Basic OnBhc3N3b3Jk",      /* ":password": empty login */
        "Authorization: Basic dXNlcjo=",          /* "user:": empty password */
        "Authorization: Basic dXNlcjpwYXNz=",     /* bad padding */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = whoami(bad[i]);
        assert_unauthorized(r, bad[i]);
        http_free(r);
    }

    char *h = basic_header(login, "the wrong password");
    r = whoami(h);
    assert_unauthorized(r, "wrong password");
    http_free(r);
    free(h);

    h = basic_header("no-such-login-anywhere", "the right password");
    r = whoami(h);
    assert_unauthorized(r, "unknown login");
    http_free(r);
    free(h);

    /* The scheme's name is case-insensitive (RFC 7617). */
    h = basic_header(login, "the right password");
    char *lower = xasprintf("Authorization: basic %s", h + strlen("Authorization: Basic "));
    r = whoami(lower);
    ck_assert_msg(r->status == 200, "lower-case scheme: %d %s", r->status, show(r));
    http_free(r);
    free(lower);
    free(h);
    free(login);
}
END_TEST

/* A verified header is remembered for mis.auth_cache_ttl_s; disabling the
 * login takes effect within it, and enabling brings it back. */
START_TEST(disable_takes_effect_within_the_cache_ttl)
{
    char *login = new_login("disable");
    add_user(login, "password to be disabled", "--lpu 470102");
    char *h = basic_header(login, "password to be disabled");
    /* Every worker caches the header: each connection lands on one of them
     * (SO_REUSEPORT), so many connections reach all of them. */
    for (int i = 0; i < 24; i++) {
        struct http_resp *r = whoami(h);
        ck_assert_msg(r->status == 200, "before: %d %s", r->status, show(r));
        http_free(r);
    }

    char *args = xasprintf("disable %s", login);
    ck_assert_int_eq(user_cmd(NULL, NULL, args), 0);
    free(args);
    /* Done when 24 answers in a row are 401: no worker still believes its
     * cache. A 200 after that would be a cache that never expires. */
    double start = mono_ms();
    int refused_in_a_row = 0;
    while (refused_in_a_row < 24 && mono_ms() - start < CACHE_TTL_MS * 3) {
        struct http_resp *r = whoami(h);
        if (r->status == 200) {
            refused_in_a_row = 0;
            sleep_ms(50);
        } else {
            assert_unauthorized(r, "disabled");
            refused_in_a_row++;
        }
        http_free(r);
    }
    ck_assert_msg(refused_in_a_row == 24, "a disabled login still authenticates after %.0f ms",
                  mono_ms() - start);
    ck_assert_msg(mono_ms() - start <= CACHE_TTL_MS + 1500, "disabling took %.0f ms", mono_ms() - start);

    args = xasprintf("enable %s", login);
    ck_assert_int_eq(user_cmd(NULL, NULL, args), 0);
    free(args);
    struct http_resp *r = whoami(h);
    ck_assert_msg(r->status == 200, "enabled again: %d %s", r->status, show(r));
    http_free(r);
    free(h);
    free(login);
}
END_TEST

/* Many requests at once with one credential, none cached: each worker
 * verifies it once and the rest wait for that verdict. tests/e2e.sh runs
 * the gateway with mis.hash_queue_max = 4, so without that coalescing most
 * of these would be shed with 503. */
START_TEST(concurrent_logins)
{
    char *login = new_login("many");
    add_user(login, "concurrent password", "--lpu 470102");
    char *good = basic_header(login, "concurrent password");
    char *bad = basic_header(login, "concurrent passwore");
    enum { N = 24 };
    pid_t kids[N];
    /* A barrier: every child waits until the write end closes, so that the
     * requests arrive together rather than one fork apart. */
    int gate[2];
    ck_assert_int_eq(pipe(gate), 0);
    for (int i = 0; i < N; i++) {
        kids[i] = fork();
        ck_assert_int_ge(kids[i], 0);
        if (kids[i] == 0) {
            close(gate[1]);
            char c;
            while (read(gate[0], &c, 1) > 0)
                ;
            struct http_resp *r = whoami(i % 2 ? bad : good);
            int want = i % 2 ? 401 : 200;
            if (r->status != want)
                fprintf(stderr, "concurrent_logins: request %d: status %d after %.0f ms: %s\n", i,
                        r->status, r->elapsed_ms, show(r));
            _exit(r->status == want ? 0 : 1);
        }
    }
    close(gate[0]);
    sleep_ms(200);  /* every child at the gate */
    close(gate[1]);
    for (int i = 0; i < N; i++) {
        int st;
        ck_assert_int_eq(waitpid(kids[i], &st, 0), kids[i]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "request %d got a wrong answer", i);
    }
    free(good);
    free(bad);
    free(login);
}
END_TEST


/* ---- an upload drops the person's caches, and a look-up in flight does not
 * cache the old cards again (pfgt:, identity.h) ---- */

static struct http_resp *upload_card(const char *enp, const char *mcod, const char *auth)
{
    char *body = xasprintf("{\"family\":\"Кэшева\",\"name\":\"Ольга\",\"patronymic\":\"Игоревна\","
                           "\"birthday\":\"1979-09-09\",\"polis\":{\"number\":\"%s\"},\"mcod\":\"%s\","
                           "\"phone\":\"79990001122\",\"gender\":2}",
                           enp, mcod);
    struct http_resp *r = post_json("/patients", auth, body);
    free(body);
    return r;
}

static yajl_val session_of_new_token(const char *enp)
{
    char *tok = cod_token("/auth/cod/token", enp, "1979-09-09");
    char *h = xasprintf("Authorization: Bearer %s", tok);
    struct http_resp *r = http_get("/auth/session", h, NULL);
    ck_assert_msg(r->status == 200, "session: %d %s", r->status, show(r));
    yajl_val v = jbody(r, "session");
    http_free(r);
    free(h);
    free(tok);
    return v;
}

START_TEST(upload_drops_caches_and_guards_them)
{
    char enp[17];
    enp[0] = (char)('1' + rand() % 9);
    for (int i = 1; i < 15; i++)
        enp[i] = (char)('0' + rand() % 10);
    enp[15] = (char)('0' + ids_luhn_digit(enp, 15));
    enp[16] = '\0';
    char *auth = basic_header("mis-region", "Demo-Only-Secret-Region");
    struct http_resp *r = upload_card(enp, "470102", auth);
    ck_assert_msg(r->status == 200 && strstr(r->body, "\"Uploaded\""), "first card: %d %s", r->status,
                  show(r));
    http_free(r);

    /* Once the upload's guard is over, the second token's session comes from
     * the cache, one card. */
    sleep_ms(IDENT_FORGET_GUARD_S * 1000 + 500);
    yajl_val v = session_of_new_token(enp);
    yajl_tree_free(v);
    v = session_of_new_token(enp);
    ck_assert_str_eq(jstr(v, "sessionSource"), "redis");
    ck_assert_int_eq(jget(v, "cards")->u.array.len, 1);
    yajl_tree_free(v);

    /* A second card: the cached look-up and sessions are gone, and for a
     * while (the guard) nothing is cached: the session is PostgreSQL's,
     * with both cards, also on asking again. */
    r = upload_card(enp, "330501", auth);
    ck_assert_msg(r->status == 200 && strstr(r->body, "\"Uploaded\""), "second card: %d %s", r->status,
                  show(r));
    http_free(r);
    for (int i = 0; i < 2; i++) {
        v = session_of_new_token(enp);
        ck_assert_str_eq(jstr(v, "sessionSource"), "postgresql");
        ck_assert_int_eq(jget(v, "cards")->u.array.len, 2);
        yajl_tree_free(v);
    }
    /* The guard's key exists now and expires by itself. */
    char *person = pg_value("SELECT person_guid::text FROM medical_cards WHERE polis_key = '|' || $1 LIMIT 1",
                            1, (const char *[]){enp});
    ck_assert_ptr_nonnull(person);
    char *cmd = xasprintf("redis-cli -p %s TTL pfgt:%s", env("MIPGW_TEST_REDIS_PORT"), person);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    int ttl = -100;
    ck_assert_int_eq(fscanf(p, "%d", &ttl), 1);
    pclose(p);
    ck_assert_msg(ttl > 0 && ttl <= IDENT_FORGET_GUARD_S, "pfgt TTL %d", ttl);
    free(cmd);
    free(person);
    free(auth);
}
END_TEST

int main(void)
{
    srand((unsigned)getpid());
    Suite *s = suite_create("e2e_mis");
    TCase *tc = tcase_create("users");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, user_add_list_and_login);
    tcase_add_test(tc, user_add_refuses_bad_input);
    suite_add_tcase(s, tc);
    tc = tcase_create("basic");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, basic_auth_refusals);
    tcase_add_test(tc, disable_takes_effect_within_the_cache_ttl);
    tcase_add_test(tc, concurrent_logins);
    suite_add_tcase(s, tc);
    tc = tcase_create("caches");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, upload_drops_caches_and_guards_them);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
