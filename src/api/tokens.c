/* api/tokens.c - GET /auth/cod/token and /auth/rpgu/token (seed 000), and
 * GET /auth/session (the project's own: what a token stands for).
 *
 * Issue runs as a chain of steps over one request:
 *   parse   ClientApplication header, query parameters → 400/403 at once
 *   redis   rate-limit counters (address, identifier) and the identity
 *           cache, pipelined in one round trip           → 429, or a hit
 *   pg      the identity look-up, on a cache miss         → 500/5097
 *   store   cache the identity (miss) and the token's session, together
 *   reply   {token, tokenBeginLifeTime, tokenEndLifeTime}
 * Redis being down skips its steps: tokens are still issued from
 * PostgreSQL, and verified later from the signature and PostgreSQL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "api/api.h"
#include "auth.h"
#include "clientapp.h"
#include "identity.h"
#include "ids.h"
#include "json.h"
#include "pg.h"
#include "ratelimit.h"
#include "redis.h"
#include "token.h"
#include "worker.h"

struct issue {
    enum token_type type;
    const struct clientapp *app;
    struct ident_query q;
    struct ident_result found;
    int pending;                /* Redis replies still to come in this step */
    bool limited;               /* a rate limit said no */
    bool cached;                /* the identity came from the cache */
    struct token_claims claims;
    char *token;                /* malloc'd by token_sign; freed at reply */
};

static void issue_pg(struct req *r);
static void issue_store(struct req *r);
static void issue_reply(struct req *r);

static const char *query_param(void *ctx, const char *name)
{
    return req_query(ctx, name);
}

/* Every parameter must be one the seed names: a misspelt one is an error,
 * not silently a different identification method. */
static const char *unknown_param(struct req *r)
{
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, &r->query, next) {
        if (!identity_known_param(kv->key))
            return kv->key;
    }
    return NULL;
}

static void issue_fail(struct req *r, enum err_id e)
{
    req_fail(r, e);
}

/* --- step: Redis (rate limits and the identity cache) --- */

static void issue_redis_step_done(struct req *r)
{
    struct issue *is = r->state;
    if (--is->pending > 0)
        return;
    if (is->limited) {
        issue_fail(r, E_RATE_LIMITED);
        return;
    }
    if (is->cached)
        issue_store(r);
    else
        issue_pg(r);
}

static void issue_on_limit_addr(const redisReply *reply, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct issue *is = r->state;
    if (st == STORE_OK && ratelimit_count(reply) > r->w->cfg->ratelimit_token_per_addr)
        is->limited = true;
    issue_redis_step_done(r);
}

static void issue_on_limit_ident(const redisReply *reply, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct issue *is = r->state;
    if (st == STORE_OK && ratelimit_count(reply) > r->w->cfg->ratelimit_token_per_identity)
        is->limited = true;
    issue_redis_step_done(r);
}

static void issue_on_cache(const redisReply *reply, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct issue *is = r->state;
    if (st == STORE_OK && reply->type == REDIS_REPLY_STRING)
        is->cached = identity_decode(reply->str, &is->found);
    issue_redis_step_done(r);
}

static void issue_redis(struct req *r)
{
    struct issue *is = r->state;
    const struct config *cfg = r->w->cfg;
    struct redis *rd = r->w->redis;
    /* One extra count keeps the step from completing while it is being
     * sent; the last line below releases it. */
    is->pending = 1;
    if (redis_is_up(rd)) {
        if (cfg->ratelimit_token_per_addr > 0 &&
            ratelimit_hit(rd, "tok-addr", r->client_addr, cfg->ratelimit_window_s,
                          issue_on_limit_addr, r) == STORE_OK)
            is->pending++;
        if (cfg->ratelimit_token_per_identity > 0 &&
            ratelimit_hit(rd, "tok-id", is->q.subject, cfg->ratelimit_window_s,
                          issue_on_limit_ident, r) == STORE_OK)
            is->pending++;
        char key[80];
        snprintf(key, sizeof(key), "ident:%s", is->q.key);
        const char *argv[] = {"GET", key};
        if (redis_commandv(rd, issue_on_cache, r, 2, argv) == STORE_OK)
            is->pending++;
    }
    issue_redis_step_done(r);
}

/* --- step: PostgreSQL (the identity look-up) --- */

static void issue_on_pg(PGresult *res, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct issue *is = r->state;
    if (st != STORE_OK) {
        issue_fail(r, st == STORE_BUSY ? E_OVERLOADED : E_CARDS_UNAVAILABLE);
        return;
    }
    identity_match(&is->q, res, &is->found);
    issue_store(r);
}

static void issue_pg(struct req *r)
{
    struct issue *is = r->state;
    enum store_status st = pg_query(r->w->pg, is->q.stmt, is->q.values, issue_on_pg, r);
    if (st != STORE_OK)
        issue_fail(r, st == STORE_BUSY ? E_OVERLOADED : E_CARDS_UNAVAILABLE);
}

/* --- step: sign, and store the session (and the identity, if looked up) --- */

static void issue_on_stored(const redisReply *reply, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct issue *is = r->state;
    (void)reply;
    (void)st;  /* a lost session is rebuilt from PostgreSQL at verification */
    if (--is->pending == 0)
        issue_reply(r);
}

static void issue_store(struct req *r)
{
    struct issue *is = r->state;
    const struct config *cfg = r->w->cfg;
    struct redis *rd = r->w->redis;
    is->pending = 1;

    if (!is->cached && redis_is_up(rd)) {
        char key[80], val[IDENT_CARDS_MAX + 64], ttl[16];
        snprintf(key, sizeof(key), "ident:%s", is->q.key);
        identity_encode(&is->found, val, sizeof(val));
        snprintf(ttl, sizeof(ttl), "%d", cfg->tokens_ident_cache_ttl_s);
        const char *argv[] = {"SET", key, val, "EX", ttl};
        if (redis_commandv(rd, issue_on_stored, r, 5, argv) == STORE_OK)
            is->pending++;
    }
    if (!is->found.found || !is->found.cards[0]) {
        /* Not found is cached too (guessing must not reach PostgreSQL every
         * time), but answered only when that write is done. */
        is->token = NULL;
    } else {
        struct token_claims *c = &is->claims;
        int ttl_s = is->type == TOKEN_COD ? cfg->tokens_cod_ttl_s : cfg->tokens_rpgu_ttl_s;
        c->type = is->type;
        util_guid(c->jti);
        memcpy(c->person_guid, is->found.person, sizeof(c->person_guid));
        util_strlcpy(c->auth_source, is->app->mnem, sizeof(c->auth_source));
        c->iat = util_wall_us() / 1000000;
        c->exp = c->iat + ttl_s;
        is->token = token_sign(&r->w->keys, c);
        if (is->token && redis_is_up(rd)) {
            struct auth_session s = {.type = is->type};
            memcpy(s.person, c->person_guid, sizeof(s.person));
            util_strlcpy(s.auth_source, c->auth_source, sizeof(s.auth_source));
            s.cards = is->found.cards;
            struct buf v;
            buf_init(&v);
            auth_session_encode(&s, &v);
            char key[48], ttl[16];
            snprintf(key, sizeof(key), "tok:%s", c->jti);
            snprintf(ttl, sizeof(ttl), "%d", ttl_s);
            const char *argv[] = {"SET", key, v.data, "EX", ttl};
            if (redis_commandv(rd, issue_on_stored, r, 5, argv) == STORE_OK)
                is->pending++;
            buf_free(&v);
        }
    }
    if (--is->pending == 0)
        issue_reply(r);
}

/* --- reply --- */

static void issue_reply(struct req *r)
{
    struct issue *is = r->state;
    if (!is->found.found || !is->found.cards[0]) {
        issue_fail(r, E_NO_CARDS);
        return;
    }
    if (!is->token) {
        issue_fail(r, E_INTERNAL);
        return;
    }
    char begin[32], end[32];
    util_format_time(is->claims.iat, begin);
    util_format_time(is->claims.exp, end);
    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);
    json_gen_kv_str(g, "token", is->token);
    json_gen_kv_str(g, "tokenBeginLifeTime", begin);
    json_gen_kv_str(g, "tokenEndLifeTime", end);
    yajl_gen_map_close(g);
    struct buf body;
    buf_init(&body);
    json_gen_finish(g, &body);
    free(is->token);
    is->token = NULL;
    req_reply_json(r, 200, NULL, body.data, body.len);
    buf_free(&body);
}

/* --- parse: the first step --- */

static void issue_token(struct req *r, enum token_type type)
{
    struct issue *is = req_alloc(r, sizeof(*is));
    r->state = is;
    is->type = type;

    const char *app = req_header(r, "ClientApplication");
    char guid[37];
    if (app && ids_guid(app, guid) != ID_OK) {
        req_fail1(r, E_PARAM_FORMAT, "ClientApplication");
        return;
    }
    if (!r->w->apps.loaded) {
        issue_fail(r, E_CARDS_UNAVAILABLE);
        return;
    }
    is->app = clientapp_find(&r->w->apps, app ? guid : NULL);
    if (!is->app) {
        issue_fail(r, E_CLIENT_APP_UNKNOWN);
        return;
    }
    if (req_parse_query(r) != 0) {
        issue_fail(r, E_PARAM_TOO_MANY);
        return;
    }
    const char *bad = unknown_param(r);
    if (bad) {
        req_fail1(r, E_PARAM_UNEXPECTED, bad);
        return;
    }
    const char *f1 = NULL, *f2 = NULL;
    enum err_id e = identity_parse(query_param, r, type == TOKEN_COD, &is->q, &f1, &f2);
    if (e != E_NONE) {
        const char *args[] = {f1, f2};
        req_reply_error(r, e, args, 2);
        return;
    }
    issue_redis(r);
}

void api_cod_token(struct req *r)
{
    issue_token(r, TOKEN_COD);
}

void api_rpgu_token(struct req *r)
{
    issue_token(r, TOKEN_RPGU);
}

/* --- GET /auth/session --- */

static void session_reply(struct req *r, const struct auth_session *s)
{
    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);
    json_gen_kv_str(g, "personGuid", s->person);
    json_gen_kv_str(g, "tokenType", token_type_name(s->type));
    json_gen_kv_str(g, "authSource", s->auth_source);
    json_gen_kv_bool(g, "portalMinted", s->portal_minted);
    json_gen_kv_str(g, "sessionSource", s->from_cache ? "redis" : "postgresql");
    json_gen_str(g, "cards");
    yajl_gen_array_open(g);
    const char *p = s->cards;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 2 * GUID_LEN + 1 && p[GUID_LEN] == ':') {
            char lpu[GUID_LEN + 1], mkab[GUID_LEN + 1];
            memcpy(lpu, p, GUID_LEN);
            lpu[GUID_LEN] = '\0';
            memcpy(mkab, p + GUID_LEN + 1, GUID_LEN);
            mkab[GUID_LEN] = '\0';
            yajl_gen_map_open(g);
            json_gen_kv_str(g, "lpuGuid", lpu);
            json_gen_kv_str(g, "mkabGuid", mkab);
            yajl_gen_map_close(g);
        }
        p = comma ? comma + 1 : NULL;
    }
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    struct buf body;
    buf_init(&body);
    json_gen_finish(g, &body);
    req_reply_json(r, 200, NULL, body.data, body.len);
    buf_free(&body);
}

void api_token_session(struct req *r)
{
    auth_require(r, TOKEN_COD | TOKEN_RPGU, session_reply);
}
