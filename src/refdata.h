/* refdata.h - reference data that MIS upload (POST /mis/v1/lpus, resources,
 * cells, referrals, dispensary) and that `mipgw import` loads: validation of
 * each item of a batch into the normalized JSON the SQL functions of
 * src/sql/004_refdata.sql take, and the merge of their answer into one
 * result per item. Both the endpoints and the importer go through here and
 * through the same SQL, so a data set loads exactly as an upload would.
 *
 * Memory comes from the caller's allocator (a request's arena, or a
 * refdata_pool in the importer) and lives as long as it does. */
#ifndef MIPGW_REFDATA_H
#define MIPGW_REFDATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "stmts.h"

enum refdata_kind {
    REFDATA_LPUS,
    REFDATA_RESOURCES,
    REFDATA_CELLS,
    REFDATA_REFERRALS,
    REFDATA_DISPENSARY,
    REFDATA__KINDS
};

/* An item's outcome, as "Status" says it. */
enum refdata_status {
    RD_PENDING = 0,  /* valid, not yet answered by PostgreSQL */
    RD_UPLOADED,     /* created or changed */
    RD_UNCHANGED,    /* already so: nothing written */
    RD_DELETED,      /* removed ("deleted": true) */
    RD_NOT_VALID,    /* a field missing or failing validation, or naming nothing known */
    RD_ERROR,        /* valid, but could not be stored (e.g. a booked cell moved) */
};

#define REFDATA_MAX_MSGS 16
#define REFDATA_MCOD_MAX 7

struct refdata_item {
    char guid[37];                 /* lower case; "" when none or unreadable */
    char mcod[REFDATA_MCOD_MAX + 1]; /* LPUs: the МКОД, for the ownership check */
    enum refdata_status status;
    int nmsgs;
    const char *msgs[REFDATA_MAX_MSGS];
};

typedef void *(*refdata_alloc_fn)(void *ctx, size_t n);

struct refdata_batch {
    enum refdata_kind kind;
    int n;
    struct refdata_item *items;
    int nvalid;
    const char *json;              /* the valid items, normalized: a JSON array */
    refdata_alloc_fn alloc;
    void *ctx;
};

/* "lpus", "resources", ... (the path segment and the import section). */
const char *refdata_kind_name(enum refdata_kind k);
const char *refdata_status_name(enum refdata_status s);
/* The prepared statement that runs the kind's SQL function:
 * $1 the items (jsonb), $2 the login's МКОДs (text[]; NULL: any). */
enum stmt_id refdata_stmt(enum refdata_kind k);

/* Validates every item of arr (a JSON array) into b. Items that fail get
 * RD_NOT_VALID and their messages, each naming its field; the others are
 * RD_PENDING and appear in b->json with their index. Returns 0, or -1 when
 * the allocator failed. */
int refdata_batch_build(struct refdata_batch *b, enum refdata_kind k, yajl_val arr,
                        refdata_alloc_fn alloc, void *ctx);

/* Merges the SQL function's answer (its jsonb as text). Returns 0 when
 * every pending item got its result, 1 when the answer refused the whole
 * batch (forbidden gets the foreign LPU's МКОД), -1 when the answer is not
 * what the function writes. */
int refdata_batch_apply(struct refdata_batch *b, const char *answer, char *forbidden,
                        size_t forbidden_len);

/* The answer to the MIS: [{"Guid", "Status", "ValidationMessage": [...]}],
 * in the order of the items. */
void refdata_batch_gen(const struct refdata_batch *b, yajl_gen g);

/* ISO 8601 date-time with its offset: YYYY-MM-DDThh:mm[:ss[.fff]] and Z,
 * ±hh:mm or ±hhmm; seconds' fractions are dropped. *epoch: UTC seconds. */
bool refdata_parse_datetime(const char *s, int64_t *epoch);
/* "YYYY-MM-DDThh:mm:ssZ" */
void refdata_format_utc(int64_t epoch, char out[21]);

/* A malloc'ed arena for callers without a request (the importer). */
struct refdata_pool;
struct refdata_pool *refdata_pool_new(void);
void *refdata_pool_alloc(void *pool, size_t n);
void refdata_pool_free(struct refdata_pool *p);

/* A deterministic GUID for a cell the importer expands from a template:
 * SHA-256 of resource guid and begin, shaped as a version-5-style UUID. */
void refdata_cell_guid(const char *resource_guid, const char *begin, char out[37]);

#endif
