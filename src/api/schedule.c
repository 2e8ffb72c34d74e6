/* api/schedule.c - GET /api/v2/lpu/{lpuGuid}/doctor/{resourceGuid}/schedule/{dateFrom}/{dateTo}:
 * a resource's cells for portals.
 *
 *   parse   the path: GUIDs, dates, their order, the horizon  → 400 at once
 *   auth    only with an Authorization header: the token must verify, and
 *           the person's birthday and gender come from the worker's cache
 *           or PostgreSQL                                      → 403/404/503
 *   cells   the resource's cached cells (schedule.h), filled from
 *           PostgreSQL on a miss                               → 404/503
 *   reply   the cells of the range (with a token, only those whose day the
 *           patient fits the resource's age and sex limits on), each with
 *           its status computed now. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "auth.h"
#include "ids.h"
#include "pg.h"
#include "schedule.h"
#include "worker.h"

struct sched {
    char lpu[GUID_LEN + 1];
    char resource[GUID_LEN + 1];
    int64_t today, from, to;   /* days; from > to: nothing to show */
    bool patient;              /* a token was given: filter by its person */
    char person[GUID_LEN + 1];
    int birth_ymd, gender;
};

/* :"Status"} closing each cell's pre-serialized JSON. */
static const char *const status_tail[] = {
    [SCHED_AVAILABLE] = ":\"Available\"}",
    [SCHED_BOOKED] = ":\"Booked\"}",
    [SCHED_EXPIRED] = ":\"Expired\"}",
    [SCHED_UNAVAILABLE] = ":\"Unavailable\"}",
};
#define STATUS_TAIL_MAX 16

static void sched_reply(struct req *r, const struct schedule_entry *e, enum store_status st)
{
    struct sched *s = r->state;
    if (!e) {
        req_fail_store(r, st);
        return;
    }
    if (e->found == SCHED_NO_LPU) {
        req_fail1(r, E_LPU_NOT_FOUND, s->lpu);
        return;
    }
    if (e->found == SCHED_NO_RESOURCE) {
        const char *args[] = {s->resource, s->lpu};
        req_reply_error(r, E_RESOURCE_NOT_FOUND, args, 2);
        return;
    }
    /* Cells are ordered by begin, so a day range is a slice. */
    int lo = 0, hi = e->ncells;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (e->cells[mid].day < s->from)
            lo = mid + 1;
        else
            hi = mid;
    }
    int end = lo;
    size_t size = e->res_len + 32;
    while (end < e->ncells && e->cells[end].day <= s->to) {
        size += e->cells[end].len + e->tails[e->cells[end].tail].len + STATUS_TAIL_MAX + 1;
        end++;
    }
    char *body = req_alloc(r, size);
    size_t n = 0;
#define PUT(p, len) (memcpy(body + n, (p), (len)), n += (len))
    PUT("{\"resource\":", 12);
    PUT(e->json.data + e->res_off, e->res_len);
    PUT(",\"cells\":[", 10);
    int64_t now_s = util_wall_us() / 1000000;
    bool first = true;
    for (int i = lo; i < end; i++) {
        const struct schedule_cell *c = &e->cells[i];
        if (s->patient &&
            !schedule_fits(e->age_min, e->age_max, e->gender, s->birth_ymd, s->gender, c->ymd))
            continue;
        if (!first)
            body[n++] = ',';
        first = false;
        PUT(e->json.data + c->off, c->len);
        PUT(e->json.data + e->tails[c->tail].off, e->tails[c->tail].len);
        const char *tail = status_tail[schedule_cell_status(c->booked, c->internet, c->busy_type,
                                                            c->begin_s, now_s)];
        PUT(tail, strlen(tail));
    }
    PUT("]}", 2);
#undef PUT
    req_reply_json(r, 200, NULL, body, n);
}

static void sched_cells(struct req *r)
{
    struct sched *s = r->state;
    schedule_get(r, s->lpu, s->resource, s->today, sched_reply);
}

static void sched_on_person(PGresult *res, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct sched *s = r->state;
    if (st != STORE_OK) {
        req_fail_store(r, st);
        return;
    }
    if (PQntuples(res) != 1) {
        /* The token's person is gone from PostgreSQL since it was issued:
         * the answer of the seeds' token-based endpoints (404/4001). */
        req_fail(r, E_NO_EMK);
        return;
    }
    s->birth_ymd = atoi(PQgetvalue(res, 0, 0));
    s->gender = atoi(PQgetvalue(res, 0, 1));
    schedule_person_put(r->w->schedule, s->person, util_mono_us(), s->birth_ymd, s->gender);
    sched_cells(r);
}

static bool parse_day(const char *v, int64_t *day)
{
    int y, m, d;
    if (ids_date(v, &y, &m, &d) != ID_OK)
        return false;
    *day = schedule_day(y, m, d);
    return true;
}

/* Reads and checks the path into a new state, r->state; on a bad one
 * answers and returns NULL. */
static struct sched *sched_parse(struct req *r)
{
    struct sched *s = req_alloc(r, sizeof(*s));
    r->state = s;
    if (ids_guid(r->params[0], s->lpu) != ID_OK) {
        req_fail1(r, E_PARAM_FORMAT, "lpuGuid");
        return NULL;
    }
    if (ids_guid(r->params[1], s->resource) != ID_OK) {
        req_fail1(r, E_PARAM_FORMAT, "resourceGuid");
        return NULL;
    }
    int64_t from, to;
    if (!parse_day(r->params[2], &from)) {
        req_fail1(r, E_PARAM_FORMAT, "dateFrom");
        return NULL;
    }
    if (!parse_day(r->params[3], &to)) {
        req_fail1(r, E_PARAM_FORMAT, "dateTo");
        return NULL;
    }
    int horizon = r->w->cfg->schedule_horizon_days;
    s->today = schedule_today(util_wall_us() / 1000000);
    switch (schedule_range_check(s->today, horizon, from, to, &s->from, &s->to)) {
    case SCHED_RANGE_OK:
        break;
    case SCHED_RANGE_ORDER: {
        const char *args[] = {"dateTo", "dateFrom"};
        req_reply_error(r, E_DATE_ORDER, args, 2);
        return NULL;
    }
    case SCHED_RANGE_HORIZON: {
        char n[16];
        snprintf(n, sizeof(n), "%d", horizon);
        req_fail1(r, E_SCHEDULE_PERIOD, n);
        return NULL;
    }
    }
    return s;
}

/* auth_require keeps its own state in r->state: ours is made again from
 * the path (cheap, and checked already) once the token has verified. */
static void sched_on_auth(struct req *r, const struct auth_session *a)
{
    struct sched *s = sched_parse(r);
    if (!s)
        return;
    s->patient = true;
    util_strlcpy(s->person, a->person, sizeof(s->person));
    if (schedule_person_find(r->w->schedule, a->person, util_mono_us(), &s->birth_ymd, &s->gender)) {
        sched_cells(r);
        return;
    }
    const char *values[] = {s->person};
    enum store_status st = pg_query(r->w->pg, STMT_SCHEDULE_PERSON, values, sched_on_person, r);
    if (st != STORE_OK)
        req_fail_store(r, st);
}

void api_schedule(struct req *r)
{
    if (!sched_parse(r))
        return;
    if (req_header(r, "Authorization")) {
        auth_require(r, TOKEN_COD | TOKEN_RPGU, sched_on_auth);
        return;
    }
    sched_cells(r);
}
