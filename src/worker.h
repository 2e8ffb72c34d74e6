/* worker.h - a reactor thread. Each worker owns an event_base, an evhttp
 * server on its own SO_REUSEPORT listener, one Redis connection and a small
 * PostgreSQL pool; nothing it touches on the request path is shared with
 * another thread except the read-only configuration. */
#ifndef MIPGW_WORKER_H
#define MIPGW_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "clientapp.h"
#include "config.h"
#include "janitor.h"
#include "metrics.h"
#include "token.h"

struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct event;
struct redis;
struct pg_pool;
struct schedule_cache;

/* Lifecycle of a worker. */
enum worker_state {
    WORKER_NEW,       /* allocated, thread not started */
    WORKER_RUNNING,   /* accepting and serving */
    WORKER_DRAINING,  /* listener closed; finishing requests in flight */
    WORKER_DONE,      /* loop exited */
};

struct worker {
    int id;
    pthread_t thread;
    enum worker_state state;
    const struct config *cfg;
    struct event_base *base;
    struct evhttp *http;
    int listen_fd;
    struct evhttp_bound_socket *bound;
    struct event *stop_ev;        /* activated from the main thread on SIGTERM */
    struct event *drain_timer;    /* polls for the end of draining */
    int64_t drain_deadline_us;
    struct redis *redis;
    struct pg_pool *pg;
    struct clientapp_cache apps;
    struct token_keys keys;
    struct metrics metrics;
    int inflight;                 /* requests read and not yet answered */
    uint64_t req_seq;             /* for request ids */
    char id_prefix[9];
    struct schedule_cache *schedule;  /* the schedule view's cells (schedule.h) */
    struct token_memo *token_memo;    /* tokens that verified (token.h) */
    struct ratelimit *ratelimits;     /* the limits' own counters, Redis away (ratelimit.h) */
    struct janitor janitor;           /* worker 0's sweep of expired rows (janitor.h) */
    struct connwatch *conns;          /* each connection's request deadline (connwatch.h) */
    struct req_spare *req_spares;     /* freed requests kept for the next ones (req.c) */
    int nreq_spares;
};

/* Creates the listener socket and the worker's reactor; no thread yet.
 * Returns 0, or -1 with err filled. */
int worker_init(struct worker *w, int id, const struct config *cfg, char *err, size_t errlen);
int worker_start(struct worker *w);
/* Thread-safe: asks the worker to stop accepting and drain. */
void worker_request_stop(struct worker *w);
void worker_join(struct worker *w);
void worker_free(struct worker *w);

/* The request path's bookkeeping, for req.c. */
void worker_request_begin(struct worker *w);
void worker_request_end(struct worker *w);
bool worker_is_trusted_proxy(const struct worker *w, const char *addr);

#endif
