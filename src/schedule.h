/* schedule.h - the read side of the schedule view: the rules (a cell's
 * status, the date range a portal may ask, who fits a resource's age and
 * sex limits) and a per-worker cache of each resource's cells.
 *
 * The cache keeps, per (LPU, resource), the resource and its cells from
 * today to the horizon as PostgreSQL gave them (one prepared statement),
 * each cell pre-serialized up to its status: a request only picks the cells
 * of its range and appends a status computed from the cached booked flag and
 * the current time, so that Expired is never stale. An entry lives
 * cfg->schedule_cache_ttl_ms (0: every request reads PostgreSQL), so any
 * change committed in PostgreSQL shows in every answer that begins that
 * long after it; schedule_cache_drop() drops a resource at once in one
 * worker, but has no caller yet (the booking work will call it). An entry's
 * age counts from its query's start; a check extends it only while the
 * resource's version counter (schedule_versions, bumped by triggers) is the
 * one its fill read with the cells. Concurrent misses of one key wait for one
 * fill; an entry used in the last quarter of its life is refilled in the
 * background while it still serves, so a busy resource never makes a
 * request wait for PostgreSQL. Entries and bytes are bounded (least
 * recently used out first); all memory is the worker's, freed with it. */
#ifndef MIPGW_SCHEDULE_H
#define MIPGW_SCHEDULE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "util.h"

struct worker;
struct req;

#define SCHEDULE_CACHE_MAX_ENTRIES 2048
#define SCHEDULE_CACHE_MAX_BYTES ((size_t)32 << 20)
/* At most this many cells of one resource in the horizon are shown (the
 * LIMIT of STMT_SCHEDULE_FILL in stmts.c says the same). */
#define SCHEDULE_MAX_CELLS 5000

/* --- rules, pure --- */

enum schedule_status {
    SCHED_AVAILABLE,
    SCHED_BOOKED,       /* an active booking holds it */
    SCHED_EXPIRED,      /* begins in the past */
    SCHED_UNAVAILABLE,  /* not open to Internet booking, or a day off (busy type 0) */
};

const char *schedule_status_name(enum schedule_status s);
/* Booked wins over Expired, Expired over Unavailable. */
enum schedule_status schedule_cell_status(bool booked, bool internet, int busy_type,
                                          int64_t begin_s, int64_t now_s);

/* Days since 1970-01-01 of a civil date, and back. */
int64_t schedule_day(int y, int m, int d);
void schedule_civil(int64_t day, int *y, int *m, int *d);
/* Today's day in the process time zone (TZ), cached per thread per minute. */
int64_t schedule_today(int64_t now_s);
/* Epoch seconds of local midnight beginning a day. */
int64_t schedule_midnight(int64_t day);

enum schedule_range {
    SCHED_RANGE_OK,
    SCHED_RANGE_ORDER,    /* dateTo before dateFrom: 400/4107 */
    SCHED_RANGE_HORIZON,  /* dateTo after today + horizon: 400/5066 */
};
/* The days shown are today .. today + horizon. A dateFrom in the past is
 * clamped to today (past cells cannot be booked); *eff_from > *eff_to means
 * an empty answer. */
enum schedule_range schedule_range_check(int64_t today, int horizon_days, int64_t from, int64_t to,
                                         int64_t *eff_from, int64_t *eff_to);

/* Full years of age on a day, from a birthday (YYYYMMDD integers). */
int schedule_age(int birth_ymd, int day_ymd);
/* Whether a patient (gender 1/2, 0 unknown) of this birthday fits the
 * limits on that day. age_min/age_max -1 and res_gender 0 mean no limit; a
 * patient of unknown gender does not fit a resource limited to one. */
bool schedule_fits(int age_min, int age_max, int res_gender, int birth_ymd, int gender, int day_ymd);

/* --- the cache --- */

struct schedule_cell {
    int64_t begin_s;
    int64_t day;         /* local day of begin */
    int ymd;             /* the same as YYYYMMDD, for ages */
    int busy_type;
    bool internet;       /* "Internet" in flagAccess */
    bool booked;
    uint32_t off;        /* its head in entry->json: {"guid":..,"begin":..,"end":.., */
    uint16_t len;
    uint16_t tail;       /* index in entry->tails: "busyType":..,"flagAccess":..,"status" */
};

/* A piece of JSON in entry->json. */
struct schedule_frag {
    uint32_t off, len;
};

enum schedule_found {
    SCHED_FOUND,
    SCHED_NO_LPU,       /* 404/4141 */
    SCHED_NO_RESOURCE,  /* 404/4142 */
};

struct schedule_waiter;

struct schedule_entry {
    char lpu[GUID_LEN + 1];
    char resource[GUID_LEN + 1];
    enum schedule_found found;
    bool filling;        /* a fill is under way; waiters wait */
    bool dropped;        /* dropped while filling: serve the waiters, keep nothing */
    int64_t expires_us;  /* monotonic */
    int64_t today;       /* the day the window began on when filled */
    uint64_t gen;        /* which put this is, for a check answering late */
    bool checking;       /* a check of its version is under way */
    char version[24];    /* SCHEDULE_VERSION of stmts.c when filled: a bigint */
    int age_min, age_max, gender;
    uint32_t res_off, res_len;  /* the resource's JSON object in json */
    struct schedule_cell *cells;
    int ncells, cap;
    /* Cells share their busy type and access: each distinct tail is kept once. */
    struct schedule_frag *tails;
    int ntails, tails_cap;
    struct buf last_key;  /* while building: the inputs of the last cell's tail */
    int last_tail;
    struct buf json;
    size_t bytes;
    struct schedule_waiter *waiters;
    struct schedule_entry *hnext;             /* hash chain */
    struct schedule_entry *lru_prev, *lru_next;
};

struct schedule_cache;

struct schedule_cache *schedule_cache_new(int ttl_ms, size_t max_entries, size_t max_bytes);
void schedule_cache_free(struct schedule_cache *c);
/* Entries and bytes held (ready ones and fills under way). */
size_t schedule_cache_count(const struct schedule_cache *c);
size_t schedule_cache_bytes(const struct schedule_cache *c);

/* A ready entry of (lpu, resource) filled on `today` and not expired at
 * now_us, made the most recently used; NULL otherwise (an expired one is
 * freed). */
struct schedule_entry *schedule_cache_find(struct schedule_cache *c, const char *lpu,
                                           const char *resource, int64_t now_us, int64_t today);
/* Building an entry (the fill does it from PostgreSQL; tests by hand). */
struct schedule_entry *schedule_entry_new(const char *lpu, const char *resource);
void schedule_entry_free(struct schedule_entry *e);
void schedule_entry_add_cell(struct schedule_entry *e, const char *guid, int64_t begin_s,
                             int64_t end_s, const char *busy_name, int busy_type,
                             const char *busy_code, const char *access, bool booked);
/* Hands a built entry to the cache, which trims its buffers to size,
 * replaces any entry of the same key that is not filling, stamps its expiry
 * and evicts to the bounds. */
void schedule_cache_put(struct schedule_cache *c, struct schedule_entry *e, int64_t now_us);

/* Drops every entry of a resource (its GUID in lower case, as ids_guid
 * writes it), so the next request reads PostgreSQL; a fill under way is
 * answered to its waiters but not kept. Nothing calls it yet: the booking
 * work will, after a booking or a cancellation. Only this worker's cache: another worker's
 * entry lives out its TTL. */
void schedule_cache_drop(struct worker *w, const char *resource_guid);
void schedule_cache_drop_resource(struct schedule_cache *c, const char *resource_guid);

/* --- the request path --- */

/* e is valid only during the callback; st is STORE_OK with e, or the
 * PostgreSQL failure with e NULL. */
typedef void (*schedule_cb)(struct req *r, const struct schedule_entry *e, enum store_status st);

/* The entry of (lpu, resource) for today: from the cache at once (the
 * callback runs inside this call), or after a fill, shared with any other
 * request that waits for the same one. */
void schedule_get(struct req *r, const char *lpu, const char *resource, int64_t today,
                  schedule_cb cb);

/* A person's birthday (YYYYMMDD) and gender (0 unknown), cached per worker
 * for the TTL: true when known. */
bool schedule_person_find(struct schedule_cache *c, const char *person, int64_t now_us,
                          int *birth_ymd, int *gender);
void schedule_person_put(struct schedule_cache *c, const char *person, int64_t now_us,
                         int birth_ymd, int gender);

#endif
