/* api/tokens.c - GET /auth/cod/token and /auth/rpgu/token (seed 000), and
 * GET /auth/session (the project's own: what a token stands for).
 *
 * Issue runs as a chain of steps over one request:
 *   parse   ClientApplication header, query parameters      → 400/403 at once
 *   redis   one script: rate limits, identity cache, and on a hit the new
 *           token's session                                 → 429, or a hit
 *   pg      the identity look-up, on a miss                 → 500/5097
 *   store   cache the identity, the session and the person's index: one script
 *   reply   {token, tokenBeginLifeTime, tokenEndLifeTime}
 * Redis being down skips its steps: tokens are still issued from
 * PostgreSQL, and verified later from the signature and PostgreSQL; the
 * rate limits are then counted by each worker on its own. */
#include <pthread.h>
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
    /* A copy, not a pointer into the worker's table: a reload between two
     * of the request's steps rewrites the table in place, and the slot may
     * then hold another application. */
    struct clientapp app;
    struct ident_query q;
    struct ident_result found;
    struct token_claims claims; /* jti chosen before the Redis step */
    char k_ident[80], k_tok[48];  /* its Redis keys: ident:{key}, tok:{jti} */
    char k_addr[96], k_id[96];    /* ... and its rate limits' */
};

static void issue_pg(struct req *r);
static void issue_sign_and_reply(struct req *r);

static const char *query_param(void *ctx, const char *name)
{
    return req_query(ctx, name);
}

/* Every parameter must be one the seed names: a misspelt one is an error,
 * not silently a different identification method. */
static const char *unknown_param(struct req *r)
{
    for (int i = 0; i < r->nquery; i++) {
        if (!identity_known_param(r->query[i].name))
            return r->query[i].name;
    }
    return NULL;
}

/* --- step: Redis, one round trip ---
 *
 * The hot path of a portal is a patient asking again: one script counts
 * both rate limits, reads the identity cache and, on a hit, stores the new
 * token's session at once. The keys are all declared, so the script is
 * valid Redis; a Redis Cluster would need them hash-tagged alike. */
static struct redis_script issue_script = {
    IDENT_INDEX_ADD_LUA
    "local lim = 0 "
    "local function hit(key, limit) "
    "  if limit == '0' then return end "
    "  local n = redis.call('INCR', key) "
    "  if n == 1 then redis.call('PEXPIRE', key, ARGV[1]) end "
    "  if n > tonumber(limit) then lim = 1 end "
    "end "
    "hit(KEYS[1], ARGV[2]) "
    "hit(KEYS[2], ARGV[3]) "
    "if lim == 1 then return {1, false} end "
    "local v = redis.call('GET', KEYS[3]) "
    "if v then "
    "  local sep = string.find(v, ';', 1, true) "
    "  if sep and sep < #v then "
    "    local person = string.sub(v, 1, sep - 1) "
    "    redis.call('SET', KEYS[4], ARGV[5] .. person .. '|' .. ARGV[6] .. '|' "
    "               .. string.sub(v, sep + 1), 'EX', ARGV[4]) "
    "    index_add('" IDENT_INDEX_PREFIX "' .. person .. ':' .. ARGV[7], ARGV[8], KEYS[4]) "
    "  end "
    "end "
    "return {0, v}",
    ""};
static pthread_once_t issue_script_once = PTHREAD_ONCE_INIT;

static void issue_script_init(void)
{
    redis_script_init(&issue_script);
}

static int issue_ttl(const struct req *r, const struct issue *is)
{
    const struct config *cfg = r->w->cfg;
    return is->type == TOKEN_COD ? cfg->tokens_cod_ttl_s : cfg->tokens_rpgu_ttl_s;
}

/* Redis failed us: the worker's own counters limit (ratelimit.h), and
 * PostgreSQL alone finds the person. */
static void issue_without_redis(struct req *r)
{
    struct issue *is = r->state;
    const struct config *cfg = r->w->cfg;
    int64_t now = util_wall_us() / 1000000;
    /* An address over its limit adds no identity to the table. */
    bool over = ratelimit_hit(r->w->ratelimits, is->k_addr, cfg->ratelimit_token_per_addr,
                              cfg->ratelimit_window_s, now) ||
                ratelimit_hit(r->w->ratelimits, is->k_id, cfg->ratelimit_token_per_identity,
                              cfg->ratelimit_window_s, now);
    if (over) {
        req_fail(r, E_RATE_LIMITED);
        return;
    }
    issue_pg(r);
}

static void issue_on_script(const redisReply *reply, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct issue *is = r->state;
    if (st != STORE_OK || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
        issue_without_redis(r);
        return;
    }
    if (reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer == 1) {
        req_fail(r, E_RATE_LIMITED);
        return;
    }
    const redisReply *v = reply->element[1];
    if (v->type == REDIS_REPLY_STRING && identity_decode(v->str, &is->found)) {
        issue_sign_and_reply(r);
        return;
    }
    issue_pg(r);
}

/* The script's arguments that only the configuration decides, formatted
 * once per thread rather than per request. */
struct issue_consts {
    bool ready;
    char window[24], lim_addr[16], lim_id[16];
    char ttl[2][16];   /* [0] COD, [1] RPGU */
    char type[2][8];
};

static const struct issue_consts *issue_consts(const struct config *cfg)
{
    static _Thread_local struct issue_consts k;
    if (!k.ready) {
        snprintf(k.window, sizeof(k.window), "%lld", (long long)cfg->ratelimit_window_s * 1000);
        snprintf(k.lim_addr, sizeof(k.lim_addr), "%d", cfg->ratelimit_token_per_addr);
        snprintf(k.lim_id, sizeof(k.lim_id), "%d", cfg->ratelimit_token_per_identity);
        snprintf(k.ttl[0], sizeof(k.ttl[0]), "%d", cfg->tokens_cod_ttl_s);
        snprintf(k.ttl[1], sizeof(k.ttl[1]), "%d", cfg->tokens_rpgu_ttl_s);
        snprintf(k.type[0], sizeof(k.type[0]), "%d", (int)TOKEN_COD);
        snprintf(k.type[1], sizeof(k.type[1]), "%d", (int)TOKEN_RPGU);
        k.ready = true;
    }
    return &k;
}

static void issue_redis(struct req *r)
{
    struct issue *is = r->state;
    const struct issue_consts *k = issue_consts(r->w->cfg);
    int t = is->type == TOKEN_COD ? 0 : 1;
    pthread_once(&issue_script_once, issue_script_init);
    util_guid(is->claims.jti);

    char tail[96];
    snprintf(is->k_addr, sizeof(is->k_addr), "rl:tok-addr:%s", r->client_addr);
    snprintf(is->k_id, sizeof(is->k_id), "rl:tok-id:%s", is->q.subject);
    snprintf(is->k_ident, sizeof(is->k_ident), "ident:%s", is->q.key);
    snprintf(is->k_tok, sizeof(is->k_tok), "tok:%s", is->claims.jti);
    /* The session value is auth_session_encode's: "1|person|source|type|cards";
     * the script splices the cached "person;cards" into it. */
    snprintf(tail, sizeof(tail), "%s|%s", is->app.mnem, k->type[t]);
    char bucket[24], idx_ttl[24];
    identity_index_bucket(r->w->redis, r->w->cfg, util_wall_us() / 1000000, bucket, idx_ttl);
    const char *argv[] = {is->k_addr, is->k_id, is->k_ident, is->k_tok, k->window, k->lim_addr,
                          k->lim_id, k->ttl[t], "1|", tail, bucket, idx_ttl};
    if (redis_eval(r->w->redis, &issue_script, issue_on_script, r, 4, 12, argv) != STORE_OK)
        issue_without_redis(r);
}

/* --- step: PostgreSQL (the identity look-up), then store --- */

static void issue_on_stored(const redisReply *reply, enum store_status st, void *arg)
{
    (void)reply;
    (void)st;  /* a lost session is rebuilt from PostgreSQL at verification */
    issue_sign_and_reply(arg);
}

/* The store step for a person found: the look-up, the token's session and
 * the person's index of both, unless the person's caches were dropped while
 * the look-up ran (pfgt:, see identity.h): then nothing is cached, and the
 * token's verification reads PostgreSQL. */
static struct redis_script store_script = {
    IDENT_INDEX_ADD_LUA
    "if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end "
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) "
    "if ARGV[3] ~= '' then "
    "  redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4]) "
    "  index_add(KEYS[3], ARGV[5], KEYS[1], KEYS[2]) "
    "else "
    "  index_add(KEYS[3], ARGV[5], KEYS[1]) "
    "end "
    "return 1",
    ""};
static pthread_once_t store_script_once = PTHREAD_ONCE_INIT;

static void store_script_init(void)
{
    redis_script_init(&store_script);
}

/* Caches what the look-up found, in one round trip; the answer waits for
 * it, so a verification right after it finds the session. A miss is cached
 * too (guessing must not reach PostgreSQL every time), but only briefly: see
 * IDENT_MISS_TTL_S. */
static void issue_store(struct req *r)
{
    struct issue *is = r->state;
    const struct config *cfg = r->w->cfg;
    struct redis *rd = r->w->redis;
    char val[IDENT_CARDS_MAX + 64], ttl[16];
    identity_encode(&is->found, val, sizeof(val));
    enum store_status st;

    if (!is->found.found) {
        snprintf(ttl, sizeof(ttl), "%d",
                 cfg->tokens_ident_cache_ttl_s < IDENT_MISS_TTL_S ? cfg->tokens_ident_cache_ttl_s
                                                                : IDENT_MISS_TTL_S);
        st = redis_commandv(rd, issue_on_stored, r, 5, (const char *[]){"SET", is->k_ident, val, "EX", ttl});
    } else {
        pthread_once(&store_script_once, store_script_init);
        char k_idx[80], k_guard[48], tok_ttl[16], bucket[24], idx_ttl[24];
        identity_index_bucket(rd, cfg, util_wall_us() / 1000000, bucket, idx_ttl);
        snprintf(k_idx, sizeof(k_idx), IDENT_INDEX_PREFIX "%s:%s", is->found.person, bucket);
        snprintf(k_guard, sizeof(k_guard), "pfgt:%s", is->found.person);
        snprintf(ttl, sizeof(ttl), "%d", cfg->tokens_ident_cache_ttl_s);
        snprintf(tok_ttl, sizeof(tok_ttl), "%d", issue_ttl(r, is));
        struct buf v;
        buf_init(&v);
        if (is->found.cards[0]) {
            struct auth_session s = {.type = is->type, .cards = is->found.cards};
            memcpy(s.person, is->found.person, sizeof(s.person));
            util_strlcpy(s.auth_source, is->app.mnem, sizeof(s.auth_source));
            auth_session_encode(&s, &v);
        }
        const char *argv[] = {is->k_ident, is->k_tok, k_idx, k_guard, val, ttl, v.data ? v.data : "",
                              tok_ttl, idx_ttl};
        st = redis_eval(rd, &store_script, issue_on_stored, r, 4, 9, argv);
        buf_free(&v);
    }
    if (st != STORE_OK)
        issue_sign_and_reply(r);  /* Redis down: nothing cached, nothing to wait for */
}

static void issue_on_pg(PGresult *res, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct issue *is = r->state;
    if (st != STORE_OK) {
        req_fail(r, st == STORE_BUSY ? E_OVERLOADED : E_CARDS_UNAVAILABLE);
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
        req_fail(r, st == STORE_BUSY ? E_OVERLOADED : E_CARDS_UNAVAILABLE);
}

/* --- reply --- */

static void issue_sign_and_reply(struct req *r)
{
    struct issue *is = r->state;
    if (!is->found.found || !is->found.cards[0]) {
        req_fail(r, E_NO_CARDS);
        return;
    }
    struct token_claims *c = &is->claims;
    c->type = is->type;
    memcpy(c->person_guid, is->found.person, sizeof(c->person_guid));
    util_strlcpy(c->auth_source, is->app.mnem, sizeof(c->auth_source));
    c->iat = util_wall_us() / 1000000;
    c->exp = c->iat + issue_ttl(r, is);
    char *token = token_sign(&r->w->keys, c);
    if (!token) {
        req_fail(r, E_INTERNAL);
        return;
    }
    char begin[32], end[32];
    util_format_time(c->iat, begin);
    util_format_time(c->exp, end);
    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);
    json_gen_kv_str(g, "token", token);
    json_gen_kv_str(g, "tokenBeginLifeTime", begin);
    json_gen_kv_str(g, "tokenEndLifeTime", end);
    yajl_gen_map_close(g);
    free(token);
    req_reply_gen(r, 200, g);
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
        req_fail(r, E_CARDS_UNAVAILABLE);
        return;
    }
    const struct clientapp *known = clientapp_find(&r->w->apps, app ? guid : NULL);
    if (!known) {
        req_fail(r, E_CLIENT_APP_UNKNOWN);
        return;
    }
    is->app = *known;
    const char *bad_param;
    switch (req_parse_query(r, &bad_param)) {
    case REQ_QUERY_OK:
        break;
    case REQ_QUERY_TOO_MANY:
        req_fail(r, E_PARAM_TOO_MANY);
        return;
    case REQ_QUERY_BAD:
        req_fail1(r, E_PARAM_FORMAT, bad_param);
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
    req_reply_gen(r, 200, g);
}

void api_token_session(struct req *r)
{
    auth_require(r, TOKEN_COD | TOKEN_RPGU, session_reply);
}
