/* auth.c - see auth.h. */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include "identity.h"
#include "pg.h"
#include "redis.h"
#include "worker.h"

struct auth_state {
    struct req *r;
    auth_cb cb;
    struct token_claims claims;
    struct auth_session s;
    struct ident_query q;      /* portal-minted tokens: the polis look-up */
    char key[80];              /* the session's Redis key */
};

#define SESSION_VERSION "1"

void auth_session_encode(const struct auth_session *s, struct buf *out)
{
    buf_printf(out, SESSION_VERSION "|%s|%s|%d|%s", s->person, s->auth_source, (int)s->type,
               s->cards ? s->cards : "");
}

bool auth_session_decode(struct req *r, const char *v, struct auth_session *s)
{
    char person[40], source[64];
    int type, used = 0;
    if (sscanf(v, SESSION_VERSION "|%39[^|]|%63[^|]|%d|%n", person, source, &type, &used) != 3 || !used)
        return false;
    if (strlen(person) != GUID_LEN)
        return false;
    memcpy(s->person, person, GUID_LEN + 1);
    util_strlcpy(s->auth_source, source, sizeof(s->auth_source));
    s->type = (enum token_type)type;
    s->cards = req_strdup(r, v + used);
    return true;
}

static void auth_done(struct auth_state *st)
{
    st->cb(st->r, &st->s);
}

static void auth_on_pg(PGresult *res, enum store_status status, void *arg)
{
    struct auth_state *st = arg;
    struct req *r = st->r;
    if (status != STORE_OK) {
        req_fail(r, status == STORE_BUSY ? E_OVERLOADED : E_CARDS_UNAVAILABLE);
        return;
    }
    struct ident_result found;
    identity_match(&st->q, res, &found);
    if (!found.found || !found.cards[0]) {
        req_fail(r, E_NO_CARDS);
        return;
    }
    memcpy(st->s.person, found.person, sizeof(found.person));
    st->s.cards = req_strdup(r, found.cards);
    auth_done(st);
}

/* The session from PostgreSQL: by the signed person, or for a portal's token
 * by its polis and birthday. */
static void auth_from_pg(struct auth_state *st)
{
    st->s.from_cache = false;
    if (!st->claims.portal_minted) {
        memset(&st->q, 0, sizeof(st->q));
        st->q.method = IDENT_PERSON;
        st->q.stmt = STMT_IDENT_BY_PERSON;
        util_strlcpy(st->q.person, st->claims.person_guid, sizeof(st->q.person));
        st->q.values[0] = st->q.person;
    }
    enum store_status s = pg_query(st->r->w->pg, st->q.stmt, st->q.values, auth_on_pg, st);
    if (s != STORE_OK)
        req_fail(st->r, s == STORE_BUSY ? E_OVERLOADED : E_CARDS_UNAVAILABLE);
}

/* What a session value read from Redis gives: the session (filled into
 * st->s), a cached answer that the portal's polis has no patient, or
 * nothing to go on (missing, unreadable, another person's). */
enum auth_cached {
    AUTH_CACHED_NONE,
    AUTH_CACHED_SESSION,
    AUTH_CACHED_NO_CARDS,
};

static enum auth_cached auth_read_cached(struct auth_state *st, const char *value)
{
    if (!value)
        return AUTH_CACHED_NONE;
    if (st->claims.portal_minted) {
        struct ident_result found;
        if (!identity_decode(value, &found))
            return AUTH_CACHED_NONE;
        if (!found.found || !found.cards[0])
            return AUTH_CACHED_NO_CARDS;
        memcpy(st->s.person, found.person, sizeof(found.person));
        st->s.cards = req_strdup(st->r, found.cards);
    } else {
        struct auth_session cached = {0};
        if (!auth_session_decode(st->r, value, &cached) ||
            strcmp(cached.person, st->claims.person_guid) != 0)
            return AUTH_CACHED_NONE;
        memcpy(st->s.person, cached.person, sizeof(cached.person));
        st->s.cards = cached.cards;
    }
    st->s.from_cache = true;
    return AUTH_CACHED_SESSION;
}

bool auth_session_usable(struct auth_state *st, const char *value)
{
    return auth_read_cached(st, value) == AUTH_CACHED_SESSION;
}

void auth_resume(struct auth_state *st, const char *value)
{
    switch (auth_read_cached(st, value)) {
    case AUTH_CACHED_SESSION:
        auth_done(st);
        return;
    case AUTH_CACHED_NO_CARDS:
        req_fail(st->r, E_NO_CARDS);
        return;
    case AUTH_CACHED_NONE:
        break;
    }
    /* Missing, unreadable, or Redis away: the signature already vouches for
     * the claims, so PostgreSQL can rebuild the session. */
    auth_from_pg(st);
}

static void auth_on_redis(const redisReply *reply, enum store_status status, void *arg)
{
    struct auth_state *st = arg;
    auth_resume(st, status == STORE_OK && reply->type == REDIS_REPLY_STRING ? reply->str : NULL);
}

struct auth_state *auth_begin(struct req *r, unsigned accept, auth_cb cb, const char **session_key)
{
    struct auth_state *st = req_alloc(r, sizeof(*st));
    st->r = r;
    st->cb = cb;
    const char *h = req_header(r, "Authorization");
    int64_t now = util_wall_us() / 1000000;
    switch (token_verify_memo(r->w->token_memo, &r->w->keys, h, accept, now, &st->claims)) {
    case TOKEN_VALID:
        break;
    case TOKEN_MISSING:
        req_fail(r, E_TOKEN_MISSING);
        return NULL;
    case TOKEN_MALFORMED:
        req_fail(r, E_TOKEN_INVALID);
        return NULL;
    case TOKEN_EXPIRED:
        req_fail(r, E_TOKEN_EXPIRED);
        return NULL;
    case TOKEN_BAD_SIGNATURE:
        req_fail(r, E_TOKEN_SIGNATURE);
        return NULL;
    }
    struct auth_session *s = &st->s;
    s->type = st->claims.type;
    s->portal_minted = st->claims.portal_minted;
    util_strlcpy(s->jti, st->claims.jti, sizeof(s->jti));
    util_strlcpy(s->auth_source, st->claims.auth_source[0] ? st->claims.auth_source : "RPGU",
                 sizeof(s->auth_source));
    if (st->claims.portal_minted) {
        if (identity_from_polis(st->claims.polis_series, st->claims.polis_number,
                                st->claims.birthday, &st->q) != E_NONE) {
            req_fail(r, E_TOKEN_INVALID);
            return NULL;
        }
        snprintf(st->key, sizeof(st->key), "ident:%s", st->q.key);
    } else {
        snprintf(st->key, sizeof(st->key), "tok:%s", st->claims.jti);
    }
    *session_key = st->key;
    return st;
}

const char *auth_claimed_person(const struct auth_state *st)
{
    return st->claims.portal_minted ? NULL : st->claims.person_guid;
}

void auth_fetch(struct auth_state *st)
{
    const char *argv[] = {"GET", st->key};
    if (redis_commandv(st->r->w->redis, auth_on_redis, st, 2, argv) != STORE_OK)
        auth_from_pg(st);
}

void auth_require(struct req *r, unsigned accept, auth_cb cb)
{
    const char *key;
    struct auth_state *st = auth_begin(r, accept, cb, &key);
    if (st)
        auth_fetch(st);
}
