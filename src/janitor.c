/* janitor.c - see janitor.h. */
#include "janitor.h"

#include <event2/event.h>
#include <stdlib.h>

#include "log.h"
#include "pg.h"
#include "worker.h"

static void janitor_arm(struct janitor *j)
{
    struct timeval tv = {JANITOR_INTERVAL_MS / 1000, JANITOR_INTERVAL_MS % 1000 * 1000};
    evtimer_add(j->timer, &tv);
}

static void janitor_on_swept(PGresult *res, enum store_status st, void *arg)
{
    struct janitor *j = arg;
    j->busy = false;
    if (st == STORE_OK && PQntuples(res) == 1) {
        long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        if (n > 0)
            log_info("janitor: swept %ld expired cabinet rows", n);
    } else {
        /* The next turn tries again. */
        log_debug("janitor: sweep failed (%s)", store_status_name(st));
    }
}

static void janitor_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct janitor *j = arg;
    if (!j->busy && pg_query(j->w->pg, STMT_CAB_SWEEP, NULL, janitor_on_swept, j) == STORE_OK)
        j->busy = true;
    janitor_arm(j);
}

void janitor_start(struct worker *w)
{
    struct janitor *j = &w->janitor;
    j->w = w;
    if (w->id != 0)
        return;
    j->timer = evtimer_new(w->base, janitor_on_timer, j);
    if (j->timer)
        janitor_arm(j);
}

void janitor_stop(struct worker *w)
{
    if (w->janitor.timer) {
        event_free(w->janitor.timer);
        w->janitor.timer = NULL;
    }
}
