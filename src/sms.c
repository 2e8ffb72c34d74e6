/* sms.c - see sms.h. */
#include "sms.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "redis.h"
#include "util.h"
#include "worker.h"

#define SMS_BACKOFF_MS 200   /* pause before the n-th retry: n times this */

struct sms_call {
    struct req *r;
    sms_cb cb;
    void *arg;
    struct buf body;          /* the JSON sent; wiped and freed when done */
    int attempt;              /* attempts made */
    struct event *pause;      /* an attempt's deadline, the pause after it */
    struct evhttp_connection *conn;  /* the attempt's; freed after it, off its callback */
    int code;                 /* the attempt's HTTP status; 0: none came */
};

static void sms_done(struct sms_call *c, bool sent)
{
    if (c->conn)
        evhttp_connection_free(c->conn);
    c->conn = NULL;
    explicit_bzero(c->body.data, c->body.len);
    buf_free(&c->body);
    if (c->pause)
        event_free(c->pause);
    c->pause = NULL;
    c->cb(c->r, sent, c->arg);
}

/* ---- redis: the sink list ---- */

/* KEYS list; ARGV message, max length. */
static struct redis_script sink_script = {
    "redis.call('LPUSH', KEYS[1], ARGV[1])\n"
    "redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[2]) - 1)\n"
    "return 1\n",
    ""};
static pthread_once_t sink_once = PTHREAD_ONCE_INIT;

static void sink_init(void)
{
    redis_script_init(&sink_script);
}

static void sink_on_reply(const redisReply *reply, enum store_status st, void *arg)
{
    (void)reply;
    sms_done(arg, st == STORE_OK);
}

static void sink_send(struct sms_call *c)
{
    const struct config *cfg = c->r->w->cfg;
    pthread_once(&sink_once, sink_init);
    char max[16];
    snprintf(max, sizeof(max), "%d", cfg->ehealth_sms_sink_max);
    const char *argv[] = {cfg->ehealth_sms_sink_key, c->body.data, max};
    enum store_status st = redis_eval(c->r->w->redis, &sink_script, sink_on_reply, c, 1, 3, argv);
    if (st != STORE_OK)
        sms_done(c, false);
}

/* ---- webhook ---- */

static void webhook_attempt(struct sms_call *c);

static void webhook_on_pause(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    webhook_attempt(arg);
}

/* Runs the next step after a pause of ms (0: on the next turn of the loop).
 * False when it could not: then the call is done (and c gone). */
static bool webhook_later(struct sms_call *c, event_callback_fn fn, long ms)
{
    if (c->pause)
        event_free(c->pause);
    c->pause = evtimer_new(c->r->w->base, fn, c);
    struct timeval tv = {ms / 1000, ms % 1000 * 1000};
    if (!c->pause || evtimer_add(c->pause, &tv) != 0) {
        sms_done(c, false);
        return false;
    }
    return true;
}

/* After an attempt, off libevent's callback: the connection is freed here
 * (libevent 2.1's free-on-completion does not free one whose connect
 * failed), then done, or a pause and the next attempt. */
static void webhook_after(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sms_call *c = arg;
    const struct config *cfg = c->r->w->cfg;
    evhttp_connection_free(c->conn);
    c->conn = NULL;
    if (c->code >= 200 && c->code <= 299) {
        sms_done(c, true);
        return;
    }
    if (c->code == 0)
        log_warn("sms: webhook attempt %d of %d failed: no answer within the deadline, or refused",
                 c->attempt, cfg->ehealth_sms_retries + 1);
    else
        log_warn("sms: webhook attempt %d of %d failed: HTTP %d", c->attempt,
                 cfg->ehealth_sms_retries + 1, c->code);
    if (c->attempt > cfg->ehealth_sms_retries)
        sms_done(c, false);
    else
        webhook_later(c, webhook_on_pause, (long)c->attempt * SMS_BACKOFF_MS);
}

static void webhook_on_response(struct evhttp_request *req, void *arg)
{
    struct sms_call *c = arg;
    c->code = req ? evhttp_request_get_response_code(req) : 0;
    webhook_later(c, webhook_after, 0);  /* also drops the attempt's deadline */
}

/* The attempt's whole deadline passed: libevent's own timeout restarts
 * with every byte, so an operator that trickles its answer would hold the
 * attempt (and the client) for as long as it likes. Freeing the connection
 * in webhook_after drops the request without its callback. */
static void webhook_on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct sms_call *c = arg;
    c->code = 0;
    webhook_after(fd, what, c);
}

static void webhook_attempt(struct sms_call *c)
{
    const struct config *cfg = c->r->w->cfg;
    c->attempt++;
    char host[64];
    int port;
    const char *path;
    if (!util_http_url(cfg->ehealth_sms_webhook_url, host, sizeof(host), &port, &path)) {
        sms_done(c, false);
        return;
    }
    /* One connection per attempt: an SMS is rare next to the requests, and
     * a fresh connection cannot be one the operator closed meanwhile. */
    c->conn = evhttp_connection_base_new(c->r->w->base, NULL, host, (unsigned short)port);
    struct evhttp_request *req = c->conn ? evhttp_request_new(webhook_on_response, c) : NULL;
    if (!req) {
        sms_done(c, false);
        return;
    }
    struct timeval tv = {cfg->ehealth_sms_timeout_ms / 1000, cfg->ehealth_sms_timeout_ms % 1000 * 1000};
    evhttp_connection_set_timeout_tv(c->conn, &tv);
    evhttp_connection_set_retries(c->conn, 0);
    evhttp_connection_set_max_body_size(c->conn, SMS_RESPONSE_MAX);
    evhttp_connection_set_max_headers_size(c->conn, 8192);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", host);
    evhttp_add_header(h, "Content-Type", "application/json; charset=utf-8");
    evhttp_add_header(h, "X-Request-Id", c->r->id);
    evbuffer_add(evhttp_request_get_output_buffer(req), c->body.data, c->body.len);
    /* The deadline goes first: libevent may fail the attempt inside
     * evhttp_make_request (a connect refused at once), and the callback
     * then replaces the deadline with the next step, which must stand. */
    if (!webhook_later(c, webhook_on_deadline, cfg->ehealth_sms_timeout_ms)) {
        evhttp_request_free(req);
        return;
    }
    /* On failure libevent has freed the request already. */
    if (evhttp_make_request(c->conn, req, EVHTTP_REQ_POST, path) != 0)
        sms_done(c, false);
}

void sms_send(struct req *r, const char *phone, const char *text, sms_cb cb, void *arg)
{
    struct sms_call *c = req_alloc(r, sizeof(*c));
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    buf_init(&c->body);
    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);
    json_gen_kv_str(g, "phone", phone);
    json_gen_kv_str(g, "text", text);
    json_gen_kv_int(g, "at", (long long)(util_wall_us() / 1000000));
    yajl_gen_map_close(g);
    json_gen_finish(g, &c->body);
    if (strcmp(r->w->cfg->ehealth_sms_sender, "webhook") == 0)
        webhook_attempt(c);
    else
        sink_send(c);
}
