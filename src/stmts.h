/* stmts.h - every SQL statement the request path runs, by name. Each pool
 * connection prepares all of them on connect; the CLI commands use the same
 * text. Parameters are always bound, never spliced into SQL. */
#ifndef MIPGW_STMTS_H
#define MIPGW_STMTS_H

#include <stdbool.h>

#include "util.h"

enum stmt_id {
    STMT_PING,
    STMT_CLIENT_APPS,
    /* identity look-ups: each returns the person columns of IDENT_COLUMNS */
    STMT_IDENT_BY_POLIS,
    STMT_IDENT_BY_SNILS,
    STMT_IDENT_BY_PERSON,
    STMT_IDENT_BY_MKAB,
    STMT_IDENT_BY_PASSPORT,
    /* an MIS login: password_hash, is_disabled, its МКОДs "a,b" */
    STMT_MIS_LOGIN,
    /* reference-data uploads (004_refdata.sql): $1 items jsonb, $2 МКОДs text[] */
    STMT_REFDATA_LPUS,
    STMT_REFDATA_RESOURCES,
    STMT_REFDATA_CELLS,
    STMT_REFDATA_REFERRALS,
    STMT_REFDATA_DISPENSARY,
    /* POST /patients and the importer: Patients, each stored as one call of
     * mip_patient_upload, several in one transaction (batchable) */
    STMT_PATIENT_UPLOAD,
    /* the schedule view (schedule.c) */
    STMT_SCHEDULE_FILL,
    STMT_SCHEDULE_CHECK,
    STMT_SCHEDULE_PERSON,
    /* booking (006_booking.sql): $1 the request as jsonb */
    STMT_BOOK,
    STMT_CANCEL,
    STMT_VISITS,
    STMT_CAB_UR_CREATE,
    STMT_CAB_UR_GET,
    STMT_CAB_REGISTER,
    STMT_CAB_SWEEP,
    STMT__COUNT
};

/* Columns of an identity look-up's rows. */
enum ident_column {
    IDENT_COL_PERSON,
    IDENT_COL_BIRTHDAY,       /* YYYY-MM-DD */
    IDENT_COL_FAMILY_KEY,     /* folded names */
    IDENT_COL_NAME_KEY,
    IDENT_COL_PATRONYMIC_KEY,
    IDENT_COL_SNILS,          /* bare digits or "" */
    IDENT_COL_CARDS,          /* "lpu:mkab,lpu:mkab" of open cards */
    IDENT_NCOLS
};

struct pg_stmt {
    const char *name;
    const char *sql;
    int nparams;
    /* Batchable: the statement stores several calls at once, in one
     * transaction. Each parameter is a JSON array with one element per call
     * (see stmt_batch_values), and the answer is one row per call, in order.
     * A call's answer must not depend on being alone: the pool (pg.c) runs
     * calls that queued up together, and runs them one by one again when
     * the batch fails. */
    bool batch;
    unsigned json_params;  /* bit i: parameter i is JSON text, put in its array as it is */
};

extern const struct pg_stmt pg_stmts[STMT__COUNT];

/* The values of a batchable statement for n calls: out[i] (the caller's,
 * initialized) gets parameter i as a JSON array of the calls' values i,
 * calls[k][i] for call k: JSON text as it is, other text as a JSON string,
 * NULL as null. */
void stmt_batch_values(enum stmt_id stmt, const char *const *const *calls, int n, struct buf *out);

#endif
