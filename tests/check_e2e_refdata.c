/* check_e2e_refdata.c - reference-data uploads under /mis/v1 end to end,
 * and what `mipgw import etc/demo.json` loaded through the same code.
 *
 * Runs under tests/e2e.sh against the gateway it started, with the demo
 * MIS logins (mis-470102 owns 470102; mis-region owns 470102, 470103 and
 * 330501) that the import created. Every test makes guids of its own. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e_util.h"
#include "refdata.h"
#include "util.h"

#define LPU_470102 "c3c977af-c3b4-4517-9d57-50a6844ec660"
#define LPU_470103 "0fdaacdd-569f-495f-8665-3d38407d3034"
#define LPU_330501 "5409f503-f01a-4f2f-a57a-91979fb19f42"
#define RES_THERAPIST "19ebd6d6-2bbf-45c1-a8fb-2c7747f3beb3"  /* 470102 */
#define RES_CARDIO_DISP "3ddb15aa-16f4-48af-88e5-1a3ec706cab6" /* 470102, dispensary-only */
#define RES_CARDIO_330501 "6b6ad8e3-5a6d-45c5-bce4-ce7dcc58d8e3"
#define IVANOV_SNILS "123-456-789 64"
#define IVANOV_MKAB "9b58e84c-1362-4824-9df3-97e0767c41ff"
/* A SNILS with a right check number that no demo person has. */
#define NOBODY_SNILS "123-456-780 55"

#define MSG_4120 "Неверный логин или пароль"

static char *auth_470102, *auth_region;

static char *new_guid(void)
{
    return pg_value("SELECT gen_random_uuid()::text", 0, NULL);
}

static struct http_resp *up(const char *kind, const char *auth, const char *body)
{
    char *path = xasprintf("/mis/v1/%s", kind);
    struct http_resp *r = post_json(path, auth, body);
    free(path);
    return r;
}

/* A 200 answer of n results; the caller frees the tree. */
static yajl_val results_at(struct http_resp *r, size_t n, int line)
{
    ck_assert_msg(r->status == 200, "line %d: status %d: %s", line, r->status, show(r));
    yajl_val v = jparse_str(r->body);
    ck_assert_msg(v && YAJL_IS_ARRAY(v) && v->u.array.len == n, "line %d: want %zu results: %s", line,
                  n, show(r));
    http_free(r);
    return v;
}
#define results(r, n) results_at(r, n, __LINE__)

/* Result i has this guid (NULL: null), status and, when msg is not NULL,
 * exactly this one message (else none). */
static void expect_at(yajl_val arr, size_t i, const char *guid, const char *status, const char *msg,
                      int line)
{
    yajl_val it = arr->u.array.values[i];
    static const char *const keys[] = {"Guid", "Status", "ValidationMessage"};
    ck_assert_msg(jkeys_exactly(it, keys, 3), "line %d: result %zu has other keys", line, i);
    const char *g = jstr(it, "Guid");
    if (guid)
        ck_assert_msg(g && strcmp(g, guid) == 0, "line %d: result %zu guid %s", line, i, g ? g : "null");
    else
        ck_assert_msg(YAJL_IS_NULL(jget(it, "Guid")), "line %d: result %zu guid not null", line, i);
    const char *s = jstr(it, "Status");
    yajl_val m = jget(it, "ValidationMessage");
    ck_assert_msg(YAJL_IS_ARRAY(m), "line %d: ValidationMessage not an array", line);
    ck_assert_msg(s && strcmp(s, status) == 0, "line %d: result %zu status %s, want %s (%s)", line, i,
                  s ? s : "null", status,
                  m->u.array.len && YAJL_IS_STRING(m->u.array.values[0])
                      ? YAJL_GET_STRING(m->u.array.values[0]) : "no message");
    const char *m0 = m->u.array.len ? YAJL_GET_STRING(m->u.array.values[0]) : NULL;
    if (msg) {
        ck_assert_msg(m->u.array.len == 1 && m0 && strcmp(m0, msg) == 0,
                      "line %d: result %zu messages (%zu) %s, want %s", line, i, m->u.array.len,
                      m0 ? m0 : "none", msg);
    } else {
        ck_assert_msg(m->u.array.len == 0, "line %d: result %zu has messages: %s", line, i,
                      m0 ? m0 : "?");
    }
}
#define expect(arr, i, guid, status, msg) expect_at(arr, i, guid, status, msg, __LINE__)

static char *value1(const char *sql, const char *p1)
{
    const char *p[] = {p1};
    char *v = pg_value(sql, 1, p);
    ck_assert_msg(v != NULL, "no row: %s", sql);
    return v;
}

static void assert_value(const char *sql, const char *p1, const char *want)
{
    char *v = value1(sql, p1);
    ck_assert_msg(strcmp(v, want) == 0, "%s [%s]: %s, want %s", sql, p1, v, want);
    free(v);
}

static char *forbidden_msg(const char *login, const char *mcod)
{
    return xasprintf("Учётной записи %s не разрешено передавать данные ЛПУ %s", login, mcod);
}

static char *resource_json(const char *guid, const char *lpu, const char *family)
{
    return xasprintf("{\"guid\":\"%s\",\"lpuGuid\":\"%s\",\"resType\":\"Doctor\",\"family\":\"%s\","
                     "\"name\":\"Анна\",\"patronymic\":\"Ивановна\",\"doctorRole\":\"Врач-терапевт\","
                     "\"speciality\":{\"code\":\"27\",\"name\":\"Терапия\"},\"room\":\"12\",\"flat\":1,"
                     "\"ageMin\":18,\"ageMax\":99,\"gender\":null,\"dispensaryOnly\":false,"
                     "\"directionOnly\":false}",
                     guid, lpu, family);
}

static char *cell_json(const char *guid, const char *res, const char *begin, const char *end,
                       const char *extra)
{
    return xasprintf("{\"guid\":\"%s\",\"resourceGuid\":\"%s\",\"begin\":\"%s\",\"end\":\"%s\","
                     "\"busyType\":{\"name\":\"Приём по записи\",\"type\":1,\"code\":\"4\"},"
                     "\"flagAccess\":[\"Registry\",\"Internet\"]%s}",
                     guid, res, begin, end, extra ? extra : "");
}

/* A resource of 470102 made through the API, for tests that need one. */
static char *make_resource(void)
{
    char *g = new_guid();
    char *item = resource_json(g, LPU_470102, "Тестова");
    char *body = xasprintf("[%s]", item);
    yajl_val v = results(up("resources", auth_470102, body), 1);
    expect(v, 0, g, "Uploaded", NULL);
    yajl_tree_free(v);
    free(body);
    free(item);
    return g;
}

/* ------------------------------------------------------------------ */

START_TEST(auth_content_type_json_and_size)
{
    const char *body = "[]";
    struct http_resp *r = up("lpus", NULL, body);
    assert_error(r, 401, "4120", MSG_4120, "no credentials");
    ck_assert_ptr_nonnull(http_header(r, "WWW-Authenticate"));
    http_free(r);
    char *wrong = basic_header("mis-470102", "Demo-Only-Secret-Wrong");
    r = up("resources", wrong, body);
    assert_error(r, 401, "4120", MSG_4120, "wrong password");
    http_free(r);
    free(wrong);

    const char *h[] = {"Content-Type: text/plain", auth_470102, NULL};
    r = http_request("POST", "/mis/v1/cells", h, "[]");
    assert_error(r, 415, "4115", "Тело запроса должно иметь тип application/json", "text/plain");
    http_free(r);
    const char *h2[] = {auth_470102, NULL};
    r = http_request("POST", "/mis/v1/cells", h2, "[]");
    assert_error(r, 415, "4115", "Тело запроса должно иметь тип application/json", "no type");
    http_free(r);
    const char *h3[] = {"Content-Type: Application/JSON; charset=utf-8", auth_470102, NULL};
    r = http_request("POST", "/mis/v1/cells", h3, "[]");
    ck_assert_msg(r->status == 200 && strcmp(r->body, "[]") == 0, "charset: %d %s", r->status, show(r));
    http_free(r);

    r = up("referrals", auth_470102, "[{\"guid\":");
    ck_assert_msg(r->status == 400, "bad JSON: %d", r->status);
    yajl_val e = jbody(r, "bad JSON");
    ck_assert_str_eq(jstr(e, "Message_code"), "4110");
    ck_assert_msg(strncmp(jstr(e, "Message"), "Тело запроса не является корректным JSON: ", 40) == 0,
                  "%s", jstr(e, "Message"));
    yajl_tree_free(e);
    http_free(r);
    /* Nothing of the body is read before the credential: 401, not 400. */
    r = up("referrals", NULL, "[{\"guid\":");
    assert_error(r, 401, "4120", MSG_4120, "bad JSON without credentials");
    http_free(r);
    r = up("dispensary", auth_470102, "{\"items\":[]}");
    assert_error(r, 400, "4110",
                 "Тело запроса не является корректным JSON: ожидается массив элементов [...]", "object");
    http_free(r);

    /* 1001 items: refused whole, after authentication, nothing read. */
    struct buf big;
    buf_init(&big);
    buf_puts(&big, "[");
    for (int i = 0; i < 1001; i++)
        buf_puts(&big, i ? ",{}" : "{}");
    buf_puts(&big, "]");
    r = up("cells", auth_470102, big.data);
    assert_error(r, 413, "4114", "В одном запросе не более 1000 элементов", "batch");
    http_free(r);
    r = up("cells", NULL, big.data);
    assert_error(r, 401, "4120", MSG_4120, "batch without credentials");
    http_free(r);
    buf_free(&big);

    /* A comment hid 400,000 levels from the depth limit and the gateway
     * died of its stack: now refused like any other bad JSON, and the
     * gateway lives. */
    struct buf deep;
    buf_init(&deep);
    buf_puts(&deep, "/*\"*/");
    for (int i = 0; i < 400000; i++)
        buf_puts(&deep, "[");
    for (int i = 0; i < 400000; i++)
        buf_puts(&deep, "]");
    r = up("lpus", auth_470102, deep.data);
    ck_assert_msg(r->status == 400, "comment-hidden depth: %d", r->status);
    e = jbody(r, "comment-hidden depth");
    ck_assert_str_eq(jstr(e, "Message_code"), "4110");
    ck_assert_msg(strstr(jstr(e, "Message"), "comment") != NULL, "%s", jstr(e, "Message"));
    yajl_tree_free(e);
    http_free(r);
    buf_free(&deep);
    r = http_get("/health", NULL, NULL);
    ck_assert_int_eq(r->status, 200);
    http_free(r);

    /* GET on an upload path is a wrong method, not an unknown path. */
    r = http_get("/mis/v1/lpus", auth_470102, NULL);
    ck_assert_int_eq(r->status, 405);
    http_free(r);
}
END_TEST

START_TEST(lpus_upload_idempotent_and_owned)
{
    char *g = new_guid();
    /* A login of its own with a МКОД no LPU has yet. */
    char mcod[16];
    snprintf(mcod, sizeof(mcod), "9%06u", ((unsigned)getpid() * 7919u + (unsigned)rand()) % 1000000u);
    char *login = xasprintf("e2e-refdata-%d-%d", (int)getpid(), rand() % 100000);
    char *cmd = xasprintf("echo 'refdata test password' | '%s' user add %s --lpu %s >/dev/null 2>&1",
                          env("MIPGW_TEST_BIN"), login, mcod);
    ck_assert_int_eq(system(cmd), 0);
    char *auth = basic_header(login, "refdata test password");

    char *body = xasprintf("[{\"guid\":\"%s\",\"mcod\":\"%s\",\"name\":\"Тестовая поликлиника\","
                           "\"fullName\":\"ГБУЗ «Тестовая»\",\"address\":\"ул. Тестовая, 1\","
                           "\"phone\":\"8-496-000-00-00\",\"isChildrenPoliclinic\":true,"
                           "\"site\":\"https://t.example.org\"}]",
                           g, mcod);
    yajl_val v = results(up("lpus", auth, body), 1);
    expect(v, 0, g, "Uploaded", NULL);
    yajl_tree_free(v);
    char *want = xasprintf("%s|Тестовая поликлиника|true|true|https://t.example.org", mcod);
    assert_value("SELECT mcod || '|' || name || '|' || is_children || '|' || is_active || '|'"
                 " || (attrs->>'site') FROM lpus WHERE guid = $1::uuid",
                 g, want);
    free(want);

    /* Re-sent: nothing changes, updated_at stays. */
    char *t1 = value1("SELECT updated_at::text FROM lpus WHERE guid = $1::uuid", g);
    v = results(up("lpus", auth, body), 1);
    expect(v, 0, g, "Unchanged", NULL);
    yajl_tree_free(v);
    assert_value("SELECT updated_at::text FROM lpus WHERE guid = $1::uuid", g, t1);

    /* A change moves updated_at. */
    char *body2 = xasprintf("[{\"guid\":\"%s\",\"mcod\":\"%s\",\"name\":\"Переименована\"}]", g, mcod);
    v = results(up("lpus", auth, body2), 1);
    expect(v, 0, g, "Uploaded", NULL);
    yajl_tree_free(v);
    char *t2 = value1("SELECT updated_at::text FROM lpus WHERE guid = $1::uuid", g);
    ck_assert_str_ne(t1, t2);
    assert_value("SELECT name || '|' || is_children FROM lpus WHERE guid = $1::uuid", g,
                 "Переименована|false");

    /* Another LPU's МКОД in an item: 403 for the whole batch, nothing
     * written -- not even the good item before it. */
    char *g2 = new_guid();
    char *body3 = xasprintf("[{\"guid\":\"%s\",\"mcod\":\"%s\",\"name\":\"Снова\"},"
                            "{\"guid\":\"%s\",\"mcod\":\"330501\",\"name\":\"Чужая\"}]",
                            g, mcod, g2);
    struct http_resp *r = up("lpus", auth, body3);
    char *fm = forbidden_msg(login, "330501");
    assert_error(r, 403, "4121", fm, "foreign МКОД");
    http_free(r);
    free(fm);
    assert_value("SELECT name FROM lpus WHERE guid = $1::uuid", g, "Переименована");
    assert_value("SELECT count(*)::text FROM lpus WHERE guid = $1::uuid", g2, "0");

    /* Taking over an existing LPU by giving its guid one's own МКОД: the
     * LPU's present МКОД decides, in PostgreSQL. */
    char *body4 = xasprintf("[{\"guid\":\"" LPU_330501 "\",\"mcod\":\"%s\",\"name\":\"Захват\"}]", mcod);
    r = up("lpus", auth, body4);
    fm = forbidden_msg(login, "330501");
    assert_error(r, 403, "4121", fm, "take-over");
    http_free(r);
    free(fm);
    assert_value("SELECT mcod FROM lpus WHERE guid = $1::uuid", LPU_330501, "330501");

    /* One bad item among good ones; an МКОД another LPU has is an Error. */
    char *g3 = new_guid();
    char *body5 = xasprintf("[{\"guid\":\"%s\",\"mcod\":\"%s\",\"name\":\"Переименована\"},"
                            "{\"guid\":\"%s\",\"name\":5},"
                            "{\"guid\":\"%s\",\"mcod\":\"%s\",\"name\":\"Дубль МКОД\"}]",
                            g, mcod, g3, g3, mcod);
    v = results(up("lpus", auth, body5), 3);
    expect(v, 0, g, "Unchanged", NULL);
    expect(v, 2, g3, "Error", "mcod: МКОД уже принадлежит другому ЛПУ");
    yajl_val m = jget(v->u.array.values[1], "ValidationMessage");
    ck_assert_int_eq(m->u.array.len, 2);
    ck_assert_str_eq(jstr(v->u.array.values[1], "Status"), "NotValid");
    ck_assert_str_eq(YAJL_GET_STRING(m->u.array.values[0]), "mcod: обязательное поле");
    ck_assert_str_eq(YAJL_GET_STRING(m->u.array.values[1]), "name: должно быть строкой");
    yajl_tree_free(v);
    assert_value("SELECT count(*)::text FROM lpus WHERE guid = $1::uuid", g3, "0");

    /* A number jsonb cannot hold spoils only its own item: the good one
     * beside it is written (it used to be a 500 for the whole batch). */
    char *mixed = xasprintf("[{\"guid\":\"%s\",\"mcod\":\"%s\",\"name\":\"С числом рядом\"},"
                            "{\"guid\":\"%s\",\"mcod\":\"%s\",\"name\":\"Число\",\"fcod\":1e200000}]",
                            g, mcod, g3, mcod);
    v = results(up("lpus", auth, mixed), 2);
    expect(v, 0, g, "Uploaded", NULL);
    expect(v, 1, g3, "NotValid", "fcod: число вне допустимого диапазона (не длиннее 40 знаков, порядок от -308 до 308)");
    yajl_tree_free(v);
    assert_value("SELECT name FROM lpus WHERE guid = $1::uuid", g, "С числом рядом");
    free(mixed);

    free(body5);
    free(g3);
    free(body4);
    free(body3);
    free(g2);
    free(t1);
    free(t2);
    free(body2);
    free(body);
    free(cmd);
    free(login);
    free(auth);
    free(g);
}
END_TEST

START_TEST(resources_ownership_and_idempotence)
{
    char *g1 = new_guid(), *g2 = new_guid(), *g3 = new_guid(), *unknown_lpu = new_guid();
    /* mis-470102 writing a resource of 330501: 403, nothing written. */
    char *r330 = resource_json(g1, LPU_330501, "Чужой");
    char *body = xasprintf("[%s]", r330);
    struct http_resp *r = up("resources", auth_470102, body);
    char *fm = forbidden_msg("mis-470102", "330501");
    assert_error(r, 403, "4121", fm, "foreign resource");
    http_free(r);
    assert_value("SELECT count(*)::text FROM resources WHERE guid = $1::uuid", g1, "0");
    /* The region login may. */
    yajl_val v = results(up("resources", auth_region, body), 1);
    expect(v, 0, g1, "Uploaded", NULL);
    yajl_tree_free(v);
    assert_value("SELECT lpu_guid::text || '|' || res_type || '|' || family || '|' || spec_code || '|'"
                 " || room || '|' || floor || '|' || age_min || '|' || age_max || '|'"
                 " || coalesce(gender::text, 'any') || '|' || referral_only"
                 " FROM resources WHERE guid = $1::uuid",
                 g1, LPU_330501 "|Doctor|Чужой|27|12|1|18|99|any|false");
    /* Nor may mis-470102 move it to its own LPU: its LPU now decides. */
    char *moved = resource_json(g1, LPU_470102, "Чужой");
    free(body);
    body = xasprintf("[%s]", moved);
    r = up("resources", auth_470102, body);
    assert_error(r, 403, "4121", fm, "moving a foreign resource");
    http_free(r);
    assert_value("SELECT lpu_guid::text FROM resources WHERE guid = $1::uuid", g1, LPU_330501);

    /* Good, bad and unknown-LPU items in one batch. */
    char *good = resource_json(g2, LPU_470102, "Хорошая");
    char *nolpu = resource_json(g3, unknown_lpu, "Безлпу");
    free(body);
    body = xasprintf("[%s,{\"guid\":\"%s\",\"lpuGuid\":\"" LPU_470102 "\",\"resType\":\"Room\","
                     "\"ageMin\":60,\"ageMax\":10},%s]",
                     good, g3, nolpu);
    v = results(up("resources", auth_470102, body), 3);
    expect(v, 0, g2, "Uploaded", NULL);
    yajl_val m = jget(v->u.array.values[1], "ValidationMessage");
    ck_assert_str_eq(jstr(v->u.array.values[1], "Status"), "NotValid");
    ck_assert_int_eq(m->u.array.len, 2);
    ck_assert_str_eq(YAJL_GET_STRING(m->u.array.values[0]), "speciality: обязательное поле");
    ck_assert_str_eq(YAJL_GET_STRING(m->u.array.values[1]), "ageMin: не может быть больше ageMax");
    char *nf = xasprintf("lpuGuid: ЛПУ %s не найдено", unknown_lpu);
    expect(v, 2, g3, "NotValid", nf);
    yajl_tree_free(v);
    assert_value("SELECT count(*)::text FROM resources WHERE guid = $1::uuid", g3, "0");

    /* Re-sent: all unchanged, updated_at kept, no new rows. */
    char *t = value1("SELECT updated_at::text FROM resources WHERE guid = $1::uuid", g2);
    char *n = pg_value("SELECT count(*)::text FROM resources", 0, NULL);
    v = results(up("resources", auth_470102, body), 3);
    expect(v, 0, g2, "Unchanged", NULL);
    expect(v, 2, g3, "NotValid", nf);
    yajl_tree_free(v);
    assert_value("SELECT updated_at::text FROM resources WHERE guid = $1::uuid", g2, t);
    char *n2 = pg_value("SELECT count(*)::text FROM resources", 0, NULL);
    ck_assert_str_eq(n, n2);

    free(n);
    free(n2);
    free(t);
    free(nf);
    free(good);
    free(nolpu);
    free(moved);
    free(fm);
    free(body);
    free(r330);
    free(g1);
    free(g2);
    free(g3);
    free(unknown_lpu);
}
END_TEST

/* Books a cell directly, as the booking capability will: Иванов's card. */
static char *book(const char *cell)
{
    char *b = new_guid();
    const char *p[] = {b, cell, IVANOV_MKAB};
    PQclear(pg_exec("INSERT INTO bookings (guid, cell_guid, mkab_guid, person_guid)"
                    " SELECT $1::uuid, $2::uuid, guid, person_guid FROM medical_cards"
                    " WHERE guid = $3::uuid",
                    3, p));
    return b;
}

START_TEST(cells_upload_and_booked_cells)
{
    char *res = make_resource();
    char *c1 = new_guid(), *c2 = new_guid(), *c3 = new_guid(), *c4 = new_guid();
    char *i1 = cell_json(c1, res, "2031-03-03T09:00:00+03:00", "2031-03-03T09:15:00+03:00", NULL);
    char *i2 = cell_json(c2, res, "2031-03-03T09:15:00+03:00", "2031-03-03T09:30:00+03:00", NULL);
    char *i3 = cell_json(c3, res, "2031-03-03T06:30:00Z", "2031-03-03T06:45:00Z", NULL);
    char *body = xasprintf("[%s,%s,%s]", i1, i2, i3);
    yajl_val v = results(up("cells", auth_470102, body), 3);
    expect(v, 0, c1, "Uploaded", NULL);
    expect(v, 1, c2, "Uploaded", NULL);
    expect(v, 2, c3, "Uploaded", NULL);
    yajl_tree_free(v);
    assert_value("SELECT to_char(begin_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') || '|'"
                 " || to_char(end_at AT TIME ZONE 'UTC', 'HH24:MI') || '|' || busy_name || '|'"
                 " || busy_type || '|' || busy_code || '|' || array_to_string(access, ',')"
                 " FROM cells WHERE guid = $1::uuid",
                 c1, "2031-03-03 06:00|06:15|Приём по записи|1|4|Registry,Internet");
    /* Re-sent with the times written in another zone: the same instants. */
    char *t = value1("SELECT updated_at::text FROM cells WHERE guid = $1::uuid", c1);
    char *i1z = cell_json(c1, res, "2031-03-03T06:00:00Z", "2031-03-03T06:15:00.000Z", NULL);
    char *body2 = xasprintf("[%s,%s,%s]", i1z, i2, i3);
    v = results(up("cells", auth_470102, body2), 3);
    expect(v, 0, c1, "Unchanged", NULL);
    expect(v, 1, c2, "Unchanged", NULL);
    expect(v, 2, c3, "Unchanged", NULL);
    yajl_tree_free(v);
    assert_value("SELECT updated_at::text FROM cells WHERE guid = $1::uuid", c1, t);

    /* Booked: neither moved nor deleted; other changes are fine. */
    char *bk = book(c1);
    char *mv = cell_json(c1, res, "2031-03-03T10:00:00+03:00", "2031-03-03T10:15:00+03:00", NULL);
    char *del1 = xasprintf("{\"guid\":\"%s\",\"deleted\":true}", c1);
    char *del2 = xasprintf("{\"guid\":\"%s\",\"deleted\":true}", c2);
    char *body3 = xasprintf("[%s,%s,%s]", mv, del1, del2);
    v = results(up("cells", auth_470102, body3), 3);
    expect(v, 0, c1, "Error",
           "begin: на ячейку записан пациент, перенести её (resourceGuid, begin, end) нельзя");
    expect(v, 1, c1, "Error", "deleted: на ячейку записан пациент, удалить её нельзя");
    expect(v, 2, c2, "Deleted", NULL);
    yajl_tree_free(v);
    assert_value("SELECT to_char(begin_at AT TIME ZONE 'UTC', 'HH24:MI') FROM cells WHERE guid = $1::uuid",
                 c1, "06:00");
    assert_value("SELECT count(*)::text FROM cells WHERE guid = $1::uuid", c2, "0");
    /* Closed to the internet, without a busy type: not a move. */
    char *closed = xasprintf("{\"guid\":\"%s\",\"resourceGuid\":\"%s\",\"begin\":\"2031-03-03T09:00:00+03:00\","
                       "\"end\":\"2031-03-03T09:15:00+03:00\",\"flagAccess\":[\"Registry\"]}",
                       c1, res);
    char *body4 = xasprintf("[%s,%s]", closed, del2);
    v = results(up("cells", auth_470102, body4), 2);
    expect(v, 0, c1, "Uploaded", NULL);
    expect(v, 1, c2, "Unchanged", NULL);
    yajl_tree_free(v);
    assert_value("SELECT array_to_string(access, ',') || '|' || busy_name FROM cells WHERE guid = $1::uuid",
                 c1, "Registry|");

    /* Two cells at one time of one resource; end before begin; an unknown
     * resource. */
    char *clash = cell_json(c4, res, "2031-03-03T09:30:00+03:00", "2031-03-03T09:45:00+03:00", NULL);
    char *body5 = xasprintf("[%s]", clash);
    v = results(up("cells", auth_470102, body5), 1);
    expect(v, 0, c4, "Error", "begin: у ресурса уже есть другая ячейка с этим временем начала");
    yajl_tree_free(v);
    char *nores = new_guid();
    char *i5 = cell_json(c4, nores, "2031-03-03T11:00:00+03:00", "2031-03-03T11:15:00+03:00", NULL);
    char *i6 = cell_json(c4, res, "2031-03-03T11:00:00+03:00", "2031-03-03T10:45:00+03:00", NULL);
    char *body6 = xasprintf("[%s,%s]", i5, i6);
    v = results(up("cells", auth_470102, body6), 2);
    char *nf = xasprintf("resourceGuid: ресурс %s не найден", nores);
    expect(v, 0, c4, "NotValid", nf);
    expect(v, 1, c4, "NotValid", "end: должно быть позже begin");
    yajl_tree_free(v);

    /* A cancelled booking frees the cell: it may move then. */
    const char *p[] = {bk};
    PQclear(pg_exec("UPDATE bookings SET status = 'cancelled' WHERE guid = $1::uuid", 1, p));
    char *body7 = xasprintf("[%s]", mv);
    v = results(up("cells", auth_470102, body7), 1);
    expect(v, 0, c1, "Uploaded", NULL);
    yajl_tree_free(v);
    assert_value("SELECT to_char(begin_at AT TIME ZONE 'UTC', 'HH24:MI') FROM cells WHERE guid = $1::uuid",
                 c1, "07:00");

    /* A cell of 330501's resource is not mis-470102's to write. */
    char *i8 = cell_json(c4, RES_CARDIO_330501, "2031-03-03T11:00:00+03:00",
                         "2031-03-03T11:15:00+03:00", NULL);
    char *body8 = xasprintf("[%s]", i8);
    struct http_resp *r = up("cells", auth_470102, body8);
    char *fm = forbidden_msg("mis-470102", "330501");
    assert_error(r, 403, "4121", fm, "foreign cell");
    http_free(r);
    assert_value("SELECT count(*)::text FROM cells WHERE guid = $1::uuid", c4, "0");

    free(fm);
    free(i8);
    free(body8);
    free(body7);
    free(nf);
    free(body6);
    free(i5);
    free(i6);
    free(nores);
    free(body5);
    free(clash);
    free(body4);
    free(closed);
    free(body3);
    free(del1);
    free(del2);
    free(mv);
    free(bk);
    free(body2);
    free(i1z);
    free(t);
    free(body);
    free(i1);
    free(i2);
    free(i3);
    free(c1);
    free(c2);
    free(c3);
    free(c4);
    free(res);
}
END_TEST

START_TEST(referrals_upload)
{
    char *g1 = new_guid(), *g2 = new_guid(), *g3 = new_guid(), *g4 = new_guid();
    char *body = xasprintf(
        "[{\"guid\":\"%s\",\"number\":\"T-1\",\"personSnils\":\"" IVANOV_SNILS "\","
        "\"lpuFromGuid\":\"" LPU_470102 "\",\"lpuToGuid\":\"" LPU_330501 "\","
        "\"resourceGuid\":\"" RES_CARDIO_330501 "\",\"issued\":\"2026-11-01\",\"validDays\":30,"
        "\"type\":\"consultation\"},"
        "{\"guid\":\"%s\",\"number\":\"T-2\",\"personSnils\":\"" NOBODY_SNILS "\","
        "\"lpuFromGuid\":\"" LPU_470102 "\",\"lpuToGuid\":\"" LPU_330501 "\","
        "\"speciality\":{\"code\":\"9\"},\"issued\":\"2026-11-01\",\"validDays\":30},"
        "{\"guid\":\"%s\",\"number\":\"T-3\",\"mkabGuid\":\"" IVANOV_MKAB "\","
        "\"lpuFromGuid\":\"" LPU_470102 "\",\"lpuToGuid\":\"" LPU_330501 "\","
        "\"resourceGuid\":\"" RES_THERAPIST "\",\"issued\":\"2026-11-01\",\"validUntil\":\"2027-01-01\"},"
        "{\"guid\":\"%s\",\"number\":\"T-4\",\"personSnils\":\"" IVANOV_SNILS "\","
        "\"lpuFromGuid\":\"" LPU_470102 "\",\"lpuToGuid\":\"" LPU_330501 "\"}]",
        g1, g2, g3, g4);
    yajl_val v = results(up("referrals", auth_470102, body), 4);
    expect(v, 0, g1, "Uploaded", NULL);
    expect(v, 1, g2, "NotValid", "personSnils: пациент не найден");
    expect(v, 2, g3, "NotValid", "resourceGuid: ресурс " RES_THERAPIST " не найден в ЛПУ lpuToGuid");
    ck_assert_str_eq(jstr(v->u.array.values[3], "Status"), "NotValid");
    yajl_tree_free(v);
    /* The speciality comes from the resource; validity from validDays. */
    assert_value("SELECT number || '|' || spec_code || '|' || spec_name || '|' || kind || '|'"
                 " || issued_on || '|' || valid_until || '|' || (person_guid = (SELECT person_guid"
                 " FROM medical_cards WHERE guid = '" IVANOV_MKAB "'))"
                 " FROM referrals WHERE guid = $1::uuid",
                 g1, "T-1|9|Кардиология|consultation|2026-11-01|2026-12-01|true");
    char *t = value1("SELECT updated_at::text FROM referrals WHERE guid = $1::uuid", g1);
    v = results(up("referrals", auth_470102, body), 4);
    expect(v, 0, g1, "Unchanged", NULL);
    yajl_tree_free(v);
    assert_value("SELECT updated_at::text FROM referrals WHERE guid = $1::uuid", g1, t);

    /* Neither side is mis-470102's: 403. */
    char *body2 = xasprintf("[{\"guid\":\"%s\",\"number\":\"T-5\",\"personSnils\":\"" IVANOV_SNILS "\","
                            "\"lpuFromGuid\":\"" LPU_330501 "\",\"lpuToGuid\":\"" LPU_470103 "\","
                            "\"speciality\":{\"code\":\"68\"},\"issued\":\"2026-11-01\","
                            "\"validDays\":10}]",
                            g4);
    struct http_resp *r = up("referrals", auth_470102, body2);
    char *fm = forbidden_msg("mis-470102", "470103");
    assert_error(r, 403, "4121", fm, "foreign referral");
    http_free(r);
    assert_value("SELECT count(*)::text FROM referrals WHERE guid = $1::uuid", g4, "0");
    v = results(up("referrals", auth_region, body2), 1);
    expect(v, 0, g4, "Uploaded", NULL);
    yajl_tree_free(v);

    /* Deleted, then deleted again. */
    char *body3 = xasprintf("[{\"guid\":\"%s\",\"deleted\":true}]", g1);
    v = results(up("referrals", auth_470102, body3), 1);
    expect(v, 0, g1, "Deleted", NULL);
    yajl_tree_free(v);
    v = results(up("referrals", auth_470102, body3), 1);
    expect(v, 0, g1, "Unchanged", NULL);
    yajl_tree_free(v);
    assert_value("SELECT count(*)::text FROM referrals WHERE guid = $1::uuid", g1, "0");

    free(fm);
    free(body3);
    free(body2);
    free(t);
    free(body);
    free(g1);
    free(g2);
    free(g3);
    free(g4);
}
END_TEST

START_TEST(dispensary_upload)
{
    const char *body = "[{\"personSnils\":\"" IVANOV_SNILS "\",\"resourceGuid\":\"" RES_CARDIO_DISP "\"},"
                       "{\"personSnils\":\"" NOBODY_SNILS "\",\"resourceGuid\":\"" RES_CARDIO_DISP "\"},"
                       "{\"resourceGuid\":\"" RES_CARDIO_DISP "\"}]";
    const char *count = "SELECT count(*)::text FROM dispensary d JOIN medical_cards c"
                        " ON c.person_guid = d.person_guid WHERE c.guid = '" IVANOV_MKAB "'"
                        " AND d.resource_guid = $1::uuid";
    yajl_val v = results(up("dispensary", auth_470102, body), 3);
    expect(v, 0, NULL, "Uploaded", NULL);
    expect(v, 1, NULL, "NotValid", "personSnils: пациент не найден");
    expect(v, 2, NULL, "NotValid", "personSnils: обязательное поле (или personGuid, или mkabGuid)");
    yajl_tree_free(v);
    assert_value(count, RES_CARDIO_DISP, "1");
    v = results(up("dispensary", auth_470102, body), 3);
    expect(v, 0, NULL, "Unchanged", NULL);
    yajl_tree_free(v);
    const char *del = "[{\"mkabGuid\":\"" IVANOV_MKAB "\",\"resourceGuid\":\"" RES_CARDIO_DISP "\","
                      "\"deleted\":true}]";
    v = results(up("dispensary", auth_470102, del), 1);
    expect(v, 0, NULL, "Deleted", NULL);
    yajl_tree_free(v);
    assert_value(count, RES_CARDIO_DISP, "0");
    v = results(up("dispensary", auth_470102, del), 1);
    expect(v, 0, NULL, "Unchanged", NULL);
    yajl_tree_free(v);

    struct http_resp *r = up("dispensary", auth_470102,
                             "[{\"personSnils\":\"" IVANOV_SNILS "\",\"resourceGuid\":\"" RES_CARDIO_330501 "\"}]");
    char *fm = forbidden_msg("mis-470102", "330501");
    assert_error(r, 403, "4121", fm, "foreign dispensary");
    http_free(r);
    free(fm);
    assert_value(count, RES_CARDIO_330501, "0");
}
END_TEST

/* A full batch (mis.max_batch_items = 1000) of cells in one request and one
 * round trip, then the same again: all Unchanged. */
START_TEST(full_batch_of_cells)
{
    char *res = make_resource();
    struct buf body;
    buf_init(&body);
    buf_puts(&body, "[");
    for (int i = 0; i < 1000; i++) {
        char begin[32], end[32], cell[37];
        int64_t t = 1956528000 + (int64_t)i * 900; /* 2032-01-01T00:00:00Z, 15-minute steps */
        refdata_format_utc(t, begin);
        refdata_format_utc(t + 900, end);
        refdata_cell_guid(res, begin, cell);
        char *item = cell_json(cell, res, begin, end, NULL);
        buf_printf(&body, "%s%s", i ? "," : "", item);
        free(item);
    }
    buf_puts(&body, "]");
    double t0 = mono_ms();
    struct http_resp *r = up("cells", auth_470102, body.data);
    double ms = mono_ms() - t0;
    yajl_val v = results(r, 1000);
    for (size_t i = 0; i < 1000; i++)
        ck_assert_str_eq(jstr(v->u.array.values[i], "Status"), "Uploaded");
    yajl_tree_free(v);
    assert_value("SELECT count(*)::text FROM cells WHERE resource_guid = $1::uuid", res, "1000");
    r = up("cells", auth_470102, body.data);
    v = results(r, 1000);
    for (size_t i = 0; i < 1000; i++)
        ck_assert_str_eq(jstr(v->u.array.values[i], "Status"), "Unchanged");
    yajl_tree_free(v);
    fprintf(stderr, "e2e_refdata: 1000 new cells uploaded in %.0f ms\n", ms);
    buf_free(&body);
    free(res);
}
END_TEST

/* ------------------------------------------------------------------ */
/* The demo import */

static const char *demo_path(void)
{
    static char path[1024];
    const char *top = getenv("top_srcdir");
    snprintf(path, sizeof(path), "%s/etc/demo.json", top ? top : "..");
    return path;
}

#define DEMO_CELLS_SQL \
    "SELECT count(*)::text FROM cells WHERE resource_guid = $1::uuid" \
    " AND extract(isodow FROM begin_at AT TIME ZONE 'Europe/Moscow') <= 5" \
    " AND to_char(begin_at AT TIME ZONE 'Europe/Moscow', 'HH24:MI') BETWEEN '08:00' AND '13:45'" \
    " AND end_at - begin_at = interval '15 minutes'" \
    " AND (begin_at AT TIME ZONE 'Europe/Moscow')::date" \
    "     BETWEEN (now() AT TIME ZONE 'Europe/Moscow')::date" \
    "     AND (now() AT TIME ZONE 'Europe/Moscow')::date + 20"

#define STATE_SQL \
    "SELECT (SELECT count(*) FROM lpus) || '|' || (SELECT count(*) FROM resources) || '|'" \
    " || (SELECT count(*) FROM cells) || '|' || (SELECT count(*) FROM referrals) || '|'" \
    " || (SELECT count(*) FROM dispensary) || '|' || (SELECT max(updated_at) FROM lpus) || '|'" \
    " || (SELECT max(updated_at) FROM resources) || '|' || (SELECT max(updated_at) FROM cells)" \
    " || '|' || (SELECT max(updated_at) FROM referrals) || '|' || (SELECT max(updated_at) FROM mis_users)"

START_TEST(demo_import_loaded_and_idempotent)
{
    assert_value("SELECT string_agg(mcod || ':' || is_children, ',' ORDER BY mcod) FROM lpus"
                 " WHERE guid = ANY ($1::uuid[])",
                 "{" LPU_470102 "," LPU_470103 "," LPU_330501 "}",
                 "330501:false,470102:false,470103:true");
    assert_value("SELECT attrs->>'fullName' FROM lpus WHERE guid = $1::uuid", LPU_470102,
                 "ГБУЗ МО «Городская поликлиника №1»");
    assert_value("SELECT count(*)::text FROM resources WHERE lpu_guid = ANY ($1::uuid[])"
                 " AND guid IN ('19ebd6d6-2bbf-45c1-a8fb-2c7747f3beb3','a03d307d-6721-4f17-8bef-5261fde7cc69',"
                 " '3ddb15aa-16f4-48af-88e5-1a3ec706cab6','765ebf61-55df-4a54-9303-a9d9be8f8f87',"
                 " 'fd96c787-643e-4a52-88f9-9bc428170acc','56ce2c8d-4c61-4351-ae00-236d94ad41d7',"
                 " '6b6ad8e3-5a6d-45c5-bce4-ce7dcc58d8e3','72dd572d-a203-4734-8028-c918e0726b89')",
                 "{" LPU_470102 "," LPU_470103 "," LPU_330501 "}", "8");
    assert_value("SELECT res_type || '|' || age_min || '|' || gender || '|' || floor FROM resources"
                 " WHERE guid = $1::uuid",
                 "765ebf61-55df-4a54-9303-a9d9be8f8f87", "Room|40|2|3");
    assert_value("SELECT dispensary_only || '|' || referral_only FROM resources WHERE guid = $1::uuid",
                 RES_CARDIO_DISP, "true|false");
    /* 21 days ahead from today hold exactly 15 weekdays; 08:00-14:00 in
     * 15-minute slots is 24 a day. */
    assert_value(DEMO_CELLS_SQL, RES_THERAPIST, "360");
    assert_value("SELECT count(*)::text FROM cells WHERE resource_guid = $1::uuid", RES_CARDIO_330501,
                 "360");
    assert_value("SELECT number || '|' || valid_until || '|' || kind FROM referrals WHERE guid = $1::uuid",
                 "f375509f-1924-4f38-8aa0-c33ced0a43f9", "330501-000001|2027-11-01|consultation");
    assert_value("SELECT count(*)::text FROM referrals WHERE guid = $1::uuid",
                 "1627f242-c6db-4936-8a14-a92b01d47302", "1");
    assert_value("SELECT string_agg(login || ':' || mcod, ',' ORDER BY login, mcod) FROM mis_user_lpus"
                 " WHERE login LIKE $1",
                 "mis-%", "mis-470102:470102,mis-region:330501,mis-region:470102,mis-region:470103");

    /* Running the import again changes nothing at all. */
    char *before = pg_value(STATE_SQL, 0, NULL);
    char *cmd = xasprintf("'%s' import '%s' >/dev/null 2>&1", env("MIPGW_TEST_BIN"), demo_path());
    int st = system(cmd);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "re-import failed: %s", cmd);
    char *after = pg_value(STATE_SQL, 0, NULL);
    ck_assert_str_eq(before, after);
    free(before);
    free(after);
    free(cmd);
}
END_TEST

static void setup(void)
{
    auth_470102 = basic_header("mis-470102", "Demo-Only-Secret-470102");
    auth_region = basic_header("mis-region", "Demo-Only-Secret-Region");
}

static void teardown(void)
{
    free(auth_470102);
    free(auth_region);
}

static Suite *suite(void)
{
    Suite *s = suite_create("e2e_refdata");
    TCase *t = tcase_create("uploads");
    tcase_set_timeout(t, 60);
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, auth_content_type_json_and_size);
    tcase_add_test(t, lpus_upload_idempotent_and_owned);
    tcase_add_test(t, resources_ownership_and_idempotence);
    tcase_add_test(t, cells_upload_and_booked_cells);
    tcase_add_test(t, referrals_upload);
    tcase_add_test(t, dispensary_upload);
    tcase_add_test(t, full_batch_of_cells);
    tcase_add_test(t, demo_import_loaded_and_idempotent);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    srand((unsigned)getpid());
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
