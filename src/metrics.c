/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <stddef.h>

#define METRICS_MAX_WORKERS 64

static struct metrics *registry[METRICS_MAX_WORKERS];
static int nregistered;

static const int statuses[METRICS_STATUSES] = {
    200, 201, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 503, 504, 0 /* other */
};

/* Upper bounds in microseconds; the last bucket is +Inf. */
static const int64_t lat_bounds[METRICS_LAT_BUCKETS - 1] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000
};

void metrics_register(struct metrics *m)
{
    if (nregistered < METRICS_MAX_WORKERS)
        registry[nregistered++] = m;
}

static int status_slot(int status)
{
    for (int i = 0; i < METRICS_STATUSES - 1; i++)
        if (statuses[i] == status)
            return i;
    return METRICS_STATUSES - 1;
}

void metrics_request(struct metrics *m, int route, int status, int64_t latency_us)
{
    if (route < 0 || route >= METRICS_MAX_ROUTES)
        route = METRICS_MAX_ROUTES - 1;
    METRIC_INC(m->requests[route][status_slot(status)]);
    int b = 0;
    while (b < METRICS_LAT_BUCKETS - 1 && latency_us > lat_bounds[b])
        b++;
    METRIC_INC(m->latency[route][b]);
    METRIC_ADD(m->latency_sum_us[route], latency_us);
}

static uint64_t sum_of(size_t offset)
{
    uint64_t s = 0;
    for (int i = 0; i < nregistered; i++)
        s += atomic_load_explicit((metric_t *)((char *)registry[i] + offset), memory_order_relaxed);
    return s;
}

#define SUM(field) sum_of(offsetof(struct metrics, field))

/* Error answers by catalogue entry, entries never answered left out: an
 * operator sees which rule refuses, a load test which answers it got. */
static void render_errors(struct buf *out)
{
    buf_puts(out, "# HELP mipgw_errors_total Error answers, by catalogue entry (docs/errors.md).\n"
                  "# TYPE mipgw_errors_total counter\n");
    for (int id = 1; id < E__COUNT; id++) {
        uint64_t n = SUM(errors[id]);
        if (n)
            buf_printf(out, "mipgw_errors_total{code=\"%s\",error=\"%s\"} %llu\n", err_get(id)->code,
                       err_name(id), (unsigned long long)n);
    }
    for (int id = 1; id < EH__COUNT; id++) {
        uint64_t n = SUM(eh_errors[id]);
        if (n)
            buf_printf(out, "mipgw_errors_total{code=\"%s\",error=\"%s\"} %llu\n", err_eh_get(id)->type,
                       err_eh_name(id), (unsigned long long)n);
    }
}

static void render_scalar(struct buf *out, const char *name, const char *type, const char *help,
                          uint64_t v)
{
    buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
               (unsigned long long)v);
}

void metrics_render(struct buf *out, const char *const *route_names, int nroutes)
{
    buf_puts(out, "# HELP mipgw_requests_total Requests answered, by route and status.\n"
                  "# TYPE mipgw_requests_total counter\n");
    for (int r = 0; r < nroutes && r < METRICS_MAX_ROUTES; r++) {
        for (int s = 0; s < METRICS_STATUSES; s++) {
            uint64_t v = SUM(requests[r][s]);
            if (!v)
                continue;
            if (statuses[s])
                buf_printf(out, "mipgw_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                           route_names[r], statuses[s], (unsigned long long)v);
            else
                buf_printf(out, "mipgw_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                           route_names[r], (unsigned long long)v);
        }
    }
    buf_puts(out, "# HELP mipgw_request_duration_seconds Time from request to answer.\n"
                  "# TYPE mipgw_request_duration_seconds histogram\n");
    for (int r = 0; r < nroutes && r < METRICS_MAX_ROUTES; r++) {
        uint64_t cum = 0;
        for (int b = 0; b < METRICS_LAT_BUCKETS; b++)
            cum += SUM(latency[r][b]);
        if (!cum)
            continue;
        cum = 0;
        for (int b = 0; b < METRICS_LAT_BUCKETS; b++) {
            cum += SUM(latency[r][b]);
            if (b < METRICS_LAT_BUCKETS - 1)
                buf_printf(out, "mipgw_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                           route_names[r], (double)lat_bounds[b] / 1e6, (unsigned long long)cum);
            else
                buf_printf(out, "mipgw_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                           route_names[r], (unsigned long long)cum);
        }
        buf_printf(out, "mipgw_request_duration_seconds_sum{route=\"%s\"} %.6f\n", route_names[r],
                   (double)SUM(latency_sum_us[r]) / 1e6);
        buf_printf(out, "mipgw_request_duration_seconds_count{route=\"%s\"} %llu\n", route_names[r],
                   (unsigned long long)cum);
    }
    render_errors(out);
    render_scalar(out, "mipgw_pg_calls_total", "counter",
                  "PostgreSQL queries the pool accepted (each call of a batch counts).", SUM(pg_calls));
    render_scalar(out, "mipgw_pg_errors_total", "counter", "PostgreSQL queries that failed.", SUM(pg_errors));
    render_scalar(out, "mipgw_pg_timeouts_total", "counter", "PostgreSQL queries past their deadline (each call of a batch counts).",
                  SUM(pg_timeouts));
    render_scalar(out, "mipgw_pg_shed_total", "counter", "Queries refused because the pool queue was full, or dropped after waiting three quarters of their deadline.",
                  SUM(pg_shed));
    render_scalar(out, "mipgw_pg_unavailable_total", "counter", "Queries refused because no connection was up, or ended by the loss of their connection.",
                  SUM(pg_unavailable));
    render_scalar(out, "mipgw_pg_batches_total", "counter",
                  "Calls of a batchable statement sent together, one batch each.", SUM(pg_batches));
    render_scalar(out, "mipgw_pg_batched_calls_total", "counter", "Calls sent in those batches.",
                  SUM(pg_batched));
    render_scalar(out, "mipgw_pg_batch_retries_total", "counter",
                  "Batches that failed and whose calls were run one by one.", SUM(pg_batch_retries));
    render_scalar(out, "mipgw_redis_errors_total", "counter", "Redis commands that failed.", SUM(redis_errors));
    render_scalar(out, "mipgw_redis_timeouts_total", "counter", "Redis commands past their deadline.",
                  SUM(redis_timeouts));
    render_scalar(out, "mipgw_redis_unavailable_total", "counter", "Redis commands refused while it was down.",
                  SUM(redis_unavailable));
    render_scalar(out, "mipgw_pg_connections_up", "gauge", "PostgreSQL connections ready.", SUM(pg_conns_up));
    render_scalar(out, "mipgw_pg_connections_busy", "gauge", "PostgreSQL connections running a query.",
                  SUM(pg_busy));
    render_scalar(out, "mipgw_pg_queue_length", "gauge", "Queries waiting for a connection.", SUM(pg_queued));
    render_scalar(out, "mipgw_redis_connections_up", "gauge", "Workers whose Redis connection is up.",
                  SUM(redis_up));
    render_scalar(out, "mipgw_requests_in_flight", "gauge", "Requests being served.", SUM(inflight));
}
