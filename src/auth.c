/* auth.c - see auth.h. */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#include "identity.h"
#include "pg.h"
#include "redis.h"
#include "worker.h"

struct auth_state {
    auth_cb cb;
    struct token_claims claims;
    struct auth_session s;
    struct ident_query q;      /* portal-minted tokens: the polis look-up */
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

static void auth_done(struct req *r)
{
    struct auth_state *st = r->state;
    st->cb(r, &st->s);
}

static void auth_on_pg(PGresult *res, enum store_status status, void *arg)
{
    struct req *r = arg;
    struct auth_state *st = r->state;
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
    auth_done(r);
}

/* The session from PostgreSQL: by the signed person, or for a portal's token
 * by its polis and birthday. */
static void auth_from_pg(struct req *r)
{
    struct auth_state *st = r->state;
    st->s.from_cache = false;
    if (!st->claims.portal_minted) {
        memset(&st->q, 0, sizeof(st->q));
        st->q.method = IDENT_PERSON;
        st->q.stmt = STMT_IDENT_BY_PERSON;
        util_strlcpy(st->q.person, st->claims.person_guid, sizeof(st->q.person));
        st->q.values[0] = st->q.person;
    }
    enum store_status s = pg_query(r->w->pg, st->q.stmt, st->q.values, auth_on_pg, r);
    if (s != STORE_OK)
        req_fail(r, s == STORE_BUSY ? E_OVERLOADED : E_CARDS_UNAVAILABLE);
}

static void auth_on_redis(const redisReply *reply, enum store_status status, void *arg)
{
    struct req *r = arg;
    struct auth_state *st = r->state;
    if (status == STORE_OK && reply->type == REDIS_REPLY_STRING) {
        struct auth_session cached = {0};
        bool ok = st->claims.portal_minted ? false : auth_session_decode(r, reply->str, &cached);
        if (st->claims.portal_minted) {
            struct ident_result found;
            if (identity_decode(reply->str, &found)) {
                if (!found.found || !found.cards[0]) {
                    req_fail(r, E_NO_CARDS);
                    return;
                }
                memcpy(st->s.person, found.person, sizeof(found.person));
                st->s.cards = req_strdup(r, found.cards);
                st->s.from_cache = true;
                auth_done(r);
                return;
            }
        } else if (ok && strcmp(cached.person, st->claims.person_guid) == 0) {
            memcpy(st->s.person, cached.person, sizeof(cached.person));
            st->s.cards = cached.cards;
            st->s.from_cache = true;
            auth_done(r);
            return;
        }
    }
    /* Missing, unreadable, or Redis away: the signature already vouches for
     * the claims, so PostgreSQL can rebuild the session. */
    auth_from_pg(r);
}

void auth_require(struct req *r, unsigned accept, auth_cb cb)
{
    struct auth_state *st = req_alloc(r, sizeof(*st));
    r->state = st;
    st->cb = cb;
    const char *h = req_header(r, "Authorization");
    int64_t now = util_wall_us() / 1000000;
    switch (token_verify_memo(r->w->token_memo, &r->w->keys, h, accept, now, &st->claims)) {
    case TOKEN_VALID:
        break;
    case TOKEN_MISSING:
        req_fail(r, E_TOKEN_MISSING);
        return;
    case TOKEN_MALFORMED:
        req_fail(r, E_TOKEN_INVALID);
        return;
    case TOKEN_EXPIRED:
        req_fail(r, E_TOKEN_EXPIRED);
        return;
    case TOKEN_BAD_SIGNATURE:
        req_fail(r, E_TOKEN_SIGNATURE);
        return;
    }
    struct auth_session *s = &st->s;
    s->type = st->claims.type;
    s->portal_minted = st->claims.portal_minted;
    util_strlcpy(s->jti, st->claims.jti, sizeof(s->jti));
    util_strlcpy(s->auth_source, st->claims.auth_source[0] ? st->claims.auth_source : "RPGU",
                 sizeof(s->auth_source));

    char key[80];
    if (st->claims.portal_minted) {
        if (identity_from_polis(st->claims.polis_series, st->claims.polis_number,
                                st->claims.birthday, &st->q) != E_NONE) {
            req_fail(r, E_TOKEN_INVALID);
            return;
        }
        snprintf(key, sizeof(key), "ident:%s", st->q.key);
    } else {
        snprintf(key, sizeof(key), "tok:%s", st->claims.jti);
    }
    const char *argv[] = {"GET", key};
    if (redis_commandv(r->w->redis, auth_on_redis, r, 2, argv) != STORE_OK)
        auth_from_pg(r);
}
