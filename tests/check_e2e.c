/* check_e2e.c - the end-to-end suite: the gateway as a client sees it.
 *
 * Runs under tests/e2e.sh, which starts PostgreSQL and Redis, loads
 * etc/demo.json, starts the gateway and passes:
 *   MIPGW_TEST_URL, MIPGW_TEST_HOST, MIPGW_TEST_PORT   the gateway under test
 *   MIPGW_TEST_PG_CONNINFO, MIPGW_TEST_REDIS_PORT      its stores
 *   MIPGW_TEST_CTL        "tests/servers.sh STATE": + redis-stop|redis-start|pg-stop|pg-start
 *   MIPGW_TEST_GW_PID, MIPGW_TEST_GW_LOG               the gateway's pid and log file
 *   MIPGW_TEST_BIN        the gateway binary (the rate-limit tests start their own)
 *   MIPGW_TEST_PORTAL_KEY the portals' key the gateway runs with (MIPGW_TOKENS_PORTAL_KEY)
 * and the stores' MIPGW_PG_CONNINFO, MIPGW_REDIS_HOST, MIPGW_REDIS_PORT,
 * which a gateway started here inherits.
 *
 * Every identity below is one of the demo data set's. The tests that stop a
 * store come last, and each brings its store back in a teardown (the checked
 * one right away, the unchecked one in the runner even when the test was
 * killed). No state is shared between tests: CK_FORK=no runs alike. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jwt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <yajl/yajl_tree.h>

#include "config.h"
#include "e2e_util.h"
#include "httpc.h"
#include "identity.h"
#include "token.h"
#include "util.h"

extern char **environ;

/* ------------------------------------------------------------------ */
/* The demo data (etc/demo.json) */

#define APP_INTERNET "a4caea4f-4906-47e4-a0d3-0081e3314a4c"
#define APP_INFOMAT "6de3312b-ddd2-4ce2-9288-6ace2e6685e5"

#define LPU_470102 "c3c977af-c3b4-4517-9d57-50a6844ec660"
#define LPU_330501 "5409f503-f01a-4f2f-a57a-91979fb19f42"

/* Иванов Иван Иванович */
#define IVANOV_ENP "5000000000000041"
#define IVANOV_BDAY "1985-03-14"
#define IVANOV_SNILS "12345678964"
#define IVANOV_SNILS_SEP "123-456-789 64"
#define IVANOV_DOC_S "4603"
#define IVANOV_DOC_N "123456"
#define IVANOV_MKAB "9b58e84c-1362-4824-9df3-97e0767c41ff"

/* Петрова: two cards of one person */
#define PETROVA_ENP "7700000000000016"
#define PETROVA_BDAY "1975-11-02"
#define PETROVA_MKAB_1 "4607cff1-5539-4ac5-b094-32cabc35379c" /* 470102 */
#define PETROVA_MKAB_2 "1c6017ce-a82f-44cf-9459-71e2e1107bb7" /* 330501 */

/* Козлов: old-style polis ЕЕ 123456789 */
#define KOZLOV_S_POL "ЕЕ"
#define KOZLOV_N_POL "123456789"
#define KOZLOV_BDAY "1990-07-07"
#define KOZLOV_MKAB "479a067e-af23-4627-8889-0e736bac9c8f"

/* Федоров Пётр Алексеевич: two cards */
#define FEDOROV_ENP "5000000000000074"
#define FEDOROV_BDAY "1960-02-10"
#define FEDOROV_SNILS "67890123438"

/* Used by the rate-limit tests only, so that no other test spends their
 * per-identity budget (the counters live in the shared Redis). */
#define SIDOROV_ENP "5000000000000058"
#define SIDOROV_BDAY "2018-05-20"
#define SMIRNOVA_ENP "5000000000000066"
#define SMIRNOVA_BDAY "1992-01-30"

/* The catalogue's texts, letter for letter (src/errors.c). */
#define MSG_4001 "По вашему полису и дате рождения не найдено ни одной медицинской карты."
#define MSG_4104 "Набор параметров не соответствует ни одному способу идентификации пациента"
#define MSG_4106 "Слишком много параметров в запросе"
#define MSG_4140 "Метод не найден"
#define MSG_4290 "Слишком много запросов. Повторите попытку позже."
#define MSG_5007 "Время действия токена истекло"
#define MSG_5008 "Токен некорректен"
#define MSG_5009 "Подпись запроса некорректна"
#define MSG_5010 "Запрос должен содержать 'Authorization: Bearer ...'\""
#define MSG_5030 "Хранилище данных временно недоступно. Повторите попытку позже."
#define MSG_5096 "Клиентское приложение с данным идентификатором не найдено"
#define MSG_5097 "Не удалось получить данные о медицинских картах пациента."
#define MSG_4100(f) "Не указан обязательный параметр " f
#define MSG_4101(f) "Параметр " f " имеет неверный формат"
#define MSG_4102(f) "Параметр " f " не прошёл проверку контрольного числа"
#define MSG_4103(a, b) "Параметры " a " и " b " указываются только вместе"
#define MSG_4105(f) "Параметр " f " не поддерживается"
#define MSG_4150(m) "Метод " m " не поддерживается для этого адреса"

#define COD "/auth/cod/token"
#define RPGU "/auth/rpgu/token"
#define TOKEN_TTL_S 600

/* ------------------------------------------------------------------ */
/* Small helpers */

/* ---- base64url ---- */

static int b64v(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Decodes n characters of unpadded base64url; malloc'd, NUL-terminated. */
static char *b64url_decode(const char *s, size_t n)
{
    char *out = malloc(n * 3 / 4 + 4);
    ck_assert_ptr_nonnull(out);
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64v(s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return out;
}

static char *b64url_encode(const unsigned char *p, size_t n)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = malloc(n * 4 / 3 + 4);
    ck_assert_ptr_nonnull(out);
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = a[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = a[(acc << (6 - bits)) & 63];
    out[o] = '\0';
    return out;
}

/* The three segments of a JWT: header and payload decoded; sig as is. */
struct jwt_parts {
    char *header;
    char *payload;
    char *h64, *p64, *sig;
};

static void jwt_split(const char *token, struct jwt_parts *j)
{
    memset(j, 0, sizeof(*j));
    const char *d1 = strchr(token, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    ck_assert_msg(d1 && d2 && !strchr(d2 + 1, '.'), "token is not three segments: %.60s", token);
    j->h64 = strndup(token, (size_t)(d1 - token));
    j->p64 = strndup(d1 + 1, (size_t)(d2 - d1 - 1));
    j->sig = strdup(d2 + 1);
    j->header = b64url_decode(j->h64, strlen(j->h64));
    j->payload = b64url_decode(j->p64, strlen(j->p64));
    ck_assert_msg(j->header && j->payload, "token segments are not base64url");
}

static void jwt_parts_free(struct jwt_parts *j)
{
    free(j->header);
    free(j->payload);
    free(j->h64);
    free(j->p64);
    free(j->sig);
}

/* "2026-11-23T12:44:16+03:00" to seconds since the epoch. */
static bool parse_ts(const char *s, long long *epoch, int *offset_s)
{
    int Y, M, D, h, m, sec, oh, om, used = 0;
    char sign;
    if (!s || strlen(s) != 25)
        return false;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &sign, &oh, &om,
               &used) != 9 || used != 25 || (sign != '+' && sign != '-') || s[4] != '-' || s[7] != '-' ||
        s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[22] != ':')
        return false;
    struct tm tm = {0};
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    int off = (oh * 3600 + om * 60) * (sign == '-' ? -1 : 1);
    *epoch = (long long)timegm(&tm) - off;
    if (offset_s)
        *offset_s = off;
    return true;
}

/* ------------------------------------------------------------------ */
/* Assertions on answers */


/* GET path (with an optional extra header line) and check the error. */
static void expect_error_at(const char *path, const char *header, int status, const char *code,
                            const char *msg, int line)
{
    struct http_resp *r = header ? http_get(path, header, NULL) : http_get(path, NULL);
    assert_error_at(r, status, code, msg, path, line);
    http_free(r);
}
#define expect_error(path, header, status, code, msg) \
    expect_error_at(path, header, status, code, msg, __LINE__)

/* What a token answer held. */
struct issued {
    char *token;
    char person[37];
    long long iat, exp;
};

static void issued_free(struct issued *t)
{
    free(t->token);
    t->token = NULL;
}

/* Checks a 200 token answer in full (shape, times, claims) and returns the
 * token and what it says. type: "CodToken"/"RpguToken"; source: the client
 * application's mnemonic. */
static struct issued check_issued_at(const struct http_resp *r, const char *type, const char *source,
                                     const char *what, int line)
{
    struct issued t;
    memset(&t, 0, sizeof(t));
    ck_assert_msg(r->status == 200, "line %d: %s: status %d, body %s", line, what, r->status, show(r));
    const char *ct = http_header(r, "Content-Type");
    ck_assert_msg(ct && strncmp(ct, "application/json", 16) == 0, "line %d: %s: Content-Type %s", line,
                  what, ct ? ct : "(none)");
    yajl_val v = jbody(r, what);
    static const char *const keys[] = {"token", "tokenBeginLifeTime", "tokenEndLifeTime"};
    ck_assert_msg(jkeys_exactly(v, keys, 3), "line %d: %s: keys are not exactly %s: %s", line, what,
                  "{token, tokenBeginLifeTime, tokenEndLifeTime}", show(r));
    const char *tok = jstr(v, "token"), *b = jstr(v, "tokenBeginLifeTime"),
               *e = jstr(v, "tokenEndLifeTime");
    ck_assert_msg(tok && b && e, "line %d: %s: a field is not a string: %s", line, what, show(r));
    long long tb, te;
    int off;
    ck_assert_msg(parse_ts(b, &tb, &off) && parse_ts(e, &te, NULL),
                  "line %d: %s: timestamps not YYYY-MM-DDThh:mm:ss+hh:mm: %s / %s", line, what, b, e);
    ck_assert_msg(strcmp(b + 19, "+03:00") == 0 && strcmp(e + 19, "+03:00") == 0,
                  "line %d: %s: timestamps not in Moscow time (+03:00): %s / %s", line, what, b, e);
    ck_assert_msg(te - tb == TOKEN_TTL_S, "line %d: %s: lifetime %lld s, want %d (%s .. %s)", line,
                  what, te - tb, TOKEN_TTL_S, b, e);
    long long now = (long long)time(NULL);
    ck_assert_msg(tb >= now - 60 && tb <= now + 5, "line %d: %s: begin %s is not now", line, what, b);

    struct jwt_parts j;
    jwt_split(tok, &j);
    yajl_val h = jparse_str(j.header);
    ck_assert_msg(h && jstr(h, "alg") && strcmp(jstr(h, "alg"), "HS256") == 0,
                  "line %d: %s: JWT header %s", line, what, j.header);
    yajl_tree_free(h);
    yajl_val p = jparse_str(j.payload);
    ck_assert_msg(p && YAJL_IS_OBJECT(p), "line %d: %s: JWT payload is not an object: %s", line, what,
                  j.payload);
    yajl_val pg = jget(jget(p, "Payload"), "PersonGuid");
    ck_assert_msg(pg && YAJL_IS_ARRAY(pg) && pg->u.array.len == 1 &&
                      is_guid(YAJL_GET_STRING(pg->u.array.values[0])),
                  "line %d: %s: Payload.PersonGuid is not an array of one GUID: %s", line, what,
                  j.payload);
    snprintf(t.person, sizeof(t.person), "%s", YAJL_GET_STRING(pg->u.array.values[0]));
    ck_assert_msg(jstr(p, "tokenType") && strcmp(jstr(p, "tokenType"), type) == 0,
                  "line %d: %s: tokenType want %s: %s", line, what, type, j.payload);
    ck_assert_msg(jstr(p, "authSource") && strcmp(jstr(p, "authSource"), source) == 0,
                  "line %d: %s: authSource want %s: %s", line, what, source, j.payload);
    ck_assert_msg(YAJL_IS_FALSE(jget(p, "privilege")), "line %d: %s: privilege is not false: %s", line,
                  what, j.payload);
    yajl_val iat = jget(p, "iat"), exp = jget(p, "exp");
    ck_assert_msg(YAJL_IS_INTEGER(iat) && YAJL_IS_INTEGER(exp), "line %d: %s: iat/exp missing: %s",
                  line, what, j.payload);
    t.iat = YAJL_GET_INTEGER(iat);
    t.exp = YAJL_GET_INTEGER(exp);
    ck_assert_msg(t.iat == tb && t.exp == te, "line %d: %s: iat/exp %lld/%lld disagree with %s/%s", line,
                  what, t.iat, t.exp, b, e);
    ck_assert_msg(is_guid(jstr(p, "jti")), "line %d: %s: jti is not a GUID: %s", line, what, j.payload);
    ck_assert_msg(jstr(p, "TokenBeginLifeTime") && strcmp(jstr(p, "TokenBeginLifeTime"), b) == 0 &&
                      jstr(p, "TokenEndLifeTime") && strcmp(jstr(p, "TokenEndLifeTime"), e) == 0,
                  "line %d: %s: Token*LifeTime claims differ from the answer: %s", line, what,
                  j.payload);
    yajl_tree_free(p);
    jwt_parts_free(&j);
    t.token = strdup(tok);
    yajl_tree_free(v);
    return t;
}
#define check_issued(r, type, source, what) check_issued_at(r, type, source, what, __LINE__)

/* GET a token endpoint path that must succeed. */
static struct issued issue_at(const char *path, const char *app, const char *type, const char *source,
                              int line)
{
    char hdr[96];
    struct http_resp *r;
    if (app) {
        snprintf(hdr, sizeof(hdr), "ClientApplication: %s", app);
        r = http_get(path, hdr, NULL);
    } else {
        r = http_get(path, NULL);
    }
    struct issued t = check_issued_at(r, type, source, path, line);
    http_free(r);
    return t;
}
#define issue(path, app, type, source) issue_at(path, app, type, source, __LINE__)
#define issue_cod(path) issue_at(path, NULL, "CodToken", "Internet", __LINE__)

static struct issued issue_ivanov(void)
{
    char *p = qpath(COD, "n_pol", IVANOV_ENP, "birthday", IVANOV_BDAY, NULL);
    struct issued t = issue_cod(p);
    free(p);
    return t;
}

static struct http_resp *session_raw(const char *authorization)
{
    if (!authorization)
        return http_get("/auth/session", NULL);
    char *h = xasprintf("Authorization: %s", authorization);
    struct http_resp *r = http_get("/auth/session", h, NULL);
    free(h);
    return r;
}

static struct http_resp *session_of(const char *token)
{
    char *a = xasprintf("Bearer %s", token);
    struct http_resp *r = session_raw(a);
    free(a);
    return r;
}

/* /auth/session for token: 200 with the documented shape; returns the
 * parsed body (the caller frees). */
static yajl_val session_ok_at(const char *token, int line)
{
    struct http_resp *r = session_of(token);
    ck_assert_msg(r->status == 200, "line %d: /auth/session: status %d, body %s", line, r->status,
                  show(r));
    yajl_val v = jbody(r, "/auth/session");
    static const char *const keys[] = {"personGuid", "tokenType", "authSource", "portalMinted",
                                       "sessionSource", "cards"};
    ck_assert_msg(jkeys_exactly(v, keys, 6), "line %d: /auth/session: unexpected keys: %s", line,
                  show(r));
    yajl_val cards = jget(v, "cards");
    ck_assert_msg(YAJL_IS_ARRAY(cards), "line %d: cards is not an array: %s", line, show(r));
    for (size_t i = 0; i < cards->u.array.len; i++) {
        yajl_val c = cards->u.array.values[i];
        static const char *const ck[] = {"lpuGuid", "mkabGuid"};
        ck_assert_msg(jkeys_exactly(c, ck, 2) && is_guid(jstr(c, "lpuGuid")) &&
                          is_guid(jstr(c, "mkabGuid")),
                      "line %d: a card is not {lpuGuid, mkabGuid}: %s", line, show(r));
    }
    http_free(r);
    return v;
}
#define session_ok(token) session_ok_at(token, __LINE__)

static bool has_card(yajl_val session, const char *lpu, const char *mkab)
{
    yajl_val cards = jget(session, "cards");
    for (size_t i = 0; cards && i < cards->u.array.len; i++) {
        yajl_val c = cards->u.array.values[i];
        if (strcmp(jstr(c, "lpuGuid"), lpu) == 0 && strcmp(jstr(c, "mkabGuid"), mkab) == 0)
            return true;
    }
    return false;
}

static size_t ncards(yajl_val session)
{
    yajl_val cards = jget(session, "cards");
    return cards && YAJL_IS_ARRAY(cards) ? cards->u.array.len : 0;
}

static void assert_session_at(yajl_val s, const char *person, const char *type, const char *source,
                              bool portal, const char *from, int line)
{
    ck_assert_msg(person == NULL || (jstr(s, "personGuid") && strcmp(jstr(s, "personGuid"), person) == 0),
                  "line %d: session personGuid %s, want %s", line, jstr(s, "personGuid"), person);
    ck_assert_msg(jstr(s, "tokenType") && strcmp(jstr(s, "tokenType"), type) == 0,
                  "line %d: session tokenType %s, want %s", line, jstr(s, "tokenType"), type);
    ck_assert_msg(jstr(s, "authSource") && strcmp(jstr(s, "authSource"), source) == 0,
                  "line %d: session authSource %s, want %s", line, jstr(s, "authSource"), source);
    ck_assert_msg(portal ? YAJL_IS_TRUE(jget(s, "portalMinted")) : YAJL_IS_FALSE(jget(s, "portalMinted")),
                  "line %d: session portalMinted is not %s", line, portal ? "true" : "false");
    ck_assert_msg(from == NULL ||
                      (jstr(s, "sessionSource") && strcmp(jstr(s, "sessionSource"), from) == 0),
                  "line %d: sessionSource %s, want %s", line, jstr(s, "sessionSource"), from);
}
#define assert_session(s, person, type, source, portal, from) \
    assert_session_at(s, person, type, source, portal, from, __LINE__)

/* ------------------------------------------------------------------ */
/* Processes and stores */

/* ------------------------------------------------------------------ */
/* 1. Every identification method of seed 000 */

START_TEST(test_token_enp_birthday)
{
    struct issued t = issue_ivanov();
    /* The token stands for Иванов and his one card, from Redis. */
    yajl_val s = session_ok(t.token);
    assert_session(s, t.person, "CodToken", "Internet", false, "redis");
    ck_assert_msg(ncards(s) == 1 && has_card(s, LPU_470102, IVANOV_MKAB),
                  "Иванов's session does not list exactly his card");
    yajl_tree_free(s);

    /* Asked again: the identity now comes from the cache, and the session
     * that the cache path writes is just as whole. */
    struct issued t2 = issue_ivanov();
    ck_assert_str_eq(t2.person, t.person);
    ck_assert_str_ne(t2.token, t.token);
    s = session_ok(t2.token);
    assert_session(s, t.person, "CodToken", "Internet", false, "redis");
    ck_assert_msg(ncards(s) == 1 && has_card(s, LPU_470102, IVANOV_MKAB), "cached path: cards");
    yajl_tree_free(s);

    /* An empty s_pol is the same as none; userLpu and login are ignored. */
    char *p = qpath(COD, "s_pol", "", "n_pol", IVANOV_ENP, "birthday", IVANOV_BDAY, "userLpu",
                    LPU_470102, "login", "someone", NULL);
    struct issued t3 = issue_cod(p);
    free(p);
    ck_assert_str_eq(t3.person, t.person);
    issued_free(&t);
    issued_free(&t2);
    issued_free(&t3);
}
END_TEST

START_TEST(test_token_rpgu_endpoint)
{
    char *p = qpath(RPGU, "n_pol", IVANOV_ENP, "birthday", IVANOV_BDAY, NULL);
    struct issued t = issue(p, NULL, "RpguToken", "Internet");
    yajl_val s = session_ok(t.token);
    assert_session(s, t.person, "RpguToken", "Internet", false, "redis");
    yajl_tree_free(s);
    issued_free(&t);
    /* Twice: the cache path must record the RPGU type as well. */
    t = issue(p, NULL, "RpguToken", "Internet");
    s = session_ok(t.token);
    assert_session(s, t.person, "RpguToken", "Internet", false, "redis");
    yajl_tree_free(s);
    issued_free(&t);
    free(p);
}
END_TEST

START_TEST(test_token_client_applications)
{
    char *p = qpath(COD, "n_pol", IVANOV_ENP, "birthday", IVANOV_BDAY, NULL);
    struct issued t = issue(p, APP_INFOMAT, "CodToken", "Infomat");
    yajl_val s = session_ok(t.token);
    assert_session(s, t.person, "CodToken", "Infomat", false, "redis");
    yajl_tree_free(s);
    issued_free(&t);
    /* The default application named explicitly, in upper case. */
    t = issue(p, "A4CAEA4F-4906-47E4-A0D3-0081E3314A4C", "CodToken", "Internet");
    issued_free(&t);
    t = issue(p, APP_INTERNET, "CodToken", "Internet");
    issued_free(&t);
    free(p);
    p = qpath(RPGU, "n_pol", IVANOV_ENP, "birthday", IVANOV_BDAY, NULL);
    t = issue(p, APP_INFOMAT, "RpguToken", "Infomat");
    issued_free(&t);
    free(p);
}
END_TEST

START_TEST(test_token_old_style_polis)
{
    struct issued ref;
    char *p = qpath(COD, "s_pol", KOZLOV_S_POL, "n_pol", KOZLOV_N_POL, "birthday", KOZLOV_BDAY, NULL);
    ck_assert_msg(strstr(p, "s_pol=%D0%95%D0%95&") != NULL, "encoding: %s", p);
    ref = issue_cod(p);
    free(p);
    yajl_val s = session_ok(ref.token);
    ck_assert_msg(ncards(s) == 1 && has_card(s, LPU_470102, KOZLOV_MKAB), "Козлов's card");
    yajl_tree_free(s);
    /* The series in lower case, and with a space, is the same polis. */
    static const char *const series[] = {"ее", "Е Е", "е-е"};
    for (size_t i = 0; i < sizeof(series) / sizeof(series[0]); i++) {
        p = qpath(COD, "s_pol", series[i], "n_pol", KOZLOV_N_POL, "birthday", KOZLOV_BDAY, NULL);
        struct issued t = issue_cod(p);
        ck_assert_msg(strcmp(t.person, ref.person) == 0, "%s: another person", p);
        issued_free(&t);
        free(p);
    }
    /* The number alone is not his polis. */
    p = qpath(COD, "n_pol", KOZLOV_N_POL, "birthday", KOZLOV_BDAY, NULL);
    expect_error(p, NULL, 404, "4001", MSG_4001);
    free(p);
    issued_free(&ref);
}
END_TEST

START_TEST(test_token_personguid_and_mkab)
{
    struct issued ref = issue_ivanov();
    char *p = qpath(COD, "personguid", ref.person, NULL);
    struct issued t = issue_cod(p);
    ck_assert_str_eq(t.person, ref.person);
    issued_free(&t);
    free(p);
    /* A GUID in upper case is the same GUID. */
    char upper[37];
    for (int i = 0; i < 37; i++)
        upper[i] = (char)(ref.person[i] >= 'a' && ref.person[i] <= 'f' ? ref.person[i] - 32 : ref.person[i]);
    p = qpath(RPGU, "personguid", upper, NULL);
    t = issue(p, NULL, "RpguToken", "Internet");
    ck_assert_str_eq(t.person, ref.person);
    issued_free(&t);
    free(p);

    p = qpath(COD, "mkab", IVANOV_MKAB, NULL);
    t = issue_cod(p);
    ck_assert_str_eq(t.person, ref.person);
    issued_free(&t);
    free(p);

    /* A card of another person gives that person. */
    p = qpath(COD, "mkab", PETROVA_MKAB_2, NULL);
    t = issue_cod(p);
    ck_assert_str_ne(t.person, ref.person);
    issued_free(&t);
    free(p);

    /* Unknown person or card: 404/4001. */
    p = qpath(COD, "personguid", "00000000-0000-4000-8000-000000000001", NULL);
    expect_error(p, NULL, 404, "4001", MSG_4001);
    free(p);
    p = qpath(COD, "mkab", "00000000-0000-4000-8000-000000000002", NULL);
    expect_error(p, NULL, 404, "4001", MSG_4001);
    free(p);
    issued_free(&ref);
}
END_TEST

START_TEST(test_token_snils)
{
    struct issued ref = issue_ivanov();
    static const char *const forms[] = {IVANOV_SNILS, IVANOV_SNILS_SEP, "123-456-789-64"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        char *p = qpath(COD, "snils", forms[i], "birthday", IVANOV_BDAY, NULL);
        struct issued t = issue_cod(p);
        ck_assert_msg(strcmp(t.person, ref.person) == 0, "%s: another person", p);
        issued_free(&t);
        free(p);
    }
    char *p = qpath(COD, "snils", IVANOV_SNILS, "birthday", "1985-03-15", NULL);
    expect_error(p, NULL, 404, "4001", MSG_4001);
    free(p);
    issued_free(&ref);
}
END_TEST

START_TEST(test_token_passport)
{
    struct issued ref = issue_ivanov();
    char *p = qpath(COD, "s_doc", IVANOV_DOC_S, "n_doc", IVANOV_DOC_N, NULL);
    struct issued t = issue(p, APP_INFOMAT, "CodToken", "Infomat");
    ck_assert_str_eq(t.person, ref.person);
    issued_free(&t);
    free(p);
    p = qpath(COD, "s_doc", "46 03", "n_doc", IVANOV_DOC_N, NULL);
    t = issue_cod(p);
    ck_assert_str_eq(t.person, ref.person);
    issued_free(&t);
    free(p);
    p = qpath(COD, "s_doc", IVANOV_DOC_S, "n_doc", "654321", NULL);
    expect_error(p, NULL, 404, "4001", MSG_4001);
    free(p);
    issued_free(&ref);
}
END_TEST

/* The federal (ЕПГУ/ФЭР) combinations, all for Иванов. */
static const char *const federal_ok[][16] = {
    /* ОМС + СНИЛС + дата рождения */
    {"ergu", "true", "n_pol", IVANOV_ENP, "snils", IVANOV_SNILS, "birthday", IVANOV_BDAY, NULL},
    {"epgu", "true", "n_pol", IVANOV_ENP, "snils", IVANOV_SNILS_SEP, "birthday", IVANOV_BDAY, NULL},
    /* ОМС + СНИЛС + фамилия, any birthday */
    {"ergu", "true", "n_pol", IVANOV_ENP, "snils", IVANOV_SNILS, "family", "Иванов", "birthday",
     "2001-01-01", NULL},
    {"ergu", "true", "n_pol", IVANOV_ENP, "snils", IVANOV_SNILS, "f", "ИВАНОВ", "birthday",
     "2001-01-02", NULL},
    /* ОМС + СНИЛС + имя + отчество, any birthday */
    {"ergu", "true", "n_pol", IVANOV_ENP, "snils", IVANOV_SNILS, "name", "Иван", "patronymic",
     "Иванович", "birthday", "2001-01-03", NULL},
    {"epgu", "true", "n_pol", IVANOV_ENP, "snils", IVANOV_SNILS, "n", "иван", "p", "ИВАНОВИЧ",
     "birthday", "2001-01-04", NULL},
    /* ОМС + дата рождения + имя */
    {"ergu", "true", "n_pol", IVANOV_ENP, "birthday", IVANOV_BDAY, "name", "Иван", NULL},
    /* СНИЛС + дата рождения + имя */
    {"ergu", "true", "snils", IVANOV_SNILS, "birthday", IVANOV_BDAY, "n", "Иван", NULL},
    /* all of them */
    {"ergu", "true", "f", "Иванов", "n", "Иван", "p", "Иванович", "snils", IVANOV_SNILS, "n_pol",
     IVANOV_ENP, "birthday", IVANOV_BDAY, NULL},
    /* "1" is true too */
    {"ergu", "1", "n_pol", IVANOV_ENP, "snils", IVANOV_SNILS, "birthday", IVANOV_BDAY, NULL},
};

static char *qpath_list(const char *base, const char *const *kv)
{
    /* At most 7 pairs in the tables. */
    const char *a[16] = {0};
    for (int i = 0; i < 16 && kv[i]; i++)
        a[i] = kv[i];
    return qpath(base, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11],
                 a[12], a[13], a[14], a[15], NULL);
}

START_TEST(test_token_federal)
{
    struct issued ref = issue_ivanov();
    for (size_t i = 0; i < sizeof(federal_ok) / sizeof(federal_ok[0]); i++) {
        char *p = qpath_list(COD, federal_ok[i]);
        struct issued t = issue_cod(p);
        ck_assert_msg(strcmp(t.person, ref.person) == 0, "%s: another person", p);
        issued_free(&t);
        free(p);
    }
    issued_free(&ref);
}
END_TEST

/* Federal requests whose combinations are whole but do not match. */
static const char *const federal_nomatch[][16] = {
    /* wrong family, and the birthday (any) does not save it */
    {"ergu", "true", "n_pol", IVANOV_ENP, "snils", IVANOV_SNILS, "family", "Петров", "birthday",
     "2001-01-01", NULL},
    /* right name, wrong patronymic, wrong birthday */
    {"ergu", "true", "n_pol", IVANOV_ENP, "snils", IVANOV_SNILS, "name", "Иван", "patronymic",
     "Петрович", "birthday", "2001-01-01", NULL},
    /* ОМС + birthday + the wrong name */
    {"ergu", "true", "n_pol", IVANOV_ENP, "birthday", IVANOV_BDAY, "name", "Пётр", NULL},
    /* СНИЛС + birthday + name: the birthday is wrong */
    {"ergu", "true", "snils", IVANOV_SNILS, "birthday", "1985-03-15", "name", "Иван", NULL},
    /* someone else's SNILS with Иванов's polis */
    {"ergu", "true", "n_pol", IVANOV_ENP, "snils", FEDOROV_SNILS, "birthday", IVANOV_BDAY, NULL},
};

START_TEST(test_token_federal_nomatch)
{
    for (size_t i = 0; i < sizeof(federal_nomatch) / sizeof(federal_nomatch[0]); i++) {
        char *p = qpath_list(COD, federal_nomatch[i]);
        expect_error(p, NULL, 404, "4001", MSG_4001);
        free(p);
    }
}
END_TEST

START_TEST(test_token_federal_name_folding)
{
    /* Федоров Пётр: names match without regard to case, ё/е and the spaces
     * around them. */
    static const char *const names[] = {"Пётр", "ПЕТР", "пётр", "Петр", "ПЁТР", "  Пётр "};
    char ref_person[37] = "";
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char *p = qpath(COD, "ergu", "true", "n_pol", FEDOROV_ENP, "birthday", FEDOROV_BDAY, "n",
                        names[i], NULL);
        struct issued t = issue_cod(p);
        if (!ref_person[0])
            memcpy(ref_person, t.person, 37);
        ck_assert_msg(strcmp(t.person, ref_person) == 0, "%s: another person", p);
        issued_free(&t);
        free(p);
    }
    char *p = qpath(COD, "ergu", "true", "n_pol", FEDOROV_ENP, "snils", FEDOROV_SNILS, "family",
                    "ФЁДОРОВ", "birthday", "2000-01-01", NULL);
    struct issued t = issue_cod(p);
    ck_assert_str_eq(t.person, ref_person);
    /* Федоров has two cards, in 470102 and 330501. */
    yajl_val s = session_ok(t.token);
    ck_assert_msg(ncards(s) == 2, "Федоров's session lists %zu cards", ncards(s));
    yajl_tree_free(s);
    issued_free(&t);
    free(p);
    p = qpath(COD, "ergu", "true", "n_pol", FEDOROV_ENP, "birthday", FEDOROV_BDAY, "n", "Павел", NULL);
    expect_error(p, NULL, 404, "4001", MSG_4001);
    free(p);
}
END_TEST

/* 2. One person, two cards */
START_TEST(test_two_cards_one_person)
{
    char *p = qpath(COD, "n_pol", PETROVA_ENP, "birthday", PETROVA_BDAY, NULL);
    struct issued t = issue_cod(p);
    free(p);
    yajl_val s = session_ok(t.token);
    assert_session(s, t.person, "CodToken", "Internet", false, "redis");
    ck_assert_msg(ncards(s) == 2, "Петрова's session lists %zu cards, want 2", ncards(s));
    ck_assert_msg(has_card(s, LPU_470102, PETROVA_MKAB_1), "no card 4607cff1 in 470102");
    ck_assert_msg(has_card(s, LPU_330501, PETROVA_MKAB_2), "no card 1c6017ce in 330501");
    yajl_tree_free(s);

    /* Each card leads to the same person. */
    static const char *const mkabs[] = {PETROVA_MKAB_1, PETROVA_MKAB_2};
    for (int i = 0; i < 2; i++) {
        p = qpath(COD, "mkab", mkabs[i], NULL);
        struct issued t2 = issue_cod(p);
        ck_assert_msg(strcmp(t2.person, t.person) == 0, "%s: another person", p);
        s = session_ok(t2.token);
        ck_assert_msg(ncards(s) == 2, "%s: %zu cards", p, ncards(s));
        yajl_tree_free(s);
        issued_free(&t2);
        free(p);
    }
    /* Her passport is on both cards: still one person. */
    p = qpath(COD, "s_doc", "4505", "n_doc", "222333", NULL);
    struct issued t3 = issue_cod(p);
    ck_assert_str_eq(t3.person, t.person);
    issued_free(&t3);
    free(p);
    issued_free(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 3. Errors of the token endpoints */

struct err_case {
    const char *path;        /* raw, already encoded */
    const char *header;      /* one extra header line, or NULL */
    int status;
    const char *code;
    const char *msg;
};

#define IV "n_pol=" IVANOV_ENP "&birthday=" IVANOV_BDAY
#define P33 "userLpu=1&userLpu=2&userLpu=3&userLpu=4&userLpu=5&userLpu=6&userLpu=7&userLpu=8&" \
            "userLpu=9&userLpu=10&userLpu=11&userLpu=12&userLpu=13&userLpu=14&userLpu=15&" \
            "userLpu=16&userLpu=17&userLpu=18&userLpu=19&userLpu=20&userLpu=21&userLpu=22&" \
            "userLpu=23&userLpu=24&userLpu=25&userLpu=26&userLpu=27&userLpu=28&userLpu=29&" \
            "userLpu=30&userLpu=31&"

static const struct err_case err_cases[] = {
    /* client applications */
    {COD "?" IV, "ClientApplication: 11111111-2222-4333-8444-555555555555", 403, "5096", MSG_5096},
    {RPGU "?" IV, "ClientApplication: 11111111-2222-4333-8444-555555555555", 403, "5096", MSG_5096},
    {COD "?" IV, "ClientApplication: Internet", 400, "4101", MSG_4101("ClientApplication")},
    {COD "?" IV, "ClientApplication: {a4caea4f-4906-47e4-a0d3-0081e3314a4c}", 400, "4101",
     MSG_4101("ClientApplication")},
    /* no person */
    {COD "?n_pol=" IVANOV_ENP "&birthday=1985-03-15", NULL, 404, "4001", MSG_4001},
    {RPGU "?n_pol=" IVANOV_ENP "&birthday=1985-03-15", NULL, 404, "4001", MSG_4001},
    {COD "?n_pol=5000000000000082&birthday=1985-03-14", NULL, 404, "4001", MSG_4001},
    /* check digits */
    {COD "?n_pol=5000000000000042&birthday=" IVANOV_BDAY, NULL, 400, "4102", MSG_4102("n_pol")},
    {COD "?snils=12345678965&birthday=" IVANOV_BDAY, NULL, 400, "4102", MSG_4102("snils")},
    {COD "?snils=123-456-789%2065&birthday=" IVANOV_BDAY, NULL, 400, "4102", MSG_4102("snils")},
    /* formats */
    {COD "?n_pol=" IVANOV_ENP "&birthday=2023-02-29", NULL, 400, "4101", MSG_4101("birthday")},
    {COD "?n_pol=" IVANOV_ENP "&birthday=1985-3-14", NULL, 400, "4101", MSG_4101("birthday")},
    {COD "?n_pol=" IVANOV_ENP "&birthday=14.03.1985", NULL, 400, "4101", MSG_4101("birthday")},
    {COD "?n_pol=50000000000000411&birthday=" IVANOV_BDAY, NULL, 400, "4101", MSG_4101("n_pol")},
    {COD "?snils=1234567896&birthday=" IVANOV_BDAY, NULL, 400, "4101", MSG_4101("snils")},
    {COD "?personguid=not-a-guid", NULL, 400, "4101", MSG_4101("personguid")},
    {COD "?mkab=9b58e84c13624824", NULL, 400, "4101", MSG_4101("mkab")},
    {COD "?s_doc=46a3&n_doc=123456", NULL, 400, "4101", MSG_4101("s_doc")},
    {COD "?s_doc=4603&n_doc=12345", NULL, 400, "4101", MSG_4101("n_doc")},
    /* pairs and requirements */
    {COD "?s_doc=4603", NULL, 400, "4103", MSG_4103("s_doc", "n_doc")},
    {COD "?n_doc=123456", NULL, 400, "4103", MSG_4103("s_doc", "n_doc")},
    {COD "?n_pol=" IVANOV_ENP, NULL, 400, "4100", MSG_4100("birthday")},
    {COD "?snils=" IVANOV_SNILS, NULL, 400, "4100", MSG_4100("birthday")},
    {COD "?s_pol=%D0%95%D0%95&birthday=" KOZLOV_BDAY, NULL, 400, "4100", MSG_4100("n_pol")},
    {COD "?ergu=true&n_pol=" IVANOV_ENP "&snils=" IVANOV_SNILS "&family=%D0%98%D0%B2%D0%B0%D0%BD"
         "%D0%BE%D0%B2", NULL, 400, "4100", MSG_4100("birthday")},
    /* no method */
    {COD, NULL, 400, "4104", MSG_4104},
    {COD "?", NULL, 400, "4104", MSG_4104},
    {COD "?birthday=" IVANOV_BDAY, NULL, 400, "4104", MSG_4104},
    {COD "?ergu=true&" IV, NULL, 400, "4104", MSG_4104},
    {COD "?ergu=true&snils=" IVANOV_SNILS "&birthday=" IVANOV_BDAY, NULL, 400, "4104", MSG_4104},
    /* unknown and unsupported parameters */
    {COD "?" IV "&foo=1", NULL, 400, "4105", MSG_4105("foo")},
    {COD "?N_POL=" IVANOV_ENP "&birthday=" IVANOV_BDAY, NULL, 400, "4105", MSG_4105("N_POL")},
    {RPGU "?ergu=true&" IV "&snils=" IVANOV_SNILS, NULL, 400, "4105", MSG_4105("ergu")},
    {RPGU "?epgu=true&" IV "&snils=" IVANOV_SNILS, NULL, 400, "4105", MSG_4105("epgu")},
    {COD "?ergu=maybe&" IV, NULL, 400, "4101", MSG_4101("ergu")},
    /* 33 parameters (the limit is 32) */
    {COD "?" P33 "n_pol=" IVANOV_ENP "&birthday=" IVANOV_BDAY, NULL, 400, "4106", MSG_4106},
    /* paths and methods */
    {"/auth/cod/tokens", NULL, 404, "4140", MSG_4140},
    {"/", NULL, 404, "4140", MSG_4140},
    {"/auth/cod/token/extra?" IV, NULL, 404, "4140", MSG_4140},
};

START_TEST(test_token_errors)
{
    const struct err_case *c = &err_cases[_i];
    expect_error(c->path, c->header, c->status, c->code, c->msg);
}
END_TEST

START_TEST(test_32_params_are_fine)
{
    /* Exactly at the limit: 30 ignored userLpu plus the two that count. */
    char *p = xasprintf("%s?%.*sn_pol=%s&birthday=%s", COD, (int)(strlen(P33) - strlen("userLpu=31&")),
                        P33, IVANOV_ENP, IVANOV_BDAY);
    struct issued t = issue_cod(p);
    issued_free(&t);
    free(p);
}
END_TEST

START_TEST(test_wrong_method)
{
    static const char *const paths[] = {COD "?" IV, RPGU, "/auth/session", "/health"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct http_resp *r = http_request("POST", paths[i], NULL, "{}");
        assert_error(r, 405, "4150", MSG_4150("POST"), paths[i]);
        http_free(r);
    }
    struct http_resp *r = http_request("DELETE", COD, NULL, NULL);
    assert_error(r, 405, "4150", MSG_4150("DELETE"), "DELETE " COD);
    http_free(r);
    r = http_request("PUT", "/nowhere", NULL, "x");
    assert_error(r, 404, "4140", MSG_4140, "PUT /nowhere");
    http_free(r);
}
END_TEST

/* A NUL byte (%00) inside a value must not cut it short: the rest of the
 * value would go unvalidated, and a log, a proxy or a WAF would see another
 * value than the look-up. */
START_TEST(test_param_with_nul)
{
    expect_error(COD "?n_pol=" IVANOV_ENP "%00xyz&birthday=" IVANOV_BDAY, NULL, 400, "4101",
                 MSG_4101("n_pol"));
    expect_error(COD "?n_pol=" IVANOV_ENP "&birthday=" IVANOV_BDAY "%00junk", NULL, 400, "4101",
                 MSG_4101("birthday"));
    expect_error(COD "?ergu=true&" IV "&name=%D0%98%D0%B2%D0%B0%D0%BD%00x", NULL, 400, "4101",
                 MSG_4101("name"));
}
END_TEST

/* A query string that is malformed (an empty segment, a name without '=')
 * is not one with too many parameters: 4106's "Слишком много параметров"
 * would send the client looking for the wrong mistake. */
START_TEST(test_malformed_query_is_not_too_many)
{
    static const char *const paths[] = {
        COD "?n_pol=" IVANOV_ENP "&&birthday=" IVANOV_BDAY,
        COD "?&n_pol=" IVANOV_ENP "&birthday=" IVANOV_BDAY,
        COD "?" IV "&ergu",
        COD "?" IV "&=5",
    };
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct http_resp *r = http_get(paths[i], NULL);
        ck_assert_msg(r->status == 200 || r->status == 400, "%s: status %d", paths[i], r->status);
        if (r->status == 400) {
            yajl_val v = jbody(r, paths[i]);
            const char *code = jstr(v, "Message_code");
            ck_assert_msg(code && (strcmp(code, "4101") == 0 || strcmp(code, "4104") == 0 ||
                                   strcmp(code, "4105") == 0),
                          "%s: a query with %d parameters answers %s", paths[i], 3, show(r));
            yajl_tree_free(v);
        }
        http_free(r);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* 4. Token verification */

START_TEST(test_session_no_token)
{
    struct http_resp *r = session_raw(NULL);
    assert_error(r, 403, "5010", MSG_5010, "no Authorization");
    http_free(r);
    r = session_raw("Basic dXNlcjpwYXNz");
    assert_error(r, 403, "5010", MSG_5010, "Basic");
    http_free(r);
    r = session_raw("Bearer ");
    assert_error(r, 403, "5010", MSG_5010, "Bearer and nothing");
    http_free(r);
}
END_TEST

/* RFC 7235 section 2.1: the authentication scheme is case-insensitive. */
START_TEST(test_session_scheme_case)
{
    struct issued t = issue_ivanov();
    static const char *const schemes[] = {"bearer", "BEARER"};
    for (size_t i = 0; i < 2; i++) {
        char *a = xasprintf("%s %s", schemes[i], t.token);
        struct http_resp *r = session_raw(a);
        ck_assert_msg(r->status == 200, "Authorization: %s <token> answers %d %s", schemes[i],
                      r->status, show(r));
        http_free(r);
        free(a);
    }
    issued_free(&t);
}
END_TEST

START_TEST(test_session_garbage)
{
    static const char *const bad[] = {"Bearer garbage", "Bearer a.b", "Bearer a.b.c.d",
                                      "Bearer !!!.???.###", "Bearer eyJ.eyJ.x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct http_resp *r = session_raw(bad[i]);
        assert_error(r, 403, "5008", MSG_5008, bad[i]);
        http_free(r);
    }
}
END_TEST

START_TEST(test_session_tampered)
{
    struct issued t = issue_ivanov();
    struct jwt_parts j;
    jwt_split(t.token, &j);

    /* Change one character inside a string value of the payload (the last
     * hex digit of jti: the claims stay well-formed), keep the signature. */
    char *jti = strstr(j.payload, "\"jti\":\"");
    ck_assert_ptr_nonnull(jti);
    char *last = jti + 7 + 35;
    *last = *last == '0' ? '1' : '0';
    char *p64 = b64url_encode((const unsigned char *)j.payload, strlen(j.payload));
    char *forged = xasprintf("%s.%s.%s", j.h64, p64, j.sig);
    struct http_resp *r = session_of(forged);
    assert_error(r, 403, "5009", MSG_5009, "payload changed");
    http_free(r);
    free(forged);
    free(p64);

    /* authSource "Internet" → "Infomat!" would be a privilege change. */
    char *payload2 = strdup(j.payload);
    char *src = strstr(payload2, "\"Internet\"");
    ck_assert_ptr_nonnull(src);
    memcpy(src + 1, "Infomat!", 8);
    p64 = b64url_encode((const unsigned char *)payload2, strlen(payload2));
    forged = xasprintf("%s.%s.%s", j.h64, p64, j.sig);
    r = session_of(forged);
    assert_error(r, 403, "5009", MSG_5009, "authSource changed");
    http_free(r);
    free(forged);
    free(p64);
    free(payload2);

    /* A flipped bit in the signature. */
    char *sig = strdup(j.sig);
    sig[5] = sig[5] == 'A' ? 'B' : 'A';
    forged = xasprintf("%s.%s.%s", j.h64, j.p64, sig);
    r = session_of(forged);
    assert_error(r, 403, "5009", MSG_5009, "signature changed");
    http_free(r);
    free(forged);
    free(sig);

    /* The untouched token still passes. */
    yajl_val s = session_ok(t.token);
    yajl_tree_free(s);
    jwt_parts_free(&j);
    issued_free(&t);
}
END_TEST

START_TEST(test_session_alg_none)
{
    struct issued t = issue_ivanov();
    struct jwt_parts j;
    jwt_split(t.token, &j);
    static const char *const headers[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"alg\":\"none\"}",
                                          "{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
                                          "{\"alg\":\"hs256\",\"typ\":\"JWT\"}"};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *h64 = b64url_encode((const unsigned char *)headers[i], strlen(headers[i]));
        /* without a signature, and with the real one */
        char *a = xasprintf("%s.%s.", h64, j.p64);
        char *b = xasprintf("%s.%s.%s", h64, j.p64, j.sig);
        struct http_resp *r = session_of(a);
        assert_error(r, 403, "5008", MSG_5008, headers[i]);
        http_free(r);
        r = session_of(b);
        assert_error(r, 403, "5008", MSG_5008, headers[i]);
        http_free(r);
        free(a);
        free(b);
        free(h64);
    }
    jwt_parts_free(&j);
    issued_free(&t);
}
END_TEST

/* A token of our own format signed with the demo key the gateway runs with. */

START_TEST(test_session_expired)
{
    struct issued t = issue_ivanov();
    long long now = (long long)time(NULL);

    /* The forger's key is right: a live token of his verifies... */
    char *live = sign_own(t.person, now - 10, now + 600, TOKEN_COD);
    yajl_val s = session_ok(live);
    /* ...from PostgreSQL, since Redis never saw its jti. */
    assert_session(s, t.person, "CodToken", "Internet", false, "postgresql");
    ck_assert_msg(ncards(s) == 1 && has_card(s, LPU_470102, IVANOV_MKAB), "cards from PostgreSQL");
    yajl_tree_free(s);
    free(live);

    /* ...and an expired one does not. */
    char *old = sign_own(t.person, now - 1200, now - 600, TOKEN_COD);
    struct http_resp *r = session_of(old);
    assert_error(r, 403, "5007", MSG_5007, "expired COD token");
    http_free(r);
    free(old);
    old = sign_own(t.person, now - 700, now - 1, TOKEN_RPGU);
    r = session_of(old);
    assert_error(r, 403, "5007", MSG_5007, "expired RPGU token");
    http_free(r);
    free(old);
    issued_free(&t);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 5. Tokens a portal mints itself */


START_TEST(test_portal_token)
{
    const char *key = env("MIPGW_TEST_PORTAL_KEY");
    struct issued ref = issue_ivanov();
    long long now = (long long)time(NULL);
    char *tok = portal_token(key, "", IVANOV_ENP, IVANOV_BDAY, now + 600);
    yajl_val s = session_ok(tok);
    assert_session(s, ref.person, "RpguToken", "RPGU", true, NULL);
    ck_assert_msg(ncards(s) == 1 && has_card(s, LPU_470102, IVANOV_MKAB), "portal token: cards");
    yajl_tree_free(s);
    free(tok);

    /* An old-style polis with its series. */
    tok = portal_token(key, KOZLOV_S_POL, KOZLOV_N_POL, KOZLOV_BDAY, now + 600);
    s = session_ok(tok);
    assert_session(s, NULL, "RpguToken", "RPGU", true, NULL);
    ck_assert_msg(ncards(s) == 1 && has_card(s, LPU_470102, KOZLOV_MKAB), "portal token: Козлов");
    yajl_tree_free(s);
    free(tok);
    issued_free(&ref);
}
END_TEST

START_TEST(test_portal_token_no_person)
{
    const char *key = env("MIPGW_TEST_PORTAL_KEY");
    long long now = (long long)time(NULL);
    char *tok = portal_token(key, "", IVANOV_ENP, "1985-03-15", now + 600);
    struct http_resp *r = session_of(tok);
    assert_error(r, 404, "4001", MSG_4001, "portal token, wrong birthday");
    http_free(r);
    free(tok);
    /* Twice: the second answer may come from the identity cache. */
    tok = portal_token(key, "", IVANOV_ENP, "1985-03-15", now + 600);
    r = session_of(tok);
    assert_error(r, 404, "4001", MSG_4001, "portal token, wrong birthday again");
    http_free(r);
    free(tok);
}
END_TEST

START_TEST(test_portal_token_bad)
{
    const char *key = env("MIPGW_TEST_PORTAL_KEY");
    long long now = (long long)time(NULL);
    /* Another key of the same length. */
    char *wrong = strdup(key);
    wrong[0] = wrong[0] == 'x' ? 'y' : 'x';
    char *tok = portal_token(wrong, "", IVANOV_ENP, IVANOV_BDAY, now + 600);
    struct http_resp *r = session_of(tok);
    assert_error(r, 403, "5009", MSG_5009, "portal token, wrong key");
    http_free(r);
    free(tok);
    free(wrong);
    /* The gateway's own key does not make a portal token either. */
    tok = portal_token(config_demo_key, "", IVANOV_ENP, IVANOV_BDAY, now + 600);
    r = session_of(tok);
    assert_error(r, 403, "5009", MSG_5009, "portal token signed with the gateway's key");
    http_free(r);
    free(tok);
    /* Expired. */
    tok = portal_token(key, "", IVANOV_ENP, IVANOV_BDAY, now - 5);
    r = session_of(tok);
    assert_error(r, 403, "5007", MSG_5007, "portal token, expired");
    http_free(r);
    free(tok);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 8. Rate limits, on gateways of the test's own */

static void spawn_setup(void)
{
    spawned_reset();
}

static void spawn_teardown(void)
{
    spawned_kill_all();
}

static int get_status_at(int port, const char *path, const char *h1, const char *h2)
{
    struct http_resp *r = http_get_at(port, path, h1, h2, NULL);
    int st = r->status;
    if (st == 429)
        assert_error(r, 429, "4290", MSG_4290, path);
    http_free(r);
    return st;
}

START_TEST(test_ratelimit_identity)
{
    static const char *const settings[] = {"MIPGW_RATELIMIT_TOKEN_PER_IDENTITY=3",
                                           "MIPGW_RATELIMIT_TOKEN_PER_ADDR=1000", NULL};
    pid_t pid;
    int port = gw_spawn(settings, &pid);
    /* A forwarded address of its own: the address budget is not shared
     * with the rest of the suite. */
    const char *xff = "X-Forwarded-For: 198.51.100.77";
    char *p = qpath(COD, "n_pol", SIDOROV_ENP, "birthday", SIDOROV_BDAY, NULL);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(get_status_at(port, p, xff, NULL) == 200, "request %d for Сидоров refused", i + 1);
    ck_assert_int_eq(get_status_at(port, p, xff, NULL), 429);
    free(p);
    /* Guessing the birthday counts against the polis. */
    p = qpath(COD, "n_pol", SIDOROV_ENP, "birthday", "2018-05-21", NULL);
    ck_assert_int_eq(get_status_at(port, p, xff, NULL), 429);
    free(p);
    p = qpath(RPGU, "n_pol", SIDOROV_ENP, "birthday", "2017-01-01", NULL);
    ck_assert_int_eq(get_status_at(port, p, xff, NULL), 429);
    free(p);
    /* Another identity has its own budget. */
    p = qpath(COD, "n_pol", SMIRNOVA_ENP, "birthday", SMIRNOVA_BDAY, NULL);
    ck_assert_int_eq(get_status_at(port, p, xff, NULL), 200);
    free(p);
    ck_assert_msg(gw_stop(pid) == 0, "the extra gateway did not exit 0 on SIGTERM");
}
END_TEST

/* A dual-stack listener ("::") sees an IPv4 proxy as ::ffff:127.0.0.1: it
 * is still 127.0.0.1, trusted, and each client behind it has its own
 * budget (all shared one before). */
START_TEST(test_forwarded_for_dual_stack)
{
    static const char *const settings[] = {"MIPGW_HTTP_LISTEN=::", "MIPGW_RATELIMIT_TOKEN_PER_IDENTITY=100000",
                                           "MIPGW_RATELIMIT_TOKEN_PER_ADDR=2", NULL};
    pid_t pid;
    int port = gw_spawn(settings, &pid);
    char *p = qpath(COD, "n_pol", IVANOV_ENP, "birthday", IVANOV_BDAY, NULL);
    static const char *const clients[] = {"X-Forwarded-For: 203.0.113.21", "X-Forwarded-For: 203.0.113.22",
                                          "X-Forwarded-For: 203.0.113.23"};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 2; k++)
            ck_assert_msg(get_status_at(port, p, clients[i], NULL) == 200, "client %d, request %d refused", i,
                          k + 1);
    ck_assert_int_eq(get_status_at(port, p, clients[0], NULL), 429);
    free(p);
    ck_assert_msg(gw_stop(pid) == 0, "the extra gateway did not exit 0 on SIGTERM");
}
END_TEST

/* More client applications than a worker keeps (64): the default one is
 * kept whatever its name, so that a request without ClientApplication is
 * still served (70 applications named before "Internet" pushed it out). */
START_TEST(test_client_apps_past_the_limit)
{
    PQclear(pg_exec("INSERT INTO client_applications (guid, mnem, name)"
                    " SELECT gen_random_uuid(), 'A-limit-' || lpad(n::text, 2, '0'), 'x'"
                    " FROM generate_series(1, 70) n",
                    0, NULL));
    /* (the budgets the other tests of this case spent are not this one's) */
    static const char *const settings[] = {"MIPGW_RATELIMIT_TOKEN_PER_IDENTITY=100000",
                                           "MIPGW_RATELIMIT_TOKEN_PER_ADDR=100000", NULL};
    pid_t pid;
    int port = gw_spawn(settings, &pid);
    char *p = qpath(COD, "n_pol", IVANOV_ENP, "birthday", IVANOV_BDAY, NULL);
    int st = get_status_at(port, p, NULL, NULL);
    PQclear(pg_exec("DELETE FROM client_applications WHERE mnem LIKE 'A-limit-%'", 0, NULL));
    free(p);
    ck_assert_msg(st == 200, "a token without ClientApplication: %d", st);
    ck_assert_msg(gw_stop(pid) == 0, "the extra gateway did not exit 0 on SIGTERM");
}
END_TEST

/* What follows a command is its own: an option there is an error (exit 2),
 * not ignored ("migrate -c FILE" migrated the default database). */
START_TEST(test_command_arguments)
{
    static const char *const bad[] = {"migrate -c /nonexistent/mipgw.conf", "serve --check-config", "import",
                                      "import a.json b.json", "import -c x.json"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *cmd = xasprintf("'%s' %s >/dev/null 2>&1", env("MIPGW_TEST_BIN"), bad[i]);
        int rc = system(cmd);
        ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "mipgw %s: exit %d", bad[i],
                      WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
        free(cmd);
    }
    /* An admin command's error is on its terminal, not in the service's
     * log file (which it does not create). */
    char *logf = xasprintf("/tmp/mipgw-cli-%d.log", (int)getpid());
    char *fail = xasprintf("MIPGW_LOG_FILE='%s' MIPGW_PG_CONNINFO='hostaddr=127.0.0.1 port=%d dbname=x "
                           "connect_timeout=2' '%s' migrate 2>&1 | grep -q 'migrate: cannot connect'",
                           logf, free_port(), env("MIPGW_TEST_BIN"));
    ck_assert_msg(system(fail) == 0, "migrate's error did not reach its terminal");
    ck_assert_msg(access(logf, F_OK) != 0, "migrate wrote the service's log file");
    unlink(logf);
    free(fail), free(logf);
    char *ok = xasprintf("'%s' --check-config >/dev/null 2>&1", env("MIPGW_TEST_BIN"));
    int rc = system(ok);
    ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "mipgw --check-config: exit %d", WEXITSTATUS(rc));
    free(ok);
}
END_TEST

/* The demo file with edits: after is inserted right after the first
 * occurrence of each anchor[i]; the caller frees. */
static char *demo_edited(const char *const *anchor, const char *const *after, int n)
{
    const char *top = getenv("top_srcdir");
    char *path = xasprintf("%s/etc/demo.json", top && *top ? top : ".");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s", path);
    struct buf b;
    buf_init(&b);
    char chunk[4096];
    size_t got;
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, got);
    fclose(f);
    buf_append(&b, "", 1);
    char *text = b.data;
    for (int i = 0; i < n; i++) {
        char *at = strstr(text, anchor[i]);
        ck_assert_msg(at != NULL, "etc/demo.json has no %s", anchor[i]);
        at += strlen(anchor[i]);
        char *next = xasprintf("%.*s%s%s", (int)(at - text), text, after[i], at);
        free(text);
        text = next;
    }
    free(path);
    return text;
}

static int import_text(const char *json)
{
    char *path = xasprintf("/tmp/mipgw-import-%d.json", (int)getpid());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(json, f);
    fclose(f);
    char *cmd = xasprintf("'%s' import '%s' >/dev/null 2>&1", env("MIPGW_TEST_BIN"), path);
    int rc = system(cmd);
    unlink(path);
    free(cmd), free(path);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* An import is all or nothing: a file refused in its schedule (a time of
 * 25:00), after the client applications and MIS logins it names, leaves
 * neither a new application nor a new login behind (they were committed
 * before the schedule was read). */
START_TEST(test_import_all_or_nothing)
{
    static const char *const anchor[] = {"\"client_applications\": [", "\"mis_users\": [",
                                         "\"from\": \""};
    static const char *const after[] = {
        "{\"guid\": \"0b4d3d5e-7c1f-4a55-9a51-3f1c2b0e9d01\", \"mnem\": \"HalfWrite\","
        " \"name\": \"x\", \"default\": false},",
        "{\"login\": \"half-user\", \"password\": \"Half-Write-Secret-1\", \"lpuMcods\": [\"470102\"]},",
        "2"};  /* "from": "08:00" becomes "from": "208:00" */
    char *json = demo_edited(anchor, after, 3);
    int rc = import_text(json);
    ck_assert_msg(rc == 1, "import of a bad file: exit %d", rc);
    char *apps = pg_value("SELECT count(*) FROM client_applications WHERE mnem = 'HalfWrite'", 0, NULL);
    char *users = pg_value("SELECT count(*) FROM mis_users WHERE login = 'half-user'", 0, NULL);
    ck_assert_msg(strcmp(apps, "0") == 0 && strcmp(users, "0") == 0,
                  "a refused import left %s application(s) and %s login(s)", apps, users);
    free(apps), free(users), free(json);
}
END_TEST

/* A file whose default client application is another than the stored one
 * moves the default, whatever the order of the list (the new default was
 * written while the old one still held the one-default index). The demo's
 * own file then moves it back. */
START_TEST(test_import_moves_the_default_app)
{
    int moved = import_text(
        "{\"client_applications\": ["
        "{\"guid\": \"6de3312b-ddd2-4ce2-9288-6ace2e6685e5\", \"mnem\": \"Infomat\","
        " \"name\": \"Инфомат\", \"default\": true},"
        "{\"guid\": \"a4caea4f-4906-47e4-a0d3-0081e3314a4c\", \"mnem\": \"Internet\","
        " \"name\": \"Портал самозаписи\", \"default\": false}]}");
    char *def = pg_value("SELECT mnem FROM client_applications WHERE is_default", 0, NULL);
    const char *top = getenv("top_srcdir");
    char *back = xasprintf("'%s' import '%s/etc/demo.json' >/dev/null 2>&1", env("MIPGW_TEST_BIN"),
                           top && *top ? top : ".");
    int rc = system(back);
    char *after = pg_value("SELECT mnem FROM client_applications WHERE is_default", 0, NULL);
    ck_assert_msg(moved == 0 && def && strcmp(def, "Infomat") == 0,
                  "import with another default: exit %d, default %s", moved, def ? def : "none");
    ck_assert_msg(WIFEXITED(rc) && WEXITSTATUS(rc) == 0 && after && strcmp(after, "Internet") == 0,
                  "the demo's file back: exit %d, default %s", WEXITSTATUS(rc),
                  after ? after : "none");
    free(def), free(after), free(back);
}
END_TEST

START_TEST(test_ratelimit_forwarded_for)
{
    static const char *const settings[] = {"MIPGW_RATELIMIT_TOKEN_PER_IDENTITY=100000",
                                           "MIPGW_RATELIMIT_TOKEN_PER_ADDR=5", NULL};
    pid_t pid;
    int port = gw_spawn(settings, &pid);
    char *p = qpath(COD, "n_pol", IVANOV_ENP, "birthday", IVANOV_BDAY, NULL);
    const char *a = "X-Forwarded-For: 203.0.113.7";
    const char *b = "X-Forwarded-For: 203.0.113.8";
    for (int i = 0; i < 5; i++)
        ck_assert_msg(get_status_at(port, p, a, NULL) == 200, "request %d from A refused", i + 1);
    ck_assert_int_eq(get_status_at(port, p, a, NULL), 429);
    /* The last address of the list is the client's: the same A. */
    ck_assert_int_eq(get_status_at(port, p, "X-Forwarded-For: 10.9.8.7, 203.0.113.7", NULL), 429);
    /* Two lines (a proxy that adds one of its own): the last is the proxy's,
     * the first the client's to forge. */
    ck_assert_int_eq(get_status_at(port, p, "X-Forwarded-For: 10.9.8.6", "X-Forwarded-For: 203.0.113.7"), 429);
    /* B has a budget of its own. */
    for (int i = 0; i < 5; i++)
        ck_assert_msg(get_status_at(port, p, b, NULL) == 200, "request %d from B refused", i + 1);
    ck_assert_int_eq(get_status_at(port, p, b, NULL), 429);
    free(p);
    ck_assert_msg(gw_stop(pid) == 0, "the extra gateway did not exit 0 on SIGTERM");
}
END_TEST

/* Redis stopped: tokens are still issued, from PostgreSQL, and the limits
 * still hold, counted by the worker (one here) on its own. */
START_TEST(test_ratelimit_redis_down)
{
    static const char *const settings[] = {"MIPGW_RATELIMIT_TOKEN_PER_IDENTITY=3",
                                           "MIPGW_RATELIMIT_TOKEN_PER_ADDR=1000", NULL};
    pid_t pid;
    int port = gw_spawn(settings, &pid);
    const char *xff = "X-Forwarded-For: 198.51.100.78";
    char *p = qpath(COD, "n_pol", SMIRNOVA_ENP, "birthday", SMIRNOVA_BDAY, NULL);
    ck_assert_int_eq(ctl("redis-stop"), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_msg(get_status_at(port, p, xff, NULL) == 200, "request %d for Смирнова refused", i + 1);
    ck_assert_int_eq(get_status_at(port, p, xff, NULL), 429);
    free(p);
    /* Another identity has its own budget. */
    p = qpath(COD, "n_pol", FEDOROV_ENP, "birthday", FEDOROV_BDAY, NULL);
    ck_assert_int_eq(get_status_at(port, p, xff, NULL), 200);
    free(p);
    ck_assert_int_eq(ctl("redis-start"), 0);
    ck_assert_msg(gw_stop(pid) == 0, "the extra gateway did not exit 0 on SIGTERM");
}
END_TEST

/* Connections Redis has accepted since it started. */
static long redis_connections(void)
{
    return redis_long("EVAL \"return tonumber(string.match(redis.call('INFO', 'stats'),"
                      " 'total_connections_received:(%d+)'))\" 0");
}

/* A Redis that refuses the gateway's AUTH: the gateway lives but is not
 * ready, issues tokens without Redis (from PostgreSQL and the signature),
 * and tries again with its backoff growing (100 ms, doubling to 2 s), not
 * at the shortest each time: the backoff starts over only once a connection
 * is authenticated, not when it is merely open. */
START_TEST(test_redis_auth_refused)
{
    static const char *const settings[] = {"MIPGW_REDIS_PASSWORD=not-the-password", NULL};
    long before = redis_connections();
    double t0 = mono_ms();
    pid_t pid;
    int port = gw_spawn_live(settings, &pid);
    ck_assert_msg(ready_streak(port, 503, 3, 5000) >= 0, "/ready does not answer 503 with AUTH refused");
    char *p = qpath(COD, "n_pol", FEDOROV_ENP, "birthday", FEDOROV_BDAY, NULL);
    ck_assert_int_eq(get_status_at(port, p, NULL, NULL), 200);
    free(p);
    double left = 4000 - (mono_ms() - t0);
    if (left > 0)
        sleep_ms((int)left);
    /* Attempts at about 0, 0.1, 0.3, 0.7, 1.5 and 3.1 s, and this query's
     * own connection, with room for a reconnection of the main gateway's
     * (the test before restarts Redis): without the backoff, one every
     * 100 ms, some 40. */
    long n = redis_connections() - before;
    ck_assert_msg(n >= 3 && n <= 14, "%ld connections to Redis in 4 s", n);
    ck_assert_msg(gw_stop(pid) == 0, "the extra gateway did not exit 0 on SIGTERM");
}
END_TEST

/* A person's index of cached keys (pkeys:{person}:{bucket}, identity.h)
 * names the tokens issued to the person, and a person who keeps asking keeps
 * it in use: each bucket expires once the keys it can name have (the end of
 * its 600 s plus the longest lifetime, 600 s here), so that the index names
 * the live keys and a bucket's worth of expired ones, never every token
 * ever issued. */
START_TEST(test_person_index_bounded)
{
    char *p = qpath(COD, "n_pol", FEDOROV_ENP, "birthday", FEDOROV_BDAY, NULL);
    for (int i = 0; i < 3; i++) {
        struct issued t = issue_cod(p);
        issued_free(&t);
    }
    const char *enp[] = {FEDOROV_ENP};
    char *person = pg_value("SELECT person_guid::text FROM medical_cards WHERE polis_number = $1", 1, enp);
    ck_assert_ptr_nonnull(person);
    /* The longest and the shortest lifetime of the person's buckets, and
     * the members of the current one and the one before (the tokens may
     * have gone to either, near a boundary). */
    long now = (long)time(NULL);
    char *args = xasprintf("EVAL \"local hi, lo = -1, 1e9 for _, k in ipairs(redis.call('KEYS', '"
                           IDENT_INDEX_PREFIX "%s:*')) do local t = redis.call('TTL', k)"
                           " if t > hi then hi = t end if t < lo then lo = t end end"
                           " return {hi, lo, redis.call('SCARD', '" IDENT_INDEX_PREFIX "%s:%ld')"
                           " + redis.call('SCARD', '" IDENT_INDEX_PREFIX "%s:%ld')}\" 0 | tr '\\n' ' '",
                           person, person, now / IDENT_INDEX_BUCKET_S, person, now / IDENT_INDEX_BUCKET_S - 1);
    char *cmd = xasprintf("redis-cli -p %s %s", env("MIPGW_TEST_REDIS_PORT"), args);
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    long hi = -2, lo = -2, members = -1;
    ck_assert_int_eq(fscanf(f, "%ld %ld %ld", &hi, &lo, &members), 3);
    pclose(f);
    ck_assert_msg(lo > 0 && hi <= IDENT_INDEX_BUCKET_S + 600, "the buckets live %ld..%ld s", lo, hi);
    ck_assert_msg(members >= 3, "the current buckets name %ld keys", members);
    free(cmd), free(args), free(person), free(p);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 9. Malformed and oversized requests */

static void assert_still_serving(const char *after)
{
    struct http_resp *r = http_get("/health", NULL);
    ck_assert_msg(r->status == 200, "after %s: /health answers %d", after, r->status);
    http_free(r);
}

/* A libevent-level refusal: a 4xx, or the connection closed; never a hang. */
static void assert_refused(const struct http_resp *r, const char *what)
{
    ck_assert_msg(!r->timed_out, "%s: no answer within %d ms", what, HTTPC_TIMEOUT_MS);
    ck_assert_msg(r->elapsed_ms < 5000, "%s: took %.0f ms", what, r->elapsed_ms);
    ck_assert_msg((r->status >= 400 && r->status <= 431) || (r->status == 0 && (r->closed || r->error)),
                  "%s: status %d (closed %d, error %d)", what, r->status, r->closed, r->error);
}

START_TEST(test_big_header)
{
    size_t n = 10000;
    char *big = malloc(n + 1);
    memset(big, 'a', n);
    big[n] = '\0';
    char *req = xasprintf("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", big);
    struct http_resp *r = http_raw(req, strlen(req));
    assert_refused(r, "a 10 KB header");
    http_free(r);
    free(req);
    /* Many small headers adding up past the limit. */
    char *many = calloc(1, 400 * 40 + 64);
    strcpy(many, "GET /health HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 400; i++)
        sprintf(many + strlen(many), "X-H%03d: %026d\r\n", i, i);
    strcat(many, "\r\n");
    r = http_raw(many, strlen(many));
    assert_refused(r, "400 headers");
    http_free(r);
    free(many);
    free(big);
    assert_still_serving("huge headers");
}
END_TEST

START_TEST(test_long_request_line)
{
    size_t n = 20000;
    char *path = malloc(n + 2);
    path[0] = '/';
    memset(path + 1, 'a', n);
    path[n + 1] = '\0';
    char *req = xasprintf("GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    struct http_resp *r = http_raw(req, strlen(req));
    assert_refused(r, "a 20 KB request line");
    http_free(r);
    free(req);
    free(path);
    assert_still_serving("a 20 KB request line");
}
END_TEST

START_TEST(test_garbage)
{
    static const char garbage[] = "\x00\x01GARBAGE\r\n\r\n";
    struct http_resp *r = http_raw(garbage, sizeof(garbage) - 1);
    assert_refused(r, "garbage");
    ck_assert_msg(r->status == 400 || r->status == 0, "garbage: status %d", r->status);
    http_free(r);
    static const char *const others[] = {
        "GET\r\n\r\n",
        "GET /health HTTP/1.1\r\nNo colon here\r\n\r\n",
        "POST /auth/session HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        "POST /auth/session HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\nabc",
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
        r = http_raw(others[i], strlen(others[i]));
        ck_assert_msg(!r->timed_out && r->elapsed_ms < 5000, "%zu: no answer in time", i);
        ck_assert_msg(r->status == 0 || (r->status >= 400 && r->status < 500),
                      "malformed request %zu: status %d", i, r->status);
        http_free(r);
        assert_still_serving("a malformed request");
    }
    /* A client that sends half a request and goes away. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_default_port())};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    static const char half[] = "GET /auth/cod/token?n_pol=50";
    ck_assert_int_eq(send(fd, half, sizeof(half) - 1, MSG_NOSIGNAL), (ssize_t)(sizeof(half) - 1));
    close(fd);
    assert_still_serving("half a request");
}
END_TEST

START_TEST(test_invalid_utf8)
{
    expect_error(COD "?ergu=true&" IV "&name=%FF", NULL, 400, "4101", MSG_4101("name"));
    expect_error(COD "?ergu=true&" IV "&n=%D0", NULL, 400, "4101", MSG_4101("n"));
    expect_error(COD "?ergu=true&" IV "&snils=" IVANOV_SNILS "&family=%C0%AF", NULL, 400, "4101",
                 MSG_4101("family"));
    expect_error(COD "?ergu=true&" IV "&snils=" IVANOV_SNILS "&f=%ED%A0%80", NULL, 400, "4101",
                 MSG_4101("f"));
    expect_error(COD "?s_pol=%FF&n_pol=123456789&birthday=" KOZLOV_BDAY, NULL, 400, "4101",
                 MSG_4101("s_pol"));
    assert_still_serving("invalid UTF-8");
}
END_TEST

START_TEST(test_many_params)
{
    /* 1,000 parameters fit in the header limit: the gateway's own 4106. */
    size_t n = 1000;
    char *q = malloc(n * 4 + 64);
    strcpy(q, COD "?");
    for (size_t i = 0; i < n; i++)
        strcat(q, "a=1&");
    strcat(q, IV);
    struct http_resp *r = http_get(q, NULL);
    assert_error(r, 400, "4106", MSG_4106, "1,000 parameters");
    ck_assert_msg(r->elapsed_ms < 1000, "1,000 parameters took %.0f ms", r->elapsed_ms);
    http_free(r);
    free(q);

    /* 100,000: past the header limit, libevent may refuse it first. */
    n = 100000;
    q = malloc(n * 4 + 64);
    char *w = q + sprintf(q, "%s?", COD);
    for (size_t i = 0; i < n; i++) {
        memcpy(w, "a=1&", 4);
        w += 4;
    }
    strcpy(w, IV);
    r = http_get(q, NULL);
    ck_assert_msg(!r->timed_out && r->elapsed_ms < 2000, "100,000 parameters: %.0f ms%s",
                  r->elapsed_ms, r->timed_out ? " (timed out)" : "");
    if (r->status == 400 && r->body_len && r->body[0] == '{')
        assert_error(r, 400, "4106", MSG_4106, "100,000 parameters");
    else
        assert_refused(r, "100,000 parameters");
    http_free(r);
    free(q);
    assert_still_serving("100,000 parameters");
}
END_TEST

/* ------------------------------------------------------------------ */
/* 10. Operations */

START_TEST(test_health_ready)
{
    struct http_resp *r = http_get("/health", NULL);
    ck_assert_int_eq(r->status, 200);
    yajl_val v = jbody(r, "/health");
    ck_assert_msg(jstr(v, "status") && strcmp(jstr(v, "status"), "ok") == 0, "/health: %s", show(r));
    yajl_tree_free(v);
    http_free(r);
    r = http_get("/ready", NULL);
    ck_assert_msg(r->status == 200, "/ready: %d %s", r->status, show(r));
    v = jbody(r, "/ready");
    ck_assert_msg(YAJL_IS_TRUE(jget(v, "postgresql")) && YAJL_IS_TRUE(jget(v, "redis")), "/ready: %s",
                  show(r));
    yajl_tree_free(v);
    http_free(r);
}
END_TEST

START_TEST(test_metrics)
{
    struct issued t = issue_ivanov();
    issued_free(&t);
    expect_error("/no/such/path", NULL, 404, "4140", MSG_4140);
    struct http_resp *r = http_get("/metrics", NULL);
    ck_assert_int_eq(r->status, 200);
    const char *ct = http_header(r, "Content-Type");
    ck_assert_msg(ct && strncmp(ct, "text/plain", 10) == 0, "/metrics Content-Type %s", ct ? ct : "");
    const char *m = r->body;
    double v, inf, count, sum, prev = 0;
    ck_assert_msg(metric_value(m, "mipgw_requests_total{route=\"cod_token\",status=\"200\"}", &v) && v > 0,
                  "no positive cod_token/200 counter:\n%.2000s", m);
    ck_assert_msg(metric_value(m, "mipgw_requests_total{route=\"unmatched\",status=\"404\"}", &v) && v > 0,
                  "no unmatched/404 counter");
    ck_assert_msg(strstr(m, "# TYPE mipgw_requests_total counter\n") != NULL, "no TYPE of requests_total");
    ck_assert_msg(strstr(m, "# TYPE mipgw_request_duration_seconds histogram\n") != NULL,
                  "no histogram TYPE line");
    static const char *const les[] = {"0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
                                      "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"};
    for (size_t i = 0; i < sizeof(les) / sizeof(les[0]); i++) {
        char *name = xasprintf("mipgw_request_duration_seconds_bucket{route=\"cod_token\",le=\"%s\"}", les[i]);
        ck_assert_msg(metric_value(m, name, &v), "no line %s", name);
        ck_assert_msg(v >= prev, "%s: buckets not cumulative", name);
        prev = v;
        free(name);
    }
    ck_assert(metric_value(m, "mipgw_request_duration_seconds_bucket{route=\"cod_token\",le=\"+Inf\"}", &inf));
    ck_assert_msg(metric_value(m, "mipgw_request_duration_seconds_count{route=\"cod_token\"}", &count) &&
                      count == inf && count > 0,
                  "histogram count %g vs +Inf bucket %g", count, inf);
    ck_assert_msg(metric_value(m, "mipgw_request_duration_seconds_sum{route=\"cod_token\"}", &sum) && sum > 0,
                  "no histogram sum");
    ck_assert_msg(metric_value(m, "mipgw_requests_in_flight", &v) && v >= 0, "no in-flight gauge");
    ck_assert_msg(metric_value(m, "mipgw_redis_connections_up", &v) && v >= 1, "redis connections up: %g", v);
    ck_assert_msg(metric_value(m, "mipgw_pg_connections_up", &v) && v >= 1, "pg connections up: %g", v);
    /* Error answers by catalogue entry: one more unknown path, one more. */
    static const char *const e4140 = "mipgw_errors_total{code=\"4140\",error=\"E_NOT_FOUND\"}";
    double before, after;
    ck_assert_msg(metric_value(m, e4140, &before) && before >= 1, "no %s:\n%.3000s", e4140, m);
    ck_assert_msg(strstr(m, "# TYPE mipgw_errors_total counter\n") != NULL, "no TYPE of errors_total");
    http_free(r);
    expect_error("/no/such/path/either", NULL, 404, "4140", MSG_4140);
    r = http_get("/metrics", NULL);
    ck_assert_msg(metric_value(r->body, e4140, &after) && after == before + 1, "%s: %g, then %g", e4140,
                  before, after);
    http_free(r);
}
END_TEST

static bool id_sane(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.'))
            return false;
    }
    return true;
}

START_TEST(test_request_id)
{
    /* Echoed when sane, on success and on error alike. */
    static const char *const paths[] = {"/health", "/nowhere", COD "?" IV};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct http_resp *r = http_get(paths[i], "X-Request-Id: e2e-Req_1.abc", NULL);
        const char *id = http_header(r, "X-Request-Id");
        ck_assert_msg(id && strcmp(id, "e2e-Req_1.abc") == 0, "%s: X-Request-Id %s", paths[i],
                      id ? id : "(none)");
        http_free(r);
    }
    char id32[33];
    memset(id32, 'Z', 32);
    id32[32] = '\0';
    char *h = xasprintf("X-Request-Id: %s", id32);
    struct http_resp *r = http_get("/health", h, NULL);
    ck_assert_msg(http_header(r, "X-Request-Id") && strcmp(http_header(r, "X-Request-Id"), id32) == 0,
                  "a 32-character id is not echoed");
    http_free(r);
    free(h);

    /* Generated otherwise: absent, too long, or with characters that do not
     * belong in a log line. Two generated ids differ. */
    static const char *const insane[] = {NULL, "X-Request-Id: has space", "X-Request-Id: a\"b",
                                         "X-Request-Id: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                         "X-Request-Id: \xd0\x98\xd0\xb4", "X-Request-Id: a;b=c"};
    char prev[64] = "";
    for (size_t i = 0; i < sizeof(insane) / sizeof(insane[0]); i++) {
        r = insane[i] ? http_get("/health", insane[i], NULL) : http_get("/health", NULL);
        const char *id = http_header(r, "X-Request-Id");
        ck_assert_msg(id_sane(id), "%s: generated id %s is not sane", insane[i] ? insane[i] : "(none)",
                      id ? id : "(none)");
        ck_assert_msg(!insane[i] || !strstr(insane[i], id), "%s: echoed", insane[i]);
        ck_assert_msg(strcmp(id, prev) != 0, "the same id twice: %s", id);
        snprintf(prev, sizeof(prev), "%s", id);
        http_free(r);
    }
}
END_TEST

/* ------------------------------------------------------------------ */
/* 6. Redis stopped mid-run */

/* The unchecked teardown runs in the runner itself, even when the test was
 * killed by its timeout: the store is back for whatever comes next. */
static void redis_restore(void)
{
    if (getenv("MIPGW_TEST_CTL"))
        ctl("redis-start");
}

static void pg_restore(void)
{
    if (getenv("MIPGW_TEST_CTL"))
        ctl("pg-start");
}

START_TEST(test_redis_outage)
{
    int port = http_default_port();
    ck_assert_msg(ready_streak(port, 200, 10, 15000) >= 0, "not ready before the test");
    struct issued ref = issue_ivanov();

    ck_assert_int_eq(ctl("redis-stop"), 0);

    /* Tokens keep coming, from PostgreSQL, each fast. */
    static const char *const ids[][6] = {
        {"n_pol", IVANOV_ENP, "birthday", IVANOV_BDAY, NULL},
        {"snils", IVANOV_SNILS, "birthday", IVANOV_BDAY, NULL},
        {"mkab", IVANOV_MKAB, NULL},
        {"s_doc", IVANOV_DOC_S, "n_doc", IVANOV_DOC_N, NULL},
        {"n_pol", PETROVA_ENP, "birthday", PETROVA_BDAY, NULL},
        {"n_pol", IVANOV_ENP, "birthday", IVANOV_BDAY, NULL},
    };
    char *last = NULL;
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        char *p = qpath(COD, ids[i][0], ids[i][1], ids[i][2], ids[i][3], NULL);
        struct http_resp *r = http_get(p, NULL);
        ck_assert_msg(r->elapsed_ms < 1000, "%s with Redis down took %.0f ms", p, r->elapsed_ms);
        struct issued t = check_issued(r, "CodToken", "Internet", p);
        http_free(r);
        free(p);
        free(last);
        last = t.token;
    }
    /* The last one is Иванов's: it verifies, rebuilt from PostgreSQL. */
    struct http_resp *r = session_of(last);
    ck_assert_msg(r->elapsed_ms < 1000, "/auth/session with Redis down took %.0f ms", r->elapsed_ms);
    http_free(r);
    yajl_val s = session_ok(last);
    assert_session(s, ref.person, "CodToken", "Internet", false, "postgresql");
    ck_assert_msg(ncards(s) == 1 && has_card(s, LPU_470102, IVANOV_MKAB), "cards from PostgreSQL");
    yajl_tree_free(s);
    free(last);
    /* A token issued before the outage as well. */
    s = session_ok(ref.token);
    assert_session(s, ref.person, "CodToken", "Internet", false, "postgresql");
    yajl_tree_free(s);

    /* Not ready, with the standard body, on every worker. */
    ck_assert_msg(ready_streak(port, 503, 6, 5000) >= 0, "/ready does not answer 503 with Redis down");
    r = http_get("/ready", NULL);
    assert_error(r, 503, "5030", MSG_5030, "/ready with Redis down");
    http_free(r);

    /* Back: ready again within 10 s, and sessions come from Redis again. */
    ck_assert_int_eq(ctl("redis-start"), 0);
    double took = ready_streak(port, 200, 10, 10000);
    ck_assert_msg(took >= 0, "not ready within 10 s of Redis coming back");
    for (int i = 0; i < 3; i++) {
        struct issued t = issue_ivanov();
        s = session_ok(t.token);
        assert_session(s, ref.person, "CodToken", "Internet", false, "redis");
        yajl_tree_free(s);
        issued_free(&t);
    }
    issued_free(&ref);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 7. PostgreSQL stopped mid-run */

START_TEST(test_pg_outage)
{
    int port = http_default_port();
    ck_assert_msg(ready_streak(port, 200, 10, 15000) >= 0, "not ready before the test");
    struct issued ref = issue_ivanov();

    ck_assert_int_eq(ctl("pg-stop"), 0);
    ck_assert_msg(ready_streak(port, 503, 6, 5000) >= 0, "/ready does not answer 503 with PostgreSQL down");
    struct http_resp *r = http_get("/ready", NULL);
    assert_error(r, 503, "5030", MSG_5030, "/ready with PostgreSQL down");
    http_free(r);

    /* Identities that no cache holds: 500/5097 at once, never a hang. */
    for (int i = 1; i <= 6; i++) {
        char bday[16];
        snprintf(bday, sizeof(bday), "1901-01-%02d", i);
        char *p = i % 2 ? qpath(COD, "n_pol", IVANOV_ENP, "birthday", bday, NULL)
                        : qpath(RPGU, "snils", FEDOROV_SNILS, "birthday", bday, NULL);
        r = http_get(p, NULL);
        ck_assert_msg(r->elapsed_ms < 1000, "%s with PostgreSQL down took %.0f ms", p, r->elapsed_ms);
        assert_error(r, 500, "5097", MSG_5097, p);
        http_free(r);
        free(p);
    }
    /* A token issued before still verifies: its session is in Redis. */
    yajl_val s = session_ok(ref.token);
    assert_session(s, ref.person, "CodToken", "Internet", false, "redis");
    yajl_tree_free(s);
    /* One Redis never saw needs PostgreSQL: 5097 as well, fast. */
    long long now = (long long)time(NULL);
    char *own = sign_own(ref.person, now - 5, now + 600, TOKEN_COD);
    r = session_of(own);
    ck_assert_msg(r->elapsed_ms < 1000, "/auth/session with PostgreSQL down took %.0f ms", r->elapsed_ms);
    assert_error(r, 500, "5097", MSG_5097, "/auth/session rebuilt without PostgreSQL");
    http_free(r);

    ck_assert_int_eq(ctl("pg-start"), 0);
    double took = ready_streak(port, 200, 10, 15000);
    ck_assert_msg(took >= 0, "not ready within 15 s of PostgreSQL coming back");
    /* Tokens again, looked up in PostgreSQL (identities no cache holds). */
    char *p = qpath(COD, "ergu", "true", "n_pol", IVANOV_ENP, "snils", IVANOV_SNILS, "family", "Иванов",
                    "birthday", "1902-02-02", NULL);
    struct issued t = issue_cod(p);
    ck_assert_str_eq(t.person, ref.person);
    issued_free(&t);
    free(p);
    p = qpath(RPGU, "n_pol", IVANOV_ENP, "birthday", "1901-01-01", NULL);
    expect_error(p, NULL, 404, "4001", MSG_4001);
    free(p);
    s = session_ok(own);
    assert_session(s, ref.person, "CodToken", "Internet", false, "postgresql");
    yajl_tree_free(s);
    free(own);
    issued_free(&ref);
}
END_TEST

/* ------------------------------------------------------------------ */
/* 11. The logs hold no token and no document number */

static void scan_log(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, lines = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        lines++;
        /* Only the file and line are shown: the line itself is the leak. */
        ck_assert_msg(!strstr(line, "eyJ"), "%s:%d holds a token", path, lineno);
        ck_assert_msg(!strstr(line, "5000000000000041"), "%s:%d holds Иванов's ЕНП", path, lineno);
        ck_assert_msg(!strstr(line, "12345678964") && !strstr(line, "123-456-789"),
                      "%s:%d holds Иванов's SNILS", path, lineno);
        ck_assert_msg(!strstr(line, "7700000000000016"), "%s:%d holds Петрова's ЕНП", path, lineno);
        for (const char *p = line; (p = strstr(p, "123456")) != NULL; p++) {
            bool digit_before = p > line && p[-1] >= '0' && p[-1] <= '9';
            bool digit_after = p[6] >= '0' && p[6] <= '9';
            ck_assert_msg(digit_before || digit_after, "%s:%d holds Иванов's passport number", path,
                          lineno);
        }
        ck_assert_msg(!strstr(line, "Demo-Only-Secret"), "%s:%d holds a demo password", path, lineno);
        ck_assert_msg(!strstr(line, config_demo_key), "%s:%d holds the signing key", path, lineno);
        const char *pk = getenv("MIPGW_TEST_PORTAL_KEY");
        ck_assert_msg(!pk || !*pk || !strstr(line, pk), "%s:%d holds the portal key", path, lineno);
    }
    free(line);
    fclose(f);
    (void)lines;
}

START_TEST(test_logs_clean)
{
    const char *log = env("MIPGW_TEST_GW_LOG");
    /* The suite has made requests by now; the log has their lines. */
    struct http_resp *r = http_get("/health", NULL);
    http_free(r);
    FILE *f = fopen(log, "r");
    ck_assert_msg(f != NULL, "cannot open %s", log);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    ck_assert_msg(size > 0, "%s is empty", log);
    scan_log(log);

    /* The logs of the gateways the rate-limit tests started. */
    char *dir = strdup(log);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    DIR *d = opendir(slash ? dir : ".");
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "mipgw-extra-", 12) != 0)
            continue;
        char *p = xasprintf("%s/%s", slash ? dir : ".", e->d_name);
        scan_log(p);
        free(p);
    }
    closedir(d);
    free(dir);
}
END_TEST

/* ------------------------------------------------------------------ */

static Suite *e2e_suite(void)
{
    Suite *s = suite_create("e2e");

    TCase *tc = tcase_create("tokens");
    tcase_add_test(tc, test_person_index_bounded);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_token_enp_birthday);
    tcase_add_test(tc, test_token_rpgu_endpoint);
    tcase_add_test(tc, test_token_client_applications);
    tcase_add_test(tc, test_token_old_style_polis);
    tcase_add_test(tc, test_token_personguid_and_mkab);
    tcase_add_test(tc, test_token_snils);
    tcase_add_test(tc, test_token_passport);
    tcase_add_test(tc, test_token_federal);
    tcase_add_test(tc, test_token_federal_nomatch);
    tcase_add_test(tc, test_token_federal_name_folding);
    tcase_add_test(tc, test_two_cards_one_person);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_token_errors, 0, (int)(sizeof(err_cases) / sizeof(err_cases[0])));
    tcase_add_test(tc, test_32_params_are_fine);
    tcase_add_test(tc, test_wrong_method);
    tcase_add_test(tc, test_param_with_nul);
    tcase_add_test(tc, test_malformed_query_is_not_too_many);
    suite_add_tcase(s, tc);

    tc = tcase_create("session");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_session_no_token);
    tcase_add_test(tc, test_session_scheme_case);
    tcase_add_test(tc, test_session_garbage);
    tcase_add_test(tc, test_session_tampered);
    tcase_add_test(tc, test_session_alg_none);
    tcase_add_test(tc, test_session_expired);
    suite_add_tcase(s, tc);

    tc = tcase_create("portal");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_portal_token);
    tcase_add_test(tc, test_portal_token_no_person);
    tcase_add_test(tc, test_portal_token_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("ratelimit");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, spawn_setup, spawn_teardown);
    tcase_add_test(tc, test_ratelimit_identity);
    tcase_add_test(tc, test_ratelimit_forwarded_for);
    tcase_add_test(tc, test_forwarded_for_dual_stack);
    tcase_add_test(tc, test_client_apps_past_the_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("malformed");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_big_header);
    tcase_add_test(tc, test_long_request_line);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_invalid_utf8);
    tcase_add_test(tc, test_many_params);
    suite_add_tcase(s, tc);

    tc = tcase_create("operations");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_health_ready);
    tcase_add_test(tc, test_metrics);
    tcase_add_test(tc, test_command_arguments);
    tcase_add_test(tc, test_import_all_or_nothing);
    tcase_add_test(tc, test_import_moves_the_default_app);
    tcase_add_test(tc, test_request_id);
    suite_add_tcase(s, tc);

    /* The stores go away last; each comes back even if its test fails. */
    tc = tcase_create("ratelimit_redis_down");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, spawn_setup, spawn_teardown);
    tcase_add_checked_fixture(tc, NULL, redis_restore);
    tcase_add_unchecked_fixture(tc, NULL, redis_restore);
    tcase_add_test(tc, test_ratelimit_redis_down);
    tcase_add_test(tc, test_redis_auth_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("redis_outage");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, redis_restore);
    tcase_add_unchecked_fixture(tc, NULL, redis_restore);
    tcase_add_test(tc, test_redis_outage);
    suite_add_tcase(s, tc);

    tc = tcase_create("pg_outage");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, pg_restore);
    tcase_add_unchecked_fixture(tc, NULL, pg_restore);
    tcase_add_test(tc, test_pg_outage);
    suite_add_tcase(s, tc);

    tc = tcase_create("logs");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_logs_clean);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(e2e_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
