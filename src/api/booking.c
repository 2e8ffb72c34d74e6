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
 *   book    booking_book (the token's session is read in the lock's round
 *           trip) / booking_cancel (booking.h)              → the rules' codes
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
#define EMAIL_MAX 254

/* --- parsing, shared by both booking bodies --- */

/* A string field: NULL when absent, null or empty; *bad when present but
 * not a string. */
static const char *field(yajl_val root, const char *name, bool *bad)
{
    yajl_val v = json_get(root, name);
    if (json_is_null(v))
        return NULL;
    if (!YAJL_IS_STRING(v)) {
        *bad = true;
        return NULL;
    }
    return v->u.string[0] ? v->u.string : NULL;
}

/* A required GUID field into out; false when answered. */
static bool guid_field(struct req *r, yajl_val root, const char *name, char out[GUID_LEN + 1])
{
    bool bad = false;
    const char *v = field(root, name, &bad);
    if (!v && !bad) {
        req_fail1(r, E_PARAM_REQUIRED, name);
        return false;
    }
    if (bad || ids_guid(v, out) != ID_OK) {
        req_fail1(r, E_PARAM_FORMAT, name);
        return false;
    }
    return true;
}

/* The day and time of the visit: checked, within the horizon, not passed,
 * into b->begin_s. false when answered. */
static bool when_fields(struct req *r, yajl_val root, const char *day_name, struct booking_req *b)
{
    bool bad = false;
    const char *day = field(root, day_name, &bad);
    int y, m, d, h, min;
    if (!day && !bad) {
        req_fail1(r, E_PARAM_REQUIRED, day_name);
        return false;
    }
    if (bad || ids_date_or_datetime(day, &y, &m, &d) != ID_OK) {
        req_fail1(r, E_PARAM_FORMAT, day_name);
        return false;
    }
    const char *time = field(root, "time", &bad);
    if (!time && !bad) {
        req_fail1(r, E_PARAM_REQUIRED, "time");
        return false;
    }
    if (bad || ids_time_hhmm(time, &h, &min) != ID_OK) {
        req_fail1(r, E_PARAM_FORMAT, "time");
        return false;
    }
    snprintf(b->day, sizeof(b->day), "%04d-%02d-%02d", y, m, d);
    snprintf(b->time, sizeof(b->time), "%02d:%02d", h, min);
    int64_t now = util_wall_us() / 1000000;
    int horizon = r->w->cfg->schedule_horizon_days;
    /* The schedule view's own rule for the days a portal may ask. */
    int64_t visit_day = schedule_day(y, m, d), from, to;
    if (schedule_range_check(schedule_today(now), horizon, visit_day, visit_day, &from, &to) ==
        SCHED_RANGE_HORIZON) {
        char n[16];
        snprintf(n, sizeof(n), "%d", horizon);
        req_fail1(r, E_SCHEDULE_PERIOD, n);
        return false;
    }
    b->begin_s = booking_local_epoch(y, m, d, h * 60 + min);
    if (b->begin_s <= now) {
        const char *args[] = {b->day, b->time};
        req_reply_error(r, E_CELL_PAST, args, 2);
        return false;
    }
    return true;
}

/* Seed 001's optional contact fields. false when answered. */
static bool contact_fields(struct req *r, yajl_val root, struct booking_req *b)
{
    bool bad = false;
    const char *email = field(root, "email", &bad);
    if (bad || (email && (strlen(email) > EMAIL_MAX || !strchr(email, '@') || email[0] == '@' ||
                          strpbrk(email, " \t\r\n") || email[strlen(email) - 1] == '@'))) {
        req_fail1(r, E_PARAM_FORMAT, "email");
        return false;
    }
    b->email = email ? req_strdup(r, email) : NULL;
    const char *phone = field(root, "phone", &bad);
    char digits[12];
    if (bad || (phone && ids_phone_ru(phone, digits) != ID_OK)) {
        req_fail1(r, E_PARAM_FORMAT, "phone");
        return false;
    }
    b->phone = phone ? req_strdup(r, digits) : NULL;
    yajl_val agree = json_get(root, "email_confirm_agree");
    b->email_agree = -1;
    if (!json_is_null(agree)) {
        if (YAJL_IS_INTEGER(agree) && (YAJL_GET_INTEGER(agree) == 0 || YAJL_GET_INTEGER(agree) == 1))
            b->email_agree = (int)YAJL_GET_INTEGER(agree);
        else if (YAJL_IS_TRUE(agree) || YAJL_IS_FALSE(agree))
            b->email_agree = YAJL_IS_TRUE(agree);
        else {
            req_fail1(r, E_PARAM_FORMAT, "email_confirm_agree");
            return false;
        }
    }
    return true;
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

/* Seed 001's body into b; false when answered. The seed's own checks come
 * first (4033, 4036), then each field's shape. */
static bool entry_parse(struct req *r, yajl_val root, struct booking_req *b)
{
    bool bad_id = false, bad_type = false, bad_doctor = false, bad_time = false, bad = false;
    const char *dir_id = field(root, "directionID", &bad_id);
    const char *dir_type = field(root, "directionType", &bad_type);
    if ((!dir_id && !bad_id) != (!dir_type && !bad_type)) {
        req_fail(r, E_DIRECTION_PAIR);
        return false;
    }
    /* Absent, null or "": the seed's 4036; present but not a string: 4101
     * below, with the field's name. */
    const char *doctor = field(root, "doctor_id", &bad_doctor);
    const char *time = field(root, "time", &bad_time);
    if ((!doctor && !bad_doctor) || (!time && !bad_time)) {
        req_fail(r, E_TIME_OR_CELL_EMPTY);
        return false;
    }
    if (bad_id || (dir_id && ids_guid(dir_id, b->referral) != ID_OK)) {
        req_fail1(r, E_PARAM_FORMAT, "directionID");
        return false;
    }
    if (bad_type) {
        req_fail1(r, E_PARAM_FORMAT, "directionType");
        return false;
    }
    const char *mcod = field(root, "lpu_code", &bad);
    if (!mcod && !bad) {
        req_fail1(r, E_PARAM_REQUIRED, "lpu_code");
        return false;
    }
    if (bad || ids_mcod(mcod) != ID_OK) {
        req_fail1(r, E_PARAM_FORMAT, "lpu_code");
        return false;
    }
    b->mcod = req_strdup(r, mcod);
    if (!booking_split_pair(doctor, b->lpu, b->resource)) {
        req_fail1(r, E_PARAM_FORMAT, "doctor_id");
        return false;
    }
    return when_fields(r, root, "day", b) && contact_fields(r, root, b);
}

typedef bool (*booking_parse_fn)(struct req *r, yajl_val root, struct booking_req *b);

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
    bool ok = parse(r, root, b);
    yajl_tree_free(root);
    if (ok)
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

static bool direction_parse(struct req *r, yajl_val root, struct booking_req *b)
{
    char path_lpu[GUID_LEN + 1];
    if (ids_guid(r->params[0], path_lpu) != ID_OK) {
        req_fail1(r, E_PARAM_FORMAT, "lpuGuid");
        return false;
    }
    if (!guid_field(r, root, "lpuGuid", b->lpu) ||
        !guid_field(r, root, "resourceGuid", b->resource) ||
        !guid_field(r, root, "directionGuid", b->referral))
        return false;
    if (strcmp(path_lpu, b->lpu) != 0) {
        const char *args[] = {"{lpuGuid} пути", "lpuGuid"};
        req_reply_error(r, E_LPU_MISMATCH, args, 2);
        return false;
    }
    return when_fields(r, root, "date", b);
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
    auth_require(r, TOKEN_COD | TOKEN_RPGU, visits_on_auth);
}
