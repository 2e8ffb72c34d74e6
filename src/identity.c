/* identity.c - see identity.h. */
#include "identity.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "ids.h"
#include "redis.h"
#include "util.h"

/* Every parameter of seed 000. The federal table spells the names out
 * (family, name, patronymic) where the main table writes f, n, p: both are
 * accepted. userLpu and login belong to doctors' tokens and are ignored. */
static const char *const known_params[] = {
    "userLpu", "birthday", "s_pol", "n_pol", "login", "personguid", "mkab", "snils",
    "ergu", "epgu", "f", "n", "p", "family", "name", "patronymic", "s_doc", "n_doc",
};

bool identity_known_param(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(known_params); i++)
        if (strcmp(known_params[i], name) == 0)
            return true;
    return false;
}

/* The first of two spellings that is present. */
static const char *param2(ident_param_fn get, void *ctx, const char *a, const char *b, const char **which)
{
    const char *v = get(ctx, a);
    *which = a;
    if (!v) {
        v = get(ctx, b);
        if (v)
            *which = b;
    }
    return v;
}

static enum err_id check_err(enum id_check c)
{
    return c == ID_CHECKSUM ? E_PARAM_CHECKSUM : E_PARAM_FORMAT;
}

/* Polis: with a series, an old-style polis (both parts normalized); without,
 * an ЕНП (16 digits, Luhn) or a temporary certificate (9 digits). */
static enum err_id parse_polis(const char *series, const char *number, char *key, size_t cap,
                               const char **field)
{
    char s[IDENT_POLIS_PART] = "", n[IDENT_POLIS_PART];
    *field = "n_pol";
    if (series) {
        if (ids_polis_part(series, s, sizeof(s)) != ID_OK) {
            *field = "s_pol";
            return E_PARAM_FORMAT;
        }
        if (ids_polis_part(number, n, sizeof(n)) != ID_OK)
            return E_PARAM_FORMAT;
    } else {
        size_t len = strlen(number);
        if (len == 16) {
            enum id_check c = ids_enp(number);
            if (c != ID_OK)
                return check_err(c);
        } else if (len != 9 || strspn(number, "0123456789") != 9) {
            return E_PARAM_FORMAT;
        }
        util_strlcpy(n, number, sizeof(n));
    }
    /* Never cut short: two polises would share a key. */
    int w = snprintf(key, cap, "%s|%s", s, n);
    return w >= 0 && (size_t)w < cap ? E_NONE : E_PARAM_FORMAT;
}

static enum err_id parse_name(const char *v, char *out, size_t cap)
{
    if (!v)
        return E_NONE;
    if (strlen(v) >= cap || !ids_fold_name(v, out, cap) || !out[0])
        return E_PARAM_FORMAT;
    return E_NONE;
}

static void make_key(struct ident_query *q)
{
    char canon[1200];
    snprintf(canon, sizeof(canon), "m=%d|pk=%s|b=%s|s=%s|g=%s|k=%s|ds=%s|dn=%s|f=%s|n=%s|p=%s",
             (int)q->method, q->polis_key, q->birthday, q->snils, q->person, q->mkab,
             q->doc_series, q->doc_number, q->family, q->name, q->patronymic);
    util_sha256_hex(canon, strlen(canon), q->key);
    /* The identifier the look-up goes by: its first parameter. */
    snprintf(canon, sizeof(canon), "%d|%s|%s", (int)q->stmt, q->values[0] ? q->values[0] : "",
             q->values[1] ? q->values[1] : "");
    util_sha256_hex(canon, strlen(canon), q->subject);
}

static void set_stmt(struct ident_query *q, enum stmt_id stmt, const char *v0, const char *v1)
{
    q->stmt = stmt;
    q->values[0] = v0;
    q->values[1] = v1;
}

/* With the federal flag: which combinations of the seed's second table the
 * request gives in full (the polis is matched by the look-up itself). */
enum fed_combo {
    FED_SNILS_BIRTHDAY = 1 << 0,     /* ОМС + СНИЛС + дата рождения */
    FED_SNILS_FAMILY = 1 << 1,       /* ОМС + СНИЛС + фамилия */
    FED_SNILS_NAME_PATR = 1 << 2,    /* ОМС + СНИЛС + имя + отчество */
    FED_BIRTHDAY_NAME = 1 << 3,      /* ОМС + дата рождения + имя */
    FED_NOPOLIS = 1 << 4,            /* СНИЛС + дата рождения + имя (no polis) */
};

static unsigned fed_combos(const struct ident_query *q)
{
    unsigned m = 0;
    bool snils = q->snils[0], fam = q->family[0], nam = q->name[0], pat = q->patronymic[0];
    if (q->polis_key[0]) {
        if (snils)
            m |= FED_SNILS_BIRTHDAY;
        if (snils && fam)
            m |= FED_SNILS_FAMILY;
        if (snils && nam && pat)
            m |= FED_SNILS_NAME_PATR;
        if (nam)
            m |= FED_BIRTHDAY_NAME;
    } else if (snils && nam) {
        m |= FED_NOPOLIS;
    }
    return m;
}

enum err_id identity_parse(ident_param_fn get, void *ctx, bool federal_ok,
                           struct ident_query *q, const char **field1, const char **field2)
{
    memset(q, 0, sizeof(*q));
    *field2 = NULL;
    enum err_id e;
    const char *which;

    /* Validate every parameter that is present, whatever the method. */
    const char *birthday = get(ctx, "birthday");
    const char *n_pol = get(ctx, "n_pol");
    const char *s_pol = get(ctx, "s_pol");
    const char *snils = get(ctx, "snils");
    const char *person = get(ctx, "personguid");
    const char *mkab = get(ctx, "mkab");
    const char *s_doc = get(ctx, "s_doc");
    const char *n_doc = get(ctx, "n_doc");
    const char *flag = param2(get, ctx, "ergu", "epgu", &which);
    bool federal = false;

    if (flag) {
        *field1 = which;
        if (strcasecmp(flag, "true") == 0 || strcmp(flag, "1") == 0)
            federal = true;
        else if (strcasecmp(flag, "false") != 0 && strcmp(flag, "0") != 0)
            return E_PARAM_FORMAT;
        if (federal && !federal_ok)
            return E_PARAM_UNEXPECTED;
    }
    if (birthday) {
        int y, m, d;
        *field1 = "birthday";
        if (ids_date(birthday, &y, &m, &d) != ID_OK)
            return E_PARAM_FORMAT;
        util_strlcpy(q->birthday, birthday, sizeof(q->birthday));
    }
    if (s_pol && !n_pol) {
        *field1 = "n_pol";
        return E_PARAM_REQUIRED;
    }
    if (n_pol && (e = parse_polis(s_pol, n_pol, q->polis_key, sizeof(q->polis_key), field1)))
        return e;
    if (snils) {
        *field1 = "snils";
        enum id_check c = ids_snils(snils, q->snils);
        if (c != ID_OK)
            return check_err(c);
    }
    if (person) {
        *field1 = "personguid";
        if (ids_guid(person, q->person) != ID_OK)
            return E_PARAM_FORMAT;
    }
    if (mkab) {
        *field1 = "mkab";
        if (ids_guid(mkab, q->mkab) != ID_OK)
            return E_PARAM_FORMAT;
    }
    if (!s_doc != !n_doc) {
        *field1 = "s_doc";
        *field2 = "n_doc";
        return E_PARAM_PAIR;
    }
    if (s_doc) {
        *field1 = "s_doc";
        if (ids_passport_series(s_doc, q->doc_series) != ID_OK)
            return E_PARAM_FORMAT;
        *field1 = "n_doc";
        if (ids_passport_number(n_doc, q->doc_number) != ID_OK)
            return E_PARAM_FORMAT;
    }
    const char *v = param2(get, ctx, "f", "family", field1);
    if ((e = parse_name(v, q->family, sizeof(q->family))))
        return e;
    v = param2(get, ctx, "n", "name", field1);
    if ((e = parse_name(v, q->name, sizeof(q->name))))
        return e;
    v = param2(get, ctx, "p", "patronymic", field1);
    if ((e = parse_name(v, q->patronymic, sizeof(q->patronymic))))
        return e;

    /* Pick the method: the federal flag first, then the most direct
     * identifier given. */
    if (federal) {
        q->method = IDENT_FEDERAL;
        if (!birthday) {
            /* "birthday can be anything, but it cannot be left out" */
            *field1 = "birthday";
            return E_PARAM_REQUIRED;
        }
        if (!fed_combos(q))
            return E_PARAM_COMBINATION;
        if (q->polis_key[0])
            set_stmt(q, STMT_IDENT_BY_POLIS, q->polis_key, NULL);
        else
            set_stmt(q, STMT_IDENT_BY_SNILS, q->snils, NULL);
    } else if (person) {
        q->method = IDENT_PERSON;
        set_stmt(q, STMT_IDENT_BY_PERSON, q->person, NULL);
    } else if (mkab) {
        q->method = IDENT_MKAB;
        set_stmt(q, STMT_IDENT_BY_MKAB, q->mkab, NULL);
    } else if (n_pol) {
        q->method = IDENT_POLIS;
        if (!birthday) {
            *field1 = "birthday";
            return E_PARAM_REQUIRED;
        }
        set_stmt(q, STMT_IDENT_BY_POLIS, q->polis_key, NULL);
    } else if (snils) {
        q->method = IDENT_SNILS;
        if (!birthday) {
            *field1 = "birthday";
            return E_PARAM_REQUIRED;
        }
        set_stmt(q, STMT_IDENT_BY_SNILS, q->snils, NULL);
    } else if (s_doc) {
        q->method = IDENT_PASSPORT;
        set_stmt(q, STMT_IDENT_BY_PASSPORT, q->doc_series, q->doc_number);
    } else {
        return E_PARAM_COMBINATION;
    }
    /* Only what the method uses takes part in the identity: the same person
     * asked for the same way shares one cache entry and one rate limit. */
    if (q->method != IDENT_FEDERAL) {
        if (q->method != IDENT_POLIS && q->method != IDENT_SNILS)
            q->birthday[0] = '\0';
        if (q->method != IDENT_POLIS)
            q->polis_key[0] = '\0';
        if (q->method != IDENT_SNILS)
            q->snils[0] = '\0';
        if (q->method != IDENT_PASSPORT)
            q->doc_series[0] = q->doc_number[0] = '\0';
        if (q->method != IDENT_PERSON)
            q->person[0] = '\0';
        if (q->method != IDENT_MKAB)
            q->mkab[0] = '\0';
        q->family[0] = q->name[0] = q->patronymic[0] = '\0';
        /* values[] may have pointed at a field cleared above: none of the
         * cleared fields is the chosen method's own. */
    }
    make_key(q);
    return E_NONE;
}

enum err_id identity_from_polis(const char *series, const char *number, const char *birthday,
                                struct ident_query *q)
{
    const char *field;
    int y, m, d;
    memset(q, 0, sizeof(*q));
    if (ids_date(birthday, &y, &m, &d) != ID_OK)
        return E_PARAM_FORMAT;
    if (parse_polis(series && *series ? series : NULL, number, q->polis_key, sizeof(q->polis_key),
                    &field))
        return E_PARAM_FORMAT;
    util_strlcpy(q->birthday, birthday, sizeof(q->birthday));
    q->method = IDENT_POLIS;
    set_stmt(q, STMT_IDENT_BY_POLIS, q->polis_key, NULL);
    make_key(q);
    return E_NONE;
}

static bool eq(const char *want, const char *have)
{
    return want[0] && strcmp(want, have) == 0;
}

/* Does row i of the look-up match what the patient gave? */
static bool row_matches(const struct ident_query *q, const PGresult *res, int i)
{
    const char *bday = PQgetvalue(res, i, IDENT_COL_BIRTHDAY);
    const char *snils = PQgetvalue(res, i, IDENT_COL_SNILS);
    const char *fam = PQgetvalue(res, i, IDENT_COL_FAMILY_KEY);
    const char *nam = PQgetvalue(res, i, IDENT_COL_NAME_KEY);
    const char *pat = PQgetvalue(res, i, IDENT_COL_PATRONYMIC_KEY);

    switch (q->method) {
    case IDENT_POLIS:
    case IDENT_SNILS:
        return eq(q->birthday, bday);
    case IDENT_PERSON:
    case IDENT_MKAB:
    case IDENT_PASSPORT:
        return true;
    case IDENT_FEDERAL: {
        unsigned m = fed_combos(q);
        bool s = eq(q->snils, snils), b = eq(q->birthday, bday);
        bool f = eq(q->family, fam), n = eq(q->name, nam), p = eq(q->patronymic, pat);
        return ((m & FED_SNILS_BIRTHDAY) && s && b) || ((m & FED_SNILS_FAMILY) && s && f) ||
               ((m & FED_SNILS_NAME_PATR) && s && n && p) || ((m & FED_BIRTHDAY_NAME) && b && n) ||
               ((m & FED_NOPOLIS) && s && b && n);
    }
    }
    return false;
}

void identity_match(const struct ident_query *q, const PGresult *res, struct ident_result *out)
{
    memset(out, 0, sizeof(*out));
    int n = PQntuples(res);
    if (PQnfields(res) != IDENT_NCOLS)
        return;
    /* Rows come newest first: with two persons sharing an identifier (bad
     * data), the one the MIS touched last wins. */
    for (int i = 0; i < n; i++) {
        if (!row_matches(q, res, i))
            continue;
        out->found = true;
        util_strlcpy(out->person, PQgetvalue(res, i, IDENT_COL_PERSON), sizeof(out->person));
        util_strlcpy(out->cards, PQgetvalue(res, i, IDENT_COL_CARDS), sizeof(out->cards));
        return;
    }
}

void identity_encode(const struct ident_result *res, char *out, size_t cap)
{
    if (!res->found)
        snprintf(out, cap, "-");
    else
        snprintf(out, cap, "%s;%s", res->person, res->cards);
}

bool identity_decode(const char *s, struct ident_result *out)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(s, "-") == 0)
        return true;
    const char *semi = strchr(s, ';');
    if (!semi || semi - s != GUID_LEN)
        return false;
    memcpy(out->person, s, GUID_LEN);
    out->person[GUID_LEN] = '\0';
    out->found = true;
    return util_strlcpy(out->cards, semi + 1, sizeof(out->cards));
}

/* KEYS horizon; ARGV this gateway's longest lifetime, and how long the
 * announcement must hold (seconds). The horizon is a sorted set: each
 * lifetime announced, scored with the time (Redis's clock) until which
 * buckets filled under it may live, so that each lifetime lapses on its own
 * schedule and a shorter one outlives a longer one that stopped being
 * announced. A key of another type (not ours) is replaced. */
static struct redis_script horizon_script = {
    "local t = tonumber(redis.call('TIME')[1]) "
    "local ttl = tonumber(ARGV[2]) "
    "local ok = redis.pcall('ZADD', KEYS[1], 'GT', t + ttl, ARGV[1]) "
    "if type(ok) == 'table' and ok.err then "
    "  redis.call('DEL', KEYS[1]) "
    "  redis.call('ZADD', KEYS[1], t + ttl, ARGV[1]) "
    "end "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. t) "
    "if redis.call('TTL', KEYS[1]) < ttl then redis.call('EXPIRE', KEYS[1], ttl) end "
    "return 0",
    ""};

/* The index's buckets and every key they name go in one script, so that a
 * token issued meanwhile either lands in a bucket before (and is dropped)
 * or after (and is fresh). A look-up that read PostgreSQL before the change
 * but stores after this script would cache the old cards again: the guard
 * key pfgt:{person} tells the store step not to (see IDENT_FORGET_GUARD_S).
 * KEYS index prefix, guard, horizon; ARGV guard ttl, first and last
 * bucket, bucket length, the most buckets to walk. The buckets and the keys
 * in them are not declared: a Redis Cluster would need the person's keys
 * hash-tagged alike. */
static struct redis_script forget_script = {
    "local n = 0 "
    "local first, last = tonumber(ARGV[2]), tonumber(ARGV[3]) "
    "local h = 0 "
    "local live = redis.pcall('ZRANGEBYSCORE', KEYS[3], redis.call('TIME')[1], '+inf') "
    "if type(live) == 'table' and not live.err then "
    "  for i = 1, #live do "
    "    local l = tonumber(live[i]) "
    "    if l and l == l and l > h then h = l end "
    "  end "
    "end "
    "if h > 0 then "
    "  first = math.min(first, last - 3 - math.ceil(h / tonumber(ARGV[4]))) "
    "end "
    "first = math.max(first, last - tonumber(ARGV[5])) "
    "for b = first, last do "
    "  local idx = KEYS[1] .. ':' .. b "
    "  local ks = redis.call('SMEMBERS', idx) "
    "  for i = 1, #ks do redis.call('DEL', ks[i]) end "
    "  redis.call('DEL', idx) "
    "  n = n + #ks "
    "end "
    "redis.call('SET', KEYS[2], '1', 'EX', ARGV[1]) "
    "return n",
    ""};
static pthread_once_t forget_once = PTHREAD_ONCE_INIT;

static void forget_init(void)
{
    redis_script_init(&forget_script);
    redis_script_init(&horizon_script);
}

/* When this worker's horizon is next due (wall seconds); 0 after a failed
 * announcement, so that the next addition tries again. */
static _Thread_local int64_t horizon_due_s;

static void horizon_on_reply(const redisReply *reply, enum store_status st, void *arg)
{
    (void)reply;
    (void)arg;
    if (st != STORE_OK)
        horizon_due_s = 0;
}

static void identity_announce_horizon(struct redis *rd, const struct config *cfg, int64_t now_s)
{
    if (now_s < horizon_due_s)
        return;
    pthread_once(&forget_once, forget_init);
    int life = identity_index_ttl(cfg);
    char h[24], ttl[24];
    snprintf(h, sizeof(h), "%d", life);
    /* Until the last bucket this worker can add to before its next
     * announcement has expired, with a turn to spare. */
    snprintf(ttl, sizeof(ttl), "%d", life + IDENT_INDEX_BUCKET_S + 2 * IDENT_HORIZON_EVERY_S);
    const char *argv[] = {IDENT_HORIZON_KEY, h, ttl};
    if (redis_eval(rd, &horizon_script, horizon_on_reply, NULL, 1, 3, argv) == STORE_OK)
        horizon_due_s = now_s + IDENT_HORIZON_EVERY_S;
}

struct forget {
    void (*done)(void *arg);
    void *arg;
};

static void forget_on_reply(const redisReply *reply, enum store_status st, void *arg)
{
    (void)reply;
    (void)st;  /* a failure leaves keys that expire by themselves */
    struct forget f = *(struct forget *)arg;
    free(arg);
    f.done(f.arg);
}

int identity_index_ttl(const struct config *cfg)
{
    int t = cfg->tokens_ident_cache_ttl_s;
    if (cfg->tokens_cod_ttl_s > t)
        t = cfg->tokens_cod_ttl_s;
    return cfg->tokens_rpgu_ttl_s > t ? cfg->tokens_rpgu_ttl_s : t;
}

void identity_index_bucket(struct redis *rd, const struct config *cfg, int64_t now_s, char bucket[24],
                           char ttl[24])
{
    identity_announce_horizon(rd, cfg, now_s);
    int64_t b = now_s / IDENT_INDEX_BUCKET_S;
    /* Relative, not EXPIREAT: Redis's clock decides, and a gateway whose
     * clock is off shifts the end by as much, never to before now. */
    int64_t ttl_s = (b + 1) * IDENT_INDEX_BUCKET_S + identity_index_ttl(cfg) - now_s;
    snprintf(bucket, 24, "%lld", (long long)b);
    snprintf(ttl, 24, "%lld", (long long)ttl_s);
}

void identity_forget_person(struct redis *rd, const struct config *cfg, const char *person_guid,
                            void (*done)(void *arg), void *arg)
{
    pthread_once(&forget_once, forget_init);
    struct forget *f = malloc(sizeof(*f));
    /* Every bucket that may live (a key cached up to identity_index_ttl ago,
     * in the bucket of then), and one more each way for another gateway's
     * clock; further back when another gateway announced a longer
     * lifetime (the horizon, which the script reads). */
    int64_t now = util_wall_us() / 1000000;
    int64_t b = now / IDENT_INDEX_BUCKET_S, b0 = (now - identity_index_ttl(cfg)) / IDENT_INDEX_BUCKET_S;
    char k_idx[48], k_guard[48], guard_ttl[16], first[24], last[24], len[16], most[16];
    snprintf(k_idx, sizeof(k_idx), IDENT_INDEX_PREFIX "%s", person_guid);
    snprintf(k_guard, sizeof(k_guard), "pfgt:%s", person_guid);
    snprintf(guard_ttl, sizeof(guard_ttl), "%d", IDENT_FORGET_GUARD_S);
    snprintf(first, sizeof(first), "%lld", (long long)(b0 - 1));
    snprintf(last, sizeof(last), "%lld", (long long)(b + 1));
    snprintf(len, sizeof(len), "%d", IDENT_INDEX_BUCKET_S);
    snprintf(most, sizeof(most), "%d", CONFIG_TTL_MAX_S / IDENT_INDEX_BUCKET_S + 3);
    const char *argv[] = {k_idx, k_guard, IDENT_HORIZON_KEY, guard_ttl, first, last, len, most};
    if (!f || redis_eval(rd, &forget_script, forget_on_reply, f, 3, 8, argv) != STORE_OK) {
        free(f);
        done(arg);
        return;
    }
    f->done = done;
    f->arg = arg;
}
