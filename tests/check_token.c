/* check_token.c - unit tests of patient tokens (src/token.c): signing and
 * verifying the gateway's own COD/RPGU tokens, portal-minted RPGU tokens,
 * and the many ways a presented token must be refused. Hand-made tokens are
 * built here with OpenSSL (base64url + HMAC-SHA256) so that the verifier is
 * tested against inputs libjwt itself would never produce. */
#include <check.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include <jwt.h>

#include "token.h"
#include "util.h"

/* 2018-08-14T08:19:35Z, 11:19:35 in Moscow. */
#define NOW INT64_C(1534234775)
#define HOUR 3600
#define ALL (TOKEN_COD | TOKEN_RPGU)

static const char OWN_KEY[] = "own-secret-key-0123456789abcdef!";
static const char PORTAL_KEY[] = "portal-shared-key-fedcba98765432";
static const char GUID_P[] = "0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c";
static const char GUID_J[] = "f47ac10b-58cc-4372-a567-0e02b2c3d479";

static struct token_keys keys_both(void)
{
    struct token_keys k = {
        .own = (const unsigned char *)OWN_KEY, .own_len = sizeof(OWN_KEY) - 1,
        .portal = (const unsigned char *)PORTAL_KEY, .portal_len = sizeof(PORTAL_KEY) - 1,
    };
    return k;
}

static struct token_claims seed(enum token_type t)
{
    struct token_claims c;
    memset(&c, 0, sizeof(c));
    c.type = t;
    strcpy(c.jti, GUID_J);
    strcpy(c.person_guid, GUID_P);
    strcpy(c.auth_source, "Internet");
    strcpy(c.login, "ivanov");
    c.iat = NOW;
    c.exp = NOW + HOUR;
    return c;
}

/* ---- helpers: encodings, hand-made tokens ---- */

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    ck_assert_int_ge(n, 0);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static char *b64url(const void *p, size_t n)
{
    char *out = malloc(n / 3 * 4 + 8);
    ck_assert_ptr_nonnull(out);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    int j = 0;
    for (int i = 0; i < len && out[i] != '='; i++)
        out[j++] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    out[j] = '\0';
    return out;
}

/* Decodes a base64url segment of length n; returns a malloc'd C string. */
static char *unb64url(const char *s, size_t n)
{
    char *tmp = malloc(n + 4);
    ck_assert_ptr_nonnull(tmp);
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        tmp[j++] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
    while (j % 4)
        tmp[j++] = '=';
    unsigned char *out = malloc(j / 4 * 3 + 1);
    ck_assert_ptr_nonnull(out);
    int len = EVP_DecodeBlock(out, (unsigned char *)tmp, (int)j);
    ck_assert_int_ge(len, 0);
    for (size_t pad = n; pad < j; pad++)
        len--;
    out[len] = '\0';
    free(tmp);
    return (char *)out;
}

static char *hmac_b64(const char *key, const char *data)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    ck_assert_ptr_nonnull(HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)data,
                               strlen(data), md, &ml));
    return b64url(md, ml);
}

/* "Bearer <b64(hdr)>.<b64(payload)>.<HMAC-SHA256 with key>"; key NULL: sig "c2ln". */
static char *hand_token(const char *hdr, const char *payload, const char *key)
{
    char *h = b64url(hdr, strlen(hdr)), *p = b64url(payload, strlen(payload));
    char *hp = xasprintf("%s.%s", h, p);
    char *sig = key ? hmac_b64(key, hp) : strdup("c2ln");
    char *t = xasprintf("Bearer %s.%s", hp, sig);
    free(h);
    free(p);
    free(hp);
    free(sig);
    return t;
}

static const char HS256_HDR[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* A portal's RPGU token: optional iss, polis fields. */
static char *portal_payload(const char *extra, const char *payload_obj, int64_t exp)
{
    return xasprintf("{\"tokenType\":\"RpguToken\",\"exp\":%lld,\"iat\":%lld,"
                     "\"authSource\":\"Portal\",%s\"Payload\":%s}",
                     (long long)exp, (long long)NOW, extra, payload_obj);
}

static const char POLIS_OK[] =
    "{\"PolisSeries\":\"AB\",\"PolisNumber\":\"7700000000000001\",\"Birthday\":\"1980-02-29\"}";

/* Our payload as token_sign() writes it, with one claim's text replaced. */
static char *own_payload(const char *type_claim, const char *person_guids, const char *jti,
                         const char *exp, const char *iat, const char *auth)
{
    return xasprintf("{\"Payload\":{\"PersonGuid\":%s},\"TokenBeginLifeTime\":\"x\","
                     "\"TokenEndLifeTime\":\"y\",\"login\":\"ivanov\",\"authSource\":%s,"
                     "\"privilege\":false,\"tokenType\":%s,\"iss\":\"mipgw\",\"iat\":%s,"
                     "\"exp\":%s,\"jti\":%s}",
                     person_guids, auth, type_claim, iat, exp, jti);
}

static char *own_payload_ok(void)
{
    return own_payload("\"CodToken\"", "[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]",
                       "\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"", "1534238375", "1534234775",
                       "\"Internet\"");
}

static enum token_verdict verify_hand(const char *hdr, const char *payload, const char *key,
                                      unsigned accept, int64_t now)
{
    struct token_keys k = keys_both();
    char *t = hand_token(hdr, payload, key);
    struct token_claims out;
    enum token_verdict v = token_verify_header(&k, t, accept, now, &out);
    free(t);
    return v;
}

static char *signed_bearer(const struct token_keys *k, const struct token_claims *c)
{
    char *t = token_sign(k, c);
    ck_assert_ptr_nonnull(t);
    char *b = xasprintf("Bearer %s", t);
    free(t);
    return b;
}

static enum token_verdict verify(const char *authz, unsigned accept, int64_t now)
{
    struct token_keys k = keys_both();
    struct token_claims out;
    return token_verify_header(&k, authz, accept, now, &out);
}

/* ---- the signer against libjwt ---- */

/* The same claims as libjwt 1.10 would encode them: what token_sign()
 * wrote before it wrote the payload itself. */
static char *libjwt_sign(const struct token_keys *k, const struct token_claims *c)
{
    char begin[32], end[32];
    util_format_time(c->iat, begin);
    util_format_time(c->exp, end);
    char *payload = xasprintf("{\"Payload\":{\"PersonGuid\":[\"%s\"]}}", c->person_guid);
    jwt_t *jwt = NULL;
    ck_assert_int_eq(jwt_new(&jwt), 0);
    ck_assert_int_eq(jwt_set_alg(jwt, JWT_ALG_HS256, k->own, (int)k->own_len), 0);
    ck_assert_int_eq(jwt_add_grants_json(jwt, payload), 0);
    ck_assert_int_eq(jwt_add_grant(jwt, "TokenBeginLifeTime", begin), 0);
    ck_assert_int_eq(jwt_add_grant(jwt, "TokenEndLifeTime", end), 0);
    ck_assert_int_eq(jwt_add_grant(jwt, "login", c->login), 0);
    ck_assert_int_eq(jwt_add_grant(jwt, "authSource", c->auth_source), 0);
    ck_assert_int_eq(jwt_add_grant_bool(jwt, "privilege", 0), 0);
    ck_assert_int_eq(jwt_add_grant(jwt, "tokenType", token_type_name(c->type)), 0);
    ck_assert_int_eq(jwt_add_grant(jwt, "iss", TOKEN_ISSUER), 0);
    ck_assert_int_eq(jwt_add_grant_int(jwt, "iat", (long)c->iat), 0);
    ck_assert_int_eq(jwt_add_grant_int(jwt, "exp", (long)c->exp), 0);
    ck_assert_int_eq(jwt_add_grant(jwt, "jti", c->jti), 0);
    char *out = jwt_encode_str(jwt);
    jwt_free(jwt);
    free(payload);
    ck_assert_ptr_nonnull(out);
    return out;
}

/* Byte for byte what libjwt writes, and libjwt verifies it with the key,
 * for plain and awkward strings (escapes, control characters, Cyrillic). */
START_TEST(sign_same_as_libjwt)
{
    static const char *const texts[] = {"Internet", "", "a\"b\\c", "tab\there\nnl\r\b\f",
                                        "\x01\x1f\x7f", "Инфомат", "/slash/", "€ and 𝄞"};
    struct token_keys k = keys_both();
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        for (int type = 0; type < 2; type++) {
            struct token_claims c = seed(type ? TOKEN_RPGU : TOKEN_COD);
            strcpy(c.auth_source, texts[i]);
            strcpy(c.login, texts[(i + 3) % (sizeof(texts) / sizeof(texts[0]))]);
            c.iat = NOW + (int64_t)i * 7919;
            c.exp = c.iat + 600;
            char *ours = token_sign(&k, &c);
            char *theirs = libjwt_sign(&k, &c);
            ck_assert_ptr_nonnull(ours);
            ck_assert_msg(strcmp(ours, theirs) == 0, "text %zu: ours %s, libjwt %s", i, ours, theirs);
            jwt_t *jwt = NULL;
            ck_assert_int_eq(jwt_decode(&jwt, ours, k.own, (int)k.own_len), 0);
            ck_assert_int_eq(jwt_get_alg(jwt), JWT_ALG_HS256);
            ck_assert_str_eq(jwt_get_grant(jwt, "jti"), GUID_J);
            jwt_free(jwt);
            free(ours);
            free(theirs);
        }
    }
}
END_TEST

/* The HMAC contexts are kept per thread and key: keys taking turns, more
 * keys than slots, and a key buffer rewritten in place must each sign with
 * the key of the moment. */
START_TEST(sign_key_changes)
{
    char key[40];
    struct token_keys k = {.own = (const unsigned char *)key, .own_len = 32};
    struct token_claims c = seed(TOKEN_COD);
    for (int round = 0; round < 12; round++) {
        /* 0,1,2 repeat: three keys through two slots; the buffer is reused. */
        snprintf(key, sizeof(key), "key-number-%d-0123456789abcdefghij", round % 3);
        char *ours = token_sign(&k, &c);
        char *theirs = libjwt_sign(&k, &c);
        ck_assert_msg(ours && strcmp(ours, theirs) == 0, "round %d", round);
        free(ours);
        free(theirs);
    }
}
END_TEST

/* ---- signing and round trips ---- */

START_TEST(round_trip_cod)
{
    struct token_keys k = keys_both();
    struct token_claims c = seed(TOKEN_COD), out;
    char *b = signed_bearer(&k, &c);

    memset(&out, 0x5a, sizeof(out));
    ck_assert_int_eq(token_verify_header(&k, b, TOKEN_COD, NOW, &out), TOKEN_VALID);
    ck_assert_int_eq(out.type, TOKEN_COD);
    ck_assert(!out.portal_minted);
    ck_assert_str_eq(out.jti, GUID_J);
    ck_assert_str_eq(out.person_guid, GUID_P);
    ck_assert_str_eq(out.auth_source, "Internet");
    ck_assert_str_eq(out.login, "ivanov");
    ck_assert_int_eq(out.iat, NOW);
    ck_assert_int_eq(out.exp, NOW + HOUR);
    ck_assert_str_eq(out.polis_number, "");
    ck_assert_str_eq(out.polis_series, "");
    ck_assert_str_eq(out.birthday, "");
    /* Either type accepted, and a caller that does not want the claims. */
    ck_assert_int_eq(token_verify_header(&k, b, ALL, NOW + HOUR - 1, NULL), TOKEN_VALID);
    free(b);
}
END_TEST

START_TEST(round_trip_rpgu)
{
    struct token_keys k = keys_both();
    struct token_claims c = seed(TOKEN_RPGU), out;
    c.login[0] = '\0';
    strcpy(c.auth_source, "Mobile");
    char *b = signed_bearer(&k, &c);

    ck_assert_int_eq(token_verify_header(&k, b, TOKEN_RPGU, NOW, &out), TOKEN_VALID);
    ck_assert_int_eq(out.type, TOKEN_RPGU);
    ck_assert(!out.portal_minted);
    ck_assert_str_eq(out.jti, GUID_J);
    ck_assert_str_eq(out.person_guid, GUID_P);
    ck_assert_str_eq(out.auth_source, "Mobile");
    ck_assert_str_eq(out.login, "");
    free(b);
}
END_TEST

START_TEST(sign_payload_mirrors_seed)
{
    struct token_keys k = keys_both();
    struct token_claims c = seed(TOKEN_COD);
    char *t = token_sign(&k, &c);
    ck_assert_ptr_nonnull(t);
    char *d1 = strchr(t, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    ck_assert_ptr_nonnull(d2);
    ck_assert_ptr_null(strchr(d2 + 1, '.'));

    char *hdr = unb64url(t, (size_t)(d1 - t));
    yajl_val h = yajl_tree_parse(hdr, NULL, 0);
    ck_assert_ptr_nonnull(h);
    const char *alg[] = {"alg", NULL}, *typ[] = {"typ", NULL};
    ck_assert_str_eq(YAJL_GET_STRING(yajl_tree_get(h, alg, yajl_t_string)), "HS256");
    ck_assert_str_eq(YAJL_GET_STRING(yajl_tree_get(h, typ, yajl_t_string)), "JWT");

    char *pl = unb64url(d1 + 1, (size_t)(d2 - d1 - 1));
    yajl_val p = yajl_tree_parse(pl, NULL, 0);
    ck_assert_msg(p != NULL, "%s", pl);
    ck_assert(YAJL_IS_OBJECT(p));
    const char *guids_p[] = {"Payload", "PersonGuid", NULL};
    yajl_val guids = yajl_tree_get(p, guids_p, yajl_t_array);
    ck_assert_ptr_nonnull(guids);
    ck_assert_int_eq(YAJL_GET_ARRAY(guids)->len, 1);
    ck_assert_str_eq(YAJL_GET_STRING(YAJL_GET_ARRAY(guids)->values[0]), GUID_P);
#define GET(name, type) yajl_tree_get(p, (const char *[]){name, NULL}, type)
    ck_assert(YAJL_IS_FALSE(GET("privilege", yajl_t_any)));
    ck_assert_str_eq(YAJL_GET_STRING(GET("tokenType", yajl_t_string)), "CodToken");
    ck_assert_str_eq(YAJL_GET_STRING(GET("authSource", yajl_t_string)), "Internet");
    ck_assert_str_eq(YAJL_GET_STRING(GET("login", yajl_t_string)), "ivanov");
    ck_assert_str_eq(YAJL_GET_STRING(GET("iss", yajl_t_string)), TOKEN_ISSUER);
    ck_assert_str_eq(YAJL_GET_STRING(GET("jti", yajl_t_string)), GUID_J);
    yajl_val iat = GET("iat", yajl_t_number), exp = GET("exp", yajl_t_number);
    ck_assert(YAJL_IS_INTEGER(iat) && YAJL_IS_INTEGER(exp));
    ck_assert_int_eq(YAJL_GET_INTEGER(iat), NOW);
    ck_assert_int_eq(YAJL_GET_INTEGER(exp), NOW + HOUR);
    const char *begin = YAJL_GET_STRING(GET("TokenBeginLifeTime", yajl_t_string));
    const char *end = YAJL_GET_STRING(GET("TokenEndLifeTime", yajl_t_string));
    ck_assert_ptr_nonnull(begin);
    ck_assert_ptr_nonnull(end);
    ck_assert_int_ge(strlen(begin), 6);
    ck_assert_str_eq(begin + strlen(begin) - 6, "+03:00");
    ck_assert_str_eq(begin, "2018-08-14T11:19:35+03:00");
    ck_assert_str_eq(end, "2018-08-14T12:19:35+03:00");
#undef GET
    ck_assert_int_eq(YAJL_GET_OBJECT(p)->len, 11);

    yajl_tree_free(h);
    yajl_tree_free(p);
    free(hdr);
    free(pl);
    free(t);
}
END_TEST

START_TEST(sign_escapes_strings)
{
    struct token_keys k = keys_both();
    struct token_claims c = seed(TOKEN_COD), out;
    strcpy(c.login, "a\"b\\c\",\"iss\":\"x");
    strcpy(c.auth_source, "Интернет");
    char *b = signed_bearer(&k, &c);
    ck_assert_int_eq(token_verify_header(&k, b, ALL, NOW, &out), TOKEN_VALID);
    ck_assert_str_eq(out.login, c.login);
    ck_assert_str_eq(out.auth_source, "Интернет");
    free(b);
}
END_TEST

START_TEST(sign_refuses_bad_input)
{
    struct token_keys k = keys_both(), nokey = k;
    struct token_claims c;
    nokey.own_len = 0;
    c = seed(TOKEN_COD);
    ck_assert_ptr_null(token_sign(NULL, &c));
    ck_assert_ptr_null(token_sign(&k, NULL));
    ck_assert_ptr_null(token_sign(&nokey, &c));
    nokey.own = NULL;
    nokey.own_len = 32;
    ck_assert_ptr_null(token_sign(&nokey, &c));
    c.type = 0;
    ck_assert_ptr_null(token_sign(&k, &c));
    c.type = TOKEN_COD | TOKEN_RPGU;
    ck_assert_ptr_null(token_sign(&k, &c));
    c = seed(TOKEN_COD);
    c.person_guid[8] = 'x';
    ck_assert_ptr_null(token_sign(&k, &c));
    c = seed(TOKEN_COD);
    strcpy(c.person_guid, "\",\"iss\":\"evil");
    ck_assert_ptr_null(token_sign(&k, &c));
    c = seed(TOKEN_COD);
    c.jti[35] = '\0';
    ck_assert_ptr_null(token_sign(&k, &c));
    c = seed(TOKEN_COD);
    memset(c.auth_source, 'a', sizeof(c.auth_source)); /* not terminated */
    ck_assert_ptr_null(token_sign(&k, &c));
    c = seed(TOKEN_COD);
    strcpy(c.login, "\xff\xfe");                       /* not UTF-8 */
    ck_assert_ptr_null(token_sign(&k, &c));
    c = seed(TOKEN_COD);
    c.iat = -1;
    ck_assert_ptr_null(token_sign(&k, &c));
    c = seed(TOKEN_COD);
    c.exp = INT64_MAX;
    ck_assert_ptr_null(token_sign(&k, &c));
}
END_TEST

START_TEST(type_names)
{
    ck_assert_str_eq(token_type_name(TOKEN_COD), "CodToken");
    ck_assert_str_eq(token_type_name(TOKEN_RPGU), "RpguToken");
    ck_assert_ptr_null(token_type_name((enum token_type)0));
}
END_TEST

/* ---- the Authorization header ---- */

START_TEST(missing_header)
{
    ck_assert_int_eq(verify(NULL, ALL, NOW), TOKEN_MISSING);
    ck_assert_int_eq(verify("", ALL, NOW), TOKEN_MISSING);
    ck_assert_int_eq(verify("Basic x", ALL, NOW), TOKEN_MISSING);
    ck_assert_int_eq(verify("Basic dXNlcjpwYXNz", ALL, NOW), TOKEN_MISSING);
    ck_assert_int_eq(verify("Bearer ", ALL, NOW), TOKEN_MISSING);
    ck_assert_int_eq(verify("Bearer      ", ALL, NOW), TOKEN_MISSING);
    ck_assert_int_eq(verify("Bearer", ALL, NOW), TOKEN_MISSING);
    /* RFC 7235 2.1: the scheme is case-insensitive, so these carry a
     * token (a malformed one), they do not lack it. */
    ck_assert_int_eq(verify("bearer a.b.c", ALL, NOW), TOKEN_MALFORMED);
    ck_assert_int_eq(verify("BEARER a.b.c", ALL, NOW), TOKEN_MALFORMED);
    ck_assert_int_eq(verify("Bearer\ta.b.c", ALL, NOW), TOKEN_MISSING);
    ck_assert_int_eq(verify(" Bearer a.b.c", ALL, NOW), TOKEN_MISSING);
    ck_assert_int_eq(verify("Bearera.b.c", ALL, NOW), TOKEN_MISSING);
}
END_TEST

START_TEST(extra_spaces_after_bearer)
{
    struct token_keys k = keys_both();
    struct token_claims c = seed(TOKEN_COD);
    char *t = token_sign(&k, &c);
    ck_assert_ptr_nonnull(t);
    char *b = xasprintf("Bearer     %s", t);
    ck_assert_int_eq(verify(b, ALL, NOW), TOKEN_VALID);
    free(b);
    b = xasprintf("Bearer %s ", t); /* trailing space: not base64url */
    ck_assert_int_eq(verify(b, ALL, NOW), TOKEN_MALFORMED);
    free(b);
    free(t);
}
END_TEST

/* ---- structure ---- */

START_TEST(garbage_and_segments)
{
    static const char *const bad[] = {
        "Bearer x", "Bearer garbage", "Bearer ....", "Bearer a.b", "Bearer a.b.c.d",
        "Bearer .b.c", "Bearer a..c", "Bearer a.b.", "Bearer ..", "Bearer .",
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30", /* 2 segments */
        "Bearer a.b.c",                    /* not base64 of anything */
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ.c2ln",
        "Bearer {\"alg\":\"HS256\"}.{}.sig",
        "Bearer \xd0\xb0.b.c",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(verify(bad[i], ALL, NOW) == TOKEN_MALFORMED, "%s", bad[i]);
}
END_TEST

/* Turns "Bearer h.p.s" into "Bearer " + insert(seg) at a position. */
static char *splice(const char *bearer, size_t at, const char *insert)
{
    return xasprintf("%.*s%s%s", (int)at, bearer, insert, bearer + at);
}

START_TEST(non_base64_characters)
{
    struct token_keys k = keys_both();
    struct token_claims c = seed(TOKEN_COD);
    char *b = signed_bearer(&k, &c);
    size_t hdr_at = 7 + 4, sig_at = strlen(b) - 3;
    size_t pl_at = (size_t)(strchr(b, '.') - b) + 5;
    static const char *const junk[] = {"+", "/", "=", "!", " ", "%", "\n", "==", "\xc3\xa9"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        size_t at[] = {hdr_at, pl_at, sig_at};
        for (size_t j = 0; j < 3; j++) {
            char *t = splice(b, at[j], junk[i]);
            ck_assert_msg(verify(t, ALL, NOW) == TOKEN_MALFORMED, "%s", t);
            free(t);
        }
    }
    /* Padding at the end of any segment, even one whose length allows it. */
    char *t = xasprintf("%s=", b);
    ck_assert_int_eq(verify(t, ALL, NOW), TOKEN_MALFORMED);
    free(t);
    /* The same with the HMAC recomputed over the junk: libb64 would skip
     * "!!" and accept it; we must not. */
    char *h = b64url(HS256_HDR, strlen(HS256_HDR)), *pl_json = own_payload_ok();
    char *p = b64url(pl_json, strlen(pl_json));
    char *hp = xasprintf("%.4s!!%s.%s", h, h + 4, p);
    char *sig = hmac_b64(OWN_KEY, hp);
    t = xasprintf("Bearer %s.%s", hp, sig);
    ck_assert_int_eq(verify(t, ALL, NOW), TOKEN_MALFORMED);
    free(t);
    free(sig);
    free(hp);
    free(p);
    free(pl_json);
    free(h);
    free(b);
}
END_TEST

/* Header and payload re-signed with our key after a change to their text. */
static char *resign(const char *h, const char *p)
{
    char *hp = xasprintf("%s.%s", h, p);
    char *sig = hmac_b64(OWN_KEY, hp);
    char *t = xasprintf("Bearer %s.%s", hp, sig);
    free(hp);
    free(sig);
    return t;
}

START_TEST(non_canonical_base64)
{
    /* libb64 ignores the unused low bits of the last character and a
     * dangling sixth-bit character; the signature covers the text, so such
     * spellings would verify. They are not base64url: refused. */
    char *pl = own_payload_ok();
    while (strlen(pl) % 3 != 1) { /* leaves 4 unused bits at the end */
        char *wider = xasprintf("%s ", pl);
        free(pl);
        pl = wider;
    }
    char *h = b64url(HS256_HDR, strlen(HS256_HDR)), *p = b64url(pl, strlen(pl));
    char *t = resign(h, p);
    ck_assert_int_eq(verify(t, ALL, NOW), TOKEN_VALID);
    free(t);
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *last = p + strlen(p) - 1;
    int v = (int)(strchr(b64, *last) - b64);
    ck_assert_int_eq(v & 15, 0);
    for (int lo = 1; lo < 16; lo++) {
        *last = b64[v | lo];
        t = resign(h, p);
        ck_assert_msg(verify(t, ALL, NOW) == TOKEN_MALFORMED, "%s", t);
        free(t);
    }
    *last = b64[v];
    char *p5 = xasprintf("%sA", p); /* length 1 mod 4 */
    if (strlen(p5) % 4 != 1) {
        free(p5);
        p5 = xasprintf("%sAAA", p);
    }
    ck_assert_int_eq(strlen(p5) % 4, 1);
    t = resign(h, p5);
    ck_assert_int_eq(verify(t, ALL, NOW), TOKEN_MALFORMED);
    free(t);
    free(p5);
    free(h);
    free(p);
    free(pl);
}
END_TEST

START_TEST(huge_token)
{
    size_t n = TOKEN_MAX_LEN + 100;
    char *t = malloc(n + 1);
    ck_assert_ptr_nonnull(t);
    memcpy(t, "Bearer ", 7);
    memset(t + 7, 'A', n - 7);
    t[n] = '\0';
    t[100] = '.';
    t[200] = '.';
    ck_assert_int_eq(verify(t, ALL, NOW), TOKEN_MALFORMED);
    /* A valid token made huge by an unsigned tail is refused before anything. */
    struct token_keys k = keys_both();
    struct token_claims c = seed(TOKEN_COD);
    char *b = signed_bearer(&k, &c);
    size_t bl = strlen(b);
    char *big = malloc(TOKEN_MAX_LEN * 2);
    ck_assert_ptr_nonnull(big);
    memcpy(big, b, bl);
    memset(big + bl, 'A', TOKEN_MAX_LEN * 2 - bl - 1);
    big[TOKEN_MAX_LEN * 2 - 1] = '\0';
    ck_assert_int_eq(verify(big, ALL, NOW), TOKEN_MALFORMED);
    free(big);
    free(b);
    free(t);
}
END_TEST

/* ---- the header and its algorithm ---- */

START_TEST(alg_none)
{
    char *pl = own_payload_ok();
    struct token_keys k = keys_both();
    static const char none[] = "{\"alg\":\"none\",\"typ\":\"JWT\"}";
    char *h = b64url(none, strlen(none));
    char *p = b64url(pl, strlen(pl));
    /* Empty signature, as "none" tokens have. */
    char *t = xasprintf("Bearer %s.%s.", h, p);
    ck_assert_int_eq(token_verify_header(&k, t, ALL, NOW, NULL), TOKEN_MALFORMED);
    free(t);
    /* Any signature. */
    t = xasprintf("Bearer %s.%s.c2lnbmF0dXJl", h, p);
    ck_assert_int_eq(token_verify_header(&k, t, ALL, NOW, NULL), TOKEN_MALFORMED);
    free(t);
    /* And even a valid HMAC over it. */
    ck_assert_int_eq(verify_hand("{\"alg\":\"none\",\"typ\":\"JWT\"}", pl, OWN_KEY, ALL, NOW),
                     TOKEN_MALFORMED);
    ck_assert_int_eq(verify_hand("{\"alg\":\"none\"}", pl, NULL, ALL, NOW), TOKEN_MALFORMED);
    free(h);
    free(p);
    free(pl);
}
END_TEST

START_TEST(other_algs)
{
    char *pl = own_payload_ok();
    static const char *const hdrs[] = {
        "{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
        "{\"alg\":\"HS384\",\"typ\":\"JWT\"}",
        "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
        "{\"alg\":\"ES256\",\"typ\":\"JWT\"}",
        "{\"alg\":\"hs256\",\"typ\":\"JWT\"}", /* libjwt would take this */
        "{\"alg\":\"HS256 \"}",
        "{\"alg\":\"\"}",
        "{\"alg\":null}",
        "{\"alg\":[\"HS256\"]}",
        "{\"alg\":256}",
        "{\"typ\":\"JWT\"}",
        "{}",
        "{\"alg\":\"HS256\",\"typ\":\"jwt\"}",
        "{\"alg\":\"HS256\",\"typ\":\"JWS\"}",
        "{\"alg\":\"HS256\",\"typ\":1}",
        "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
        "{\"alg\":\"HS256\",\"alg\":\"none\"}", /* duplicates read differently */
        "{\"alg\":\"none\",\"alg\":\"HS256\"}", /* by yajl and by jansson */
        "{\"alg\":\"HS256\\u0000x\"}",
        "[\"HS256\"]",
        "\"HS256\"",
        "{\"alg\":\"HS256\"",
        "{\"alg\":\"HS256\"} {}",
    };
    for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++)
        ck_assert_msg(verify_hand(hdrs[i], pl, OWN_KEY, ALL, NOW) == TOKEN_MALFORMED, "%s", hdrs[i]);
    /* Minimal headers that are fine. */
    ck_assert_int_eq(verify_hand("{\"alg\":\"HS256\"}", pl, OWN_KEY, ALL, NOW), TOKEN_VALID);
    ck_assert_int_eq(verify_hand("{\"typ\":\"JWT\",\"alg\":\"HS256\",\"kid\":\"1\"}", pl, OWN_KEY,
                                 ALL, NOW),
                     TOKEN_VALID);
    free(pl);
}
END_TEST

START_TEST(real_hs512_token)
{
    /* An HS512 token as libjwt itself writes one, with our key and claims. */
    char *pl = own_payload_ok();
    static const char hdr[] = "{\"alg\":\"HS512\",\"typ\":\"JWT\"}";
    char *h = b64url(hdr, strlen(hdr));
    char *p = b64url(pl, strlen(pl));
    char *hp = xasprintf("%s.%s", h, p);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    HMAC(EVP_sha512(), OWN_KEY, (int)strlen(OWN_KEY), (unsigned char *)hp, strlen(hp), md, &ml);
    char *sig = b64url(md, ml);
    char *t = xasprintf("Bearer %s.%s", hp, sig);
    ck_assert_int_eq(verify(t, ALL, NOW), TOKEN_MALFORMED);
    free(t);
    free(sig);
    free(hp);
    free(p);
    free(h);
    free(pl);
}
END_TEST

/* ---- signatures ---- */

START_TEST(wrong_key)
{
    struct token_keys k = keys_both(), other = k;
    other.own = (const unsigned char *)"some-other-key-0123456789abcdef!";
    struct token_claims c = seed(TOKEN_COD);
    char *b = signed_bearer(&other, &c);
    ck_assert_int_eq(token_verify_header(&k, b, ALL, NOW, NULL), TOKEN_BAD_SIGNATURE);
    /* Expired as well: still a bad signature, never "expired". */
    ck_assert_int_eq(token_verify_header(&k, b, ALL, NOW + 2 * HOUR, NULL), TOKEN_BAD_SIGNATURE);
    /* A prefix of the right key is another key. */
    other.own = k.own;
    other.own_len = k.own_len - 1;
    ck_assert_int_eq(token_verify_header(&other, b, ALL, NOW, NULL), TOKEN_BAD_SIGNATURE);
    free(b);
}
END_TEST

START_TEST(empty_key_never_verifies)
{
    /* libjwt 1.10 verifies nothing when key_len is 0. */
    struct token_keys k = keys_both();
    struct token_claims c = seed(TOKEN_COD);
    char *b = signed_bearer(&k, &c);
    k.own_len = 0;
    ck_assert_int_eq(token_verify_header(&k, b, ALL, NOW, NULL), TOKEN_MALFORMED);
    k.own_len = sizeof(OWN_KEY) - 1;
    k.own = NULL;
    ck_assert_int_eq(token_verify_header(&k, b, ALL, NOW, NULL), TOKEN_MALFORMED);
    ck_assert_int_eq(token_verify_header(NULL, b, ALL, NOW, NULL), TOKEN_MALFORMED);
    free(b);
}
END_TEST

START_TEST(tampered_signature)
{
    struct token_keys k = keys_both();
    struct token_claims c = seed(TOKEN_COD);
    char *b = signed_bearer(&k, &c);
    size_t n = strlen(b);
    char *s = strrchr(b, '.') + 10, orig = *s;
    *s = orig == 'A' ? 'B' : 'A';
    ck_assert_int_eq(verify(b, ALL, NOW), TOKEN_BAD_SIGNATURE);
    ck_assert_int_eq(verify(b, ALL, NOW + 2 * HOUR), TOKEN_BAD_SIGNATURE);
    *s = orig;
    ck_assert_int_eq(verify(b, ALL, NOW), TOKEN_VALID);
    /* Truncated, or longer by a whole group: the length does not match. */
    b[n - 4] = '\0';
    ck_assert_int_eq(verify(b, ALL, NOW), TOKEN_BAD_SIGNATURE);
    free(b);
    b = signed_bearer(&k, &c);
    char *longer = xasprintf("%sAAAA", b);
    ck_assert_int_eq(verify(longer, ALL, NOW), TOKEN_BAD_SIGNATURE);
    free(longer);
    /* The last character carries 4 bits and 2 zero bits: "non-canonical"
     * spellings of the same bytes are not the signature either. */
    char *last = b + strlen(b) - 1;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(b64, *last) - b64);
    for (int lo = 1; lo < 4; lo++) {
        *last = b64[(v & ~3) | lo];
        ck_assert_int_ne(verify(b, ALL, NOW), TOKEN_VALID);
    }
    free(b);
}
END_TEST

START_TEST(tampered_payload)
{
    struct token_keys k = keys_both();
    struct token_claims c = seed(TOKEN_COD);
    c.exp = NOW - 1; /* expired, so a successful tamper would show */
    char *t = token_sign(&k, &c);
    ck_assert_ptr_nonnull(t);
    char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
    char *pl = unb64url(d1 + 1, (size_t)(d2 - d1 - 1));
    char *at = strstr(pl, "1534234774");
    ck_assert_ptr_nonnull(at);
    at[0] = '2'; /* exp moved 31 years ahead, signature kept */
    char *p2 = b64url(pl, strlen(pl));
    char *b = xasprintf("Bearer %.*s.%s%s", (int)(d1 - t), t, p2, d2);
    ck_assert_int_eq(verify(b, ALL, NOW), TOKEN_BAD_SIGNATURE);
    free(b);
    free(p2);

    /* One character of the payload segment flipped, inside the login. */
    c.exp = NOW + HOUR;
    strcpy(c.login, "ivanovivanovivanovivanovivanovivanov");
    free(t);
    t = token_sign(&k, &c);
    ck_assert_ptr_nonnull(t);
    d1 = strchr(t, '.');
    d2 = strchr(d1 + 1, '.');
    free(pl);
    pl = unb64url(d1 + 1, (size_t)(d2 - d1 - 1));
    size_t off = (size_t)(strstr(pl, "ivanovivanov") - pl) + 6; /* well inside */
    char *seg = d1 + 1 + off / 3 * 4 + 5;                      /* a char of that run */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    *seg = b64[(strchr(b64, *seg) - b64) ^ 1]; /* one bit of one letter */
    char *flipped = unb64url(d1 + 1, (size_t)(d2 - d1 - 1));
    ck_assert_ptr_nonnull(strstr(flipped, "\"login\":\""));
    b = xasprintf("Bearer %s", t);
    ck_assert_msg(verify(b, ALL, NOW) == TOKEN_BAD_SIGNATURE, "%s", flipped);
    free(b);
    free(flipped);
    free(pl);
    free(t);
}
END_TEST

START_TEST(every_single_flip_refused)
{
    /* Whatever one character changes into, the token is never valid, and
     * never merely "expired". */
    struct token_keys k = keys_both();
    struct token_claims c = seed(TOKEN_RPGU);
    char *b = signed_bearer(&k, &c);
    static const char repl[] = "AQgw_-9.";
    ck_assert_int_eq(token_verify_header(&k, b, ALL, NOW + HOUR, NULL), TOKEN_EXPIRED);
    for (size_t i = 7; b[i] != '\0'; i++) {
        char orig = b[i];
        for (const char *r = repl; *r; r++) {
            if (*r == orig)
                continue;
            b[i] = *r;
            enum token_verdict v = token_verify_header(&k, b, ALL, NOW, NULL);
            ck_assert_msg(v == TOKEN_MALFORMED || v == TOKEN_BAD_SIGNATURE, "pos %zu: %d", i, v);
            v = token_verify_header(&k, b, ALL, NOW + HOUR, NULL);
            ck_assert_msg(v == TOKEN_MALFORMED || v == TOKEN_BAD_SIGNATURE, "pos %zu: %d", i, v);
        }
        b[i] = orig;
    }
    free(b);
}
END_TEST

/* ---- the memo of verified tokens ---- */

START_TEST(memo_hits_agree)
{
    /* A token verified once answers from the memo as the verifier would:
     * the same claims, the type mask and the expiry checked every time. */
    struct token_keys k = keys_both();
    struct token_memo *m = token_memo_new();
    struct token_claims c = seed(TOKEN_RPGU), out, want;
    char *b = signed_bearer(&k, &c);
    ck_assert_int_eq(token_verify_header(&k, b, ALL, NOW, &want), TOKEN_VALID);
    for (int i = 0; i < 3; i++) {
        memset(&out, 0x5a, sizeof(out));
        ck_assert_int_eq(token_verify_memo(m, &k, b, ALL, NOW, &out), TOKEN_VALID);
        ck_assert_mem_eq(&out, &want, sizeof(out));
    }
    ck_assert_int_eq(token_verify_memo(m, &k, b, TOKEN_COD, NOW, &out), TOKEN_MALFORMED);
    ck_assert_int_eq(token_verify_memo(m, &k, b, ALL, NOW + HOUR, &out), TOKEN_EXPIRED);
    ck_assert_int_eq(token_verify_memo(m, &k, b, TOKEN_RPGU, NOW + HOUR - 1, NULL), TOKEN_VALID);
    /* Refusals are not remembered: a missing header stays missing. */
    ck_assert_int_eq(token_verify_memo(m, &k, NULL, ALL, NOW, &out), TOKEN_MISSING);
    ck_assert_int_eq(token_verify_memo(m, &k, "Bearer ", ALL, NOW, &out), TOKEN_MISSING);
    token_memo_free(m);
    free(b);
}
END_TEST

START_TEST(memo_every_single_flip_refused)
{
    /* With the genuine token in the memo, any one character changed is
     * verified anew and refused: a hit is the whole token, not its slot. */
    struct token_keys k = keys_both();
    struct token_memo *m = token_memo_new();
    struct token_claims c = seed(TOKEN_RPGU);
    char *b = signed_bearer(&k, &c);
    static const char repl[] = "AQgw_-9.";
    for (size_t i = 7; b[i] != '\0'; i++) {
        char orig = b[i];
        for (const char *r = repl; *r; r++) {
            if (*r == orig)
                continue;
            ck_assert_int_eq(token_verify_memo(m, &k, b, ALL, NOW, NULL), TOKEN_VALID);
            b[i] = *r;
            enum token_verdict v = token_verify_memo(m, &k, b, ALL, NOW, NULL);
            ck_assert_msg(v == TOKEN_MALFORMED || v == TOKEN_BAD_SIGNATURE, "pos %zu: %d", i, v);
            b[i] = orig;
        }
    }
    token_memo_free(m);
    free(b);
}
END_TEST

START_TEST(memo_many_tokens)
{
    /* More tokens than slots: each still verifies, with its own claims. */
    struct token_keys k = keys_both();
    struct token_memo *m = token_memo_new();
    enum { N = TOKEN_MEMO_SLOTS + 500 };
    char **b = calloc(N, sizeof(*b));
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            struct token_claims c = seed(TOKEN_COD), out;
            snprintf(c.jti, sizeof(c.jti), "00000000-0000-4000-8000-%012d", i);
            if (!b[i])
                b[i] = signed_bearer(&k, &c);
            ck_assert_int_eq(token_verify_memo(m, &k, b[i], ALL, NOW, &out), TOKEN_VALID);
            ck_assert_str_eq(out.jti, c.jti);
        }
    }
    for (int i = 0; i < N; i++)
        free(b[i]);
    free(b);
    token_memo_free(m);
}
END_TEST

/* ---- type, expiry, claims ---- */

START_TEST(type_mask)
{
    struct token_keys k = keys_both();
    struct token_claims c = seed(TOKEN_COD);
    char *b = signed_bearer(&k, &c);
    ck_assert_int_eq(verify(b, TOKEN_RPGU, NOW), TOKEN_MALFORMED);
    ck_assert_int_eq(verify(b, 0, NOW), TOKEN_MALFORMED);
    ck_assert_int_eq(verify(b, TOKEN_COD, NOW), TOKEN_VALID);
    free(b);
    c = seed(TOKEN_RPGU);
    b = signed_bearer(&k, &c);
    ck_assert_int_eq(verify(b, TOKEN_COD, NOW), TOKEN_MALFORMED);
    ck_assert_int_eq(verify(b, TOKEN_RPGU, NOW), TOKEN_VALID);
    free(b);
}
END_TEST

START_TEST(expired)
{
    struct token_keys k = keys_both();
    struct token_claims c = seed(TOKEN_COD);
    char *b = signed_bearer(&k, &c);
    ck_assert_int_eq(verify(b, ALL, NOW + HOUR - 1), TOKEN_VALID);
    ck_assert_int_eq(verify(b, ALL, NOW + HOUR), TOKEN_EXPIRED);
    ck_assert_int_eq(verify(b, ALL, NOW + HOUR + 1), TOKEN_EXPIRED);
    ck_assert_int_eq(verify(b, ALL, INT64_MAX), TOKEN_EXPIRED);
    free(b);
    c.exp = 0;
    b = signed_bearer(&k, &c);
    ck_assert_int_eq(verify(b, ALL, NOW), TOKEN_EXPIRED);
    free(b);
}
END_TEST

START_TEST(iat_in_future)
{
    struct token_keys k = keys_both();
    struct token_claims c = seed(TOKEN_COD);
    c.iat = NOW + 300;
    char *b = signed_bearer(&k, &c);
    ck_assert_int_eq(verify(b, ALL, NOW), TOKEN_VALID);
    free(b);
    c.iat = NOW + 301;
    b = signed_bearer(&k, &c);
    ck_assert_int_eq(verify(b, ALL, NOW), TOKEN_MALFORMED);
    ck_assert_int_eq(verify(b, ALL, NOW + 1), TOKEN_VALID);
    ck_assert_int_eq(verify(b, ALL, INT64_MIN), TOKEN_MALFORMED);
    free(b);
}
END_TEST

START_TEST(payload_not_object)
{
    static const char *const pls[] = {
        "[1,2]", "\"str\"", "42", "null", "true", "", " ", "{", "{}x", "{} {}", "{\"a\":1,}",
        "{\"a\":1 /* comment */}",
    };
    for (size_t i = 0; i < sizeof(pls) / sizeof(pls[0]); i++)
        ck_assert_msg(verify_hand(HS256_HDR, pls[i], OWN_KEY, ALL, NOW) == TOKEN_MALFORMED, "%s",
                      pls[i]);
}
END_TEST

START_TEST(claims_wrong_types)
{
    static const char G[] = "\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"";
    static const char GA[] = "[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]";
    static const char J[] = "\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"";
    static const char EXP[] = "1534238375", IAT[] = "1534234775", A[] = "\"Internet\"";
    struct {
        const char *type, *guids, *jti, *exp, *iat, *auth;
    } cases[] = {
        {"\"Cod\"", GA, J, EXP, IAT, A},
        {"\"codtoken\"", GA, J, EXP, IAT, A},
        {"1", GA, J, EXP, IAT, A},
        {"null", GA, J, EXP, IAT, A},
        {"[\"CodToken\"]", GA, J, EXP, IAT, A},
        {"\"CodToken\"", G, J, EXP, IAT, A},          /* PersonGuid not an array */
        {"\"CodToken\"", "[]", J, EXP, IAT, A},
        {"\"CodToken\"", "[1]", J, EXP, IAT, A},
        {"\"CodToken\"", "[[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]]", J, EXP, IAT, A},
        {"\"CodToken\"", "[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2\"]", J, EXP, IAT, A},
        {"\"CodToken\"", "[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2cd\"]", J, EXP, IAT, A},
        {"\"CodToken\"", "[\"0b9e2c1a+4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]", J, EXP, IAT, A},
        {"\"CodToken\"", "[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2g\"]", J, EXP, IAT, A},
        {"\"CodToken\"", GA, "1", EXP, IAT, A},
        {"\"CodToken\"", GA, "\"\"", EXP, IAT, A},
        {"\"CodToken\"", GA, "\"not-a-guid-at-all-not-a-guid-at-all\"", EXP, IAT, A},
        {"\"CodToken\"", GA, J, "\"1534238375\"", IAT, A},
        {"\"CodToken\"", GA, J, "1534238375.0", IAT, A},
        {"\"CodToken\"", GA, J, "1.534238375e9", IAT, A},
        {"\"CodToken\"", GA, J, "99999999999999999999", IAT, A},
        {"\"CodToken\"", GA, J, "null", IAT, A},
        {"\"CodToken\"", GA, J, EXP, "\"1534234775\"", A},
        {"\"CodToken\"", GA, J, EXP, "1534234775.5", A},
        {"\"CodToken\"", GA, J, EXP, "true", A},
        {"\"CodToken\"", GA, J, EXP, IAT, "1"},
        {"\"CodToken\"", GA, J, EXP, IAT, "null"},
        {"\"CodToken\"", GA, J, EXP, IAT, "[\"Internet\"]"},
        /* 64 characters do not fit auth_source[64]: refused, not cut. */
        {"\"CodToken\"", GA, J, EXP, IAT, NULL},
    };
    char a64[67], a63[66];
    a64[0] = a63[0] = '"';
    memset(a64 + 1, 'a', 64);
    memcpy(a64 + 65, "\"", 2);
    memset(a63 + 1, 'a', 63);
    memcpy(a63 + 64, "\"", 2);
    cases[sizeof(cases) / sizeof(cases[0]) - 1].auth = a64;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *pl = own_payload(cases[i].type, cases[i].guids, cases[i].jti, cases[i].exp,
                               cases[i].iat, cases[i].auth);
        ck_assert_msg(verify_hand(HS256_HDR, pl, OWN_KEY, ALL, NOW) == TOKEN_MALFORMED, "%zu: %s", i,
                      pl);
        free(pl);
    }
    /* The reference payload itself is fine, and 63 characters fit. */
    char *pl = own_payload("\"CodToken\"", GA, J, EXP, IAT, a63);
    ck_assert_int_eq(verify_hand(HS256_HDR, pl, OWN_KEY, ALL, NOW), TOKEN_VALID);
    free(pl);
}
END_TEST

START_TEST(claims_missing_or_odd)
{
    static const char *const pls[] = {
        /* no Payload */
        "{\"login\":\"a\",\"authSource\":\"I\",\"tokenType\":\"CodToken\",\"iss\":\"mipgw\","
        "\"iat\":1534234775,\"exp\":1534238375,\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}",
        /* Payload not an object */
        "{\"Payload\":[],\"authSource\":\"I\",\"tokenType\":\"CodToken\",\"iss\":\"mipgw\","
        "\"iat\":1534234775,\"exp\":1534238375,\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}",
        /* no exp */
        "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]},"
        "\"authSource\":\"I\",\"tokenType\":\"CodToken\",\"iss\":\"mipgw\",\"iat\":1534234775,"
        "\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}",
        /* no iat */
        "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]},"
        "\"authSource\":\"I\",\"tokenType\":\"CodToken\",\"iss\":\"mipgw\",\"exp\":1534238375,"
        "\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}",
        /* no jti */
        "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]},"
        "\"authSource\":\"I\",\"tokenType\":\"CodToken\",\"iss\":\"mipgw\",\"iat\":1534234775,"
        "\"exp\":1534238375}",
        /* no authSource */
        "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]},"
        "\"tokenType\":\"CodToken\",\"iss\":\"mipgw\",\"iat\":1534234775,\"exp\":1534238375,"
        "\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}",
        /* no tokenType */
        "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]},"
        "\"authSource\":\"I\",\"iss\":\"mipgw\",\"iat\":1534234775,\"exp\":1534238375,"
        "\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}",
        /* login of the wrong type */
        "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]},\"login\":7,"
        "\"authSource\":\"I\",\"tokenType\":\"CodToken\",\"iss\":\"mipgw\",\"iat\":1534234775,"
        "\"exp\":1534238375,\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}",
        /* privilege not a boolean */
        "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]},\"privilege\":0,"
        "\"authSource\":\"I\",\"tokenType\":\"CodToken\",\"iss\":\"mipgw\",\"iat\":1534234775,"
        "\"exp\":1534238375,\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}",
        /* iss not a string */
        "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]},"
        "\"authSource\":\"I\",\"tokenType\":\"CodToken\",\"iss\":[\"mipgw\"],\"iat\":1534234775,"
        "\"exp\":1534238375,\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}",
        /* duplicate iss: jansson keeps the last, yajl finds the first */
        "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]},"
        "\"authSource\":\"I\",\"tokenType\":\"CodToken\",\"iss\":\"mipgw\",\"iat\":1534234775,"
        "\"exp\":1534238375,\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\",\"iss\":\"x\"}",
        /* duplicate exp */
        "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]},"
        "\"authSource\":\"I\",\"tokenType\":\"CodToken\",\"iss\":\"mipgw\",\"iat\":1534234775,"
        "\"exp\":1,\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\",\"exp\":1934238375}",
        /* duplicate inside Payload */
        "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"],\"PersonGuid\":[]},"
        "\"authSource\":\"I\",\"tokenType\":\"CodToken\",\"iss\":\"mipgw\",\"iat\":1534234775,"
        "\"exp\":1534238375,\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}",
        /* a NUL that yajl would cut at and jansson refuses */
        "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]},"
        "\"authSource\":\"Inter\\u0000net\",\"tokenType\":\"CodToken\",\"iss\":\"mipgw\","
        "\"iat\":1534234775,\"exp\":1534238375,\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}",
        /* a comment, which yajl_tree_parse allows and jansson does not */
        "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]},/**/"
        "\"authSource\":\"I\",\"tokenType\":\"CodToken\",\"iss\":\"mipgw\",\"iat\":1534234775,"
        "\"exp\":1534238375,\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}",
        /* nbf ahead */
        "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]},"
        "\"authSource\":\"I\",\"tokenType\":\"CodToken\",\"iss\":\"mipgw\",\"iat\":1534234775,"
        "\"nbf\":1534244775,\"exp\":1534238375,\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}",
        /* deep nesting */
        "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"]},"
        "\"x\":[[[[[[[[[[[[1]]]]]]]]]]]],"
        "\"authSource\":\"I\",\"tokenType\":\"CodToken\",\"iss\":\"mipgw\",\"iat\":1534234775,"
        "\"exp\":1534238375,\"jti\":\"f47ac10b-58cc-4372-a567-0e02b2c3d479\"}",
    };
    for (size_t i = 0; i < sizeof(pls) / sizeof(pls[0]); i++)
        ck_assert_msg(verify_hand(HS256_HDR, pls[i], OWN_KEY, ALL, NOW) == TOKEN_MALFORMED, "%zu: %s",
                      i, pls[i]);
    /* Unknown claims are ignored; login may be absent. */
    ck_assert_int_eq(
        verify_hand(HS256_HDR,
                    "{\"Payload\":{\"PersonGuid\":[\"0b9e2c1a-4f3d-4e5b-8a6c-7d8e9f0a1b2c\"],\"z\":1},"
                    "\"authSource\":\"I\",\"tokenType\":\"CodToken\",\"iss\":\"mipgw\","
                    "\"iat\":1534234775,\"exp\":1534238375,\"extra\":{\"a\":[null]},"
                    "\"jti\":\"F47AC10B-58CC-4372-A567-0E02B2C3D479\"}",
                    OWN_KEY, ALL, NOW),
        TOKEN_VALID);
}
END_TEST

/* ---- portal-minted RPGU tokens ---- */

START_TEST(portal_valid)
{
    struct token_keys k = keys_both();
    struct token_claims out;
    char *pl = portal_payload("", POLIS_OK, NOW + HOUR);
    char *t = hand_token(HS256_HDR, pl, PORTAL_KEY);
    memset(&out, 0x5a, sizeof(out));
    ck_assert_int_eq(token_verify_header(&k, t, TOKEN_RPGU, NOW, &out), TOKEN_VALID);
    ck_assert_int_eq(out.type, TOKEN_RPGU);
    ck_assert(out.portal_minted);
    ck_assert_str_eq(out.jti, "");
    ck_assert_str_eq(out.person_guid, "");
    ck_assert_str_eq(out.polis_series, "AB");
    ck_assert_str_eq(out.polis_number, "7700000000000001");
    ck_assert_str_eq(out.birthday, "1980-02-29");
    ck_assert_str_eq(out.auth_source, "Portal");
    ck_assert_str_eq(out.login, "");
    ck_assert_int_eq(out.iat, NOW);
    ck_assert_int_eq(out.exp, NOW + HOUR);
    /* Not accepted where only COD tokens are. */
    ck_assert_int_eq(token_verify_header(&k, t, TOKEN_COD, NOW, &out), TOKEN_MALFORMED);
    /* Expired. */
    ck_assert_int_eq(token_verify_header(&k, t, TOKEN_RPGU, NOW + HOUR, &out), TOKEN_EXPIRED);
    free(t);
    free(pl);

    /* Another issuer, no series, minimal claims. */
    pl = xasprintf("{\"iss\":\"rpgu.example\",\"tokenType\":\"RpguToken\",\"exp\":%lld,"
                   "\"Payload\":{\"PolisNumber\":\"1\",\"Birthday\":\"2001-12-31\"}}",
                   (long long)(NOW + 60));
    t = hand_token(HS256_HDR, pl, PORTAL_KEY);
    ck_assert_int_eq(token_verify_header(&k, t, ALL, NOW, &out), TOKEN_VALID);
    ck_assert(out.portal_minted);
    ck_assert_str_eq(out.polis_series, "");
    ck_assert_str_eq(out.polis_number, "1");
    ck_assert_str_eq(out.auth_source, "");
    ck_assert_int_eq(out.iat, 0);
    free(t);
    free(pl);
}
END_TEST

/* A portal's token that claims a life longer than tokens.portal_max_ttl_s
 * from now is malformed, however well signed; ours are bounded by what we
 * issue, not by this. */
START_TEST(portal_lifetime_bounded)
{
    struct token_keys k = keys_both();
    k.portal_max_ttl_s = 2 * HOUR;
    struct token_claims out;
    char *pl = portal_payload("", POLIS_OK, NOW + 2 * HOUR);
    char *t = hand_token(HS256_HDR, pl, PORTAL_KEY);
    ck_assert_int_eq(token_verify_header(&k, t, TOKEN_RPGU, NOW, &out), TOKEN_VALID);
    free(t), free(pl);
    pl = portal_payload("", POLIS_OK, NOW + 2 * HOUR + 1);
    t = hand_token(HS256_HDR, pl, PORTAL_KEY);
    ck_assert_int_eq(token_verify_header(&k, t, TOKEN_RPGU, NOW, &out), TOKEN_MALFORMED);
    /* The same token once its remaining life is within the bound. */
    ck_assert_int_eq(token_verify_header(&k, t, TOKEN_RPGU, NOW + 1, &out), TOKEN_VALID);
    /* No bound configured: as the portal wrote it. */
    k.portal_max_ttl_s = 0;
    ck_assert_int_eq(token_verify_header(&k, t, TOKEN_RPGU, NOW, &out), TOKEN_VALID);
    free(t), free(pl);
}
END_TEST

START_TEST(portal_wrong_keys)
{
    struct token_keys k = keys_both();
    char *pl = portal_payload("", POLIS_OK, NOW + HOUR);
    /* Signed with our own key but without our issuer: checked with the
     * portal key, which does not match. */
    char *t = hand_token(HS256_HDR, pl, OWN_KEY);
    ck_assert_int_eq(token_verify_header(&k, t, ALL, NOW, NULL), TOKEN_BAD_SIGNATURE);
    free(t);
    /* Portal key, no portal configured: nothing to verify it with. */
    t = hand_token(HS256_HDR, pl, PORTAL_KEY);
    k.portal = NULL;
    ck_assert_int_eq(token_verify_header(&k, t, ALL, NOW, NULL), TOKEN_MALFORMED);
    k = keys_both();
    k.portal_len = 0;
    ck_assert_int_eq(token_verify_header(&k, t, ALL, NOW, NULL), TOKEN_MALFORMED);
    free(t);
    free(pl);
    /* A portal claiming to be us is checked with our key. */
    pl = own_payload_ok();
    t = hand_token(HS256_HDR, pl, PORTAL_KEY);
    k = keys_both();
    ck_assert_int_eq(token_verify_header(&k, t, ALL, NOW, NULL), TOKEN_BAD_SIGNATURE);
    free(t);
    free(pl);
    pl = portal_payload("\"iss\":\"mipgw\",", POLIS_OK, NOW + HOUR);
    t = hand_token(HS256_HDR, pl, PORTAL_KEY);
    ck_assert_int_eq(token_verify_header(&k, t, ALL, NOW, NULL), TOKEN_MALFORMED);
    free(t);
    free(pl);
}
END_TEST

START_TEST(portal_bad_claims)
{
    static const char *const payloads[] = {
        "{\"PolisSeries\":\"AB\",\"Birthday\":\"1980-02-29\"}",             /* no number */
        "{\"PolisNumber\":\"\",\"Birthday\":\"1980-02-29\"}",               /* empty */
        "{\"PolisNumber\":7700000000000001,\"Birthday\":\"1980-02-29\"}",   /* a number */
        "{\"PolisNumber\":\"12345678901234567890123456789012\",\"Birthday\":\"1980-02-29\"}",
        "{\"PolisNumber\":\"1\",\"PolisSeries\":1,\"Birthday\":\"1980-02-29\"}",
        ("{\"PolisNumber\":\"1\",\"PolisSeries\":\"12345678901234567890123456789012\","
         "\"Birthday\":\"1980-02-29\"}"),
        "{\"PolisNumber\":\"1\"}",                                         /* no birthday */
        "{\"PolisNumber\":\"1\",\"Birthday\":\"29.02.1980\"}",
        "{\"PolisNumber\":\"1\",\"Birthday\":\"1980-2-29\"}",
        "{\"PolisNumber\":\"1\",\"Birthday\":\"1980-02-290\"}",
        "{\"PolisNumber\":\"1\",\"Birthday\":\"1980/02/29\"}",
        "{\"PolisNumber\":\"1\",\"Birthday\":19800229}",
        "[\"1\"]",
        "\"1\"",
    };
    for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        char *pl = portal_payload("", payloads[i], NOW + HOUR);
        ck_assert_msg(verify_hand(HS256_HDR, pl, PORTAL_KEY, ALL, NOW) == TOKEN_MALFORMED, "%s", pl);
        free(pl);
    }
    /* 31 characters fit polis_number[32]. */
    char *pl = portal_payload("", "{\"PolisNumber\":\"1234567890123456789012345678901\","
                                  "\"Birthday\":\"1980-02-29\"}", NOW + HOUR);
    ck_assert_int_eq(verify_hand(HS256_HDR, pl, PORTAL_KEY, ALL, NOW), TOKEN_VALID);
    free(pl);

    static const char *const whole[] = {
        /* a portal cannot mint COD tokens */
        "{\"tokenType\":\"CodToken\",\"exp\":1534238375,\"Payload\":"
        "{\"PolisNumber\":\"1\",\"Birthday\":\"1980-02-29\"}}",
        /* no exp */
        "{\"tokenType\":\"RpguToken\",\"Payload\":{\"PolisNumber\":\"1\",\"Birthday\":\"1980-02-29\"}}",
        /* exp a string */
        "{\"tokenType\":\"RpguToken\",\"exp\":\"1534238375\",\"Payload\":"
        "{\"PolisNumber\":\"1\",\"Birthday\":\"1980-02-29\"}}",
        /* no Payload */
        "{\"tokenType\":\"RpguToken\",\"exp\":1534238375}",
        /* iss not a string */
        "{\"iss\":null,\"tokenType\":\"RpguToken\",\"exp\":1534238375,\"Payload\":"
        "{\"PolisNumber\":\"1\",\"Birthday\":\"1980-02-29\"}}",
        /* iat far ahead */
        "{\"tokenType\":\"RpguToken\",\"iat\":1534244775,\"exp\":1534248375,\"Payload\":"
        "{\"PolisNumber\":\"1\",\"Birthday\":\"1980-02-29\"}}",
        /* authSource of the wrong type */
        "{\"tokenType\":\"RpguToken\",\"authSource\":false,\"exp\":1534238375,\"Payload\":"
        "{\"PolisNumber\":\"1\",\"Birthday\":\"1980-02-29\"}}",
    };
    for (size_t i = 0; i < sizeof(whole) / sizeof(whole[0]); i++)
        ck_assert_msg(verify_hand(HS256_HDR, whole[i], PORTAL_KEY, ALL, NOW) == TOKEN_MALFORMED, "%s",
                      whole[i]);
}
END_TEST

START_TEST(out_cleared_on_refusal)
{
    struct token_keys k = keys_both();
    struct token_claims out;
    memset(&out, 0x5a, sizeof(out));
    ck_assert_int_eq(token_verify_header(&k, "Bearer a.b.c", ALL, NOW, &out), TOKEN_MALFORMED);
    ck_assert_str_eq(out.jti, "");
    ck_assert_str_eq(out.person_guid, "");
    ck_assert(!out.portal_minted);
}
END_TEST

static Suite *token_suite(void)
{
    Suite *s = suite_create("token");
    TCase *tc = tcase_create("sign");
    tcase_add_test(tc, round_trip_cod);
    tcase_add_test(tc, round_trip_rpgu);
    tcase_add_test(tc, sign_payload_mirrors_seed);
    tcase_add_test(tc, sign_same_as_libjwt);
    tcase_add_test(tc, sign_key_changes);
    tcase_add_test(tc, sign_escapes_strings);
    tcase_add_test(tc, sign_refuses_bad_input);
    tcase_add_test(tc, type_names);
    suite_add_tcase(s, tc);

    tc = tcase_create("structure");
    tcase_add_test(tc, missing_header);
    tcase_add_test(tc, extra_spaces_after_bearer);
    tcase_add_test(tc, garbage_and_segments);
    tcase_add_test(tc, non_base64_characters);
    tcase_add_test(tc, non_canonical_base64);
    tcase_add_test(tc, huge_token);
    tcase_add_test(tc, alg_none);
    tcase_add_test(tc, other_algs);
    tcase_add_test(tc, real_hs512_token);
    tcase_add_test(tc, out_cleared_on_refusal);
    suite_add_tcase(s, tc);

    tc = tcase_create("signature");
    tcase_add_test(tc, wrong_key);
    tcase_add_test(tc, empty_key_never_verifies);
    tcase_add_test(tc, tampered_signature);
    tcase_add_test(tc, tampered_payload);
    tcase_add_test(tc, every_single_flip_refused);
    tcase_add_test(tc, memo_hits_agree);
    tcase_add_test(tc, memo_every_single_flip_refused);
    tcase_add_test(tc, memo_many_tokens);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("claims");
    tcase_add_test(tc, type_mask);
    tcase_add_test(tc, expired);
    tcase_add_test(tc, iat_in_future);
    tcase_add_test(tc, payload_not_object);
    tcase_add_test(tc, claims_wrong_types);
    tcase_add_test(tc, claims_missing_or_odd);
    suite_add_tcase(s, tc);

    tc = tcase_create("portal");
    tcase_add_test(tc, portal_valid);
    tcase_add_test(tc, portal_lifetime_bounded);
    tcase_add_test(tc, portal_wrong_keys);
    tcase_add_test(tc, portal_bad_claims);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* TokenBeginLifeTime is local time: pin the zone (UTC+3, no DST). */
    setenv("TZ", "Europe/Moscow", 1);
    tzset();
    SRunner *sr = srunner_create(token_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
