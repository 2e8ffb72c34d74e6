/* api/booking.c - booking endpoints for portals (seeds 001 and 002 and the
 * vendor's cancellation):
 *
 *   POST   /api/v2/iemk/doctors/entry              RPGU token, seed 001
 *   POST   /api/v2/directions/visit/{lpuGuid}      COD token, by a referral, seed 002
 *   DELETE /api/v2/iemk/doctors/visit/{visitId}    RPGU token, the patient's own booking
 *   GET    /api/v2/iemk/doctors/visits             COD or RPGU token, the patient's bookings
 *
 * Each a chain over one request:
 *   type    Content-Type application/json (bodies)         → 415
 *   token   verified at once                                → 403
 *   parse   the body or path: shape, horizon, time passed   → 400 (catalogue)
 *   book    booking_book (the token's session is read with the cell's
 *           marker) / booking_cancel (booking.h)            → the rules' codes
 *   reply   after the commit only. */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "auth.h"
#include "booking.h"
#include "config.h"
#include "ids.h"
#include "json.h"
#include "pg.h"
#include "schedule.h"
#include "worker.h"

/* A booking request is a few hundred bytes. */
#define BOOKING_MAX_BODY (16 * 1024)

static void *arena_alloc(void *ctx, size_t n)
{
    return req_alloc(ctx, n);
}

/* --- POST /api/v2/iemk/doctors/entry (seed 001) --- */

static void entry_done(struct req *r, const struct booking_result *res)
{
    struct booking_req *b = r->state;
    char entry[BOOKING_PAIR_LEN + 1];
    snprintf(entry, sizeof(entry), "%s%s", b->lpu, res->booking);
    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);
    json_gen_kv_str(g, "Entry_id", entry);
    json_gen_kv_str(g, "Ticket", res->ticket);
    yajl_gen_map_close(g);
    req_reply_gen(r, 200, g);
}

/* The bodies are read by booking_parse_entry and _direction (booking.h). */
static bool entry_parse(struct req *r, yajl_val root, struct booking_req *b,
                        struct booking_refusal *why)
{
    return booking_parse_entry(root, util_wall_us() / 1000000, r->w->cfg->schedule_horizon_days,
                               arena_alloc, r, b, why);
}

typedef bool (*booking_parse_fn)(struct req *r, yajl_val root, struct booking_req *b,
                                 struct booking_refusal *why);

/* A booking request: the type, the token (verified here; its session is
 * read with the cell's lock, booking.h), the body into a new booking, then
 * the booking. */
static void booking_start(struct req *r, enum booking_kind kind, unsigned accept,
                          booking_parse_fn parse, booking_cb done)
{
    if (!req_is_json(r)) {
        req_fail(r, E_CONTENT_TYPE);
        return;
    }
    const char *session_key;
    struct auth_state *auth = booking_auth(r, accept, &session_key);
    if (!auth)
        return;
    struct booking_req *b = req_alloc(r, sizeof(*b));
    b->kind = kind;
    b->email_agree = -1;
    yajl_val root = req_json_object(r, BOOKING_MAX_BODY, "ожидается объект");
    if (!root)
        return;
    struct booking_refusal why;
    bool ok = parse(r, root, b, &why);
    yajl_tree_free(root);
    if (!ok) {
        req_reply_error(r, why.id, why.args, why.nargs);
        return;
    }
    booking_book(r, b, auth, session_key, done);
}

void api_booking_entry(struct req *r)
{
    booking_start(r, BOOKING_ENTRY, TOKEN_RPGU, entry_parse, entry_done);
}

/* --- POST /api/v2/directions/visit/{lpuGuid} (seed 002) --- */

static void direction_done(struct req *r, const struct booking_result *res)
{
    if (!res->visit) {
        req_fail(r, E_INTERNAL);
        return;
    }
    req_reply_json(r, 200, NULL, res->visit, res->visit_len);
}

static bool direction_parse(struct req *r, yajl_val root, struct booking_req *b,
                            struct booking_refusal *why)
{
    return booking_parse_direction(root, r->params[0], util_wall_us() / 1000000,
                                   r->w->cfg->schedule_horizon_days, b, why);
}

void api_booking_direction(struct req *r)
{
    booking_start(r, BOOKING_DIRECTION, TOKEN_COD, direction_parse, direction_done);
}

/* --- DELETE /api/v2/iemk/doctors/visit/{visitId} --- */

static void cancel_done(struct req *r)
{
    req_fail(r, E_VISIT_CANCELLED);  /* 200 with the standard body, "2000" */
}

static void cancel_on_auth(struct req *r, const struct auth_session *s)
{
    char lpu[GUID_LEN + 1], booking[GUID_LEN + 1];
    if (!booking_split_pair(r->params[0], lpu, booking)) {
        req_fail1(r, E_PARAM_FORMAT, "visitId");
        return;
    }
    char visit[BOOKING_PAIR_LEN + 1];
    snprintf(visit, sizeof(visit), "%s%s", lpu, booking);
    booking_cancel(r, s->person, lpu, booking, visit, s->auth_source, cancel_done);
}

void api_booking_cancel(struct req *r)
{
    auth_require(r, TOKEN_RPGU, cancel_on_auth);
}

/* --- GET /api/v2/iemk/doctors/visits --- */

static void visits_on_pg(PGresult *res, enum store_status st, void *arg)
{
    struct req *r = arg;
    if (st != STORE_OK || PQntuples(res) != 1) {
        req_fail_store(r, st);
        return;
    }
    req_reply_json(r, 200, NULL, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

static void visits_on_auth(struct req *r, const struct auth_session *s)
{
    char max[16];
    snprintf(max, sizeof(max), "%d", r->w->cfg->booking_visits_max);
    const char *values[] = {s->person, r->w->cfg->time_zone, max};
    enum store_status st = pg_query(r->w->pg, STMT_VISITS, values, visits_on_pg, r);
    if (st != STORE_OK)
        req_fail_store(r, st);
}

void api_booking_visits(struct req *r)
{
    /* No parameter means anything here, but http.max_query_params holds
     * for every request (docs/configuration.md): 100,000 of them are
     * refused before the token is verified. */
    const char *bad;
    if (req_parse_query(r, &bad) == REQ_QUERY_TOO_MANY) {
        req_fail(r, E_PARAM_TOO_MANY);
        return;
    }
    auth_require(r, TOKEN_COD | TOKEN_RPGU, visits_on_auth);
}
