/* req.h - the request context. It owns everything a request allocates (an
 * arena freed in one go), knows its worker, route, request id and start
 * time, and is answered exactly once: every reply function sends, records
 * the metrics and the access line, and frees the context. After a reply the
 * handler must not touch it again. */
#ifndef MIPGW_REQ_H
#define MIPGW_REQ_H

#include <event2/http.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "errors.h"
#include "store.h"
#include "util.h"

#define REQ_MAX_PARAMS 6
#define REQ_ID_LEN 32

struct worker;
struct route;
struct req_chunk;
struct conn_entry;

/* One decoded query parameter. */
struct req_param {
    const char *name;
    const char *value;
};

/* What req_parse_query found. */
enum req_query_status {
    REQ_QUERY_OK,        /* parsed; req_query() answers */
    REQ_QUERY_TOO_MANY,  /* more parameters than http.max_query_params */
    REQ_QUERY_BAD,       /* a name or value that does not decode, or holds a NUL */
};

struct req {
    struct evhttp_request *ev;
    struct worker *w;
    const struct route *route;     /* NULL until routed */
    int route_idx;
    char id[REQ_ID_LEN + 1];       /* X-Request-Id: the client's if sane, else ours */
    int64_t start_us;
    char client_addr[INET6_ADDRSTRLEN];
    const char *params[REQ_MAX_PARAMS]; /* path parameters, in pattern order */
    struct req_param *query;       /* decoded query parameters, arena-owned */
    int nquery;
    bool query_parsed;
    struct req_chunk *arena;
    void *state;                   /* the handler's own, allocated from the arena */
    bool ehealth;                  /* under /private/cabinet/: errors in the eHealth envelope */
    struct conn_entry *conn;       /* its connection's watch (connwatch.h), NULL if none */
};

/* Called by the worker for each request read off a connection. */
struct req *req_new(struct worker *w, struct evhttp_request *ev);
/* Frees the worker's spare requests (at its end). */
void req_spares_free(struct worker *w);

/* Arena memory, zeroed, freed with the request. */
void *req_alloc(struct req *r, size_t n);
char *req_strdup(struct req *r, const char *s);

const char *req_header(struct req *r, const char *name);
/* "GET", "POST", ... */
const char *req_method(struct req *r);
/* Parses the query string once into r->query. Empty segments ("a=1&&b=2")
 * are skipped and a name without '=' has an empty value, as browsers do.
 * On REQ_QUERY_BAD *bad_name is the offending parameter's name (or "query"
 * when the name itself is undecodable). */
enum req_query_status req_parse_query(struct req *r, const char **bad_name);
/* Memory for req_query_decode: zeroed, and never NULL (req_alloc aborts). */
typedef void *(*req_alloc_fn)(void *ctx, size_t n);
/* The decoding of req_parse_query, on the query string q (NULL or "": no
 * parameters): more than max parameters are refused before any is decoded;
 * the pairs go to *out (allocated with alloc) and their count, which must
 * start at 0, to *nout. */
enum req_query_status req_query_decode(const char *q, int max, req_alloc_fn alloc, void *ctx,
                                       struct req_param **out, int *nout, const char **bad_name);
/* A query parameter (the first when repeated), or NULL when absent. Empty
 * values count as absent. */
const char *req_query(struct req *r, const char *name);
/* The request body as a contiguous buffer (arena-owned) and its length. */
const char *req_body(struct req *r, size_t *len);
/* Zeroes the request body where libevent keeps it, and drops it: for a
 * body that carries a secret, once it has been read. */
void req_body_wipe(struct req *r);
/* True when Content-Type is application/json, in any case, with or
 * without parameters (RFC 9110: OWS ";" parameters). */
bool req_is_json(struct req *r);
/* The body parsed as JSON (json_parse's limits), which the caller frees
 * with yajl_tree_free; NULL when it is not JSON, answered then with
 * 400/4110 and the reason. */
yajl_val req_json_body(struct req *r);

/* The body as a JSON object: NULL when answered, 413/4113 over max bytes,
 * 400/4110 when it is not JSON or not an object (`expected` names what
 * should have come). The caller frees the tree with yajl_tree_free. */
yajl_val req_json_object(struct req *r, size_t max, const char *expected);
/* Answers with a JSON body. msg_code goes to the access log ("-" if NULL). */
void req_reply_json(struct req *r, int status, const char *msg_code, const char *body, size_t len);
/* Answers with the JSON a yajl generator wrote (see json.h), and frees
 * the generator. */
void req_reply_gen(struct req *r, int status, yajl_gen g);
/* Answers with the catalogue's entry and the МИП standard body. Args fill
 * the message's placeholders in order. On an eHealth route (r->ehealth)
 * the entry's eHealth twin answers instead, in that envelope. */
void req_reply_error(struct req *r, enum err_id id, const char *const *args, int nargs);
/* Shortcuts for an error without and with one placeholder. */
void req_fail(struct req *r, enum err_id id);
void req_fail1(struct req *r, enum err_id id, const char *arg);
/* Answers a store call that failed: refused for a full queue → 503/5031,
 * an error reply (an SQL error) → 500/5000, down or late → 503/5030. */
void req_fail_store(struct req *r, enum store_status st);
/* The catalogue's entry req_fail_store answers with. */
enum err_id req_store_error(enum store_status st);
/* Answers with the eHealth catalogue's entry in the eHealth envelope;
 * invalid is the 422's "invalid" array as JSON text, or NULL. */
void req_reply_eh_error(struct req *r, enum eh_err_id id, const char *const *args, int nargs,
                        const char *invalid);
/* The eHealth success envelope {"meta": {...}, "data": <what g wrote>};
 * frees the generator. The body is wiped after sending: it may hold a
 * secret (the registration's access token). */
void req_reply_eh_gen(struct req *r, int status, yajl_gen g);
/* Plain text (metrics). */
void req_reply_text(struct req *r, int status, const char *content_type, const char *body, size_t len);

#endif
