/* req.c - see req.h. */
#include "req.h"

#include <arpa/inet.h>
#include <sys/queue.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "connwatch.h"
#include "ids.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "worker.h"

#define REQ_CHUNK_SIZE 4096

/* A chunk header; its cap bytes of space follow it directly. */
struct req_chunk {
    _Alignas(16) struct req_chunk *next;
    size_t used;
    size_t cap;
};

static char *chunk_space(struct req_chunk *c)
{
    return (char *)(c + 1);
}

void *req_alloc(struct req *r, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct req_chunk *c = r->arena;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > REQ_CHUNK_SIZE ? n : REQ_CHUNK_SIZE;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            abort();
        c->next = r->arena;
        c->used = 0;
        c->cap = cap;
        r->arena = c;
    }
    void *p = chunk_space(c) + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *req_strdup(struct req *r, const char *s)
{
    size_t n = strlen(s);
    char *p = req_alloc(r, n + 1);
    memcpy(p, s, n);
    return p;
}

static bool req_id_sane(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= REQ_ID_LEN || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                                 (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return n > 0;
}

/* The client's address: the peer, unless the peer is a trusted proxy, in
 * which case the last address it appended to X-Forwarded-For. */
static void req_client_addr(struct req *r)
{
    struct evhttp_connection *con = evhttp_request_get_connection(r->ev);
    char *peer = NULL;
    ev_uint16_t port = 0;
    if (con)
        evhttp_connection_get_peer(con, &peer, &port);
    /* An IPv4 client of a dual-stack listener ("::") shows as ::ffff:a.b.c.d:
     * it is a.b.c.d, for the trusted proxies as for the rate limits. */
    struct in_addr v4;
    if (peer && strncmp(peer, "::ffff:", 7) == 0 && inet_pton(AF_INET, peer + 7, &v4) == 1)
        peer += 7;
    util_strlcpy(r->client_addr, peer ? peer : "unknown", sizeof(r->client_addr));
    if (!peer || !worker_is_trusted_proxy(r->w, peer))
        return;
    /* The last X-Forwarded-For line: a proxy that adds a line of its own
     * rather than appending to the client's puts it after the client's. */
    const char *xff = NULL;
    struct evkeyvalq *hs = evhttp_request_get_input_headers(r->ev);
    for (struct evkeyval *h = hs ? hs->tqh_first : NULL; h; h = h->next.tqe_next)
        if (evutil_ascii_strcasecmp(h->key, "X-Forwarded-For") == 0)
            xff = h->value;
    if (!xff)
        return;
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    while (*last == ' ')
        last++;
    size_t n = strcspn(last, " ");
    struct in6_addr tmp;
    char addr[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof(addr))
        return;
    memcpy(addr, last, n);
    addr[n] = '\0';
    if (inet_pton(AF_INET, addr, &tmp) == 1 || inet_pton(AF_INET6, addr, &tmp) == 1)
        util_strlcpy(r->client_addr, addr, sizeof(r->client_addr));
}

/* The request and its first arena chunk come in one allocation: most
 * requests never need a second. */
struct req_with_chunk {
    struct req r;
    struct req_chunk chunk;
    char space[REQ_CHUNK_SIZE];  /* chunk's space: right behind its header */
};

/* A freed request's memory, kept by its worker for the next request: at
 * over 4 KiB each is a "large" block to glibc, whose every allocation first
 * merges all the small free blocks of the thread's arena, about a tenth of
 * the CPU of a request that is answered from Redis. */
struct req_spare {
    struct req_spare *next;
};
#ifdef __SANITIZE_ADDRESS__
#define REQ_SPARES_MAX 0     /* every request freed, so that AddressSanitizer sees a use after it */
#else
#define REQ_SPARES_MAX 256   /* about 1 MiB per worker at most */
#endif

_Static_assert(sizeof(struct req_with_chunk) >= sizeof(struct req_spare), "a spare fits");

static struct req_with_chunk *req_block_get(struct worker *w)
{
    struct req_spare *s = w->req_spares;
    if (s) {
        w->req_spares = s->next;
        w->nreq_spares--;
        return (struct req_with_chunk *)(void *)s;
    }
    struct req_with_chunk *rc = malloc(sizeof(*rc));
    if (!rc)
        abort();
    return rc;
}

static void req_block_put(struct worker *w, struct req_with_chunk *rc)
{
    if (w->nreq_spares >= REQ_SPARES_MAX) {
        free(rc);
        return;
    }
    struct req_spare *s = (struct req_spare *)(void *)rc;
    s->next = w->req_spares;
    w->req_spares = s;
    w->nreq_spares++;
}

void req_spares_free(struct worker *w)
{
    while (w->req_spares) {
        struct req_spare *s = w->req_spares;
        w->req_spares = s->next;
        free(s);
    }
    w->nreq_spares = 0;
}

struct req *req_new(struct worker *w, struct evhttp_request *ev)
{
    struct req_with_chunk *rc = req_block_get(w);
    struct req *r = &rc->r;
    memset(r, 0, sizeof(*r));
    rc->chunk.next = NULL;
    rc->chunk.used = 0;
    rc->chunk.cap = REQ_CHUNK_SIZE;
    r->arena = &rc->chunk;
    r->ev = ev;
    r->w = w;
    r->route_idx = router_unmatched_idx();
    r->start_us = util_mono_us();
    const char *rid = req_header(r, "X-Request-Id");
    if (rid && req_id_sane(rid))
        util_strlcpy(r->id, rid, sizeof(r->id));
    else
        snprintf(r->id, sizeof(r->id), "%s%08llx", w->id_prefix, (unsigned long long)++w->req_seq);
    req_client_addr(r);
    worker_request_begin(w);
    return r;
}

const char *req_header(struct req *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->ev), name);
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes n bytes of a form-encoded component ('+' is a space) into memory
 * from alloc. NULL when an escape is broken, when it decodes to NUL (which
 * would cut the C string short and leave the rest of the value unvalidated)
 * or when the result is not UTF-8 (it may be echoed into a JSON message). */
static char *query_decode(req_alloc_fn alloc, void *ctx, const char *s, size_t n)
{
    char *out = alloc(ctx, n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < n ? hex_digit(s[i + 1]) : -1;
            int lo = i + 2 < n ? hex_digit(s[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return NULL;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (c == '\0')
            return NULL;
        *o++ = c;
    }
    *o = '\0';
    return ids_utf8_valid(out, (size_t)(o - out)) ? out : NULL;
}

enum req_query_status req_query_decode(const char *q, int max, req_alloc_fn alloc, void *ctx,
                                       struct req_param **out, int *nout, const char **bad_name)
{
    *bad_name = NULL;
    if (!q || !*q)
        return REQ_QUERY_OK;
    /* Count before decoding: a 100,000-parameter query must cost nothing. */
    int n = 0;
    for (const char *p = q; *p; p++) {
        if (*p != '&' && (p == q || p[-1] == '&'))
            n++;
    }
    if (n > max)
        return REQ_QUERY_TOO_MANY;
    *out = alloc(ctx, sizeof(**out) * (size_t)n);
    for (const char *seg = q; *seg;) {
        size_t len = strcspn(seg, "&");
        if (len > 0) {
            size_t nlen = strcspn(seg, "=&");
            const char *name = query_decode(alloc, ctx, seg, nlen);
            if (!name || !*name) {
                *bad_name = "query";
                return REQ_QUERY_BAD;
            }
            const char *value =
                nlen < len ? query_decode(alloc, ctx, seg + nlen + 1, len - nlen - 1) : "";
            if (!value) {
                *bad_name = name;
                return REQ_QUERY_BAD;
            }
            (*out)[(*nout)++] = (struct req_param){name, value};
        }
        seg += len;
        if (*seg == '&')
            seg++;
    }
    return REQ_QUERY_OK;
}

static void *req_arena_alloc(void *ctx, size_t n)
{
    return req_alloc(ctx, n);
}

enum req_query_status req_parse_query(struct req *r, const char **bad_name)
{
    *bad_name = NULL;
    if (r->query_parsed)
        return REQ_QUERY_OK;
    r->query_parsed = true;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(r->ev);
    const char *q = uri ? evhttp_uri_get_query(uri) : NULL;
    return req_query_decode(q, r->w->cfg->http_max_query_params, req_arena_alloc, r, &r->query,
                            &r->nquery, bad_name);
}

const char *req_query(struct req *r, const char *name)
{
    for (int i = 0; i < r->nquery; i++) {
        if (strcmp(r->query[i].name, name) == 0)
            return *r->query[i].value ? r->query[i].value : NULL;
    }
    return NULL;
}

const char *req_body(struct req *r, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);
    *len = evbuffer_get_length(in);
    return *len ? (const char *)evbuffer_pullup(in, -1) : "";
}

void req_body_wipe(struct req *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);
    size_t len = evbuffer_get_length(in);
    if (len == 0)
        return;
    explicit_bzero(evbuffer_pullup(in, -1), len);
    evbuffer_drain(in, len);
}

bool req_is_json(struct req *r)
{
    static const char want[] = "application/json";
    const char *ct = req_header(r, "Content-Type");
    if (!ct)
        return false;
    ct += strspn(ct, " \t");
    if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
        return false;
    ct += sizeof(want) - 1;
    ct += strspn(ct, " \t");
    return *ct == '\0' || *ct == ';';
}

yajl_val req_json_body(struct req *r)
{
    size_t len;
    const char *body = req_body(r, &len);
    char err[160];
    yajl_val root = json_parse(body, len, JSON_MAX_DEPTH, err, sizeof(err));
    if (!root)
        req_fail1(r, E_BODY_JSON, err);
    return root;
}

static const char *req_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

const char *req_method(struct req *r)
{
    switch (evhttp_request_get_command(r->ev)) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_TRACE: return "TRACE";
    case EVHTTP_REQ_CONNECT: return "CONNECT";
    case EVHTTP_REQ_PATCH: return "PATCH";
    }
    return "?";
}

/* The one exit of every request: send, count, log, free. */
static void req_send(struct req *r, int status, const char *msg_code, const char *ctype,
                     const char *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->ev);
    evhttp_add_header(h, "Content-Type", ctype);
    evhttp_add_header(h, "X-Request-Id", r->id);
    if (r->w->state != WORKER_RUNNING)
        evhttp_add_header(h, "Connection", "close");
    evbuffer_add(evhttp_request_get_output_buffer(r->ev), body, len);
    evhttp_send_reply(r->ev, status, req_reason(status), NULL);
    connwatch_request_end(r->conn);

    int64_t lat = util_mono_us() - r->start_us;
    metrics_request(&r->w->metrics, r->route_idx, status, lat);
    if (log_access_enabled())
        log_access(r->id, req_method(r), r->route ? r->route->name : "unmatched", status,
                   msg_code, (long)lat);
    worker_request_end(r->w);
    /* The last chunk of the list is the one inside the request itself. */
    while (r->arena && r->arena->next) {
        struct req_chunk *next = r->arena->next;
        free(r->arena);
        r->arena = next;
    }
    req_block_put(r->w, (struct req_with_chunk *)(void *)r);
}

void req_reply_json(struct req *r, int status, const char *msg_code, const char *body, size_t len)
{
    req_send(r, status, msg_code, "application/json; charset=utf-8", body, len);
}

void req_reply_text(struct req *r, int status, const char *content_type, const char *body, size_t len)
{
    req_send(r, status, NULL, content_type, body, len);
}

void req_reply_gen(struct req *r, int status, yajl_gen g)
{
    struct buf body;
    buf_init(&body);
    json_gen_finish(g, &body);
    req_reply_json(r, status, NULL, body.data, body.len);
    buf_free(&body);
}

/* meta.url: the address the client used, as far as the request tells it. */
static void req_url(struct req *r, struct buf *out)
{
    const char *host = req_header(r, "Host");
    const char *uri = evhttp_request_get_uri(r->ev);
    buf_reset(out);
    if (host && *host)
        buf_printf(out, "http://%s", host);
    buf_puts(out, uri ? uri : "");
    /* The client's bytes, echoed in a JSON answer: never invalid UTF-8. */
    if (out->data)
        ids_utf8_scrub(out->data);
}

void req_reply_eh_error(struct req *r, enum eh_err_id id, const char *const *args, int nargs,
                        const char *invalid)
{
    const struct eh_err_def *d = err_eh_get(id);
    METRIC_INC(r->w->metrics.eh_errors[d->id]);
    struct buf url, body;
    buf_init(&url);
    buf_init(&body);
    req_url(r, &url);
    err_eh_body(id, args, nargs, url.data, r->id, invalid, &body);
    req_reply_json(r, d->http_status, d->type, body.data, body.len);
    buf_free(&url);
    buf_free(&body);
}

void req_reply_eh_gen(struct req *r, int status, yajl_gen data)
{
    struct buf url, body;
    buf_init(&url);
    buf_init(&body);
    req_url(r, &url);
    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);
    err_eh_meta(g, status, url.data, r->id);
    json_gen_str(g, "data");
    json_gen_finish(g, &body);
    /* yajl writes the colon with the value, which is spliced in as text. */
    buf_puts(&body, ":");
    json_gen_finish(data, &body);
    buf_puts(&body, "}");
    req_reply_json(r, status, NULL, body.data, body.len);
    explicit_bzero(body.data, body.len);
    buf_free(&url);
    buf_free(&body);
}

void req_reply_error(struct req *r, enum err_id id, const char *const *args, int nargs)
{
    if (r->ehealth) {
        /* The МИП arguments (a JSON parser's reason) fit the twin's too. */
        req_reply_eh_error(r, err_eh_twin(id), args, nargs, NULL);
        return;
    }
    const struct err_def *d = err_get(id);
    if (d->http_status >= 400)  /* the catalogue's notices (2000) are no errors */
        METRIC_INC(r->w->metrics.errors[d->id]);
    if (nargs == 0) {
        size_t len;
        const char *plain = err_plain_body(id, &len);
        req_reply_json(r, d->http_status, d->code, plain, len);
        return;
    }
    struct buf body;
    buf_init(&body);
    err_body(id, args, nargs, &body);
    req_reply_json(r, d->http_status, d->code, body.data, body.len);
    buf_free(&body);
}

void req_fail(struct req *r, enum err_id id)
{
    req_reply_error(r, id, NULL, 0);
}

void req_fail1(struct req *r, enum err_id id, const char *arg)
{
    req_reply_error(r, id, &arg, 1);
}

enum err_id req_store_error(enum store_status st)
{
    return st == STORE_BUSY ? E_OVERLOADED : st == STORE_ERROR ? E_INTERNAL : E_STORE_UNAVAILABLE;
}

void req_fail_store(struct req *r, enum store_status st)
{
    req_fail(r, req_store_error(st));
}

yajl_val req_json_object(struct req *r, size_t max, const char *expected)
{
    size_t len;
    req_body(r, &len);
    if (len > max) {
        req_fail(r, E_BODY_TOO_LARGE);
        return NULL;
    }
    yajl_val root = req_json_body(r);
    if (root && !YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        req_fail1(r, E_BODY_JSON, expected);
        return NULL;
    }
    return root;
}
