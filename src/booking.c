/* booking.c - see booking.h. */
#include "booking.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "config.h"
#include "ids.h"
#include "json.h"
#include "log.h"
#include "pg.h"
#include "redis.h"
#include "schedule.h"
#include "worker.h"

/* --- pure pieces --- */

bool booking_split_pair(const char *s, char a[GUID_LEN + 1], char b[GUID_LEN + 1])
{
    char half[GUID_LEN + 1];
    if (!s || strlen(s) != BOOKING_PAIR_LEN)
        return false;
    memcpy(half, s, GUID_LEN);
    half[GUID_LEN] = '\0';
    return ids_guid(half, a) == ID_OK && ids_guid(s + GUID_LEN, b) == ID_OK;
}

int64_t booking_local_epoch(int y, int m, int d, int minutes)
{
    /* mktime with the wall-clock fields, so that a day with a DST change
     * still maps 09:00 to 09:00. */
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_hour = minutes / 60;
    tm.tm_min = minutes % 60;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

bool booking_cards_have_lpu(const char *cards, const char *lpu)
{
    size_t n = strlen(lpu);
    for (const char *p = cards; p && *p;) {
        if (strncmp(p, lpu, n) == 0 && p[n] == ':')
            return true;
        p = strchr(p, ',');
        if (p)
            p++;
    }
    return false;
}

/* --- the booking bodies --- */

/* A booking request is a few hundred bytes; an e-mail address at most 254. */
#define EMAIL_MAX 254

static bool refuse(struct booking_refusal *why, enum err_id id, const char *a0, const char *a1)
{
    why->id = id;
    why->args[0] = a0;
    why->args[1] = a1;
    why->nargs = a1 ? 2 : a0 ? 1 : 0;
    return false;
}

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

/* A required GUID field into out. */
static bool guid_field(yajl_val root, const char *name, char out[GUID_LEN + 1],
                       struct booking_refusal *why)
{
    bool bad = false;
    const char *v = field(root, name, &bad);
    if (!v && !bad)
        return refuse(why, E_PARAM_REQUIRED, name, NULL);
    if (bad || ids_guid(v, out) != ID_OK)
        return refuse(why, E_PARAM_FORMAT, name, NULL);
    return true;
}

/* The day and time of the visit: checked, within the horizon, not passed,
 * into b->begin_s. */
static bool when_fields(yajl_val root, const char *day_name, int64_t now, int horizon,
                        struct booking_req *b, struct booking_refusal *why)
{
    bool bad = false;
    const char *day = field(root, day_name, &bad);
    int y, m, d, h, min;
    if (!day && !bad)
        return refuse(why, E_PARAM_REQUIRED, day_name, NULL);
    if (bad || ids_date_or_datetime(day, &y, &m, &d) != ID_OK)
        return refuse(why, E_PARAM_FORMAT, day_name, NULL);
    const char *time = field(root, "time", &bad);
    if (!time && !bad)
        return refuse(why, E_PARAM_REQUIRED, "time", NULL);
    if (bad || ids_time_hhmm(time, &h, &min) != ID_OK)
        return refuse(why, E_PARAM_FORMAT, "time", NULL);
    snprintf(b->day, sizeof(b->day), "%04d-%02d-%02d", y, m, d);
    snprintf(b->time, sizeof(b->time), "%02d:%02d", h, min);
    /* The schedule view's own rule for the days a portal may ask. */
    int64_t visit_day = schedule_day(y, m, d), from, to;
    if (schedule_range_check(schedule_today(now), horizon, visit_day, visit_day, &from, &to) ==
        SCHED_RANGE_HORIZON) {
        snprintf(why->num, sizeof(why->num), "%d", horizon);
        return refuse(why, E_SCHEDULE_PERIOD, why->num, NULL);
    }
    b->begin_s = booking_local_epoch(y, m, d, h * 60 + min);
    if (b->begin_s <= now)
        return refuse(why, E_CELL_PAST, b->day, b->time);
    return true;
}

static char *copy_str(booking_alloc_fn alloc, void *ctx, const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(alloc(ctx, n), s, n);
}

/* Seed 001's optional contact fields. */
static bool contact_fields(yajl_val root, booking_alloc_fn alloc, void *ctx,
                           struct booking_req *b, struct booking_refusal *why)
{
    bool bad = false;
    const char *email = field(root, "email", &bad);
    if (bad || (email && (strlen(email) > EMAIL_MAX || !strchr(email, '@') || email[0] == '@' ||
                          strpbrk(email, " \t\r\n") || email[strlen(email) - 1] == '@')))
        return refuse(why, E_PARAM_FORMAT, "email", NULL);
    b->email = email ? copy_str(alloc, ctx, email) : NULL;
    const char *phone = field(root, "phone", &bad);
    char digits[12];
    if (bad || (phone && ids_phone_ru(phone, digits) != ID_OK))
        return refuse(why, E_PARAM_FORMAT, "phone", NULL);
    b->phone = phone ? copy_str(alloc, ctx, digits) : NULL;
    yajl_val agree = json_get(root, "email_confirm_agree");
    b->email_agree = -1;
    if (!json_is_null(agree)) {
        if (YAJL_IS_INTEGER(agree) && (YAJL_GET_INTEGER(agree) == 0 || YAJL_GET_INTEGER(agree) == 1))
            b->email_agree = (int)YAJL_GET_INTEGER(agree);
        else if (YAJL_IS_TRUE(agree) || YAJL_IS_FALSE(agree))
            b->email_agree = YAJL_IS_TRUE(agree);
        else
            return refuse(why, E_PARAM_FORMAT, "email_confirm_agree", NULL);
    }
    return true;
}

bool booking_parse_entry(yajl_val root, int64_t now, int horizon, booking_alloc_fn alloc,
                         void *ctx, struct booking_req *b, struct booking_refusal *why)
{
    why->id = E_NONE;
    why->nargs = 0;
    bool bad_id = false, bad_type = false, bad_doctor = false, bad_time = false, bad = false;
    const char *dir_id = field(root, "directionID", &bad_id);
    const char *dir_type = field(root, "directionType", &bad_type);
    if ((!dir_id && !bad_id) != (!dir_type && !bad_type))
        return refuse(why, E_DIRECTION_PAIR, NULL, NULL);
    /* Absent, null or "": the seed's 4036; present but not a string: 4101
     * below, with the field's name. */
    const char *doctor = field(root, "doctor_id", &bad_doctor);
    const char *time = field(root, "time", &bad_time);
    if ((!doctor && !bad_doctor) || (!time && !bad_time))
        return refuse(why, E_TIME_OR_CELL_EMPTY, NULL, NULL);
    if (bad_id || (dir_id && ids_guid(dir_id, b->referral) != ID_OK))
        return refuse(why, E_PARAM_FORMAT, "directionID", NULL);
    if (bad_type)
        return refuse(why, E_PARAM_FORMAT, "directionType", NULL);
    const char *mcod = field(root, "lpu_code", &bad);
    if (!mcod && !bad)
        return refuse(why, E_PARAM_REQUIRED, "lpu_code", NULL);
    if (bad || ids_mcod(mcod) != ID_OK)
        return refuse(why, E_PARAM_FORMAT, "lpu_code", NULL);
    b->mcod = copy_str(alloc, ctx, mcod);
    if (!booking_split_pair(doctor, b->lpu, b->resource))
        return refuse(why, E_PARAM_FORMAT, "doctor_id", NULL);
    return when_fields(root, "day", now, horizon, b, why) &&
           contact_fields(root, alloc, ctx, b, why);
}

bool booking_parse_direction(yajl_val root, const char *path_lpu, int64_t now, int horizon,
                             struct booking_req *b, struct booking_refusal *why)
{
    why->id = E_NONE;
    why->nargs = 0;
    char lpu[GUID_LEN + 1];
    if (ids_guid(path_lpu, lpu) != ID_OK)
        return refuse(why, E_PARAM_FORMAT, "lpuGuid", NULL);
    if (!guid_field(root, "lpuGuid", b->lpu, why) ||
        !guid_field(root, "resourceGuid", b->resource, why) ||
        !guid_field(root, "directionGuid", b->referral, why))
        return false;
    if (strcmp(lpu, b->lpu) != 0)
        return refuse(why, E_LPU_MISMATCH, "{lpuGuid} пути", "lpuGuid");
    return when_fields(root, "date", now, horizon, b, why);
}

/* --- Redis: the fast path ---
 *
 * A cell's keys, "cell:<kind>:<resource>:<begin>" (begin in epoch seconds):
 *   lock    a booking of the cell is being written (its lock value)
 *   booked  the marker: the person who holds the cell
 *   freed   the cell was just cancelled: a marker still on its way (a
 *           refusal that read the booking before the cancellation) must
 *           not be written back */
static void cell_key(const char *kind, const char *resource, int64_t begin_s, char *out, size_t cap)
{
    snprintf(out, cap, "cell:%s:%s:%lld", kind, resource, (long long)begin_s);
}

/* How long a cancelled cell's freed key lives: longer than a marker write
 * can be on its way, from a booking's PostgreSQL call (which a failed
 * batch may run twice) to its Redis script. */
static int64_t freed_ttl_ms(const struct config *cfg)
{
    return 2 * (int64_t)cfg->pg_timeout_ms + cfg->redis_timeout_ms + 5000;
}

/* KEYS marker, lock; ARGV person, lock value, lock ttl (ms). Answers the
 * verdict: 0 taken by someone else; 1 locked for us; 2 the patient's own (a
 * booking it holds, or its own booking of the cell under way): on to
 * PostgreSQL, without the lock, for the answer it holds. */
static struct redis_script try_script = {
    "local holder = redis.call('GET', KEYS[1])\n"
    "if holder then if holder == ARGV[1] then return 2 end return 0 end\n"
    "if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end\n"
    "local v = redis.call('GET', KEYS[2])\n"
    "if v and string.sub(v, 1, 36) == ARGV[1] then return 2 end\n"
    "return 0\n",
    ""};

/* KEYS marker, lock, freed; ARGV holder ("" none), lock value ("" none),
 * marker ttl (ms). No marker on a cell just cancelled. Compare-and-delete:
 * a lock that expired and was taken by another booking is not ours to
 * delete. */
static struct redis_script done_script = {
    "if ARGV[1] ~= '' and redis.call('EXISTS', KEYS[3]) == 0 then\n"
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])\n"
    "end\n"
    "if ARGV[2] ~= '' and redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end\n"
    "return 1\n",
    ""};

/* KEYS marker, freed; ARGV the freed key's lifetime (ms), the person who
 * cancelled. The marker goes if it names that person: a cancellation asked
 * again, after the cell was booked by someone else, leaves theirs. */
static struct redis_script cancel_script = {
    "if redis.call('GET', KEYS[1]) == ARGV[2] then redis.call('DEL', KEYS[1]) end\n"
    "redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])\n"
    "return 1\n",
    ""};

static pthread_once_t scripts_once = PTHREAD_ONCE_INIT;

static void booking_scripts_init(void)
{
    redis_script_init(&try_script);
    redis_script_init(&done_script);
    redis_script_init(&cancel_script);
}

/* A lock's release, kept past its request for when the script that
 * carried it got no answer. */
struct unlock {
    struct redis *rd;
    char marker_key[96], lock_key[96], freed_key[96];
    char lock_value[2 * GUID_LEN + 2], ttl[24];
};

/* The lock is let go once Redis is back (redis_eval_later), rather than
 * left to its lifetime; the marker is not written late: a cancellation
 * meanwhile could not have removed it. */
static void unlock_later(const struct unlock *u)
{
    const char *argv[] = {u->marker_key, u->lock_key, u->freed_key, "", u->lock_value, u->ttl};
    redis_eval_later(u->rd, &done_script, 3, 6, argv);
}

static void on_done_reply(const redisReply *reply, enum store_status st, void *arg)
{
    struct unlock *u = arg;  /* NULL: no lock to let go */
    (void)reply;
    /* A missing marker only costs the next attempt a trip to PostgreSQL. */
    if (st != STORE_OK) {
        log_debug("booking: marker/unlock not written (%s)", store_status_name(st));
        if (u)
            unlock_later(u);
    }
    free(u);
}

/* Once the booking is settled (PostgreSQL answered, or it was refused
 * before it): the marker (holder NULL: none) and the unlock, not waited
 * for. A no-op when there is neither. Redis away, or the script without an
 * answer (often because the lock script missed its deadline, and may have
 * taken the lock all the same): the unlock alone goes later. */
static void booking_redis_done(struct req *r, struct booking_req *b, const char *holder)
{
    if (!b->locked && !holder)
        return;
    int64_t now = util_wall_us() / 1000000;
    int64_t ttl_ms = (int64_t)r->w->cfg->booking_marker_ttl_s * 1000;
    /* Past its begin a cell is refused before Redis is asked. */
    int64_t until_begin_ms = (b->begin_s - now + 60) * 1000;
    if (until_begin_ms < ttl_ms)
        ttl_ms = until_begin_ms > 1000 ? until_begin_ms : 1000;
    struct unlock *u = NULL;
    if (b->locked) {
        u = malloc(sizeof(*u));
        if (!u)
            abort();
        u->rd = r->w->redis;
        memcpy(u->marker_key, b->marker_key, sizeof(u->marker_key));
        memcpy(u->lock_key, b->lock_key, sizeof(u->lock_key));
        memcpy(u->freed_key, b->freed_key, sizeof(u->freed_key));
        memcpy(u->lock_value, b->lock_value, sizeof(u->lock_value));
    }
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_ms);
    if (u)
        memcpy(u->ttl, ttl, sizeof(u->ttl));
    const char *argv[] = {b->marker_key, b->lock_key, b->freed_key, holder ? holder : "",
                          b->locked ? b->lock_value : "", ttl};
    if (redis_eval(r->w->redis, &done_script, on_done_reply, u, 3, 6, argv) != STORE_OK) {
        if (u)
            unlock_later(u);
        free(u);
    }
    b->locked = false;
}

/* --- PostgreSQL: the write --- */

struct refusal {
    const char *reason;
    enum err_id entry, direction;
};

/* mip_book's refusals and the answer each gets per endpoint. */
static const struct refusal refusals[] = {
    {"no_lpu", E_LPU_NOT_FOUND, E_LPU_NOT_FOUND},
    {"lpu_mismatch", E_LPU_MISMATCH, E_LPU_MISMATCH},
    {"no_resource", E_RESOURCE_NOT_FOUND, E_RESOURCE_NOT_FOUND},
    {"no_card", E_NO_MKAB_IN_LPU, E_NO_EMK},
    {"card_closed", E_NO_MKAB_IN_LPU, E_EMK_CLOSED},
    {"no_cell", E_CELL_NONE, E_CELL_NONE},
    {"cell_taken", E_CELL_TAKEN, E_CELL_TAKEN},
    {"cell_past", E_CELL_PAST, E_CELL_PAST},
    {"cell_closed", E_CELL_CLOSED, E_CELL_CLOSED},
    {"self_block", E_SELF_BOOKING_BLOCKED, E_SELF_BOOKING_BLOCKED},
    {"children", E_CHILDREN_LPU, E_CHILDREN_LPU},
    {"age_limits", E_AGE_GROUP, E_AGE_GROUP},
    {"dispensary", E_NOT_ON_DISPENSARY, E_NOT_ON_DISPENSARY},
    {"referral", E_DIRECTION_UNKNOWN, E_DIRECTION_UNKNOWN},
    {"referral_required", E_REFERRAL_REQUIRED, E_REFERRAL_REQUIRED},
    {"one_per_spec", E_ONE_PER_SPECIALITY, E_ONE_PER_SPECIALITY},
};

/* Answers a refusal with its message's placeholders filled. */
static void booking_refuse(struct req *r, struct booking_req *b, enum err_id id, yajl_val ans)
{
    switch (id) {
    case E_LPU_NOT_FOUND:  /* the LPU the GUIDs name (an lpu_code of another is 4108) */
        req_fail1(r, id, b->lpu);
        return;
    case E_LPU_MISMATCH: {
        const char *args[] = {"lpu_code", "doctor_id"};
        req_reply_error(r, id, args, 2);
        return;
    }
    case E_RESOURCE_NOT_FOUND:
    case E_NO_MKAB_IN_LPU: {
        const char *args[2] = {id == E_NO_MKAB_IN_LPU ? b->person : b->resource,
                               b->mcod ? b->mcod : b->lpu};
        req_reply_error(r, id, args, 2);
        return;
    }
    case E_CELL_NONE:
    case E_CELL_PAST: {
        const char *args[] = {b->day, b->time};
        req_reply_error(r, id, args, 2);
        return;
    }
    case E_ONE_PER_SPECIALITY: {
        const char *args[] = {json_str(json_get(ans, "fio")), json_str(json_get(ans, "time"))};
        req_reply_error(r, id, args, 2);
        return;
    }
    default:
        req_fail(r, id);
        return;
    }
}

/* The JSON object a booking function answered, in the first column of its
 * one row; NULL with *fail set when the store failed or the answer does not
 * parse (a bug: 500). The caller answers, after what it must do first. */
static yajl_val function_answer(PGresult *res, enum store_status st, enum err_id *fail)
{
    if (st != STORE_OK) {
        *fail = req_store_error(st);
        return NULL;
    }
    char err[64];
    yajl_val ans = PQntuples(res) != 1 ? NULL
                   : json_parse(PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0), 4, err,
                                sizeof(err));
    if (!ans || !YAJL_IS_OBJECT(ans)) {
        yajl_tree_free(ans);
        *fail = E_INTERNAL;
        return NULL;
    }
    return ans;
}

static void booking_on_pg(PGresult *res, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct booking_req *b = r->state;
    if (st == STORE_ERROR && strcmp(pg_sqlstate(res), "23505") == 0) {
        /* The unique indexes, when a booking raced past the row lock (a
         * cell whose row changed under it): the cell, or the referral. */
        const char *c = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
        bool referral = c && strcmp(c, "bookings_one_per_referral") == 0;
        booking_redis_done(r, b, NULL);
        req_fail(r, referral ? E_DIRECTION_UNKNOWN : E_CELL_TAKEN);
        return;
    }
    enum err_id fail;
    yajl_val ans = function_answer(res, st, &fail);
    if (!ans) {
        booking_redis_done(r, b, NULL);
        req_fail(r, fail);
        return;
    }
    const char *reason = json_str(json_get(ans, "e"));
    if (reason) {
        enum err_id id = E_INTERNAL;
        for (size_t i = 0; i < ARRAY_LEN(refusals); i++) {
            if (strcmp(reason, refusals[i].reason) == 0)
                id = b->kind == BOOKING_ENTRY ? refusals[i].entry : refusals[i].direction;
        }
        /* A taken cell Redis did not know of is known to it from now on. */
        booking_redis_done(r, b, id == E_CELL_TAKEN ? json_str(json_get(ans, "holder")) : NULL);
        booking_refuse(r, b, id, ans);
        yajl_tree_free(ans);
        return;
    }
    const char *booking = json_str(json_get(ans, "booking"));
    const char *ticket = json_str(json_get(ans, "ticket"));
    if (!booking || !ticket) {
        yajl_tree_free(ans);
        booking_redis_done(r, b, NULL);
        req_fail(r, E_INTERNAL);
        return;
    }
    struct booking_result out = {
        .booking = req_strdup(r, booking),
        .ticket = req_strdup(r, ticket),
        .existing = YAJL_IS_TRUE(json_get(ans, "existing")),
    };
    yajl_tree_free(ans);
    if (!PQgetisnull(res, 0, 1)) {
        out.visit = req_strdup(r, PQgetvalue(res, 0, 1));
        out.visit_len = (size_t)PQgetlength(res, 0, 1);
    }
    booking_redis_done(r, b, b->person);
    schedule_cache_drop(r->w, b->resource);
    b->cb(r, &out);
}

/* mip_book's argument: the booking and the rules of the configuration. */
static void booking_query(struct req *r, struct booking_req *b, struct buf *out)
{
    const struct config *cfg = r->w->cfg;
    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);
    json_gen_kv_str(g, "person", b->person);
    json_gen_kv_str(g, "lpu", b->lpu);
    if (b->mcod)
        json_gen_kv_str(g, "mcod", b->mcod);
    json_gen_kv_str(g, "resource", b->resource);
    json_gen_kv_int(g, "begin", b->begin_s);
    if (b->referral[0])
        json_gen_kv_str(g, "referral", b->referral);
    if (b->email)
        json_gen_kv_str(g, "email", b->email);
    if (b->phone)
        json_gen_kv_str(g, "phone", b->phone);
    if (b->email_agree >= 0)
        json_gen_kv_bool(g, "email_agree", b->email_agree == 1);
    json_gen_kv_str(g, "source", b->source);
    json_gen_kv_str(g, "login", b->source);
    json_gen_kv_str(g, "tz", cfg->time_zone);
    json_gen_kv_bool(g, "full", b->kind == BOOKING_DIRECTION);
    json_gen_str(g, "rules");
    yajl_gen_map_open(g);
    json_gen_kv_bool(g, "internet", cfg->booking_rule_internet_access);
    json_gen_kv_bool(g, "self_block", cfg->booking_rule_self_booking_block);
    json_gen_kv_bool(g, "children", cfg->booking_rule_children_lpu);
    json_gen_kv_int(g, "children_age", cfg->booking_children_lpu_age);
    json_gen_kv_bool(g, "age_limits", cfg->booking_rule_age_limits);
    json_gen_kv_bool(g, "dispensary", cfg->booking_rule_dispensary);
    json_gen_kv_bool(g, "referral_only", cfg->booking_rule_referral_only);
    json_gen_kv_bool(g, "one_per_spec", cfg->booking_rule_one_per_speciality);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    json_gen_finish(g, out);
}

static void booking_write(struct req *r, struct booking_req *b)
{
    struct buf q;
    buf_init(&q);
    booking_query(r, b, &q);
    const char *values[] = {q.data};
    enum store_status st = pg_query(r->w->pg, STMT_BOOK, values, booking_on_pg, r);
    buf_free(&q);
    if (st != STORE_OK) {
        booking_redis_done(r, b, NULL);
        req_fail_store(r, st);
    }
}

/* What the marker or the lock script said. */
enum {
    TRY_UNKNOWN = -1,  /* not asked yet, or Redis did not answer: PostgreSQL alone */
    TRY_TAKEN = 0,     /* booked or being booked by someone else: 4009 */
    TRY_LOCKED = 1,    /* the lock is ours */
    TRY_OWN = 2,       /* the patient's own booking or attempt: PostgreSQL, no lock */
};

static void booking_try(struct req *r, struct booking_req *b, const char *session_key);

/* The token's session is known, and so whose booking this is. */
static void booking_on_session(struct req *r, const struct auth_session *s)
{
    struct booking_req *b = r->state;
    memcpy(b->person, s->person, sizeof(b->person));
    b->source = req_strdup(r, s->auth_source);
    /* Seed 001: the session knows the patient's open cards; no card in the
     * LPU is refused before PostgreSQL (which checks again). */
    if (b->kind == BOOKING_ENTRY && !booking_cards_have_lpu(s->cards, b->lpu)) {
        booking_redis_done(r, b, NULL);
        const char *args[] = {b->person, b->mcod};
        req_reply_error(r, E_NO_MKAB_IN_LPU, args, 2);
        return;
    }
    if (!b->tried) {
        booking_try(r, b, NULL);
        return;
    }
    if (b->verdict == TRY_TAKEN) {
        req_fail(r, E_CELL_TAKEN);
        return;
    }
    booking_write(r, b);
}

/* The Redis step has settled the verdict (TRY_UNKNOWN when Redis did not
 * answer: PostgreSQL decides alone) and, when it was asked for, read the
 * token's session (NULL: missing, or Redis away). */
static void booking_settled(struct req *r, struct booking_req *b, const char *session)
{
    if (!b->with_session) {
        if (b->verdict == TRY_TAKEN)
            req_fail(r, E_CELL_TAKEN);
        else
            booking_write(r, b);
        return;
    }
    if (b->locked && !auth_session_usable(b->auth, session)) {
        /* The session will be rebuilt from PostgreSQL (or refused), and a
         * refusal answers without coming back here: no lock is held
         * meanwhile (the booking goes on without). */
        booking_redis_done(r, b, NULL);
        b->verdict = TRY_OWN;
    }
    auth_resume(b->auth, session);
}

static void booking_on_try(const redisReply *reply, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct booking_req *b = r->state;
    if (st == STORE_OK && reply->type == REDIS_REPLY_INTEGER) {
        b->verdict = (int)reply->integer;
        b->locked = b->verdict == TRY_LOCKED;
    } else if (st != STORE_ERROR) {
        /* Sent, and no answer (a deadline missed, the connection lost):
         * Redis may have run the script and taken the lock. PostgreSQL
         * decides alone, and the lock is let go as if it were ours (a
         * compare-and-delete, a no-op if it is not). */
        b->locked = true;
    }
    booking_settled(r, b, b->session);
}

/* The lock script, for a cell that had no marker when it was read. */
static void booking_lock(struct req *r, struct booking_req *b)
{
    /* Whose lock this is: the patient (a retry of its own is let through)
     * and a random GUID (from the per-thread pool: no system call). */
    char nonce[GUID_LEN + 1];
    util_guid(nonce);
    snprintf(b->lock_value, sizeof(b->lock_value), "%s:%s", b->person, nonce);
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", r->w->cfg->booking_lock_ttl_ms);
    const char *argv[] = {b->marker_key, b->lock_key, b->person, b->lock_value, ttl};
    if (redis_eval(r->w->redis, &try_script, booking_on_try, r, 2, 5, argv) != STORE_OK)
        booking_settled(r, b, b->session);  /* not sent: no lock, PostgreSQL decides alone */
}

static void booking_on_peek(const redisReply *reply, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct booking_req *b = r->state;
    if (st != STORE_OK || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != (b->with_session ? 2u : 1u)) {
        booking_settled(r, b, NULL);  /* Redis away: PostgreSQL decides alone */
        return;
    }
    const redisReply *marker = reply->element[0];
    if (b->with_session && reply->element[1]->type == REDIS_REPLY_STRING)
        b->session = req_strdup(r, reply->element[1]->str);
    if (marker->type == REDIS_REPLY_STRING) {
        /* Booked: by this patient (its retry, answered by PostgreSQL with
         * the booking it holds) or by someone else (4009, nothing more). */
        b->verdict = strcmp(marker->str, b->person) == 0 ? TRY_OWN : TRY_TAKEN;
        booking_settled(r, b, b->session);
        return;
    }
    booking_lock(r, b);
}

/* The Redis step. The cell's marker (and the token's session) first, in one
 * plain MGET: a booked cell is settled by it without a script, which is
 * the case that comes in floods (a popular cell asked for again and again
 * after it was taken) and that Redis, shared by every gateway, must bear
 * cheaply. A cell with no marker goes on to the lock script, which reads
 * the marker again, atomically with taking the lock: one more round trip
 * for a booking that then waits for PostgreSQL's commit anyway. */
static void booking_try(struct req *r, struct booking_req *b, const char *session_key)
{
    b->tried = true;
    b->with_session = session_key != NULL;
    const char *argv[] = {"MGET", b->marker_key, session_key};
    if (redis_commandv(r->w->redis, booking_on_peek, r, session_key ? 3 : 2, argv) != STORE_OK)
        booking_settled(r, b, NULL);
}

struct auth_state *booking_auth(struct req *r, unsigned accept, const char **session_key)
{
    return auth_begin(r, accept, booking_on_session, session_key);
}

void booking_book(struct req *r, struct booking_req *b, struct auth_state *auth,
                  const char *session_key, booking_cb cb)
{
    pthread_once(&scripts_once, booking_scripts_init);
    b->cb = cb;
    b->auth = auth;
    b->verdict = TRY_UNKNOWN;
    r->state = b;
    cell_key("lock", b->resource, b->begin_s, b->lock_key, sizeof(b->lock_key));
    cell_key("booked", b->resource, b->begin_s, b->marker_key, sizeof(b->marker_key));
    cell_key("freed", b->resource, b->begin_s, b->freed_key, sizeof(b->freed_key));
    /* Our own tokens name their person: the marker and the session in one
     * round trip. A portal's token names a polis: its person comes with the
     * session, and the marker after it. */
    const char *person = auth_claimed_person(auth);
    if (person) {
        util_strlcpy(b->person, person, sizeof(b->person));
        booking_try(r, b, session_key);
        return;
    }
    auth_fetch(auth);
}

/* --- cancellation --- */

struct cancel_op {
    cancel_cb cb;
    const char *visit_id;
    char resource[GUID_LEN + 1];
    const char *person;
    char marker_key[96], freed_key[96];
};

static void cancel_on_redis(const redisReply *reply, enum store_status st, void *arg);

/* The cell's marker goes, and its freed key is set: now (answered to
 * cancel_on_redis), or, later, as soon as Redis is reachable. */
static enum store_status cancel_unmark(struct req *r, struct cancel_op *c, bool later)
{
    char ttl[24];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)freed_ttl_ms(r->w->cfg));
    const char *argv[] = {c->marker_key, c->freed_key, ttl, c->person};
    if (!later)
        return redis_eval(r->w->redis, &cancel_script, cancel_on_redis, r, 2, 4, argv);
    redis_eval_later(r->w->redis, &cancel_script, 2, 4, argv);
    return STORE_OK;
}

static void cancel_on_redis(const redisReply *reply, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct cancel_op *c = r->state;
    (void)reply;
    if (st != STORE_OK) {
        /* A marker left would answer 4009 for a free cell: it is deleted
         * once Redis is back (a marker deleted too late costs the next
         * booking of the cell only a trip to PostgreSQL). */
        log_warn("booking: a cancelled cell's marker was not deleted (%s); it is deleted once "
                 "Redis is back, or expires within booking.marker_ttl_s", store_status_name(st));
        cancel_unmark(r, c, true);
    }
    c->cb(r);
}

static void cancel_on_pg(PGresult *res, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct cancel_op *c = r->state;
    enum err_id fail;
    yajl_val ans = function_answer(res, st, &fail);
    if (!ans) {
        req_fail(r, fail);
        return;
    }
    const char *reason = json_str(json_get(ans, "e"));
    const char *resource = json_str(json_get(ans, "resource"));
    yajl_val begin = json_get(ans, "begin");
    if (reason || !resource || !begin || !YAJL_IS_INTEGER(begin)) {
        enum err_id id = !reason                        ? E_INTERNAL
                         : strcmp(reason, "visited") == 0 ? E_CANCEL_VISITED
                         : strcmp(reason, "past") == 0    ? E_CANCEL_PAST
                                                          : E_VISIT_NOT_FOUND;
        yajl_tree_free(ans);
        req_fail1(r, id, c->visit_id);
        return;
    }
    util_strlcpy(c->resource, resource, sizeof(c->resource));
    cell_key("booked", c->resource, YAJL_GET_INTEGER(begin), c->marker_key, sizeof(c->marker_key));
    cell_key("freed", c->resource, YAJL_GET_INTEGER(begin), c->freed_key, sizeof(c->freed_key));
    yajl_tree_free(ans);
    schedule_cache_drop(r->w, c->resource);
    if (cancel_unmark(r, c, false) != STORE_OK)
        cancel_on_redis(NULL, STORE_DOWN, r);
}

void booking_cancel(struct req *r, const char *person, const char *lpu, const char *booking,
                    const char *visit_id, const char *source, cancel_cb cb)
{
    const struct config *cfg = r->w->cfg;
    struct cancel_op *c = req_alloc(r, sizeof(*c));
    c->cb = cb;
    c->visit_id = req_strdup(r, visit_id);
    c->person = req_strdup(r, person);
    r->state = c;
    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);
    json_gen_kv_str(g, "person", person);
    json_gen_kv_str(g, "lpu", lpu);
    json_gen_kv_str(g, "booking", booking);
    json_gen_kv_str(g, "source", source);
    json_gen_kv_str(g, "login", source);
    json_gen_str(g, "rules");
    yajl_gen_map_open(g);
    json_gen_kv_bool(g, "delete_old_time", cfg->booking_rule_delete_old_time);
    json_gen_kv_bool(g, "delete_visit_status", cfg->booking_rule_delete_visit_status);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
    struct buf q;
    buf_init(&q);
    json_gen_finish(g, &q);
    const char *values[] = {q.data};
    enum store_status st = pg_query(r->w->pg, STMT_CANCEL, values, cancel_on_pg, r);
    buf_free(&q);
    if (st != STORE_OK)
        req_fail_store(r, st);
}
