/* check_e2e_hostile.c - hostile and heavy input end to end (issue 6,
 * "Hostile and heavy input"):
 *   - bodies over the limit on every POST family: the family's own 413 from
 *     the catalogue between its limit and http.max_body_size, and libevent's
 *     bare 413, at once and with no body sent, above http.max_body_size;
 *   - headers over http.max_header_size: one huge header, many headers;
 *   - JSON nested 10,000 deep on every JSON endpoint;
 *   - invalid UTF-8 in every string field of a valid body of each family, and
 *     numbers where strings belong and the reverse, field by field;
 *   - 100,000 query parameters;
 *   - 10,000 idle connections while other clients are served (p99), and
 *     their drop after http.read_timeout_ms;
 *   - slow clients sending one byte a second;
 *   - clients that disconnect while their booking is in flight, also with
 *     PostgreSQL made slow by a row lock the test holds.
 *
 * Runs under tests/e2e.sh (see check_e2e.c for the environment), last of
 * the suites. The tests that need settings of their own (read timeout,
 * header limit, booking lock lifetime) start gateways of their own with
 * gw_spawn; those are stopped with SIGTERM and must exit 0. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "e2e_util.h"
#include "httpc.h"
#include "ids.h"
#include "json.h"

#define TZ "Europe/Moscow"
#define LPU_470102 "c3c977af-c3b4-4517-9d57-50a6844ec660"
#define LPU_330501 "5409f503-f01a-4f2f-a57a-91979fb19f42"
#define RES_THERAPIST "19ebd6d6-2bbf-45c1-a8fb-2c7747f3beb3"  /* Смирнов, 470102 */
#define RES_THERAPIST2 "a03d307d-6721-4f17-8bef-5261fde7cc69" /* Кузнецова, 470102 */
#define RES_CARDIO_REF "6b6ad8e3-5a6d-45c5-bce4-ce7dcc58d8e3" /* Волков, 330501 */
#define REF_FEDOROV "f375509f-1924-4f38-8aa0-c33ced0a43f9"
#define IVANOV_SNILS "123-456-789 64"

#define ENTRY "/api/v2/iemk/doctors/entry"
#define VISITS "/api/v2/iemk/doctors/visits"
#define DIRECTION "/api/v2/directions/visit/" LPU_330501
#define COD "/auth/cod/token"
#define RPGU "/auth/rpgu/token"
#define UR_PATH "/private/cabinet/user_requests"
#define OTP_PATH "/private/cabinet/verifications"
#define REG_PATH "/private/cabinet/registration/user_request"
#define IVANOV_Q "n_pol=5000000000000041&birthday=1985-03-14"
#define FEDOROV_Q "n_pol=5000000000000074&birthday=1960-02-10"

/* This file's directory, for the test data when top_srcdir is not set. */
#define SRCDIR_OF_THIS "tests"
#define MSG_4106 "Слишком много параметров в запросе"
/* Every answer here must come well within this: nothing may hang. */
#define FAST_MS 1000.0

/* ------------------------------------------------------------------ */
/* helpers */

static char *region_auth(void)
{
    return basic_header("mis-region", "Demo-Only-Secret-Region");
}

static char *cabinet_auth(void)
{
    return basic_header("cabinet", "Demo-Only-Secret-Cabinet");
}

static char *token_at(int port, const char *path, const char *query)
{
    char *p = xasprintf("%s?%s", path, query);
    struct http_resp *r = port ? http_get_at(port, p, NULL) : http_get(p, NULL);
    ck_assert_msg(r->status == 200, "%s: %d %s", p, r->status, show(r));
    yajl_val v = jbody(r, p);
    char *t = strdup(jstr(v, "token"));
    yajl_tree_free(v);
    http_free(r);
    free(p);
    return t;
}

static char *bearer(const char *token)
{
    return xasprintf("Authorization: Bearer %s", token);
}

/* POST with JSON and one optional header line, on a port (0: the main one). */
static struct http_resp *post_at(int port, const char *path, const char *hdr, const char *body)
{
    const char *h[] = {"Content-Type: application/json", hdr, NULL};
    return port ? http_request_at(port, "POST", path, h, body) : http_request("POST", path, h, body);
}

/* Fails on no answer, a slow one, or a 5xx. */
static void sane_at(const struct http_resp *r, const char *what, int line)
{
    ck_assert_msg(!r->timed_out && r->status != 0, "line %d: %s: no answer (closed %d, error %d)", line,
                  what, r->closed, r->error);
    ck_assert_msg(r->status < 500, "line %d: %s: status %d %s", line, what, r->status, show(r));
    ck_assert_msg(r->elapsed_ms < FAST_MS, "line %d: %s: took %.0f ms", line, what, r->elapsed_ms);
}
#define SANE(r, what) sane_at(r, what, __LINE__)

/* The eHealth envelope's error.type, or "" (static buffer). */
static const char *eh_type(const struct http_resp *r)
{
    static char out[64];
    out[0] = '\0';
    yajl_val v = jparse_str(r->body);
    if (v) {
        yajl_val e = jget(v, "error");
        yajl_val m = jget(v, "meta");
        if (e && m && jstr(e, "type") && YAJL_IS_INTEGER(jget(m, "code")) &&
            YAJL_GET_INTEGER(jget(m, "code")) == r->status)
            snprintf(out, sizeof(out), "%s", jstr(e, "type"));
        yajl_tree_free(v);
    }
    return out;
}

/* The МИП body's Message_code, or "" (static buffer); checks the shape. */
static const char *mip_code(const struct http_resp *r)
{
    static char out[16];
    out[0] = '\0';
    yajl_val v = jparse_str(r->body);
    if (v) {
        static const char *const keys[] = {"Code", "Message_code", "Message"};
        if (jkeys_exactly(v, keys, 3) && YAJL_IS_INTEGER(jget(v, "Code")) &&
            YAJL_GET_INTEGER(jget(v, "Code")) == r->status && jstr(v, "Message_code"))
            snprintf(out, sizeof(out), "%s", jstr(v, "Message_code"));
        yajl_tree_free(v);
    }
    return out;
}

static void redis_del_cells(void)
{
    char *cmd = xasprintf("redis-cli -p %s EVAL \"for _, k in ipairs(redis.call('KEYS', 'cell:*'))"
                          " do redis.call('DEL', k) end\" 0 >/dev/null 2>&1",
                          env("MIPGW_TEST_REDIS_PORT"));
    ck_assert_int_eq(system(cmd), 0);
    free(cmd);
}

static bool redis_exists(const char *key)
{
    char *cmd = xasprintf("redis-cli -p %s EXISTS '%s'", env("MIPGW_TEST_REDIS_PORT"), key);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char buf[32] = "";
    char *got = fgets(buf, sizeof(buf), p);
    int st = pclose(p);
    free(cmd);
    ck_assert_msg(got && st == 0, "redis-cli EXISTS failed");
    return atoi(buf) != 0;
}

/* Every active booking cancelled, no cell key in Redis (as the booking
 * suite starts each test). */
static void bookings_clean(void)
{
    PQclear(pg_exec("UPDATE bookings SET status = 'cancelled' WHERE status <> 'cancelled'", 0, NULL));
    redis_del_cells();
}

static char *entry_body(const struct test_cell *c, const char *extra)
{
    return xasprintf("{\"lpu_code\":\"470102\",\"doctor_id\":\"%s%s\",\"day\":\"%s\",\"time\":\"%s\"%s}",
                     LPU_470102, c->resource, c->day, c->time, extra);
}

/* A fresh identity for the cabinet: tax id and phone no other test uses. */
static void cab_ident(char tax[11], char phone[14])
{
    static unsigned seq;
    unsigned n = (++seq * 37u + (unsigned)rand()) % 100u;
    unsigned long pid = ((unsigned long)getpid() * 31ul + (unsigned long)time(NULL)) % 10000000ul;
    snprintf(tax, 11, "8%02u%07lu", n, pid);
    snprintf(phone, 14, "+380%02u%07lu", n, pid);
}

static char *ur_body(const char *tax)
{
    return xasprintf("{\"tax_id\":\"%s\",\"first_name\":\"Микола\",\"last_name\":\"Івченко\","
                     "\"email\":\"h%s@example.com\"}", tax, tax);
}

/* A UserRequest's token (the caller frees). */
static char *ur_token(void)
{
    char tax[11], phone[14];
    cab_ident(tax, phone);
    char *auth = cabinet_auth();
    char *b = ur_body(tax);
    struct http_resp *r = post_at(0, UR_PATH, auth, b);
    ck_assert_msg(r->status == 201, "user request: %d %s", r->status, show(r));
    yajl_val v = jbody(r, "user request");
    char *t = strdup(jstr(jget(v, "data"), "token"));
    yajl_tree_free(v);
    http_free(r);
    free(b), free(auth);
    return t;
}

static char *read_source(const char *rel)
{
    const char *top = getenv("top_srcdir");
    char *path = top && *top ? xasprintf("%s/%s", top, rel) : xasprintf("%s/../%s", SRCDIR_OF_THIS, rel);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *buf = malloc(1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    free(path);
    return buf;
}

/* ------------------------------------------------------------------ */
/* The POST families: path, credential, a valid body. */

enum kind { K_PATIENTS, K_MIS, K_BOOKING, K_CABINET };

struct family {
    const char *name;
    char *path;
    char *auth;   /* one header line, or NULL */
    char *body;   /* valid (the bodies the other suites use) */
    enum kind kind;
    int max;      /* the family's own byte limit (0: none below http.max_body_size) */
};

#define NFAM 11

/* A valid ЕНП: 15 random digits and the Luhn digit. */
static void gen_enp(char out[17])
{
    out[0] = (char)('1' + rand() % 9);
    for (int i = 1; i < 15; i++)
        out[i] = (char)('0' + rand() % 10);
    out[15] = (char)('0' + ids_luhn_digit(out, 15));
    out[16] = '\0';
}

static char *patient_body(void)
{
    char enp[17];
    gen_enp(enp);
    return xasprintf(
        "{\"family\":\"Хостилов\",\"name\":\"Иван\",\"patronymic\":\"Петрович\",\"birthday\":\"1970-%02d-%02d\","
        "\"birthplace\":\"г. Орехово-Зуево\",\"polis\":{\"type\":{\"code\":\"3\",\"name\":\"ОМС\"},"
        "\"series\":\"\",\"number\":\"%s\",\"start\":\"2013-04-08\",\"end\":null,\"smo\":\"1024000000000\"},"
        "\"identityDocument\":{\"type\":{\"code\":\"14\",\"name\":\"Паспорт\"},\"series\":\"%02d %02d\","
        "\"number\":\"%06d\",\"date\":\"2013-04-08\",\"issuedBy\":\"УФМС\"},\"mcod\":\"470102\","
        "\"phone\":\"79990000000\",\"email\":\"a@a.ru\",\"gender\":\"1\",\"regAddress\":\"ул. Ленина\","
        "\"isWorker\":true,\"bloodType\":\"1\",\"rh\":false,\"blackLabel\":false}",
        1 + rand() % 12, 1 + rand() % 28, enp, rand() % 100, rand() % 100, rand() % 1000000);
}

static char *new_guid(void)
{
    return pg_value("SELECT gen_random_uuid()::text", 0, NULL);
}

/* A resource of 470102 of this suite's own, for the cells and dispensary
 * bodies (made once). */
static const char *own_resource(void)
{
    static char guid[37];
    if (guid[0])
        return guid;
    char *g = new_guid();
    char *auth = region_auth();
    char *body = xasprintf("[{\"guid\":\"%s\",\"lpuGuid\":\"" LPU_470102 "\",\"resType\":\"Doctor\","
                           "\"family\":\"Хостилова\",\"name\":\"Анна\",\"speciality\":{\"code\":\"27\","
                           "\"name\":\"Терапия\"}}]", g);
    struct http_resp *r = post_at(0, "/mis/v1/resources", auth, body);
    ck_assert_msg(r->status == 200 && strstr(r->body, "\"Uploaded\""), "resource: %d %s", r->status, show(r));
    http_free(r);
    snprintf(guid, sizeof(guid), "%s", g);
    free(g), free(auth), free(body);
    return guid;
}

/* A login of this suite's own for an LPU that does not exist yet (a new
 * МКОД): the LPU bodies create it, and change no demo LPU. */
static char own_mcod[8];
static char *own_lpu_auth(void)
{
    static char *login;
    if (!login) {
        snprintf(own_mcod, sizeof(own_mcod), "8%06u", ((unsigned)getpid() * 7919u + (unsigned)rand()) % 1000000u);
        login = xasprintf("e2e-hostile-%d-%d", (int)getpid(), rand() % 100000);
        char *cmd = xasprintf("echo 'hostile test password' | '%s' user add %s --lpu %s >/dev/null 2>&1",
                              env("MIPGW_TEST_BIN"), login, own_mcod);
        ck_assert_int_eq(system(cmd), 0);
        free(cmd);
    }
    return basic_header(login, "hostile test password");
}

/* The families, with a fresh valid body each (guids of their own). */
static void families(struct family f[NFAM])
{
    char *rpgu = token_at(0, RPGU, IVANOV_Q);
    char *cod = token_at(0, COD, FEDOROV_Q);
    char *ur = ur_token();
    int i = 0;
    f[i++] = (struct family){"patients", strdup("/patients"), region_auth(), patient_body(), K_PATIENTS, 64 * 1024};
    char *g = new_guid();
    f[i++] = (struct family){"lpus", strdup("/mis/v1/lpus"), own_lpu_auth(),
                             xasprintf("[{\"guid\":\"%s\",\"mcod\":\"%s\",\"name\":\"Поликлиника\","
                                       "\"fullName\":\"ГБУЗ Тестовая\",\"address\":\"ул. Тестовая, 1\","
                                       "\"phone\":\"8-496-000-00-00\",\"isChildrenPoliclinic\":false,"
                                       "\"isActive\":true}]", g, own_mcod),
                             K_MIS, 0};
    free(g);
    g = new_guid();
    f[i++] = (struct family){"resources", strdup("/mis/v1/resources"), region_auth(),
                             xasprintf("[{\"guid\":\"%s\",\"lpuGuid\":\"" LPU_470102 "\",\"resType\":\"Doctor\","
                                       "\"family\":\"Тестова\",\"name\":\"Анна\",\"patronymic\":\"Ивановна\","
                                       "\"doctorRole\":\"Врач-терапевт\",\"speciality\":{\"code\":\"27\","
                                       "\"name\":\"Терапия\"},\"room\":\"12\",\"flat\":1,\"ageMin\":18,"
                                       "\"ageMax\":99,\"gender\":null,\"dispensaryOnly\":false,"
                                       "\"directionOnly\":false,\"isActive\":true}]", g),
                             K_MIS, 0};
    free(g);
    g = new_guid();
    f[i++] = (struct family){"cells", strdup("/mis/v1/cells"), region_auth(),
                             xasprintf("[{\"guid\":\"%s\",\"resourceGuid\":\"%s\","
                                       "\"begin\":\"2027-03-01T08:00:00+03:00\",\"end\":\"2027-03-01T08:15:00+03:00\","
                                       "\"busyType\":{\"name\":\"Приём по записи\",\"type\":1,\"code\":\"4\"},"
                                       "\"flagAccess\":[\"Registry\",\"Internet\"]}]", g, own_resource()),
                             K_MIS, 0};
    free(g);
    g = new_guid();
    f[i++] = (struct family){"referrals", strdup("/mis/v1/referrals"), region_auth(),
                             xasprintf("[{\"guid\":\"%s\",\"number\":\"H-1\",\"personSnils\":\"" IVANOV_SNILS "\","
                                       "\"lpuFromGuid\":\"" LPU_470102 "\",\"lpuToGuid\":\"" LPU_330501 "\","
                                       "\"resourceGuid\":\"" RES_CARDIO_REF "\",\"issued\":\"2026-11-01\","
                                       "\"validDays\":30,\"type\":\"consultation\"}]", g),
                             K_MIS, 0};
    free(g);
    f[i++] = (struct family){"dispensary", strdup("/mis/v1/dispensary"), region_auth(),
                             xasprintf("[{\"personSnils\":\"" IVANOV_SNILS "\",\"resourceGuid\":\"%s\"}]",
                                       own_resource()),
                             K_MIS, 0};
    struct test_cell c = internet_cell(RES_THERAPIST, 90);
    f[i++] = (struct family){"entry", strdup(ENTRY), bearer(rpgu),
                             entry_body(&c, ",\"email\":\"ivanov@example.org\",\"phone\":\"79995554242\","
                                            "\"email_confirm_agree\":1"),
                             K_BOOKING, 16 * 1024};
    c = internet_cell(RES_CARDIO_REF, 90);
    f[i++] = (struct family){"direction", strdup(DIRECTION), bearer(cod),
                             xasprintf("{\"date\":\"%s\",\"directionGuid\":\"" REF_FEDOROV "\",\"lpuGuid\":\""
                                       LPU_330501 "\",\"resourceGuid\":\"" RES_CARDIO_REF "\",\"time\":\"%s\"}",
                                       c.day, c.time),
                             K_BOOKING, 16 * 1024};
    char tax[11], phone[14];
    cab_ident(tax, phone);
    f[i++] = (struct family){"user_requests", strdup(UR_PATH), cabinet_auth(), ur_body(tax), K_CABINET, 65536};
    cab_ident(tax, phone);
    f[i++] = (struct family){"verifications", strdup(OTP_PATH), cabinet_auth(),
                             xasprintf("{\"phone_number\":\"%s\"}", phone), K_CABINET, 65536};
    f[i++] = (struct family){"registration", strdup(REG_PATH), bearer(ur),
                             read_source("tests/data/ehealth_registration.json"), K_CABINET, 65536};
    ck_assert_int_eq(i, NFAM);
    free(rpgu), free(cod), free(ur);
}

static void families_free(struct family f[NFAM])
{
    for (int i = 0; i < NFAM; i++)
        free(f[i].path), free(f[i].auth), free(f[i].body);
}

/* ------------------------------------------------------------------ */
/* 1. bodies over the limit */

START_TEST(test_body_over_family_limit)
{
    struct family f[NFAM];
    families(f);
    for (int i = 0; i < NFAM; i++) {
        struct http_resp *r;
        if (f[i].kind == K_MIS) {
            /* No byte limit of its own: the family's is mis.max_batch_items
             * (1000), a body of 1001 items, well under http.max_body_size. */
            size_t n = 1001;
            char *b = malloc(n * 3 + 2), *p = b;
            *p++ = '[';
            for (size_t k = 0; k < n; k++)
                p += sprintf(p, "%s{}", k ? "," : "");
            strcpy(p, "]");
            r = post_at(0, f[i].path, f[i].auth, b);
            free(b);
            SANE(r, f[i].name);
            assert_error(r, 413, "4114", "В одном запросе не более 1000 элементов", f[i].name);
        } else {
            /* A valid JSON object a little over the family's own limit. */
            size_t n = (size_t)f[i].max + 1024;
            char *b = malloc(n + 32);
            int k = sprintf(b, "{\"x\":\"");
            memset(b + k, 'x', n);
            strcpy(b + k + n, "\"}");
            r = post_at(0, f[i].path, f[i].auth, b);
            free(b);
            SANE(r, f[i].name);
            if (f[i].kind == K_CABINET) {
                ck_assert_msg(r->status == 413 && strcmp(eh_type(r), "request_too_large") == 0,
                              "%s: %d %s", f[i].name, r->status, show(r));
            } else {
                assert_error(r, 413, "4113", "Тело запроса слишком велико", f[i].name);
            }
        }
        http_free(r);
    }
    families_free(f);
}
END_TEST

START_TEST(test_body_over_max_body_size)
{
    /* Content-Length over http.max_body_size (1 MiB) and no body sent at
     * all: libevent answers 413 on the header alone, at once. */
    struct family f[NFAM];
    families(f);
    for (int i = 0; i < NFAM; i++) {
        char *req = xasprintf("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n%s\r\n"
                              "Content-Length: %d\r\n\r\n",
                              f[i].path, f[i].auth, 2 * 1024 * 1024);
        struct http_resp *r = http_raw(req, strlen(req));
        ck_assert_msg(r->status == 413, "%s: status %d (closed %d, timed out %d)", f[i].name, r->status,
                      r->closed, r->timed_out);
        ck_assert_msg(r->elapsed_ms < 500, "%s: 413 took %.0f ms", f[i].name, r->elapsed_ms);
        http_free(r);
        free(req);
    }
    /* And a body that is actually sent, 1.5 MiB of it. */
    size_t n = 1536 * 1024;
    char *b = malloc(n + 1);
    memset(b, ' ', n);
    b[0] = '[';
    b[n - 1] = ']';
    b[n] = '\0';
    struct http_resp *r = post_at(0, "/mis/v1/cells", f[3].auth, b);
    ck_assert_msg(r->status == 413 || (r->status == 0 && (r->closed || r->error)),
                  "1.5 MiB sent: status %d", r->status);
    ck_assert_msg(!r->timed_out && r->elapsed_ms < 2000, "1.5 MiB sent: %.0f ms", r->elapsed_ms);
    http_free(r);
    free(b);
    families_free(f);
    r = http_get("/health", NULL);
    ck_assert_int_eq(r->status, 200);
    http_free(r);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 2. headers over the limit */

static void assert_refused(const struct http_resp *r, const char *what)
{
    ck_assert_msg(!r->timed_out, "%s: no answer within %d ms", what, HTTPC_TIMEOUT_MS);
    ck_assert_msg(r->elapsed_ms < FAST_MS, "%s: took %.0f ms", what, r->elapsed_ms);
    ck_assert_msg((r->status >= 400 && r->status <= 431) || (r->status == 0 && (r->closed || r->error)),
                  "%s: status %d (closed %d, error %d)", what, r->status, r->closed, r->error);
}

static void assert_serving(int port, const char *after)
{
    struct http_resp *r = port ? http_get_at(port, "/health", NULL) : http_get("/health", NULL);
    ck_assert_msg(r->status == 200, "after %s: /health %d", after, r->status);
    http_free(r);
    r = port ? http_get_at(port, COD "?" IVANOV_Q, NULL) : http_get(COD "?" IVANOV_Q, NULL);
    ck_assert_msg(r->status == 200, "after %s: token %d %s", after, r->status, show(r));
    http_free(r);
}

START_TEST(test_headers_over_limit)
{
    static const char *const targets[] = {"GET /health", "GET " COD "?" IVANOV_Q, "POST /patients"};
    for (size_t t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
        /* One 64 KiB header (http.max_header_size is 8 KiB). */
        size_t n = 64 * 1024;
        char *big = malloc(n + 1);
        memset(big, 'h', n);
        big[n] = '\0';
        char *req = xasprintf("%s HTTP/1.1\r\nHost: x\r\nX-Huge: %s\r\nContent-Length: 0\r\n\r\n",
                              targets[t], big);
        struct http_resp *r = http_raw(req, strlen(req));
        assert_refused(r, "one 64 KiB header");
        ck_assert_msg(r->status != 200, "one 64 KiB header served");
        http_free(r);
        free(req), free(big);

        /* 2,000 headers of 24 bytes each. */
        char *many = malloc(2000 * 32 + 256);
        char *p = many + sprintf(many, "%s HTTP/1.1\r\nHost: x\r\n", targets[t]);
        for (int i = 0; i < 2000; i++)
            p += sprintf(p, "X-M%05d: %012d\r\n", i, i);
        strcpy(p, "Content-Length: 0\r\n\r\n");
        r = http_raw(many, strlen(many));
        assert_refused(r, "2,000 headers");
        ck_assert_msg(r->status != 200, "2,000 headers served");
        http_free(r);
        free(many);
        assert_serving(0, targets[t]);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* 3. JSON nested 10,000 deep */

START_TEST(test_nested_deep)
{
    struct family f[NFAM];
    families(f);
    int depth = 10000;
    char *deep = malloc((size_t)depth * 8 + 64);
    static const char *const shapes[] = {"10,000 arrays, closed", "10,000 arrays, never closed",
                                         "5,000 objects, closed"};
    for (int i = 0; i < NFAM; i++) {
        for (int shape = 0; shape < 3; shape++) {
            char *p = deep;
            if (f[i].kind == K_MIS)
                *p++ = '[';
            else
                p += sprintf(p, "{\"a\":");
            if (shape < 2) {
                memset(p, '[', (size_t)depth);
                p += depth;
                if (shape == 0) {
                    memset(p, ']', (size_t)depth);
                    p += depth;
                }
            } else {
                for (int k = 0; k < depth / 2; k++)
                    p += sprintf(p, "{\"\":");
                *p++ = '1';
                memset(p, '}', (size_t)depth / 2);
                p += depth / 2;
            }
            strcpy(p, shape == 1 ? "" : f[i].kind == K_MIS ? "]" : "}");
            struct http_resp *r = post_at(0, f[i].path, f[i].auth, deep);
            char what[128];
            snprintf(what, sizeof(what), "%s: %s (%zu bytes)", f[i].name, shapes[shape], strlen(deep));
            SANE(r, what);
            if (f[i].max && strlen(deep) > (size_t)f[i].max) {
                /* over the family's own limit, which is checked first */
                if (f[i].kind == K_CABINET)
                    ck_assert_msg(r->status == 413 && strcmp(eh_type(r), "request_too_large") == 0, "%s: %d %s",
                                  what, r->status, show(r));
                else
                    assert_error(r, 413, "4113", "Тело запроса слишком велико", what);
            } else if (f[i].kind == K_CABINET) {
                ck_assert_msg(r->status == 400 && strcmp(eh_type(r), "request_malformed") == 0, "%s: %d %s",
                              what, r->status, show(r));
            } else {
                ck_assert_msg(r->status == 400 && strcmp(mip_code(r), "4110") == 0, "%s: %d %s", what, r->status,
                              show(r));
            }
            http_free(r);
        }
    }
    free(deep);
    families_free(f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 4. invalid UTF-8 and wrong types, field by field */

struct tok {
    size_t start, end; /* the value's bytes, quotes included */
    char kind;         /* 's' a string, 'n' a number, 'b' true/false */
};

/* Every value of the JSON text that is a string, number or boolean (not
 * the keys). */
static size_t scan_values(const char *j, struct tok *out, size_t max)
{
    size_t n = 0, len = strlen(j);
    for (size_t i = 0; i < len && n < max;) {
        char c = j[i];
        if (c == '"') {
            size_t e = i + 1;
            while (e < len && j[e] != '"')
                e += j[e] == '\\' ? 2 : 1;
            size_t k = e + 1;
            while (k < len && (j[k] == ' ' || j[k] == '\n' || j[k] == '\t' || j[k] == '\r'))
                k++;
            if (j[k] != ':')
                out[n++] = (struct tok){i, e + 1, 's'};
            i = e + 1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t e = i;
            while (e < len && strchr("0123456789+-.eE", j[e]))
                e++;
            out[n++] = (struct tok){i, e, 'n'};
            i = e;
        } else if (strncmp(j + i, "true", 4) == 0 || strncmp(j + i, "false", 5) == 0) {
            size_t e = i + (j[i] == 't' ? 4 : 5);
            out[n++] = (struct tok){i, e, 'b'};
            i = e;
        } else {
            i++;
        }
    }
    return n;
}

static char *jsplice(const char *j, size_t at, size_t upto, const char *with)
{
    return xasprintf("%.*s%s%s", (int)at, j, with, j + upto);
}

/* The key a value belongs to, for messages (static buffer). */
static const char *key_of(const char *j, const struct tok *t)
{
    static char out[64];
    size_t i = t->start;
    while (i > 0 && j[i - 1] != ':' && j[i - 1] != '[')
        i--;
    if (i == 0 || j[i - 1] == '[') {
        snprintf(out, sizeof(out), "(array item at %zu)", t->start);
        return out;
    }
    size_t e = i - 1;
    while (e > 0 && j[e] != '"')
        e--;
    size_t s = e;
    while (s > 0 && j[s - 1] != '"')
        s--;
    snprintf(out, sizeof(out), "%.*s", (int)(e - s), j + s);
    return out;
}

/* The key of the object a value sits in ("" at the top; static buffer). */
static const char *parent_key(const char *j, const struct tok *t)
{
    int depth = 0;
    for (size_t i = t->start; i-- > 0;) {
        if (j[i] == '}' || j[i] == ']')
            depth++;
        else if ((j[i] == '{' || j[i] == '[') && depth-- == 0) {
            if (j[i] == '[')
                return "";
            struct tok at = {i, i + 1, 's'};
            return key_of(j, &at);
        }
    }
    return "";
}

/* A number where a string belongs that the family takes by design: the
 * code of a dictionary pair ({code, name}: docs/api.md's "code a string or
 * a number" for a speciality; the polis's and the document's type, a cell's
 * busy type alike), and the display name of a card's document type, which
 * the card does not validate. Such a body may be judged either way. */
static bool lenient(const struct family *f, const char *parent, const char *key)
{
    if (f->kind != K_PATIENTS && f->kind != K_MIS)
        return false;
    bool dict = strcmp(parent, "type") == 0 || strcmp(parent, "speciality") == 0 ||
                strcmp(parent, "busyType") == 0;
    return dict && (strcmp(key, "code") == 0 || (f->kind == K_PATIENTS && strcmp(key, "name") == 0));
}

/* What is wrong with an answer to a mutated body, or NULL. */
static char *judge(const struct family *f, const struct http_resp *r, bool utf8, bool loose)
{
    if (r->timed_out || r->status == 0)
        return xasprintf("no answer (closed %d, error %d)", r->closed, r->error);
    if (r->status >= 500)
        return xasprintf("%d %s", r->status, show(r));
    if (r->elapsed_ms >= FAST_MS)
        return xasprintf("took %.0f ms", r->elapsed_ms);
    bool ok = false;
    if (utf8) {
        /* the whole body is not JSON */
        ok = r->status == 400 && (f->kind == K_CABINET ? strcmp(eh_type(r), "request_malformed") == 0
                                                       : strcmp(mip_code(r), "4110") == 0);
    } else {
        yajl_val v = jparse_str(r->body);
        switch (f->kind) {
        case K_PATIENTS:
            /* the card is judged: NotValid, nothing written */
            ok = r->status == 200 && v && jstr(v, "MkabStatus") &&
                 (strcmp(jstr(v, "MkabStatus"), "NotValid") == 0 ||
                  (loose && strcmp(jstr(v, "MkabStatus"), "Uploaded") == 0));
            break;
        case K_MIS:
            /* the item is judged: NotValid */
            ok = r->status == 200 && v && YAJL_IS_ARRAY(v) && v->u.array.len == 1 &&
                 jstr(v->u.array.values[0], "Status") &&
                 (strcmp(jstr(v->u.array.values[0], "Status"), "NotValid") == 0 ||
                  (loose && strcmp(jstr(v->u.array.values[0], "Status"), "Uploaded") == 0));
            break;
        case K_BOOKING:
            /* 4100 missing / 4101 malformed */
            ok = r->status == 400 && (strcmp(mip_code(r), "4101") == 0 || strcmp(mip_code(r), "4100") == 0);
            break;
        case K_CABINET:
            /* 422 with a cast rule (the registration's OTP was never sent:
             * only a cast tells that the changed field was judged) */
            ok = r->status == 422 && strcmp(eh_type(r), "validation_failed") == 0 && strstr(r->body, "\"cast\"");
            break;
        }
        yajl_tree_free(v);
    }
    return ok ? NULL : xasprintf("%d %s", r->status, show(r));
}

START_TEST(test_utf8_and_types_field_by_field)
{
    struct family f[NFAM];
    families(f);
    int sent = 0, bad = 0, lenient_seen = 0;
    char *report = strdup("");
    for (int i = 0; i < NFAM; i++) {
        struct tok toks[128];
        size_t n = scan_values(f[i].body, toks, 128);
        ck_assert_msg(n >= 1, "%s: no values", f[i].name);
        for (size_t t = 0; t < n; t++) {
            char key[64], parent[64];
            snprintf(key, sizeof(key), "%s", key_of(f[i].body, &toks[t]));
            snprintf(parent, sizeof(parent), "%s", parent_key(f[i].body, &toks[t]));
            for (int m = 0; m < 2; m++) {
                bool utf8 = m == 0;
                if (utf8 && toks[t].kind != 's')
                    continue;
                char *b, *with;
                if (utf8) {
                    /* invalid UTF-8 at the start of the string */
                    const char *junk = t % 2 ? "\xFF" : "\xC3\x28";
                    with = xasprintf("\"%s%.*s", junk, (int)(toks[t].end - toks[t].start - 1),
                                     f[i].body + toks[t].start + 1);
                } else {
                    /* the other type: a number for a string, a string for
                     * a number or a boolean */
                    with = strdup(toks[t].kind == 's' ? "12345" : "\"x\"");
                }
                b = jsplice(f[i].body, toks[t].start, toks[t].end, with);
                struct http_resp *r = post_at(0, f[i].path, f[i].auth, b);
                bool loose = !utf8 && lenient(&f[i], parent, key);
                char *why = judge(&f[i], r, utf8, loose);
                lenient_seen += loose;
                if (why) {
                    char *old = report;
                    report = xasprintf("%s\n  %s: %s.%s = %s: %s", old, f[i].name, parent, key,
                                       utf8 ? "invalid UTF-8" : with, why);
                    free(old), free(why);
                    bad++;
                }
                http_free(r);
                free(b), free(with);
                sent++;
            }
        }
    }
    fprintf(stderr, "hostile: %d field mutations over %d families (%d dictionary codes, which may pass), "
            "%d answered otherwise%s\n", sent, NFAM, lenient_seen, bad, report);
    ck_assert_msg(bad == 0, "%d of %d mutated bodies answered otherwise:%s", bad, sent, report);
    free(report);
    /* The valid bodies themselves pass (so the mutation was what failed):
     * not the registration (its OTP was never sent) nor the booking ones,
     * which would book. */
    for (int i = 0; i < NFAM; i++) {
        if (f[i].kind == K_BOOKING || strcmp(f[i].name, "registration") == 0)
            continue;
        struct http_resp *r = post_at(0, f[i].path, f[i].auth, f[i].body);
        ck_assert_msg(r->status == 200 || r->status == 201, "%s valid body: %d %s", f[i].name, r->status,
                      show(r));
        ck_assert_msg(!strstr(r->body, "NotValid") && !strstr(r->body, "\"Error\""), "%s valid body: %s",
                      f[i].name, show(r));
        http_free(r);
    }
    families_free(f);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 5. 100,000 query parameters */

static char *many_params(const char *path, size_t n)
{
    char *q = malloc(strlen(path) + n * 2 + 64);
    char *w = q + sprintf(q, "%s?", path);
    for (size_t i = 0; i < n; i++) {
        *w++ = 'a';
        *w++ = '&';
    }
    strcpy(w, IVANOV_Q);
    return q;
}

START_TEST(test_query_100000_params)
{
    char *tok = token_at(0, RPGU, IVANOV_Q);
    char *auth = bearer(tok);
    static const char *const paths[] = {COD, VISITS};
    /* The main gateway: the request line is far over http.max_header_size,
     * libevent refuses it before any parsing. */
    for (size_t i = 0; i < 2; i++) {
        char *q = many_params(paths[i], 100000);
        struct http_resp *r = http_get(q, auth, NULL);
        assert_refused(r, paths[i]);
        ck_assert_msg(r->status != 200, "%s: 100,000 parameters served", paths[i]);
        http_free(r);
        free(q);
    }
    assert_serving(0, "100,000 parameters");

    /* A gateway whose header limit holds them (1 MiB): the gateway's own
     * query parser sees 100,000 parameters and refuses them, fast. */
    static const char *const settings[] = {"MIPGW_HTTP_MAX_HEADER_SIZE=1048576",
                                           "MIPGW_RATELIMIT_TOKEN_PER_ADDR=0",
                                           "MIPGW_RATELIMIT_TOKEN_PER_IDENTITY=0", NULL};
    pid_t pid;
    int port = gw_spawn(settings, &pid);
    for (size_t i = 0; i < 2; i++) {
        char *q = many_params(paths[i], 100000);
        struct http_resp *r = http_get_at(port, q, auth, NULL);
        SANE(r, paths[i]);
        assert_error(r, 400, "4106", MSG_4106, paths[i]);
        http_free(r);
        free(q);
    }
    assert_serving(port, "100,000 parameters");
    ck_assert_msg(gw_stop(pid) == 0, "the extra gateway did not exit 0 on SIGTERM");
    free(auth), free(tok);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 6. idle and slow connections */

static void raise_nofile(void)
{
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = rl.rlim_max;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

/* The soft RLIMIT_NOFILE of a process, from /proc. */
static long proc_nofile(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    long soft = -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "Max open files", 14) == 0) {
            soft = strtol(line + 14, NULL, 10);
            break;
        }
    }
    fclose(f);
    return soft;
}

static int proc_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* The descriptor of pid open on path (by /proc/pid/fd's links), or -1. */
static int proc_fd_of(pid_t pid, const char *path)
{
    char dir[64];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int found = -1;
    struct dirent *e;
    while (found < 0 && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char link[320], target[512];
        snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            if (strcmp(target, path) == 0)
                found = atoi(e->d_name);
        }
    }
    closedir(d);
    return found;
}

/* Lines of path holding needle (0 when there is no such file). */
static int lines_with(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* A non-blocking connection to the loopback port (connect in progress). */
static int connect_nb(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    ck_assert_msg(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    int rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
    ck_assert_msg(rc == 0 || errno == EINPROGRESS, "connect: %s", strerror(errno));
    return fd;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    int i = (int)(p * n + 0.999999) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* One normal request (alternately /health and a token, which asks Redis
 * and, past its cache, PostgreSQL): its milliseconds; fails on non-200. */
static double normal_request(int port, int i)
{
    struct http_resp *r = http_get_at(port, i % 2 ? COD "?" IVANOV_Q : "/health", NULL);
    ck_assert_msg(r->status == 200, "normal request %d: %d %s", i, r->status, show(r));
    double ms = r->elapsed_ms;
    http_free(r);
    return ms;
}

/* Whether a connection was closed by the peer (without blocking). */
static bool peer_closed(int fd)
{
    char buf[256];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

#define IDLE_WANT 10000
#define IDLE_TIMEOUT_MS 6000

/* SIGHUP reopens the log file, as logrotate expects: after a rename, what
 * was written stays in the old file and what comes after goes to a new
 * file at the configured path, under the same descriptor number (a number
 * freed and handed to the next connection while a worker still writes a
 * line to it would put that line into a client's answer). */
START_TEST(test_log_reopen)
{
    char *dir = strdup(env("MIPGW_TEST_GW_LOG"));
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    char *path = xasprintf("%s/reopen-%d.log", dir, (int)getpid());
    char *rotated = xasprintf("%s.1", path);
    char *set = xasprintf("MIPGW_LOG_FILE=%s", path);
    unlink(path);
    unlink(rotated);
    const char *const settings[] = {set, NULL};
    pid_t pid;
    int port = gw_spawn(settings, &pid);
    http_free(http_get_at(port, "/health", NULL));
    double t0 = mono_ms();
    while (lines_with(path, " access ") < 1 && mono_ms() - t0 < 2000)
        sleep_ms(20);
    int fd = proc_fd_of(pid, path);
    ck_assert_msg(fd > 2, "no descriptor on %s", path);

    ck_assert_int_eq(rename(path, rotated), 0);
    int before = lines_with(rotated, " access ");
    ck_assert_int_ge(before, 1);
    ck_assert_int_eq(kill(pid, SIGHUP), 0);
    t0 = mono_ms();
    while (lines_with(path, "log reopened") < 1 && mono_ms() - t0 < 3000)
        sleep_ms(20);
    ck_assert_msg(lines_with(path, "log reopened") == 1, "no new log at %s after SIGHUP", path);
    ck_assert_int_eq(proc_fd_of(pid, path), fd);

    for (int i = 0; i < 3; i++)
        http_free(http_get_at(port, "/health", NULL));
    t0 = mono_ms();
    while (lines_with(path, " access ") < 3 && mono_ms() - t0 < 2000)
        sleep_ms(20);
    ck_assert_int_eq(lines_with(path, " access "), 3);
    ck_assert_int_eq(lines_with(rotated, " access "), before);
    ck_assert_msg(gw_stop(pid) == 0, "the gateway did not exit 0 on SIGTERM");
    unlink(path);
    unlink(rotated);
    free(set), free(rotated), free(path), free(dir);
}
END_TEST

/* N pipelined requests for 21 days of a demo doctor's schedule (about
 * 100 KB an answer), the last with Connection: close, sent on a connection
 * whose receive buffer is 2 KB: the socket. */
static int pipeline_schedules(int port, int n)
{
    time_t now = time(NULL), later = now + 20 * 86400;
    char from[11], to[11];
    struct tm tm;
    strftime(from, sizeof(from), "%Y-%m-%d", localtime_r(&now, &tm));
    strftime(to, sizeof(to), "%Y-%m-%d", localtime_r(&later, &tm));
    struct buf req;
    buf_init(&req);
    for (int i = 0; i < n; i++) {
        char *one = xasprintf("GET /api/v2/lpu/c3c977af-c3b4-4517-9d57-50a6844ec660/doctor/"
                              "19ebd6d6-2bbf-45c1-a8fb-2c7747f3beb3/schedule/%s/%s HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\n%s\r\n", from, to,
                              i == n - 1 ? "Connection: close\r\n" : "");
        buf_puts(&req, one);
        free(one);
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 2048;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(send(fd, req.data, req.len, MSG_NOSIGNAL), (ssize_t)req.len);
    buf_free(&req);
    return fd;
}

/* Reads fd to its end (5 s without a byte is a failure) and splits what
 * came into whole answers by their Content-Length: their count, and
 * whether the stream ended inside one. */
struct stream_end {
    int answers;       /* whole answers */
    int ok;            /* of them, 200s */
    bool cut;          /* the stream ended inside an answer */
    size_t bytes;
};

static struct stream_end read_answers(int fd)
{
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t cap = 1 << 20, len = 0;
    char *all = malloc(cap + 1);
    ssize_t n;
    errno = 0;
    for (;;) {
        if (len == cap)
            all = realloc(all, (cap *= 2) + 1);
        n = recv(fd, all + len, cap - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    ck_assert_msg(n == 0 || errno == ECONNRESET, "the stream did not end: %s", strerror(errno));
    close(fd);
    all[len] = '\0';
    struct stream_end r = {.bytes = len};
    size_t pos = 0;
    while (pos < len) {
        char *head_end = strstr(all + pos, "\r\n\r\n");
        const char *cl = strcasestr(all + pos, "Content-Length:");
        if (!head_end || !cl || cl > head_end) {
            r.cut = true;
            break;
        }
        size_t body = (size_t)atol(cl + 15), next = (size_t)(head_end + 4 - all) + body;
        if (next > len) {
            r.cut = true;
            break;
        }
        r.answers++;
        r.ok += strncmp(all + pos, "HTTP/1.1 200", 12) == 0;
        pos = next;
    }
    free(all);
    return r;
}

/* Sixty pipelined answers of 100 KB each to a client that then reads
 * nothing: once the kernel's buffers are full, the answer being written
 * makes no progress, and http.write_timeout_ms (1 s here, against a read
 * timeout of 15 s, libevent's only one) ends the connection: read
 * afterwards, the stream holds fewer than sixty answers. */
START_TEST(test_write_timeout)
{
    const char *const settings[] = {"MIPGW_HTTP_WRITE_TIMEOUT_MS=1000", "MIPGW_HTTP_READ_TIMEOUT_MS=15000",
                                    NULL};
    pid_t pid;
    int port = gw_spawn(settings, &pid);
    int fd = pipeline_schedules(port, 60);
    sleep_ms(4000);
    struct stream_end r = read_answers(fd);
    ck_assert_msg(r.ok >= 1 && r.answers < 60, "%d of 60 answers (%zu bytes) came: the write timeout "
                  "did not end the connection", r.answers, r.bytes);
    ck_assert_msg(gw_stop(pid) == 0, "the gateway did not exit 0 on SIGTERM");
}
END_TEST

/* SIGTERM while an answer waits in the gateway for a client that has not
 * read it yet: the drain lasts until it is written (within the grace
 * period), so the client, reading after the SIGTERM, gets every answer the
 * gateway counted as sent, whole. A reply counts as sent once it is queued,
 * and the drain used to end, closing every connection, as soon as no
 * request was in flight: the answer waiting in the gateway was lost. */
START_TEST(test_drain_writes_queued_answers)
{
    pid_t pid;
    int port = gw_spawn(NULL, &pid);
    int fd = pipeline_schedules(port, 60);
    sleep_ms(1000);                   /* the kernel's buffers full, an answer waits */
    /* The answers the gateway counts as sent: queued, if not written. */
    double sent = metric_at(port, "mipgw_requests_total{route=\"schedule\",status=\"200\"}");
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    sleep_ms(300);                    /* the drain's checks run meanwhile */
    struct stream_end r = read_answers(fd);
    ck_assert_msg(sent >= 1 && r.ok >= (int)sent && !r.cut,
                  "%.0f answers sent, %d whole ones came (%d of them 200s), then the stream %s (%zu bytes)",
                  sent, r.answers, r.ok, r.cut ? "was cut inside one" : "ended", r.bytes);
    /* SIGTERM again, harmless while draining: gw_stop waits for the exit. */
    ck_assert_msg(gw_stop(pid) == 0, "the gateway did not exit 0");
}
END_TEST

/* A keep-alive connection to the loopback port. */
static int ka_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* GET path on fd, keep-alive; the whole answer (head and body), read by
 * its Content-Length. */
static char *ka_get(int fd, const char *path)
{
    char *req = xasprintf("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    ck_assert_int_eq(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
    free(req);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        ck_assert_msg(n > 0, "%s: no whole answer (%zd, %s)", path, n, strerror(errno));
        len += (size_t)n;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strcasestr(buf, "Content-Length:");
        if (end && cl && len >= (size_t)(end + 4 - buf) + (size_t)atol(cl + 15))
            return buf;
        ck_assert(len < cap);
    }
}

/* Draining after SIGTERM (held open here by an answer a slow client has
 * not read): a request on a keep-alive connection opened before is served,
 * and its answer closes the connection; /ready says 503/5032, so that a
 * health check takes the process out. Refusing such requests turned every
 * rolling restart behind nginx into 503s, as nginx keeps using its cached
 * connections. */
START_TEST(test_drain_serves_keepalive)
{
    pid_t pid;
    int port = gw_spawn(NULL, &pid);
    int a = ka_connect(port), b = ka_connect(port);
    free(ka_get(a, "/health"));
    free(ka_get(b, "/health"));
    int slow = pipeline_schedules(port, 60);
    sleep_ms(1000);
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    sleep_ms(200);
    char *tok = ka_get(a, "/auth/cod/token?n_pol=5000000000000041&birthday=1985-03-14");
    ck_assert_msg(strncmp(tok, "HTTP/1.1 200", 12) == 0 && strstr(tok, "\"token\""), "draining: %.300s", tok);
    ck_assert_msg(strcasestr(tok, "Connection: close") != NULL, "no Connection: close: %.300s", tok);
    char *ready = ka_get(b, "/ready");
    ck_assert_msg(strncmp(ready, "HTTP/1.1 503", 12) == 0 && strstr(ready, "\"5032\""), "/ready: %.300s",
                  ready);
    free(tok), free(ready);
    close(a);
    close(b);
    struct stream_end r = read_answers(slow);
    ck_assert(!r.cut);
    /* SIGTERM again, harmless while draining: gw_stop waits for the exit. */
    ck_assert_msg(gw_stop(pid) == 0, "the gateway did not exit 0");
}
END_TEST

/* CPU time pid has used (user and system), in ms. */
static long proc_cpu_ms(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields 14 and 15, counted after the command's closing parenthesis. */
    const char *p = strrchr(buf, ')');
    ck_assert_ptr_nonnull(p);
    unsigned long ut = 0, st = 0;
    ck_assert_int_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st), 2);
    return (long)((ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

/* A chunked body whose size line never ends: libevent 2.1 puts no bound on
 * that line, and scanned all it had for the line's end at every read (one
 * connection took a worker's CPU for seconds and memory without bound). The
 * gateway stops reading at a whole request's largest size and closes the
 * connection; it spends next to no CPU on it. */
START_TEST(test_chunk_size_line_bounded)
{
    pid_t pid;
    int port = gw_spawn(NULL, &pid);
    long cpu0 = proc_cpu_ms(pid);
    int fd = ka_connect(port);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    const char *head = "POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    ck_assert_int_eq(send(fd, head, strlen(head), MSG_NOSIGNAL), (ssize_t)strlen(head));
    static char junk[65536];
    memset(junk, 'A', sizeof(junk));
    size_t sent = 0;
    while (sent < ((size_t)24 << 20)) {
        ssize_t n = send(fd, junk, sizeof(junk), MSG_NOSIGNAL);
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    /* Closed: the end of the stream or a reset, within a few seconds. */
    char c;
    ssize_t r = recv(fd, &c, 1, 0);
    int e = errno;
    close(fd);
    ck_assert_msg(r == 0 || (r < 0 && (e == ECONNRESET || e == EPIPE)),
                  "the connection is still open after %zu bytes of one size line (%zd, %s)", sent, r,
                  r < 0 ? strerror(e) : "data");
    long cpu = proc_cpu_ms(pid) - cpu0;
    ck_assert_msg(cpu < 500, "the gateway spent %ld ms of CPU on %zu bytes of one size line", cpu, sent);
    ck_assert_msg(gw_stop(pid) == 0, "the gateway did not exit 0 on SIGTERM");
}
END_TEST

/* Whether fd's peer has closed it (the end of the stream or a reset)
 * rather than answering; an answer is read and freed. */
static bool ka_closed(int fd)
{
    char c;
    ssize_t r = recv(fd, &c, 1, 0);
    return r == 0 || (r < 0 && (errno == ECONNRESET || errno == EPIPE));
}

/* http.max_connections (16 here, one worker): of 20 connections, 16 are
 * served and 4 closed at once; one closed makes room for a new one. */
START_TEST(test_max_connections)
{
    const char *const settings[] = {"MIPGW_HTTP_MAX_CONNECTIONS=16", NULL};
    pid_t pid;
    int port = gw_spawn(settings, &pid);
    enum { N = 20 };
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = ka_connect(port);
    sleep_ms(300);                    /* all accepted */
    int served = 0, closed = 0, first = -1;
    static const char get[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < N; i++) {
        if (send(fds[i], get, sizeof(get) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(get) - 1) || ka_closed(fds[i])) {
            closed++;
            continue;
        }
        served++;
        if (first < 0)
            first = i;
    }
    ck_assert_msg(served == 16 && closed == 4, "%d served, %d closed", served, closed);
    close(fds[first]);
    sleep_ms(300);
    int again = ka_connect(port);
    char *ok = ka_get(again, "/health");
    ck_assert_msg(strncmp(ok, "HTTP/1.1 200", 12) == 0, "after one left: %.100s", ok);
    free(ok);
    close(again);
    for (int i = 0; i < N; i++)
        if (i != first)
            close(fds[i]);
    ck_assert_msg(gw_stop(pid) == 0, "the gateway did not exit 0 on SIGTERM");
}
END_TEST

/* http.max_buffered_mb (1 MiB here): three bodies on their way, 400 KB
 * each, the third takes the worker past its budget and its connection is
 * closed; the other two finish and are answered. */
START_TEST(test_max_buffered)
{
    const char *const settings[] = {"MIPGW_HTTP_MAX_BUFFERED_MB=1", NULL};
    pid_t pid;
    int port = gw_spawn(settings, &pid);
    static char part[400000];
    memset(part, 'x', sizeof(part));
    static const char head[] = "POST /health HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               "Content-Length: 500000\r\n\r\n";
    int fds[3];
    for (int i = 0; i < 3; i++) {
        fds[i] = ka_connect(port);
        ck_assert_int_eq(send(fds[i], head, sizeof(head) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(head) - 1));
        ck_assert_int_eq(send(fds[i], part, sizeof(part), MSG_NOSIGNAL), (ssize_t)sizeof(part));
        sleep_ms(200);                /* read by the gateway, in this order */
    }
    ck_assert_msg(ka_closed(fds[2]), "the third body, past the budget, was not refused");
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(send(fds[i], part, 100000, MSG_NOSIGNAL), 100000);
        char buf[64] = "";
        ssize_t n = recv(fds[i], buf, sizeof(buf) - 1, 0);
        ck_assert_msg(n > 12 && strncmp(buf, "HTTP/1.1 ", 9) == 0, "body %d: no answer (%zd)", i, n);
        close(fds[i]);
    }
    close(fds[2]);
    ck_assert_msg(gw_stop(pid) == 0, "the gateway did not exit 0 on SIGTERM");
}
END_TEST

START_TEST(test_idle_connections)
{
    raise_nofile();
    char rt[64];
    snprintf(rt, sizeof(rt), "MIPGW_HTTP_READ_TIMEOUT_MS=%d", IDLE_TIMEOUT_MS);
    const char *const settings[] = {rt, "MIPGW_RATELIMIT_TOKEN_PER_ADDR=0",
                                    "MIPGW_RATELIMIT_TOKEN_PER_IDENTITY=0", NULL};
    pid_t pid;
    int port = gw_spawn(settings, &pid);
    /* The count: 10,000 unless this process or the gateway may not hold
     * that many descriptors (the machine's hard limit); then as many as
     * both can, less a margin, said in the output. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    long own = (long)rl.rlim_cur, gw = proc_nofile(pid);
    long n = IDLE_WANT;
    if (own - 200 < n)
        n = own - 200;
    if (gw - 200 < n)
        n = gw - 200;
    ck_assert_msg(n >= 1000, "descriptor limits too low for the test: own %ld, gateway %ld", own, gw);
    if (n < IDLE_WANT)
        fprintf(stderr, "hostile: only %ld idle connections (RLIMIT_NOFILE: own %ld, gateway %ld)\n", n,
                own, gw);
    int base_fds = proc_fds(pid);

    int *fds = malloc(sizeof(int) * (size_t)n);
    double t_open0 = mono_ms();
    for (long i = 0; i < n; i += 500) {
        long m = n - i < 500 ? n - i : 500;
        struct pollfd pf[500];
        for (long k = 0; k < m; k++) {
            fds[i + k] = connect_nb(port);
            pf[k] = (struct pollfd){.fd = fds[i + k], .events = POLLOUT};
        }
        /* the batch connected before the next (the backlog is 4096) */
        double t0 = mono_ms();
        for (long k = 0; k < m; k++) {
            while (poll(&pf[k], 1, 100) == 0)
                ck_assert_msg(mono_ms() - t0 < 5000, "connection %ld not established", i + k);
            int err = 0;
            socklen_t el = sizeof(err);
            getsockopt(pf[k].fd, SOL_SOCKET, SO_ERROR, &err, &el);
            ck_assert_msg(err == 0, "connection %ld: %s", i + k, strerror(err));
        }
    }
    double t_opened = mono_ms();
    /* The gateway holds them all (accepted: a descriptor each). */
    while (proc_fds(pid) < base_fds + n - 8 && mono_ms() - t_opened < 3000)
        sleep_ms(20);
    int held = proc_fds(pid) - base_fds;
    /* (less a handful: the count of its other descriptors may move by a
     * store connection meanwhile) */
    ck_assert_msg(held >= n - 8, "the gateway holds %d of %ld connections", held, n);
    fprintf(stderr, "hostile: %ld idle connections open in %.0f ms, the gateway holds %d descriptors more\n",
            n, t_opened - t_open0, held);

    /* Normal requests meanwhile, for at most two seconds. */
    enum { REQS = 400 };
    double lat[REQS];
    int done = 0;
    double t_held = mono_ms();
    while (done < REQS && mono_ms() - t_held < 2000)
        lat[done] = normal_request(port, done), done++;
    ck_assert_msg(done >= 100, "only %d normal requests in 2 s", done);
    double p50 = percentile(lat, done, 0.50), p99 = percentile(lat, done, 0.99);
    fprintf(stderr, "hostile: under %ld idle connections: %d requests, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
            n, done, p50, p99, lat[done - 1]);
    ck_assert_msg(p99 < 50.0, "p99 %.1f ms under %ld idle connections", p99, n);
    /* None dropped early: all still open well before the read timeout. */
    ck_assert_msg(mono_ms() - t_open0 < IDLE_TIMEOUT_MS - 500, "the normal requests took too long");
    long early = 0;
    for (long i = 0; i < n; i++)
        early += peer_closed(fds[i]);
    ck_assert_msg(early == 0, "%ld idle connections closed before the read timeout", early);

    /* Then the gateway drops them at http.read_timeout_ms. */
    long closed = 0;
    char *is_closed = calloc((size_t)n, 1);
    struct pollfd *pf = malloc(sizeof(*pf) * (size_t)n);
    double last = 0;
    while (closed < n && mono_ms() - t_opened < IDLE_TIMEOUT_MS + 4000) {
        long m = 0;
        for (long i = 0; i < n; i++)
            if (!is_closed[i])
                pf[m++] = (struct pollfd){.fd = fds[i], .events = POLLIN | POLLRDHUP};
        int rc = poll(pf, (nfds_t)m, 200);
        if (rc <= 0)
            continue;
        for (long k = 0; k < m; k++) {
            if (pf[k].revents && peer_closed(pf[k].fd)) {
                for (long i = 0; i < n; i++)
                    if (fds[i] == pf[k].fd) {
                        is_closed[i] = 1;
                        break;
                    }
                closed++;
                last = mono_ms();
            }
        }
    }
    double first_possible = t_open0 + IDLE_TIMEOUT_MS - 200;
    fprintf(stderr, "hostile: %ld of %ld idle connections dropped, the last %.0f ms after they were opened\n",
            closed, n, last - t_open0);
    ck_assert_msg(closed == n, "%ld of %ld idle connections still open %d ms after the read timeout", n - closed,
                  n, 4000);
    ck_assert_msg(last >= first_possible, "dropped before the read timeout");
    for (long i = 0; i < n; i++)
        close(fds[i]);
    free(fds), free(is_closed), free(pf);
    /* The gateway's descriptors are back (no leak). */
    double t0 = mono_ms();
    while (proc_fds(pid) > base_fds + 5 && mono_ms() - t0 < 2000)
        sleep_ms(50);
    ck_assert_msg(proc_fds(pid) <= base_fds + 5, "the gateway holds %d descriptors, %d before",
                  proc_fds(pid), base_fds);
    assert_serving(port, "idle connections");
    ck_assert_msg(gw_stop(pid) == 0, "the extra gateway did not exit 0 on SIGTERM");
}
END_TEST

#define SLOW_TIMEOUT_MS 2000
#define SLOW_REQUEST_TIMEOUT_MS 3000
#define SLOW_CLIENTS 20

START_TEST(test_slow_clients)
{
    char rt[64], qt[64];
    snprintf(rt, sizeof(rt), "MIPGW_HTTP_READ_TIMEOUT_MS=%d", SLOW_TIMEOUT_MS);
    snprintf(qt, sizeof(qt), "MIPGW_HTTP_REQUEST_TIMEOUT_MS=%d", SLOW_REQUEST_TIMEOUT_MS);
    const char *const settings[] = {rt, qt, "MIPGW_RATELIMIT_TOKEN_PER_ADDR=0",
                                    "MIPGW_RATELIMIT_TOKEN_PER_IDENTITY=0", NULL};
    pid_t pid;
    int port = gw_spawn(settings, &pid);
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    /* Half send one byte a second; the other half send their first bytes
     * and then nothing (a stalled request). */
    int fds[SLOW_CLIENTS];
    size_t sent[SLOW_CLIENTS];
    double closed_at[SLOW_CLIENTS];
    for (int i = 0; i < SLOW_CLIENTS; i++) {
        fds[i] = connect_nb(port);
        struct pollfd p = {.fd = fds[i], .events = POLLOUT};
        ck_assert_int_eq(poll(&p, 1, 2000), 1);
        sent[i] = 0;
        closed_at[i] = 0;
    }
    double t0 = mono_ms(), next_tick = t0;
    double lat[2000];
    int done = 0;
    const double window = SLOW_TIMEOUT_MS + 4000;
    while (mono_ms() - t0 < window) {
        if (mono_ms() >= next_tick) {
            for (int i = 0; i < SLOW_CLIENTS; i++) {
                if (closed_at[i] || (i % 2 && sent[i] >= 2) || sent[i] >= sizeof(req) - 1)
                    continue;
                if (send(fds[i], req + sent[i], 1, MSG_NOSIGNAL) == 1)
                    sent[i]++;
            }
            next_tick += 1000;
        }
        for (int i = 0; i < SLOW_CLIENTS; i++)
            if (!closed_at[i] && peer_closed(fds[i]))
                closed_at[i] = mono_ms() - t0;
        if (done < 2000)
            lat[done] = normal_request(port, done), done++;
        sleep_ms(20);
    }
    double p99 = percentile(lat, done, 0.99);
    int stalled_dropped = 0, trickle_dropped = 0;
    double stalled_max = 0;
    for (int i = 0; i < SLOW_CLIENTS; i++) {
        if (i % 2) {
            stalled_dropped += closed_at[i] > 0;
            if (closed_at[i] > stalled_max)
                stalled_max = closed_at[i];
            /* not before the read timeout after their last byte (at ~1 s) */
            ck_assert_msg(closed_at[i] == 0 || closed_at[i] >= SLOW_TIMEOUT_MS - 200,
                          "stalled client %d dropped at %.0f ms", i, closed_at[i]);
            ck_assert_msg(closed_at[i] == 0 || closed_at[i] <= 1000 + SLOW_TIMEOUT_MS + 1000,
                          "stalled client %d dropped only at %.0f ms", i, closed_at[i]);
        } else {
            trickle_dropped += closed_at[i] > 0;
        }
    }
    fprintf(stderr, "hostile: slow clients: %d normal requests meanwhile, p99 %.2f ms; stalled clients dropped "
            "%d/%d (last at %.0f ms); one-byte-a-second clients dropped %d/%d in %.0f ms\n",
            done, p99, stalled_dropped, SLOW_CLIENTS / 2, stalled_max, trickle_dropped, SLOW_CLIENTS / 2,
            window);
    ck_assert_msg(p99 < 50.0, "p99 %.1f ms beside slow clients", p99);
    /* A client stalled after 2 bytes (its last at ~1 s) is dropped at the
     * read timeout after it (~3 s). */
    ck_assert_msg(stalled_dropped == SLOW_CLIENTS / 2, "%d of %d stalled clients still open after %.0f ms",
                  SLOW_CLIENTS / 2 - stalled_dropped, SLOW_CLIENTS / 2, window);
    /* A client that sends one byte a second restarts libevent's read
     * timeout with every byte; http.request_timeout_ms is the whole
     * request's deadline, which it does not restart (src/connwatch.c): such
     * a client is dropped once it has had no whole request for that long,
     * within the watch's one-second tick after it. */
    ck_assert_msg(trickle_dropped == SLOW_CLIENTS / 2,
                  "%d of %d one-byte-a-second clients still connected after %.0f ms "
                  "(request timeout %d ms)",
                  SLOW_CLIENTS / 2 - trickle_dropped, SLOW_CLIENTS / 2, window, SLOW_REQUEST_TIMEOUT_MS);
    for (int i = 0; i < SLOW_CLIENTS; i += 2)
        ck_assert_msg(closed_at[i] >= SLOW_REQUEST_TIMEOUT_MS - 200 &&
                          closed_at[i] <= SLOW_REQUEST_TIMEOUT_MS + 1500,
                      "one-byte-a-second client %d dropped at %.0f ms", i, closed_at[i]);
    for (int i = 0; i < SLOW_CLIENTS; i++)
        close(fds[i]);
    assert_serving(port, "slow clients");
    ck_assert_msg(gw_stop(pid) == 0, "the extra gateway did not exit 0 on SIGTERM");
}
END_TEST

/* ------------------------------------------------------------------ */
/* 7. clients that disconnect while their booking is in flight */

static long count_of(const char *sql, const char *param)
{
    const char *v[] = {param};
    char *s = pg_value(sql, 1, v);
    long n = s ? atol(s) : -1;
    free(s);
    return n;
}

/* Sends a booking on a new connection and returns the socket (still open). */
static int send_booking(int port, const char *token, const struct test_cell *c)
{
    char *b = entry_body(c, "");
    char *req = xasprintf("POST " ENTRY " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Authorization: Bearer %s\r\nContent-Length: %zu\r\n\r\n%s",
                          token, strlen(b), b);
    int fd = connect_nb(port);
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    ck_assert_int_eq(poll(&p, 1, 2000), 1);
    size_t len = strlen(req), off = 0;
    while (off < len) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else
            ck_assert_msg(errno == EAGAIN, "send: %s", strerror(errno));
    }
    free(req), free(b);
    return fd;
}

/* Closes a client: plainly (FIN) or with a reset (SO_LINGER 0). */
static void drop(int fd, bool reset)
{
    if (reset) {
        struct linger l = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    }
    close(fd);
}

/* The cell holds one active booking with its history, or none; and its
 * lock is gone within lock_ttl_ms (from since). Returns 1 if booked. */
static int cell_consistent(const struct test_cell *c, double since, int lock_ttl_ms)
{
    while (redis_exists(c->lockkey)) {
        ck_assert_msg(mono_ms() - since < lock_ttl_ms + 500, "%s still locked %.0f ms after the request",
                      c->lockkey, mono_ms() - since);
        sleep_ms(50);
    }
    long active = count_of("SELECT count(*) FROM bookings WHERE cell_guid = $1::uuid AND status = 'active'",
                           c->guid);
    ck_assert_msg(active == 0 || active == 1, "cell %s: %ld active bookings", c->guid, active);
    long bare = count_of("SELECT count(*) FROM bookings b WHERE b.cell_guid = $1::uuid AND NOT EXISTS"
                         " (SELECT 1 FROM booking_history h WHERE h.booking_guid = b.guid)",
                         c->guid);
    ck_assert_msg(bare == 0, "cell %s: %ld bookings without history", c->guid, bare);
    return (int)active;
}

#define LOCK_TTL_MS 2000

START_TEST(test_disconnect_mid_booking)
{
    bookings_clean();
    char ttl[64];
    snprintf(ttl, sizeof(ttl), "MIPGW_BOOKING_LOCK_TTL_MS=%d", LOCK_TTL_MS);
    /* One patient books many cells of one speciality: that rule is off on
     * this gateway (it is not what is tested). */
    const char *const settings[] = {ttl, "MIPGW_BOOKING_RULE_ONE_PER_SPECIALITY=false",
                                    "MIPGW_RATELIMIT_TOKEN_PER_ADDR=0", "MIPGW_RATELIMIT_TOKEN_PER_IDENTITY=0",
                                    NULL};
    pid_t pid;
    int port = gw_spawn(settings, &pid);
    char *tok = token_at(port, RPGU, IVANOV_Q);

    /* (a) 40 cells, each request dropped 0-30 ms after it was sent, all at
     * once, half by FIN and half by RST. */
    enum { N = 40 };
    struct test_cell cells[N];
    int fds[N];
    for (int i = 0; i < N; i++)
        cells[i] = internet_cell(i % 2 ? RES_THERAPIST : RES_THERAPIST2, 40 + i / 2);
    double t0 = mono_ms();
    for (int i = 0; i < N; i++) {
        fds[i] = send_booking(port, tok, &cells[i]);
        if (i % 4 == 0)
            drop(fds[i], i % 8 == 0);
    }
    for (int d = 1; d <= 30; d++) {
        sleep_ms(1);
        for (int i = 0; i < N; i++)
            if (i % 4 && (i * 7) % 31 == d)
                drop(fds[i], i % 2), fds[i] = -1;
    }
    for (int i = 0; i < N; i++)
        if (i % 4 && fds[i] >= 0)
            drop(fds[i], i % 2);
    int booked = 0;
    for (int i = 0; i < N; i++)
        booked += cell_consistent(&cells[i], t0, LOCK_TTL_MS);
    fprintf(stderr, "hostile: %d bookings dropped in flight: %d booked (with history), %d not, no lock left\n",
            N, booked, N - booked);
    assert_serving(port, "dropped bookings");

    /* (b) PostgreSQL slow: the test holds the cells' rows FOR UPDATE for a
     * second while the bookings arrive; their clients leave after 100 ms. */
    enum { M = 6 };
    struct test_cell slow[M];
    PGconn *hold = PQconnectdb(env("MIPGW_TEST_PG_CONNINFO"));
    ck_assert_msg(PQstatus(hold) == CONNECTION_OK, "pg: %s", PQerrorMessage(hold));
    PQclear(PQexec(hold, "BEGIN"));
    for (int i = 0; i < M; i++) {
        slow[i] = internet_cell(i % 2 ? RES_THERAPIST : RES_THERAPIST2, 70 + i);
        const char *v[] = {slow[i].guid};
        PGresult *res = PQexecParams(hold, "SELECT 1 FROM cells WHERE guid = $1::uuid FOR UPDATE", 1, NULL, v,
                                     NULL, NULL, 0);
        ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1, "lock: %s",
                      PQerrorMessage(hold));
        PQclear(res);
    }
    t0 = mono_ms();
    int sfd[M];
    for (int i = 0; i < M; i++)
        sfd[i] = send_booking(port, tok, &slow[i]);
    sleep_ms(100);
    for (int i = 0; i < M; i++)
        drop(sfd[i], i % 2);
    /* Meanwhile the gateway serves others. */
    struct http_resp *r = http_get_at(port, "/health", NULL);
    ck_assert_int_eq(r->status, 200);
    http_free(r);
    sleep_ms(900);
    PQclear(PQexec(hold, "COMMIT"));
    PQfinish(hold);
    booked = 0;
    for (int i = 0; i < M; i++)
        booked += cell_consistent(&slow[i], t0, LOCK_TTL_MS + 1000);
    fprintf(stderr, "hostile: %d bookings dropped while PostgreSQL was held 1 s: %d booked, %d not\n", M, booked,
            M - booked);
    /* The bookings waited for the lock, not past pg.timeout_ms (2 s): they
     * were written, their clients gone. */
    ck_assert_msg(booked == M, "only %d of %d bookings behind the held rows were written", booked, M);

    /* Each cell is still bookable as it should be: a booked one refuses
     * another patient (4009), a free one takes a booking. */
    char *petrova = token_at(port, RPGU, "n_pol=7700000000000016&birthday=1975-11-02");
    for (int i = 0; i < N; i += 5) {
        char *b = entry_body(&cells[i], "");
        char *auth = bearer(petrova);
        long before = count_of("SELECT count(*) FROM bookings WHERE cell_guid = $1::uuid AND status = 'active'",
                               cells[i].guid);
        r = post_at(port, ENTRY, auth, b);
        SANE(r, "booking after a dropped one");
        if (before)
            assert_error(r, 400, "4009", NULL, "a booked cell");
        else
            ck_assert_msg(r->status == 200, "a free cell: %d %s", r->status, show(r));
        http_free(r);
        free(b), free(auth);
    }
    free(petrova), free(tok);
    ck_assert_msg(gw_stop(pid) == 0, "the extra gateway did not exit 0 on SIGTERM (after dropped bookings)");
    bookings_clean();
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("e2e_hostile");
    TCase *in = tcase_create("input");
    tcase_set_timeout(in, 60);
    tcase_add_test(in, test_body_over_family_limit);
    tcase_add_test(in, test_body_over_max_body_size);
    tcase_add_test(in, test_headers_over_limit);
    tcase_add_test(in, test_nested_deep);
    tcase_add_test(in, test_utf8_and_types_field_by_field);
    suite_add_tcase(s, in);
    TCase *gw = tcase_create("own_gateways");
    tcase_set_timeout(gw, 60);
    tcase_add_checked_fixture(gw, spawned_reset, spawned_kill_all);
    tcase_add_test(gw, test_query_100000_params);
    tcase_add_test(gw, test_idle_connections);
    tcase_add_test(gw, test_log_reopen);
    tcase_add_test(gw, test_write_timeout);
    tcase_add_test(gw, test_drain_writes_queued_answers);
    tcase_add_test(gw, test_drain_serves_keepalive);
    tcase_add_test(gw, test_chunk_size_line_bounded);
    tcase_add_test(gw, test_max_connections);
    tcase_add_test(gw, test_max_buffered);
    tcase_add_test(gw, test_slow_clients);
    tcase_add_test(gw, test_disconnect_mid_booking);
    suite_add_tcase(s, gw);
    return s;
}

int main(void)
{
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    SRunner *sr = srunner_create(hostile_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
