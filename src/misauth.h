/* misauth.h - HTTP Basic authentication of hospitals' systems (MIS).
 *
 * Every MIS endpoint starts with misauth_require(). The login is read from
 * PostgreSQL (mis_users, mis_user_lpus) and its password checked against the
 * argon2id hash on a small pool of hashing threads, never on an event loop.
 * A verified header is remembered per worker for mis.auth_cache_ttl_s, keyed
 * by a SHA-256 of the header, so that a busy MIS pays the hash once per
 * period. Failures are answered here: 401/4120 with WWW-Authenticate for a
 * missing or wrong credential or a disabled login, 503 when PostgreSQL or
 * the hashing threads cannot take it. The callback runs only for a login
 * that is enabled and whose password matched. */
#ifndef MIPGW_MISAUTH_H
#define MIPGW_MISAUTH_H

#include <stdbool.h>

#include "req.h"

struct config;

#define MISAUTH_LOGIN_MAX 64
#define MISAUTH_MAX_LPUS 64
#define MISAUTH_MCOD_MAX 8

/* Who is writing. Valid during the callback and for the rest of the
 * request (arena-owned). */
struct misauth_login {
    char login[MISAUTH_LOGIN_MAX + 1];
    int nmcods;
    char mcods[MISAUTH_MAX_LPUS][MISAUTH_MCOD_MAX];  /* the LPUs it may write for */
};

typedef void (*misauth_cb)(struct req *r, const struct misauth_login *who);

void misauth_require(struct req *r, misauth_cb cb);

/* A login: 1-64 of A-Z a-z 0-9 . _ @ - (mis_users' CHECK says the same). */
bool misauth_login_valid(const char *s);

#define MISAUTH_PASSWORD_MAX 256
#define MISAUTH_HEADER_MAX 512  /* bytes of the whole Authorization value */

/* Reads an Authorization value "Basic <base64 of login:password>" (the
 * scheme in any case, strict padded base64, at most MISAUTH_HEADER_MAX
 * bytes) into login (a valid one, see above) and password (1 to
 * MISAUTH_PASSWORD_MAX bytes, no NUL). False, with neither written, when
 * the value is anything else or a part does not fit its buffer. The
 * caller wipes password after use. */
bool misauth_parse_basic(const char *header, char *login, size_t login_cap, char *password,
                         size_t password_cap);

/* The login's МКОДs as the text[] literal the SQL functions take as
 * "allowed" (ids_mcod_array), appended to out. */
bool misauth_mcods_literal(const struct misauth_login *who, struct buf *out);

/* True when the login may write for the LPU with this МКОД. */
bool misauth_owns(const struct misauth_login *who, const char *mcod);

/* Answers 403/4121 naming the login and the LPU (its МКОД or guid). */
void misauth_forbid(struct req *r, const struct misauth_login *who, const char *lpu);

#endif
