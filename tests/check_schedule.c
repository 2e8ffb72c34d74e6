/* check_schedule.c - unit tests of src/schedule.c without servers: a
 * cell's status, calendar days and the zone's midnights, the date-range
 * rules, ages and the resource limits, the cells' JSON, and the cache's
 * expiry, eviction and drops. Run in Europe/Moscow (UTC+3, no DST). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schedule.h"

#define G1 "11111111-1111-4111-8111-111111111111"
#define G2 "22222222-2222-4222-8222-222222222222"
#define G3 "33333333-3333-4333-8333-333333333333"
#define G4 "44444444-4444-4444-8444-444444444444"
#define LPU_A "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
#define LPU_B "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"

/* 2026-11-23 00:00 in Moscow, as epoch seconds. */
#define MSK_2026_11_23 ((int64_t)1795381200)

START_TEST(status_rules)
{
    int64_t now = 1000000;
    ck_assert_int_eq(schedule_cell_status(false, true, 1, now + 60, now), SCHED_AVAILABLE);
    ck_assert_int_eq(schedule_cell_status(true, true, 1, now + 60, now), SCHED_BOOKED);
    /* Booked wins over Expired, Expired over Unavailable. */
    ck_assert_int_eq(schedule_cell_status(true, true, 1, now - 60, now), SCHED_BOOKED);
    ck_assert_int_eq(schedule_cell_status(false, false, 0, now - 60, now), SCHED_EXPIRED);
    /* A cell that begins right now can no longer be booked. */
    ck_assert_int_eq(schedule_cell_status(false, true, 1, now, now), SCHED_EXPIRED);
    ck_assert_int_eq(schedule_cell_status(false, true, 1, now + 1, now), SCHED_AVAILABLE);
    ck_assert_int_eq(schedule_cell_status(false, false, 1, now + 60, now), SCHED_UNAVAILABLE);
    ck_assert_int_eq(schedule_cell_status(false, true, 0, now + 60, now), SCHED_UNAVAILABLE);
    ck_assert_str_eq(schedule_status_name(SCHED_AVAILABLE), "Available");
    ck_assert_str_eq(schedule_status_name(SCHED_BOOKED), "Booked");
    ck_assert_str_eq(schedule_status_name(SCHED_EXPIRED), "Expired");
    ck_assert_str_eq(schedule_status_name(SCHED_UNAVAILABLE), "Unavailable");
}
END_TEST

START_TEST(days)
{
    ck_assert_int_eq(schedule_day(1970, 1, 1), 0);
    ck_assert_int_eq(schedule_day(1969, 12, 31), -1);
    ck_assert_int_eq(schedule_day(2000, 3, 1), 11017);
    ck_assert_int_eq(schedule_day(2026, 11, 23) * 86400 - 3 * 3600, MSK_2026_11_23);
    /* Round trips against the C library's own calendar. */
    for (int64_t d = -30000; d < 60000; d += 7) {
        int y, m, dd;
        schedule_civil(d, &y, &m, &dd);
        ck_assert_int_eq(schedule_day(y, m, dd), d);
        time_t t = (time_t)(d * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        ck_assert_int_eq(y, tm.tm_year + 1900);
        ck_assert_int_eq(m, tm.tm_mon + 1);
        ck_assert_int_eq(dd, tm.tm_mday);
    }
}
END_TEST

START_TEST(zone_days)
{
    int64_t d = schedule_day(2026, 11, 23);
    ck_assert_int_eq(schedule_midnight(d), MSK_2026_11_23);
    ck_assert_int_eq(schedule_midnight(d + 1), MSK_2026_11_23 + 86400);
    ck_assert_int_eq(schedule_today(MSK_2026_11_23), d);
    ck_assert_int_eq(schedule_today(MSK_2026_11_23 + 86399), d);
    /* One second before Moscow's midnight (21:00 UTC) is still the 22nd. */
    ck_assert_int_eq(schedule_today(MSK_2026_11_23 - 1), d - 1);
    ck_assert_int_eq(schedule_today(MSK_2026_11_23 + 86400), d + 1);
}
END_TEST

START_TEST(range_rules)
{
    int64_t today = schedule_day(2026, 11, 23), f, t;
    ck_assert_int_eq(schedule_range_check(today, 21, today, today, &f, &t), SCHED_RANGE_OK);
    ck_assert_int_eq(f, today);
    ck_assert_int_eq(t, today);
    ck_assert_int_eq(schedule_range_check(today, 21, today + 1, today, &f, &t), SCHED_RANGE_ORDER);
    /* The order is checked first: a reversed range beyond the horizon is 4107. */
    ck_assert_int_eq(schedule_range_check(today, 21, today + 40, today + 30, &f, &t),
                     SCHED_RANGE_ORDER);
    ck_assert_int_eq(schedule_range_check(today, 21, today, today + 21, &f, &t), SCHED_RANGE_OK);
    ck_assert_int_eq(schedule_range_check(today, 21, today, today + 22, &f, &t),
                     SCHED_RANGE_HORIZON);
    ck_assert_int_eq(schedule_range_check(today, 21, today + 22, today + 22, &f, &t),
                     SCHED_RANGE_HORIZON);
    ck_assert_int_eq(schedule_range_check(today, 1, today, today + 2, &f, &t), SCHED_RANGE_HORIZON);
    /* A past dateFrom is clamped to today; a wholly past range is empty. */
    ck_assert_int_eq(schedule_range_check(today, 21, today - 10, today + 3, &f, &t), SCHED_RANGE_OK);
    ck_assert_int_eq(f, today);
    ck_assert_int_eq(t, today + 3);
    ck_assert_int_eq(schedule_range_check(today, 21, today - 10, today - 1, &f, &t), SCHED_RANGE_OK);
    ck_assert_int_gt(f, t);
}
END_TEST

START_TEST(ages_and_limits)
{
    ck_assert_int_eq(schedule_age(19850314, 20260313), 40);
    ck_assert_int_eq(schedule_age(19850314, 20260314), 41);
    ck_assert_int_eq(schedule_age(19850314, 20261123), 41);
    ck_assert_int_eq(schedule_age(20180520, 20261123), 8);
    /* Born on the 29th of February: a year older on the 1st of March. */
    ck_assert_int_eq(schedule_age(20000229, 20210228), 20);
    ck_assert_int_eq(schedule_age(20000229, 20210301), 21);
    ck_assert_int_eq(schedule_age(20261123, 20261123), 0);

    /* No limits: anyone, even of unknown gender. */
    ck_assert(schedule_fits(-1, -1, 0, 19850314, 0, 20261123));
    /* Sex. */
    ck_assert(schedule_fits(-1, -1, 2, 19751102, 2, 20261123));
    ck_assert(!schedule_fits(-1, -1, 2, 19850314, 1, 20261123));
    ck_assert(!schedule_fits(-1, -1, 1, 19850314, 0, 20261123));
    /* Age bounds are inclusive and taken on the cell's day. */
    ck_assert(schedule_fits(18, 60, 0, 19850314, 1, 20261123));
    ck_assert(!schedule_fits(0, 17, 0, 19850314, 1, 20261123));
    ck_assert(schedule_fits(0, 17, 0, 20180520, 1, 20261123));
    ck_assert(!schedule_fits(18, -1, 0, 20180520, 1, 20261123));
    ck_assert(!schedule_fits(41, -1, 0, 19850314, 1, 20260313));
    ck_assert(schedule_fits(41, -1, 0, 19850314, 1, 20260314));
    ck_assert(schedule_fits(-1, 40, 0, 19850314, 1, 20260313));
    ck_assert(!schedule_fits(-1, 40, 0, 19850314, 1, 20260314));
    /* Both limits at once. */
    ck_assert(!schedule_fits(18, 60, 2, 19850314, 1, 20261123));
    ck_assert(!schedule_fits(50, 60, 2, 19851102, 2, 20261123));
}
END_TEST

/* A cell's JSON as a request writes it, up to the status's value. */
static const char *frag(const struct schedule_entry *e, int i, char *out, size_t cap)
{
    const struct schedule_cell *c = &e->cells[i];
    snprintf(out, cap, "%.*s%.*s", (int)c->len, e->json.data + c->off,
             (int)e->tails[c->tail].len, e->json.data + e->tails[c->tail].off);
    return out;
}

START_TEST(cell_json)
{
    struct schedule_entry *e = schedule_entry_new(LPU_A, G1);
    int64_t b = MSK_2026_11_23 + 10 * 3600;
    schedule_entry_add_cell(e, G2, b, b + 1800, "Прием \"по\" записи", 1, "4",
                            "Registry,Internet", false);
    schedule_entry_add_cell(e, G3, b + 1800, b + 3600, "", 0, "", "", true);
    schedule_entry_add_cell(e, G4, MSK_2026_11_23 + 86400 - 1, MSK_2026_11_23 + 86400 + 1799, "",
                            1, "", "Registry", false);
    char buf[512];
    ck_assert_str_eq(frag(e, 0, buf, sizeof(buf)),
                     "{\"guid\":\"" G2 "\",\"begin\":\"2026-11-23T10:00:00+03:00\","
                     "\"end\":\"2026-11-23T10:30:00+03:00\",\"busyType\":{\"name\":"
                     "\"Прием \\\"по\\\" записи\",\"type\":1,\"code\":\"4\"},"
                     "\"flagAccess\":[\"Registry\",\"Internet\"],\"status\"");
    ck_assert(e->cells[0].internet);
    ck_assert(!e->cells[0].booked);
    ck_assert_int_eq(e->cells[0].day, schedule_day(2026, 11, 23));
    ck_assert_int_eq(e->cells[0].ymd, 20261123);
    /* No one may book it: the vendor's None. */
    ck_assert_ptr_nonnull(strstr(frag(e, 1, buf, sizeof(buf)), "\"flagAccess\":[\"None\"]"));
    ck_assert(!e->cells[1].internet);
    ck_assert(e->cells[1].booked);
    ck_assert_int_eq(e->cells[1].busy_type, 0);
    /* 23:59:59 local is still that day; "Registry" alone is not Internet. */
    ck_assert_int_eq(e->cells[2].day, schedule_day(2026, 11, 23));
    ck_assert(!e->cells[2].internet);
    ck_assert_int_eq(e->ncells, 3);
    ck_assert_int_eq(e->ntails, 3);
    schedule_entry_free(e);
}
END_TEST

/* Cells share their tails: a run of one busy type, and a return to an
 * earlier one, make no new tail; a whole-word "Internet" only counts. */
START_TEST(cell_tails_shared)
{
    struct schedule_entry *e = schedule_entry_new(LPU_A, G1);
    int64_t b = MSK_2026_11_23 + 8 * 3600;
    const char *acc[] = {"Registry,Internet", "Registry,Internet", "Registry", "Registry,Internet",
                         "Registry", "Internet,Doctor"};
    for (int i = 0; i < 6; i++)
        schedule_entry_add_cell(e, G2, b + 900 * i, b + 900 * i + 900, "Приём", 1, "4", acc[i],
                                false);
    ck_assert_int_eq(e->ntails, 3);
    int want_tail[] = {0, 0, 1, 0, 1, 2};
    bool want_net[] = {true, true, false, true, false, true};
    char buf[512];
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(e->cells[i].tail, want_tail[i]);
        ck_assert_int_eq(e->cells[i].internet, want_net[i]);
        ck_assert_ptr_nonnull(strstr(frag(e, i, buf, sizeof(buf)), acc[i][0] == 'I'
                                                                      ? "[\"Internet\",\"Doctor\"]"
                                                                      : "\"flagAccess\":[\"Registry\""));
    }
    /* A busy type of another name or code is another tail. */
    schedule_entry_add_cell(e, G2, b + 9000, b + 9900, "Приём", 1, "5", "Registry", false);
    schedule_entry_add_cell(e, G2, b + 9900, b + 10800, "Приём", 0, "4", "Registry", false);
    ck_assert_int_eq(e->ntails, 5);
    schedule_entry_free(e);
}
END_TEST

static struct schedule_entry *entry(const char *lpu, const char *res, int64_t today, int ncells)
{
    struct schedule_entry *e = schedule_entry_new(lpu, res);
    e->today = today;
    for (int i = 0; i < ncells; i++)
        schedule_entry_add_cell(e, G2, MSK_2026_11_23 + 600 * i, MSK_2026_11_23 + 600 * i + 600,
                                "x", 1, "1", "Internet", false);
    return e;
}

START_TEST(cache_expiry)
{
    struct schedule_cache *c = schedule_cache_new(1000, 16, 1 << 20);
    int64_t now = 5000000, today = 100;
    struct schedule_entry *e = entry(LPU_A, G1, today, 2);
    schedule_cache_put(c, e, now);
    ck_assert_ptr_eq(schedule_cache_find(c, LPU_A, G1, now, today), e);
    ck_assert_ptr_eq(schedule_cache_find(c, LPU_A, G1, now + 999999, today), e);
    /* Keyed by LPU and resource both. */
    ck_assert_ptr_null(schedule_cache_find(c, LPU_B, G1, now, today));
    ck_assert_ptr_null(schedule_cache_find(c, LPU_A, G2, now, today));
    /* Another day's window is not today's. */
    ck_assert_ptr_null(schedule_cache_find(c, LPU_A, G1, now, today + 1));
    ck_assert_uint_eq(schedule_cache_count(c), 0);
    ck_assert_uint_eq(schedule_cache_bytes(c), 0);

    e = entry(LPU_A, G1, today, 2);
    schedule_cache_put(c, e, now);
    ck_assert_uint_eq(schedule_cache_count(c), 1);
    ck_assert_uint_gt(schedule_cache_bytes(c), 0);
    ck_assert_ptr_null(schedule_cache_find(c, LPU_A, G1, now + 1000000, today));
    ck_assert_uint_eq(schedule_cache_count(c), 0);
    ck_assert_uint_eq(schedule_cache_bytes(c), 0);

    /* Putting the same key again replaces the entry. */
    schedule_cache_put(c, entry(LPU_A, G1, today, 1), now);
    struct schedule_entry *e2 = entry(LPU_A, G1, today, 3);
    schedule_cache_put(c, e2, now);
    ck_assert_uint_eq(schedule_cache_count(c), 1);
    ck_assert_ptr_eq(schedule_cache_find(c, LPU_A, G1, now, today), e2);
    schedule_cache_free(c);

    /* TTL 0: nothing is ever served from the cache. */
    c = schedule_cache_new(0, 16, 1 << 20);
    schedule_cache_put(c, entry(LPU_A, G1, today, 1), now);
    ck_assert_ptr_null(schedule_cache_find(c, LPU_A, G1, now, today));
    schedule_cache_free(c);
}
END_TEST

START_TEST(cache_eviction_by_count)
{
    struct schedule_cache *c = schedule_cache_new(60000, 3, 1 << 24);
    int64_t now = 1, today = 7;
    const char *res[] = {G1, G2, G3, G4};
    for (int i = 0; i < 3; i++)
        schedule_cache_put(c, entry(LPU_A, res[i], today, 1), now);
    /* G1 used last, so G2 is the least recently used. */
    ck_assert_ptr_nonnull(schedule_cache_find(c, LPU_A, G1, now, today));
    schedule_cache_put(c, entry(LPU_A, G4, today, 1), now);
    ck_assert_uint_eq(schedule_cache_count(c), 3);
    ck_assert_ptr_nonnull(schedule_cache_find(c, LPU_A, G1, now, today));
    ck_assert_ptr_null(schedule_cache_find(c, LPU_A, G2, now, today));
    ck_assert_ptr_nonnull(schedule_cache_find(c, LPU_A, G3, now, today));
    ck_assert_ptr_nonnull(schedule_cache_find(c, LPU_A, G4, now, today));
    schedule_cache_free(c);
}
END_TEST

START_TEST(cache_eviction_by_bytes)
{
    struct schedule_cache *c = schedule_cache_new(60000, 100, 1);
    int64_t now = 1, today = 7;
    /* Alone and too big, an entry still stays: the newest is never evicted. */
    schedule_cache_put(c, entry(LPU_A, G1, today, 50), now);
    ck_assert_ptr_nonnull(schedule_cache_find(c, LPU_A, G1, now, today));
    schedule_cache_put(c, entry(LPU_A, G2, today, 50), now);
    ck_assert_uint_eq(schedule_cache_count(c), 1);
    ck_assert_ptr_null(schedule_cache_find(c, LPU_A, G1, now, today));
    ck_assert_ptr_nonnull(schedule_cache_find(c, LPU_A, G2, now, today));
    schedule_cache_free(c);

    /* A bound of about three entries keeps three. */
    struct schedule_entry *probe = entry(LPU_A, G1, today, 50);
    c = schedule_cache_new(60000, 100, 1);
    schedule_cache_put(c, probe, now);
    size_t one = schedule_cache_bytes(c);
    schedule_cache_free(c);
    c = schedule_cache_new(60000, 100, 3 * one + one / 2);
    const char *res[] = {G1, G2, G3, G4};
    for (int i = 0; i < 4; i++)
        schedule_cache_put(c, entry(LPU_A, res[i], today, 50), now);
    ck_assert_uint_eq(schedule_cache_count(c), 3);
    ck_assert_uint_le(schedule_cache_bytes(c), 3 * one + one / 2);
    ck_assert_ptr_null(schedule_cache_find(c, LPU_A, G1, now, today));
    schedule_cache_free(c);
}
END_TEST

START_TEST(cache_drop)
{
    struct schedule_cache *c = schedule_cache_new(60000, 100, 1 << 24);
    int64_t now = 1, today = 7;
    schedule_cache_put(c, entry(LPU_A, G1, today, 1), now);
    schedule_cache_put(c, entry(LPU_B, G1, today, 1), now);
    schedule_cache_put(c, entry(LPU_A, G2, today, 1), now);
    schedule_cache_drop_resource(c, G1);
    ck_assert_uint_eq(schedule_cache_count(c), 1);
    ck_assert_ptr_null(schedule_cache_find(c, LPU_A, G1, now, today));
    ck_assert_ptr_null(schedule_cache_find(c, LPU_B, G1, now, today));
    ck_assert_ptr_nonnull(schedule_cache_find(c, LPU_A, G2, now, today));
    schedule_cache_drop_resource(c, G3);  /* nothing of it: nothing happens */
    ck_assert_uint_eq(schedule_cache_count(c), 1);
    schedule_cache_drop_resource(NULL, G1);
    schedule_cache_free(c);
}
END_TEST

START_TEST(person_cache)
{
    struct schedule_cache *c = schedule_cache_new(1000, 16, 1 << 20);
    int b = 0, g = -1;
    ck_assert(!schedule_person_find(c, G1, 10, &b, &g));
    schedule_person_put(c, G1, 10, 19850314, 1);
    ck_assert(schedule_person_find(c, G1, 10 + 999999, &b, &g));
    ck_assert_int_eq(b, 19850314);
    ck_assert_int_eq(g, 1);
    ck_assert(!schedule_person_find(c, G2, 10, &b, &g));
    ck_assert(!schedule_person_find(c, G1, 10 + 1000000, &b, &g));
    schedule_cache_free(c);
    c = schedule_cache_new(0, 16, 1 << 20);
    schedule_person_put(c, G1, 10, 19850314, 1);
    ck_assert(!schedule_person_find(c, G1, 10, &b, &g));
    schedule_cache_free(c);
}
END_TEST

int main(void)
{
    setenv("TZ", "Europe/Moscow", 1);
    tzset();
    Suite *s = suite_create("schedule");
    TCase *tc = tcase_create("rules");
    tcase_add_test(tc, status_rules);
    tcase_add_test(tc, days);
    tcase_add_test(tc, zone_days);
    tcase_add_test(tc, range_rules);
    tcase_add_test(tc, ages_and_limits);
    tcase_add_test(tc, cell_json);
    tcase_add_test(tc, cell_tails_shared);
    suite_add_tcase(s, tc);
    tc = tcase_create("cache");
    tcase_add_test(tc, cache_expiry);
    tcase_add_test(tc, cache_eviction_by_count);
    tcase_add_test(tc, cache_eviction_by_bytes);
    tcase_add_test(tc, cache_drop);
    tcase_add_test(tc, person_cache);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
