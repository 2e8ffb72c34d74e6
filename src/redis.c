/* redis.c - see redis.h.
 *
 * hiredis 0.14 has no command timeouts of its own, and its
 * redisAsyncDisconnect waits for pending replies, which never come from a
 * hung server. So each command carries a libevent timer, and a missed
 * deadline frees the whole context: hiredis then calls every pending
 * callback with a NULL reply, and the connection is rebuilt with backoff. */
#include "redis.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define REDIS_BACKOFF_MIN_MS 100
#define REDIS_BACKOFF_MAX_MS 2000
/* Script calls kept for the connection's return (redis_eval_later); past
 * this many, the oldest is dropped, and past this age each is: what they
 * undo (a lock, a marker) has expired by itself by then. */
#define REDIS_LATER_MAX 1024
#define REDIS_LATER_MAX_AGE_US (600 * (int64_t)1000000)
/* A kept call that met a passing refusal (LOADING, BUSY...) while connected
 * is tried again after this long. */
#define REDIS_LATER_RETRY_MS 1000

/* States of the connection. */
enum redis_state {
    REDIS_DOWN,        /* no context; the retry timer is armed */
    REDIS_CONNECTING,  /* context created; the connect timer is armed */
    REDIS_UP,          /* connected (and authenticated, if a password is set) */
};

/* A script call waiting for the connection to come back (redis_eval_later). */
struct redis_later {
    struct redis_later *next;      /* in the list; unused while in flight */
    struct redis *r;
    int64_t until_us;              /* dropped when not done by then (monotonic) */
    struct redis_script *script;
    int nkeys, argc;
    char **argv;                   /* in the same allocation as this */
};

struct redis {
    struct event_base *base;
    const struct config *cfg;
    struct metrics *m;
    redisAsyncContext *ac;
    enum redis_state state;
    struct event *retry_timer;
    struct event *connect_timer;
    int backoff_ms;
    bool closing;      /* redis_free in progress: no reconnects */
    struct redis_later *later, **later_tail;  /* oldest first */
    int nlater;
    struct event *later_timer;     /* sends the kept calls again while connected */
};

/* One command in flight. Freed when hiredis hands it back, which it always
 * does: with the reply, or with NULL when the context goes away. */
struct redis_call {
    struct redis *r;
    redis_cb cb;
    void *arg;
    struct event timer;
    bool answered;           /* the caller has had its callback (maybe a timeout) */
    struct redis_script *script;
    int argc;                /* script calls keep their arguments for EVAL: */
    char **argv;             /* pointers, lengths and bytes in one block */
    size_t *lens;
};

static void redis_connect(struct redis *r);
static void redis_send_later(struct redis *r);
static void redis_on_later_timer(evutil_socket_t fd, short what, void *arg);

static void redis_schedule_retry(struct redis *r)
{
    if (r->closing)
        return;
    int ms = util_jitter_ms(r->backoff_ms);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(r->retry_timer, &tv);
    r->backoff_ms = r->backoff_ms * 2 > REDIS_BACKOFF_MAX_MS ? REDIS_BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void redis_set_down(struct redis *r)
{
    if (r->state == REDIS_UP)
        log_warn("redis: connection lost; reconnecting");
    r->state = REDIS_DOWN;
    METRIC_SET(r->m->redis_up, 0);
    evtimer_del(r->connect_timer);
}

/* Takes the context away (down, a retry scheduled) and returns it for the
 * caller to free. */
static redisAsyncContext *redis_detach(struct redis *r)
{
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    redis_set_down(r);
    redis_schedule_retry(r);
    return ac;
}

/* Drops the context now. Pending callbacks fire with NULL replies inside
 * redisAsyncFree; r->ac is cleared first so they see the connection gone. */
static void redis_reset(struct redis *r)
{
    redisAsyncContext *ac = redis_detach(r);
    if (ac)
        redisAsyncFree(ac);
}

static void redis_call_free(struct redis_call *c)
{
    evtimer_del(&c->timer);
    free(c->argv);
    free(c);
}

static void redis_deliver(struct redis_call *c, const redisReply *reply, enum store_status st)
{
    if (c->answered)
        return;
    c->answered = true;
    evtimer_del(&c->timer);
    if (st == STORE_ERROR)
        METRIC_INC(c->r->m->redis_errors);
    c->cb(reply, st, c->arg);
}

static void redis_on_reply(redisAsyncContext *ac, void *reply_, void *privdata)
{
    struct redis_call *c = privdata;
    redisReply *reply = reply_;
    (void)ac;

    if (!reply) {
        redis_deliver(c, NULL, STORE_DOWN);
        redis_call_free(c);
        return;
    }
    /* The server lost its scripts (restart, SCRIPT FLUSH): send the source. */
    if (reply->type == REDIS_REPLY_ERROR && c->script && !c->answered &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0 && c->r->ac) {
        const char *argv[c->argc];
        size_t lens[c->argc];
        argv[0] = "EVAL";
        lens[0] = 4;
        argv[1] = c->script->source;
        lens[1] = strlen(c->script->source);
        for (int i = 2; i < c->argc; i++) {
            argv[i] = c->argv[i];
            lens[i] = c->lens[i];
        }
        c->script = NULL;
        if (redisAsyncCommandArgv(c->r->ac, redis_on_reply, c, c->argc, argv, lens) == REDIS_OK)
            return;
        redis_deliver(c, NULL, STORE_DOWN);
        redis_call_free(c);
        return;
    }
    redis_deliver(c, reply, reply->type == REDIS_REPLY_ERROR ? STORE_ERROR : STORE_OK);
    redis_call_free(c);
}

static void redis_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct redis_call *c = arg;
    struct redis *r = c->r;
    (void)fd;
    (void)what;
    METRIC_INC(r->m->redis_timeouts);
    log_warn("redis: command missed its %d ms deadline; resetting the connection",
             r->cfg->redis_timeout_ms);
    /* A server that misses a deadline is treated as gone. The connection
     * is down before the caller hears of it, so that what the caller sends
     * next is refused (or kept for later), not queued on a context about to
     * be freed; the free then hands this call (and every other pending one)
     * back through redis_on_reply. */
    redisAsyncContext *ac = redis_detach(r);
    redis_deliver(c, NULL, STORE_TIMEOUT);
    if (ac)
        redisAsyncFree(ac);
}

/* Connected (and authenticated): commands are taken again, the kept ones
 * first, and the next loss starts from the shortest backoff. */
static void redis_set_up(struct redis *r)
{
    evtimer_del(r->connect_timer);
    log_info("redis: connected");
    r->state = REDIS_UP;
    r->backoff_ms = REDIS_BACKOFF_MIN_MS;
    METRIC_SET(r->m->redis_up, 1);
    redis_send_later(r);
}

static void redis_on_auth(const redisReply *reply, enum store_status st, void *arg)
{
    struct redis *r = arg;
    if (st != STORE_OK) {
        log_error("redis: AUTH failed: %s", reply && reply->str ? reply->str : store_status_name(st));
        if (r->ac)
            redis_reset(r);
        return;
    }
    redis_set_up(r);
}

static enum store_status redis_send(struct redis *r, struct redis_call *c, int argc,
                                    const char **argv, const size_t *lens)
{
    if (redisAsyncCommandArgv(r->ac, redis_on_reply, c, argc, argv, lens) != REDIS_OK) {
        redis_call_free(c);
        METRIC_INC(r->m->redis_unavailable);
        return STORE_DOWN;
    }
    struct timeval tv = {r->cfg->redis_timeout_ms / 1000, (r->cfg->redis_timeout_ms % 1000) * 1000};
    evtimer_add(&c->timer, &tv);
    return STORE_OK;
}

static struct redis_call *redis_call_new(struct redis *r, redis_cb cb, void *arg)
{
    struct redis_call *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    evtimer_assign(&c->timer, r->base, redis_on_timeout, c);
    return c;
}

static void redis_on_connect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    if (r->ac != ac)
        return;
    if (status != REDIS_OK) {
        evtimer_del(r->connect_timer);
        /* hiredis frees the context after this callback. */
        log_debug("redis: connect failed: %s", ac->errstr);
        r->ac = NULL;
        redis_set_down(r);
        redis_schedule_retry(r);
        return;
    }
    if (r->cfg->redis_password[0]) {
        /* Commands are refused until AUTH succeeds: the state stays
         * CONNECTING, and the connect timer stays armed (an AUTH that could
         * not even be sent resets the connection when it fires). */
        struct redis_call *c = redis_call_new(r, redis_on_auth, r);
        const char *argv[] = {"AUTH", r->cfg->redis_password};
        size_t lens[] = {4, strlen(r->cfg->redis_password)};
        redis_send(r, c, 2, argv, lens);
        return;
    }
    redis_set_up(r);
}

static void redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    (void)status;
    if (r->ac != ac)
        return;  /* we dropped it ourselves and have already rescheduled */
    r->ac = NULL;
    redis_set_down(r);
    redis_schedule_retry(r);
}

static void redis_on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct redis *r = arg;
    (void)fd;
    (void)what;
    log_debug("redis: connect timed out");
    redis_reset(r);
}

static void redis_on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    redis_connect(arg);
}

static void redis_connect(struct redis *r)
{
    redisAsyncContext *ac;
    if (r->cfg->redis_host[0] == '/')
        ac = redisAsyncConnectUnix(r->cfg->redis_host);
    else
        ac = redisAsyncConnect(r->cfg->redis_host, r->cfg->redis_port);
    if (!ac || ac->err) {
        log_debug("redis: cannot start connecting: %s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        redis_set_down(r);
        redis_schedule_retry(r);
        return;
    }
    ac->data = r;
    redisLibeventAttach(ac, r->base);
    redisAsyncSetConnectCallback(ac, redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, redis_on_disconnect);
    r->ac = ac;
    r->state = REDIS_CONNECTING;
    int ms = r->cfg->redis_connect_timeout_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(r->connect_timer, &tv);
}

struct redis *redis_new(struct event_base *base, const struct config *cfg, struct metrics *m)
{
    struct redis *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->base = base;
    r->cfg = cfg;
    r->m = m;
    r->backoff_ms = REDIS_BACKOFF_MIN_MS;
    r->later_tail = &r->later;
    r->retry_timer = evtimer_new(base, redis_on_retry, r);
    r->connect_timer = evtimer_new(base, redis_on_connect_timeout, r);
    r->later_timer = evtimer_new(base, redis_on_later_timer, r);
    redis_connect(r);
    return r;
}

void redis_free(struct redis *r)
{
    if (!r)
        return;
    r->closing = true;
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        redisAsyncFree(ac);
    }
    while (r->later) {
        struct redis_later *l = r->later;
        r->later = l->next;
        free(l);
    }
    event_free(r->retry_timer);
    event_free(r->connect_timer);
    event_free(r->later_timer);
    free(r);
}

bool redis_is_up(const struct redis *r)
{
    return r->state == REDIS_UP && r->ac;
}

enum store_status redis_command(struct redis *r, redis_cb cb, void *arg, int argc,
                                const char **argv, const size_t *lens)
{
    if (!redis_is_up(r)) {
        METRIC_INC(r->m->redis_unavailable);
        return STORE_DOWN;
    }
    return redis_send(r, redis_call_new(r, cb, arg), argc, argv, lens);
}

enum store_status redis_commandv(struct redis *r, redis_cb cb, void *arg, int argc, const char **argv)
{
    size_t lens[argc];
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    return redis_command(r, cb, arg, argc, argv, lens);
}

void redis_script_init(struct redis_script *s)
{
    unsigned char md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)s->source, strlen(s->source), md);
    util_hex(md, sizeof(md), s->sha1);
}

/* Copies argc strings into one block after `room` bytes of the caller's:
 * the pointers, their lengths (lens_out, may be NULL) and the bytes. The
 * caller frees the block (the returned pointer minus room). */
static char **args_copy(size_t room, int argc, const char *const *argv, size_t **lens_out)
{
    size_t n = (size_t)argc, bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(argv[i]) + 1;
    char *block = malloc(room + n * (sizeof(char *) + sizeof(size_t)) + bytes);
    if (!block)
        abort();
    char **out = (char **)(block + room);
    size_t *lens = (size_t *)(block + room + n * sizeof(char *));
    char *p = block + room + n * (sizeof(char *) + sizeof(size_t));
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(argv[i]);
        memcpy(p, argv[i], len + 1);
        out[i] = p;
        lens[i] = len;
        p += len + 1;
    }
    if (lens_out)
        *lens_out = lens;
    return out;
}

enum store_status redis_eval(struct redis *r, struct redis_script *s, redis_cb cb, void *arg,
                             int nkeys, int argc, const char **argv)
{
    if (!redis_is_up(r)) {
        METRIC_INC(r->m->redis_unavailable);
        return STORE_DOWN;
    }
    /* EVALSHA sha nkeys args...; the copies stay with the call for a
     * NOSCRIPT retry, all in one allocation. */
    struct redis_call *c = redis_call_new(r, cb, arg);
    c->script = s;
    c->argc = argc + 3;
    char nk[16];
    snprintf(nk, sizeof(nk), "%d", nkeys);
    const char *all[c->argc];
    all[0] = "EVALSHA";
    all[1] = s->sha1;
    all[2] = nk;
    for (int i = 0; i < argc; i++)
        all[i + 3] = argv[i];
    c->argv = args_copy(0, c->argc, all, &c->lens);
    return redis_send(r, c, c->argc, (const char **)c->argv, c->lens);
}

/* Takes the oldest kept call off the list (there is one). */
static struct redis_later *later_pop(struct redis *r)
{
    struct redis_later *l = r->later;
    r->later = l->next;
    if (!r->later)
        r->later_tail = &r->later;
    r->nlater--;
    return l;
}

/* Puts a kept call at the end of the list, dropping the oldest past
 * REDIS_LATER_MAX, or this one past its age. */
static void later_append(struct redis *r, struct redis_later *l)
{
    if (util_mono_us() > l->until_us) {
        log_warn("redis: a script kept for Redis's return is dropped after %lld s",
                 (long long)(REDIS_LATER_MAX_AGE_US / 1000000));
        free(l);
        return;
    }
    if (r->nlater >= REDIS_LATER_MAX) {
        free(later_pop(r));
        log_warn("redis: more than %d scripts kept for Redis's return; the oldest is dropped",
                 REDIS_LATER_MAX);
    }
    l->next = NULL;
    *r->later_tail = l;
    r->later_tail = &l->next;
    r->nlater++;
}

static void later_on_reply(const redisReply *reply, enum store_status st, void *arg);

/* Sends a kept call; it stays kept (in flight) until Redis answers it. */
static bool later_send(struct redis *r, struct redis_later *l)
{
    if (redis_eval(r, l->script, later_on_reply, l, l->nkeys, l->argc, (const char **)l->argv) == STORE_OK)
        return true;
    later_append(r, l);
    return false;
}

/* An error reply that says "not now" (a server loading its data, busy
 * with a script, or a replica in a failover), not "never". */
static bool error_passes(const redisReply *reply)
{
    static const char *const passing[] = {"LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN"};
    if (!reply || !reply->str)
        return false;
    for (size_t i = 0; i < sizeof(passing) / sizeof(passing[0]); i++)
        if (strncmp(reply->str, passing[i], strlen(passing[i])) == 0)
            return true;
    return false;
}

/* Answered: done (an error that will not pass would come again). No answer
 * (a deadline missed, the connection lost), or a refusal that passes: kept
 * again, as the scripts kept are right however often they run; sent on the
 * next connection, or after REDIS_LATER_RETRY_MS on this one. */
static void later_on_reply(const redisReply *reply, enum store_status st, void *arg)
{
    struct redis_later *l = arg;
    struct redis *r = l->r;
    bool again = st == STORE_TIMEOUT || st == STORE_DOWN || (st == STORE_ERROR && error_passes(reply));
    if (!again || r->closing) {
        if (st == STORE_ERROR)
            log_warn("redis: a kept script failed: %s", reply && reply->str ? reply->str : "?");
        free(l);
        return;
    }
    later_append(r, l);
    if (redis_is_up(r) && !evtimer_pending(r->later_timer, NULL)) {
        struct timeval tv = {REDIS_LATER_RETRY_MS / 1000, (REDIS_LATER_RETRY_MS % 1000) * 1000};
        evtimer_add(r->later_timer, &tv);
    }
}

static void redis_on_later_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    redis_send_later(arg);
}

void redis_eval_later(struct redis *r, struct redis_script *s, int nkeys, int argc, const char **argv)
{
    char **args = args_copy(sizeof(struct redis_later), argc, argv, NULL);
    struct redis_later *l = (struct redis_later *)((char *)args - sizeof(struct redis_later));
    *l = (struct redis_later){.r = r, .until_us = util_mono_us() + REDIS_LATER_MAX_AGE_US, .script = s,
                              .nkeys = nkeys, .argc = argc, .argv = args};
    (void)later_send(r, l);
}

/* The connection is up: the kept scripts go first, oldest first. */
static void redis_send_later(struct redis *r)
{
    /* Each kept call once at most: one that cannot be sent goes back to
     * the end of the list and stops the round (the connection is going). */
    int64_t now = util_mono_us();
    for (int n = r->nlater; n > 0 && r->later && redis_is_up(r); n--) {
        struct redis_later *l = later_pop(r);
        if (now > l->until_us) {
            free(l);  /* what it undoes has expired by itself */
            continue;
        }
        if (!later_send(r, l))
            break;
    }
}
