/* token.c - signing and verifying patient tokens (HS256 JWTs).
 *
 * libjwt 1.10.2 is lenient in ways a verifier must not be, so everything a
 * client presents is checked here first, and libjwt only confirms:
 *  - jwt_decode() verifies nothing when key is NULL *or key_len is 0*: it
 *    succeeds, even for a tampered HS256 token, and reports alg "none";
 *  - so with no key (NULL, or key_len 0) it accepts alg "none" with any
 *    signature; given a key it refuses "none", but never rely on that;
 *  - it never looks at exp (or any other claim);
 *  - its base64 decoder (libb64) skips characters outside the alphabet, so
 *    "!", "=" or spaces inside a segment go unnoticed;
 *  - it matches "alg" case-insensitively ("hs256" passes);
 *  - it parses with jansson, where a duplicate key's last value wins, while
 *    yajl_tree_get() finds the first: {"alg":"none","alg":"HS256"} would read
 *    differently to the two parsers, so duplicate keys are refused;
 *  - it accepts a payload that is not a JSON object;
 *  - jwt_get_grant_int() gives 0 with errno 0 for a string or a real, and
 *    jwt_add_grants_json() silently overwrites grants already set.
 *
 * Verification: split into three strict base64url segments, decode and parse
 * header and payload with yajl, require alg "HS256" (typ "JWT" if present),
 * choose the key by "iss", validate every claim, check the HMAC ourselves
 * (constant time, canonical encoding), confirm with jwt_decode() and the alg
 * it reports, and only then look at exp. No static mutable state. */
#include "token.h"

#include "ids.h"
#include "util.h"

#include <jwt.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_tree.h>

#define HS256_LEN 32              /* HMAC-SHA256 output */
#define HS512_LEN 64              /* HMAC-SHA512 output */
#define IAT_SKEW_S 300            /* iat/nbf may run this far ahead of now */
#define JSON_MAX_DEPTH 8          /* our payload nests 3 deep */
#define SEG_BUF (TOKEN_MAX_LEN / 4 * 3 + 4)
/* Seconds since the epoch accepted when signing: up to 9999-12-31. */
#define SIGN_TIME_MAX INT64_C(253402300799)

const char *token_type_name(enum token_type t)
{
    switch (t) {
    case TOKEN_COD:
        return "CodToken";
    case TOKEN_RPGU:
        return "RpguToken";
    }
    return NULL;
}

static bool type_from_name(const char *s, enum token_type *t)
{
    if (strcmp(s, "CodToken") == 0) {
        *t = TOKEN_COD;
        return true;
    }
    if (strcmp(s, "RpguToken") == 0) {
        *t = TOKEN_RPGU;
        return true;
    }
    return false;
}

/* 36 characters: 8-4-4-4-12 hex digits. */
static bool is_guid(const char *s)
{
    for (size_t i = 0; i < GUID_LEN; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return s[GUID_LEN] == '\0';
}

/* "YYYY-MM-DD" by shape only. */
static bool is_date(const char *s)
{
    for (size_t i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (s[i] != '-')
                return false;
        } else if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return s[10] == '\0';
}

static bool key_usable(const unsigned char *key, size_t len)
{
    /* libjwt takes an int length and treats 0 as "no key": never pass one. */
    return key != NULL && len > 0 && len <= INT_MAX;
}

/* ---- signing ---------------------------------------------------------- */

/* The header every token of ours carries, {"alg":"HS256","typ":"JWT"},
 * base64url-encoded: it never changes, so it is written once. */
static const char JWT_HEADER_B64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/* HMAC-SHA256 with a context per thread and key. OpenSSL 3's one-shot HMAC()
 * looks the algorithm up, under a lock, on every call; a context that keeps
 * its key is re-armed for the next message instead. The key is compared by
 * content, so a caller's key buffer may change between calls. */
#define MAC_SLOTS 3  /* the gateway's own key, the portals', the cabinet's */

struct mac_slot {
    unsigned char *key;  /* a copy, cleansed when the slot goes */
    size_t key_len;
    enum token_alg alg;
    EVP_MAC_CTX *ctx;
};

static EVP_MAC *mac_alg;
static pthread_key_t mac_tls;
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;

static void mac_slot_clear(struct mac_slot *s)
{
    EVP_MAC_CTX_free(s->ctx);
    if (s->key != NULL) {
        OPENSSL_cleanse(s->key, s->key_len);
        free(s->key);
    }
    memset(s, 0, sizeof(*s));
}

/* Runs at the exit of each thread that signed or verified. */
static void mac_tls_free(void *p)
{
    struct mac_slot *slots = p;
    for (int i = 0; i < MAC_SLOTS; i++)
        mac_slot_clear(&slots[i]);
    free(slots);
}

static void mac_init_once(void)
{
    mac_alg = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (pthread_key_create(&mac_tls, mac_tls_free) != 0)
        abort();
}

static EVP_MAC_CTX *mac_ctx_for(const unsigned char *key, size_t key_len, enum token_alg alg)
{
    pthread_once(&mac_once, mac_init_once);
    if (mac_alg == NULL)
        return NULL;
    struct mac_slot *slots = pthread_getspecific(mac_tls);
    if (slots == NULL) {
        slots = calloc(MAC_SLOTS, sizeof(*slots));
        if (slots == NULL || pthread_setspecific(mac_tls, slots) != 0) {
            free(slots);
            return NULL;
        }
    }
    for (int i = 0; i < MAC_SLOTS; i++) {
        struct mac_slot *s = &slots[i];
        if (s->ctx != NULL && s->alg == alg && s->key_len == key_len &&
            CRYPTO_memcmp(s->key, key, key_len) == 0)
            return EVP_MAC_init(s->ctx, NULL, 0, NULL) == 1 ? s->ctx : NULL;
    }
    /* A new key: it takes the last slot, the oldest moving up. */
    mac_slot_clear(&slots[MAC_SLOTS - 1]);
    memmove(&slots[1], &slots[0], sizeof(*slots) * (MAC_SLOTS - 1));
    struct mac_slot *s = &slots[0];
    memset(s, 0, sizeof(*s));
    const char *digest = alg == TOKEN_HS512 ? "SHA512" : "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)digest, 0),
                           OSSL_PARAM_construct_end()};
    s->ctx = EVP_MAC_CTX_new(mac_alg);
    s->key = malloc(key_len);
    if (s->ctx == NULL || s->key == NULL || EVP_MAC_init(s->ctx, key, key_len, params) != 1) {
        mac_slot_clear(s);
        return NULL;
    }
    memcpy(s->key, key, key_len);
    s->key_len = key_len;
    s->alg = alg;
    return s->ctx;
}

/* The MAC's length for alg. */
static size_t mac_len(enum token_alg alg)
{
    return alg == TOKEN_HS512 ? HS512_LEN : HS256_LEN;
}

static bool hmac(enum token_alg alg, const unsigned char *key, size_t key_len, const void *data,
                 size_t len, unsigned char *out)
{
    EVP_MAC_CTX *ctx = mac_ctx_for(key, key_len, alg);
    size_t n = 0, want = mac_len(alg);
    return ctx != NULL && EVP_MAC_update(ctx, data, len) == 1 &&
           EVP_MAC_final(ctx, out, &n, want) == 1 && n == want;
}

static bool hs256(const unsigned char *key, size_t key_len, const void *data, size_t len,
                  unsigned char out[HS256_LEN])
{
    return hmac(TOKEN_HS256, key, key_len, data, len, out);
}

/* Unpadded base64url of n bytes into out (room for n / 3 * 4 + 4 and a
 * NUL); returns the length written. */
static size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
    return util_b64url(in, n, out);
}

/* A JSON string as jansson writes it (libjwt's encoder, which the tests
 * compare against): '"' and '\\' escaped, control characters as \b \f \n
 * \r \t or \u00XX, everything else as is. False for invalid UTF-8. */
static bool json_put_str(char **o, const char *s)
{
    if (!ids_utf8_valid(s, strlen(s)))
        return false;
    char *p = *o;
    *p++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"': *p++ = '\\'; *p++ = '"'; break;
        case '\\': *p++ = '\\'; *p++ = '\\'; break;
        case '\b': *p++ = '\\'; *p++ = 'b'; break;
        case '\f': *p++ = '\\'; *p++ = 'f'; break;
        case '\n': *p++ = '\\'; *p++ = 'n'; break;
        case '\r': *p++ = '\\'; *p++ = 'r'; break;
        case '\t': *p++ = '\\'; *p++ = 't'; break;
        default:
            if (c < 0x20) {
                p += sprintf(p, "\\u%04X", c);
            } else {
                *p++ = (char)c;
            }
        }
    }
    *p++ = '"';
    *o = p;
    return true;
}

/* A NUL inside the array, i.e. a C string that fits. */
static bool fits(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

/* Decimal digits of a non-negative value below 10^19. */
static char *put_uint(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        *p++ = tmp[--n];
    return p;
}

static char *put_lit(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* The payload is written directly, in the shape libjwt 1.10 gives it
 * (jansson with sorted keys, compact): the tests check that libjwt decodes
 * and verifies every token signed here, and that its own encoding of the
 * same claims is byte for byte the same. libjwt's encoder builds a jansson
 * tree and prints it through vsnprintf, which cost a quarter of the token
 * endpoint's CPU. */
char *token_sign(const struct token_keys *keys, const struct token_claims *c)
{
    if (keys == NULL || c == NULL || !key_usable(keys->own, keys->own_len))
        return NULL;
    const char *type = token_type_name(c->type);
    if (type == NULL || !fits(c->jti, sizeof(c->jti)) || !is_guid(c->jti) ||
        !fits(c->person_guid, sizeof(c->person_guid)) || !is_guid(c->person_guid) ||
        !fits(c->auth_source, sizeof(c->auth_source)) || !fits(c->login, sizeof(c->login)))
        return NULL;
    if (c->iat < 0 || c->iat > SIGN_TIME_MAX || c->exp < 0 || c->exp > SIGN_TIME_MAX)
        return NULL;

    char begin[32], end[32];
    util_format_time(c->iat, begin);
    util_format_time(c->exp, end);

    /* Fixed text, two times, two GUIDs and two short strings that escape to
     * at most six bytes each: 1,024 bytes are plenty. */
    char payload[1024];
    char *p = payload;
    p = put_lit(p, "{\"Payload\":{\"PersonGuid\":[\"");
    p = put_lit(p, c->person_guid);  /* hex and dashes: nothing to escape */
    p = put_lit(p, "\"]},\"TokenBeginLifeTime\":\"");
    p = put_lit(p, begin);
    p = put_lit(p, "\",\"TokenEndLifeTime\":\"");
    p = put_lit(p, end);
    p = put_lit(p, "\",\"authSource\":");
    if (!json_put_str(&p, c->auth_source))
        return NULL;
    p = put_lit(p, ",\"exp\":");
    p = put_uint(p, (uint64_t)c->exp);
    p = put_lit(p, ",\"iat\":");
    p = put_uint(p, (uint64_t)c->iat);
    p = put_lit(p, ",\"iss\":\"" TOKEN_ISSUER "\",\"jti\":\"");
    p = put_lit(p, c->jti);
    p = put_lit(p, "\",\"login\":");
    if (!json_put_str(&p, c->login))
        return NULL;
    p = put_lit(p, ",\"privilege\":false,\"tokenType\":\"");
    p = put_lit(p, type);
    p = put_lit(p, "\"}");
    size_t plen = (size_t)(p - payload);

    size_t hlen = sizeof(JWT_HEADER_B64) - 1;
    char *out = malloc(hlen + 1 + plen / 3 * 4 + 4 + 1 + 44 + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, JWT_HEADER_B64, hlen);
    char *o = out + hlen;
    *o++ = '.';
    o += b64url_encode((const unsigned char *)payload, plen, o);
    unsigned char mac[HS256_LEN];
    if (!hs256(keys->own, keys->own_len, out, (size_t)(o - out), mac)) {
        free(out);
        return NULL;
    }
    *o++ = '.';
    o += b64url_encode(mac, sizeof(mac), o);
    *o = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));
    return out;
}

/* ---- verification ----------------------------------------------------- */

static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Strict base64url: the alphabet only, no padding, unused bits zero (so each
 * value has exactly one encoding). Writes a NUL after the bytes. */
static bool b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap, size_t *out_len)
{
    if (len % 4 == 1)
        return false;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need >= cap)
        return false;
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_val((unsigned char)in[i]);
        if (v < 0)
            return false;
        acc = ((acc << 6) | (unsigned)v) & 0xffffu;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if ((acc & ((1u << bits) - 1u)) != 0)
        return false;
    out[o] = '\0';
    *out_len = o;
    return true;
}

/* Objects without duplicate keys, nesting bounded. */
static bool json_sane(yajl_val v, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return false;
    if (YAJL_IS_OBJECT(v)) {
        size_t n = v->u.object.len;
        for (size_t i = 0; i < n; i++) {
            for (size_t j = 0; j < i; j++)
                if (strcmp(v->u.object.keys[i], v->u.object.keys[j]) == 0)
                    return false;
            if (!json_sane(v->u.object.values[i], depth + 1))
                return false;
        }
    } else if (YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++)
            if (!json_sane(v->u.array.values[i], depth + 1))
                return false;
    }
    return true;
}

/* A segment decoded and parsed into a JSON object, or NULL. */
static yajl_val parse_segment(const char *seg, size_t len)
{
    unsigned char buf[SEG_BUF];
    size_t n;
    if (!b64url_decode(seg, len, buf, sizeof(buf), &n) || n == 0 || memchr(buf, '\0', n) != NULL)
        return NULL;
    yajl_val v = yajl_tree_parse((const char *)buf, NULL, 0);
    if (v != NULL && (!YAJL_IS_OBJECT(v) || !json_sane(v, 0))) {
        yajl_tree_free(v);
        return NULL;
    }
    return v;
}

static yajl_val member(yajl_val obj, const char *key)
{
    const char *path[] = {key, NULL};
    return yajl_tree_get(obj, path, yajl_t_any);
}

/* A string member of length min..cap-1 copied into dst. */
static bool get_str(yajl_val obj, const char *key, char *dst, size_t cap, size_t min)
{
    const char *s = YAJL_GET_STRING(member(obj, key));
    if (s == NULL)
        return false;
    size_t n = strlen(s);
    if (n < min || n >= cap)
        return false;
    memcpy(dst, s, n + 1);
    return true;
}

/* Absent, or as get_str(). */
static bool get_opt_str(yajl_val obj, const char *key, char *dst, size_t cap)
{
    dst[0] = '\0';
    return member(obj, key) == NULL || get_str(obj, key, dst, cap, 0);
}

static bool get_int(yajl_val obj, const char *key, int64_t *out)
{
    yajl_val v = member(obj, key);
    if (!YAJL_IS_INTEGER(v))
        return false;
    *out = YAJL_GET_INTEGER(v);
    return true;
}

static bool too_far_ahead(int64_t t, int64_t now)
{
    return now <= INT64_MAX - IAT_SKEW_S && t > now + IAT_SKEW_S;
}

/* The header: {"alg": want} and, if present, "typ":"JWT"; no "crit". */
static bool header_ok(yajl_val h, const char *want)
{
    const char *alg = YAJL_GET_STRING(member(h, "alg"));
    if (alg == NULL || strcmp(alg, want) != 0)
        return false;
    yajl_val typ = member(h, "typ");
    if (typ != NULL && (!YAJL_IS_STRING(typ) || strcmp(typ->u.string, "JWT") != 0))
        return false;
    return member(h, "crit") == NULL;
}

/* Every claim of the payload into *c; false means malformed. */
static bool claims_ok(yajl_val p, bool ours, unsigned accept, int64_t now, struct token_claims *c)
{
    const char *type = YAJL_GET_STRING(member(p, "tokenType"));
    if (type == NULL || !type_from_name(type, &c->type) || (c->type & accept) == 0)
        return false;
    yajl_val payload = member(p, "Payload");
    if (!YAJL_IS_OBJECT(payload))
        return false;
    if (!get_int(p, "exp", &c->exp))
        return false;
    if (!get_opt_str(p, "login", c->login, sizeof(c->login)))
        return false;
    yajl_val v;
    if ((v = member(p, "privilege")) != NULL && !YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
        return false;
    if (((v = member(p, "TokenBeginLifeTime")) != NULL && !YAJL_IS_STRING(v)) ||
        ((v = member(p, "TokenEndLifeTime")) != NULL && !YAJL_IS_STRING(v)))
        return false;
    int64_t nbf;
    if (member(p, "nbf") != NULL && (!get_int(p, "nbf", &nbf) || too_far_ahead(nbf, now)))
        return false;

    if (ours) {
        c->portal_minted = false;
        if (!get_int(p, "iat", &c->iat) || too_far_ahead(c->iat, now))
            return false;
        if (!get_str(p, "jti", c->jti, sizeof(c->jti), GUID_LEN) || !is_guid(c->jti))
            return false;
        if (!get_str(p, "authSource", c->auth_source, sizeof(c->auth_source), 0))
            return false;
        yajl_val guids = member(payload, "PersonGuid");
        if (!YAJL_IS_ARRAY(guids) || guids->u.array.len < 1)
            return false;
        const char *g = YAJL_GET_STRING(guids->u.array.values[0]);
        if (g == NULL || strlen(g) != GUID_LEN || !is_guid(g))
            return false;
        memcpy(c->person_guid, g, GUID_LEN + 1);
        return true;
    }

    /* Minted by a portal: an RPGU token naming the patient by polis. */
    c->portal_minted = true;
    c->jti[0] = c->person_guid[0] = '\0';
    if (c->type != TOKEN_RPGU)
        return false;
    c->iat = 0;
    if (member(p, "iat") != NULL && (!get_int(p, "iat", &c->iat) || too_far_ahead(c->iat, now)))
        return false;
    if (!get_opt_str(p, "authSource", c->auth_source, sizeof(c->auth_source)))
        return false;
    return get_str(payload, "PolisNumber", c->polis_number, sizeof(c->polis_number), 1) &&
           get_opt_str(payload, "PolisSeries", c->polis_series, sizeof(c->polis_series)) &&
           get_str(payload, "Birthday", c->birthday, sizeof(c->birthday), 10) && is_date(c->birthday);
}

/* HMAC-SHA256 of header.payload against the third segment, in constant time.
 * The segment has passed the alphabet check; a non-canonical encoding or a
 * wrong length is simply a signature that does not match. */
static bool signature_ok(enum token_alg alg, const char *token, size_t signed_len, const char *sig,
                         size_t sig_len, const unsigned char *key, size_t key_len)
{
    unsigned char want[HS512_LEN], got[SEG_BUF];
    size_t got_len = 0, n = mac_len(alg);
    if (!hmac(alg, key, key_len, token, signed_len, want))
        return false;
    bool ok = b64url_decode(sig, sig_len, got, sizeof(got), &got_len) && got_len == n &&
              CRYPTO_memcmp(want, got, n) == 0;
    OPENSSL_cleanse(want, sizeof(want));
    return ok;
}

/* libjwt's own reading must agree with ours on what decides the verdict. */
static bool libjwt_agrees(const char *token, const unsigned char *key, size_t key_len,
                          const char *iss, const struct token_claims *c)
{
    jwt_t *jwt = NULL;
    if (jwt_decode(&jwt, token, key, (int)key_len) != 0 || jwt == NULL)
        return false;
    const char *j_iss = jwt_get_grant(jwt, "iss");
    const char *j_type = jwt_get_grant(jwt, "tokenType");
    bool ok = jwt_get_alg(jwt) == JWT_ALG_HS256 &&
              (iss == NULL ? j_iss == NULL : (j_iss != NULL && strcmp(iss, j_iss) == 0)) &&
              j_type != NULL && strcmp(j_type, token_type_name(c->type)) == 0 &&
              (int64_t)jwt_get_grant_int(jwt, "exp") == c->exp;
    jwt_free(jwt);
    return ok;
}

/* The token of "Bearer <jwt>": TOKEN_MISSING without one, TOKEN_MALFORMED
 * over TOKEN_MAX_LEN (which bounds every scan after). */
static enum token_verdict bearer(const char *authorization, const char **token)
{
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return TOKEN_MISSING;
    const char *t = authorization + 7;
    while (*t == ' ')
        t++;
    if (*t == '\0')
        return TOKEN_MISSING;
    if (strnlen(authorization, TOKEN_MAX_LEN + 1) > TOKEN_MAX_LEN)
        return TOKEN_MALFORMED;
    *token = t;
    return TOKEN_VALID;
}

/* Exactly three non-empty base64url segments: where the dots are and how
 * long each segment is. */
static bool split_jwt(const char *token, const char **dot1, const char **dot2, size_t *h_len,
                      size_t *p_len, size_t *s_len)
{
    const char *d1 = NULL, *d2 = NULL;
    size_t len = 0;
    for (const char *s = token; *s != '\0'; s++, len++) {
        if (*s == '.') {
            if (d1 == NULL)
                d1 = s;
            else if (d2 == NULL)
                d2 = s;
            else
                return false;
        } else if (b64url_val((unsigned char)*s) < 0) {
            return false;
        }
    }
    if (d2 == NULL || d1 == token || d2 == d1 + 1 || d2[1] == '\0')
        return false;
    *dot1 = d1;
    *dot2 = d2;
    *h_len = (size_t)(d1 - token);
    *p_len = (size_t)(d2 - d1 - 1);
    *s_len = len - *h_len - *p_len - 2;
    return true;
}

enum token_verdict token_verify_header(const struct token_keys *keys, const char *authorization,
                                       unsigned accept, int64_t now, struct token_claims *out)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    const char *token;
    enum token_verdict v = bearer(authorization, &token);
    if (v != TOKEN_VALID)
        return v;
    if (keys == NULL)
        return TOKEN_MALFORMED;

    const char *dot1, *dot2;
    size_t h_len, p_len, s_len;
    if (!split_jwt(token, &dot1, &dot2, &h_len, &p_len, &s_len))
        return TOKEN_MALFORMED;

    enum token_verdict verdict = TOKEN_MALFORMED;
    yajl_val header = parse_segment(token, h_len);
    yajl_val payload = NULL;
    if (header == NULL || !header_ok(header, "HS256"))
        goto done;
    payload = parse_segment(dot1 + 1, p_len);
    if (payload == NULL)
        goto done;

    /* Our own tokens name us as issuer; anything else is a portal's. */
    yajl_val iss_v = member(payload, "iss");
    if (iss_v != NULL && !YAJL_IS_STRING(iss_v))
        goto done;
    const char *iss = YAJL_GET_STRING(iss_v);
    bool ours = iss != NULL && strcmp(iss, TOKEN_ISSUER) == 0;
    const unsigned char *key = ours ? keys->own : keys->portal;
    size_t key_len = ours ? keys->own_len : keys->portal_len;
    if (!key_usable(key, key_len))
        goto done; /* nothing to verify it with */

    struct token_claims c;
    memset(&c, 0, sizeof(c));
    if (!claims_ok(payload, ours, accept, now, &c))
        goto done;

    if (!signature_ok(TOKEN_HS256, token, h_len + 1 + p_len, dot2 + 1, s_len, key, key_len)) {
        verdict = TOKEN_BAD_SIGNATURE;
        goto done;
    }
    /* Authentic, yet libjwt cannot read it alike (a comment, a \u0000 that
     * yajl truncates at...): refuse it as malformed. */
    if (!libjwt_agrees(token, key, key_len, iss, &c))
        goto done;

    if (c.exp <= now) {
        verdict = TOKEN_EXPIRED;
        goto done;
    }
    /* A portal's token is bounded by what we allow, not only by what the
     * portal wrote: one that leaks must not work for years. */
    if (!ours && keys->portal_max_ttl_s > 0 && c.exp - now > keys->portal_max_ttl_s)
        goto done;
    if (out != NULL)
        *out = c;
    verdict = TOKEN_VALID;
done:
    yajl_tree_free(header);
    yajl_tree_free(payload);
    return verdict;
}

/* ---- the eHealth cabinet's UserRequest tokens ---- */

bool token_alg_parse(const char *name, enum token_alg *out)
{
    if (strcmp(name, "HS256") == 0)
        *out = TOKEN_HS256;
    else if (strcmp(name, "HS512") == 0)
        *out = TOKEN_HS512;
    else
        return false;
    return true;
}

static const char *alg_name(enum token_alg alg)
{
    return alg == TOKEN_HS512 ? "HS512" : "HS256";
}

char *token_ur_sign(const unsigned char *key, size_t key_len, enum token_alg alg,
                    const char *ur_id, int64_t iat, int64_t exp)
{
    if (!key_usable(key, key_len) || ur_id == NULL || strlen(ur_id) != GUID_LEN || !is_guid(ur_id) ||
        iat < 0 || iat > SIGN_TIME_MAX || exp < 0 || exp > SIGN_TIME_MAX)
        return NULL;
    char header[64], payload[256];
    int hn = snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg_name(alg));
    int pn = snprintf(payload, sizeof(payload),
                      "{\"exp\":%lld,\"iat\":%lld,\"iss\":\"" TOKEN_UR_ISSUER "\",\"user_request_id\":\"%s\"}",
                      (long long)exp, (long long)iat, ur_id);
    size_t cap = (size_t)(hn + pn) / 3 * 4 + 8 + HS512_LEN / 3 * 4 + 8;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    char *o = out;
    o += b64url_encode((const unsigned char *)header, (size_t)hn, o);
    *o++ = '.';
    o += b64url_encode((const unsigned char *)payload, (size_t)pn, o);
    unsigned char mac[HS512_LEN];
    if (!hmac(alg, key, key_len, out, (size_t)(o - out), mac)) {
        free(out);
        return NULL;
    }
    *o++ = '.';
    o += b64url_encode(mac, mac_len(alg), o);
    *o = '\0';
    OPENSSL_cleanse(mac, sizeof(mac));
    return out;
}

enum token_verdict token_ur_verify(const unsigned char *key, size_t key_len, enum token_alg alg,
                                   const char *authorization, int64_t now, char ur_id[GUID_LEN + 1])
{
    ur_id[0] = '\0';
    const char *token;
    enum token_verdict v = bearer(authorization, &token);
    if (v != TOKEN_VALID)
        return v;
    const char *dot1, *dot2;
    size_t h_len, p_len, s_len;
    if (!key_usable(key, key_len) || !split_jwt(token, &dot1, &dot2, &h_len, &p_len, &s_len))
        return TOKEN_MALFORMED;

    v = TOKEN_MALFORMED;
    yajl_val header = parse_segment(token, h_len);
    yajl_val payload = NULL;
    jwt_t *jwt = NULL;
    char id[GUID_LEN + 1];
    int64_t exp, iat;
    /* Only the configured algorithm: "none", the other HS size or RS256
     * with our key as a "public key" all stop here. */
    if (header == NULL || !header_ok(header, alg_name(alg)))
        goto done;
    payload = parse_segment(dot1 + 1, p_len);
    const char *iss = YAJL_GET_STRING(member(payload, "iss"));
    if (payload == NULL || iss == NULL || strcmp(iss, TOKEN_UR_ISSUER) != 0 ||
        !get_str(payload, "user_request_id", id, sizeof(id), GUID_LEN) || !is_guid(id) ||
        !get_int(payload, "exp", &exp) || !get_int(payload, "iat", &iat) || too_far_ahead(iat, now))
        goto done;
    if (!signature_ok(alg, token, h_len + 1 + p_len, dot2 + 1, s_len, key, key_len)) {
        v = TOKEN_BAD_SIGNATURE;
        goto done;
    }
    /* libjwt must read it alike (see the top of this file). */
    const char *j_id;
    if (jwt_decode(&jwt, token, key, (int)key_len) != 0 || jwt == NULL ||
        jwt_get_alg(jwt) != (alg == TOKEN_HS512 ? JWT_ALG_HS512 : JWT_ALG_HS256) ||
        (j_id = jwt_get_grant(jwt, "user_request_id")) == NULL || strcmp(j_id, id) != 0 ||
        (int64_t)jwt_get_grant_int(jwt, "exp") != exp)
        goto done;
    if (exp <= now) {
        v = TOKEN_EXPIRED;
        goto done;
    }
    memcpy(ur_id, id, sizeof(id));
    v = TOKEN_VALID;
done:
    if (jwt != NULL)
        jwt_free(jwt);
    yajl_tree_free(header);
    yajl_tree_free(payload);
    return v;
}

/* ---- the memo of verified tokens ---- */

struct token_memo_entry {
    struct token_claims claims;
    size_t len;
    char token[];            /* len bytes and a NUL */
};

/* Two ways per set: two tokens that meet in one set (at a few thousand
 * patients a worker, many do) both stay; a third replaces the one used
 * less recently. */
struct token_memo {
    struct token_memo_entry *way[TOKEN_MEMO_SLOTS / 2][2];
    unsigned char recent[TOKEN_MEMO_SLOTS / 2];  /* the way used last */
};

struct token_memo *token_memo_new(void)
{
    return calloc(1, sizeof(struct token_memo));
}

void token_memo_free(struct token_memo *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < TOKEN_MEMO_SLOTS / 2; i++) {
        free(m->way[i][0]);
        free(m->way[i][1]);
    }
    free(m);
}

/* The set of a token: FNV-1a over its last characters, the signature's,
 * which differ between any two tokens that were signed. */
static size_t memo_set(const char *token, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    size_t from = len > 32 ? len - 32 : 0;
    for (size_t i = from; i < len; i++)
        h = (h ^ (unsigned char)token[i]) * 1099511628211ULL;
    return (size_t)(h % (TOKEN_MEMO_SLOTS / 2));
}

enum token_verdict token_verify_memo(struct token_memo *m, const struct token_keys *keys,
                                     const char *authorization, unsigned accept, int64_t now,
                                     struct token_claims *out)
{
    if (m == NULL || authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
        return token_verify_header(keys, authorization, accept, now, out);
    const char *token = authorization + 7;
    while (*token == ' ')
        token++;
    size_t len = strnlen(token, TOKEN_MAX_LEN + 1);
    if (len == 0 || len > TOKEN_MAX_LEN)
        return token_verify_header(keys, authorization, accept, now, out);
    size_t set = memo_set(token, len);
    for (int w = 0; w < 2; w++) {
        struct token_memo_entry *e = m->way[set][w];
        if (e == NULL || e->len != len || memcmp(e->token, token, len) != 0)
            continue;
        m->recent[set] = (unsigned char)w;
        /* As token_verify_header orders them: the type, then the expiry. */
        enum token_verdict v = (e->claims.type & accept) == 0 ? TOKEN_MALFORMED
                               : e->claims.exp <= now         ? TOKEN_EXPIRED
                                                              : TOKEN_VALID;
        if (out != NULL) {
            if (v == TOKEN_VALID)
                *out = e->claims;
            else
                memset(out, 0, sizeof(*out));
        }
        return v;
    }
    struct token_claims c;
    enum token_verdict v = token_verify_header(keys, authorization, accept, now, &c);
    if (out != NULL)
        *out = c;
    if (v != TOKEN_VALID)
        return v;
    struct token_memo_entry *e = malloc(sizeof(*e) + len + 1);
    if (e != NULL) {
        e->claims = c;
        e->len = len;
        memcpy(e->token, token, len + 1);
        int w = m->way[set][0] == NULL ? 0 : m->way[set][1] == NULL ? 1 : !m->recent[set];
        free(m->way[set][w]);
        m->way[set][w] = e;
        m->recent[set] = (unsigned char)w;
    }
    return v;
}
