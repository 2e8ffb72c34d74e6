/* token.h - patient tokens as JWTs: signing the gateway's own COD and RPGU
 * tokens, and verifying tokens presented by clients (the gateway's own, and
 * RPGU tokens that a portal mints with a shared key). Only HS256 is accepted:
 * the header is checked before libjwt sees the token, so "none" or any other
 * algorithm never reaches a verifier. */
#ifndef MIPGW_TOKEN_H
#define MIPGW_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_MAX_LEN 4096   /* longer Authorization values are malformed */
#define TOKEN_ISSUER "mipgw" /* "iss" of the gateway's own tokens */

enum token_type {
    TOKEN_COD = 1 << 0,   /* "CodToken" */
    TOKEN_RPGU = 1 << 1,  /* "RpguToken" */
};

/* What verification says, each mapped to one catalogue entry by the caller. */
enum token_verdict {
    TOKEN_VALID = 0,
    TOKEN_MISSING,        /* 403/5010: no "Authorization: Bearer ..." */
    TOKEN_MALFORMED,      /* 403/5008: not a JWT, wrong alg, wrong type, bad claims */
    TOKEN_EXPIRED,        /* 403/5007 */
    TOKEN_BAD_SIGNATURE,  /* 403/5009 */
};

/* The algorithms of the cabinet's UserRequest tokens (below). */
enum token_alg {
    TOKEN_HS256,
    TOKEN_HS512,
};

struct token_keys {
    const unsigned char *own;      /* the gateway's HS256 key */
    size_t own_len;
    const unsigned char *portal;   /* portals' shared key for RPGU tokens; NULL: none */
    size_t portal_len;
    int64_t portal_max_ttl_s;      /* a portal's token living longer from now is malformed;
                                    * 0: no bound */
    const unsigned char *cabinet;  /* the eHealth cabinet's key; NULL: the cabinet is off */
    size_t cabinet_len;
    enum token_alg cabinet_alg;    /* ehealth.jwt_alg */
};

/* Claims of a token, issued or verified. Strings are NUL-terminated. */
struct token_claims {
    enum token_type type;
    bool portal_minted;            /* an RPGU token signed by a portal, not by us */
    char jti[37];                  /* our tokens: a random GUID; portal tokens: "" */
    char person_guid[37];          /* our tokens: Payload.PersonGuid[0] */
    char auth_source[64];          /* client application mnemonic, e.g. "Internet" */
    char login[64];
    int64_t iat;                   /* seconds since the epoch */
    int64_t exp;
    /* portal-minted RPGU tokens identify the patient by polis and birthday:
     * Payload.PolisSeries (optional), Payload.PolisNumber, Payload.Birthday */
    char polis_series[32];
    char polis_number[32];
    char birthday[11];
};

/* Signs claims (type, jti, person_guid, auth_source, login, iat, exp) with
 * keys->own. The payload mirrors the seed: {"Payload":{"PersonGuid":[guid]},
 * "TokenBeginLifeTime", "TokenEndLifeTime" (local time with offset), "login",
 * "authSource", "privilege": false, "tokenType", "iss", "iat", "exp", "jti"}.
 * Returns a malloc'd string the caller frees, or NULL on failure. */
char *token_sign(const struct token_keys *keys, const struct token_claims *c);

/* Verifies an "Authorization" header value ("Bearer <jwt>", NULL when the
 * header is absent) at time now. accept is a mask of token types. Our tokens
 * ("iss" = TOKEN_ISSUER) verify with keys->own; RPGU tokens without our
 * issuer verify with keys->portal. On TOKEN_VALID fills *out. */
enum token_verdict token_verify_header(const struct token_keys *keys, const char *authorization,
                                       unsigned accept, int64_t now, struct token_claims *out);

/* A memo of tokens that verified, for one thread (a worker's): a portal's
 * patient presents the same token on every request of a visit, and
 * verifying it (two JSON parses, libjwt's own decoding, HMAC) is most of
 * the cost of a request that only reads. Sets of two on the signature,
 * TOKEN_MEMO_SLOTS entries; a hit is the whole token compared byte for byte,
 * so a token altered in any byte is verified anew. Type and expiry are
 * checked on every hit. Memory: the slots and a copy of each token. */
#define TOKEN_MEMO_SLOTS 8192
struct token_memo;
struct token_memo *token_memo_new(void);
void token_memo_free(struct token_memo *m);
/* token_verify_header through the memo (NULL: none). */
enum token_verdict token_verify_memo(struct token_memo *m, const struct token_keys *keys,
                                     const char *authorization, unsigned accept, int64_t now,
                                     struct token_claims *out);

const char *token_type_name(enum token_type t);

/* The eHealth cabinet's UserRequest tokens (issue 5): {"alg": HS256 or
 * HS512 as configured, "typ": "JWT"} . {"exp", "iat", "iss":
 * TOKEN_UR_ISSUER, "user_request_id": guid}, signed with the cabinet's own
 * key. Verification accepts the configured algorithm only. */
#define TOKEN_UR_ISSUER "mipgw-cabinet"
bool token_alg_parse(const char *name, enum token_alg *out);
/* A malloc'd token, or NULL (bad arguments, no key). */
char *token_ur_sign(const unsigned char *key, size_t key_len, enum token_alg alg,
                    const char *ur_id, int64_t iat, int64_t exp);
/* The verdict for an "Authorization" value; on TOKEN_VALID ur_id holds the
 * UserRequest's id. */
enum token_verdict token_ur_verify(const unsigned char *key, size_t key_len, enum token_alg alg,
                                   const char *authorization, int64_t now, char ur_id[37]);

#endif
