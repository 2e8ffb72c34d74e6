/* fuzz_jwt.c - token verification: token_verify_header (COD and RPGU
 * tokens, ours and portals') and token_ur_verify (the cabinet's, HS256 and
 * HS512), with fixed keys. The input is the Authorization value. As a
 * mutated token almost never carries a good signature, the input is also
 * verified once more re-signed with each key, so that what runs after the
 * signature check (libjwt's reading of the same token) is fuzzed too. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "token.h"

static const char own_key[] = "fuzz-own-key-0123456789abcdef!!!";
static const char portal_key[] = "fuzz-portal-key-fedcba9876543210";
static const char ur_key[] = "fuzz-cabinet-key-0123456789abcdef";

/* A fixed "now" inside the seeds' lifetimes, so that runs repeat. */
#define FUZZ_NOW 1767225600  /* 2026-01-01T00:00:00Z */

static void verify_all(const char *auth)
{
    struct token_keys keys = {
        .own = (const unsigned char *)own_key, .own_len = sizeof(own_key) - 1,
        .portal = (const unsigned char *)portal_key, .portal_len = sizeof(portal_key) - 1,
    };
    struct token_claims c;
    token_verify_header(&keys, auth, TOKEN_COD | TOKEN_RPGU, FUZZ_NOW, &c);
    char id[37];
    token_ur_verify((const unsigned char *)ur_key, sizeof(ur_key) - 1, TOKEN_HS256, auth,
                    FUZZ_NOW, id);
    token_ur_verify((const unsigned char *)ur_key, sizeof(ur_key) - 1, TOKEN_HS512, auth,
                    FUZZ_NOW, id);
}

/* auth's "Bearer header.payload" with a signature by key appended, into a
 * malloc'd string; NULL when auth has no such shape. */
static char *resign(const char *auth, const char *key, const EVP_MD *md)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    if (strncmp(auth, "Bearer ", 7) != 0)
        return NULL;
    const char *tok = auth + 7, *dot1 = strchr(tok, '.');
    if (!dot1)
        return NULL;
    const char *dot2 = strchr(dot1 + 1, '.');
    size_t signed_len = dot2 ? (size_t)(dot2 - tok) : strlen(tok);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    if (!HMAC(md, key, (int)strlen(key), (const unsigned char *)tok, signed_len, mac, &mac_len))
        return NULL;
    char *out = malloc(7 + signed_len + 2 + (mac_len * 4 + 2) / 3 + 1);
    if (!out)
        return NULL;
    memcpy(out, auth, 7 + signed_len);
    char *o = out + 7 + signed_len;
    *o++ = '.';
    /* base64url without padding */
    for (unsigned i = 0; i < mac_len; i += 3) {
        unsigned v = (unsigned)mac[i] << 16 | (i + 1 < mac_len ? (unsigned)mac[i + 1] << 8 : 0) |
                     (i + 2 < mac_len ? mac[i + 2] : 0);
        *o++ = b64[v >> 18 & 63];
        *o++ = b64[v >> 12 & 63];
        if (i + 1 < mac_len)
            *o++ = b64[v >> 6 & 63];
        if (i + 2 < mac_len)
            *o++ = b64[v & 63];
    }
    *o = '\0';
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Header values are C strings; the token's own limit is 4 KiB. */
    if (size > TOKEN_MAX_LEN + 64)
        return 0;
    char *auth = malloc(size + 1);
    if (!auth)
        return 0;
    memcpy(auth, data, size);
    auth[size] = '\0';
    verify_all(auth);
    const struct {
        const char *key;
        const EVP_MD *(*md)(void);
    } signers[] = {{own_key, EVP_sha256}, {portal_key, EVP_sha256}, {ur_key, EVP_sha256},
                   {ur_key, EVP_sha512}};
    for (size_t i = 0; i < sizeof(signers) / sizeof(signers[0]); i++) {
        char *signed_auth = resign(auth, signers[i].key, signers[i].md());
        if (!signed_auth)
            break;
        verify_all(signed_auth);
        free(signed_auth);
    }
    free(auth);
    return 0;
}
