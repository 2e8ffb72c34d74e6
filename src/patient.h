/* patient.h - the Patient model of seed 003 (POST /patients): validation of
 * one uploaded object into the normalized item that the SQL function
 * mip_patient_upload (src/sql/003_patients.sql) stores in one call, and the synchronous entry the
 * importer uses, so that the demo data set and the HTTP upload go through
 * the same checks and the same SQL.
 *
 * Field names are matched in any letter case. Every problem becomes one
 * message naming its field ("Polis.Number: ..."); validation never stops at
 * the first problem. */
#ifndef MIPGW_PATIENT_H
#define MIPGW_PATIENT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "util.h"

#define PATIENT_STR_MAX 256     /* characters (UTF-8 code points) of any string field */
#define PATIENT_MSGS_MAX 32     /* messages kept; the rest are dropped */
#define PATIENT_MSG_LEN 256
#define PATIENT_MCOD_LEN 8      /* 6-7 digits + NUL */

/* MkabStatus and AttachmentStatus of the seed. */
enum patient_status {
    PATIENT_NONE,        /* AttachmentStatus only */
    PATIENT_UPLOADED,
    PATIENT_NOT_VALID,
    PATIENT_ERROR,
};

struct patient_msgs {
    int n;
    char text[PATIENT_MSGS_MAX][PATIENT_MSG_LEN];
};

/* What validation found. */
struct patient_check {
    bool card_valid;             /* every field of the card passed */
    bool has_attachment;         /* Attachment present and not null */
    bool attachment_valid;       /* ... and it passed */
    char mcod[PATIENT_MCOD_LEN]; /* the card's LPU, "" when missing or bad */
    struct patient_msgs msgs;
    struct buf item;             /* the normalized item (JSON) when card_valid; owner frees */
};

/* Validates one Patient object. today is "YYYY-MM-DD" (no date may be
 * later) or NULL for the local date of the process. Always fills c; the
 * caller frees c->item with patient_check_free. */
void patient_validate(yajl_val v, const char *today, struct patient_check *c);
void patient_check_free(struct patient_check *c);

/* The name of a status as the seed writes it. */
const char *patient_status_name(enum patient_status s);
/* Adds a message (printf-style), dropped when the list is full. */
void patient_msg(struct patient_msgs *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* What one upload came to: the seed's answer. */
struct patient_result {
    enum patient_status mkab;
    enum patient_status attachment;
    char person[GUID_LEN + 1];   /* "" when none */
    char mkab_guid[GUID_LEN + 1];
    char attachment_guid[GUID_LEN + 1];
    bool changed;                /* the person's cards or identity changed: drop caches */
    struct patient_msgs msgs;
};

/* The answer of one upload from validation alone (NotValid, no guids) when
 * the card failed, or from validation and the SQL function's JSON answer
 * (json != NULL): validation's messages first, then the store's; an
 * attachment that failed validation was not sent and is NotValid. Returns
 * false when json is not what the function returns. */
bool patient_result_make(const struct patient_check *c, const char *json, size_t len,
                         struct patient_result *res);
/* Writes the seed's answer object: MkabStatus, AttachmentStatus,
 * PersonGuid, MkabGuid, AttachmentGuid, ValidationMessage. */
void patient_result_gen(const struct patient_result *res, yajl_gen g);

/* Synchronous upload for `mipgw import`: the same validation and the same
 * SQL function, on the caller's connection (inside its transaction if it
 * opened one). allowed NULL: any LPU. Returns the MkabStatus, or -1 when
 * PostgreSQL failed (msg says how; the caller should roll back). msg gets
 * the messages joined by "; ". */
int patient_import(PGconn *c, yajl_val item, const char *const *allowed, int nallowed,
                   struct buf *msg);

#endif
