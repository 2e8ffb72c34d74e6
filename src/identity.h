/* identity.h - identifying a patient (seed 000): the query parameters of the
 * token endpoints, validated strictly, turned into one look-up statement and
 * a canonical identity; and the rows of that look-up matched against what
 * the patient gave. Shared by token issue and by verification of
 * portal-minted tokens. */
#ifndef MIPGW_IDENTITY_H
#define MIPGW_IDENTITY_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "errors.h"
#include "stmts.h"

#define IDENT_NAME_MAX 256
#define IDENT_CARDS_MAX 2048
/* A polis series or number, normalized (ids_polis_part), with its NUL. */
#define IDENT_POLIS_PART 48

/* How the patient is identified. */
enum ident_method {
    IDENT_POLIS,     /* n_pol (+ s_pol) + birthday */
    IDENT_PERSON,    /* personguid */
    IDENT_MKAB,      /* mkab */
    IDENT_SNILS,     /* snils + birthday */
    IDENT_PASSPORT,  /* s_doc + n_doc */
    IDENT_FEDERAL,   /* ergu/epgu=true: the federal combinations */
};

struct ident_query {
    enum ident_method method;
    enum stmt_id stmt;
    const char *values[2];        /* the statement's parameters (point into this struct) */
    char polis_key[IDENT_POLIS_PART * 2]; /* SERIES|NUMBER, normalized; "" if none */
    char birthday[11];
    char snils[12];
    char person[37];
    char mkab[37];
    char doc_series[5];
    char doc_number[7];
    char family[IDENT_NAME_MAX];  /* folded (ids_fold_name) */
    char name[IDENT_NAME_MAX];
    char patronymic[IDENT_NAME_MAX];
    char key[65];                 /* SHA-256 of the canonical identity: the cache key */
    char subject[65];             /* SHA-256 of the identifier alone (polis, SNILS, ...):
                                     the rate-limit key, so guessing birthdays for one
                                     polis counts against that polis */
};

/* What a look-up found. */
struct ident_result {
    bool found;                   /* a person matched */
    char person[37];
    char cards[IDENT_CARDS_MAX];  /* "lpu:mkab,..." of open cards; "" when none */
};

/* A query parameter source: returns the value of name, or NULL. */
typedef const char *(*ident_param_fn)(void *ctx, const char *name);

/* Validates the parameters and fills q. federal_ok: whether ergu/epgu=true
 * is allowed (the federal algorithm is for COD tokens only). On error returns
 * the catalogue entry and the field(s) it names. Every parameter present is
 * validated, used by the chosen method or not. */
enum err_id identity_parse(ident_param_fn get, void *ctx, bool federal_ok,
                           struct ident_query *q, const char **field1, const char **field2);
/* True when name is one of the token endpoints' parameters. */
bool identity_known_param(const char *name);

/* Picks the person the rows of q's look-up (columns of enum ident_column)
 * say q identifies. */
void identity_match(const struct ident_query *q, const PGresult *res, struct ident_result *out);

/* The cache value of a result ("-" or "person;cards") and back. */
void identity_encode(const struct ident_result *res, char *out, size_t cap);
bool identity_decode(const char *s, struct ident_result *out);

/* The canonical identity key for a polis and birthday, as a portal-minted
 * RPGU token gives them; fills q ready for the look-up. */
enum err_id identity_from_polis(const char *series, const char *number, const char *birthday,
                                struct ident_query *q);

/* ---- what Redis caches of a person ----
 * ident:{key}   a look-up's result (identity_encode), tokens.ident_cache_ttl_s;
 *               a miss ("-") lives IDENT_MISS_TTL_S at most, since a card
 *               uploaded later must be found soon and no person owns it yet
 * tok:{jti}     a token's session (auth.h)
 * pkeys:{person}:{bucket} the ident: and tok: keys above that name this
 *               person, so that a change of the person's cards drops them
 *               (see below)
 * pfgt:{person} set for IDENT_FORGET_GUARD_S when they were dropped: a
 *               look-up that read PostgreSQL before the change and stores
 *               after it caches nothing while this exists */
#define IDENT_MISS_TTL_S 5
/* Longer than a look-up can take between its PostgreSQL read and its Redis
 * store with the default deadlines (pg.timeout_ms 2 s, redis.timeout_ms
 * 0.5 s). */
#define IDENT_FORGET_GUARD_S 10

/* A person's index is kept in buckets of IDENT_INDEX_BUCKET_S seconds,
 * pkeys:{person}:{bucket} (the bucket: epoch seconds / its length): a key
 * goes to the bucket of the time it is cached, and a bucket expires when
 * every key it can name has (its end plus the longest lifetime of a key,
 * identity_index_ttl). So the index names the person's live keys and at
 * most a bucket's worth of expired ones however long the person keeps
 * asking, at one SADD and one EXPIRE an addition. The length is fixed, not
 * configured, so that gateways (or one gateway before and after a change of
 * its lifetimes) name the same buckets. IDENT_INDEX_ADD_LUA is a Lua
 * prelude for the scripts that add to it: index_add(bucket_key, ttl, key...). */
#define IDENT_INDEX_PREFIX "pkeys:"
#define IDENT_INDEX_BUCKET_S 600
#define IDENT_INDEX_ADD_LUA \
    "local function index_add(idx, ttl, ...) " \
    "  redis.call('SADD', idx, ...) " \
    "  redis.call('EXPIRE', idx, ttl) " \
    "end "

/* Gateways may be configured with different lifetimes (a rolling change of
 * configuration, say), and a forget must reach the oldest bucket any of
 * them can still have. Each worker that adds to an index announces its
 * longest lifetime in pkeys:horizon, a sorted set of the lifetimes
 * announced, each scored with the time until which buckets filled under
 * it can live: the announcement goes before the additions, on the same
 * connection, and again every IDENT_HORIZON_EVERY_S. A forget walks back
 * the longer of its own lifetime and the longest lifetime still live
 * there, never more than the longest lifetime the configuration allows
 * (CONFIG_TTL_MAX_S). */
#define IDENT_HORIZON_KEY IDENT_INDEX_PREFIX "horizon"
#define IDENT_HORIZON_EVERY_S 60

struct config;
struct redis;
/* The longest lifetime of a key an index names (seconds): the identity
 * cache's, COD tokens' and RPGU tokens', whichever is longest. */
int identity_index_ttl(const struct config *cfg);
/* The bucket a key cached at now_s goes to, and how long from now that
 * bucket lives (seconds), as decimal strings. Call it right before sending
 * the script that adds to the bucket, on the same connection rd: it sends
 * this worker's horizon first when due. */
void identity_index_bucket(struct redis *rd, const struct config *cfg, int64_t now_s, char bucket[24],
                           char ttl[24]);

/* Drops every cached look-up and token session of a person (they are
 * rebuilt from PostgreSQL when next needed). done(arg) runs once when Redis
 * has done it or could not; with Redis down it runs before this returns,
 * as the keys then cannot be reached (they expire by themselves). */
void identity_forget_person(struct redis *rd, const struct config *cfg, const char *person_guid,
                            void (*done)(void *arg), void *arg);

#endif
