/* check_e2e_schedule.c - the schedule view for portals over HTTP:
 * GET /api/v2/lpu/{lpuGuid}/doctor/{resourceGuid}/schedule/{dateFrom}/{dateTo}.
 *
 * Runs under tests/e2e.sh (see check_e2e.c for the environment). Each test
 * makes its own resource and cells directly in PostgreSQL in the demo LPU
 * 470102, so that no test sees another's cells or cache entries; the gateway
 * runs with the default [schedule] settings (horizon 21 days, cache 5000 ms)
 * and time zone Europe/Moscow. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "e2e_util.h"
#include "httpc.h"

#define TZ "Europe/Moscow"
#define HORIZON 21
#define TTL_MS 5000

#define LPU_470102 "c3c977af-c3b4-4517-9d57-50a6844ec660"
#define LPU_330501 "5409f503-f01a-4f2f-a57a-91979fb19f42"
#define IVANOV_ENP "5000000000000041" /* male, 1985 */
#define IVANOV_BDAY "1985-03-14"
#define IVANOV_MKAB "9b58e84c-1362-4824-9df3-97e0767c41ff"
#define PETROVA_ENP "7700000000000016" /* female, 1975 */
#define PETROVA_BDAY "1975-11-02"
#define SIDOROV_ENP "5000000000000058" /* male, 2018 */
#define SIDOROV_BDAY "2018-05-20"

#define COD "/auth/cod/token"
#define RPGU "/auth/rpgu/token"

#define MSG_4101(f) "Параметр " f " имеет неверный формат"
#define MSG_4107 "Параметр dateTo не может быть раньше параметра dateFrom"
#define MSG_5008 "Токен некорректен"
#define MSG_NO_EMK                                                                                \
    "Ваша электронная медицинская карта отсутствует. Обратитесь в регистратуру медицинского "     \
    "учреждения."

/* ------------------------------------------------------------------ */
/* Fixtures in PostgreSQL */

/* A new resource of an LPU; "" for a limit means none. The caller frees. */
static char *make_resource(const char *lpu, const char *age_min, const char *age_max,
                           const char *gender)
{
    const char *p[] = {lpu, age_min, age_max, gender};
    char *g = pg_value("INSERT INTO resources (guid, lpu_guid, res_type, family, name, patronymic,"
                       " role, spec_code, spec_name, room, floor, age_min, age_max, gender)"
                       " VALUES (gen_random_uuid(), $1::uuid, 'Doctor', 'Тестов', 'Егор',"
                       " 'Ильич', 'Врач-терапевт', '27', 'Терапия', '205', 2,"
                       " nullif($2, '')::int, nullif($3, '')::int, nullif($4, '')::smallint)"
                       " RETURNING guid::text",
                       4, p);
    ck_assert_ptr_nonnull(g);
    return g;
}

/* A cell of a resource beginning `at` (an interval after today's local
 * midnight, "1 day 10:00"), 30 minutes long. The caller frees its guid. */
static char *make_cell(const char *res, const char *at, const char *access, const char *busy_type)
{
    const char *p[] = {res, at, access, busy_type};
    char *g = pg_value("INSERT INTO cells (guid, resource_guid, begin_at, end_at, busy_name,"
                       " busy_type, busy_code, access)"
                       " SELECT gen_random_uuid(), $1::uuid, b, b + interval '30 minutes',"
                       " 'Прием по записи', $4::smallint, '4', $3::text[]"
                       " FROM (SELECT (date_trunc('day', now() AT TIME ZONE '" TZ "')"
                       "               + $2::interval) AT TIME ZONE '" TZ "' AS b) t"
                       " RETURNING guid::text",
                       4, p);
    ck_assert_ptr_nonnull(g);
    return g;
}

/* Books a cell for Иванов's card, directly; the caller frees the guid. */
static char *book(const char *cell)
{
    const char *p[] = {cell, IVANOV_MKAB};
    char *g = pg_value("INSERT INTO bookings (guid, cell_guid, mkab_guid, person_guid)"
                       " SELECT gen_random_uuid(), $1::uuid, guid, person_guid"
                       " FROM medical_cards WHERE guid = $2::uuid RETURNING guid::text",
                       2, p);
    ck_assert_ptr_nonnull(g);
    return g;
}

/* Today + offset days in the gateway's zone, YYYY-MM-DD; the caller frees. */
static char *day(int offset)
{
    char off[16];
    snprintf(off, sizeof(off), "%d", offset);
    const char *p[] = {off};
    char *d = pg_value("SELECT to_char((now() AT TIME ZONE '" TZ "')::date + $1::int, 'YYYY-MM-DD')",
                       1, p);
    ck_assert_ptr_nonnull(d);
    return d;
}

/* ------------------------------------------------------------------ */
/* The view */

static char *sched_path(const char *lpu, const char *res, const char *from, const char *to)
{
    return xasprintf("/api/v2/lpu/%s/doctor/%s/schedule/%s/%s", lpu, res, from, to);
}

/* GET with an optional token; the caller frees. */
static struct http_resp *get_sched(const char *lpu, const char *res, const char *from,
                                   const char *to, const char *token)
{
    char *p = sched_path(lpu, res, from, to);
    struct http_resp *r;
    if (token) {
        char *auth = xasprintf("Authorization: Bearer %s", token);
        r = http_get(p, auth, NULL);
        free(auth);
    } else {
        r = http_get(p, NULL);
    }
    free(p);
    return r;
}

/* The answer's body, checked to be a 200 with a resource and cells. */
static yajl_val get_ok(const char *lpu, const char *res, const char *from, const char *to,
                       const char *token)
{
    struct http_resp *r = get_sched(lpu, res, from, to, token);
    ck_assert_msg(r->status == 200, "schedule %s..%s: status %d: %s", from, to, r->status, show(r));
    const char *ct = http_header(r, "Content-Type");
    ck_assert_msg(ct && strstr(ct, "application/json"), "Content-Type %s", ct ? ct : "(none)");
    yajl_val v = jbody(r, "schedule");
    http_free(r);
    static const char *const keys[] = {"resource", "cells"};
    ck_assert_msg(jkeys_exactly(v, keys, 2), "top-level keys");
    ck_assert(YAJL_IS_ARRAY(jget(v, "cells")));
    return v;
}

static size_t ncells(yajl_val v)
{
    return YAJL_GET_ARRAY(jget(v, "cells"))->len;
}

static yajl_val cell_at(yajl_val v, size_t i)
{
    yajl_val cells = jget(v, "cells");
    ck_assert_uint_lt(i, YAJL_GET_ARRAY(cells)->len);
    return YAJL_GET_ARRAY(cells)->values[i];
}

/* The status of the cell of this guid, or NULL when it is not shown. */
static const char *status_of(yajl_val v, const char *cell)
{
    for (size_t i = 0; i < ncells(v); i++) {
        yajl_val c = cell_at(v, i);
        if (strcmp(jstr(c, "guid"), cell) == 0)
            return jstr(c, "status");
    }
    return NULL;
}

/* Polls (every 100 ms, at most the TTL and 2 s) until the cell shows `want`; returns
 * the milliseconds it took. */
static double poll_status(const char *res, const char *from, const char *to, const char *cell,
                          const char *want)
{
    double t0 = mono_ms();
    const char *last = NULL;
    char seen[32] = "";
    for (;;) {
        yajl_val v = get_ok(LPU_470102, res, from, to, NULL);
        last = status_of(v, cell);
        snprintf(seen, sizeof(seen), "%s", last ? last : "(absent)");
        yajl_tree_free(v);
        if (strcmp(seen, want) == 0)
            return mono_ms() - t0;
        ck_assert_msg(mono_ms() - t0 < TTL_MS + 2000, "cell still %s, not %s, after %.0f ms", seen,
                      want, mono_ms() - t0);
        sleep_ms(100);
    }
}

/* ------------------------------------------------------------------ */

START_TEST(test_every_status)
{
    char *res = make_resource(LPU_470102, "", "", "");
    /* In begin order: */
    char *expired = make_cell(res, "0 hours", "{Registry,Internet}", "1");   /* today's midnight */
    char *avail = make_cell(res, "1 day 10:00", "{Registry,Internet}", "1");
    char *registry = make_cell(res, "1 day 10:30", "{Registry,Doctor}", "1");
    char *dayoff = make_cell(res, "1 day 11:00", "{Internet}", "0");
    char *booked = make_cell(res, "1 day 11:30", "{Internet}", "1");
    char *none = make_cell(res, "1 day 12:00", "{}", "1");
    char *later = make_cell(res, "2 days 10:00", "{Internet}", "1");  /* outside the range */
    char *bk = book(booked);
    char *today = day(0), *tomorrow = day(1);

    yajl_val v = get_ok(LPU_470102, res, today, tomorrow, NULL);

    yajl_val rs = jget(v, "resource");
    static const char *const rkeys[] = {"guid", "lpuGuid", "type", "family", "name", "patronymic",
                                        "role", "speciality", "room", "floor", "ageMin", "ageMax",
                                        "gender"};
    ck_assert_msg(jkeys_exactly(rs, rkeys, sizeof(rkeys) / sizeof(rkeys[0])), "resource keys");
    ck_assert_str_eq(jstr(rs, "guid"), res);
    ck_assert_str_eq(jstr(rs, "lpuGuid"), LPU_470102);
    ck_assert_str_eq(jstr(rs, "type"), "Doctor");
    ck_assert_str_eq(jstr(rs, "family"), "Тестов");
    ck_assert_str_eq(jstr(rs, "role"), "Врач-терапевт");
    ck_assert_str_eq(jstr(jget(rs, "speciality"), "code"), "27");
    ck_assert_str_eq(jstr(jget(rs, "speciality"), "name"), "Терапия");
    ck_assert_str_eq(jstr(rs, "room"), "205");
    ck_assert_int_eq(YAJL_GET_INTEGER(jget(rs, "floor")), 2);
    ck_assert(YAJL_IS_NULL(jget(rs, "ageMin")));
    ck_assert(YAJL_IS_NULL(jget(rs, "gender")));

    ck_assert_uint_eq(ncells(v), 6);
    const char *order[] = {expired, avail, registry, dayoff, booked, none};
    const char *want[] = {"Expired", "Available", "Unavailable", "Unavailable", "Booked",
                          "Unavailable"};
    for (size_t i = 0; i < 6; i++) {
        yajl_val c = cell_at(v, i);
        static const char *const ckeys[] = {"guid", "begin", "end", "busyType", "flagAccess",
                                            "status"};
        ck_assert_msg(jkeys_exactly(c, ckeys, 6), "cell %zu keys", i);
        ck_assert_str_eq(jstr(c, "guid"), order[i]);
        ck_assert_msg(strcmp(jstr(c, "status"), want[i]) == 0, "cell %zu: %s, not %s", i,
                      jstr(c, "status"), want[i]);
    }
    ck_assert_ptr_null(status_of(v, later));

    /* Times are offset timestamps in the gateway's zone. */
    yajl_val a = cell_at(v, 1);
    char *begin = xasprintf("%sT10:00:00+03:00", tomorrow);
    char *end = xasprintf("%sT10:30:00+03:00", tomorrow);
    ck_assert_str_eq(jstr(a, "begin"), begin);
    ck_assert_str_eq(jstr(a, "end"), end);
    yajl_val bt = jget(a, "busyType");
    ck_assert_str_eq(jstr(bt, "name"), "Прием по записи");
    ck_assert_int_eq(YAJL_GET_INTEGER(jget(bt, "type")), 1);
    ck_assert_str_eq(jstr(bt, "code"), "4");
    yajl_val fa = jget(a, "flagAccess");
    ck_assert_uint_eq(YAJL_GET_ARRAY(fa)->len, 2);
    ck_assert_str_eq(YAJL_GET_STRING(YAJL_GET_ARRAY(fa)->values[0]), "Registry");
    ck_assert_str_eq(YAJL_GET_STRING(YAJL_GET_ARRAY(fa)->values[1]), "Internet");
    ck_assert_int_eq(YAJL_GET_INTEGER(jget(jget(cell_at(v, 3), "busyType"), "type")), 0);
    yajl_val fn = jget(cell_at(v, 5), "flagAccess");
    ck_assert_uint_eq(YAJL_GET_ARRAY(fn)->len, 1);
    ck_assert_str_eq(YAJL_GET_STRING(YAJL_GET_ARRAY(fn)->values[0]), "None");
    yajl_tree_free(v);

    /* A range of one later day holds only that day's cell; a range wholly
     * in the past is empty (past days are clamped to today). */
    char *d2 = day(2), *ago5 = day(-5), *ago1 = day(-1);
    v = get_ok(LPU_470102, res, d2, d2, NULL);
    ck_assert_uint_eq(ncells(v), 1);
    ck_assert_str_eq(jstr(cell_at(v, 0), "guid"), later);
    yajl_tree_free(v);
    v = get_ok(LPU_470102, res, ago5, ago1, NULL);
    ck_assert_uint_eq(ncells(v), 0);
    yajl_tree_free(v);
    v = get_ok(LPU_470102, res, ago5, d2, NULL);
    ck_assert_uint_eq(ncells(v), 7);
    yajl_tree_free(v);

    free(d2), free(ago5), free(ago1), free(begin), free(end);
    free(res), free(expired), free(avail), free(registry), free(dayoff), free(booked), free(none);
    free(later), free(bk), free(today), free(tomorrow);
}
END_TEST

/* A booking made behind the gateway's back shows within the cache's
 * lifetime, and so does its cancellation. */
START_TEST(test_booking_shows)
{
    char *res = make_resource(LPU_470102, "", "", "");
    char *cell = make_cell(res, "3 days 09:00", "{Registry,Internet}", "1");
    char *from = day(3), *to = day(4);

    yajl_val v = get_ok(LPU_470102, res, from, to, NULL);
    ck_assert_str_eq(status_of(v, cell), "Available");
    yajl_tree_free(v);

    char *bk = book(cell);
    double ms = poll_status(res, from, to, cell, "Booked");
    ck_assert_msg(ms <= TTL_MS + 1000, "Booked after %.0f ms", ms);

    const char *p[] = {bk};
    PQclear(pg_exec("UPDATE bookings SET status = 'cancelled', updated_at = now()"
                    " WHERE guid = $1::uuid", 1, p));
    ms = poll_status(res, from, to, cell, "Available");
    ck_assert_msg(ms <= TTL_MS + 1000, "Available again after %.0f ms", ms);

    /* A cell added by the MIS shows within the lifetime too. */
    char *added = make_cell(res, "3 days 09:30", "{Internet}", "1");
    poll_status(res, from, to, added, "Available");

    free(res), free(cell), free(from), free(to), free(bk), free(added);
}
END_TEST

/* With a token, cells are shown only when the patient fits the resource's
 * age and sex limits on the cell's day. */
START_TEST(test_token_filters)
{
    char *adults = make_resource(LPU_470102, "18", "60", "");
    char *women = make_resource(LPU_470102, "", "", "2");
    char *kids = make_resource(LPU_470102, "0", "17", "");
    char *c1 = make_cell(adults, "1 day 09:00", "{Internet}", "1");
    char *c2 = make_cell(women, "1 day 09:00", "{Internet}", "1");
    char *c3 = make_cell(kids, "1 day 09:00", "{Internet}", "1");
    char *from = day(1), *to = day(1);

    char *ivanov = cod_token(COD, IVANOV_ENP, IVANOV_BDAY);
    char *petrova = cod_token(RPGU, PETROVA_ENP, PETROVA_BDAY);
    char *sidorov = cod_token(COD, SIDOROV_ENP, SIDOROV_BDAY);

    struct {
        const char *res, *token, *who;
        size_t want;
    } cases[] = {
        {adults, NULL, "anonymous", 1}, {women, NULL, "anonymous", 1}, {kids, NULL, "anonymous", 1},
        {adults, ivanov, "Иванов", 1},  {women, ivanov, "Иванов", 0},  {kids, ivanov, "Иванов", 0},
        {adults, petrova, "Петрова", 1}, {women, petrova, "Петрова", 1}, {kids, petrova, "Петрова", 0},
        {adults, sidorov, "Сидоров", 0}, {women, sidorov, "Сидоров", 0}, {kids, sidorov, "Сидоров", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        yajl_val v = get_ok(LPU_470102, cases[i].res, from, to, cases[i].token);
        ck_assert_msg(ncells(v) == cases[i].want, "case %zu (%s): %zu cells, want %zu", i,
                      cases[i].who, ncells(v), cases[i].want);
        /* The resource is shown either way. */
        ck_assert_str_eq(jstr(jget(v, "resource"), "guid"), cases[i].res);
        yajl_tree_free(v);
    }

    free(adults), free(women), free(kids), free(c1), free(c2), free(c3);
    free(from), free(to), free(ivanov), free(petrova), free(sidorov);
}
END_TEST

START_TEST(test_bad_token)
{
    char *res = make_resource(LPU_470102, "", "", "");
    char *from = day(0), *to = day(1);
    struct http_resp *r = get_sched(LPU_470102, res, from, to, "not.a.token");
    assert_error(r, 403, "5008", MSG_5008, "garbage token");
    http_free(r);
    /* A header that is there must verify: another scheme is not anonymous. */
    char *p = sched_path(LPU_470102, res, from, to);
    r = http_get(p, "Authorization: Basic Zm9vOmJhcg==", NULL);
    ck_assert_int_eq(r->status, 403);
    http_free(r);
    free(p), free(res), free(from), free(to);
}
END_TEST

START_TEST(test_errors)
{
    char *res = make_resource(LPU_470102, "", "", "");
    char *other = make_resource(LPU_330501, "", "", "");
    char *today = day(0), *tomorrow = day(1), *edge = day(HORIZON), *beyond = day(HORIZON + 1);
    struct http_resp *r;

    r = get_sched("not-a-guid", res, today, tomorrow, NULL);
    assert_error(r, 400, "4101", MSG_4101("lpuGuid"), "lpuGuid");
    http_free(r);
    r = get_sched(LPU_470102, "1234", today, tomorrow, NULL);
    assert_error(r, 400, "4101", MSG_4101("resourceGuid"), "resourceGuid");
    http_free(r);
    const char *bad_dates[] = {"2026-13-01", "2026-02-30", "tomorrow", "20261201", "2026-1-1"};
    for (size_t i = 0; i < sizeof(bad_dates) / sizeof(bad_dates[0]); i++) {
        r = get_sched(LPU_470102, res, bad_dates[i], tomorrow, NULL);
        assert_error(r, 400, "4101", MSG_4101("dateFrom"), bad_dates[i]);
        http_free(r);
        r = get_sched(LPU_470102, res, today, bad_dates[i], NULL);
        assert_error(r, 400, "4101", MSG_4101("dateTo"), bad_dates[i]);
        http_free(r);
    }
    r = get_sched(LPU_470102, res, tomorrow, today, NULL);
    assert_error(r, 400, "4107", MSG_4107, "dateTo before dateFrom");
    http_free(r);

    /* The horizon: today + 21 days is the last day shown. */
    yajl_val v = get_ok(LPU_470102, res, today, edge, NULL);
    yajl_tree_free(v);
    r = get_sched(LPU_470102, res, today, beyond, NULL);
    assert_error(r, 400, "5066", "Недопустимый период расписания. Максимальный период 21 дней",
                 "beyond the horizon");
    http_free(r);
    r = get_sched(LPU_470102, res, beyond, beyond, NULL);
    ck_assert_int_eq(r->status, 400);
    http_free(r);

    /* Unknown LPU; a resource of another LPU; an unknown resource. */
    const char *nolpu = "00000000-0000-4000-8000-000000000001";
    r = get_sched(nolpu, res, today, tomorrow, NULL);
    assert_error(r, 404, "4141", "ЛПУ " "00000000-0000-4000-8000-000000000001" " не найдено",
                 "unknown LPU");
    http_free(r);
    char *msg = xasprintf("Ресурс %s не найден в ЛПУ %s", other, LPU_470102);
    r = get_sched(LPU_470102, other, today, tomorrow, NULL);
    assert_error(r, 404, "4142", msg, "resource of another LPU");
    http_free(r);
    free(msg);
    const char *nores = "00000000-0000-4000-8000-000000000002";
    msg = xasprintf("Ресурс %s не найден в ЛПУ %s", nores, LPU_470102);
    r = get_sched(LPU_470102, nores, today, tomorrow, NULL);
    assert_error(r, 404, "4142", msg, "unknown resource");
    http_free(r);
    free(msg);
    /* Upper-case GUIDs name the same LPU and resource. */
    char *up = strdup(res);
    for (char *q = up; *q; q++)
        if (*q >= 'a' && *q <= 'f')
            *q = (char)(*q - 'a' + 'A');
    v = get_ok("C3C977AF-C3B4-4517-9D57-50A6844EC660", up, today, tomorrow, NULL);
    ck_assert_str_eq(jstr(jget(v, "resource"), "guid"), res);
    yajl_tree_free(v);
    free(up);

    /* An inactive resource is not shown. */
    const char *p[] = {res};
    PQclear(pg_exec("UPDATE resources SET is_active = false WHERE guid = $1::uuid", 1, p));
    msg = xasprintf("Ресурс %s не найден в ЛПУ %s", res, LPU_470102);
    double t0 = mono_ms();
    for (;;) {
        r = get_sched(LPU_470102, res, today, tomorrow, NULL);
        if (r->status == 404)
            break;
        ck_assert_int_eq(r->status, 200);
        http_free(r);
        ck_assert_msg(mono_ms() - t0 < TTL_MS + 2000, "inactive resource still shown after %.0f ms",
                      mono_ms() - t0);
        sleep_ms(100);
    }
    assert_error(r, 404, "4142", msg, "inactive resource");
    http_free(r);
    free(msg);

    /* Only GET. */
    char *path = sched_path(LPU_470102, res, today, tomorrow);
    r = http_request("POST", path, NULL, "{}");
    ck_assert_int_eq(r->status, 405);
    http_free(r);
    free(path);

    free(res), free(other), free(today), free(tomorrow), free(edge), free(beyond);
}
END_TEST

/* Many concurrent-looking requests for one resource agree, and a resource
 * with a full horizon of cells answers them all. */
START_TEST(test_full_horizon)
{
    char *res = make_resource(LPU_470102, "", "", "");
    const char *p[] = {res};
    /* Every 15 minutes from 08:00 to 14:00, tomorrow to the horizon. */
    PQclear(pg_exec("INSERT INTO cells (guid, resource_guid, begin_at, end_at, busy_type, access)"
                    " SELECT gen_random_uuid(), $1::uuid, b, b + interval '15 minutes', 1,"
                    " '{Registry,Internet}'"
                    " FROM generate_series(1, 21) d, generate_series(0, 23) s,"
                    " LATERAL (SELECT (date_trunc('day', now() AT TIME ZONE '" TZ "')"
                    "   + make_interval(days => d, mins => 480 + 15 * s)) AT TIME ZONE '" TZ "' AS b) t",
                    1, p));
    char *today = day(0), *edge = day(HORIZON), *d7 = day(7);
    yajl_val v = get_ok(LPU_470102, res, today, edge, NULL);
    ck_assert_uint_eq(ncells(v), 21 * 24);
    for (size_t i = 0; i < ncells(v); i++)
        ck_assert_str_eq(jstr(cell_at(v, i), "status"), "Available");
    yajl_tree_free(v);
    v = get_ok(LPU_470102, res, d7, d7, NULL);
    ck_assert_uint_eq(ncells(v), 24);
    yajl_tree_free(v);
    free(res), free(today), free(edge), free(d7);
}
END_TEST

/* A cell's end time changed directly in PostgreSQL shows within the cache's
 * lifetime: the change bumps the resource's version (a trigger), so the
 * background check of a busy entry refills it rather than extending it. */
START_TEST(test_cell_update_shows)
{
    char *res = make_resource(LPU_470102, "", "", "");
    char *cell = make_cell(res, "2 days 09:00", "{Registry,Internet}", "1");
    char *from = day(2), *to = day(2);
    const char *p[] = {res};
    char *v0 = pg_value("SELECT coalesce((SELECT version FROM schedule_versions"
                        " WHERE resource_guid = $1::uuid), 0)::text", 1, p);
    ck_assert_ptr_nonnull(v0);

    yajl_val v = get_ok(LPU_470102, res, from, to, NULL);
    char *end0 = strdup(jstr(cell_at(v, 0), "end"));
    yajl_tree_free(v);
    char *want = xasprintf("%sT10:15:00+03:00", from);
    ck_assert_str_ne(end0, want);

    const char *pc[] = {cell};
    PQclear(pg_exec("UPDATE cells SET end_at = begin_at + interval '75 minutes', updated_at = now()"
                    " WHERE guid = $1::uuid", 1, pc));
    char *v1 = pg_value("SELECT version::text FROM schedule_versions WHERE resource_guid = $1::uuid",
                        1, p);
    ck_assert_ptr_nonnull(v1);
    ck_assert_msg(strtoll(v1, NULL, 10) > strtoll(v0, NULL, 10), "version %s after %s", v1, v0);

    /* Asked all along (every 50 ms), so that the entry is checked, not
     * merely left to expire. */
    double t0 = mono_ms();
    for (;;) {
        v = get_ok(LPU_470102, res, from, to, NULL);
        ck_assert_uint_eq(ncells(v), 1);
        bool seen = strcmp(jstr(cell_at(v, 0), "end"), want) == 0;
        yajl_tree_free(v);
        if (seen)
            break;
        ck_assert_msg(mono_ms() - t0 < TTL_MS + 1000, "old end still shown after %.0f ms",
                      mono_ms() - t0);
        sleep_ms(50);
    }
    /* A resource's own change bumps it too. */
    PQclear(pg_exec("UPDATE resources SET room = '206' WHERE guid = $1::uuid", 1, p));
    char *v2 = pg_value("SELECT version::text FROM schedule_versions WHERE resource_guid = $1::uuid",
                        1, p);
    ck_assert_msg(strtoll(v2, NULL, 10) > strtoll(v1, NULL, 10), "version %s after %s", v2, v1);

    free(res), free(cell), free(from), free(to), free(v0), free(v1), free(v2), free(end0), free(want);
}
END_TEST

/* The Luhn check digit that completes 15 digits into a valid ЕНП. */
static char luhn_digit(const char *d15)
{
    int sum = 0;
    for (int i = 14, dbl = 1; i >= 0; i--, dbl = !dbl) {
        int x = d15[i] - '0';
        if (dbl && (x *= 2) > 9)
            x -= 9;
        sum += x;
    }
    return (char)('0' + (10 - sum % 10) % 10);
}

/* A token whose person is gone from PostgreSQL since it was issued answers
 * the token-based endpoints' 404/4001 ("no EMK"), not the token issue's. */
START_TEST(test_person_gone)
{
    char enp[17];
    snprintf(enp, sizeof(enp), "77%013llu", (unsigned long long)(mono_ms() * 1000) % 10000000000000ULL);
    enp[15] = luhn_digit(enp);
    enp[16] = '\0';
    const char *pp[] = {enp, LPU_470102};
    char *person = pg_value("WITH p AS (INSERT INTO persons (guid, family, name, family_key,"
                            " name_key, birthday, gender) VALUES (gen_random_uuid(), 'Ушедший',"
                            " 'Тест', 'УШЕДШИЙ', 'ТЕСТ', '1990-01-02', 1) RETURNING guid)"
                            " INSERT INTO medical_cards (guid, person_guid, lpu_guid, polis_number,"
                            " polis_key) SELECT gen_random_uuid(), p.guid, $2::uuid, $1,"
                            " replace(c.polis_key, c.polis_number, $1) FROM p, medical_cards c"
                            " WHERE c.guid = '" IVANOV_MKAB "' RETURNING person_guid::text",
                            2, pp);
    ck_assert_ptr_nonnull(person);
    char *token = cod_token(COD, enp, "1990-01-02");
    const char *pd[] = {person};
    PQclear(pg_exec("DELETE FROM medical_cards WHERE person_guid = $1::uuid", 1, pd));
    PQclear(pg_exec("DELETE FROM persons WHERE guid = $1::uuid", 1, pd));

    char *res = make_resource(LPU_470102, "", "", "");
    char *from = day(1), *to = day(1);
    struct http_resp *r = get_sched(LPU_470102, res, from, to, token);
    assert_error(r, 404, "4001", MSG_NO_EMK, "person gone");
    http_free(r);
    free(person), free(token), free(res), free(from), free(to);
}
END_TEST

static Suite *schedule_suite(void)
{
    Suite *s = suite_create("e2e_schedule");
    TCase *tc = tcase_create("schedule");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_every_status);
    tcase_add_test(tc, test_booking_shows);
    tcase_add_test(tc, test_token_filters);
    tcase_add_test(tc, test_bad_token);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_full_horizon);
    tcase_add_test(tc, test_cell_update_shows);
    tcase_add_test(tc, test_person_gone);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(schedule_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
