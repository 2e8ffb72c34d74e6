/* check_e2e_redis.c - the Redis client (src/redis.c) when Redis misses a
 * deadline or comes back, against the test Redis through tests/stallproxy:
 *   - the client itself, driven from this process on an event loop of its
 *     own (redis_new and the calls of redis.h, real hiredis, real sockets),
 *     where a callback can do what a caller does and record what it saw;
 *   - a gateway of the test's own behind the same kind of proxy, over HTTP.
 * Run by tests/e2e.sh after the main suites (see check_e2e.c for the
 * environment). The client's keys start with "redis-test:" and the process
 * id. The gateway test starts, as the booking suites do, with no active
 * booking and no cell key, and books a cell no other suite uses. */
#include <arpa/inet.h>
#include <check.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "config.h"
#include "e2e_util.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"

#define LPU_470102 "c3c977af-c3b4-4517-9d57-50a6844ec660"      /* ГП №1 */
#define RES_THERAPIST2 "a03d307d-6721-4f17-8bef-5261fde7cc69"  /* Кузнецова, 470102 */
#define CELL_OFFSET 120  /* the other suites book this resource's first 80 or so */

/* The monotonic clock as the library sees it: util_mono_us is wrapped at
 * link time (Makefile.am), so that a kept script can be made ten minutes
 * old without waiting for them. Only src/ calls it; libevent's timers, the
 * sockets and Redis keep the real clock. */
int64_t __real_util_mono_us(void);
int64_t __wrap_util_mono_us(void);
static int64_t clock_ahead_us;

int64_t __wrap_util_mono_us(void)
{
    return __real_util_mono_us() + clock_ahead_us;
}

/* ------------------------------------------------------------------ */
/* the client in this process (behind redis_proxy_start's proxy) */

#define DEADLINE_MS 300

struct client {
    struct event_base *base;
    struct config cfg;
    struct metrics m;
    struct redis *r;
};

/* A client of Redis on port (a proxy's), with a short deadline; it starts
 * connecting when the loop runs. */
static struct client *client_open(int port)
{
    struct client *c = calloc(1, sizeof(*c));
    ck_assert_ptr_nonnull(c);
    config_defaults(&c->cfg);
    snprintf(c->cfg.redis_host, sizeof(c->cfg.redis_host), "127.0.0.1");
    c->cfg.redis_port = port;
    c->cfg.redis_timeout_ms = DEADLINE_MS;
    c->cfg.redis_connect_timeout_ms = 1000;
    log_open(NULL, LOG_WARN, 0);  /* the client's warnings to the test's output */
    c->base = event_base_new();
    ck_assert_ptr_nonnull(c->base);
    c->r = redis_new(c->base, &c->cfg, &c->m);
    return c;
}

static void client_close(struct client *c)
{
    redis_free(c->r);
    event_base_free(c->base);
    free(c);
}

/* Runs the client's loop, 20 ms at a time, until done(arg) or ms have
 * passed; whether done came. */
static bool run_until(struct client *c, bool (*done)(void *arg), void *arg, int ms)
{
    double t0 = mono_ms();
    while (!done(arg)) {
        if (mono_ms() - t0 > ms)
            return false;
        struct timeval tick = {0, 20000};
        event_base_loopexit(c->base, &tick);
        event_base_dispatch(c->base);
    }
    return true;
}

static bool is_up(void *arg)
{
    return redis_is_up(((struct client *)arg)->r);
}

/* What a caller saw when told of the missed deadline, and what became of
 * the command it sent from inside that callback. */
struct seen {
    struct client *c;
    char *key;                /* incremented by the kept script */
    int calls;                /* times the first command's callback came */
    enum store_status st;
    bool up_in_cb;            /* redis_is_up() inside the callback */
    enum store_status next;   /* what redis_commandv answered there */
    int next_calls;           /* times the next command's callback came */
    enum store_status next_st;
};

static bool heard(void *arg)
{
    return ((struct seen *)arg)->calls > 0;
}

static void on_next(const redisReply *reply, enum store_status st, void *arg)
{
    struct seen *s = arg;
    (void)reply;
    s->next_calls++;
    s->next_st = st;
}

/* INCR KEYS[1]: a script that is right however often it runs would be a
 * compare-and-delete; a count shows how often this one ran. */
static struct redis_script incr_script = {"return redis.call('INCR', KEYS[1])\n", ""};

/* The caller of a command that missed its deadline, as a booking's is: it
 * sends its next command from the callback, and keeps a script for
 * Redis's return. */
static void on_first(const redisReply *reply, enum store_status st, void *arg)
{
    struct seen *s = arg;
    (void)reply;
    s->calls++;
    s->st = st;
    s->up_in_cb = redis_is_up(s->c->r);
    const char *ping[] = {"PING"};
    s->next = redis_commandv(s->c->r, on_next, s, 1, ping);
    const char *keys[] = {s->key};
    redis_eval_later(s->c->r, &incr_script, 1, 1, keys);
}

/* The count of the kept script's key (INCRBY 0 answers 0 for none). */
static long kept_runs(const char *key)
{
    char *args = xasprintf("INCRBY '%s' 0", key);
    long n = redis_long(args);
    free(args);
    return n;
}

struct runs {
    const char *key;
    long want;
};

static bool runs_reached(void *arg)
{
    struct runs *w = arg;
    return kept_runs(w->key) >= w->want;
}

/* A command that misses its deadline takes the connection down before its
 * caller hears of it: inside the callback the client is no longer up, and
 * a command sent there is refused at once (STORE_DOWN, and no callback),
 * not queued on the hiredis context that is freed as soon as the callback
 * returns. The script the caller keeps there runs once Redis answers
 * again, exactly once. Without the fix (the caller told first, the
 * connection reset after) the callback saw the client up and its PING was
 * accepted onto the dying context, to fail there a moment later. */
START_TEST(test_timeout_told_with_connection_down)
{
    redis_script_init(&incr_script);
    struct redis_proxy p = redis_proxy_start(0);
    struct client *c = client_open(p.port);
    ck_assert_msg(run_until(c, is_up, c, 5000), "the client did not connect through the proxy in 5 s");
    struct seen s = {.c = c, .key = xasprintf("redis-test:%d:kept", (int)getpid())};
    char *del = xasprintf("DEL '%s'", s.key);
    redis_cli(del);

    redis_proxy_control(&p, "");  /* nothing goes through: the GET gets no answer */
    const char *get[] = {"GET", s.key};
    ck_assert_int_eq(redis_commandv(c->r, on_first, &s, 2, get), STORE_OK);
    ck_assert_msg(run_until(c, heard, &s, 5 * DEADLINE_MS), "no callback within %d ms",
                  5 * DEADLINE_MS);
    redis_proxy_control(&p, NULL);

    ck_assert_int_eq(s.calls, 1);
    ck_assert_msg(s.st == STORE_TIMEOUT, "the GET ended %s, not timeout", store_status_name(s.st));
    ck_assert_msg(!s.up_in_cb, "the caller heard of the timeout while the connection still counted as up");
    ck_assert_msg(s.next == STORE_DOWN,
                  "a command sent from the timeout's callback was %s, not refused at once (STORE_DOWN)",
                  store_status_name(s.next));
    /* Back up: the kept script runs, once; a refused command has no callback. */
    struct runs once = {s.key, 1};
    ck_assert_msg(run_until(c, runs_reached, &once, 5000), "the kept script did not run within 5 s");
    ck_assert_msg(run_until(c, is_up, c, 1000), "the client is not up again");
    struct runs twice = {s.key, 2};
    ck_assert_msg(!run_until(c, runs_reached, &twice, 500), "the kept script ran twice");
    ck_assert_msg(s.next_calls == 0, "the refused PING was called back too (%s)", store_status_name(s.next_st));

    client_close(c);
    redis_cli(del);
    redis_proxy_stop(&p);
    free(del), free(s.key);
}
END_TEST

/* Scripts kept while Redis is away are sent first once it is back, in a
 * round that drops, unsent, those kept longer than ten minutes: what they
 * undo (a lock, a marker) has expired by itself, and a compare-and-delete
 * sent that late could delete what a later holder set. Here the client
 * has never reached Redis (nothing listens on its port yet); one script is
 * kept, the clock goes ten minutes and one second on, a second script is
 * kept, and then the proxy starts on that port. The second runs (so the
 * round did come); the first must not. Without the fix the round sent
 * every kept script, however old (the age was looked at only when a script
 * was kept again after a failure). */
START_TEST(test_round_drops_scripts_past_their_age)
{
    redis_script_init(&incr_script);
    int port = free_port();
    struct client *c = client_open(port);
    char *old = xasprintf("redis-test:%d:old", (int)getpid());
    char *fresh = xasprintf("redis-test:%d:fresh", (int)getpid());
    char *del = xasprintf("DEL '%s' '%s'", old, fresh);
    redis_cli(del);

    const char *k1[] = {old};
    redis_eval_later(c->r, &incr_script, 1, 1, k1);
    ck_assert_msg(c->m.redis_unavailable == 1, "the script was not kept: the client had no Redis");
    clock_ahead_us = 601 * (int64_t)1000000;
    const char *k2[] = {fresh};
    redis_eval_later(c->r, &incr_script, 1, 1, k2);

    struct redis_proxy p = redis_proxy_start(port);
    ck_assert_msg(run_until(c, is_up, c, 5000), "the client did not connect within 5 s of the proxy");
    /* Both went in one round, the old one first, on one connection: once
     * the fresh one has run, the old one has run too if it was sent. */
    struct runs ran = {fresh, 1};
    ck_assert_msg(run_until(c, runs_reached, &ran, 5000), "the fresh kept script did not run within 5 s");
    ck_assert_msg(kept_runs(old) == 0, "a script kept for more than ten minutes was sent when Redis came back");

    client_close(c);
    clock_ahead_us = 0;
    redis_cli(del);
    redis_proxy_stop(&p);
    free(del), free(old), free(fresh);
}
END_TEST

/* ------------------------------------------------------------------ */
/* a gateway behind the proxy */

/* Books the cell on the gateway on port; its Entry_id (the caller frees). */
static char *book(int port, const char *token, const struct test_cell *w)
{
    char *auth = xasprintf("Authorization: Bearer %s", token);
    char *body = xasprintf("{\"lpu_code\":\"470102\",\"doctor_id\":\"%s%s\",\"day\":\"%s\",\"time\":\"%s\"}",
                           LPU_470102, w->resource, w->day, w->time);
    const char *h[] = {"Content-Type: application/json", auth, NULL};
    struct http_resp *r = http_request_at(port, "POST", "/api/v2/iemk/doctors/entry", h, body);
    ck_assert_msg(r->status == 200, "entry: %d %s", r->status, show(r));
    yajl_val v = jbody(r, "entry");
    const char *id = jstr(v, "Entry_id");
    ck_assert_ptr_nonnull(id);
    char *out = strdup(id);
    yajl_tree_free(v);
    http_free(r);
    free(auth), free(body);
    return out;
}

static int cancel_status(int port, const char *token, const char *visit)
{
    char *auth = xasprintf("Authorization: Bearer %s", token);
    char *path = xasprintf("/api/v2/iemk/doctors/visit/%s", visit);
    const char *h[] = {auth, NULL};
    struct http_resp *r = http_request_at(port, "DELETE", path, h, NULL);
    int st = r->status;
    http_free(r);
    free(auth), free(path);
    return st;
}

/* Whether key is in Redis (1 or 0), once that is want or after ms. */
static long key_within(const char *key, long want, int ms)
{
    char *args = xasprintf("EXISTS '%s'", key);
    long got = redis_long(args);
    for (int waited = 0; waited < ms && got != want; waited += 50) {
        sleep_ms(50);
        got = redis_long(args);
    }
    free(args);
    return got;
}

/* No active booking and no cell key, as the booking suites start: the
 * patient may book the resource's speciality once only. */
static void bookings_clean(void)
{
    PQclear(pg_exec("UPDATE bookings SET status = 'cancelled' WHERE status <> 'cancelled'", 0, NULL));
    redis_cli("EVAL \"for _, k in ipairs(redis.call('KEYS', 'cell:*')) do redis.call('DEL', k) end\" 0");
}

/* test_timeout_told_with_connection_down at a gateway: a cancellation
 * whose script misses its deadline (the proxy drops it) keeps the script
 * from inside the timeout's callback. With the connection already down
 * the keeping refuses the send, which the gateway counts
 * (mipgw_redis_unavailable_total), and the marker goes once Redis is
 * back. Without the fix the send was accepted onto the connection about
 * to be freed, counted nowhere, and failed inside the free: the marker
 * still went, so the count is what tells the two apart. */
START_TEST(test_gateway_keeps_script_refused_after_timeout)
{
    bookings_clean();
    char *tok = cod_token("/auth/rpgu/token", "5000000000000041", "1985-03-14");  /* Иванов */
    struct test_cell w = internet_cell(RES_THERAPIST2, CELL_OFFSET);
    char *marker = xasprintf("cell:booked:%s", w.lockkey + strlen("cell:lock:"));
    struct redis_proxy p = redis_proxy_start(0);
    char *via = xasprintf("MIPGW_REDIS_PORT=%d", p.port);
    const char *settings[] = {via, "MIPGW_REDIS_TIMEOUT_MS=300", NULL};
    pid_t gw;
    int port = gw_spawn(settings, &gw);
    ck_assert_msg(ready_streak(port, 200, 3, 15000) >= 0, "the gateway behind the proxy is not ready");

    char *visit = book(port, tok, &w);
    ck_assert_msg(key_within(marker, 1, 3000) == 1, "no marker for the booked cell");
    double timeouts = metric_at(port, "mipgw_redis_timeouts_total");
    double refused = metric_at(port, "mipgw_redis_unavailable_total");
    /* The cancellation's script goes with seven arguments; nothing else
     * sent meanwhile has as many (its session is read by GET). */
    redis_proxy_control(&p, "drop *7\\r\\n$");
    ck_assert_int_eq(cancel_status(port, tok, visit), 200);
    redis_proxy_control(&p, NULL);
    ck_assert_double_ge(metric_at(port, "mipgw_redis_timeouts_total"), timeouts + 1);
    ck_assert_msg(metric_at(port, "mipgw_redis_unavailable_total") >= refused + 1,
                  "the script kept from the timeout's callback was not refused: it was accepted "
                  "onto the connection being torn down");
    ck_assert_msg(key_within(marker, 0, 3000) == 0, "the marker is still there 3 s after Redis came back");

    ck_assert_msg(gw_stop(gw) == 0, "the gateway behind the proxy did not exit 0 on SIGTERM");
    redis_proxy_stop(&p);
    free(visit), free(via), free(marker), free(tok);
}
END_TEST

static Suite *redis_suite(void)
{
    Suite *s = suite_create("e2e_redis");
    TCase *client = tcase_create("client");
    tcase_set_timeout(client, 30);
    tcase_add_test(client, test_timeout_told_with_connection_down);
    tcase_add_test(client, test_round_drops_scripts_past_their_age);
    suite_add_tcase(s, client);
    TCase *gateway = tcase_create("gateway");
    tcase_set_timeout(gateway, 30);
    tcase_add_checked_fixture(gateway, spawned_reset, spawned_kill_all);
    tcase_add_test(gateway, test_gateway_keeps_script_refused_after_timeout);
    suite_add_tcase(s, gateway);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(redis_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
