/* pg.c - see pg.h. */
#include "pg.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#define PG_BACKOFF_MIN_MS 100
#define PG_BACKOFF_MAX_MS 3000
#define PG_MAX_PARAMS 16
#define PG_BATCH_MAX 256     /* pg.batch_max's upper bound */

/* States of one pool connection. */
enum pgc_state {
    PGC_DOWN,        /* no connection; the timer is the retry */
    PGC_CONNECTING,  /* PQconnectPoll in progress; the timer is the deadline */
    PGC_PREPARING,   /* preparing statement prep_next; the timer is the deadline */
    PGC_IDLE,        /* ready for a query */
    PGC_BUSY,        /* running q (and its peers); each one's own timer is its deadline */
};

struct pg_query {
    TAILQ_ENTRY(pg_query) link;
    struct pg_pool *pool;
    enum stmt_id stmt;
    pg_cb cb;
    void *arg;
    struct event timer;
    struct pg_conn *conn;    /* set while running */
    struct pg_query *peer;   /* the next call of the batch this one runs in */
    bool solo;               /* its batch failed: it runs alone */
    int nvalues;
    char *values[PG_MAX_PARAMS];
    long long deadline_ms;   /* monotonic; the timer fires then */
    enum store_status deferred;  /* outcome to hand over from the event loop */
};

struct pg_conn {
    struct pg_pool *pool;
    int idx;
    PGconn *conn;
    enum pgc_state state;
    struct event io;
    bool io_set;
    struct event timer;
    int prep_next;
    bool want_write;         /* output not yet flushed */
    struct pg_query *q;      /* the running call, the first of its batch */
    PGresult *res;           /* first result of the running command */
    int backoff_ms;
};

TAILQ_HEAD(pg_queue, pg_query);

struct pg_pool {
    struct event_base *base;
    const struct config *cfg;
    struct metrics *m;
    int nconns;
    struct pg_conn *conns;
    struct pg_queue queue;
    struct pg_queue deferred; /* calls whose outcome waits for the loop (pg_finish_later) */
    int queued;
    int queued_batch;        /* ... of them calls of batchable statements */
    int up;
    int batch_busy[STMT__COUNT]; /* connections running each batchable statement */
    int batch_conns;         /* ... at most this many each (pg.batch_conns) */
    struct event *fail_ev;   /* fails queued queries when the last connection goes */
    struct event *dispatch_ev; /* sends queued calls, from the loop (a connection freed) */
    bool closing;
    bool in_submit;          /* inside pg_query: outcomes must wait for the loop */
};

static void pg_conn_start(struct pg_conn *c);
static void pg_conn_io(evutil_socket_t fd, short what, void *arg);
static void pg_dispatch(struct pg_pool *p);

const char *store_status_name(enum store_status s)
{
    switch (s) {
    case STORE_OK: return "ok";
    case STORE_ERROR: return "error";
    case STORE_TIMEOUT: return "timeout";
    case STORE_DOWN: return "down";
    case STORE_BUSY: return "busy";
    }
    return "?";
}

const char *pg_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

static void pg_gauges(struct pg_pool *p)
{
    int busy = 0;
    for (int i = 0; i < p->nconns; i++)
        busy += p->conns[i].state == PGC_BUSY;
    METRIC_SET(p->m->pg_conns_up, p->up);
    METRIC_SET(p->m->pg_busy, busy);
    METRIC_SET(p->m->pg_queued, p->queued);
}

static long long pg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The queue's two counts move together: look-ups and batchable calls each
 * have pg.queue_max places, so that a backlog of bookings or uploads behind
 * a stuck batch connection never turns the look-ups away. */
static void pg_queue_counts(struct pg_pool *p, const struct pg_query *q, int d)
{
    p->queued += d;
    if (pg_stmts[q->stmt].batch)
        p->queued_batch += d;
}

static void pg_unqueue(struct pg_pool *p, struct pg_query *q)
{
    TAILQ_REMOVE(&p->queue, q, link);
    pg_queue_counts(p, q, -1);
}

static void pg_query_free(struct pg_query *q)
{
    evtimer_del(&q->timer);
    for (int i = 0; i < q->nvalues; i++)
        free(q->values[i]);
    free(q);
}

static void pg_finish(struct pg_query *q, PGresult *res, enum store_status st);

static void pg_deferred_finish(evutil_socket_t fd, short what, void *arg)
{
    struct pg_query *q = arg;
    (void)fd;
    (void)what;
    TAILQ_REMOVE(&q->pool->deferred, q, link);
    pg_finish(q, NULL, q->deferred);
}

/* Hands q its outcome (with no result) from the event loop. Until then it
 * is on the pool's deferred list (out of the queue, off any connection), so
 * that a pool freed first still answers it. */
static void pg_finish_later(struct pg_query *q, enum store_status st)
{
    evtimer_del(&q->timer);
    q->deferred = st;
    TAILQ_INSERT_TAIL(&q->pool->deferred, q, link);
    evtimer_assign(&q->timer, q->pool->base, pg_deferred_finish, q);
    event_active(&q->timer, EV_TIMEOUT, 0);
}

/* Hands a query its outcome and frees it. Never inside pg_query: a caller
 * must not see its callback before pg_query has returned. */
static void pg_finish(struct pg_query *q, PGresult *res, enum store_status st)
{
    struct pg_pool *p = q->pool;
    if (p->in_submit) {
        pg_finish_later(q, st);
        return;
    }
    /* Every call's outcome is counted here, once (a deferred one when it
     * is finally handed over). */
    if (st == STORE_TIMEOUT)
        METRIC_INC(p->m->pg_timeouts);
    else if (st == STORE_DOWN)
        METRIC_INC(p->m->pg_unavailable);
    if (st == STORE_ERROR) {
        METRIC_INC(p->m->pg_errors);
        /* The primary message only: DETAIL repeats key values ("Key
         * (snils)=(...)"), which must not reach a log. */
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        log_warn("pg: %s failed: %s %s", pg_stmts[q->stmt].name, pg_sqlstate(res), msg ? msg : "");
    }
    pg_cb cb = q->cb;
    void *arg = q->arg;
    pg_query_free(q);
    cb(res, st, arg);
}

/* Detaches the connection's running call (and its batch). */
static struct pg_query *pg_conn_take(struct pg_conn *c)
{
    struct pg_query *q = c->q;
    c->q = NULL;
    if (q && pg_stmts[q->stmt].batch)
        c->pool->batch_busy[q->stmt]--;
    return q;
}

/* Hands every call of a batch the same outcome. */
static void pg_finish_all(struct pg_query *q, PGresult *res, enum store_status st)
{
    while (q) {
        struct pg_query *next = q->peer;
        q->peer = NULL;
        pg_finish(q, res, st);
        q = next;
    }
}

/* Puts a batch's calls back at the head of the queue, in their order. */
static void pg_requeue(struct pg_pool *p, struct pg_query *q, bool solo)
{
    struct pg_query *after = NULL;
    while (q) {
        struct pg_query *next = q->peer;
        q->peer = NULL;
        q->conn = NULL;
        q->solo = q->solo || solo;
        if (after)
            TAILQ_INSERT_AFTER(&p->queue, after, q, link);
        else
            TAILQ_INSERT_HEAD(&p->queue, q, link);
        after = q;
        pg_queue_counts(p, q, 1);
        q = next;
    }
}

/* Row `row` of res as a result of its own, for one call of a batch. */
static PGresult *pg_result_row(const PGresult *res, int row)
{
    PGresult *one = PQcopyResult(res, PG_COPYRES_ATTRS);
    if (!one)
        abort();
    for (int col = 0; col < PQnfields(res); col++) {
        int len = PQgetisnull(res, row, col) ? -1 : PQgetlength(res, row, col);
        if (!PQsetvalue(one, 0, col, PQgetvalue(res, row, col), len))
            abort();
    }
    return one;
}

/* A command's result reaches its call, or each call of its batch its own
 * row. A batch that failed is not the calls' fault, as far as anyone can
 * tell: one bad call (a unique violation) rolled back the others, so each
 * runs again alone and gets its own outcome. */
static void pg_deliver(struct pg_pool *p, struct pg_query *q, PGresult *res, bool ok)
{
    if (!q->peer) {
        pg_finish(q, res, ok ? STORE_OK : STORE_ERROR);
        return;
    }
    int n = 0;
    for (struct pg_query *m = q; m; m = m->peer)
        n++;
    if (!ok) {
        METRIC_INC(p->m->pg_batch_retries);
        log_info("pg: a batch of %d %s calls failed (%s); running them one by one", n,
                 pg_stmts[q->stmt].name, pg_sqlstate(res));
        pg_requeue(p, q, true);
        return;
    }
    if (PQntuples(res) != n) {
        /* Committed, so not to be run again: no call learns its answer
         * (an error whose result has no SQLSTATE). */
        log_error("pg: %s answered %d rows for a batch of %d", pg_stmts[q->stmt].name,
                  PQntuples(res), n);
        pg_finish_all(q, res, STORE_ERROR);
        return;
    }
    for (int row = 0; q; row++) {
        struct pg_query *next = q->peer;
        q->peer = NULL;
        PGresult *one = pg_result_row(res, row);
        pg_finish(q, one, STORE_OK);
        PQclear(one);
        q = next;
    }
}

static void pg_set_io(struct pg_conn *c, short what)
{
    if (c->io_set)
        event_del(&c->io);
    event_assign(&c->io, c->pool->base, PQsocket(c->conn), what | EV_PERSIST, pg_conn_io, c);
    event_add(&c->io, NULL);
    c->io_set = true;
}

static void pg_arm_timer(struct pg_conn *c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(&c->timer, &tv);
}

/* Closes the connection, hands a running query STORE_DOWN (its outcome is
 * unknown to us) and schedules a reconnect. */
static void pg_conn_reset(struct pg_conn *c, const char *why)
{
    struct pg_pool *p = c->pool;
    bool was_up = c->state == PGC_IDLE || c->state == PGC_BUSY;
    if (was_up) {
        p->up--;
        if (p->closing)
            log_debug("pg: connection %d closed", c->idx);
        else
            log_warn("pg: connection %d lost (%s); reconnecting", c->idx, why);
    } else {
        log_debug("pg: connection %d not established (%s)", c->idx, why);
    }
    if (c->io_set) {
        event_del(&c->io);
        c->io_set = false;
    }
    evtimer_del(&c->timer);
    if (c->res) {
        PQclear(c->res);
        c->res = NULL;
    }
    if (c->conn) {
        PQfinish(c->conn);
        c->conn = NULL;
    }
    c->state = PGC_DOWN;
    c->want_write = false;
    struct pg_query *q = pg_conn_take(c);
    if (!p->closing) {
        pg_arm_timer(c, util_jitter_ms(c->backoff_ms));
        c->backoff_ms = c->backoff_ms * 2 > PG_BACKOFF_MAX_MS ? PG_BACKOFF_MAX_MS : c->backoff_ms * 2;
    }
    if (p->up == 0 && p->queued > 0)
        event_active(p->fail_ev, 0, 0);
    else if (p->queued > 0 && !p->closing)
        event_active(p->dispatch_ev, 0, 0); /* a batch slot may be free again */
    pg_gauges(p);
    pg_finish_all(q, NULL, STORE_DOWN);
}

static void pg_flush(struct pg_conn *c)
{
    int r = PQflush(c->conn);
    if (r < 0) {
        pg_conn_reset(c, PQerrorMessage(c->conn));
        return;
    }
    bool want = r == 1;
    if (want != c->want_write) {
        c->want_write = want;
        pg_set_io(c, want ? EV_READ | EV_WRITE : EV_READ);
    }
}

static void pg_prepare_next(struct pg_conn *c)
{
    if (c->prep_next >= STMT__COUNT) {
        evtimer_del(&c->timer);
        c->state = PGC_IDLE;
        c->backoff_ms = PG_BACKOFF_MIN_MS;
        c->pool->up++;
        log_info("pg: connection %d ready", c->idx);
        pg_gauges(c->pool);
        pg_dispatch(c->pool);
        return;
    }
    const struct pg_stmt *s = &pg_stmts[c->prep_next];
    if (!PQsendPrepare(c->conn, s->name, s->sql, s->nparams, NULL)) {
        pg_conn_reset(c, PQerrorMessage(c->conn));
        return;
    }
    pg_flush(c);
}

static bool pg_result_ok(const PGresult *res)
{
    ExecStatusType est = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    return est == PGRES_TUPLES_OK || est == PGRES_COMMAND_OK;
}

/* A command's results are complete: deliver them. */
static void pg_command_done(struct pg_conn *c)
{
    PGresult *res = c->res;
    c->res = NULL;
    bool ok = pg_result_ok(res);

    if (c->state == PGC_PREPARING) {
        if (!ok) {
            const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
            log_error("pg: cannot prepare %s: %s", pg_stmts[c->prep_next].name,
                      msg ? msg : "no result");
            PQclear(res);
            pg_conn_reset(c, "prepare failed (is the schema migrated?)");
            return;
        }
        PQclear(res);
        c->prep_next++;
        pg_prepare_next(c);
        return;
    }

    struct pg_query *q = pg_conn_take(c);
    c->state = PGC_IDLE;
    pg_gauges(c->pool);
    if (q)
        pg_deliver(c->pool, q, res, ok);
    PQclear(res);
    pg_dispatch(c->pool);
}

static void pg_read(struct pg_conn *c)
{
    if (!PQconsumeInput(c->conn) || PQstatus(c->conn) == CONNECTION_BAD) {
        /* Not PQerrorMessage: libpq 15 keeps every server error of the
         * last command in it, DETAIL and its key values included, until
         * the next command is sent. */
        pg_conn_reset(c, "the connection failed while reading");
        return;
    }
    /* An idle connection has nothing to read but the server's goodbye (an
     * administrator's shutdown, an idle timeout): it is gone. */
    if (c->state == PGC_IDLE) {
        pg_conn_reset(c, "server closed the idle connection");
        return;
    }
    while (c->conn && !PQisBusy(c->conn)) {
        PGresult *res = PQgetResult(c->conn);
        if (!res) {
            pg_command_done(c);
            return;
        }
        /* The first result, unless a later one is an error: the implicit
         * commit comes after the rows (a deferred constraint, a
         * serialization failure), and a transaction that rolled back there
         * must not answer its rows. */
        if (!c->res) {
            c->res = res;
        } else if (pg_result_ok(c->res) && !pg_result_ok(res)) {
            PQclear(c->res);
            c->res = res;
        } else {
            PQclear(res);
        }
    }
}

static void pg_connect_poll(struct pg_conn *c)
{
    switch (PQconnectPoll(c->conn)) {
    case PGRES_POLLING_READING:
        pg_set_io(c, EV_READ);
        return;
    case PGRES_POLLING_WRITING:
        pg_set_io(c, EV_WRITE);
        return;
    case PGRES_POLLING_OK:
        if (PQsetnonblocking(c->conn, 1) != 0) {
            pg_conn_reset(c, "cannot set non-blocking mode");
            return;
        }
        c->state = PGC_PREPARING;
        c->prep_next = 0;
        c->want_write = false;
        pg_set_io(c, EV_READ);
        pg_prepare_next(c);
        return;
    default:
        pg_conn_reset(c, PQerrorMessage(c->conn));
        return;
    }
}

static void pg_conn_io(evutil_socket_t fd, short what, void *arg)
{
    struct pg_conn *c = arg;
    (void)fd;
    if (c->state == PGC_CONNECTING) {
        pg_connect_poll(c);
        return;
    }
    if (what & EV_WRITE) {
        pg_flush(c);
        if (!c->conn)
            return;
    }
    if (what & EV_READ)
        pg_read(c);
}

static void pg_conn_timer(evutil_socket_t fd, short what, void *arg)
{
    struct pg_conn *c = arg;
    (void)fd;
    (void)what;
    if (c->state == PGC_DOWN)
        pg_conn_start(c);
    else
        pg_conn_reset(c, "connect deadline passed");
}

/* libpq's default writes a server's NOTICE or WARNING to stderr, from
 * the reactor thread; it goes to the log, at debug level, instead: its
 * primary message only, as for errors (DETAIL may repeat key values). */
static void pg_notice(void *arg, const PGresult *res)
{
    (void)arg;
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    log_debug("pg: server says: %.300s", msg ? msg : "");
}

static void pg_conn_start(struct pg_conn *c)
{
    /* PQconnectStart does not block as long as the connection string names
     * an address (hostaddr) or a socket directory, not a host to resolve. */
    c->conn = PQconnectStart(c->pool->cfg->pg_conninfo);
    if (!c->conn || PQstatus(c->conn) == CONNECTION_BAD) {
        pg_conn_reset(c, c->conn ? PQerrorMessage(c->conn) : "out of memory");
        return;
    }
    PQsetNoticeReceiver(c->conn, pg_notice, NULL);
    c->state = PGC_CONNECTING;
    pg_arm_timer(c, c->pool->cfg->pg_connect_timeout_ms);
    pg_set_io(c, EV_WRITE);
}

static void pg_query_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct pg_query *q = arg;
    struct pg_pool *p = q->pool;
    (void)fd;
    (void)what;
    log_warn("pg: %s missed its %d ms deadline", pg_stmts[q->stmt].name, p->cfg->pg_timeout_ms);
    struct pg_conn *c = q->conn;
    if (c) {
        /* Closing the connection is the only non-blocking way to give up
         * on the query (PQcancel would block on a new connection). The
         * server may still finish it, commit included, so the calls of its
         * batch end with an outcome unknown to us. */
        pg_finish_all(pg_conn_take(c), NULL, STORE_TIMEOUT);
        pg_conn_reset(c, "query deadline passed");
        return;
    }
    pg_unqueue(p, q);
    pg_gauges(p);
    pg_finish(q, NULL, STORE_TIMEOUT);
}

static void pg_fail_queued(evutil_socket_t fd, short what, void *arg)
{
    struct pg_pool *p = arg;
    (void)fd;
    (void)what;
    while (p->up == 0 && !TAILQ_EMPTY(&p->queue)) {
        struct pg_query *q = TAILQ_FIRST(&p->queue);
        pg_unqueue(p, q);
        pg_finish(q, NULL, STORE_DOWN);
    }
    pg_gauges(p);
}

/* The next call to send: the first in the queue, passing over batchable
 * ones while their statement holds all the connections it may. A batchable call takes
 * the calls of its statement queued behind it along, up to pg.batch_max,
 * chained by peer; *n is how many. */
static struct pg_query *pg_next(struct pg_pool *p, int *n)
{
    struct pg_query *q, *after;
    long long now = pg_now_ms();
    for (q = TAILQ_FIRST(&p->queue); q; q = after) {
        after = TAILQ_NEXT(q, link);
        if (pg_stmts[q->stmt].batch && p->batch_busy[q->stmt] >= p->batch_conns)
            continue;
        /* A call that spent most of its deadline waiting would likely miss
         * it running, and a miss costs the connection: it is shed here,
         * unsent (so STORE_BUSY: it surely did nothing), its callback from
         * the loop (it may queue a call while we walk). Not a call of a
         * failed batch running again alone: each of those must get its own
         * outcome, or one bad call would fail them all. */
        if (!q->solo && q->deadline_ms - now < p->cfg->pg_timeout_ms / 4) {
            pg_unqueue(p, q);
            METRIC_INC(p->m->pg_shed);
            pg_finish_later(q, STORE_BUSY);
            continue;
        }
        break;
    }
    if (!q)
        return NULL;
    struct pg_query *next = TAILQ_NEXT(q, link);
    pg_unqueue(p, q);
    *n = 1;
    if (!pg_stmts[q->stmt].batch || q->solo)
        return q;
    for (struct pg_query *tail = q, *o = next; o && *n < p->cfg->pg_batch_max; o = next) {
        next = TAILQ_NEXT(o, link);
        if (o->stmt != q->stmt || o->solo)
            continue;
        pg_unqueue(p, o);
        tail->peer = o;
        tail = o;
        ++*n;
    }
    return q;
}

/* Sends q (with its n-1 peers) on c. */
static bool pg_send(struct pg_conn *c, struct pg_query *q, int n)
{
    const struct pg_stmt *st = &pg_stmts[q->stmt];
    if (!st->batch)
        return PQsendQueryPrepared(c->conn, st->name, q->nvalues, (const char *const *)q->values,
                                   NULL, NULL, 0);
    const char *const *calls[PG_BATCH_MAX];
    int k = 0;
    for (struct pg_query *m = q; m && k < PG_BATCH_MAX; m = m->peer)
        calls[k++] = (const char *const *)m->values;
    struct buf vals[PG_MAX_PARAMS];
    const char *params[PG_MAX_PARAMS];
    for (int i = 0; i < st->nparams; i++)
        buf_init(&vals[i]);
    stmt_batch_values(q->stmt, calls, n, vals);
    for (int i = 0; i < st->nparams; i++)
        params[i] = vals[i].data;
    int sent = PQsendQueryPrepared(c->conn, st->name, st->nparams, params, NULL, NULL, 0);
    for (int i = 0; i < st->nparams; i++)
        buf_free(&vals[i]);
    if (sent && n > 1) {
        METRIC_INC(c->pool->m->pg_batches);
        METRIC_ADD(c->pool->m->pg_batched, n);
    }
    return sent;
}

static void pg_dispatch(struct pg_pool *p)
{
    for (int i = 0; i < p->nconns && !TAILQ_EMPTY(&p->queue); i++) {
        struct pg_conn *c = &p->conns[i];
        if (c->state != PGC_IDLE)
            continue;
        int n;
        struct pg_query *q = pg_next(p, &n);
        if (!q)
            break;
        if (!pg_send(c, q, n)) {
            /* Put them back and give up on this connection. */
            pg_requeue(p, q, false);
            pg_conn_reset(c, PQerrorMessage(c->conn));
            continue;
        }
        c->state = PGC_BUSY;
        c->q = q;
        if (pg_stmts[q->stmt].batch)
            p->batch_busy[q->stmt]++;
        for (struct pg_query *m = q; m; m = m->peer)
            m->conn = c;
        pg_flush(c);
    }
    pg_gauges(p);
}

static void pg_dispatch_later(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pg_dispatch(arg);
}

enum store_status pg_query(struct pg_pool *p, enum stmt_id stmt, const char *const *values,
                           pg_cb cb, void *arg)
{
    if (p->up == 0) {
        METRIC_INC(p->m->pg_unavailable);
        return STORE_DOWN;
    }
    bool batch = pg_stmts[stmt].batch;
    if ((batch ? p->queued_batch : p->queued - p->queued_batch) >= p->cfg->pg_queue_max) {
        METRIC_INC(p->m->pg_shed);
        return STORE_BUSY;
    }
    METRIC_INC(p->m->pg_calls);
    struct pg_query *q = calloc(1, sizeof(*q));
    if (!q)
        abort();
    q->pool = p;
    q->stmt = stmt;
    q->cb = cb;
    q->arg = arg;
    q->nvalues = pg_stmts[stmt].nparams;
    for (int i = 0; i < q->nvalues && i < PG_MAX_PARAMS; i++) {
        if (values[i] && !(q->values[i] = strdup(values[i])))
            abort();
    }
    evtimer_assign(&q->timer, p->base, pg_query_timeout, q);
    struct timeval tv = {p->cfg->pg_timeout_ms / 1000, (p->cfg->pg_timeout_ms % 1000) * 1000};
    evtimer_add(&q->timer, &tv);
    q->deadline_ms = pg_now_ms() + p->cfg->pg_timeout_ms;
    TAILQ_INSERT_TAIL(&p->queue, q, link);
    pg_queue_counts(p, q, 1);
    p->in_submit = true;
    pg_dispatch(p);
    p->in_submit = false;
    return STORE_OK;
}

struct pg_pool *pg_pool_new(struct event_base *base, const struct config *cfg, struct metrics *m)
{
    struct pg_pool *p = calloc(1, sizeof(*p));
    if (!p)
        abort();
    p->base = base;
    p->cfg = cfg;
    p->m = m;
    p->nconns = cfg->pg_pool_size;
    /* At least one connection stays for the other statements. */
    p->batch_conns = cfg->pg_batch_conns < p->nconns ? cfg->pg_batch_conns : p->nconns - 1;
    if (p->batch_conns < 1)
        p->batch_conns = 1;
    p->conns = calloc((size_t)p->nconns, sizeof(*p->conns));
    if (!p->conns)
        abort();
    TAILQ_INIT(&p->queue);
    TAILQ_INIT(&p->deferred);
    p->fail_ev = event_new(base, -1, 0, pg_fail_queued, p);
    p->dispatch_ev = event_new(base, -1, 0, pg_dispatch_later, p);
    for (int i = 0; i < p->nconns; i++) {
        struct pg_conn *c = &p->conns[i];
        c->pool = p;
        c->idx = i;
        c->backoff_ms = PG_BACKOFF_MIN_MS;
        evtimer_assign(&c->timer, base, pg_conn_timer, c);
        pg_conn_start(c);
    }
    return p;
}

void pg_pool_free(struct pg_pool *p)
{
    if (!p)
        return;
    p->closing = true;
    for (int i = 0; i < p->nconns; i++) {
        struct pg_conn *c = &p->conns[i];
        if (c->conn || c->state != PGC_DOWN)
            pg_conn_reset(c, "shutting down");
        evtimer_del(&c->timer);
    }
    while (!TAILQ_EMPTY(&p->queue)) {
        struct pg_query *q = TAILQ_FIRST(&p->queue);
        pg_unqueue(p, q);
        pg_finish(q, NULL, STORE_DOWN);
    }
    while (!TAILQ_EMPTY(&p->deferred)) {
        struct pg_query *q = TAILQ_FIRST(&p->deferred);
        TAILQ_REMOVE(&p->deferred, q, link);
        pg_finish(q, NULL, q->deferred);
    }
    event_free(p->fail_ev);
    event_free(p->dispatch_ev);
    free(p->conns);
    free(p);
}

bool pg_pool_is_up(const struct pg_pool *p)
{
    return p->up > 0;
}
