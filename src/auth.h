/* auth.h - the one token-verification step every patient endpoint starts
 * with. It checks the Authorization header (signature, algorithm, type,
 * expiry) and finds the token's session: from Redis, where token issue put
 * it, or, when Redis is down or has lost it, from PostgreSQL by the person in
 * the signed claims. Failures are answered here with the catalogue's 403s
 * (5010, 5008, 5007, 5009), 404/4001 or 503; the handler's callback runs only
 * with a session. */
#ifndef MIPGW_AUTH_H
#define MIPGW_AUTH_H

#include "req.h"
#include "token.h"

struct auth_session {
    enum token_type type;
    bool portal_minted;
    bool from_cache;              /* found in Redis (else rebuilt from PostgreSQL) */
    char jti[37];
    char person[37];
    char auth_source[64];
    const char *cards;            /* "lpu:mkab,..." (arena) */
};

typedef void (*auth_cb)(struct req *r, const struct auth_session *s);

/* accept: mask of enum token_type. The callback runs from a store's
 * callback, never inside this call. The step keeps its state in the
 * request's arena, not in r->state. */
void auth_require(struct req *r, unsigned accept, auth_cb cb);

/* auth_require in two halves, for a handler that reads the session in a
 * Redis round trip of its own (the booking's, with the cell's marker): auth_begin
 * verifies the token at once and answers a refusal (NULL); otherwise it
 * gives the session's Redis key (valid as long as the request), and
 * auth_resume goes on with that key's value (NULL: missing, or Redis away:
 * the session is then rebuilt from PostgreSQL) to the callback. */
struct auth_state;
struct auth_state *auth_begin(struct req *r, unsigned accept, auth_cb cb, const char **session_key);
void auth_resume(struct auth_state *st, const char *value);
/* Whether auth_resume would take value as the session (and go on to the
 * callback) rather than refuse or rebuild it from PostgreSQL: a caller that
 * holds something on the callback's behalf (the booking's lock) lets go of
 * it first, since a refusal answers without the callback. */
bool auth_session_usable(struct auth_state *st, const char *value);
/* The second half of auth_require: the session read from Redis on its own,
 * then auth_resume. */
void auth_fetch(struct auth_state *st);
/* The person a verified token of ours names; NULL for a portal's token,
 * which names a polis (the person comes with the session). */
const char *auth_claimed_person(const struct auth_state *st);

/* The Redis value of a session, and its key "tok:{jti}". */
void auth_session_encode(const struct auth_session *s, struct buf *out);
bool auth_session_decode(struct req *r, const char *v, struct auth_session *s);

#endif
