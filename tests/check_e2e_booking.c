/* check_e2e_booking.c - booking over HTTP (issue 4):
 *   POST   /api/v2/iemk/doctors/entry              (seed 001, RPGU token)
 *   POST   /api/v2/directions/visit/{lpuGuid}      (seed 002, COD token, a referral)
 *   DELETE /api/v2/iemk/doctors/visit/{visitId}    (cancellation)
 *   GET    /api/v2/iemk/doctors/visits             (a patient's bookings)
 *
 * Runs under tests/e2e.sh (see check_e2e.c for the environment) against the
 * demo data: every rule is shown on the demo's own patients, resources and
 * cells; the states no demo data can hold (a booking in the past, a visit
 * that took place, a closed card, an expired referral) are made here in
 * PostgreSQL. Each test starts with no active booking and no cell key in
 * Redis, and uses cells no other test uses (its own offsets into a
 * resource's future cells), so that tests do not see each other. The gateway
 * runs with the default [booking] rules, horizon 21 days, Europe/Moscow. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <libpq-fe.h>
#include <yajl/yajl_tree.h>

#include "config.h"
#include "e2e_util.h"
#include "httpc.h"
#include "token.h"
#include "util.h"

#define TZ "Europe/Moscow"

#define LPU_470102 "c3c977af-c3b4-4517-9d57-50a6844ec660" /* ГП №1 */
#define LPU_470103 "0fdaacdd-569f-495f-8665-3d38407d3034" /* ДП №2, children's */
#define LPU_330501 "5409f503-f01a-4f2f-a57a-91979fb19f42" /* Областная больница */
#define RES_THERAPIST "19ebd6d6-2bbf-45c1-a8fb-2c7747f3beb3"   /* Смирнов, 27 */
#define RES_THERAPIST2 "a03d307d-6721-4f17-8bef-5261fde7cc69"  /* Кузнецова, 27 */
#define RES_CARDIO_DISP "3ddb15aa-16f4-48af-88e5-1a3ec706cab6" /* Орлов, dispensary only */
#define RES_MAMMO "765ebf61-55df-4a54-9303-a9d9be8f8f87"       /* women of 40 and over */
#define RES_ENT_KIDS "56ce2c8d-4c61-4351-ae00-236d94ad41d7"    /* Гусев, ДП №2 */
#define RES_CARDIO_REF "6b6ad8e3-5a6d-45c5-bce4-ce7dcc58d8e3"  /* Волков, referral only */
#define RES_EYES "72dd572d-a203-4734-8028-c918e0726b89"        /* Зайцева, 18-65 */
#define REF_FEDOROV "f375509f-1924-4f38-8aa0-c33ced0a43f9"     /* to Волков */
#define REF_IVANOV "1627f242-c6db-4936-8a14-a92b01d47302"      /* to Зайцева */

#define ENTRY "/api/v2/iemk/doctors/entry"
#define VISITS "/api/v2/iemk/doctors/visits"
#define RPGU "/auth/rpgu/token"
#define COD "/auth/cod/token"

#define MSG_4009 "Это время уже занято. Выберите другое свободное время приема."
#define MSG_4031 "Направление с таким номером не существует, либо принадлежит другому пациенту"
#define MSG_4029                                                                                  \
    "Запись недоступна для данной возрастной группы. Сотрудниками МО было установлено "           \
    "ограничение по возрасту при записи на прием."
#define MSG_4007_SELF                                                                             \
    "Вам запрещена самостоятельная запись на прием через интернет или инфомат. Для записи на "   \
    "прием обратитесь в регистратуру медицинского учреждения лично или по телефону."
#define MSG_4007_DISP "Вы не состоите на диспансерном учете у данного специалиста. Запись невозможна."
#define MSG_4005                                                                                  \
    "Вы пытаетесь записаться в детское учреждение. Запись пациентов старше 18 лет запрещена."
#define MSG_NO_EMK                                                                                \
    "Ваша электронная медицинская карта отсутствует. Обратитесь в регистратуру медицинского "     \
    "учреждения."
#define MSG_EMK_CLOSED                                                                            \
    "Ваша электронная медицинская карта закрыта. Обратитесь в регистратуру медицинского "         \
    "учреждения."

/* The demo's patients: token query parameters. */
struct patient {
    const char *k1, *v1, *birthday;
};
static const struct patient IVANOV = {"n_pol", "5000000000000041", "1985-03-14"};
static const struct patient PETROVA = {"n_pol", "7700000000000016", "1975-11-02"};
static const struct patient SMIRNOVA = {"n_pol", "5000000000000066", "1992-01-30"};
static const struct patient KOZLOV = {"snils", "45678901238", "1990-07-07"};
static const struct patient FEDOROV = {"n_pol", "5000000000000074", "1960-02-10"};
#define IVANOV_MKAB "9b58e84c-1362-4824-9df3-97e0767c41ff"

/* Иванов's person GUID (the import makes it; the demo names his card). */
static const char *ivanov_person(void)
{
    static char guid[37];
    if (!guid[0]) {
        char *g = pg_value("SELECT person_guid::text FROM medical_cards WHERE guid = '" IVANOV_MKAB "'",
                           0, NULL);
        ck_assert_ptr_nonnull(g);
        snprintf(guid, sizeof(guid), "%s", g);
        free(g);
    }
    return guid;
}

/* ------------------------------------------------------------------ */
/* helpers */

static char *token_of(const char *path, const struct patient *p)
{
    char *q = qpath(path, p->k1, p->v1, "birthday", p->birthday, NULL);
    struct http_resp *r = http_get(q, NULL);
    ck_assert_msg(r->status == 200, "%s: %d %s", q, r->status, show(r));
    yajl_val v = jbody(r, q);
    char *t = strdup(jstr(v, "token"));
    yajl_tree_free(v);
    http_free(r);
    free(q);
    return t;
}

static struct http_resp *send_json(const char *method, const char *path, const char *token,
                                   const char *body)
{
    char *auth = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
    const char *h[] = {"Content-Type: application/json", auth, NULL};
    struct http_resp *r = http_request(method, path, h, body);
    free(auth);
    return r;
}

/* Seed 001's body for a resource of an LPU; extra is more JSON members
 * (",\"email\":..."), or "". */
static char *entry_body(const char *mcod, const char *lpu, const char *res, const struct test_cell *w,
                        const char *extra)
{
    return xasprintf("{\"lpu_code\":\"%s\",\"doctor_id\":\"%s%s\",\"day\":\"%s\",\"time\":\"%s\"%s}",
                     mcod, lpu, res, w->day, w->time, extra);
}

static struct http_resp *entry(const char *token, const char *mcod, const char *lpu,
                               const char *res, const struct test_cell *w, const char *extra)
{
    char *b = entry_body(mcod, lpu, res, w, extra);
    struct http_resp *r = send_json("POST", ENTRY, token, b);
    free(b);
    return r;
}

/* A 200 entry answer's Entry_id (the caller frees). */
static char *entry_ok(struct http_resp *r, const char *lpu)
{
    ck_assert_msg(r->status == 200, "entry: %d %s", r->status, show(r));
    yajl_val v = jbody(r, "entry");
    static const char *const keys[] = {"Entry_id", "Ticket"};
    ck_assert_msg(jkeys_exactly(v, keys, 2), "entry keys: %s", show(r));
    const char *id = jstr(v, "Entry_id");
    ck_assert_uint_eq(strlen(id), 72);
    ck_assert_msg(strncmp(id, lpu, 36) == 0 && is_guid(id + 36), "Entry_id %s", id);
    ck_assert_msg(jstr(v, "Ticket") && jstr(v, "Ticket")[0], "Ticket empty");
    char *out = strdup(id);
    yajl_tree_free(v);
    http_free(r);
    return out;
}

static void expect(struct http_resp *r, int status, const char *code, const char *msg,
                   const char *what, int line)
{
    assert_error_at(r, status, code, msg, what, line);
    http_free(r);
}
#define EXPECT(r, status, code, msg) expect(r, status, code, msg, #r, __LINE__)

static char *direction_body(const char *lpu, const char *res, const char *ref, const struct test_cell *w)
{
    return xasprintf("{\"date\":\"%s\",\"directionGuid\":\"%s\",\"lpuGuid\":\"%s\","
                     "\"resourceGuid\":\"%s\",\"time\":\"%s\"}",
                     w->day, ref, lpu, res, w->time);
}

static struct http_resp *direction(const char *token, const char *lpu, const char *res,
                                   const char *ref, const struct test_cell *w)
{
    char *b = direction_body(lpu, res, ref, w);
    char *path = xasprintf("/api/v2/directions/visit/%s", lpu);
    struct http_resp *r = send_json("POST", path, token, b);
    free(b), free(path);
    return r;
}

static struct http_resp *cancel(const char *token, const char *visit)
{
    char *path = xasprintf("/api/v2/iemk/doctors/visit/%s", visit);
    char *auth = token ? xasprintf("Authorization: Bearer %s", token) : NULL;
    const char *h[] = {auth, NULL};
    struct http_resp *r = http_request("DELETE", path, auth ? h : NULL, NULL);
    free(auth), free(path);
    return r;
}

static long active_bookings(const char *cell)
{
    const char *v[] = {cell};
    char *n = pg_value("SELECT count(*) FROM bookings WHERE cell_guid = $1::uuid"
                       " AND status = 'active'", 1, v);
    long c = atol(n);
    free(n);
    return c;
}

/* How many keys in Redis match pattern ("cell:lock:*"). */
static long redis_keys(const char *pattern)
{
    char *args = xasprintf("--scan --pattern '%s' | wc -l", pattern);
    long n = redis_long(args);
    free(args);
    return n;
}

/* How many keys match pattern once they are n, or after ms: a script the
 * gateway sends without waiting for it may land just after its answer, and
 * one kept for Redis's return goes after the reconnect's backoff. */
static long redis_keys_within(const char *pattern, long n, int ms)
{
    long got = redis_keys(pattern);
    for (int waited = 0; waited < ms && got != n; waited += 50) {
        sleep_ms(50);
        got = redis_keys(pattern);
    }
    return got;
}
#define redis_keys_drained(pattern) redis_keys_within(pattern, 0, 1000)
#define redis_keys_become(pattern, n) redis_keys_within(pattern, n, 3000)

/* Every test starts with no active booking and no cell key in Redis. */
static void clean(void)
{
    PQclear(pg_exec("UPDATE bookings SET status = 'cancelled' WHERE status <> 'cancelled'", 0, NULL));
    redis_cli("EVAL \"for _, k in ipairs(redis.call('KEYS', 'cell:*')) do redis.call('DEL', k) end\" 0");
}

/* Back after a store was stopped: both running, and the gateway ready
 * again on ten requests in a row (each may reach another worker), so that
 * whatever runs next finds it whole. */
static void stores_back(void)
{
    ctl("redis-start");
    ctl("pg-start");
    ready_streak(http_default_port(), 200, 10, 15000);
}


static char *direction_body(const char *lpu, const char *res, const char *ref, const struct test_cell *w);

/* ------------------------------------------------------------------ */
/* seed 001 */

START_TEST(test_entry_books_once)
{
    char *tok = token_of(RPGU, &IVANOV);
    struct test_cell w = internet_cell(RES_THERAPIST, 0);
    char *id = entry_ok(entry(tok, "470102", LPU_470102, RES_THERAPIST, &w,
                              ",\"email\":\"ivanov@example.org\",\"phone\":\"+7 (999) 555-42-42\","
                              "\"email_confirm_agree\":1"),
                        LPU_470102);
    ck_assert_int_eq(active_bookings(w.guid), 1);
    /* What came with it is stored: on the booking, and the e-mail on the card. */
    const char *v[] = {id + 36};
    char *row = pg_value("SELECT b.email || '|' || b.phone || '|' || b.email_agree || '|' ||"
                         " b.source || '|' || m.email || '|' || p.guid"
                         " FROM bookings b JOIN medical_cards m ON m.guid = b.mkab_guid"
                         " JOIN persons p ON p.guid = b.person_guid WHERE b.guid = $1::uuid",
                         1, v);
    char *want = xasprintf("ivanov@example.org|79995554242|true|Internet|ivanov@example.org|%s",
                           ivanov_person());
    ck_assert_str_eq(row, want);
    free(row), free(want);

    /* A retry (the client lost the answer) is the same booking, not 4009. */
    char *again = entry_ok(entry(tok, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102);
    ck_assert_str_eq(again, id);
    ck_assert_int_eq(active_bookings(w.guid), 1);

    /* Another patient: 4009, from Redis's marker, and again with the marker
     * gone (PostgreSQL alone), which then puts the marker back. */
    char *other = token_of(RPGU, &PETROVA);
    /* None of those 4009s calls PostgreSQL. The workers' own timers (the
     * client applications' reload, the janitor) may, now and then: of three
     * tries, one must see the count unchanged. */
    double calls0 = 0;
    bool quiet = false;
    for (int i = 0; i < 3 && !quiet; i++) {
        calls0 = metric_at(http_default_port(), "mipgw_pg_calls_total");
        EXPECT(entry(other, "470102", LPU_470102, RES_THERAPIST, &w, ""), 400, "4009", MSG_4009);
        quiet = metric_at(http_default_port(), "mipgw_pg_calls_total") == calls0;
    }
    ck_assert_msg(quiet, "a booked cell's 4009 asked PostgreSQL");
    ck_assert_int_eq(redis_cli("EVAL \"for _, k in ipairs(redis.call('KEYS', 'cell:booked:*'))"
                               " do redis.call('DEL', k) end\" 0"), 0);
    EXPECT(entry(other, "470102", LPU_470102, RES_THERAPIST, &w, ""), 400, "4009", MSG_4009);
    ck_assert_msg(metric_at(http_default_port(), "mipgw_pg_calls_total") > calls0,
                  "without its marker, the cell's 4009 came from PostgreSQL");
    ck_assert_int_eq(active_bookings(w.guid), 1);

    /* The seed's own example spells the day as a date-time. */
    struct test_cell w2 = internet_cell(RES_THERAPIST, 1);
    char *dt = xasprintf("%sT00:00:00.000Z", w2.day);
    char *b = xasprintf("{\"lpu_code\":\"470102\",\"doctor_id\":\"%s%s\",\"day\":\"%s\","
                        "\"time\":\"%s\"}", LPU_470102, RES_THERAPIST2, dt, w2.time);
    /* (Петрова: Иванов holds a therapy booking already.) */
    struct http_resp *r = send_json("POST", ENTRY, other, b);
    free(entry_ok(r, LPU_470102));
    free(b), free(dt);
    free(tok), free(other), free(id), free(again);
}
END_TEST

START_TEST(test_entry_rules)
{
    char *ivanov = token_of(RPGU, &IVANOV);
    char *petrova = token_of(RPGU, &PETROVA);
    char *smirnova = token_of(RPGU, &SMIRNOVA);
    char *kozlov = token_of(RPGU, &KOZLOV);
    char *fedorov = token_of(RPGU, &FEDOROV);

    /* 4000: no card in the LPU (Иванов's only card is in 470102). */
    struct test_cell w = internet_cell(RES_EYES, 2);
    char *msg = xasprintf("Не найден МКАБ: %s в лпу: 330501", ivanov_person());
    EXPECT(entry(ivanov, "330501", LPU_330501, RES_EYES, &w, ""), 400, "4000", msg);
    free(msg);

    /* 4005: an adult at a children's LPU (Смирнова, 1992, card in ДП №2). */
    w = internet_cell(RES_ENT_KIDS, 2);
    EXPECT(entry(smirnova, "470103", LPU_470103, RES_ENT_KIDS, &w, ""), 400, "4005", MSG_4005);

    /* 4007: self-booking blocked on the card (Козлов's blackLabel). */
    w = internet_cell(RES_THERAPIST, 2);
    EXPECT(entry(kozlov, "470102", LPU_470102, RES_THERAPIST, &w, ""), 400, "4007", MSG_4007_SELF);

    /* 4007, second message: dispensary-only, not on the list; Петрова is. */
    w = internet_cell(RES_CARDIO_DISP, 2);
    EXPECT(entry(ivanov, "470102", LPU_470102, RES_CARDIO_DISP, &w, ""), 400, "4007", MSG_4007_DISP);
    free(entry_ok(entry(petrova, "470102", LPU_470102, RES_CARDIO_DISP, &w, ""), LPU_470102));

    /* 4029: the mammography room takes women of 40 and over. */
    w = internet_cell(RES_MAMMO, 2);
    EXPECT(entry(ivanov, "470102", LPU_470102, RES_MAMMO, &w, ""), 400, "4029", MSG_4029);
    free(entry_ok(entry(petrova, "470102", LPU_470102, RES_MAMMO, &w, ""), LPU_470102));

    /* 4008: a second therapy booking while one is active and ahead. */
    w = internet_cell(RES_THERAPIST, 3);
    free(entry_ok(entry(ivanov, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102));
    struct test_cell w2 = internet_cell(RES_THERAPIST2, 4);
    char *m4008 = xasprintf("Вы уже записаны Смирнов А. В. на %c%c.%c%c.%.4s %s. Запрещено иметь "
                            "более одной активной записи на прием на одну специальность.",
                            w.day[8], w.day[9], w.day[5], w.day[6], w.day, w.time);
    EXPECT(entry(ivanov, "470102", LPU_470102, RES_THERAPIST2, &w2, ""), 400, "4008", m4008);
    free(m4008);

    /* Referral-only resource without a referral: the project's 4133. */
    w = internet_cell(RES_CARDIO_REF, 2);
    EXPECT(entry(fedorov, "330501", LPU_330501, RES_CARDIO_REF, &w, ""), 400, "4133",
           "Запись к этому специалисту возможна только по направлению.");
    /* With its referral in seed 001's pair it books. */
    char *pair = xasprintf(",\"directionID\":\"%s\",\"directionType\":\"consultation\"", REF_FEDOROV);
    free(entry_ok(entry(fedorov, "330501", LPU_330501, RES_CARDIO_REF, &w, pair), LPU_330501));
    free(pair);
    /* 4031: someone else's referral (Петрова with Федоров's). */
    w = internet_cell(RES_CARDIO_REF, 3);
    pair = xasprintf(",\"directionID\":\"%s\",\"directionType\":\"consultation\"", REF_FEDOROV);
    EXPECT(entry(petrova, "330501", LPU_330501, RES_CARDIO_REF, &w, pair), 400, "4031", MSG_4031);
    free(pair);

    free(ivanov), free(petrova), free(smirnova), free(kozlov), free(fedorov);
}
END_TEST

START_TEST(test_entry_request_errors)
{
    char *tok = token_of(RPGU, &IVANOV);
    struct test_cell w = internet_cell(RES_THERAPIST, 5);

    /* 4033: one of directionID and directionType alone. */
    EXPECT(entry(tok, "470102", LPU_470102, RES_THERAPIST, &w, ",\"directionID\":\"" REF_IVANOV "\""),
           400, "4033", "directionID и directionType не могут быть указаны отдельно");
    EXPECT(entry(tok, "470102", LPU_470102, RES_THERAPIST, &w, ",\"directionType\":\"x\""), 400,
           "4033", "directionID и directionType не могут быть указаны отдельно");
    /* 4036: no doctor, or no time. */
    const char *m4036 = "Время и гвид врача или гвид ячейки расписания не должны быть пустыми";
    char *b = xasprintf("{\"lpu_code\":\"470102\",\"day\":\"%s\",\"time\":\"%s\"}", w.day, w.time);
    EXPECT(send_json("POST", ENTRY, tok, b), 400, "4036", m4036);
    free(b);
    b = xasprintf("{\"lpu_code\":\"470102\",\"doctor_id\":\"%s%s\",\"day\":\"%s\",\"time\":\"\"}",
                  LPU_470102, RES_THERAPIST, w.day);
    EXPECT(send_json("POST", ENTRY, tok, b), 400, "4036", m4036);
    free(b);
    /* 5066: beyond the horizon (21 days). */
    PGresult *res = pg_exec("SELECT to_char((now() AT TIME ZONE '" TZ "')::date + 22, 'YYYY-MM-DD')",
                            0, NULL);
    struct test_cell far = w;
    snprintf(far.day, sizeof(far.day), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    EXPECT(entry(tok, "470102", LPU_470102, RES_THERAPIST, &far, ""), 400, "5066",
           "Недопустимый период расписания. Максимальный период 21 дней");
    /* No cell at that time (the project's 4130), a time passed (4131). */
    struct test_cell odd = w;
    snprintf(odd.time, sizeof(odd.time), "%.3s07", w.time);
    char *m = xasprintf("В расписании ресурса нет приема на %s %s", odd.day, odd.time);
    EXPECT(entry(tok, "470102", LPU_470102, RES_THERAPIST, &odd, ""), 400, "4130", m);
    free(m);
    struct test_cell past = {.day = "2020-01-10", .time = "09:00"};
    EXPECT(entry(tok, "470102", LPU_470102, RES_THERAPIST, &past, ""), 400, "4131",
           "Время приема 2020-01-10 09:00 уже прошло");
    /* Shapes: each field named. */
    EXPECT(entry(tok, "47010x", LPU_470102, RES_THERAPIST, &w, ""), 400, "4101",
           "Параметр lpu_code имеет неверный формат");
    EXPECT(entry(tok, "470102", LPU_470102, "not-a-guid", &w, ""), 400, "4101",
           "Параметр doctor_id имеет неверный формат");
    struct test_cell bad = w;
    snprintf(bad.day, sizeof(bad.day), "2026-13-01");
    EXPECT(entry(tok, "470102", LPU_470102, RES_THERAPIST, &bad, ""), 400, "4101",
           "Параметр day имеет неверный формат");
    bad = w;
    snprintf(bad.time, sizeof(bad.time), "9:00");
    EXPECT(entry(tok, "470102", LPU_470102, RES_THERAPIST, &bad, ""), 400, "4101",
           "Параметр time имеет неверный формат");
    EXPECT(entry(tok, "470102", LPU_470102, RES_THERAPIST, &w, ",\"email\":\"nobody\""), 400, "4101",
           "Параметр email имеет неверный формат");
    EXPECT(entry(tok, "470102", LPU_470102, RES_THERAPIST, &w, ",\"phone\":\"12\""), 400, "4101",
           "Параметр phone имеет неверный формат");
    EXPECT(entry(tok, "470102", LPU_470102, RES_THERAPIST, &w, ",\"email_confirm_agree\":2"), 400,
           "4101", "Параметр email_confirm_agree имеет неверный формат");
    /* lpu_code of another LPU than doctor_id's: 4108; an unknown LPU: 4141. */
    EXPECT(entry(tok, "330501", LPU_470102, RES_THERAPIST, &w, ""), 400, "4108",
           "Параметры lpu_code и doctor_id указывают на разные ЛПУ");
    /* doctor_id naming an LPU there is none of: the patient has no card
     * there, and that comes first (docs/api.md's order). */
    char *m4000 = xasprintf("Не найден МКАБ: %s в лпу: 470102", ivanov_person());
    EXPECT(entry(tok, "470102", "00000000-0000-4000-8000-0000000000aa", RES_THERAPIST, &w, ""), 400,
           "4000", m4000);
    free(m4000);
    /* A resource of another LPU. */
    EXPECT(entry(tok, "470102", LPU_470102, RES_EYES, &w, ""), 404, "4142",
           "Ресурс " RES_EYES " не найден в ЛПУ 470102");
    /* Body and type. */
    EXPECT(send_json("POST", ENTRY, tok, "{\"lpu_code\":"), 400, "4110", NULL);
    EXPECT(send_json("POST", ENTRY, tok, "[1]"), 400, "4110", NULL);
    const char *h[] = {NULL};
    EXPECT(http_request("POST", ENTRY, h, "{}"), 415, "4115", NULL);
    ck_assert_int_eq(active_bookings(w.guid), 0);
    free(tok);
}
END_TEST

START_TEST(test_entry_tokens)
{
    struct test_cell w = internet_cell(RES_THERAPIST, 6);
    char *b = entry_body("470102", LPU_470102, RES_THERAPIST, &w, "");
    EXPECT(send_json("POST", ENTRY, NULL, b), 403, "5010",
           "Запрос должен содержать 'Authorization: Bearer ...'\"");
    /* A COD token is not an RPGU token. */
    char *cod = token_of(COD, &IVANOV);
    EXPECT(send_json("POST", ENTRY, cod, b), 403, "5008", "Токен некорректен");
    /* A signature that does not verify. */
    char *rpgu = token_of(RPGU, &IVANOV);
    size_t n = strlen(rpgu);
    rpgu[n - 2] = rpgu[n - 2] == 'A' ? 'B' : 'A';
    EXPECT(send_json("POST", ENTRY, rpgu, b), 403, "5009", "Подпись запроса некорректна");
    /* Expired: 5007, on both booking endpoints. */
    long long now = (long long)time(NULL);
    char *old = sign_own(ivanov_person(), now - 1200, now - 600, TOKEN_RPGU);
    EXPECT(send_json("POST", ENTRY, old, b), 403, "5007", "Время действия токена истекло");
    free(old);
    old = sign_own(ivanov_person(), now - 1200, now - 600, TOKEN_COD);
    char *d = direction_body(LPU_330501, RES_EYES, REF_IVANOV, &w);
    EXPECT(send_json("POST", "/api/v2/directions/visit/" LPU_330501, old, d), 403, "5007",
           "Время действия токена истекло");
    ck_assert_int_eq(active_bookings(w.guid), 0);
    free(b), free(cod), free(rpgu), free(old), free(d);
}
END_TEST

/* The server lost its scripts (a restart, SCRIPT FLUSH): the lock and the
 * marker still work, sent again as EVAL, and no lock is left behind. */
START_TEST(test_scripts_lost)
{
    char *ivanov = token_of(RPGU, &IVANOV);
    char *petrova = token_of(RPGU, &PETROVA);
    struct test_cell w = internet_cell(RES_THERAPIST, 14);
    ck_assert_int_eq(redis_cli("SCRIPT FLUSH"), 0);
    free(entry_ok(entry(ivanov, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102));
    ck_assert_int_eq(redis_cli("SCRIPT FLUSH"), 0);
    EXPECT(entry(petrova, "470102", LPU_470102, RES_THERAPIST, &w, ""), 400, "4009", MSG_4009);
    /* The marker names the holder; no lock remains (the unlock is not
     * waited for by the answer: give it a moment). */
    ck_assert_int_eq(redis_keys_drained("cell:lock:*"), 0);
    ck_assert_int_eq(redis_keys("cell:booked:*"), 1);
    free(ivanov), free(petrova);
}
END_TEST

/* A session in Redis that cannot be used (here: garbage) is rebuilt from
 * PostgreSQL, which may refuse the token (here: every card of its patient
 * closed meanwhile) and answer at once: the cell's lock, taken with the
 * session's read, must not outlive that answer. */
START_TEST(test_lock_released_on_refusal)
{
    char *tok = token_of(RPGU, &IVANOV);
    struct test_cell w = internet_cell(RES_THERAPIST, 16);
    ck_assert_int_eq(redis_cli("EVAL \"for _, k in ipairs(redis.call('KEYS', 'tok:*'))"
                               " do redis.call('SET', k, 'garbage') end\" 0"), 0);
    const char *v[] = {ivanov_person()};
    PGresult *closed = pg_exec("UPDATE medical_cards SET is_closed = true"
                               " WHERE person_guid = $1::uuid AND NOT is_closed RETURNING guid::text", 1, v);
    struct http_resp *r = entry(tok, "470102", LPU_470102, RES_THERAPIST, &w, "");
    for (int i = 0; i < PQntuples(closed); i++) {
        const char *g[] = {PQgetvalue(closed, i, 0)};
        PQclear(pg_exec("UPDATE medical_cards SET is_closed = false WHERE guid = $1::uuid", 1, g));
    }
    ck_assert_int_gt(PQntuples(closed), 0);
    PQclear(closed);
    ck_assert_msg(r->status == 404 && strstr(r->body, "\"4001\""), "status %d: %s", r->status, r->body);
    http_free(r);
    ck_assert_int_eq(redis_keys_drained("cell:lock:*"), 0);
    ck_assert_int_eq(active_bookings(w.guid), 0);
    free(tok);
}
END_TEST

/* A cell just cancelled gets a freed key, and no marker is written while
 * it lives: a refusal that read the booking before the cancellation (here:
 * a booking still active, its marker deleted and the freed key set by
 * hand) must not put back a marker that would refuse everyone else. */
START_TEST(test_no_marker_on_freed_cell)
{
    char *ivanov = token_of(RPGU, &IVANOV), *petrova = token_of(RPGU, &PETROVA);
    struct test_cell w = internet_cell(RES_THERAPIST, 19);
    char *id = entry_ok(entry(ivanov, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102);
    ck_assert_int_eq(redis_keys_become("cell:booked:*", 1), 1);
    ck_assert_int_eq(redis_cli("EVAL \"for _, k in ipairs(redis.call('KEYS', 'cell:booked:*'))"
                               " do redis.call('DEL', k) redis.call('SET', string.gsub(k, 'booked', 'freed'),"
                               " '1', 'PX', 60000) end\" 0"), 0);
    EXPECT(entry(petrova, "470102", LPU_470102, RES_THERAPIST, &w, ""), 400, "4009", MSG_4009);
    sleep_ms(200);  /* the marker would be written after the answer */
    ck_assert_int_eq(redis_keys("cell:booked:*"), 0);
    /* A real cancellation sets the freed key, for longer than a marker can
     * be on its way (2 pg.timeout_ms + redis.timeout_ms + 5 s by default). */
    redis_cli("EVAL \"for _, k in ipairs(redis.call('KEYS', 'cell:freed:*')) do redis.call('DEL', k) end\" 0");
    EXPECT(cancel(ivanov, id), 200, "2000", "Вызов отменен");
    ck_assert_int_eq(redis_keys("cell:freed:*"), 1);
    ck_assert_int_eq(redis_keys("cell:booked:*"), 0);
    long ttl = redis_long("EVAL \"return redis.call('PTTL', redis.call('KEYS', 'cell:freed:*')[1])\" 0");
    ck_assert_msg(ttl > 5000 && ttl <= 9500, "the freed key lives %ld ms", ttl);
    /* Booked again by another, once the freed key is gone: the first
     * patient's cancellation asked again leaves the new holder's marker. */
    redis_cli("EVAL \"for _, k in ipairs(redis.call('KEYS', 'cell:freed:*')) do redis.call('DEL', k) end\" 0");
    char *id2 = entry_ok(entry(petrova, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102);
    ck_assert_int_eq(redis_keys_become("cell:booked:*", 1), 1);
    EXPECT(cancel(ivanov, id), 200, "2000", "Вызов отменен");
    ck_assert_int_eq(redis_keys("cell:booked:*"), 1);
    free(id), free(id2), free(ivanov), free(petrova);
}
END_TEST

/* A cancellation whose script Redis refuses with BUSY (a slow script of the
 * test's own holds it, past a busy-reply threshold lowered for the test):
 * the refusal passes, and the worker sends the script again a second later
 * rather than drop it, so the cell's marker does not answer 4009 for a free
 * cell for its lifetime. */
START_TEST(test_marker_dropped_after_busy)
{
    char *ivanov = token_of(RPGU, &IVANOV);
    struct test_cell w = internet_cell(RES_THERAPIST, 21);
    char *id = entry_ok(entry(ivanov, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102);
    ck_assert_int_eq(redis_keys_become("cell:booked:*", 1), 1);
    ck_assert_int_eq(redis_cli("CONFIG SET busy-reply-threshold 50"), 0);
    /* 1.5 s of a script that only reads the clock, in the background. */
    char *cmd = xasprintf("redis-cli -p %s EVAL \"local function now() local t = redis.call('TIME')"
                          " return tonumber(t[1]) + tonumber(t[2]) / 1e6 end local s = now()"
                          " while now() - s < 1.5 do end return 1\" 0 >/dev/null 2>&1 &",
                          env("MIPGW_TEST_REDIS_PORT"));
    ck_assert_int_eq(system(cmd), 0);
    sleep_ms(300);
    EXPECT(cancel(ivanov, id), 200, "2000", "Вызов отменен");
    /* Until the slow script is over, Redis answers everyone BUSY. */
    bool busy = true;
    for (int i = 0; i < 100 && busy; i++) {
        busy = redis_cli("PING | grep -q PONG") != 0;
        if (busy)
            sleep_ms(50);
    }
    redis_cli("CONFIG SET busy-reply-threshold 5000");
    ck_assert_msg(!busy, "Redis still busy 5 s on");
    ck_assert_msg(redis_keys_become("cell:booked:*", 0) == 0,
                  "the marker is still there 3 s after the script refused as BUSY");
    free(cmd), free(id), free(ivanov);
}
END_TEST

/* A gateway of the test's own that reaches Redis through tests/stallproxy,
 * with a short Redis deadline (300 ms) and a long lock lifetime (30 s):
 * what Redis's misses do to a booking shows, and is not hidden by a lock
 * expiring. MIPGW_TEST_PORT names it, for the helpers above (each test runs
 * in a process of its own). The proxy dies with the test. */
struct proxied {
    struct redis_proxy proxy;
    pid_t gw;
    char *via;
};

static struct proxied proxied_start(void)
{
    struct proxied p;
    p.proxy = redis_proxy_start(0);
    p.via = xasprintf("MIPGW_REDIS_PORT=%d", p.proxy.port);
    const char *settings[] = {p.via, "MIPGW_REDIS_TIMEOUT_MS=300", "MIPGW_BOOKING_LOCK_TTL_MS=30000", NULL};
    int port = gw_spawn(settings, &p.gw);
    ck_assert_msg(ready_streak(port, 200, 3, 15000) >= 0, "the gateway behind the proxy is not ready");
    char portbuf[16];
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    setenv("MIPGW_TEST_PORT", portbuf, 1);
    return p;
}

static double proxied_timeouts(void)
{
    return metric_at(atoi(env("MIPGW_TEST_PORT")), "mipgw_redis_timeouts_total");
}

static void proxied_stop(struct proxied *p)
{
    ck_assert_msg(gw_stop(p->gw) == 0, "the gateway behind the proxy did not exit 0 on SIGTERM");
    redis_proxy_stop(&p->proxy);
    free(p->via);
}

/* Books a cell through a gateway behind the proxy told control: the
 * booking is made, one of its Redis scripts misses its deadline, and once
 * the proxy forwards everything again the cell's lock is gone within 3 s,
 * not left for its lifetime. */
static void assert_lock_released(const char *control, int cell)
{
    char *tok = token_of(RPGU, &IVANOV);
    struct test_cell w = internet_cell(RES_THERAPIST, cell);
    struct proxied p = proxied_start();
    double timeouts = proxied_timeouts();
    redis_proxy_control(&p.proxy, control);
    char *id = entry_ok(entry(tok, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102);
    for (int i = 0; i < 60 && proxied_timeouts() < timeouts + 1; i++)
        sleep_ms(50);  /* the script missed its deadline: dropped, not late */
    redis_proxy_control(&p.proxy, NULL);
    ck_assert_double_ge(proxied_timeouts(), timeouts + 1);
    ck_assert_int_eq(active_bookings(w.guid), 1);
    ck_assert_msg(redis_keys_become("cell:lock:*", 0) == 0, "the lock is still held 3 s after Redis came back");
    proxied_stop(&p);
    free(id), free(tok);
}

/* A lock script that Redis ran but whose answer did not come in time (the
 * proxy swallows it): the booking goes on with PostgreSQL alone, and the
 * lock, which the gateway cannot tell it holds, is let go once Redis is
 * back rather than left for its lifetime. */
START_TEST(test_lock_released_after_timeout)
{
    assert_lock_released("swallow :", 17);  /* the lock script's answer is an integer */
}
END_TEST

/* A booking whose marker-and-unlock script never reached Redis (the proxy
 * drops it; the lock script before it was answered): the unlock alone is
 * kept and sent once Redis is back. The script goes with nine arguments;
 * nothing else sent during a booking has as many. */
START_TEST(test_lock_released_after_lost_unlock)
{
    assert_lock_released("drop *9\\r\\n$", 20);
}
END_TEST

/* A cancellation whose script (the marker deleted, the freed key set)
 * never reached Redis (the proxy drops it): the marker is deleted once Redis is back, and the
 * cell is booked by the next patient, not refused with 4009 for the
 * marker's lifetime. */
START_TEST(test_marker_dropped_after_timeout)
{
    char *ivanov = token_of(RPGU, &IVANOV), *petrova = token_of(RPGU, &PETROVA);
    struct test_cell w = internet_cell(RES_THERAPIST, 18);
    struct proxied p = proxied_start();
    char *id = entry_ok(entry(ivanov, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102);
    ck_assert_int_eq(redis_keys_become("cell:booked:*", 1), 1);
    double timeouts = proxied_timeouts();
    /* The cancellation's script goes with seven arguments; nothing else
     * sent meanwhile has as many (its session is read by GET). */
    redis_proxy_control(&p.proxy, "drop *7\\r\\n$");
    EXPECT(cancel(ivanov, id), 200, "2000", "Вызов отменен");
    redis_proxy_control(&p.proxy, NULL);
    ck_assert_double_ge(proxied_timeouts(), timeouts + 1);
    ck_assert_msg(redis_keys_become("cell:booked:*", 0) == 0, "the marker is still there 3 s after Redis came back");
    char *again = entry_ok(entry(petrova, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102);
    proxied_stop(&p);
    free(id), free(again), free(ivanov), free(petrova);
}
END_TEST

/* A portal's own RPGU token names a polis: its session is read before the
 * lock, and the booking is the same as with ours. */
START_TEST(test_portal_tokens)
{
    const char *key = env("MIPGW_TEST_PORTAL_KEY");
    long long now = (long long)time(NULL);
    char *ivanov = portal_token(key, "", IVANOV.v1, IVANOV.birthday, now + 600);
    char *petrova = portal_token(key, "", PETROVA.v1, PETROVA.birthday, now + 600);
    struct test_cell w = internet_cell(RES_THERAPIST, 15);
    char *id = entry_ok(entry(ivanov, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102);
    EXPECT(entry(petrova, "470102", LPU_470102, RES_THERAPIST, &w, ""), 400, "4009", MSG_4009);
    char *again = entry_ok(entry(ivanov, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102);
    ck_assert_str_eq(id, again);
    const char *v[] = {id + 36};
    char *person = pg_value("SELECT person_guid::text FROM bookings WHERE guid = $1::uuid", 1, v);
    ck_assert_str_eq(person, ivanov_person());
    EXPECT(cancel(ivanov, id), 200, "2000", "Вызов отменен");
    free(ivanov), free(petrova), free(id), free(again), free(person);
}
END_TEST

/* 4132: the demo's Saturday reception of the therapist is open to the
 * registry and doctors only; a day off (busy type 0) is closed too. */
START_TEST(test_entry_cell_closed)
{
    char *tok = token_of(RPGU, &IVANOV);
    const char *msg = "Это время закрыто для записи через интернет. Выберите другое свободное время приема.";
    PGresult *res = pg_exec("SELECT to_char(begin_at AT TIME ZONE '" TZ "', 'YYYY-MM-DD'),"
                            " to_char(begin_at AT TIME ZONE '" TZ "', 'HH24:MI'), guid::text"
                            " FROM cells WHERE resource_guid = '" RES_THERAPIST "'"
                            " AND begin_at > now() + interval '3 hours'"
                            " AND NOT 'Internet' = ANY (access) ORDER BY begin_at LIMIT 1", 0, NULL);
    ck_assert_msg(PQntuples(res) == 1, "the demo has a cell closed to Internet booking");
    struct test_cell w;
    snprintf(w.day, sizeof(w.day), "%s", PQgetvalue(res, 0, 0));
    snprintf(w.time, sizeof(w.time), "%s", PQgetvalue(res, 0, 1));
    snprintf(w.guid, sizeof(w.guid), "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    EXPECT(entry(tok, "470102", LPU_470102, RES_THERAPIST, &w, ""), 400, "4132", msg);
    ck_assert_int_eq(active_bookings(w.guid), 0);

    w = internet_cell(RES_THERAPIST2, 7);
    const char *v[] = {w.guid};
    PQclear(pg_exec("UPDATE cells SET busy_type = 0 WHERE guid = $1::uuid", 1, v));
    EXPECT(entry(tok, "470102", LPU_470102, RES_THERAPIST2, &w, ""), 400, "4132", msg);
    PQclear(pg_exec("UPDATE cells SET busy_type = 1 WHERE guid = $1::uuid", 1, v));
    free(entry_ok(entry(tok, "470102", LPU_470102, RES_THERAPIST2, &w, ""), LPU_470102));
    free(tok);
}
END_TEST

/* ------------------------------------------------------------------ */
/* seed 002 */

static void assert_ticket_shape(yajl_val v, const char *cell, const char *res)
{
    static const char *const keys[] = {
        "lpu", "num", "room", "flat", "busyType", "ticketGuid", "timeTableGuid", "docFio",
        "docGuid", "resType", "doctorRole", "speciality", "beginTime", "endTime",
        "dateOfAppointment", "source", "login", "sourceName", "history"};
    ck_assert_msg(jkeys_exactly(v, keys, sizeof(keys) / sizeof(keys[0])), "TicketVisitWithLpu keys");
    yajl_val lpu = jget(v, "lpu");
    ck_assert_str_eq(jstr(lpu, "guid"), LPU_330501);
    ck_assert_str_eq(jstr(lpu, "mcod"), "330501");
    ck_assert_str_eq(jstr(jget(lpu, "status"), "name"), "Online");
    /* Every field the MIS uploaded comes back: the demo's INN, worktimes. */
    ck_assert_ptr_nonnull(jstr(lpu, "inn"));
    ck_assert_ptr_nonnull(jget(lpu, "worktimes"));
    ck_assert_str_eq(jstr(v, "timeTableGuid"), cell);
    ck_assert_str_eq(jstr(v, "docGuid"), res);
    ck_assert_str_eq(jstr(v, "docFio"), "Волков С. Н.");
    ck_assert_str_eq(jstr(v, "resType"), "Doctor");
    ck_assert_str_eq(jstr(v, "speciality"), "Кардиология");
    ck_assert_str_eq(jstr(v, "room"), "401");
    ck_assert_int_eq(YAJL_GET_INTEGER(jget(v, "flat")), 4);
    ck_assert_int_eq(YAJL_GET_INTEGER(jget(jget(v, "busyType"), "type")), 1);
    ck_assert_int_eq(YAJL_GET_INTEGER(jget(v, "source")), 1);
    ck_assert_str_eq(jstr(v, "sourceName"), "Internet");
    ck_assert(is_guid(jstr(v, "ticketGuid")));
    ck_assert_msg(strlen(jstr(v, "beginTime")) == 25 && strstr(jstr(v, "beginTime"), "+03:00"),
                  "beginTime %s", jstr(v, "beginTime"));
    yajl_val h = jget(v, "history");
    ck_assert(YAJL_IS_ARRAY(h) && h->u.array.len == 1);
    yajl_val h0 = h->u.array.values[0];
    ck_assert_str_eq(jstr(h0, "newValue"), "active");
    ck_assert_str_eq(jstr(h0, "editor"), "Internet");
    ck_assert_str_eq(jstr(jget(h0, "client"), "mnem"), "Internet");
}

START_TEST(test_direction_visit)
{
    char *cod = token_of(COD, &FEDOROV);
    char *rpgu = token_of(RPGU, &FEDOROV);
    struct test_cell w = internet_cell(RES_CARDIO_REF, 3);
    struct http_resp *r = direction(cod, LPU_330501, RES_CARDIO_REF, REF_FEDOROV, &w);
    ck_assert_msg(r->status == 200, "visit: %d %s", r->status, show(r));
    yajl_val v = jbody(r, "visit");
    assert_ticket_shape(v, w.guid, RES_CARDIO_REF);
    char *visit = xasprintf("%s%s", LPU_330501, jstr(v, "ticketGuid"));
    yajl_tree_free(v);
    http_free(r);

    /* The referral is used up: another cell with it is 4031. */
    struct test_cell w2 = internet_cell(RES_CARDIO_REF, 4);
    EXPECT(direction(cod, LPU_330501, RES_CARDIO_REF, REF_FEDOROV, &w2), 400, "4031", MSG_4031);
    /* Cancelled, it is free again, and so is the cell. */
    EXPECT(cancel(rpgu, visit), 200, "2000", "Вызов отменен");
    r = direction(cod, LPU_330501, RES_CARDIO_REF, REF_FEDOROV, &w2);
    ck_assert_msg(r->status == 200, "re-booking: %d %s", r->status, show(r));
    http_free(r);
    /* The cancelled booking's history holds both steps, in the patient's list. */
    char *auth = xasprintf("Authorization: Bearer %s", cod);
    r = http_get(VISITS, auth, NULL);
    ck_assert_msg(r->status == 200, "visits: %d %s", r->status, show(r));
    yajl_val list = jparse_str(r->body);
    ck_assert(YAJL_IS_ARRAY(list) && list->u.array.len >= 2);
    bool seen = false;
    for (size_t i = 0; i < list->u.array.len; i++) {
        yajl_val it = list->u.array.values[i];
        if (strcmp(jstr(it, "visitId"), visit) == 0) {
            seen = true;
            ck_assert_str_eq(jstr(it, "status"), "cancelled");
            yajl_val h = jget(it, "history");
            ck_assert_int_eq(h->u.array.len, 2);
            ck_assert_str_eq(jstr(h->u.array.values[1], "oldValue"), "active");
            ck_assert_str_eq(jstr(h->u.array.values[1], "newValue"), "cancelled");
        }
    }
    ck_assert_msg(seen, "the cancelled visit is listed");
    yajl_tree_free(list);
    http_free(r);
    free(auth), free(visit), free(cod), free(rpgu);
}
END_TEST

/* Иванов's card is in 470102 only; some cases below need him with a card
 * in 330501 too (made here, removed at the end). */
static void ivanov_card_330501(bool on)
{
    const char *v[] = {ivanov_person()};
    PQclear(pg_exec(on ? "INSERT INTO medical_cards (guid, person_guid, lpu_guid, polis_number,"
                         " polis_key) VALUES (gen_random_uuid(), $1::uuid, '" LPU_330501 "',"
                         " 'e2e-booking', 'e2e-booking')"
                       : "DELETE FROM medical_cards WHERE person_guid = $1::uuid AND lpu_guid = '"
                         LPU_330501 "' AND polis_number = 'e2e-booking'",
                    1, v));
}

START_TEST(test_direction_errors)
{
    char *fedorov = token_of(COD, &FEDOROV);
    char *ivanov = token_of(COD, &IVANOV);
    char *petrova = token_of(COD, &PETROVA);
    struct test_cell w = internet_cell(RES_CARDIO_REF, 6);
    struct test_cell we = internet_cell(RES_EYES, 6);

    /* 4001: no card in that LPU (Иванов's referral is to 330501). */
    EXPECT(direction(ivanov, LPU_330501, RES_EYES, REF_IVANOV, &we), 404, "4001", MSG_NO_EMK);
    /* 5096: the card is closed (Петрова's in 330501). */
    const char *pv[] = {"1c6017ce-a82f-44cf-9459-71e2e1107bb7"};
    PQclear(pg_exec("UPDATE medical_cards SET is_closed = true WHERE guid = $1::uuid", 1, pv));
    struct http_resp *r = direction(petrova, LPU_330501, RES_EYES, REF_IVANOV, &we);
    PQclear(pg_exec("UPDATE medical_cards SET is_closed = false WHERE guid = $1::uuid", 1, pv));
    EXPECT(r, 403, "5096", MSG_EMK_CLOSED);

    /* 4031: unknown; someone else's; for another resource; expired. */
    EXPECT(direction(fedorov, LPU_330501, RES_CARDIO_REF, "00000000-0000-4000-8000-000000000001", &w),
           400, "4031", MSG_4031);
    EXPECT(direction(petrova, LPU_330501, RES_CARDIO_REF, REF_FEDOROV, &w), 400, "4031", MSG_4031);
    ivanov_card_330501(true);
    EXPECT(direction(ivanov, LPU_330501, RES_CARDIO_REF, REF_IVANOV, &w), 400, "4031", MSG_4031);
    const char *v[] = {REF_FEDOROV};
    PQclear(pg_exec("UPDATE referrals SET valid_until = issued_on WHERE guid = $1::uuid", 1, v));
    r = direction(fedorov, LPU_330501, RES_CARDIO_REF, REF_FEDOROV, &w);
    PQclear(pg_exec("UPDATE referrals SET valid_until = issued_on + 365 WHERE guid = $1::uuid", 1, v));
    EXPECT(r, 400, "4031", MSG_4031);

    /* 4029 through seed 002: Зайцева takes 18 to 65; Иванов made 76. */
    const char *iv[] = {ivanov_person()};
    PQclear(pg_exec("UPDATE persons SET birthday = '1950-01-01' WHERE guid = $1::uuid", 1, iv));
    r = direction(ivanov, LPU_330501, RES_EYES, REF_IVANOV, &we);
    PQclear(pg_exec("UPDATE persons SET birthday = '1985-03-14' WHERE guid = $1::uuid", 1, iv));
    EXPECT(r, 400, "4029", MSG_4029);
    /* 4009 through seed 002: Петрова took the cell first. */
    char *rp = token_of(RPGU, &PETROVA);
    free(entry_ok(entry(rp, "330501", LPU_330501, RES_EYES, &we, ""), LPU_330501));
    EXPECT(direction(ivanov, LPU_330501, RES_EYES, REF_IVANOV, &we), 400, "4009", MSG_4009);
    ivanov_card_330501(false);

    /* An LPU there is none of (seed 002 checks no card before PostgreSQL). */
    EXPECT(direction(fedorov, "00000000-0000-4000-8000-0000000000aa", RES_CARDIO_REF, REF_FEDOROV, &w),
           404, "4141", "ЛПУ 00000000-0000-4000-8000-0000000000aa не найдено");
    /* The path's LPU and the body's differ. */
    char *b = direction_body(LPU_330501, RES_CARDIO_REF, REF_FEDOROV, &w);
    char *path = xasprintf("/api/v2/directions/visit/%s", LPU_470102);
    EXPECT(send_json("POST", path, fedorov, b), 400, "4108",
           "Параметры {lpuGuid} пути и lpuGuid указывают на разные ЛПУ");
    free(path);
    /* Tokens: an RPGU token where seed 002 wants a COD token; none. */
    char *rpgu = token_of(RPGU, &FEDOROV);
    path = xasprintf("/api/v2/directions/visit/%s", LPU_330501);
    EXPECT(send_json("POST", path, rpgu, b), 403, "5008", "Токен некорректен");
    EXPECT(send_json("POST", path, NULL, b), 403, "5010",
           "Запрос должен содержать 'Authorization: Bearer ...'\"");
    /* A required field missing. */
    EXPECT(send_json("POST", path, fedorov, "{\"date\":\"2030-01-01\",\"time\":\"09:00\"}"), 400,
           "4100", "Не указан обязательный параметр lpuGuid");
    free(path), free(b), free(rpgu), free(rp);
    free(fedorov), free(ivanov), free(petrova);
}
END_TEST

/* ------------------------------------------------------------------ */
/* cancellation */

START_TEST(test_cancel)
{
    char *ivanov = token_of(RPGU, &IVANOV);
    char *petrova = token_of(RPGU, &PETROVA);
    struct test_cell w = internet_cell(RES_THERAPIST, 8);
    char *id = entry_ok(entry(ivanov, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102);
    char *nf = xasprintf("Запись на прием %s не найдена", id);
    /* Someone else's: not found, as an unknown one. */
    EXPECT(cancel(petrova, id), 404, "4143", nf);
    EXPECT(cancel(NULL, id), 403, "5010", "Запрос должен содержать 'Authorization: Bearer ...'\"");
    EXPECT(cancel(ivanov, "abc"), 400, "4101", "Параметр visitId имеет неверный формат");
    /* Own: 2000, the cell free for everyone at once (its Redis marker gone). */
    EXPECT(cancel(ivanov, id), 200, "2000", "Вызов отменен");
    ck_assert_int_eq(active_bookings(w.guid), 0);
    free(entry_ok(entry(petrova, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102));
    /* Again: answered as the first time. */
    EXPECT(cancel(ivanov, id), 200, "2000", "Вызов отменен");
    ck_assert_int_eq(active_bookings(w.guid), 1);

    /* DeleteVisitStatus: the visit took place. */
    struct test_cell w2 = internet_cell(RES_THERAPIST2, 9);
    char *id2 = entry_ok(entry(ivanov, "470102", LPU_470102, RES_THERAPIST2, &w2, ""), LPU_470102);
    const char *v[] = {id2 + 36};
    PQclear(pg_exec("UPDATE bookings SET status = 'visited' WHERE guid = $1::uuid", 1, v));
    EXPECT(cancel(ivanov, id2), 400, "4136", "Прием уже состоялся: запись нельзя отменить.");
    /* DeleteOldTime: its time has come. */
    PQclear(pg_exec("UPDATE bookings SET status = 'active', begin_at = now() - interval '1 hour'"
                    " WHERE guid = $1::uuid", 1, v));
    EXPECT(cancel(ivanov, id2), 400, "4135", "Время приема наступило: запись нельзя отменить.");
    free(ivanov), free(petrova), free(id), free(nf), free(id2);
}
END_TEST

/* ------------------------------------------------------------------ */
/* one per speciality under concurrency */

START_TEST(test_one_per_speciality_concurrent)
{
    /* Иванов books ten different therapy cells at once from ten
     * processes: exactly one gets 200, the rest 4008 (or 4009 if two took
     * the same cell, which they do not). */
    char *tok = token_of(RPGU, &IVANOV);
    enum { N = 10 };
    int pipes[N][2];
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(pipe(pipes[i]), 0);
        struct test_cell w = internet_cell(i % 2 ? RES_THERAPIST : RES_THERAPIST2, 20 + i);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            struct http_resp *r = entry(tok, "470102", LPU_470102,
                                        i % 2 ? RES_THERAPIST : RES_THERAPIST2, &w, "");
            char code[8] = "0";
            if (r->status == 200)
                snprintf(code, sizeof(code), "200");
            else if (strstr(r->body, "\"4008\""))
                snprintf(code, sizeof(code), "4008");
            ssize_t wr = write(pipes[i][1], code, strlen(code));
            _exit(wr > 0 ? 0 : 1);
        }
        close(pipes[i][1]);
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        char buf[8] = {0};
        ssize_t n = read(pipes[i][0], buf, sizeof(buf) - 1);
        close(pipes[i][0]);
        if (n > 0 && strcmp(buf, "200") == 0)
            ok++;
        else if (n > 0 && strcmp(buf, "4008") == 0)
            refused++;
    }
    while (wait(NULL) > 0)
        ;
    ck_assert_int_eq(ok, 1);
    ck_assert_int_eq(refused, N - 1);
    const char *v[] = {ivanov_person()};
    char *n = pg_value("SELECT count(*) FROM bookings WHERE status = 'active' AND spec_code = '27'"
                       " AND person_guid = $1::uuid", 1, v);
    ck_assert_str_eq(n, "1");
    free(n), free(tok);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Redis gone */

START_TEST(test_redis_down)
{
    char *ivanov = token_of(RPGU, &IVANOV);
    char *petrova = token_of(RPGU, &PETROVA);
    struct test_cell w = internet_cell(RES_THERAPIST, 12);
    ck_assert_int_eq(ctl("redis-stop"), 0);
    /* PostgreSQL alone: one booking, the second 4009, the retry the same. */
    char *id = entry_ok(entry(ivanov, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102);
    EXPECT(entry(petrova, "470102", LPU_470102, RES_THERAPIST, &w, ""), 400, "4009", MSG_4009);
    char *again = entry_ok(entry(ivanov, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102);
    ck_assert_str_eq(id, again);
    ck_assert_int_eq(active_bookings(w.guid), 1);
    EXPECT(cancel(ivanov, id), 200, "2000", "Вызов отменен");
    ck_assert_int_eq(ctl("redis-start"), 0);
    /* Back: the cell is free (no marker was left behind). */
    double t0 = mono_ms();
    struct http_resp *r;
    while ((r = entry(petrova, "470102", LPU_470102, RES_THERAPIST, &w, ""))->status != 200 &&
           mono_ms() - t0 < 10000) {
        http_free(r);
        sleep_ms(200);
    }
    free(entry_ok(r, LPU_470102));
    free(ivanov), free(petrova), free(id), free(again);
}
END_TEST

/* 5097 (seed 002): a token whose session Redis never had, and PostgreSQL,
 * which would rebuild it, stopped. */
START_TEST(test_cards_unavailable)
{
    char *fed = token_of(COD, &FEDOROV);
    free(fed);
    const char *v[] = {"0eac09d1-0f69-43b9-ba36-a628ab7e977e"};
    char *person = pg_value("SELECT person_guid::text FROM medical_cards WHERE guid = $1::uuid", 1, v);
    long long now = (long long)time(NULL);
    char *tok = sign_own(person, now - 10, now + 600, TOKEN_COD);
    struct test_cell w = internet_cell(RES_CARDIO_REF, 13);
    ck_assert_int_eq(ctl("pg-stop"), 0);
    struct http_resp *r = direction(tok, LPU_330501, RES_CARDIO_REF, REF_FEDOROV, &w);
    ck_assert_int_eq(ctl("pg-start"), 0);
    EXPECT(r, 500, "5097", "Не удалось получить данные о медицинских картах пациента.");
    free(tok), free(person);
}
END_TEST

/* The SQL functions a booking calls are inlined into the statements that
 * call them (009_inline.sql): one that is not is parsed and planned again at
 * every call, which was a seventh of PostgreSQL's CPU per booking. Checked
 * with generic plans, which PL/pgSQL's statements end up with. */
static void assert_inlined(PGconn *c, const char *fn, const char *types, const char *args)
{
    char sql[512], params[64] = "$1";
    int n = 1;
    for (const char *t = types; (t = strchr(t, ',')) != NULL; t++)
        snprintf(params + strlen(params), sizeof(params) - strlen(params), ", $%d", ++n);
    snprintf(sql, sizeof(sql), "PREPARE t_%s(%s) AS SELECT %s(%s)", fn, types, fn, params);
    PGresult *res = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_COMMAND_OK, "%s: %s", sql, PQresultErrorMessage(res));
    PQclear(res);
    snprintf(sql, sizeof(sql), "EXPLAIN VERBOSE EXECUTE t_%s(%s)", fn, args);
    res = PQexec(c, sql);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", sql, PQresultErrorMessage(res));
    char call[80];
    snprintf(call, sizeof(call), "%s(", fn);
    for (int i = 0; i < PQntuples(res); i++)
        ck_assert_msg(strstr(PQgetvalue(res, i, 0), call) == NULL, "%s is not inlined: %s", fn,
                      PQgetvalue(res, i, 0));
    PQclear(res);
}

START_TEST(test_sql_inlined)
{
    PGconn *c = PQconnectdb(env("MIPGW_TEST_PG_CONNINFO"));
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "PostgreSQL: %s", PQerrorMessage(c));
    /* Custom plans would fold the constant arguments away and prove nothing. */
    PGresult *set = PQexec(c, "SET plan_cache_mode = force_generic_plan");
    ck_assert_msg(PQresultStatus(set) == PGRES_COMMAND_OK, "SET: %s", PQresultErrorMessage(set));
    PQclear(set);
    assert_inlined(c, "mip_book_spec_key", "uuid, text", "gen_random_uuid(), 'x'");
    assert_inlined(c, "mip_local_ts", "timestamptz, text", "now(), 'Europe/Moscow'");
    assert_inlined(c, "refdata_result", "jsonb, text", "'{}', 'Uploaded'");
    assert_inlined(c, "mip_short_fio", "resources", "NULL");
    PQfinish(c);
}
END_TEST

/* A deferred constraint trigger on bookings that refuses, at the commit,
 * a booking with the e-mail commit-fails@example.org; made afresh (one
 * left by a test that failed midway goes first), or dropped. */
static void commit_fails_trigger(bool on)
{
    PQclear(pg_exec("DROP TRIGGER IF EXISTS t_commit_fails ON bookings", 0, NULL));
    PQclear(pg_exec("DROP FUNCTION IF EXISTS t_commit_fails()", 0, NULL));
    if (!on)
        return;
    PQclear(pg_exec("CREATE FUNCTION t_commit_fails() RETURNS trigger LANGUAGE plpgsql AS"
                    " $$BEGIN RAISE EXCEPTION 'refused at commit'; END$$",
                    0, NULL));
    PQclear(pg_exec("CREATE CONSTRAINT TRIGGER t_commit_fails AFTER INSERT ON bookings"
                    " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW"
                    " WHEN (NEW.email = 'commit-fails@example.org')"
                    " EXECUTE FUNCTION t_commit_fails()",
                    0, NULL));
}

/* A booking whose transaction fails at its commit, after the call's row
 * was sent (here a deferred constraint trigger refusing one e-mail; in
 * production a serialization failure, or a deferred constraint added
 * later), is no booking: the patient must not be told 200. */
START_TEST(test_commit_failure_not_booked)
{
    commit_fails_trigger(true);
    char *tok = token_of(RPGU, &IVANOV);
    struct test_cell w = internet_cell(RES_THERAPIST, 23);
    struct http_resp *r = entry(tok, "470102", LPU_470102, RES_THERAPIST, &w,
                                ",\"email\":\"commit-fails@example.org\"");
    int status = r->status;
    char *body = strdup(r->body ? r->body : "");
    http_free(r);
    commit_fails_trigger(false);
    ck_assert_msg(status == 500, "status %d: %s", status, body);
    ck_assert_int_eq(active_bookings(w.guid), 0);
    /* Nothing of it is left in the way: the same booking goes through. */
    free(entry_ok(entry(tok, "470102", LPU_470102, RES_THERAPIST, &w, ""), LPU_470102));
    ck_assert_int_eq(active_bookings(w.guid), 1);
    free(body), free(tok);
}
END_TEST

/* A booking of cell w (auth: the Authorization header line) from a
 * process of its own against the gateway on port; entry_wait gives its
 * answer's status. */
struct entry_job {
    pid_t pid;
    int fd;   /* the status comes through it */
};

static struct entry_job entry_async(int port, const char *auth, const struct test_cell *w,
                                    const char *extra)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    struct entry_job j = {fork(), fds[0]};
    ck_assert_int_ge(j.pid, 0);
    if (j.pid == 0) {
        char *b = entry_body("470102", LPU_470102, w->resource, w, extra);
        const char *h[] = {"Content-Type: application/json", auth, NULL};
        struct http_resp *r = http_request_at(port, "POST", ENTRY, h, b);
        ssize_t wr = write(fds[1], &r->status, sizeof(r->status));
        _exit(wr > 0 ? 0 : 1);
    }
    close(fds[1]);
    return j;
}

static int entry_wait(struct entry_job j)
{
    int status = 0;
    ck_assert_int_eq(read(j.fd, &status, sizeof(status)), sizeof(status));
    close(j.fd);
    waitpid(j.pid, NULL, 0); /* not wait(): a spawned gateway is a child too */
    return status;
}

static char *auth_of(const struct patient *who)
{
    char *tok = token_of(RPGU, who);
    char *auth = xasprintf("Authorization: Bearer %s", tok);
    free(tok);
    return auth;
}

/* Another transaction holding cells' row locks (sql, with $1 = arg), until
 * unlock_cells. */
static PGconn *lock_cells(const char *sql, const char *arg)
{
    PGconn *c = PQconnectdb(env("MIPGW_TEST_PG_CONNINFO"));
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "PostgreSQL: %s", PQerrorMessage(c));
    PQclear(PQexec(c, "BEGIN"));
    const char *v[] = {arg};
    PGresult *r = PQexecParams(c, sql, 1, NULL, v, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "lock: %s", PQresultErrorMessage(r));
    PQclear(r);
    return c;
}

static void unlock_cells(PGconn *c)
{
    PQclear(PQexec(c, "ROLLBACK"));
    PQfinish(c);
}

/* N bookings by Иванов of cells 30.. of Кузнецова, each from a process of
 * its own, against the gateway on port; their cells are locked by another
 * transaction for hold_ms meanwhile, and during the wait probe() runs (may
 * be NULL). Fills status[i] with each answer's status. */
static void backlog_run(int port, int hold_ms, int n, int *status, void (*probe)(int, const char *),
                        const char *auth)
{
    PGconn *c = lock_cells("SELECT 1 FROM cells WHERE resource_guid = $1::uuid FOR UPDATE",
                           RES_THERAPIST2);
    struct entry_job jobs[16];
    ck_assert_int_le(n, 16);
    for (int i = 0; i < n; i++) {
        struct test_cell w = internet_cell(RES_THERAPIST2, 30 + i);
        jobs[i] = entry_async(port, auth, &w, "");
    }
    sleep_ms(hold_ms / 2);  /* one booking waits on the locks, the others in the queue */
    if (probe)
        probe(port, auth);
    sleep_ms(hold_ms - hold_ms / 2);
    unlock_cells(c);
    for (int i = 0; i < n; i++)
        status[i] = entry_wait(jobs[i]);
}

static int backlog_visits;
static void backlog_probe(int port, const char *auth)
{
    struct http_resp *r = http_get_at(port, VISITS, auth, NULL);
    backlog_visits = r->status;
    http_free(r);
}

/* Bookings waiting behind a batch connection that cannot move (its cells
 * locked by another transaction) fill their own places in the pool's queue,
 * not the look-ups': a gateway with pg.queue_max 4 sheds the fifth waiting
 * booking with 503, and still answers a patient's list of bookings. */
START_TEST(test_booking_backlog_spares_lookups)
{
    const char *const settings[] = {"MIPGW_PG_POOL_SIZE=2", "MIPGW_PG_QUEUE_MAX=4",
                                    "MIPGW_PG_BATCH_CONNS=1", "MIPGW_PG_TIMEOUT_MS=8000", NULL};
    pid_t gw;
    int port = gw_spawn(settings, &gw);
    char *auth = auth_of(&IVANOV);
    enum { N = 8 };
    int status[N], shed = 0;
    backlog_visits = 0;
    backlog_run(port, 2000, N, status, backlog_probe, auth);
    for (int i = 0; i < N; i++)
        shed += status[i] == 503;
    ck_assert_msg(shed > 0, "no booking was shed: the queue never filled");
    ck_assert_msg(backlog_visits == 200, "the list of bookings: %d behind a backlog of bookings",
                  backlog_visits);
    ck_assert_msg(gw_stop(gw) == 0, "the gateway did not exit 0 on SIGTERM");
    free(auth);
}
END_TEST

/* A call that waited three quarters of its deadline in the queue is shed
 * unsent (503), not sent to miss its deadline running and cost its
 * connection: with pg.timeout_ms 4000 and the cells locked for 3.3 s, the
 * booking on the locks finishes (200), the three queued behind it are shed,
 * and both connections stay up. */
START_TEST(test_stale_calls_shed)
{
    const char *const settings[] = {"MIPGW_PG_POOL_SIZE=2", "MIPGW_PG_BATCH_CONNS=1",
                                    "MIPGW_PG_TIMEOUT_MS=4000", NULL};
    pid_t gw;
    int port = gw_spawn(settings, &gw);
    char *auth = auth_of(&IVANOV);
    double shed0 = metric_at(port, "mipgw_pg_shed_total");
    enum { N = 4 };
    int status[N], ok = 0, shed = 0;
    backlog_run(port, 3300, N, status, NULL, auth);
    for (int i = 0; i < N; i++) {
        ok += status[i] == 200;
        shed += status[i] == 503;
    }
    ck_assert_msg(ok == 1 && shed == N - 1, "%d booked, %d shed of %d", ok, shed, N);
    ck_assert_msg(metric_at(port, "mipgw_pg_shed_total") - shed0 == N - 1, "shed count");
    ck_assert_msg(metric_at(port, "mipgw_pg_connections_up") == 2, "a connection was lost");
    ck_assert_msg(gw_stop(gw) == 0, "the gateway did not exit 0 on SIGTERM");
    free(auth);
}
END_TEST

/* A batch that fails after a long wait runs its calls again one by one,
 * however little of their deadlines is left: each gets its own outcome,
 * not a 503 for having waited. Иванов's booking holds the batch connection
 * (its cell locked) while Петрова's and Федоров's queue up; they leave as
 * one batch, wait on their own locks until 0.7 s of their 4 s are left, and
 * the batch fails at its commit (Федоров's e-mail, refused by a deferred
 * constraint trigger): Петрова's booking is made, Федоров's is 500. */
START_TEST(test_failed_batch_runs_again_late)
{
    const char *const settings[] = {"MIPGW_PG_POOL_SIZE=2", "MIPGW_PG_BATCH_CONNS=1",
                                    "MIPGW_PG_TIMEOUT_MS=4000", NULL};
    pid_t gw;
    int port = gw_spawn(settings, &gw);
    commit_fails_trigger(true);
    /* The cells once, here: the children book exactly the ones locked. */
    struct test_cell a = internet_cell(RES_THERAPIST, 40), b = internet_cell(RES_THERAPIST2, 40),
                     d = internet_cell(RES_THERAPIST2, 41);
    PGconn *first = lock_cells("SELECT 1 FROM cells WHERE guid = $1::uuid FOR UPDATE", a.guid);
    PGconn *rest = lock_cells("SELECT 1 FROM cells WHERE resource_guid = $1::uuid FOR UPDATE",
                              RES_THERAPIST2);
    char *ivanov = auth_of(&IVANOV), *petrova = auth_of(&PETROVA), *fedorov = auth_of(&FEDOROV);
    struct entry_job ja = entry_async(port, ivanov, &a, "");
    sleep_ms(300);
    struct entry_job jb = entry_async(port, petrova, &b, "");
    struct entry_job jd = entry_async(port, fedorov, &d, ",\"email\":\"commit-fails@example.org\"");
    sleep_ms(300);
    unlock_cells(first);  /* Иванов's booking ends; the other two leave as a batch */
    sleep_ms(3000);
    unlock_cells(rest);
    int ca = entry_wait(ja) / 100, cb = entry_wait(jb) / 100, cd = entry_wait(jd) / 100;
    commit_fails_trigger(false);
    free(ivanov), free(petrova), free(fedorov);
    ck_assert_msg(ca == 2 && cb == 2 && cd == 5, "Иванов %dxx, Петрова %dxx, Федоров %dxx", ca,
                  cb, cd);
    ck_assert_msg(metric_at(port, "mipgw_pg_batch_retries_total") >= 1, "no batch failed");
    ck_assert_msg(gw_stop(gw) == 0, "the gateway did not exit 0 on SIGTERM");
}
END_TEST

/* ---- a batch of bookings against the same bookings one by one ---- */

static PGresult *batch_exec(PGconn *c, const char *sql, int n, const char *const *params,
                            ExecStatusType want)
{
    PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == want, "%s: %s", sql, PQresultErrorMessage(res));
    return res;
}

static int batch_mip_book_calls(PGconn *c)
{
    PGresult *res = batch_exec(c,
                               "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions"
                               " WHERE funcname = 'mip_book'",
                               0, NULL, PGRES_TUPLES_OK);
    int n = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

/* An answer without what differs from one run to another (the booking's
 * guid and ticket, the TicketVisitWithLpu's times of creation and its
 * history, which the digest below compares). */
#define BATCH_NORM(a)                                                                             \
    "((" a ") - 'booking' - 'ticket' - 'visit') || CASE WHEN (" a ") ? 'visit' THEN"              \
    " jsonb_build_object('visit', ((" a ")->'visit') - 'num' - 'ticketGuid' - 'dateOfAppointment'"  \
    " - 'history') ELSE '{}' END"

/* What a batch leaves behind, but the sequence's tickets and the times. */
#define BATCH_DIGEST                                                                              \
    "SELECT concat_ws(E'\\n',"                                                                    \
    " (SELECT string_agg(concat_ws('|', cell_guid, mkab_guid, person_guid, referral_guid, status," \
    "  begin_at, spec_code, email, phone, email_agree, source, login), ',' ORDER BY cell_guid)"    \
    "  FROM bookings WHERE status <> 'cancelled'),"                                                \
    " (SELECT string_agg(concat_ws('|', b.cell_guid, h.element, h.old_value, h.new_value,"        \
    "  h.editor, h.client), ',' ORDER BY b.cell_guid, h.id)"                                       \
    "  FROM booking_history h JOIN bookings b ON b.guid = h.booking_guid"                          \
    "  WHERE b.status <> 'cancelled'),"                                                            \
    " (SELECT string_agg(concat_ws('|', guid, email), ',' ORDER BY guid) FROM medical_cards))"

/* One batch's answers (one per line) and digest, by mip_book_many or by
 * mip_book once per booking in order; rolled back. Counts the calls of
 * mip_book the batch made (the bookings that left the one-statement path). */
static char *batch_run(PGconn *c, int b, bool many, int *calls, int *rows)
{
    char bs[16];
    snprintf(bs, sizeof(bs), "%d", b);
    const char *p[] = {bs};
    struct buf out;
    buf_init(&out);
    PQclear(batch_exec(c, "BEGIN", 0, NULL, PGRES_COMMAND_OK));
    /* The view holds calls not yet flushed to the statistics, earlier
     * transactions' too; nothing is flushed inside a transaction. */
    *calls = -batch_mip_book_calls(c);
    PGresult *res;
    if (many) {
        res = batch_exec(c,
                         "SELECT " BATCH_NORM("a") " FROM mip_book_many((SELECT jsonb_agg(q ORDER BY i)"
                         " FROM t_batch WHERE b = $1::int)) AS a",
                         1, p, PGRES_TUPLES_OK);
    } else {
        PGresult *qs = batch_exec(c, "SELECT q FROM t_batch WHERE b = $1::int ORDER BY i", 1, p,
                                  PGRES_TUPLES_OK);
        res = NULL;
        for (int i = 0; i < PQntuples(qs); i++) {
            const char *q[] = {PQgetvalue(qs, i, 0)};
            PGresult *one = batch_exec(c, "SELECT " BATCH_NORM("a")
                                       " FROM (SELECT mip_book($1::jsonb) AS a OFFSET 0) s", 1, q,
                                       PGRES_TUPLES_OK);
            buf_append(&out, PQgetvalue(one, 0, 0), strlen(PQgetvalue(one, 0, 0)));
            buf_append(&out, "\n", 1);
            PQclear(one);
        }
        *rows = PQntuples(qs);
        PQclear(qs);
    }
    if (res) {
        for (int i = 0; i < PQntuples(res); i++) {
            buf_append(&out, PQgetvalue(res, i, 0), strlen(PQgetvalue(res, i, 0)));
            buf_append(&out, "\n", 1);
        }
        *rows = PQntuples(res);
        PQclear(res);
    }
    res = batch_exec(c, BATCH_DIGEST, 0, NULL, PGRES_TUPLES_OK);
    buf_append(&out, PQgetvalue(res, 0, 0), strlen(PQgetvalue(res, 0, 0)));
    PQclear(res);
    *calls += batch_mip_book_calls(c);
    PQclear(batch_exec(c, "ROLLBACK", 0, NULL, PGRES_COMMAND_OK));
    buf_append(&out, "", 1);
    return out.data;
}

/* mip_book_many (012_book_set.sql) books the bookings of a batch that pass
 * every rule with one statement and leaves the rest to mip_book. Its
 * answers, and what it writes, must be those of mip_book called once per
 * booking in the batch's order. Every demo patient asks for cells of every
 * demo resource, without a referral and with each demo referral, each cell
 * by several patients and some by one patient twice, with e-mails and
 * phones on some, TicketVisitWithLpu on some, a wrong МКОД on some; each
 * batch holds two asks of each patient. The batches run on the demo data
 * as it is (no booking), each rolled back. */
START_TEST(test_batch_as_one_by_one)
{
    /* As the harness's superuser, who alone may count function calls. */
    const char *keys[] = {"dbname", "user", NULL};
    const char *values[] = {env("MIPGW_TEST_PG_CONNINFO"), "postgres", NULL};
    PGconn *c = PQconnectdbParams(keys, values, 1);
    ck_assert_msg(PQstatus(c) == CONNECTION_OK, "PostgreSQL: %s", PQerrorMessage(c));
    PQclear(batch_exec(c, "SET track_functions = 'pl'", 0, NULL, PGRES_COMMAND_OK));
    PQclear(batch_exec(
        c,
        "CREATE TEMP TABLE t_batch AS"
        " WITH x AS ("
        "  SELECT p.guid AS person, r.lpu_guid AS lpu, l.mcod, r.guid AS resource, c.begin_at,"
        "         f.guid AS referral, hashtext(concat(p.guid, c.guid, f.guid)) AS h"
        "    FROM persons p CROSS JOIN resources r JOIN lpus l ON l.guid = r.lpu_guid"
        "    CROSS JOIN LATERAL (SELECT guid, begin_at FROM cells WHERE resource_guid = r.guid"
        "                         AND begin_at > now() + interval '1 day'"
        "                       ORDER BY begin_at LIMIT 4) c"
        "    LEFT JOIN (SELECT guid FROM referrals UNION ALL SELECT NULL) f ON true"
        "   WHERE p.guid IN (SELECT person_guid FROM medical_cards))"
        /* mostly patients with a card at the LPU, as a portal sends */
        " , y AS (SELECT * FROM x WHERE h % 5 = 0 OR (h % 3 = 0) = (referral IS NOT NULL)"
        "    AND EXISTS (SELECT 1 FROM medical_cards m WHERE m.person_guid = x.person"
        "                AND m.lpu_guid = x.lpu))"
        " , w AS (SELECT y.*, 0 AS again,"
        "          (row_number() OVER (PARTITION BY person ORDER BY h) - 1) / 2 AS b FROM y)"
        /* and some of them asked again right after, in the same batch: a
         * client that lost the first answer */
        " , z AS (SELECT * FROM w UNION ALL SELECT person, lpu, mcod, resource, begin_at,"
        "          referral, h, 1, b FROM w WHERE abs(h % 7) < 3)"
        /* each patient's next two asks to a batch: the first of each goes
         * to the one statement */
        " SELECT b, row_number() OVER (ORDER BY h, again) AS i,"
        "  jsonb_strip_nulls(jsonb_build_object('person', person, 'lpu', lpu,"
        "   'mcod', CASE WHEN referral IS NULL THEN CASE WHEN h % 13 = 0 THEN '000000' ELSE mcod END END,"
        "   'resource', resource, 'begin', extract(epoch FROM begin_at)::bigint, 'referral', referral,"
        "   'email', CASE WHEN h % 3 = 0 THEN 'p' || abs(h % 5) || '@example.org' END,"
        "   'phone', CASE WHEN h % 4 = 0 THEN '7999000000' || abs(h % 10) END,"
        "   'email_agree', CASE WHEN h % 3 = 0 THEN h % 2 = 0 END,"
        "   'source', CASE WHEN h % 2 = 0 THEN 'Internet' ELSE 'CallCenter' END,"
        "   'login', 'batch', 'tz', '" TZ "', 'full', referral IS NOT NULL OR h % 5 = 0,"
        "   'rules', jsonb_build_object('internet', true, 'self_block', true, 'children', true,"
        "    'children_age', 18, 'age_limits', true, 'dispensary', true, 'referral_only', true,"
        "    'one_per_spec', true))) AS q"
        "  FROM z",
        0, NULL, PGRES_COMMAND_OK));
    PGresult *res = batch_exec(c, "SELECT max(b) + 1 FROM t_batch", 0, NULL, PGRES_TUPLES_OK);
    int batches = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    ck_assert_int_ge(batches, 4);
    int booked = 0, set_path = 0, refused = 0, again = 0;
    for (int b = 0; b < batches; b++) {
        int calls_many, calls_one, rows_many, rows_one;
        char *many = batch_run(c, b, true, &calls_many, &rows_many);
        char *one = batch_run(c, b, false, &calls_one, &rows_one);
        ck_assert_int_eq(rows_many, rows_one);
        ck_assert_int_eq(calls_one, rows_one);
        /* where they part, in a message Check can carry */
        size_t at = 0;
        while (many[at] && many[at] == one[at])
            at++;
        size_t from = at > 200 ? at - 200 : 0;
        ck_assert_msg(many[at] == one[at], "batch %d, from byte %zu:\n-- mip_book_many:\n%.400s\n"
                      "-- mip_book:\n%.400s", b, from, many + from, one + from);
        set_path += rows_many - calls_many;
        for (const char *s = many; (s = strstr(s, "\"existing\": ")) != NULL; s++)
            s[12] == 't' ? again++ : booked++;
        for (const char *s = many; (s = strstr(s, "\"e\": ")) != NULL; s++)
            refused++;
        free(many);
        free(one);
    }
    /* Not vacuous: bookings, retries and refusals, and some of the
     * bookings through the one statement. */
    ck_assert_msg(set_path >= 3 && booked >= set_path && again > 0 && refused > batches,
                  "%d batches: %d booked (%d by the one statement), %d again, %d refused", batches,
                  booked, set_path, again, refused);
    PQfinish(c);
}
END_TEST

static Suite *booking_suite(void)
{
    Suite *s = suite_create("e2e_booking");
    TCase *tc = tcase_create("booking");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, clean, NULL);
    tcase_add_test(tc, test_entry_books_once);
    tcase_add_test(tc, test_entry_rules);
    tcase_add_test(tc, test_entry_request_errors);
    tcase_add_test(tc, test_entry_tokens);
    tcase_add_test(tc, test_entry_cell_closed);
    tcase_add_test(tc, test_scripts_lost);
    tcase_add_test(tc, test_portal_tokens);
    tcase_add_test(tc, test_direction_visit);
    tcase_add_test(tc, test_direction_errors);
    tcase_add_test(tc, test_cancel);
    tcase_add_test(tc, test_one_per_speciality_concurrent);
    tcase_add_test(tc, test_sql_inlined);
    tcase_add_test(tc, test_batch_as_one_by_one);
    tcase_add_test(tc, test_commit_failure_not_booked);
    tcase_add_test(tc, test_lock_released_on_refusal);
    tcase_add_test(tc, test_lock_released_after_timeout);
    tcase_add_test(tc, test_lock_released_after_lost_unlock);
    tcase_add_test(tc, test_marker_dropped_after_busy);
    tcase_add_test(tc, test_no_marker_on_freed_cell);
    tcase_add_test(tc, test_marker_dropped_after_timeout);
    suite_add_tcase(s, tc);
    TCase *own = tcase_create("own_gateway");
    tcase_set_timeout(own, 60);
    tcase_add_checked_fixture(own, clean, NULL);
    tcase_add_checked_fixture(own, spawned_reset, spawned_kill_all);
    tcase_add_test(own, test_booking_backlog_spares_lookups);
    tcase_add_test(own, test_stale_calls_shed);
    tcase_add_test(own, test_failed_batch_runs_again_late);
    suite_add_tcase(s, own);
    TCase *down = tcase_create("stores_down");
    tcase_set_timeout(down, 60);
    tcase_add_checked_fixture(down, clean, stores_back);
    tcase_add_test(down, test_redis_down);
    tcase_add_test(down, test_cards_unavailable);
    suite_add_tcase(s, down);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(booking_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
