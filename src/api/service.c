/* api/service.c - /health, /ready and /metrics: for load balancers and
 * monitoring, answered from the worker's own state without a store call. */
#include <string.h>

#include "api/api.h"
#include "metrics.h"
#include "pg.h"
#include "redis.h"
#include "router.h"
#include "worker.h"

static void reply_status(struct req *r, int status, const char *body)
{
    req_reply_json(r, status, NULL, body, strlen(body));
}

void api_health(struct req *r)
{
    reply_status(r, 200, "{\"status\":\"ok\"}");
}

/* Ready when this worker can reach both stores and knows the client
 * applications, and is not draining; the load balancer takes the process
 * out otherwise. */
void api_ready(struct req *r)
{
    if (r->w->state != WORKER_RUNNING) {
        req_fail(r, E_SHUTTING_DOWN);
        return;
    }
    bool pg = pg_pool_is_up(r->w->pg);
    bool rd = redis_is_up(r->w->redis);
    bool apps = r->w->apps.loaded;
    if (pg && rd && apps) {
        reply_status(r, 200, "{\"status\":\"ready\",\"postgresql\":true,\"redis\":true}");
        return;
    }
    req_fail(r, E_STORE_UNAVAILABLE);
}

void api_metrics(struct req *r)
{
    int n;
    const char *const *names = router_names(&n);
    struct buf out;
    buf_init(&out);
    metrics_render(&out, names, n);
    req_reply_text(r, 200, "text/plain; version=0.0.4", out.data, out.len);
    buf_free(&out);
}
