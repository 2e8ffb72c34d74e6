/* check_e2e_patients.c - POST /patients (seed 003) end to end, over HTTP
 * against the gateway tests/e2e.sh started, checked in its PostgreSQL:
 * Basic auth and LPU ownership, malformed requests, every status of the
 * answer, person matching across LPUs, idempotent re-upload, the caches an
 * update makes stale, and the importer's entry into the same code. Every
 * test makes patients of its own (valid ЕНП and SNILS generated here), so
 * tests do not depend on each other or on their order. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e_util.h"
#include "identity.h"
#include "ids.h"
#include "json.h"
#include "patient.h"

#define LPU_470102 "c3c977af-c3b4-4517-9d57-50a6844ec660"
#define MSG_4120 "Неверный логин или пароль"

static char *login_one, *login_all, *auth_one, *auth_all;
static const char *const answer_keys[] = {"MkabStatus", "AttachmentStatus", "PersonGuid",
                                          "MkabGuid", "AttachmentGuid", "ValidationMessage"};

/* ---- generated identities ---- */

static unsigned rnd(void)
{
    static unsigned seeded;
    if (!seeded) {
        seeded = (unsigned)time(NULL) ^ ((unsigned)getpid() << 16);
        srand(seeded);
    }
    return (unsigned)rand();
}

/* A valid ЕНП: 15 random digits and the Luhn digit. */
static void gen_enp(char out[17])
{
    out[0] = (char)('1' + rnd() % 9);
    for (int i = 1; i < 15; i++)
        out[i] = (char)('0' + rnd() % 10);
    out[15] = (char)('0' + ids_luhn_digit(out, 15));
    out[16] = '\0';
}

/* A valid SNILS "XXX-XXX-XXX YY" above the unchecked range. */
static void gen_snils(char out[16])
{
    char d[10];
    d[0] = (char)('1' + rnd() % 9);
    for (int i = 1; i < 9; i++)
        d[i] = (char)('0' + rnd() % 10);
    int sum = 0;
    for (int i = 0; i < 9; i++)
        sum += (d[i] - '0') * (9 - i);
    int c = sum < 100 ? sum : (sum == 100 || sum == 101) ? 0 : sum % 101 == 100 ? 0 : sum % 101;
    snprintf(out, 16, "%.3s-%.3s-%.3s %02u", d, d + 3, d + 6, (unsigned)c % 100);
}

/* A family name nobody else in the database has: "Тест" and 6 letters. */
static void gen_family(char *out, size_t cap)
{
    static const char *const letters[] = {"а", "б", "в", "г", "д", "е", "ж", "з", "к", "л",
                                          "м", "н", "о", "п", "р", "с", "т", "у"};
    snprintf(out, cap, "Тест");
    for (int i = 0; i < 6; i++)
        strncat(out, letters[rnd() % 18], cap - strlen(out) - 1);
}

struct tp {
    char guid[40];       /* "" : no Guid */
    char family[64];
    char name[32];
    char patronymic[32];
    char birthday[11];
    char enp[17];
    char snils[16];      /* "" : none */
    char mcod[8];
    char phone[16];
    char doc_series[8];  /* a passport of this patient's own: "NN NN" */
    char doc_number[8];
    /* Raw JSON values that replace the generated ones (NULL: generated). */
    const char *polis_json, *doc_json, *email_json, *patronymic_json;
    const char *extra;   /* more fields, ",\"k\":v" */
};

/* A passport nobody else in the database has (10^10 of them). */
static void gen_passport(struct tp *p)
{
    snprintf(p->doc_series, sizeof(p->doc_series), "%02u %02u", rnd() % 100, rnd() % 100);
    snprintf(p->doc_number, sizeof(p->doc_number), "%06u", rnd() % 1000000);
}

static void tp_new(struct tp *p)
{
    memset(p, 0, sizeof(*p));
    gen_family(p->family, sizeof(p->family));
    snprintf(p->name, sizeof(p->name), "Иван");
    snprintf(p->patronymic, sizeof(p->patronymic), "Петрович");
    snprintf(p->birthday, sizeof(p->birthday), "19%02u-%02u-%02u", 30 + rnd() % 60, 1 + rnd() % 12,
             1 + rnd() % 28);
    gen_enp(p->enp);
    gen_snils(p->snils);
    snprintf(p->mcod, sizeof(p->mcod), "470102");
    snprintf(p->phone, sizeof(p->phone), "79990000000");
    gen_passport(p);
}

/* The patient as an MIS sends it, keys as in the seed's example. */
static char *tp_json(const struct tp *p)
{
    char guid[64] = "", snils[40] = "", patr[80];
    if (p->guid[0])
        snprintf(guid, sizeof(guid), "\"guid\":\"%s\",", p->guid);
    if (p->snils[0])
        snprintf(snils, sizeof(snils), "\"snils\":\"%s\",", p->snils);
    snprintf(patr, sizeof(patr), "\"%s\"", p->patronymic);
    char *polis = xasprintf("{\"type\":{\"code\":\"3\",\"name\":\"ОМС\"},\"series\":\"\",\"number\":\"%s\","
                            "\"start\":\"2013-04-08 00:00:00.000\",\"end\":null,\"smo\":\"1024000000000\"}",
                            p->enp);
    char *doc = xasprintf("{\"type\":{\"code\":\"14\",\"name\":\"Паспорт\"},"
                          "\"series\":\"%s\",\"number\":\"%s\",\"date\":\"2013-04-08\",\"issuedBy\":\"УФМС\"}",
                          p->doc_series, p->doc_number);
    char *j = xasprintf("{%s\"family\":\"%s\",\"name\":\"%s\",\"patronymic\":%s,\"birthday\":\"%s\","
                        "\"birthplace\":\"г. Орехово-Зуево\",\"polis\":%s,\"identityDocument\":%s,"
                        "\"mcod\":\"%s\",\"phone\":\"%s\",\"email\":%s,\"gender\":\"1\",%s"
                        "\"regAddress\":\"ул. Ленина\",\"isWorker\":true,\"bloodType\":\"1\",\"rh\":false,"
                        "\"blackLabel\":false%s}",
                        guid, p->family, p->name, p->patronymic_json ? p->patronymic_json : patr, p->birthday,
                        p->polis_json ? p->polis_json : polis, p->doc_json ? p->doc_json : doc, p->mcod,
                        p->phone, p->email_json ? p->email_json : "\"a@a.ru\"", snils,
                        p->extra ? p->extra : "");
    free(polis);
    free(doc);
    return j;
}

/* ---- the answer ---- */

struct ans {
    char mkab[16], att[16];
    char person[40], card[40], att_guid[40];
    int nmsgs;
    char msgs[2048];     /* joined by " | " */
    char *body;
};

static void ans_free(struct ans *a)
{
    free(a->body);
}

static void copy_or_empty(char *out, size_t cap, const char *s)
{
    snprintf(out, cap, "%s", s ? s : "");
}

/* POSTs body as login auth; the answer must be 200 with exactly the seed's
 * keys. */
static struct ans post_at(const char *auth, const char *body, int line)
{
    struct ans a;
    memset(&a, 0, sizeof(a));
    struct http_resp *r = post_json("/patients", auth, body);
    ck_assert_msg(r->status == 200, "line %d: POST /patients: %d %s", line, r->status, show(r));
    yajl_val v = jbody(r, "POST /patients");
    ck_assert_msg(jkeys_exactly(v, answer_keys, 6), "line %d: keys of %s", line, show(r));
    copy_or_empty(a.mkab, sizeof(a.mkab), jstr(v, "MkabStatus"));
    copy_or_empty(a.att, sizeof(a.att), jstr(v, "AttachmentStatus"));
    copy_or_empty(a.person, sizeof(a.person), jstr(v, "PersonGuid"));
    copy_or_empty(a.card, sizeof(a.card), jstr(v, "MkabGuid"));
    copy_or_empty(a.att_guid, sizeof(a.att_guid), jstr(v, "AttachmentGuid"));
    yajl_val m = jget(v, "ValidationMessage");
    ck_assert_msg(YAJL_IS_ARRAY(m), "line %d: ValidationMessage is not an array", line);
    a.nmsgs = (int)m->u.array.len;
    for (size_t i = 0; i < m->u.array.len; i++) {
        const char *s = YAJL_IS_STRING(m->u.array.values[i]) ? m->u.array.values[i]->u.string : "?";
        strncat(a.msgs, s, sizeof(a.msgs) - strlen(a.msgs) - 4);
        strncat(a.msgs, " | ", sizeof(a.msgs) - strlen(a.msgs) - 1);
    }
    a.body = strdup(r->body);
    yajl_tree_free(v);
    http_free(r);
    return a;
}
#define post(auth, body) post_at(auth, body, __LINE__)

static struct ans upload_at(const struct tp *p, int line)
{
    char *j = tp_json(p);
    struct ans a = post_at(auth_all, j, line);
    free(j);
    return a;
}
#define upload(p) upload_at(p, __LINE__)

static void assert_uploaded_at(const struct ans *a, const char *att, int line)
{
    ck_assert_msg(strcmp(a->mkab, "Uploaded") == 0 && strcmp(a->att, att) == 0,
                  "line %d: want Uploaded/%s: %s", line, att, a->body);
    ck_assert_msg(is_guid(a->person) && is_guid(a->card), "line %d: guids: %s", line, a->body);
}
#define assert_uploaded(a, att) assert_uploaded_at(a, att, __LINE__)

/* The answer has these statuses and exactly one message, msg. */
static void assert_one_msg_at(const struct ans *a, const char *mkab, const char *att, const char *msg, int line)
{
    ck_assert_msg(strcmp(a->mkab, mkab) == 0 && strcmp(a->att, att) == 0, "line %d: want %s/%s: %s", line,
                  mkab, att, a->body);
    char want[PATIENT_MSG_LEN + 8];
    snprintf(want, sizeof(want), "%s | ", msg);
    ck_assert_msg(a->nmsgs == 1 && strcmp(a->msgs, want) == 0, "line %d: want [%s]: %s", line, msg, a->body);
}
#define assert_one_msg(a, mkab, att, msg) assert_one_msg_at(a, mkab, att, msg, __LINE__)

/* An Error: nothing stored, so no guids. */
static void assert_error_msg_at(const struct ans *a, const char *msg, int line)
{
    assert_one_msg_at(a, "Error", "None", msg, line);
    ck_assert_msg(!a->person[0] && !a->card[0] && !a->att_guid[0], "line %d: guids: %s", line, a->body);
}
#define assert_error_msg(a, msg) assert_error_msg_at(a, msg, __LINE__)

static long pg_count(const char *sql, const char *param)
{
    const char *params[] = {param};
    char *v = pg_value(sql, param ? 1 : 0, params);
    ck_assert_ptr_nonnull(v);
    long n = atol(v);
    free(v);
    return n;
}

/* ---- logins of this suite ---- */

static void add_user(const char *login, const char *password, const char *lpus)
{
    char *cmd = xasprintf("'%s' user add %s %s >/dev/null 2>&1", env("MIPGW_TEST_BIN"), login, lpus);
    FILE *p = popen(cmd, "w");
    if (!p) {
        fprintf(stderr, "cannot run %s\n", cmd);
        exit(1);
    }
    fprintf(p, "%s\n", password);
    int st = pclose(p);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s: failed\n", cmd);
        exit(1);
    }
    free(cmd);
}

/* An unchecked fixture: runs in the runner's process (so that every test's
 * fork inherits the logins), where Check can report a failure. */
static void logins_setup(void)
{
    if (login_one)
        return;
    login_one = xasprintf("e2e-pat-one-%d", (int)getpid());
    login_all = xasprintf("e2e-pat-all-%d", (int)getpid());
    add_user(login_one, "one-secret-password", "--lpu 470102");
    /* 777777 is owned but no LPU has it: the unknown-МКОД case. */
    add_user(login_all, "all-secret-password",
             "--lpu 470102 --lpu 470103 --lpu 330501 --lpu 777777");
    auth_one = basic_header(login_one, "one-secret-password");
    auth_all = basic_header(login_all, "all-secret-password");
}

/* ---- requests refused before the model ---- */

START_TEST(test_unauthorized)
{
    struct tp p;
    tp_new(&p);
    char *j = tp_json(&p);
    struct http_resp *r = post_json("/patients", NULL, j);
    assert_error(r, 401, "4120", MSG_4120, "no Authorization");
    const char *www = http_header(r, "WWW-Authenticate");
    ck_assert_msg(www && strncmp(www, "Basic realm=", 12) == 0, "WWW-Authenticate: %s", www ? www : "-");
    http_free(r);
    char *bad = basic_header(login_all, "not-the-password");
    r = post_json("/patients", bad, j);
    assert_error(r, 401, "4120", MSG_4120, "wrong password");
    ck_assert_ptr_nonnull(http_header(r, "WWW-Authenticate"));
    http_free(r);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM medical_cards WHERE polis_key = '|' || $1", p.enp), 0);
    free(bad);
    free(j);
}
END_TEST

START_TEST(test_forbidden_lpu)
{
    struct tp p;
    tp_new(&p);
    snprintf(p.mcod, sizeof(p.mcod), "330501");
    char *j = tp_json(&p);
    struct http_resp *r = post_json("/patients", auth_one, j);
    char *msg = xasprintf("Учётной записи %s не разрешено передавать данные ЛПУ 330501", login_one);
    assert_error(r, 403, "4121", msg, "mis-470102 writing for 330501");
    http_free(r);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM medical_cards WHERE polis_key = '|' || $1", p.enp), 0);
    /* Its own LPU is fine. */
    snprintf(p.mcod, sizeof(p.mcod), "470102");
    free(j);
    j = tp_json(&p);
    struct ans a = post(auth_one, j);
    assert_uploaded(&a, "None");
    ans_free(&a);
    free(msg);
    free(j);
}
END_TEST

START_TEST(test_content_type)
{
    struct tp p;
    tp_new(&p);
    char *j = tp_json(&p);
    char *auth = xasprintf("Authorization: %s", auth_all + strlen("Authorization: "));
    const char *h1[] = {auth, "Content-Type: text/plain", NULL};
    struct http_resp *r = http_request("POST", "/patients", h1, j);
    assert_error(r, 415, "4115", "Тело запроса должно иметь тип application/json", "text/plain");
    http_free(r);
    const char *h2[] = {auth, NULL};
    r = http_request("POST", "/patients", h2, j);
    ck_assert_msg(r->status == 415, "no Content-Type: %d", r->status);
    http_free(r);
    const char *h3[] = {auth, "Content-Type: Application/JSON; charset=utf-8", NULL};
    r = http_request("POST", "/patients", h3, j);
    ck_assert_msg(r->status == 200, "Application/JSON; charset: %d %s", r->status, show(r));
    http_free(r);
    free(auth);
    free(j);
}
END_TEST

START_TEST(test_malformed_json)
{
    static const char *const bodies[] = {"{\"family\":", "", "[1,2]", "\"x\"", "{\"a\":1}}",
                                         "{\"family\":\"\xff\"}"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        struct http_resp *r = post_json("/patients", auth_all, bodies[i]);
        ck_assert_msg(r->status == 400, "body %zu: %d %s", i, r->status, show(r));
        yajl_val v = jbody(r, "400");
        ck_assert_str_eq(jstr(v, "Message_code"), "4110");
        yajl_tree_free(v);
        http_free(r);
    }
    /* Deeper than the limit. */
    char deep[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    struct http_resp *r = post_json("/patients", auth_all, deep);
    ck_assert_msg(r->status == 400, "deep: %d", r->status);
    http_free(r);
}
END_TEST

START_TEST(test_too_large)
{
    struct tp p;
    tp_new(&p);
    size_t n = 70 * 1024;
    char *pad = malloc(n + 32);
    strcpy(pad, ",\"position\":\"");
    size_t l = strlen(pad);
    memset(pad + l, 'x', n);
    strcpy(pad + l + n, "\"");
    p.extra = pad;
    char *j = tp_json(&p);
    struct http_resp *r = post_json("/patients", auth_all, j);
    assert_error(r, 413, "4113", "Тело запроса слишком велико", "70 KiB");
    http_free(r);
    free(j);
    free(pad);
}
END_TEST

/* The login is checked before the body is read: without credentials a
 * malformed or oversized body is 401 too; with them, 400 and 413; a card
 * that fails validation is answered before its LPU's ownership. */
START_TEST(test_auth_before_body)
{
    static const char *const bad[] = {"{\"family\":", "[1,2]", "{\"family\":\"\xff\"}"};
    char *wrong = basic_header(login_all, "not-the-password");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct http_resp *r = post_json("/patients", NULL, bad[i]);
        assert_error(r, 401, "4120", MSG_4120, "malformed, no Authorization");
        ck_assert_ptr_nonnull(http_header(r, "WWW-Authenticate"));
        http_free(r);
        r = post_json("/patients", wrong, bad[i]);
        assert_error(r, 401, "4120", MSG_4120, "malformed, wrong password");
        http_free(r);
        r = post_json("/patients", auth_all, bad[i]);
        ck_assert_msg(r->status == 400, "malformed %zu with credentials: %d %s", i, r->status, show(r));
        yajl_val v = jbody(r, "400");
        ck_assert_str_eq(jstr(v, "Message_code"), "4110");
        yajl_tree_free(v);
        http_free(r);
    }
    size_t n = 70 * 1024;
    char *big = malloc(n + 1);
    memset(big, '[', n);
    big[n] = '\0';
    struct http_resp *r = post_json("/patients", NULL, big);
    assert_error(r, 401, "4120", MSG_4120, "70 KiB, no Authorization");
    http_free(r);
    r = post_json("/patients", auth_all, big);
    assert_error(r, 413, "4113", "Тело запроса слишком велико", "70 KiB with credentials");
    http_free(r);
    free(big);

    /* 403 comes before NotValid: an invalid card for an LPU not owned is
     * refused as such, and the login learns nothing of its other fields. */
    struct tp p;
    tp_new(&p);
    snprintf(p.mcod, sizeof(p.mcod), "330501");
    snprintf(p.phone, sizeof(p.phone), "123");
    char *j = tp_json(&p);
    r = post_json("/patients", auth_one, j);
    ck_assert_int_eq(r->status, 403);
    ck_assert_ptr_nonnull(strstr(r->body, "\"4121\""));
    http_free(r);
    free(j);
    free(wrong);
}
END_TEST

/* ---- Uploaded ---- */

START_TEST(test_new_card_and_token)
{
    struct tp p;
    tp_new(&p);
    struct ans a = upload(&p);
    assert_uploaded(&a, "None");
    ck_assert_int_eq(a.nmsgs, 0);
    ck_assert_str_eq(a.att_guid, "");
    /* In PostgreSQL as sent, normalized. */
    char *sql = xasprintf("SELECT count(*) FROM medical_cards WHERE guid = $1::uuid AND polis_key = '|"
                          "' || polis_number AND lpu_guid = '" LPU_470102 "' AND doc_series = '%.2s%.2s'"
                          " AND doc_number = '%s'",
                          p.doc_series, p.doc_series + 3, p.doc_number);
    ck_assert_int_eq(pg_count(sql, a.card), 1);
    free(sql);
    char *pg_person = pg_value("SELECT person_guid::text FROM medical_cards WHERE guid = $1::uuid", 1,
                               (const char *[]){a.card});
    ck_assert_str_eq(pg_person, a.person);
    /* The patient can now identify with the ЕНП and birthday. */
    char *tok = cod_token("/auth/cod/token", p.enp, p.birthday);
    char *h = xasprintf("Authorization: Bearer %s", tok);
    struct http_resp *r = http_get("/auth/session", h, NULL);
    ck_assert_msg(r->status == 200, "session: %d %s", r->status, show(r));
    ck_assert_msg(strstr(r->body, a.card) && strstr(r->body, a.person), "session: %s", show(r));
    http_free(r);
    free(h);
    free(tok);
    free(pg_person);
    ans_free(&a);
}
END_TEST

/* A Guid that is not known creates the card with it; sent again, it
 * updates that card. */
START_TEST(test_guid_create_then_update)
{
    struct tp p;
    tp_new(&p);
    char g[37];
    util_guid(g);
    snprintf(p.guid, sizeof(p.guid), "%s", g);
    struct ans a = upload(&p);
    assert_uploaded(&a, "None");
    ck_assert_str_eq(a.card, g);
    snprintf(p.phone, sizeof(p.phone), "89991112233");
    snprintf(p.family + strlen(p.family), 8, "а");  /* a corrected family: one name may change */
    struct ans b = upload(&p);
    assert_uploaded(&b, "None");
    ck_assert_str_eq(b.card, g);
    ck_assert_str_eq(b.person, a.person);
    char *ph = pg_value("SELECT phone FROM medical_cards WHERE guid = $1::uuid", 1, (const char *[]){g});
    ck_assert_str_eq(ph, "79991112233");
    char *fam = pg_value("SELECT family FROM persons WHERE guid = $1::uuid", 1, (const char *[]){a.person});
    ck_assert_str_eq(fam, p.family);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM medical_cards WHERE person_guid = $1::uuid", a.person), 1);
    free(ph);
    free(fam);
    ans_free(&a);
    ans_free(&b);
}
END_TEST

/* Another person's card under the Guid: Error, nothing changed. */
START_TEST(test_guid_of_another_person)
{
    struct tp p, q;
    tp_new(&p);
    util_guid(p.guid);
    struct ans a = upload(&p);
    assert_uploaded(&a, "None");
    tp_new(&q);
    snprintf(q.guid, sizeof(q.guid), "%s", p.guid);
    snprintf(q.name, sizeof(q.name), "Мария");
    struct ans b = upload(&q);
    /* Both have a SNILS, and they differ: the first reason. */
    char *want = xasprintf("Guid: карта %s принадлежит другому пациенту (другой СНИЛС)", p.guid);
    assert_error_msg(&b, want);
    free(want);
    char *who = pg_value("SELECT person_guid::text FROM medical_cards WHERE guid = $1::uuid", 1,
                         (const char *[]){p.guid});
    ck_assert_str_eq(who, a.person);
    /* q's SNILS was not stored anywhere. */
    ck_assert_int_eq(pg_count("SELECT count(*) FROM persons WHERE snils = translate($1, '- ', '')", q.snils), 0);
    free(who);
    ans_free(&a);
    ans_free(&b);
}
END_TEST

/* Another LPU's card under the Guid: Error. */
START_TEST(test_guid_of_another_lpu)
{
    struct tp p;
    tp_new(&p);
    util_guid(p.guid);
    struct ans a = upload(&p);
    assert_uploaded(&a, "None");
    snprintf(p.mcod, sizeof(p.mcod), "330501");
    struct ans b = upload(&p);
    char *want = xasprintf("Guid: карта %s принадлежит другому ЛПУ, не 330501", p.guid);
    assert_error_msg(&b, want);
    free(want);
    ans_free(&a);
    ans_free(&b);
}
END_TEST

/* ---- one person across LPUs ---- */

START_TEST(test_same_person_by_snils)
{
    struct tp p;
    tp_new(&p);
    struct ans a = upload(&p);
    assert_uploaded(&a, "None");
    gen_enp(p.enp);                      /* another polis */
    snprintf(p.mcod, sizeof(p.mcod), "330501");
    struct ans b = upload(&p);
    assert_uploaded(&b, "None");
    ck_assert_str_eq(b.person, a.person);
    ck_assert_str_ne(b.card, a.card);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM medical_cards WHERE person_guid = $1::uuid", a.person), 2);
    ans_free(&a);
    ans_free(&b);
}
END_TEST

START_TEST(test_same_person_by_enp)
{
    struct tp p;
    tp_new(&p);
    p.snils[0] = '\0';
    struct ans a = upload(&p);
    assert_uploaded(&a, "None");
    snprintf(p.mcod, sizeof(p.mcod), "470103");
    snprintf(p.family, sizeof(p.family), "%s", "Другаяфамилия");  /* married: one name changed */
    struct ans b = upload(&p);
    assert_uploaded(&b, "None");
    ck_assert_str_eq(b.person, a.person);
    ck_assert_str_ne(b.card, a.card);
    ans_free(&a);
    ans_free(&b);
}
END_TEST

START_TEST(test_same_person_by_names)
{
    struct tp p;
    tp_new(&p);
    p.snils[0] = '\0';
    struct ans a = upload(&p);
    assert_uploaded(&a, "None");
    gen_enp(p.enp);
    snprintf(p.mcod, sizeof(p.mcod), "330501");
    /* Case and ё do not matter. */
    snprintf(p.name, sizeof(p.name), "ИВАН");
    struct ans b = upload(&p);
    assert_uploaded(&b, "None");
    ck_assert_str_eq(b.person, a.person);
    /* Another birthday is another person. */
    snprintf(p.mcod, sizeof(p.mcod), "470103");
    p.birthday[3] = p.birthday[3] == '0' ? '1' : '0';
    gen_enp(p.enp);
    gen_passport(&p);
    struct ans c = upload(&p);
    assert_uploaded(&c, "None");
    ck_assert_str_ne(c.person, a.person);
    ans_free(&a);
    ans_free(&b);
    ans_free(&c);
}
END_TEST

/* An ЕНП already on another person's card: Error. */
START_TEST(test_enp_of_another_person)
{
    struct tp p, q;
    tp_new(&p);
    p.snils[0] = '\0';
    struct ans a = upload(&p);
    assert_uploaded(&a, "None");
    tp_new(&q);
    q.snils[0] = '\0';
    snprintf(q.enp, sizeof(q.enp), "%s", p.enp);
    snprintf(q.birthday, sizeof(q.birthday), "%s", p.birthday);
    snprintf(q.name, sizeof(q.name), "Мария");   /* family and name differ */
    struct ans b = upload(&q);
    assert_error_msg(&b, "Polis.Number: ЕНП принадлежит другому пациенту (другие ФИО)");
    ck_assert_int_eq(pg_count("SELECT count(*) FROM persons WHERE family = $1", q.family), 0);
    ans_free(&a);
    ans_free(&b);
}
END_TEST

/* A person found by SNILS or by the card's Guid whose upload carries the
 * ЕНП of another person's card: Error, and the card keeps its polis. */
START_TEST(test_enp_of_another_person_when_matched)
{
    struct tp a, b, c;
    tp_new(&a);
    struct ans ra = upload(&a);
    assert_uploaded(&ra, "None");

    tp_new(&b);                          /* found again by its SNILS */
    struct ans rb = upload(&b);
    assert_uploaded(&rb, "None");
    char own[17];
    snprintf(own, sizeof(own), "%s", b.enp);
    snprintf(b.enp, sizeof(b.enp), "%s", a.enp);
    struct ans rb2 = upload(&b);
    assert_error_msg(&rb2, "Polis.Number: ЕНП принадлежит другому пациенту");
    ck_assert_int_eq(pg_count("SELECT count(*) FROM medical_cards WHERE guid = $1::uuid AND polis_key = '|"
                              "' || polis_number", rb.card), 1);
    char *pn = pg_value("SELECT polis_number FROM medical_cards WHERE guid = $1::uuid", 1,
                        (const char *[]){rb.card});
    ck_assert_str_eq(pn, own);
    free(pn);

    tp_new(&c);                          /* found again by its card's Guid, no SNILS */
    c.snils[0] = '\0';
    util_guid(c.guid);
    struct ans rc = upload(&c);
    assert_uploaded(&rc, "None");
    snprintf(c.enp, sizeof(c.enp), "%s", a.enp);
    struct ans rc2 = upload(&c);
    assert_error_msg(&rc2, "Polis.Number: ЕНП принадлежит другому пациенту");
    ck_assert_int_eq(pg_count("SELECT count(*) FROM medical_cards WHERE polis_number = $1", a.enp), 1);
    ans_free(&ra);
    ans_free(&rb);
    ans_free(&rb2);
    ans_free(&rc);
    ans_free(&rc2);
}
END_TEST

/* A passport on another person's card: Error for a new person and for one
 * found by SNILS; the same person may send it again, in another LPU too. */
START_TEST(test_passport_of_another_person)
{
    struct tp a, n, b;
    tp_new(&a);
    struct ans ra = upload(&a);
    assert_uploaded(&ra, "None");

    tp_new(&n);                          /* nobody known: would be a new person */
    snprintf(n.doc_series, sizeof(n.doc_series), "%s", a.doc_series);
    snprintf(n.doc_number, sizeof(n.doc_number), "%s", a.doc_number);
    struct ans rn = upload(&n);
    assert_error_msg(&rn, "IdentityDocument.Number: паспорт принадлежит другому пациенту");
    ck_assert_int_eq(pg_count("SELECT count(*) FROM persons WHERE family = $1", n.family), 0);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM medical_cards WHERE polis_number = $1", n.enp), 0);

    tp_new(&b);                          /* found by SNILS */
    struct ans rb = upload(&b);
    assert_uploaded(&rb, "None");
    snprintf(b.doc_series, sizeof(b.doc_series), "%s", a.doc_series);
    snprintf(b.doc_number, sizeof(b.doc_number), "%s", a.doc_number);
    struct ans rb2 = upload(&b);
    assert_error_msg(&rb2, "IdentityDocument.Number: паспорт принадлежит другому пациенту");
    ck_assert_int_eq(pg_count("SELECT count(*) FROM medical_cards WHERE doc_number = $1 AND doc_type = '14'",
                              a.doc_number), 1);

    snprintf(a.mcod, sizeof(a.mcod), "470103");
    struct ans ra2 = upload(&a);
    assert_uploaded(&ra2, "None");
    ck_assert_str_eq(ra2.person, ra.person);
    ans_free(&ra);
    ans_free(&rn);
    ans_free(&rb);
    ans_free(&rb2);
    ans_free(&ra2);
}
END_TEST

/* A SNILS that another person has, sent for a person found by the card's
 * Guid: Error, and the person keeps having none. */
START_TEST(test_snils_of_another_person)
{
    struct tp a, b;
    tp_new(&b);
    struct ans rb = upload(&b);
    assert_uploaded(&rb, "None");
    tp_new(&a);
    a.snils[0] = '\0';
    util_guid(a.guid);
    struct ans ra = upload(&a);
    assert_uploaded(&ra, "None");
    snprintf(a.snils, sizeof(a.snils), "%s", b.snils);
    struct ans ra2 = upload(&a);
    assert_error_msg(&ra2, "Snils: СНИЛС принадлежит другому пациенту");
    ck_assert_int_eq(pg_count("SELECT count(*) FROM persons WHERE guid = $1::uuid AND snils IS NULL", ra.person),
                     1);
    ans_free(&rb);
    ans_free(&ra);
    ans_free(&ra2);
}
END_TEST

/* A SNILS whose person cannot be this one: Error with the reason. */
START_TEST(test_snils_person_conflict)
{
    struct tp a, q;
    tp_new(&a);
    struct ans ra = upload(&a);
    assert_uploaded(&ra, "None");
    tp_new(&q);
    snprintf(q.snils, sizeof(q.snils), "%s", a.snils);
    snprintf(q.birthday, sizeof(q.birthday), "%s", "2001-02-03");  /* a's are in the 1900s */
    struct ans rq = upload(&q);
    assert_error_msg(&rq, "Snils: СНИЛС принадлежит другому пациенту (другая дата рождения)");
    ck_assert_int_eq(pg_count("SELECT count(*) FROM persons WHERE family = $1", q.family), 0);
    ans_free(&ra);
    ans_free(&rq);
}
END_TEST

/* A known person with a card in the LPU, sent under another, new Guid:
 * Error naming the card it has; no second card. */
START_TEST(test_guid_person_has_card)
{
    struct tp p;
    tp_new(&p);
    struct ans a = upload(&p);
    assert_uploaded(&a, "None");
    util_guid(p.guid);
    struct ans b = upload(&p);
    char *want = xasprintf("Guid: у пациента уже есть карта %s в ЛПУ 470102", a.card);
    assert_error_msg(&b, want);
    free(want);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM medical_cards WHERE guid = $1::uuid", p.guid), 0);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM medical_cards WHERE person_guid = $1::uuid", a.person), 1);
    ans_free(&a);
    ans_free(&b);
}
END_TEST

/* ---- NotValid ---- */

START_TEST(test_not_valid_reasons)
{
    struct {
        const char *what;
        const char *msg;
    } cases[] = {
        {"snils", "Snils: не прошёл проверку контрольного числа"},
        {"enp", "Polis.Number: ЕНП не прошёл проверку контрольного числа"},
        {"birthday", "Birthday: дата в будущем"},
        {"birthday-format", "Birthday: ожидается дата"},
        {"family", "Family: не заполнено обязательное поле"},
        {"phone", "Phone: ожидается номер"},
        {"mcod", "Mcod: ЛПУ с МКОД 777777 не найдено"},
        {"gender", "Gender: допустимые значения"},
        {"blood", "BloodType: допустимые значения"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tp p;
        tp_new(&p);
        const char *w = cases[i].what;
        if (strcmp(w, "snils") == 0)
            p.snils[13] = p.snils[13] == '9' ? '0' : (char)(p.snils[13] + 1);
        else if (strcmp(w, "enp") == 0)
            p.enp[15] = p.enp[15] == '9' ? '0' : (char)(p.enp[15] + 1);
        else if (strcmp(w, "birthday") == 0)
            snprintf(p.birthday, sizeof(p.birthday), "2099-01-01");
        else if (strcmp(w, "birthday-format") == 0)
            snprintf(p.birthday, sizeof(p.birthday), "01.02.1990");
        else if (strcmp(w, "family") == 0)
            p.family[0] = '\0';
        else if (strcmp(w, "phone") == 0)
            snprintf(p.phone, sizeof(p.phone), "123");
        else if (strcmp(w, "mcod") == 0)
            snprintf(p.mcod, sizeof(p.mcod), "777777");
        char *j = tp_json(&p);
        if (strcmp(w, "gender") == 0) {
            char *g = strstr(j, "\"gender\":\"1\"");
            g[10] = '3';
        } else if (strcmp(w, "blood") == 0) {
            char *g = strstr(j, "\"bloodType\":\"1\"");
            g[13] = '9';
        }
        struct ans a = post(auth_all, j);
        ck_assert_msg(strcmp(a.mkab, "NotValid") == 0 && strcmp(a.att, "None") == 0, "%s: %s", w, a.body);
        ck_assert_msg(strstr(a.msgs, cases[i].msg) == a.msgs && a.nmsgs == 1, "%s: want %s: %s", w,
                      cases[i].msg, a.body);
        ck_assert_msg(a.person[0] == '\0' && a.card[0] == '\0', "%s: guids: %s", w, a.body);
        /* Nothing written. */
        ck_assert_int_eq(pg_count("SELECT count(*) FROM medical_cards WHERE polis_number = $1", p.enp), 0);
        ans_free(&a);
        free(j);
    }
}
END_TEST

/* One case per rule of Polis, IdentityDocument, Email, Patronymic and
 * Attachment.Mcod: exactly that message. A bad card is NotValid and
 * nothing is written; a bad attachment leaves the card Uploaded. */
START_TEST(test_validation_messages)
{
    char x48[49], long_patr[600];
    memset(x48, 'x', 48);
    x48[48] = '\0';
    snprintf(long_patr, sizeof(long_patr), "\"");
    for (int i = 0; i < 257; i++)
        strcat(long_patr, "а");
    strcat(long_patr, "\"");
    char *doc_long_series = xasprintf("{\"type\":{\"code\":\"3\"},\"series\":\"%s\",\"number\":\"1\"}", x48);
    char *doc_long_number = xasprintf("{\"type\":{\"code\":\"3\"},\"series\":\"1\",\"number\":\"%s\"}", x48);
    const struct {
        const char *polis, *doc, *email, *patronymic, *extra;
        const char *msg;
    } cases[] = {
        {"null", NULL, NULL, NULL, NULL, "Polis: не заполнено обязательное поле"},
        {"\"x\"", NULL, NULL, NULL, NULL, "Polis: ожидается объект"},
        {"{\"type\":\"3\",\"number\":\"АБ123\"}", NULL, NULL, NULL, NULL,
         "Polis.Type: ожидается объект {code, name}"},
        {"{\"type\":{\"code\":true},\"number\":\"АБ123\"}", NULL, NULL, NULL, NULL,
         "Polis.Type.Code: неверный формат"},
        {"{\"type\":{\"code\":\"3\"},\"number\":\" \"}", NULL, NULL, NULL, NULL,
         "Polis.Number: не заполнено обязательное поле"},
        {"{\"type\":{\"code\":\"3\"},\"number\":\"12345\"}", NULL, NULL, NULL, NULL,
         "Polis.Number: ЕНП должен состоять из 16 цифр"},
        {"{\"type\":{\"code\":\"1\"},\"number\":\"12!45\"}", NULL, NULL, NULL, NULL,
         "Polis.Number: неверный формат (до 20 букв, цифр, пробелов и дефисов)"},
        {"{\"type\":{\"code\":\"1\"},\"series\":\"А/Б\",\"number\":\"123456\"}", NULL, NULL, NULL, NULL,
         "Polis.Series: неверный формат (до 20 букв, цифр, пробелов и дефисов)"},
        {"{\"type\":{\"code\":\"1\"},\"number\":\"123456\",\"start\":\"2099-01-01\"}", NULL, NULL, NULL, NULL,
         "Polis.Start: дата в будущем"},
        {"{\"type\":{\"code\":\"1\"},\"number\":\"123456\",\"start\":\"08.04.2013\"}", NULL, NULL, NULL, NULL,
         "Polis.Start: ожидается дата ГГГГ-ММ-ДД (1900-2100) или дата и время ISO 8601"},
        {"{\"type\":{\"code\":\"1\"},\"number\":\"123456\",\"start\":\"2015-01-01\",\"end\":\"2014-01-01\"}", NULL,
         NULL, NULL, NULL, "Polis.End: раньше Polis.Start"},
        {"{\"type\":{\"code\":\"1\"},\"number\":\"123456\",\"smo\":5}", NULL, NULL, NULL, NULL,
         "Polis.Smo: ожидается строка"},
        {NULL, "[]", NULL, NULL, NULL, "IdentityDocument: ожидается объект"},
        {NULL, "{\"type\":\"14\",\"series\":\"1234\",\"number\":\"123456\"}", NULL, NULL, NULL,
         "IdentityDocument.Type: ожидается объект {code, name}"},
        {NULL, "{\"type\":{\"name\":\"Паспорт\"},\"number\":\"123456\"}", NULL, NULL, NULL,
         "IdentityDocument.Type.Code: не заполнено обязательное поле"},
        {NULL, "{\"type\":{\"code\":\"14\"},\"number\":\"123456\"}", NULL, NULL, NULL,
         "IdentityDocument.Series: не заполнено обязательное поле"},
        {NULL, "{\"type\":{\"code\":\"14\"},\"series\":\"12\",\"number\":\"123456\"}", NULL, NULL, NULL,
         "IdentityDocument.Series: серия паспорта - 4 цифры"},
        {NULL, "{\"type\":{\"code\":\"14\"},\"series\":\"1234\",\"number\":\"12345\"}", NULL, NULL, NULL,
         "IdentityDocument.Number: номер паспорта - 6 цифр"},
        {NULL, "{\"type\":{\"code\":\"14\"},\"series\":\"1234\"}", NULL, NULL, NULL,
         "IdentityDocument.Number: не заполнено обязательное поле"},
        {NULL, doc_long_series, NULL, NULL, NULL, "IdentityDocument.Series: длиннее 47 байт"},
        {NULL, doc_long_number, NULL, NULL, NULL, "IdentityDocument.Number: длиннее 47 байт"},
        {NULL, "{\"type\":{\"code\":\"3\"},\"number\":\"1\",\"date\":\"2099-01-01\"}", NULL, NULL, NULL,
         "IdentityDocument.Date: дата в будущем"},
        {NULL, NULL, "\"a@b\"", NULL, NULL, "Email: неверный формат адреса"},
        {NULL, NULL, "\"a b@c.ru\"", NULL, NULL, "Email: неверный формат адреса"},
        {NULL, NULL, "7", NULL, NULL, "Email: ожидается строка"},
        {NULL, NULL, NULL, "null", NULL,
         "Patronymic: не заполнено обязательное поле (пустая строка, если отчества нет)"},
        {NULL, NULL, NULL, "1", NULL, "Patronymic: ожидается строка"},
        {NULL, NULL, NULL, long_patr, NULL, "Patronymic: длиннее 256 символов"},
        {NULL, NULL, NULL, NULL, ",\"attachment\":{\"mcod\":\"12\",\"date\":\"2020-01-01\"}",
         "Attachment.Mcod: МКОД - 6 или 7 цифр"},
        {NULL, NULL, NULL, NULL, ",\"attachment\":{\"mcod\":\"470103\",\"date\":\"2020-01-01\"}",
         "Attachment.Mcod: прикрепление возможно только к ЛПУ карты (470102)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tp p;
        tp_new(&p);
        p.polis_json = cases[i].polis;
        p.doc_json = cases[i].doc;
        p.email_json = cases[i].email;
        p.patronymic_json = cases[i].patronymic;
        p.extra = cases[i].extra;
        char *j = tp_json(&p);
        struct ans a = post(auth_all, j);
        if (cases[i].extra) {
            assert_one_msg(&a, "Uploaded", "NotValid", cases[i].msg);
            ck_assert_str_eq(a.att_guid, "");
            ck_assert_int_eq(pg_count("SELECT count(*) FROM attachments WHERE card_guid = $1::uuid", a.card), 0);
        } else {
            assert_one_msg(&a, "NotValid", "None", cases[i].msg);
            ck_assert_msg(!a.person[0] && !a.card[0], "case %zu: guids: %s", i, a.body);
            ck_assert_int_eq(pg_count("SELECT count(*) FROM persons WHERE family = $1", p.family), 0);
        }
        ans_free(&a);
        free(j);
    }
    /* The card's own МКОД is fine. */
    struct tp p;
    tp_new(&p);
    p.extra = ",\"attachment\":{\"mcod\":\"470102\",\"date\":\"2020-01-01\"}";
    struct ans a = upload(&p);
    assert_uploaded(&a, "Uploaded");
    ck_assert_int_eq(a.nmsgs, 0);
    ans_free(&a);
    free(doc_long_series);
    free(doc_long_number);
}
END_TEST

START_TEST(test_not_valid_lists_every_problem)
{
    struct tp p;
    tp_new(&p);
    p.name[0] = '\0';
    snprintf(p.phone, sizeof(p.phone), "1");
    p.snils[13] = p.snils[13] == '9' ? '0' : (char)(p.snils[13] + 1);
    p.extra = ",\"attachment\":{\"date\":\"2099-01-01\"}";
    struct ans a = upload(&p);
    ck_assert_str_eq(a.mkab, "NotValid");
    ck_assert_str_eq(a.att, "None");   /* the card was not stored */
    ck_assert_msg(a.nmsgs == 4 && strstr(a.msgs, "Name: ") && strstr(a.msgs, "Phone: ") &&
                      strstr(a.msgs, "Snils: ") && strstr(a.msgs, "Attachment.Date: "),
                  "%s", a.body);
    ans_free(&a);
}
END_TEST

/* Field names in any case, as the seed's table writes them. */
START_TEST(test_pascal_case_fields)
{
    char enp[17];
    gen_enp(enp);
    char fam[64];
    gen_family(fam, sizeof(fam));
    char *j = xasprintf("{\"Family\":\"%s\",\"Name\":\"Олег\",\"Patronymic\":\"\",\"Birthday\":\"1980-05-05T00:00:00\","
                        "\"Polis\":{\"Type\":{\"Code\":3},\"Number\":\"%s\"},\"Mcod\":\"470102\","
                        "\"Phone\":\"+7 (999) 000-00-00\",\"Gender\":2,\"BloodType\":4,\"RH\":true}",
                        fam, enp);
    struct ans a = post(auth_all, j);
    assert_uploaded(&a, "None");
    char *g = pg_value("SELECT gender::text FROM persons WHERE guid = $1::uuid", 1, (const char *[]){a.person});
    ck_assert_str_eq(g, "2");
    free(g);
    ans_free(&a);
    free(j);
}
END_TEST

/* ---- AttachmentStatus ---- */

START_TEST(test_attachment_statuses)
{
    struct tp p;
    tp_new(&p);
    char ag[37];
    util_guid(ag);
    char *extra = xasprintf(",\"attachment\":{\"guid\":\"%s\",\"date\":\"2020-02-03\",\"type\":2,\"area\":\"7\"}", ag);
    p.extra = extra;
    struct ans a = upload(&p);
    assert_uploaded(&a, "Uploaded");
    ck_assert_str_eq(a.att_guid, ag);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM attachments WHERE guid = $1::uuid AND attach_type = 2"
                              " AND attach_date = '2020-02-03' AND area = '7'", ag), 1);

    /* Invalid attachment: the card is stored, the attachment is not. */
    p.extra = ",\"attachment\":{\"date\":\"2099-02-03\"}";
    struct ans b = upload(&p);
    assert_uploaded(&b, "NotValid");
    ck_assert_str_eq(b.card, a.card);
    ck_assert_msg(strstr(b.msgs, "Attachment.Date: ") == b.msgs, "%s", b.body);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM attachments WHERE guid = $1::uuid"
                              " AND attach_date = '2020-02-03'", ag), 1);

    /* Another card's attachment guid: Error. */
    struct tp q;
    tp_new(&q);
    q.extra = extra;
    struct ans c = upload(&q);
    assert_uploaded(&c, "Error");
    ck_assert_msg(strstr(c.msgs, "Attachment.Guid: "), "%s", c.body);
    ck_assert_str_eq(c.att_guid, "");
    ck_assert_int_eq(pg_count("SELECT count(*) FROM attachments a JOIN medical_cards m ON m.guid = a.card_guid"
                              " WHERE m.guid = $1::uuid", c.card), 0);

    /* No attachment: None. */
    p.extra = NULL;
    struct ans d = upload(&p);
    assert_uploaded(&d, "None");
    ck_assert_str_eq(d.att_guid, "");
    ans_free(&a);
    ans_free(&b);
    ans_free(&c);
    ans_free(&d);
    free(extra);
}
END_TEST

/* 000-000-000 00 is what MIS send for an unknown SNILS: two different
 * patients sent with it are two persons, neither owning the placeholder
 * (the first used to, and the second was refused as its conflict). */
START_TEST(test_snils_placeholder_owned_by_none)
{
    struct tp a, b;
    tp_new(&a);
    tp_new(&b);
    snprintf(a.snils, sizeof(a.snils), "000-000-000 00");
    snprintf(b.snils, sizeof(b.snils), "000-000-000 00");
    struct ans x = upload(&a), y = upload(&b);
    assert_uploaded(&x, "None");
    assert_uploaded(&y, "None");
    ck_assert_str_ne(x.person, y.person);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM persons WHERE snils = $1", "00000000000"), 0);
    /* Whoever writes it (a gateway of the release before, during an
     * upgrade), the table reads it as none. */
    const char *who[] = {x.person};
    PQclear(pg_exec("UPDATE persons SET snils = '00000000000' WHERE guid = $1::uuid", 1, who));
    ck_assert_int_eq(pg_count("SELECT count(*) FROM persons WHERE guid = $1::uuid AND snils IS NULL", x.person),
                     1);
    ans_free(&x);
    ans_free(&y);
}
END_TEST

/* ---- idempotence ---- */

START_TEST(test_idempotent_reupload)
{
    struct tp p;
    tp_new(&p);
    p.extra = ",\"attachment\":{\"date\":\"2021-01-01\"}";
    struct ans a = upload(&p);
    assert_uploaded(&a, "Uploaded");
    for (int i = 0; i < 3; i++) {
        struct ans b = upload(&p);
        ck_assert_str_eq(b.body, a.body);
        ans_free(&b);
    }
    const char *snils_digits = NULL;
    char d[12];
    ck_assert_int_eq(ids_snils(p.snils, d), ID_OK);
    snils_digits = d;
    ck_assert_int_eq(pg_count("SELECT count(*) FROM persons WHERE snils = $1", snils_digits), 1);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM medical_cards WHERE person_guid = $1::uuid", a.person), 1);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM attachments WHERE card_guid = $1::uuid", a.card), 1);
    ans_free(&a);
}
END_TEST

/* ---- caches an update makes stale ---- */

START_TEST(test_update_drops_cached_identity)
{
    struct tp p;
    tp_new(&p);
    struct ans a = upload(&p);
    assert_uploaded(&a, "None");
    char *t1 = cod_token("/auth/cod/token", p.enp, p.birthday);  /* caches the identity */
    char *h1 = xasprintf("Authorization: Bearer %s", t1);
    struct http_resp *r = http_get("/auth/session", h1, NULL);
    ck_assert_msg(r->status == 200 && strstr(r->body, a.card), "%s", show(r));
    http_free(r);

    snprintf(p.mcod, sizeof(p.mcod), "470103");
    struct ans b = upload(&p);
    assert_uploaded(&b, "None");
    ck_assert_str_eq(b.person, a.person);

    /* A new token sees both cards at once, not after the cache expires. */
    char *t2 = cod_token("/auth/cod/token", p.enp, p.birthday);
    char *h2 = xasprintf("Authorization: Bearer %s", t2);
    r = http_get("/auth/session", h2, NULL);
    ck_assert_msg(r->status == 200 && strstr(r->body, a.card) && strstr(r->body, b.card), "new token: %s",
                  show(r));
    http_free(r);
    /* The old token's cached session was dropped: rebuilt, with both. */
    r = http_get("/auth/session", h1, NULL);
    ck_assert_msg(r->status == 200 && strstr(r->body, a.card) && strstr(r->body, b.card), "old token: %s",
                  show(r));
    http_free(r);
    free(h1);
    free(h2);
    free(t1);
    free(t2);
    ans_free(&a);
    ans_free(&b);
}
END_TEST

/* Plants, for a's person, a key in the index bucket `back` buckets before
 * now, changes the patient (another LPU, which drops the person's caches
 * through this gateway, whose lifetimes are 600 s), and says whether the
 * planted key and its bucket went. */
static bool planted_dropped(struct tp *p, const struct ans *a, long back)
{
    long bucket = (long)time(NULL) / IDENT_INDEX_BUCKET_S - back;
    char *plant = xasprintf("SADD " IDENT_INDEX_PREFIX "%s:%ld tok:planted-%s-%ld", a->person, bucket,
                            a->person, back);
    ck_assert_int_eq(redis_long(plant), 1);
    char *set = xasprintf("SET tok:planted-%s-%ld x EX 600", a->person, back);
    ck_assert_int_eq(redis_cli(set), 0);
    char *exists = xasprintf("EXISTS tok:planted-%s-%ld " IDENT_INDEX_PREFIX "%s:%ld", a->person, back,
                             a->person, bucket);
    ck_assert_int_eq(redis_long(exists), 2);
    snprintf(p->mcod, sizeof(p->mcod), "%s", strcmp(p->mcod, "470103") == 0 ? "470102" : "470103");
    struct ans b = upload(p);
    assert_uploaded(&b, "None");
    long left = redis_long(exists);
    ans_free(&b);
    free(exists), free(set), free(plant);
    return left == 0;
}

/* A token from the gateway on port for p: 200. */
static void token_at(int port, const struct tp *p)
{
    char *path = qpath("/auth/cod/token", "n_pol", p->enp, "birthday", p->birthday, NULL);
    struct http_resp *r = http_get_at(port, path, NULL);
    ck_assert_msg(r->status == 200, "%s", show(r));
    http_free(r);
    free(path);
}

/* A new patient uploaded (into *p, its answer *a), and a gateway of the
 * test's own with the one setting given: its port. */
static int patient_and_gateway(const char *setting, struct tp *p, struct ans *a, pid_t *pid)
{
    tp_new(p);
    *a = upload(p);
    assert_uploaded(a, "None");
    const char *const settings[] = {setting, NULL};
    return gw_spawn(settings, pid);
}

/* A gateway configured with longer lifetimes than this one (7,200 s
 * against 600) announces them in pkeys:horizon when it issues a token, and
 * an update through this gateway then drops the person's keys in buckets as
 * old as that, not only as old as its own lifetimes reach: a planted bucket
 * five buckets back (50 minutes), beyond this gateway's own walk. */
START_TEST(test_update_reaches_longer_lifetimes)
{
    struct tp p;
    struct ans a;
    pid_t pid;
    int port = patient_and_gateway("MIPGW_TOKENS_COD_TTL_S=7200", &p, &a, &pid);
    token_at(port, &p);
    long until = redis_long("ZSCORE " IDENT_HORIZON_KEY " 7200") - (long)time(NULL);
    ck_assert_msg(until > 7200 - 2 && until <= 7200 + IDENT_INDEX_BUCKET_S + 2 * IDENT_HORIZON_EVERY_S,
                  "7200 announced for %ld s", until);
    ck_assert(planted_dropped(&p, &a, 5));
    ck_assert_msg(gw_stop(pid) == 0, "the extra gateway did not exit 0 on SIGTERM");
    ans_free(&a);
}
END_TEST

/* Each lifetime in the horizon lapses on its own: a longer one (7,200 s)
 * that stopped being announced does not take with it a shorter one
 * (3,600 s) still announced, and lapsed ones (the 7,200, a bogus one of
 * 99,999,999 s) no longer lengthen the walk. */
START_TEST(test_horizon_lifetimes_lapse_alone)
{
    struct tp p;
    struct ans a;
    pid_t pid;
    int port = patient_and_gateway("MIPGW_TOKENS_COD_TTL_S=3600", &p, &a, &pid);
    long now = (long)time(NULL);
    char *lapse = xasprintf("ZADD " IDENT_HORIZON_KEY " %ld 7200 %ld 99999999", now + 1, now - 10);
    ck_assert_int_eq(redis_cli(lapse), 0);
    token_at(port, &p);               /* announces 3600, unless this worker has lately */
    ck_assert_int_ge(redis_long("ZSCORE " IDENT_HORIZON_KEY " 3600"), now + 3600);
    sleep_ms(2100);                   /* the 7200 lapses */
    ck_assert(planted_dropped(&p, &a, 5));     /* 50 minutes back: within 3600 */
    ck_assert(!planted_dropped(&p, &a, 20));   /* 200 minutes back: no live lifetime reaches it */
    ck_assert_msg(gw_stop(pid) == 0, "the extra gateway did not exit 0 on SIGTERM");
    free(lapse);
    ans_free(&a);
}
END_TEST

/* ---- uploads at once ---- */

/* Uploads, from a child process of its own, each tp to port, all at once
 * when the parent closes go[1]; each child writes "status body" to its
 * pipe. */
static void upload_children(int port, const struct tp *ps, int n, const int go[2], int fds[][2],
                            pid_t *pids)
{
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(pipe(fds[i]), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            char *j = tp_json(&ps[i]), c;
            close(go[1]);
            if (read(go[0], &c, 1) != 0)
                _exit(1);
            const char *headers[] = {"Content-Type: application/json", auth_all, NULL};
            struct http_resp *r = http_request_at(port, "POST", "/patients", headers, j);
            char out[512];
            snprintf(out, sizeof(out), "%d %.400s", r->status, r->body ? r->body : "");
            if (write(fds[i][1], out, strlen(out)) < 0)
                _exit(1);
            _exit(0);
        }
        pids[i] = pid;
        close(fds[i][1]);
    }
}

/* Reaps the children: not wait(), which would wait for a spawned gateway. */
static void reap(const pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        waitpid(pids[i], NULL, 0);
}

static void read_answer(int fd, char *buf, size_t cap)
{
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
}

/* The same new person sent by several MIS at the same moment (to three
 * LPUs, four times each) becomes one person with one card per LPU: the
 * upload's locks serialize uploads that share a SNILS, ЕНП or names. */
START_TEST(test_concurrent_same_person)
{
    struct tp p;
    tp_new(&p);
    static const char *const mcods[] = {"470102", "470103", "330501"};
    enum { N = 12 };
    struct tp ps[N];
    for (int i = 0; i < N; i++) {
        ps[i] = p;
        snprintf(ps[i].mcod, sizeof(ps[i].mcod), "%s", mcods[i % 3]);
    }
    int fds[N][2], go[2];
    pid_t pids[N];
    ck_assert_int_eq(pipe(go), 0);  /* closed by the parent: every child starts at once */
    upload_children(http_default_port(), ps, N, go, fds, pids);
    /* Each worker remembers the verified header for a while: with it
     * remembered, no password hash staggers the uploads. */
    for (int i = 0; i < 8; i++)
        http_free(http_get("/mis/v1/whoami", auth_all, NULL));
    close(go[0]);
    close(go[1]);
    char person[N][40];
    for (int i = 0; i < N; i++) {
        char buf[512];
        read_answer(fds[i][0], buf, sizeof(buf));
        ck_assert_msg(buf[0], "upload %d: no answer", i);
        ck_assert_msg(strncmp(buf, "200 ", 4) == 0 && strstr(buf, "\"MkabStatus\":\"Uploaded\""),
                      "upload %d: %s", i, buf);
        yajl_val v = jparse_str(buf + 4);
        snprintf(person[i], sizeof(person[i]), "%s", jstr(v, "PersonGuid"));
        yajl_tree_free(v);
    }
    reap(pids, N);
    for (int i = 1; i < N; i++)
        ck_assert_str_eq(person[i], person[0]);
    char d[12];
    ck_assert_int_eq(ids_snils(p.snils, d), ID_OK);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM persons WHERE snils = $1", d), 1);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM medical_cards WHERE person_guid = $1::uuid", person[0]), 3);
}
END_TEST

/* ---- batches ---- */

/* Uploads that queue up while the one connection they may use is busy go
 * to PostgreSQL as one batch; when one of them fails it (here a trigger
 * refuses it), the others are run again one by one: each is stored and
 * answered Uploaded, the failed one gets 500 and leaves nothing behind. */
START_TEST(test_batch_fallback)
{
    /* One worker: each worker has a pool of its own, and with two the
     * uploads would split between them, the refused one perhaps alone. */
    static const char *const settings[] = {"MIPGW_HTTP_WORKERS=1", "MIPGW_PG_POOL_SIZE=2",
                                           "MIPGW_PG_BATCH_CONNS=1", "MIPGW_PG_BATCH_MAX=16", NULL};
    pid_t pid;
    int port = gw_spawn(settings, &pid);
    /* The credential verified once, so that no hash staggers the uploads. */
    http_free(http_get_at(port, "/mis/v1/whoami", auth_all, NULL));

    enum { N = 7 };  /* [0] holds the connection, [N-1] is refused */
    struct tp ps[N];
    for (int i = 0; i < N; i++)
        tp_new(&ps[i]);
    PQclear(pg_exec("CREATE TABLE IF NOT EXISTS test_upload_faults (family text PRIMARY KEY, act text)",
                    0, NULL));
    PQclear(pg_exec("CREATE OR REPLACE FUNCTION test_upload_fault() RETURNS trigger LANGUAGE plpgsql AS $$"
                    " DECLARE a text := (SELECT act FROM test_upload_faults WHERE family = NEW.family);"
                    " BEGIN"
                    "  IF a = 'sleep' THEN PERFORM pg_sleep(0.6); END IF;"
                    "  IF a = 'fail' THEN RAISE EXCEPTION 'refused by the test'; END IF;"
                    "  RETURN NEW;"
                    " END $$", 0, NULL));
    PQclear(pg_exec("DROP TRIGGER IF EXISTS test_upload_fault ON persons", 0, NULL));
    PQclear(pg_exec("CREATE TRIGGER test_upload_fault BEFORE INSERT ON persons"
                    " FOR EACH ROW EXECUTE FUNCTION test_upload_fault()", 0, NULL));
    const char *slow[] = {ps[0].family, "sleep"}, *bad[] = {ps[N - 1].family, "fail"};
    PQclear(pg_exec("INSERT INTO test_upload_faults VALUES ($1, $2)", 2, slow));
    PQclear(pg_exec("INSERT INTO test_upload_faults VALUES ($1, $2)", 2, bad));
    double batches0 = metric_at(port, "mipgw_pg_batches_total");
    double retries0 = metric_at(port, "mipgw_pg_batch_retries_total");

    int fds[N][2], go0[2], go[2];
    pid_t pids[N];
    ck_assert_int_eq(pipe(go0), 0);
    ck_assert_int_eq(pipe(go), 0);
    upload_children(port, ps, 1, go0, fds, pids);
    close(go0[1]);
    sleep_ms(250);  /* [0] sleeps in PostgreSQL on the one connection for uploads */
    upload_children(port, ps + 1, N - 1, go, fds + 1, pids + 1);
    close(go[1]);
    char buf[N][512];
    for (int i = 0; i < N; i++)
        read_answer(fds[i][0], buf[i], sizeof(buf[i]));
    close(go0[0]);
    close(go[0]);
    reap(pids, N);
    PQclear(pg_exec("DROP TRIGGER test_upload_fault ON persons", 0, NULL));

    for (int i = 0; i < N - 1; i++) {
        ck_assert_msg(strncmp(buf[i], "200 ", 4) == 0 && strstr(buf[i], "\"MkabStatus\":\"Uploaded\""),
                      "upload %d: %s", i, buf[i]);
        char d[12];
        ck_assert_int_eq(ids_snils(ps[i].snils, d), ID_OK);
        ck_assert_int_eq(pg_count("SELECT count(*) FROM persons WHERE snils = $1", d), 1);
    }
    ck_assert_msg(strncmp(buf[N - 1], "500 ", 4) == 0, "the refused upload: %s", buf[N - 1]);
    char d[12];
    ck_assert_int_eq(ids_snils(ps[N - 1].snils, d), ID_OK);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM persons WHERE snils = $1", d), 0);
    /* The five behind [0] went as one batch, which failed and was re-run. */
    ck_assert_double_ge(metric_at(port, "mipgw_pg_batches_total") - batches0, 1);
    ck_assert_double_ge(metric_at(port, "mipgw_pg_batch_retries_total") - retries0, 1);
    ck_assert_msg(gw_stop(pid) == 0, "the extra gateway did not exit 0 on SIGTERM");
}
END_TEST

/* Many uploads at once through the main gateway: those that queue up are
 * batched, and every one is answered with its own card. */
START_TEST(test_batch_answers_own)
{
    enum { N = 24 };
    struct tp ps[N];
    for (int i = 0; i < N; i++)
        tp_new(&ps[i]);
    for (int i = 0; i < 8; i++)
        http_free(http_get("/mis/v1/whoami", auth_all, NULL));
    int fds[N][2], go[2];
    pid_t pids[N];
    ck_assert_int_eq(pipe(go), 0);
    upload_children(http_default_port(), ps, N, go, fds, pids);
    close(go[1]);
    for (int i = 0; i < N; i++) {
        char buf[512];
        read_answer(fds[i][0], buf, sizeof(buf));
        ck_assert_msg(strncmp(buf, "200 ", 4) == 0 && strstr(buf, "\"MkabStatus\":\"Uploaded\""),
                      "upload %d: %s", i, buf);
        yajl_val v = jparse_str(buf + 4);
        char d[12];
        ck_assert_int_eq(ids_snils(ps[i].snils, d), ID_OK);
        const char *params[] = {jstr(v, "MkabGuid"), d};
        char *n = pg_value("SELECT count(*) FROM medical_cards c JOIN persons p ON p.guid = c.person_guid"
                           " WHERE c.guid = $1::uuid AND p.snils = $2", 2, params);
        ck_assert_msg(n && strcmp(n, "1") == 0, "upload %d: its answer names another card", i);
        free(n);
        yajl_tree_free(v);
    }
    close(go[0]);
    reap(pids, N);
}
END_TEST

/* ---- the importer's entry ---- */

/* Every demo patient goes through patient_import (the same validation and
 * SQL as POST /patients) and comes out Uploaded, onto the cards the demo
 * import made: no card or person more. */
START_TEST(test_import_entry_demo)
{
    const char *dir = getenv("top_srcdir");
    char *path = xasprintf("%s/etc/demo.json", dir ? dir : ".");
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char data[1 << 20];
    size_t n = fread(data, 1, sizeof(data), f);
    fclose(f);
    char err[128];
    yajl_val root = json_parse(data, n, JSON_MAX_DEPTH, err, sizeof(err));
    ck_assert_ptr_nonnull(root);
    yajl_val pts = json_get(root, "patients");
    ck_assert(YAJL_IS_ARRAY(pts));
    long persons = pg_count("SELECT count(*) FROM persons", NULL);
    long cards = pg_count("SELECT count(*) FROM medical_cards", NULL);
    PGconn *c = PQconnectdb(env("MIPGW_TEST_PG_CONNINFO"));
    ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
    for (size_t i = 0; i < pts->u.array.len; i++) {
        struct buf msg;
        buf_init(&msg);
        int st = patient_import(c, pts->u.array.values[i], NULL, 0, &msg);
        ck_assert_msg(st == PATIENT_UPLOADED, "demo patient %zu: %d %s", i, st, msg.data ? msg.data : "");
        buf_free(&msg);
    }
    /* Limited to the allowed LPUs. */
    const char *only[] = {"470103"};
    struct buf msg;
    buf_init(&msg);
    int st = patient_import(c, pts->u.array.values[0], only, 1, &msg);
    ck_assert_int_eq(st, PATIENT_NOT_VALID);
    ck_assert_msg(strstr(msg.data, "Mcod: "), "%s", msg.data);
    buf_free(&msg);
    PQfinish(c);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM persons", NULL), persons);
    ck_assert_int_eq(pg_count("SELECT count(*) FROM medical_cards", NULL), cards);
    yajl_tree_free(root);
    free(path);
}
END_TEST

static Suite *patients_suite(void)
{
    Suite *s = suite_create("e2e_patients");
    TCase *tc = tcase_create("refused");
    tcase_set_timeout(tc, 30);
    tcase_add_unchecked_fixture(tc, logins_setup, NULL);
    tcase_add_test(tc, test_unauthorized);
    tcase_add_test(tc, test_forbidden_lpu);
    tcase_add_test(tc, test_content_type);
    tcase_add_test(tc, test_malformed_json);
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_auth_before_body);
    suite_add_tcase(s, tc);

    tc = tcase_create("upload");
    tcase_set_timeout(tc, 30);
    tcase_add_unchecked_fixture(tc, logins_setup, NULL);
    tcase_add_test(tc, test_new_card_and_token);
    tcase_add_test(tc, test_guid_create_then_update);
    tcase_add_test(tc, test_guid_of_another_person);
    tcase_add_test(tc, test_guid_of_another_lpu);
    tcase_add_test(tc, test_same_person_by_snils);
    tcase_add_test(tc, test_same_person_by_enp);
    tcase_add_test(tc, test_same_person_by_names);
    tcase_add_test(tc, test_enp_of_another_person);
    tcase_add_test(tc, test_enp_of_another_person_when_matched);
    tcase_add_test(tc, test_passport_of_another_person);
    tcase_add_test(tc, test_snils_of_another_person);
    tcase_add_test(tc, test_snils_person_conflict);
    tcase_add_test(tc, test_guid_person_has_card);
    tcase_add_test(tc, test_validation_messages);
    tcase_add_test(tc, test_not_valid_reasons);
    tcase_add_test(tc, test_not_valid_lists_every_problem);
    tcase_add_test(tc, test_pascal_case_fields);
    tcase_add_test(tc, test_attachment_statuses);
    tcase_add_test(tc, test_idempotent_reupload);
    tcase_add_test(tc, test_snils_placeholder_owned_by_none);
    tcase_add_test(tc, test_update_drops_cached_identity);
    tcase_add_test(tc, test_concurrent_same_person);
    tcase_add_test(tc, test_import_entry_demo);
    tcase_add_test(tc, test_batch_answers_own);
    suite_add_tcase(s, tc);

    tc = tcase_create("batch");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, logins_setup, NULL);
    tcase_add_checked_fixture(tc, spawned_reset, spawned_kill_all);
    tcase_add_test(tc, test_batch_fallback);
    suite_add_tcase(s, tc);

    tc = tcase_create("other_gateways");
    tcase_set_timeout(tc, 30);
    tcase_add_unchecked_fixture(tc, logins_setup, NULL);
    tcase_add_checked_fixture(tc, spawned_reset, spawned_kill_all);
    tcase_add_test(tc, test_update_reaches_longer_lifetimes);
    tcase_add_test(tc, test_horizon_lifetimes_lapse_alone);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(patients_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
