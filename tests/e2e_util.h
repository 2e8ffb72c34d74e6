/* e2e_util.h - what every end-to-end suite shares: the environment that
 * tests/e2e.sh passes, JSON bodies, the МИП error body, and the stores the
 * harness started. Every helper fails the running Check test on a broken
 * precondition instead of returning an error. */
#ifndef MIPGW_TESTS_E2E_UTIL_H
#define MIPGW_TESTS_E2E_UTIL_H

#include <libpq-fe.h>
#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "httpc.h"

/* A variable tests/e2e.sh sets; fails the test when it is missing. */
const char *env(const char *name);
double mono_ms(void);
void sleep_ms(int ms);
/* Allocating printf; the caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Percent-encodes s (all but RFC 3986's unreserved) onto *out. */
void url_encode_into(const char *s, char **out, size_t *len, size_t *cap);
/* base + "?" + k1=v1&k2=v2..., values percent-encoded; NULL ends the list.
 * The caller frees. */
char *qpath(const char *base, ...) __attribute__((sentinel));
/* A short, printable view of a body for assertion messages (static buffer). */
const char *show(const struct http_resp *r);

/* JSON: parse a string; the body as an object (or fail); exact-key field
 * access; true when obj has exactly these keys. */
yajl_val jparse_str(const char *s);
yajl_val jbody(const struct http_resp *r, const char *what);
yajl_val jget(yajl_val obj, const char *key);
const char *jstr(yajl_val obj, const char *key);
bool jkeys_exactly(yajl_val obj, const char *const *keys, size_t n);
/* A lowercase 8-4-4-4-12 GUID. */
bool is_guid(const char *s);

/* The МИП standard body, exactly {"Code","Message_code","Message"} with
 * Code the HTTP status, and this code and message (NULL: any message). */
void assert_error_at(const struct http_resp *r, int status, const char *code, const char *msg,
                     const char *what, int line);
#define assert_error(r, status, code, msg, what) assert_error_at(r, status, code, msg, what, __LINE__)

/* Runs the harness's store control, "MIPGW_TEST_CTL what" (redis-stop,
 * redis-start, pg-stop, pg-start); its exit status. */
int ctl(const char *what);
/* Polls /ready on port until `streak` answers in a row have status want
 * (each a new connection, which the kernel may hand to any worker: a streak
 * tells that every worker agrees). The milliseconds it took, or -1 after
 * timeout_ms. */
double ready_streak(int port, int want, int streak, double timeout_ms);
/* "Authorization: Basic base64(login:password)"; the caller frees. */
char *basic_header(const char *login, const char *password);
/* The value of the /metrics line that starts with prefix (name{labels})
 * followed by a space; false when there is none. */
bool metric_value(const char *text, const char *prefix, double *out);
/* A counter of the gateway on port (http_default_port() for the suite's
 * own), read from its /metrics; fails the test when it is not there. */
double metric_at(int port, const char *name);
/* redis-cli against the test Redis (MIPGW_TEST_REDIS_PORT) with args (a
 * shell fragment, quoted by the caller): its exit status, or the integer it
 * printed (fails the test when it printed none). */
int redis_cli(const char *args);
long redis_long(const char *args);
/* POST with Content-Type: application/json and an optional header line. */
struct http_resp *post_json(const char *path, const char *auth_header, const char *body);
/* Runs one statement on the test PostgreSQL (MIPGW_TEST_PG_CONNINFO) on a
 * connection of its own; fails the test on an error. The caller PQclears. */
PGresult *pg_exec(const char *sql, int nparams, const char *const *params);
/* The first column of the first row, or NULL; the caller frees. */
char *pg_value(const char *sql, int nparams, const char *const *params);
/* A token of ours signed with the demo key the gateway runs with, for a
 * person, living from iat to exp (an expired one, or one whose jti Redis
 * never saw); type is an enum token_type. The caller frees. */
char *sign_own(const char *person, long long iat, long long exp, int type);
/* An RPGU token as a portal mints it: signed with the portals' key, the
 * patient named by polis and birthday, living until exp. The caller frees. */
char *portal_token(const char *key, const char *series, const char *number, const char *birthday,
                   long long exp);
/* A token from path (COD or RPGU) for an ЕНП and birthday; the caller frees. */
char *cod_token(const char *path, const char *enp, const char *birthday);

/* The n-th (0-based) cell of a resource at least 3 hours ahead that the
 * Internet may book: its day and time in the demo's zone (Europe/Moscow, as
 * booking bodies give them), its guid and its Redis lock key. */
struct test_cell {
    char day[11], time[6], guid[37], lockkey[128];
    const char *resource;
};
struct test_cell internet_cell(const char *resource, int n);

/* A free TCP port on the loopback (bound and released). */
int free_port(void);
/* Starts `mipgw serve` (MIPGW_TEST_BIN) on a free port, one worker, demo
 * mode, with the stores of the gateway under test and the given
 * "NAME=value" settings (NULL-terminated); its output goes to a log next to
 * the main gateway's. Waits until it is ready; returns the port. */
#define MAX_SPAWNED 4
int gw_spawn(const char *const *settings, pid_t *pid_out);
/* The same, waiting only until it answers (GET /health), not until its
 * stores are reachable. */
int gw_spawn_live(const char *const *settings, pid_t *pid_out);
/* SIGTERM, and the exit status (-1: it had to be killed, -2: by a signal). */
int gw_stop(pid_t pid);
/* A tcase's setup and teardown: forget, and SIGKILL, the gateways it started. */
void spawned_reset(void);
void spawned_kill_all(void);

/* tests/stallproxy between a client and the test Redis
 * (MIPGW_TEST_REDIS_PORT), listening on port (0: a free one); it dies with
 * the test process. control names its control file (stallproxy.c). */
struct redis_proxy {
    pid_t pid;
    int port;
    char *control;
};
struct redis_proxy redis_proxy_start(int port);
/* What the proxy does from now on: line ("" stalls everything), or NULL to
 * forward everything. */
void redis_proxy_control(const struct redis_proxy *p, const char *line);
void redis_proxy_stop(struct redis_proxy *p);

#endif
