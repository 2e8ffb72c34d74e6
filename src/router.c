/* router.c - see router.h. */
#include "router.h"

#include <pthread.h>
#include <string.h>

#include "api/api.h"

#define GET EVHTTP_REQ_GET
#define POST EVHTTP_REQ_POST
#define DELETE EVHTTP_REQ_DELETE

static const struct route routes[] = {
    {"health", GET, "/health", api_health},
    {"ready", GET, "/ready", api_ready},
    {"metrics", GET, "/metrics", api_metrics},
    {"cod_token", GET, "/auth/cod/token", api_cod_token},
    {"rpgu_token", GET, "/auth/rpgu/token", api_rpgu_token},
    {"token_session", GET, "/auth/session", api_token_session},
    {"mis_whoami", GET, "/mis/v1/whoami", api_mis_whoami},
    {"mis_lpus", POST, "/mis/v1/lpus", api_mis_lpus},
    {"mis_resources", POST, "/mis/v1/resources", api_mis_resources},
    {"mis_cells", POST, "/mis/v1/cells", api_mis_cells},
    {"mis_referrals", POST, "/mis/v1/referrals", api_mis_referrals},
    {"mis_dispensary", POST, "/mis/v1/dispensary", api_mis_dispensary},
    {"patients_upload", POST, "/patients", api_patients_upload},
    {"schedule", GET, "/api/v2/lpu/{lpuGuid}/doctor/{resourceGuid}/schedule/{dateFrom}/{dateTo}",
     api_schedule},
    {"booking_entry", POST, "/api/v2/iemk/doctors/entry", api_booking_entry},
    {"booking_direction", POST, "/api/v2/directions/visit/{lpuGuid}", api_booking_direction},
    {"booking_cancel", DELETE, "/api/v2/iemk/doctors/visit/{visitId}", api_booking_cancel},
    {"booking_visits", GET, "/api/v2/iemk/doctors/visits", api_booking_visits},
    {"cabinet_user_request", POST, ROUTER_EHEALTH_PREFIX "user_requests", api_cabinet_user_request},
    {"cabinet_otp", POST, ROUTER_EHEALTH_PREFIX "verifications", api_cabinet_otp},
    {"cabinet_register", POST, ROUTER_EHEALTH_PREFIX "registration/user_request", api_cabinet_register},
};

#define NROUTES ((int)ARRAY_LEN(routes))

static const char *names[NROUTES + 1];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

/* Filled once: every worker's /metrics asks, and two at once must not
 * both write the table. */
static void names_fill(void)
{
    for (int i = 0; i < NROUTES; i++)
        names[i] = routes[i].name;
    names[NROUTES] = "unmatched";
}

const char *const *router_names(int *n)
{
    pthread_once(&names_once, names_fill);
    *n = NROUTES + 1;
    return names;
}

int router_unmatched_idx(void)
{
    return NROUTES;
}

/* Compares one pattern against a path, segment by segment. Parameters are
 * recorded as offsets into the path; nothing is copied unless it matches. */
static bool route_matches(const char *pattern, const char *path, const char **starts, size_t *lens,
                          int *nparams)
{
    const char *p = pattern, *s = path;
    *nparams = 0;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return false;
        p++;
        s++;
        const char *pend = strchr(p, '/');
        const char *send = strchr(s, '/');
        size_t plen = pend ? (size_t)(pend - p) : strlen(p);
        size_t slen = send ? (size_t)(send - s) : strlen(s);
        if (plen > 1 && p[0] == '{' && p[plen - 1] == '}') {
            if (slen == 0 || *nparams >= REQ_MAX_PARAMS)
                return false;
            starts[*nparams] = s;
            lens[*nparams] = slen;
            (*nparams)++;
        } else if (plen != slen || memcmp(p, s, plen) != 0) {
            return false;
        }
        p += plen;
        s += slen;
    }
    return *p == '\0' && *s == '\0';
}

enum router_result router_match(struct req *r, const char *path, unsigned method)
{
    const char *starts[REQ_MAX_PARAMS];
    size_t lens[REQ_MAX_PARAMS];
    int nparams;
    bool path_known = false;

    /* The cabinet's family answers in the eHealth envelope, its 404s and
     * 405s included. */
    r->ehealth = strncmp(path, ROUTER_EHEALTH_PREFIX, sizeof(ROUTER_EHEALTH_PREFIX) - 1) == 0;

    for (int i = 0; i < NROUTES; i++) {
        if (!route_matches(routes[i].pattern, path, starts, lens, &nparams))
            continue;
        path_known = true;
        if (!(routes[i].methods & method))
            continue;
        r->route = &routes[i];
        r->route_idx = i;
        for (int k = 0; k < nparams; k++) {
            char *v = req_alloc(r, lens[k] + 1);
            memcpy(v, starts[k], lens[k]);
            r->params[k] = v;
        }
        return ROUTER_FOUND;
    }
    return path_known ? ROUTER_BAD_METHOD : ROUTER_NOT_FOUND;
}
