/* worker.c - see worker.h. */
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/api.h"
#include "connwatch.h"
#include "errors.h"
#include "log.h"
#include "pg.h"
#include "ratelimit.h"
#include "redis.h"
#include "req.h"
#include "router.h"
#include "schedule.h"

#define WORKER_DRAIN_POLL_MS 20
/* Keys a worker's own rate-limit counters hold (24 bytes each, 768 KiB):
 * more client addresses and identities than one worker sees in a window
 * (a new key that finds no room is refused, ratelimit.h). */
#define WORKER_RATELIMIT_SLOTS 32768
/* The most a connection's bufferevent hands the kernel in one write. */
#define WORKER_MAX_SINGLE_WRITE ((size_t)256 << 10)
/* Unparsed input a connection may hold beyond a whole request of the
 * largest size (http.max_header_size + http.max_body_size): what a client
 * pipelines behind it. More is closed (connwatch). */
#define WORKER_INPUT_SLACK ((size_t)64 << 10)

/* Every request enters here: route it, or answer 404/405 with the standard
 * body. evhttp itself is set to allow every method so that a wrong one gets
 * our 405, not libevent's HTML page. While draining, a request that comes
 * on a connection already open (a proxy's keep-alive) is served like any
 * other, and its answer closes the connection (req_send): refusing it would
 * turn a rolling restart behind nginx into errors for the portals, as nginx
 * keeps using its cached connections until each is closed. /ready says
 * 503/5032 meanwhile, so that health checks take the process out. */
static void worker_on_request(struct evhttp_request *ev, void *arg)
{
    struct worker *w = arg;
    struct req *r = req_new(w, ev);
    r->conn = connwatch_request_begin(w->conns, ev);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(ev);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    if (!path || !*path)
        path = "/";
    switch (router_match(r, path, (unsigned)evhttp_request_get_command(ev))) {
    case ROUTER_FOUND:
        r->route->handler(r);
        return;
    case ROUTER_BAD_METHOD:
        req_fail1(r, E_METHOD, req_method(r));
        return;
    case ROUTER_NOT_FOUND:
        req_fail(r, E_NOT_FOUND);
        return;
    }
}

void worker_request_begin(struct worker *w)
{
    w->inflight++;
    METRIC_SET(w->metrics.inflight, w->inflight);
}

void worker_request_end(struct worker *w)
{
    w->inflight--;
    METRIC_SET(w->metrics.inflight, w->inflight);
}

bool worker_is_trusted_proxy(const struct worker *w, const char *addr)
{
    return util_list_has(w->cfg->http_trusted_proxies, addr);
}

/* Each accepted connection's bufferevent, made as evhttp would but for its
 * largest single write: libevent's default is 16 kB, so a 100 kB schedule
 * took seven writes, one per turn of the loop. One write hands the kernel
 * the whole answer (the send buffer grows to hold it): fewer system calls
 * and client wake-ups. Measured with a bare evhttp server and the schedule's
 * answer sizes (TCP_NODELAY on both): the same p99, throughput within the
 * machine's noise; it was not what made the schedule's p99 tail (requests
 * waiting for fills of expired entries were). */
static struct bufferevent *worker_new_bev(struct event_base *base, void *arg)
{
    struct worker *w = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev) {
        (void)bufferevent_set_max_single_write(bev, WORKER_MAX_SINGLE_WRITE);
        connwatch_add(w->conns, bev);
    }
    return bev;
}

/* One listening socket per worker, all on the same port: the kernel spreads
 * connections over them (SO_REUSEPORT), so no thread hands work to another. */
static int worker_listen(const struct config *cfg, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, cfg->http_listen, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)cfg->http_port);
        sslen = sizeof(*sin);
    } else if (inet_pton(AF_INET6, cfg->http_listen, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)cfg->http_port);
        sslen = sizeof(*sin6);
    } else {
        snprintf(err, errlen, "http.listen: not an IP address: %s", cfg->http_listen);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto err;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto err;
    /* Accepted connections inherit it (Linux). An answer leaves in pieces
     * (at most WORKER_MAX_SINGLE_WRITE a write, and segments of the MSS):
     * without it, Nagle holds a short last piece until the client's delayed
     * ACK, some 40 ms. */
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        goto err;
    if (bind(fd, (struct sockaddr *)&ss, sslen) < 0)
        goto err;
    if (listen(fd, cfg->http_backlog) < 0)
        goto err;
    return fd;
err:
    snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->http_listen, cfg->http_port,
             strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

static void worker_drain_check(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    /* Done when every request is answered and every answer written: an
     * answer queued in this very turn is written only in a later one. */
    int unwritten = w->inflight == 0 ? connwatch_output_pending(w->conns) : 0;
    if ((w->inflight == 0 && unwritten == 0) || util_mono_us() >= w->drain_deadline_us) {
        if (w->inflight || unwritten)
            log_warn("worker %d: %d requests in flight and %d answers unwritten at the end of "
                     "the grace period", w->id, w->inflight, unwritten);
        event_base_loopexit(w->base, NULL);
    }
}

static void worker_on_stop(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    if (w->state != WORKER_RUNNING)
        return;
    w->state = WORKER_DRAINING;
    if (w->bound) {
        evhttp_del_accept_socket(w->http, w->bound);  /* closes the listener */
        w->bound = NULL;
    }
    w->drain_deadline_us = util_mono_us() + (int64_t)w->cfg->http_shutdown_grace_ms * 1000;
    struct timeval tv = {0, WORKER_DRAIN_POLL_MS * 1000};
    event_add(w->drain_timer, &tv);
}

int worker_init(struct worker *w, int id, const struct config *cfg, char *err, size_t errlen)
{
    memset(w, 0, sizeof(*w));
    w->id = id;
    w->cfg = cfg;
    w->state = WORKER_NEW;
    w->keys.own = (const unsigned char *)cfg->tokens_cod_key;
    w->keys.own_len = strlen(cfg->tokens_cod_key);
    if (cfg->tokens_portal_key[0]) {
        w->keys.portal = (const unsigned char *)cfg->tokens_portal_key;
        w->keys.portal_len = strlen(cfg->tokens_portal_key);
        w->keys.portal_max_ttl_s = cfg->tokens_portal_max_ttl_s;
    }
    if (cfg->ehealth_jwt_key[0]) {
        w->keys.cabinet = (const unsigned char *)cfg->ehealth_jwt_key;
        w->keys.cabinet_len = strlen(cfg->ehealth_jwt_key);
        /* config.c admits HS256 and HS512 only. */
        token_alg_parse(cfg->ehealth_jwt_alg, &w->keys.cabinet_alg);
    }
    /* Request ids: a random per-worker prefix and a counter, unique across
     * workers and restarts without asking the kernel for randomness per request. */
    unsigned char rnd[4];
    util_random(rnd, sizeof(rnd));
    util_hex(rnd, sizeof(rnd), w->id_prefix);

    w->listen_fd = worker_listen(cfg, err, errlen);
    if (w->listen_fd < 0)
        return -1;
    /* The changelist folds the add/del pairs that evhttp and the hiredis
     * adapter make around every request and command into one epoll_ctl per
     * descriptor per loop turn. */
    struct event_config *ecfg = event_config_new();
    if (ecfg) {
        event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        w->base = event_base_new_with_config(ecfg);
        event_config_free(ecfg);
    }
    w->http = w->base ? evhttp_new(w->base) : NULL;
    if (!w->http) {
        snprintf(err, errlen, "cannot create the event loop");
        return -1;
    }
    evhttp_set_max_headers_size(w->http, cfg->http_max_header_size);
    evhttp_set_max_body_size(w->http, cfg->http_max_body_size);
    /* libevent 2.1 has one timeout for reading and writing a connection:
     * the read timeout, which bounds writes too; connwatch keeps a shorter
     * write timeout. */
    int ms = cfg->http_read_timeout_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evhttp_set_timeout_tv(w->http, &tv);
    evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                            EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_default_content_type(w->http, "application/json; charset=utf-8");
    evhttp_set_gencb(w->http, worker_on_request, w);
    evhttp_set_bevcb(w->http, worker_new_bev, w);
    w->bound = evhttp_accept_socket_with_handle(w->http, w->listen_fd);
    if (!w->bound) {
        snprintf(err, errlen, "cannot accept on the listener");
        return -1;
    }
    const struct connwatch_limits lim = {
        .request_timeout_ms = cfg->http_request_timeout_ms,
        .write_timeout_ms = cfg->http_write_timeout_ms,
        .input_max = (size_t)cfg->http_max_header_size + (size_t)cfg->http_max_body_size + WORKER_INPUT_SLACK,
        .input_budget = (size_t)cfg->http_max_buffered_mb << 20,
        .max_conns = cfg->http_max_connections,
    };
    w->conns = connwatch_new(w->base, &lim);
    if (!w->conns) {
        snprintf(err, errlen, "cannot start the connection watch");
        return -1;
    }
    w->stop_ev = event_new(w->base, -1, 0, worker_on_stop, w);
    w->drain_timer = event_new(w->base, -1, EV_PERSIST, worker_drain_check, w);
    metrics_register(&w->metrics);
    w->schedule = schedule_cache_new(cfg->schedule_cache_ttl_ms, SCHEDULE_CACHE_MAX_ENTRIES,
                                     SCHEDULE_CACHE_MAX_BYTES);
    if (!w->schedule) {
        snprintf(err, errlen, "cannot allocate the schedule cache");
        return -1;
    }
    w->token_memo = token_memo_new();
    if (!w->token_memo) {
        snprintf(err, errlen, "cannot allocate the token memo");
        return -1;
    }
    w->ratelimits = ratelimit_new(WORKER_RATELIMIT_SLOTS);
    if (!w->ratelimits) {
        snprintf(err, errlen, "cannot allocate the rate-limit counters");
        return -1;
    }
    return 0;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    w->redis = redis_new(w->base, w->cfg, &w->metrics);
    w->pg = pg_pool_new(w->base, w->cfg, &w->metrics);
    clientapp_start(w);
    janitor_start(w);
    event_base_dispatch(w->base);
    w->state = WORKER_DONE;
    return NULL;
}

int worker_start(struct worker *w)
{
    w->state = WORKER_RUNNING;
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

void worker_request_stop(struct worker *w)
{
    event_active(w->stop_ev, 0, 0);
}

void worker_join(struct worker *w)
{
    pthread_join(w->thread, NULL);
}

void worker_free(struct worker *w)
{
    if (w->inflight) {
        /* Handlers still hold requests: freeing under them would be worse
         * than leaving the memory to the exiting process. */
        return;
    }
    clientapp_stop(w);
    janitor_stop(w);
    redis_free(w->redis);
    pg_pool_free(w->pg);
    /* After the pool: its shutdown answers the schedule's fills under way. */
    schedule_cache_free(w->schedule);
    token_memo_free(w->token_memo);
    ratelimit_free(w->ratelimits);
    if (w->bound)
        evhttp_del_accept_socket(w->http, w->bound);
    evhttp_free(w->http);
    /* After evhttp_free, whose closing of every connection it hears. */
    connwatch_free(w->conns);
    req_spares_free(w);
    event_free(w->stop_ev);
    event_free(w->drain_timer);
    event_base_free(w->base);
}
