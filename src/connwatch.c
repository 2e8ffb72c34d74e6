/* connwatch.c - see connwatch.h. */
#include "connwatch.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "util.h"

#define CONNWATCH_TICK_MS 1000

/* One connection's state. */
enum conn_state {
    CONN_NEW,        /* no request yet: the watch holds a reference on bev */
    CONN_OPEN,       /* has had a request: its close callback will come */
    CONN_CLOSED,     /* closed while a request was answered; freed at its end */
};

struct conn_entry {
    struct connwatch *cw;
    struct bufferevent *bev;
    enum conn_state state;
    int busy;                    /* requests read and not yet answered */
    int64_t since_us;            /* accepted, or its last request read or answered */
    size_t out_len;              /* bytes of answers unwritten at the last tick */
    int64_t out_since_us;        /* when that count last changed */
    struct evbuffer_cb_entry *in_cb;  /* conn_on_input on the input buffer */
    bool over;                   /* past a bound (its input, the worker's): being closed */
    bool excess;                 /* beyond the worker's connections: closed at once */
    struct conn_entry *prev, *next;
};

struct connwatch {
    struct event *timer;
    int64_t timeout_us;          /* no whole request for this long: closed */
    int64_t write_timeout_us;    /* an answer that makes no progress for this long: closed */
    size_t input_max;            /* a connection's unparsed input past this: closed */
    size_t input_budget;         /* all connections' unparsed input past this: the growing one closed */
    size_t input_total;          /* unparsed input held now, over the watched connections */
    int max_conns, nconns;       /* connections allowed, and in the list now */
    struct conn_entry *head;     /* every entry not CONN_CLOSED */
    struct conn_entry **by_fd;   /* an index for the request path, filled lazily */
    int nfd;
};

/* Bytes of input that left the worker's count (never below zero). */
static void input_less(struct connwatch *cw, size_t n)
{
    cw->input_total -= n < cw->input_total ? n : cw->input_total;
}

/* Takes conn_on_input off the input buffer, and what it holds off the
 * worker's count: the entry is about to go. */
static void conn_unwatch_input(struct conn_entry *e)
{
    if (e->in_cb) {
        struct evbuffer *in = bufferevent_get_input(e->bev);
        evbuffer_remove_cb_entry(in, e->in_cb);
        input_less(e->cw, evbuffer_get_length(in));
    }
    e->in_cb = NULL;
}

/* Ends a connection now as if the client had closed it: libevent's own
 * error path, deferred to the loop so that nothing is freed under a read
 * in progress. */
static void conn_end(struct conn_entry *e, const char *why)
{
    if (e->over)
        return;
    e->over = true;
    log_debug("connwatch: fd %d: %s; closing", (int)bufferevent_getfd(e->bev), why);
    bufferevent_trigger_event(e->bev, BEV_EVENT_EOF | BEV_EVENT_READING, BEV_TRIG_DEFER_CALLBACKS);
    /* Its input no longer counts against the others' budget. */
    conn_unwatch_input(e);
}

/* Bytes arrived. libevent 2.1 bounds the request line, the headers and a
 * body's length, but not the size line of a chunked body: one that never
 * ends grew without bound, and each read scanned all of it again for the
 * line's end (a worker's CPU for seconds, and memory, without a login).
 * Past the bound, the connection ends as if the client had closed it:
 * libevent's own error path, deferred to the loop so that nothing is freed
 * under the read in progress. (A read watermark would stop reading
 * instead, and libevent 2.1 then spins on the read callback of a request
 * it cannot parse.) */
static void conn_on_input(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg)
{
    struct conn_entry *e = arg;
    struct connwatch *cw = e->cw;
    cw->input_total += info->n_added;
    input_less(cw, info->n_deleted);
    if (info->n_added == 0)
        return;
    if (e->excess)
        conn_end(e, "beyond http.max_connections");
    else if (evbuffer_get_length(in) > cw->input_max)
        conn_end(e, "more unparsed input than a whole request of the largest size");
    else if (cw->input_total > cw->input_budget)
        conn_end(e, "the worker's unparsed input past http.max_buffered_mb");
}

static void conn_unlink(struct connwatch *cw, struct conn_entry *e)
{
    cw->nconns--;
    if (e->prev)
        e->prev->next = e->next;
    else
        cw->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    e->prev = e->next = NULL;
    int fd = (int)bufferevent_getfd(e->bev);
    if (fd >= 0 && fd < cw->nfd && cw->by_fd[fd] == e)
        cw->by_fd[fd] = NULL;
}

/* libevent drops a bufferevent by clearing its callbacks before it lets go
 * of its own reference: with ours still held, that is how its end shows. */
static bool conn_dropped(struct conn_entry *e)
{
    bufferevent_data_cb readcb;
    bufferevent_getcb(e->bev, &readcb, NULL, NULL, NULL);
    return readcb == NULL;
}

/* Ends a connection: libevent sees the end of the stream and frees it. */
static void conn_shut(struct conn_entry *e, const char *why, int64_t after_us)
{
    int s = (int)bufferevent_getfd(e->bev);
    if (s >= 0) {
        log_debug("connwatch: %s on fd %d for %lld ms; closing", why, s, (long long)(after_us / 1000));
        shutdown(s, SHUT_RDWR);
    }
}

static void connwatch_on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct connwatch *cw = arg;
    int64_t now = util_mono_us();
    struct conn_entry *next;
    for (struct conn_entry *e = cw->head; e; e = next) {
        next = e->next;
        if (e->state == CONN_NEW && conn_dropped(e)) {
            conn_unlink(cw, e);
            conn_unwatch_input(e);
            bufferevent_decref(e->bev);   /* the last reference: closes the socket */
            free(e);
            continue;
        }
        if (e->excess)
            conn_end(e, "beyond http.max_connections");   /* one that has sent nothing yet */
        if (e->busy == 0 && now - e->since_us > cw->timeout_us) {
            conn_shut(e, "no whole request", cw->timeout_us);
            e->since_us = now;  /* once is enough: libevent takes it from here */
        }
        /* libevent 2.1's one timeout is the read timeout, which also bounds
         * writes; a shorter http.write_timeout_ms is kept here: an answer
         * whose unwritten bytes have not moved since then (the client does
         * not read, and the kernel's buffer is full). */
        size_t out = evbuffer_get_length(bufferevent_get_output(e->bev));
        if (out == 0 || out != e->out_len) {
            e->out_len = out;
            e->out_since_us = now;
        } else if (now - e->out_since_us > cw->write_timeout_us) {
            conn_shut(e, "an answer not read", cw->write_timeout_us);
            e->out_since_us = now;
        }
    }
}

struct connwatch *connwatch_new(struct event_base *base, const struct connwatch_limits *lim)
{
    struct connwatch *cw = calloc(1, sizeof(*cw));
    if (!cw)
        return NULL;
    cw->input_max = lim->input_max;
    cw->input_budget = lim->input_budget;
    cw->max_conns = lim->max_conns;
    cw->timeout_us = (int64_t)lim->request_timeout_ms * 1000;
    cw->write_timeout_us = (int64_t)lim->write_timeout_ms * 1000;
    cw->timer = event_new(base, -1, EV_PERSIST, connwatch_on_tick, cw);
    struct timeval tv = {CONNWATCH_TICK_MS / 1000, 0};
    if (!cw->timer || event_add(cw->timer, &tv) != 0) {
        connwatch_free(cw);
        return NULL;
    }
    return cw;
}

void connwatch_free(struct connwatch *cw)
{
    if (!cw)
        return;
    struct conn_entry *next;
    for (struct conn_entry *e = cw->head; e; e = next) {
        next = e->next;
        if (e->state == CONN_NEW) {
            conn_unwatch_input(e);
            bufferevent_decref(e->bev);
        }
        free(e);
    }
    if (cw->timer)
        event_free(cw->timer);
    free(cw->by_fd);
    free(cw);
}

void connwatch_add(struct connwatch *cw, struct bufferevent *bev)
{
    struct conn_entry *e = calloc(1, sizeof(*e));
    if (!e)
        return;  /* unwatched: the read timeout still holds */
    e->cw = cw;
    e->bev = bev;
    e->state = CONN_NEW;
    e->since_us = util_mono_us();
    e->in_cb = evbuffer_add_cb(bufferevent_get_input(bev), conn_on_input, e);
    /* Its socket is not known yet: its first bytes, or the next tick,
     * end an excess connection. */
    e->excess = ++cw->nconns > cw->max_conns;
    bufferevent_incref(bev);
    e->next = cw->head;
    if (cw->head)
        cw->head->prev = e;
    cw->head = e;
}

/* libevent's close callback of a connection that has had a request: the
 * entry goes now, or when the request being answered ends. */
static void conn_on_close(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct conn_entry *e = arg;
    conn_unlink(e->cw, e);
    conn_unwatch_input(e);
    if (e->busy > 0)
        e->state = CONN_CLOSED;
    else
        free(e);
}

/* The entry of a connection, by its socket; the first request of each
 * connection finds it in the list once. */
static struct conn_entry *conn_find(struct connwatch *cw, struct bufferevent *bev)
{
    int fd = (int)bufferevent_getfd(bev);
    if (fd < 0)
        return NULL;
    if (fd < cw->nfd && cw->by_fd[fd] && cw->by_fd[fd]->bev == bev)
        return cw->by_fd[fd];
    struct conn_entry *e = cw->head;
    while (e && e->bev != bev)
        e = e->next;
    if (!e)
        return NULL;
    if (fd >= cw->nfd) {
        int n = cw->nfd ? cw->nfd : 1024;
        while (n <= fd)
            n *= 2;
        struct conn_entry **m = realloc(cw->by_fd, (size_t)n * sizeof(*m));
        if (!m)
            return e;
        memset(m + cw->nfd, 0, (size_t)(n - cw->nfd) * sizeof(*m));
        cw->by_fd = m;
        cw->nfd = n;
    }
    cw->by_fd[fd] = e;
    return e;
}

struct conn_entry *connwatch_request_begin(struct connwatch *cw, struct evhttp_request *ev)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    struct conn_entry *e = bev ? conn_find(cw, bev) : NULL;
    if (!e)
        return NULL;
    if (e->state == CONN_NEW) {
        /* From here libevent says when it closes: our reference goes (its
         * own keeps the bufferevent), so the socket closes with it. */
        evhttp_connection_set_closecb(evcon, conn_on_close, e);
        e->state = CONN_OPEN;
        bufferevent_decref(bev);
    }
    e->busy++;
    e->since_us = util_mono_us();
    return e;
}

void connwatch_request_end(struct conn_entry *e)
{
    if (!e)
        return;
    e->busy--;
    e->since_us = util_mono_us();
    if (e->state == CONN_CLOSED && e->busy == 0)
        free(e);
}

int connwatch_output_pending(const struct connwatch *cw)
{
    int n = 0;
    for (const struct conn_entry *e = cw->head; e; e = e->next)
        n += evbuffer_get_length(bufferevent_get_output(e->bev)) > 0;
    return n;
}
