/* misauth.c - see misauth.h.
 *
 * One request's way through:
 *   parse    Authorization: Basic base64(login:password)   → 401 at once
 *   cache    SHA-256 of the header in this worker's table   → a hit calls back
 *   pg       the login's hash, state and LPUs               → 503 when down
 *   hash     argon2id_verify on a hashing thread            → 503 when the queue is full;
 *            requests with the same header meanwhile wait for this one
 *   done     back on the worker's loop: remember, call back, or 401
 * An unknown login is verified against a dummy hash of the same cost, so
 * that the answer's timing does not tell which logins exist. */
#include "misauth.h"

#include <event2/http.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "hasher.h"
#include "ids.h"
#include "pg.h"
#include "util.h"
#include "worker.h"

#define MISAUTH_CACHE_SLOTS 64

/* ---- the per-worker cache of verified headers ---- */

struct cache_slot {
    unsigned char key[32];           /* SHA-256 of the whole header value */
    int64_t expires_us;              /* monotonic; 0: empty */
    struct misauth_login who;
};

/* Each worker is one thread, so a thread-local table needs no lock. */
static _Thread_local struct cache_slot cache[MISAUTH_CACHE_SLOTS];

static struct cache_slot *cache_find(const unsigned char key[32], int64_t now)
{
    for (int i = 0; i < MISAUTH_CACHE_SLOTS; i++) {
        if (cache[i].expires_us > now && util_secret_eq(cache[i].key, key, 32))
            return &cache[i];
    }
    return NULL;
}

/* Takes an empty or expired slot, else the one closest to expiry. */
static void cache_put(const unsigned char key[32], const struct misauth_login *who, int64_t now,
                      int ttl_s)
{
    struct cache_slot *victim = &cache[0];
    for (int i = 0; i < MISAUTH_CACHE_SLOTS; i++) {
        if (cache[i].expires_us <= now) {
            victim = &cache[i];
            break;
        }
        if (cache[i].expires_us < victim->expires_us)
            victim = &cache[i];
    }
    memcpy(victim->key, key, 32);
    victim->who = *who;
    victim->expires_us = now + (int64_t)ttl_s * 1000000;
}

/* ---- one request ---- */

struct misauth_ctx {
    struct req *r;
    misauth_cb cb;
    unsigned char key[32];
    char *password;                  /* arena; wiped after the hash */
    struct misauth_login who;
    bool known;                      /* the login exists and is enabled */
    struct hasher_job job;
    struct misauth_ctx *waiters;     /* the leader's: same header, waiting for its answer */
    struct misauth_ctx *next;        /* in the leader's list */
};

/* What one verification came to; every request waiting on it gets the same. */
enum verdict {
    VERDICT_OK,            /* enabled login, password matched */
    VERDICT_REFUSED,       /* 401 */
    VERDICT_OVERLOADED,    /* 503/5031: the queue or the PostgreSQL pool is full */
    VERDICT_UNAVAILABLE,   /* 503/5030 */
};

/* Verifications under way in this worker, by header: a busy MIS sends many
 * requests at once with one credential, and when its cached verification
 * expires they would all miss together and queue one hash each (and shed
 * with 503 past mis.hash_queue_max). The first leads; the rest wait for its
 * verdict. */
#define MISAUTH_INFLIGHT_SLOTS 64
static _Thread_local struct misauth_ctx *inflight[MISAUTH_INFLIGHT_SLOTS];

static struct misauth_ctx **inflight_find(const unsigned char key[32])
{
    for (int i = 0; i < MISAUTH_INFLIGHT_SLOTS; i++) {
        if (inflight[i] && memcmp(inflight[i]->key, key, 32) == 0)
            return &inflight[i];
    }
    return NULL;
}

static void unauthorized(struct req *r);

/* Answers everyone waiting on the leader, then the leader. Each answer frees
 * its request (and the context in it), so what is needed is copied first. */
static void verdict_apply(struct misauth_ctx *lead, enum verdict v)
{
    struct misauth_ctx **slot = inflight_find(lead->key);
    if (slot && *slot == lead)
        *slot = NULL;
    if (v == VERDICT_OK) {
        int ttl = lead->r->w->cfg->mis_auth_cache_ttl_s;
        if (ttl > 0)
            cache_put(lead->key, &lead->who, util_mono_us(), ttl);
    }
    struct misauth_ctx *w = lead->waiters;
    lead->waiters = NULL;
    while (w || lead) {
        struct misauth_ctx *m = w ? w : lead;
        if (w) {
            w = w->next;
            m->who = lead->who;
        } else {
            lead = NULL;
        }
        switch (v) {
        case VERDICT_OK: m->cb(m->r, &m->who); break;
        case VERDICT_REFUSED: unauthorized(m->r); break;
        case VERDICT_OVERLOADED: req_fail(m->r, E_OVERLOADED); break;
        case VERDICT_UNAVAILABLE: req_fail(m->r, E_STORE_UNAVAILABLE); break;
        }
    }
}

static void unauthorized(struct req *r)
{
    evhttp_add_header(evhttp_request_get_output_headers(r->ev), "WWW-Authenticate",
                      "Basic realm=\"mipgw\", charset=\"UTF-8\"");
    req_fail(r, E_MIS_UNAUTHORIZED);
}

/* Strict base64 (RFC 4648, padded). Returns the decoded length or -1. */
static int b64_decode(const char *in, size_t n, char *out, size_t cap)
{
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        unsigned v = 0;
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = in[i + k];
            int d;
            if (c >= 'A' && c <= 'Z') d = c - 'A';
            else if (c >= 'a' && c <= 'z') d = c - 'a' + 26;
            else if (c >= '0' && c <= '9') d = c - '0' + 52;
            else if (c == '+') d = 62;
            else if (c == '/') d = 63;
            else if (c == '=' && i + 4 == n && k >= 2) { d = 0; pad++; }
            else return -1;
            if (pad && c != '=')
                return -1;
            v = v << 6 | (unsigned)d;
        }
        out[o++] = (char)(v >> 16);
        if (pad < 2)
            out[o++] = (char)(v >> 8 & 0xff);
        if (pad < 1)
            out[o++] = (char)(v & 0xff);
    }
    return (int)o;
}

bool misauth_login_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > MISAUTH_LOGIN_MAX)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '@' || c == '-'))
            return false;
    }
    return true;
}

/* The base64 part of a Basic credential, or NULL when h is absent, of
 * another scheme or longer than we read. */
static const char *basic_b64(const char *h)
{
    if (!h || strncasecmp(h, "Basic ", 6) != 0 || strlen(h) > MISAUTH_HEADER_MAX)
        return NULL;
    h += 6;
    while (*h == ' ')
        h++;
    return h;
}

bool misauth_parse_basic(const char *header, char *login, size_t login_cap, char *password,
                         size_t password_cap)
{
    const char *b64 = basic_b64(header);
    if (!b64)
        return false;
    char plain[MISAUTH_HEADER_MAX];
    int n = b64_decode(b64, strlen(b64), plain, sizeof(plain) - 1);
    char *colon = n > 0 ? memchr(plain, ':', (size_t)n) : NULL;
    bool ok = false;
    if (colon && !memchr(plain, '\0', (size_t)n)) {
        plain[n] = '\0';
        *colon = '\0';
        size_t pwlen = strlen(colon + 1);
        ok = misauth_login_valid(plain) && pwlen > 0 && pwlen <= MISAUTH_PASSWORD_MAX &&
             strlen(plain) < login_cap && pwlen < password_cap;
        if (ok) {
            memcpy(login, plain, strlen(plain) + 1);
            memcpy(password, colon + 1, pwlen + 1);
        }
    }
    /* The password was in there. */
    if (n > 0)
        explicit_bzero(plain, (size_t)n);
    return ok;
}

static void misauth_on_hash(struct hasher_job *j, void *arg)
{
    (void)j;
    struct misauth_ctx *m = arg;
    explicit_bzero(m->password, m->job.password_len);
    verdict_apply(m, m->job.ok && m->known ? VERDICT_OK : VERDICT_REFUSED);
}

/* Splits "470102,470103" into who->mcods. */
static void parse_mcods(const char *list, struct misauth_login *who)
{
    who->nmcods = 0;
    while (list && *list && who->nmcods < MISAUTH_MAX_LPUS) {
        const char *comma = strchr(list, ',');
        size_t n = comma ? (size_t)(comma - list) : strlen(list);
        if (n > 0 && n < MISAUTH_MCOD_MAX) {
            memcpy(who->mcods[who->nmcods], list, n);
            who->mcods[who->nmcods][n] = '\0';
            who->nmcods++;
        }
        list = comma ? comma + 1 : NULL;
    }
}

static void misauth_on_pg(PGresult *res, enum store_status st, void *arg)
{
    struct misauth_ctx *m = arg;
    struct req *r = m->r;
    if (st != STORE_OK) {
        explicit_bzero(m->password, strlen(m->password));
        verdict_apply(m, st == STORE_BUSY ? VERDICT_OVERLOADED : VERDICT_UNAVAILABLE);
        return;
    }
    /* Columns: password_hash, is_disabled, mcods ("a,b"). */
    const char *hash = hasher_dummy();
    if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 1), "f") == 0 &&
        strlen(PQgetvalue(res, 0, 0)) < HASHER_ENCODED_MAX) {
        hash = PQgetvalue(res, 0, 0);
        m->known = true;
        parse_mcods(PQgetvalue(res, 0, 2), &m->who);
    }
    m->job.op = HASHER_VERIFY;
    util_strlcpy(m->job.encoded, hash, sizeof(m->job.encoded));
    m->job.password = m->password;
    m->job.password_len = strlen(m->password);
    m->job.cb = misauth_on_hash;
    m->job.arg = m;
    if (!hasher_submit(r->w->base, &m->job)) {
        explicit_bzero(m->password, m->job.password_len);
        verdict_apply(m, VERDICT_OVERLOADED);
    }
}

void misauth_require(struct req *r, misauth_cb cb)
{
    const char *h = req_header(r, "Authorization");
    if (!basic_b64(h)) {
        unauthorized(r);
        return;
    }
    struct misauth_ctx *m = req_alloc(r, sizeof(*m));
    m->r = r;
    m->cb = cb;
    util_sha256(h, strlen(h), m->key);
    int64_t now = util_mono_us();
    const struct cache_slot *hit = cache_find(m->key, now);
    if (hit) {
        m->who = hit->who;
        cb(r, &m->who);
        return;
    }
    struct misauth_ctx **lead = inflight_find(m->key);
    if (lead) {
        m->next = (*lead)->waiters;
        (*lead)->waiters = m;
        return;
    }

    char password[MISAUTH_PASSWORD_MAX + 1];
    if (!misauth_parse_basic(h, m->who.login, sizeof(m->who.login), password, sizeof(password))) {
        unauthorized(r);
        return;
    }
    m->password = req_strdup(r, password);
    size_t pwlen = strlen(password);
    explicit_bzero(password, sizeof(password));

    const char *values[] = {m->who.login};
    enum store_status st = pg_query(r->w->pg, STMT_MIS_LOGIN, values, misauth_on_pg, m);
    if (st != STORE_OK) {
        explicit_bzero(m->password, pwlen);
        req_fail_store(r, st);
        return;
    }
    /* Leads the verification of this header (unless every slot is taken:
     * then it only goes alone). */
    for (int i = 0; i < MISAUTH_INFLIGHT_SLOTS; i++) {
        if (!inflight[i]) {
            inflight[i] = m;
            break;
        }
    }
}

bool misauth_mcods_literal(const struct misauth_login *who, struct buf *out)
{
    const char *mcods[MISAUTH_MAX_LPUS];
    for (int i = 0; i < who->nmcods; i++)
        mcods[i] = who->mcods[i];
    return ids_mcod_array(mcods, who->nmcods, out);
}

bool misauth_owns(const struct misauth_login *who, const char *mcod)
{
    for (int i = 0; mcod && i < who->nmcods; i++) {
        if (strcmp(who->mcods[i], mcod) == 0)
            return true;
    }
    return false;
}

void misauth_forbid(struct req *r, const struct misauth_login *who, const char *lpu)
{
    const char *args[] = {who->login, lpu};
    req_reply_error(r, E_MIS_FORBIDDEN_LPU, args, 2);
}
