/* router.h - method and path pattern to handler. Patterns are literal
 * segments and {named} parameters; the table in router.c is the whole map of
 * the API. */
#ifndef MIPGW_ROUTER_H
#define MIPGW_ROUTER_H

#include "req.h"

/* Paths of the eHealth cabinet: their errors use the eHealth envelope. */
#define ROUTER_EHEALTH_PREFIX "/private/cabinet/"

typedef void (*route_handler)(struct req *r);

struct route {
    const char *name;      /* label in metrics and the access log */
    unsigned methods;      /* mask of enum evhttp_cmd_type */
    const char *pattern;
    route_handler handler;
};

enum router_result {
    ROUTER_FOUND,
    ROUTER_NOT_FOUND,      /* 404 */
    ROUTER_BAD_METHOD,     /* 405: the path exists for other methods */
};

/* Matches path (without query) and method; on ROUTER_FOUND sets r->route,
 * r->route_idx and r->params (copied into r's arena). */
enum router_result router_match(struct req *r, const char *path, unsigned method);
/* Route labels for metrics, indexed like the table; the last two are the
 * pseudo-routes of unmatched requests. */
const char *const *router_names(int *n);
int router_unmatched_idx(void);

#endif
