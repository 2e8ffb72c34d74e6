/* schedule.c - see schedule.h. */
#include "schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "pg.h"
#include "req.h"
#include "worker.h"

#define SCHEDULE_BUCKETS 1024  /* a power of two */
#define PERSON_SLOTS 1024      /* a power of two; direct-mapped */

/* --- rules --- */

const char *schedule_status_name(enum schedule_status s)
{
    switch (s) {
    case SCHED_AVAILABLE: return "Available";
    case SCHED_BOOKED: return "Booked";
    case SCHED_EXPIRED: return "Expired";
    case SCHED_UNAVAILABLE: return "Unavailable";
    }
    return "Unavailable";
}

enum schedule_status schedule_cell_status(bool booked, bool internet, int busy_type,
                                          int64_t begin_s, int64_t now_s)
{
    if (booked)
        return SCHED_BOOKED;
    if (begin_s <= now_s)
        return SCHED_EXPIRED;
    if (!internet || busy_type == 0)
        return SCHED_UNAVAILABLE;
    return SCHED_AVAILABLE;
}

/* Howard Hinnant's days_from_civil and civil_from_days: exact over the
 * proleptic Gregorian calendar, no time zone involved. */
int64_t schedule_day(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void schedule_civil(int64_t day, int *y, int *m, int *d)
{
    day += 719468;
    int64_t era = (day >= 0 ? day : day - 146096) / 146097;
    int64_t doe = day - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int64_t local_day(int64_t epoch_s, int *ymd)
{
    time_t t = (time_t)epoch_s;
    struct tm tm;
    localtime_r(&t, &tm);
    if (ymd)
        *ymd = (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
    return schedule_day(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

int64_t schedule_today(int64_t now_s)
{
    /* localtime_r takes glibc's time zone lock: once a minute per thread
     * is enough, as midnight falls on a minute in every zone. */
    static _Thread_local int64_t minute = -1, day;
    if (now_s / 60 != minute) {
        day = local_day(now_s, NULL);
        minute = now_s / 60;
    }
    return day;
}

int64_t schedule_midnight(int64_t day)
{
    struct tm tm = {0};
    int y, m, d;
    schedule_civil(day, &y, &m, &d);
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm);
}

enum schedule_range schedule_range_check(int64_t today, int horizon_days, int64_t from, int64_t to,
                                         int64_t *eff_from, int64_t *eff_to)
{
    if (to < from)
        return SCHED_RANGE_ORDER;
    if (to > today + horizon_days)
        return SCHED_RANGE_HORIZON;
    *eff_from = from < today ? today : from;
    *eff_to = to;
    return SCHED_RANGE_OK;
}

int schedule_age(int birth_ymd, int day_ymd)
{
    int age = day_ymd / 10000 - birth_ymd / 10000;
    if (day_ymd % 10000 < birth_ymd % 10000)
        age--;
    return age;
}

bool schedule_fits(int age_min, int age_max, int res_gender, int birth_ymd, int gender, int day_ymd)
{
    if (res_gender != 0 && gender != res_gender)
        return false;
    if (age_min < 0 && age_max < 0)
        return true;
    int age = schedule_age(birth_ymd, day_ymd);
    if (age_min >= 0 && age < age_min)
        return false;
    if (age_max >= 0 && age > age_max)
        return false;
    return true;
}

/* --- the cache --- */

struct schedule_waiter {
    struct req *r;
    schedule_cb cb;
    struct schedule_waiter *next;
};

struct person_slot {
    char guid[GUID_LEN + 1];
    int64_t expires_us;
    int birth_ymd, gender;
};

struct schedule_cache {
    int ttl_ms;
    size_t max_entries, max_bytes;
    size_t count, bytes;             /* ready entries (in the LRU list) */
    size_t filling;                  /* fills under way */
    uint64_t gen;                    /* puts so far */
    struct schedule_entry *buckets[SCHEDULE_BUCKETS];
    struct schedule_entry *lru_head, *lru_tail;  /* head: most recently used */
    struct person_slot persons[PERSON_SLOTS];
};

/* Fill state that outlives the request that started it. */
struct schedule_fill {
    struct schedule_cache *cache;
    struct schedule_entry *e;
    int64_t start_us;  /* the entry's age counts from the query's start */
};

static uint32_t key_hash(const char *resource)
{
    uint32_t h = 2166136261u;  /* FNV-1a */
    for (const char *p = resource; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}

struct schedule_cache *schedule_cache_new(int ttl_ms, size_t max_entries, size_t max_bytes)
{
    struct schedule_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->ttl_ms = ttl_ms;
    c->max_entries = max_entries;
    c->max_bytes = max_bytes;
    return c;
}

size_t schedule_cache_count(const struct schedule_cache *c)
{
    return c->count + c->filling;
}

size_t schedule_cache_bytes(const struct schedule_cache *c)
{
    return c->bytes;
}

struct schedule_entry *schedule_entry_new(const char *lpu, const char *resource)
{
    struct schedule_entry *e = calloc(1, sizeof(*e));
    if (!e)
        abort();
    util_strlcpy(e->lpu, lpu, sizeof(e->lpu));
    util_strlcpy(e->resource, resource, sizeof(e->resource));
    e->age_min = e->age_max = -1;
    buf_init(&e->json);
    return e;
}

void schedule_entry_free(struct schedule_entry *e)
{
    if (!e)
        return;
    buf_free(&e->json);
    buf_free(&e->last_key);
    free(e->cells);
    free(e->tails);
    free(e);
}

static size_t entry_bytes(const struct schedule_entry *e)
{
    return sizeof(*e) + (size_t)e->cap * sizeof(*e->cells) +
           (size_t)e->tails_cap * sizeof(*e->tails) + e->json.cap + e->last_key.cap;
}

/* Gives back what the doubling buffers hold beyond their contents: a
 * cached entry lives for its TTL, many of them per worker. */
static void entry_seal(struct schedule_entry *e)
{
    buf_free(&e->last_key);
    if (e->cap > e->ncells && e->ncells > 0) {
        struct schedule_cell *c = realloc(e->cells, (size_t)e->ncells * sizeof(*c));
        if (c) {
            e->cells = c;
            e->cap = e->ncells;
        }
    }
    if (e->json.cap > e->json.len + 1) {
        char *d = realloc(e->json.data, e->json.len + 1);
        if (d) {
            e->json.data = d;
            e->json.cap = e->json.len + 1;
        }
    }
}

static void gen_append(yajl_gen g, struct buf *out, uint32_t *off, uint32_t *len)
{
    const unsigned char *p;
    size_t n;
    yajl_gen_get_buf(g, &p, &n);
    *off = (uint32_t)out->len;
    *len = (uint32_t)n;
    buf_append(out, p, n);
    yajl_gen_free(g);
}

/* The index of the tail for these inputs: the last cell's again when they
 * are the same (cells come in runs of one busy type) without generating
 * anything, else an earlier equal one, else a new one. */
static int cell_tail(struct schedule_entry *e, const char *busy_name, int busy_type,
                     const char *busy_code, const char *access)
{
    char type[16];
    snprintf(type, sizeof(type), "%d", busy_type);
    size_t klen = strlen(type) + strlen(busy_name) + strlen(busy_code) + strlen(access) + 3;
    if (e->ntails > 0 && e->last_key.len == klen) {
        const char *k = e->last_key.data;
        size_t n = strlen(type);
        if (memcmp(k, type, n) == 0 && k[n] == '\x1f') {
            k += n + 1;
            n = strlen(busy_name);
            if (memcmp(k, busy_name, n) == 0 && k[n] == '\x1f') {
                k += n + 1;
                n = strlen(busy_code);
                if (memcmp(k, busy_code, n) == 0 && k[n] == '\x1f' &&
                    strcmp(k + n + 1, access) == 0)
                    return e->last_tail;
            }
        }
    }
    buf_reset(&e->last_key);
    buf_printf(&e->last_key, "%s\x1f%s\x1f%s\x1f%s", type, busy_name, busy_code, access);

    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);  /* its "{" is left out below */
    json_gen_str(g, "busyType");
    yajl_gen_map_open(g);
    json_gen_kv_str(g, "name", busy_name);
    json_gen_kv_int(g, "type", busy_type);
    json_gen_kv_str(g, "code", busy_code);
    yajl_gen_map_close(g);
    json_gen_str(g, "flagAccess");
    yajl_gen_array_open(g);
    /* access is PostgreSQL's array_to_string(access, ','): the constraint
     * on cells.access allows only the four names, none holding a comma. */
    int nflags = 0;
    for (const char *p = access; *p;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n > 0) {
            yajl_gen_string(g, (const unsigned char *)p, n);
            nflags++;
        }
        p += n + (comma ? 1 : 0);
    }
    if (nflags == 0)
        json_gen_str(g, "None");
    yajl_gen_array_close(g);
    /* The text ends with the key; the request appends :"Status"}. */
    json_gen_str(g, "status");
    const unsigned char *text;
    size_t tlen;
    yajl_gen_get_buf(g, &text, &tlen);
    text++, tlen--;
    for (int i = 0; i < e->ntails; i++) {
        if (e->tails[i].len == tlen && memcmp(e->json.data + e->tails[i].off, text, tlen) == 0) {
            yajl_gen_free(g);
            e->last_tail = i;
            return i;
        }
    }
    if (e->ntails == e->tails_cap) {
        e->tails_cap = e->tails_cap ? e->tails_cap * 2 : 4;
        e->tails = realloc(e->tails, (size_t)e->tails_cap * sizeof(*e->tails));
        if (!e->tails)
            abort();
    }
    struct schedule_frag *f = &e->tails[e->ntails++];
    f->off = (uint32_t)e->json.len;
    f->len = (uint32_t)tlen;
    buf_append(&e->json, text, tlen);
    yajl_gen_free(g);
    e->last_tail = e->ntails - 1;
    return e->last_tail;
}

void schedule_entry_add_cell(struct schedule_entry *e, const char *guid, int64_t begin_s,
                             int64_t end_s, const char *busy_name, int busy_type,
                             const char *busy_code, const char *access, bool booked)
{
    if (e->ncells == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->cells = realloc(e->cells, (size_t)e->cap * sizeof(*e->cells));
        if (!e->cells)
            abort();
    }
    access = access ? access : "";
    int tail = cell_tail(e, busy_name, busy_type, busy_code, access);
    struct schedule_cell *c = &e->cells[e->ncells++];
    /* The local day from the formatted begin: localtime_r would take
     * glibc's time zone lock once per cell. */
    char begin[32], end[32];
    util_format_time(begin_s, begin);
    util_format_time(end_s, end);
    int y = atoi(begin), m = atoi(begin + 5), d = atoi(begin + 8);
    c->begin_s = begin_s;
    c->ymd = y * 10000 + m * 100 + d;
    c->day = schedule_day(y, m, d);
    c->busy_type = busy_type;
    c->booked = booked;
    c->tail = (uint16_t)tail;
    /* "Internet" as a whole name in the list. */
    c->internet = false;
    for (const char *p = strstr(access, "Internet"); p; p = strstr(p + 1, "Internet")) {
        if ((p == access || p[-1] == ',') && (p[8] == '\0' || p[8] == ',')) {
            c->internet = true;
            break;
        }
    }

    /* The head needs no escaping: a GUID from PostgreSQL's uuid, and our
     * own timestamps. */
    c->off = (uint32_t)e->json.len;
    buf_printf(&e->json, "{\"guid\":\"%s\",\"begin\":\"%s\",\"end\":\"%s\",", guid, begin, end);
    c->len = (uint16_t)(e->json.len - c->off);
}

/* --- LRU and hash --- */

static void lru_unlink(struct schedule_cache *c, struct schedule_entry *e)
{
    if (e->lru_prev)
        e->lru_prev->lru_next = e->lru_next;
    else
        c->lru_head = e->lru_next;
    if (e->lru_next)
        e->lru_next->lru_prev = e->lru_prev;
    else
        c->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = NULL;
}

static void lru_push(struct schedule_cache *c, struct schedule_entry *e)
{
    e->lru_prev = NULL;
    e->lru_next = c->lru_head;
    if (c->lru_head)
        c->lru_head->lru_prev = e;
    c->lru_head = e;
    if (!c->lru_tail)
        c->lru_tail = e;
}

static void hash_insert(struct schedule_cache *c, struct schedule_entry *e)
{
    uint32_t b = key_hash(e->resource) & (SCHEDULE_BUCKETS - 1);
    e->hnext = c->buckets[b];
    c->buckets[b] = e;
}

static void hash_remove(struct schedule_cache *c, struct schedule_entry *e)
{
    uint32_t b = key_hash(e->resource) & (SCHEDULE_BUCKETS - 1);
    for (struct schedule_entry **pp = &c->buckets[b]; *pp; pp = &(*pp)->hnext) {
        if (*pp == e) {
            *pp = e->hnext;
            e->hnext = NULL;
            return;
        }
    }
}

/* The ready entry of a key, or the one filling: each key has at most one
 * of each (a refresh fills while the ready one still serves). */
static struct schedule_entry *hash_find(struct schedule_cache *c, const char *lpu,
                                        const char *resource, bool filling)
{
    uint32_t b = key_hash(resource) & (SCHEDULE_BUCKETS - 1);
    for (struct schedule_entry *e = c->buckets[b]; e; e = e->hnext) {
        if (e->filling == filling && strcmp(e->resource, resource) == 0 &&
            strcmp(e->lpu, lpu) == 0)
            return e;
    }
    return NULL;
}

/* Removes a ready entry and frees it. */
static void entry_evict(struct schedule_cache *c, struct schedule_entry *e)
{
    hash_remove(c, e);
    lru_unlink(c, e);
    c->count--;
    c->bytes -= e->bytes;
    schedule_entry_free(e);
}

static void cache_trim(struct schedule_cache *c, const struct schedule_entry *keep)
{
    while (c->lru_tail && (c->count > c->max_entries || c->bytes > c->max_bytes)) {
        struct schedule_entry *victim = c->lru_tail;
        if (victim == keep) {
            if (victim->lru_prev == NULL)
                break;  /* alone and too big: it stays for its TTL */
            victim = victim->lru_prev;
        }
        entry_evict(c, victim);
    }
}

void schedule_cache_put(struct schedule_cache *c, struct schedule_entry *e, int64_t now_us)
{
    struct schedule_entry *old = hash_find(c, e->lpu, e->resource, false);
    if (old)
        entry_evict(c, old);
    hash_insert(c, e);
    e->filling = false;
    e->checking = false;
    e->gen = ++c->gen;
    e->expires_us = now_us + (int64_t)c->ttl_ms * 1000;
    entry_seal(e);
    e->bytes = entry_bytes(e);
    c->count++;
    c->bytes += e->bytes;
    lru_push(c, e);
    cache_trim(c, e);
}

struct schedule_entry *schedule_cache_find(struct schedule_cache *c, const char *lpu,
                                           const char *resource, int64_t now_us, int64_t today)
{
    struct schedule_entry *e = hash_find(c, lpu, resource, false);
    if (!e)
        return NULL;
    if (now_us >= e->expires_us || e->today != today) {
        entry_evict(c, e);
        return NULL;
    }
    if (c->lru_head != e) {
        lru_unlink(c, e);
        lru_push(c, e);
    }
    return e;
}

void schedule_cache_drop_resource(struct schedule_cache *c, const char *resource_guid)
{
    if (!c)
        return;
    uint32_t b = key_hash(resource_guid) & (SCHEDULE_BUCKETS - 1);
    struct schedule_entry **pp = &c->buckets[b];
    while (*pp) {
        struct schedule_entry *e = *pp;
        if (strcmp(e->resource, resource_guid) != 0) {
            pp = &e->hnext;
            continue;
        }
        if (e->filling) {
            /* Its query may have read the old state: its waiters get the
             * answer, the cache keeps nothing, the next request refills. */
            *pp = e->hnext;
            e->hnext = NULL;
            e->dropped = true;
            continue;
        }
        entry_evict(c, e);  /* unlinks *pp */
    }
}

void schedule_cache_drop(struct worker *w, const char *resource_guid)
{
    schedule_cache_drop_resource(w->schedule, resource_guid);
}

void schedule_cache_free(struct schedule_cache *c)
{
    if (!c)
        return;
    /* Fills under way belong to their queries, which the PostgreSQL pool
     * (freed before) has already answered: here only ready entries. */
    while (c->lru_head)
        entry_evict(c, c->lru_head);
    free(c);
}

/* --- persons --- */

static struct person_slot *person_slot(struct schedule_cache *c, const char *person)
{
    return &c->persons[key_hash(person) & (PERSON_SLOTS - 1)];
}

bool schedule_person_find(struct schedule_cache *c, const char *person, int64_t now_us,
                          int *birth_ymd, int *gender)
{
    struct person_slot *s = person_slot(c, person);
    if (now_us >= s->expires_us || strcmp(s->guid, person) != 0)
        return false;
    *birth_ymd = s->birth_ymd;
    *gender = s->gender;
    return true;
}

void schedule_person_put(struct schedule_cache *c, const char *person, int64_t now_us,
                         int birth_ymd, int gender)
{
    if (c->ttl_ms <= 0)
        return;
    struct person_slot *s = person_slot(c, person);
    util_strlcpy(s->guid, person, sizeof(s->guid));
    s->expires_us = now_us + (int64_t)c->ttl_ms * 1000;
    s->birth_ymd = birth_ymd;
    s->gender = gender;
}

/* --- the fill --- */

enum fill_col {
    FC_KIND, FC_HAS_RES, FC_TYPE, FC_FAMILY, FC_NAME, FC_PATRONYMIC, FC_ROLE, FC_SPEC_CODE, FC_SPEC_NAME,
    FC_ROOM, FC_FLOOR, FC_AGE_MIN, FC_AGE_MAX, FC_GENDER,
    FC_CELL, FC_BEGIN, FC_END, FC_BUSY_NAME, FC_BUSY_TYPE, FC_BUSY_CODE, FC_ACCESS, FC_BOOKED, FC_VERSION,
    FC__COUNT
};

static void gen_int_or_null(yajl_gen g, const char *key, int v)
{
    json_gen_str(g, key);
    if (v < 0)
        yajl_gen_null(g);
    else
        yajl_gen_integer(g, v);
}

static void entry_from_result(struct schedule_entry *e, PGresult *res)
{
    int n = PQntuples(res);
    if (n == 0 || PQnfields(res) != FC__COUNT) {
        e->found = SCHED_NO_LPU;
        return;
    }
    if (PQgetvalue(res, 0, FC_HAS_RES)[0] != 't') {
        e->found = SCHED_NO_RESOURCE;
        return;
    }
    e->found = SCHED_FOUND;
    util_strlcpy(e->version, PQgetvalue(res, 0, FC_VERSION), sizeof(e->version));
    e->age_min = atoi(PQgetvalue(res, 0, FC_AGE_MIN));
    e->age_max = atoi(PQgetvalue(res, 0, FC_AGE_MAX));
    e->gender = atoi(PQgetvalue(res, 0, FC_GENDER));
    const char *floor = PQgetvalue(res, 0, FC_FLOOR);

    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);
    json_gen_kv_str(g, "guid", e->resource);
    json_gen_kv_str(g, "lpuGuid", e->lpu);
    json_gen_kv_str(g, "type", PQgetvalue(res, 0, FC_TYPE));
    json_gen_kv_str(g, "family", PQgetvalue(res, 0, FC_FAMILY));
    json_gen_kv_str(g, "name", PQgetvalue(res, 0, FC_NAME));
    json_gen_kv_str(g, "patronymic", PQgetvalue(res, 0, FC_PATRONYMIC));
    json_gen_kv_str(g, "role", PQgetvalue(res, 0, FC_ROLE));
    json_gen_str(g, "speciality");
    yajl_gen_map_open(g);
    json_gen_kv_str(g, "code", PQgetvalue(res, 0, FC_SPEC_CODE));
    json_gen_kv_str(g, "name", PQgetvalue(res, 0, FC_SPEC_NAME));
    yajl_gen_map_close(g);
    json_gen_kv_str(g, "room", PQgetvalue(res, 0, FC_ROOM));
    gen_int_or_null(g, "floor", floor[0] ? atoi(floor) : -1);
    gen_int_or_null(g, "ageMin", e->age_min);
    gen_int_or_null(g, "ageMax", e->age_max);
    gen_int_or_null(g, "gender", e->gender > 0 ? e->gender : -1);
    yajl_gen_map_close(g);
    gen_append(g, &e->json, &e->res_off, &e->res_len);

    for (int i = 1; i < n; i++) {
        if (PQgetisnull(res, i, FC_CELL))
            continue;
        schedule_entry_add_cell(e, PQgetvalue(res, i, FC_CELL),
                                strtoll(PQgetvalue(res, i, FC_BEGIN), NULL, 10),
                                strtoll(PQgetvalue(res, i, FC_END), NULL, 10),
                                PQgetvalue(res, i, FC_BUSY_NAME),
                                atoi(PQgetvalue(res, i, FC_BUSY_TYPE)),
                                PQgetvalue(res, i, FC_BUSY_CODE), PQgetvalue(res, i, FC_ACCESS),
                                PQgetvalue(res, i, FC_BOOKED)[0] == 't');
    }
}

static void on_fill(PGresult *res, enum store_status st, void *arg)
{
    struct schedule_fill *f = arg;
    struct schedule_cache *c = f->cache;
    struct schedule_entry *e = f->e;
    int64_t start_us = f->start_us;
    free(f);
    c->filling--;
    if (st == STORE_OK)
        entry_from_result(e, res);
    struct schedule_waiter *wt = e->waiters;
    e->waiters = NULL;
    /* Kept when it is good, still wanted and the cache is on. Serving the
     * waiters cannot free it: their callbacks answer at once and nothing
     * fills the cache in between. */
    bool keep = st == STORE_OK && !e->dropped && c->ttl_ms > 0;
    if (!e->dropped)
        hash_remove(c, e);
    e->filling = false;
    if (keep)
        schedule_cache_put(c, e, start_us);
    while (wt) {
        /* The waiter lives in its request's arena, which the answer frees. */
        struct schedule_waiter *next = wt->next;
        wt->cb(wt->r, st == STORE_OK ? e : NULL, st);
        wt = next;
    }
    if (!keep)
        schedule_entry_free(e);
}

/* Starts a fill of (lpu, resource) for today, with its first waiter or
 * none (a refresh). Returns the pool's refusal, having freed everything. */
static enum store_status fill_start(struct worker *w, const char *lpu, const char *resource,
                                    int64_t today, int64_t now_us, struct schedule_waiter *wt)
{
    struct schedule_cache *c = w->schedule;
    struct schedule_fill *f = malloc(sizeof(*f));
    if (!f)
        return STORE_ERROR;
    struct schedule_entry *e = schedule_entry_new(lpu, resource);
    e->filling = true;
    e->today = today;
    e->waiters = wt;
    f->cache = c;
    f->e = e;
    f->start_us = now_us;

    char from[24], to[24];
    snprintf(from, sizeof(from), "%lld", (long long)schedule_midnight(today));
    snprintf(to, sizeof(to), "%lld",
             (long long)schedule_midnight(today + w->cfg->schedule_horizon_days + 1));
    const char *values[] = {lpu, resource, from, to};
    enum store_status st = pg_query(w->pg, STMT_SCHEDULE_FILL, values, on_fill, f);
    if (st != STORE_OK) {
        free(f);
        schedule_entry_free(e);
        return st;
    }
    hash_insert(c, e);
    c->filling++;
    return STORE_OK;
}

/* A check of a cached entry's version: when the resource's version counter
 * (bumped by triggers on every change of its cells or its row) is the one
 * the fill read with the cells, the entry gets the booked flags read now and
 * a new lifetime, without shipping and rebuilding its cells; else a fill
 * replaces it. */
struct schedule_check {
    struct worker *w;
    char lpu[GUID_LEN + 1], resource[GUID_LEN + 1];
    int64_t today, start_us;
    uint64_t gen;
};

static void on_check(PGresult *res, enum store_status st, void *arg)
{
    struct schedule_check *k = arg;
    struct schedule_cache *c = k->w->schedule;
    /* The entry checked, unless dropped, evicted or replaced meanwhile. */
    struct schedule_entry *e = hash_find(c, k->lpu, k->resource, false);
    if (!e || e->gen != k->gen) {
        free(k);
        return;
    }
    e->checking = false;
    if (st != STORE_OK || PQntuples(res) != 1 || PQgetisnull(res, 0, 0) ||
        strcmp(PQgetvalue(res, 0, 0), e->version) != 0) {
        if (st == STORE_OK && !hash_find(c, k->lpu, k->resource, true))
            (void)fill_start(k->w, k->lpu, k->resource, k->today, k->start_us, NULL);
        free(k);
        return;
    }
    for (int i = 0; i < e->ncells; i++)
        e->cells[i].booked = false;
    for (const char *p = PQgetvalue(res, 0, 1); *p;) {
        char *end;
        long long b = strtoll(p, &end, 10);
        int lo = 0, hi = e->ncells;
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            if (e->cells[mid].begin_s < b)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < e->ncells && e->cells[lo].begin_s == b)
            e->cells[lo].booked = true;
        p = *end == ',' ? end + 1 : end + strlen(end);
    }
    e->expires_us = k->start_us + (int64_t)c->ttl_ms * 1000;
    free(k);
}

static void check_start(struct worker *w, struct schedule_entry *e, int64_t now_us)
{
    struct schedule_check *k = malloc(sizeof(*k));
    if (!k)
        return;
    k->w = w;
    memcpy(k->lpu, e->lpu, sizeof(k->lpu));
    memcpy(k->resource, e->resource, sizeof(k->resource));
    k->today = e->today;
    k->start_us = now_us;
    k->gen = e->gen;
    char from[24], to[24];
    snprintf(from, sizeof(from), "%lld", (long long)schedule_midnight(e->today));
    snprintf(to, sizeof(to), "%lld",
             (long long)schedule_midnight(e->today + w->cfg->schedule_horizon_days + 1));
    const char *values[] = {e->lpu, e->resource, from, to};
    if (pg_query(w->pg, STMT_SCHEDULE_CHECK, values, on_check, k) != STORE_OK) {
        free(k);
        return;
    }
    e->checking = true;
}

void schedule_get(struct req *r, const char *lpu, const char *resource, int64_t today,
                  schedule_cb cb)
{
    struct worker *w = r->w;
    struct schedule_cache *c = w->schedule;
    int64_t now = util_mono_us();
    struct schedule_entry *e = schedule_cache_find(c, lpu, resource, now, today);
    if (e) {
        /* In the last quarter of its life a used entry is refilled in the
         * background, while it still serves: a resource that portals keep
         * asking for never makes them wait for PostgreSQL, and every answer
         * is still from a fill younger than the TTL. */
        int64_t ttl_us = (int64_t)c->ttl_ms * 1000;
        if (now >= e->expires_us - ttl_us / 4 && !e->checking &&
            !hash_find(c, lpu, resource, true)) {
            if (e->found == SCHED_FOUND && e->version[0])
                check_start(w, e, now);
            else
                (void)fill_start(w, lpu, resource, today, now, NULL);
        }
        cb(r, e, STORE_OK);
        return;
    }
    struct schedule_waiter *wt = req_alloc(r, sizeof(*wt));
    wt->r = r;
    wt->cb = cb;
    e = hash_find(c, lpu, resource, true);
    if (e && e->today == today) {
        wt->next = e->waiters;
        e->waiters = wt;
        return;
    }
    enum store_status st = fill_start(w, lpu, resource, today, now, wt);
    if (st != STORE_OK)
        cb(r, NULL, st);
}
