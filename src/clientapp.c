/* clientapp.c - see clientapp.h. */
#include "clientapp.h"

#include <stdlib.h>

#include <event2/event.h>
#include <string.h>

#include "log.h"
#include "pg.h"
#include "util.h"
#include "worker.h"

#define CLIENTAPP_RETRY_MS 200  /* until the first load; readiness waits for it */

static void clientapp_arm(struct clientapp_cache *c, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

static void clientapp_on_rows(PGresult *res, enum store_status st, void *arg)
{
    struct clientapp_cache *c = arg;
    if (!c->timer)
        return;  /* stopped while the query was out */
    if (st != STORE_OK) {
        clientapp_arm(c, c->loaded ? CLIENTAPP_REFRESH_MS : CLIENTAPP_RETRY_MS);
        return;
    }
    int n = PQntuples(res);
    if (n > CLIENTAPP_MAX) {
        /* Said at every load, so that it is seen: the applications past
         * the limit get 403/5096 as unknown ones do. */
        log_warn("client applications: more than %d; those after the first %d by name are"
                 " not known to this gateway", CLIENTAPP_MAX, CLIENTAPP_MAX);
        n = CLIENTAPP_MAX;
    }
    for (int i = 0; i < n; i++) {
        struct clientapp *a = &c->apps[i];
        util_strlcpy(a->guid, PQgetvalue(res, i, 0), sizeof(a->guid));
        if ((size_t)PQgetlength(res, i, 1) >= sizeof(a->mnem))
            log_warn("client application %s: its mnemonic is cut to %zu bytes", a->guid,
                     sizeof(a->mnem) - 1);
        util_strlcpy(a->mnem, PQgetvalue(res, i, 1), sizeof(a->mnem));
        a->is_default = PQgetvalue(res, i, 2)[0] == 't';
    }
    c->n = n;
    c->loaded = true;
    clientapp_arm(c, CLIENTAPP_REFRESH_MS);
}

/* The janitor: reload the list now and then, so that an application added
 * in PostgreSQL is known within CLIENTAPP_REFRESH_MS without a restart. */
static void clientapp_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct clientapp_cache *c = arg;
    (void)fd;
    (void)what;
    if (pg_query(c->w->pg, STMT_CLIENT_APPS, NULL, clientapp_on_rows, c) != STORE_OK)
        clientapp_arm(c, CLIENTAPP_RETRY_MS);
}

void clientapp_start(struct worker *w)
{
    struct clientapp_cache *c = &w->apps;
    c->w = w;
    c->timer = evtimer_new(w->base, clientapp_on_timer, c);
    if (!c->timer)
        abort();
    /* The pool is still connecting: the first attempt waits a moment. */
    clientapp_arm(c, 50);
}

void clientapp_stop(struct worker *w)
{
    if (w->apps.timer) {
        event_free(w->apps.timer);
        w->apps.timer = NULL;
    }
}

const struct clientapp *clientapp_find(const struct clientapp_cache *c, const char *guid)
{
    for (int i = 0; i < c->n; i++) {
        const struct clientapp *a = &c->apps[i];
        if (guid ? strcmp(a->guid, guid) == 0 : a->is_default)
            return a;
    }
    return NULL;
}
