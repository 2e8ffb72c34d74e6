/* metrics.h - counters kept per worker thread and summed when /metrics is
 * read. Only the owning thread writes its counters; readers load them with
 * relaxed atomics, so the request path takes no lock and no locked
 * instruction. */
#ifndef MIPGW_METRICS_H
#define MIPGW_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "errors.h"
#include "util.h"

#define METRICS_MAX_ROUTES 48
#define METRICS_LAT_BUCKETS 14

/* Status codes counted one by one; everything else lands in "other". */
#define METRICS_STATUSES 16

typedef _Atomic uint64_t metric_t;

struct metrics {
    metric_t requests[METRICS_MAX_ROUTES][METRICS_STATUSES];
    metric_t latency[METRICS_MAX_ROUTES][METRICS_LAT_BUCKETS]; /* cumulative at render */
    metric_t latency_sum_us[METRICS_MAX_ROUTES];
    metric_t errors[E__COUNT];       /* error answers by catalogue entry */
    metric_t eh_errors[EH__COUNT];   /* ... and by eHealth catalogue entry */
    metric_t pg_calls, pg_errors, pg_timeouts, pg_shed, pg_unavailable;
    metric_t pg_batches, pg_batched, pg_batch_retries;
    metric_t redis_errors, redis_timeouts, redis_unavailable;
    metric_t pg_conns_up, pg_busy, pg_queued; /* gauges */
    metric_t redis_up;                        /* gauge */
    metric_t inflight;                        /* gauge */
};

/* Owner-thread increment: a plain load and store, visible to readers. */
#define METRIC_ADD(m, n) \
    atomic_store_explicit(&(m), atomic_load_explicit(&(m), memory_order_relaxed) + (uint64_t)(n), \
                          memory_order_relaxed)
#define METRIC_INC(m) METRIC_ADD(m, 1)
#define METRIC_SET(m, v) atomic_store_explicit(&(m), (uint64_t)(v), memory_order_relaxed)

/* Registers a worker's metrics (before the workers start). */
void metrics_register(struct metrics *m);
void metrics_request(struct metrics *m, int route, int status, int64_t latency_us);
/* Prometheus text exposition of all registered workers, summed. route_names
 * gives each route's label. */
void metrics_render(struct buf *out, const char *const *route_names, int nroutes);

#endif
