/* janitor.h - a timer on the first worker that sweeps what has outlived
 * its use from PostgreSQL: the cabinet's UserRequests a day past their
 * expiry and its expired access tokens, a bounded batch each turn. Every
 * gateway process runs one; the deletes are idempotent, so several at once
 * only share the work. */
#ifndef MIPGW_JANITOR_H
#define MIPGW_JANITOR_H

#include <stdbool.h>

#define JANITOR_INTERVAL_MS 60000

struct worker;
struct event;

struct janitor {
    struct worker *w;
    struct event *timer;
    bool busy;                   /* a sweep is waiting for PostgreSQL */
};

/* Starts the timer (on worker 0 only); janitor_stop frees it. */
void janitor_start(struct worker *w);
void janitor_stop(struct worker *w);

#endif
