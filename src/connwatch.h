/* connwatch.h - a deadline for each whole request, per connection.
 *
 * libevent 2.1's read timeout (http.read_timeout_ms) restarts with every
 * byte it reads, and it offers no hook where a request begins, so a client
 * that sends one byte a second would keep its connection until it reached
 * http.max_header_size. The worker's bufferevent callback registers every
 * connection here; a request that arrives whole, and its answer, tell when
 * the connection last made progress; a timer once a second shuts down any
 * connection that has had no whole request for http.request_timeout_ms while
 * none of its requests is being answered, and any whose unwritten answer
 * has not moved for http.write_timeout_ms, and at once any that holds more
 * unparsed input than a whole request of the largest size, that takes the
 * worker's unparsed input past its budget, or that is one connection too
 * many. libevent then sees the end of the stream and frees the connection
 * itself.
 *
 * Ownership: until a connection's first request, libevent has no close hook
 * for it, so the watch holds a reference on its bufferevent and lets go once
 * libevent has dropped it (its callbacks cleared); from the first request on,
 * the connection's close callback tells. An entry lives while a request of
 * its connection is being answered, even if the connection is gone. */
#ifndef MIPGW_CONNWATCH_H
#define MIPGW_CONNWATCH_H

#include <stddef.h>
#include <stdint.h>

struct bufferevent;
struct event_base;
struct evhttp_request;
struct connwatch;
struct conn_entry;

/* What a worker's connections may take. */
struct connwatch_limits {
    int request_timeout_ms;   /* http.request_timeout_ms (checked once a second) */
    int write_timeout_ms;     /* http.write_timeout_ms: an answer making no progress (the same) */
    size_t input_max;         /* unparsed input one connection may hold (closed at once past it) */
    size_t input_budget;      /* unparsed input all of them may hold: past it, the one growing is closed */
    int max_conns;            /* connections: one beyond is closed at once */
};

/* NULL when out of memory. */
struct connwatch *connwatch_new(struct event_base *base, const struct connwatch_limits *lim);
/* After evhttp_free: lets go of the connections it still holds. */
void connwatch_free(struct connwatch *cw);

/* From the worker's bufferevent callback: a new connection. */
void connwatch_add(struct connwatch *cw, struct bufferevent *bev);
/* A whole request arrived: the entry to hand to connwatch_request_end, or
 * NULL (not watched: nothing to do at the end). */
struct conn_entry *connwatch_request_begin(struct connwatch *cw, struct evhttp_request *ev);
/* Its answer has been sent (or it was dropped): the deadline starts again. */
void connwatch_request_end(struct conn_entry *e);
/* Connections with bytes of an answer not yet written to their socket:
 * a reply is "sent" once queued, and a loop that stops before writing it
 * loses it. For the drain at shutdown (a walk of every connection). */
int connwatch_output_pending(const struct connwatch *cw);

#endif
