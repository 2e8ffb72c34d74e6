/* errors.h - the error catalogue: one entry per answer the gateway can give
 * that is not a plain success. Each entry pairs the HTTP status, the internal
 * code (Message_code), the type (Error or Validation) and the message, letter
 * for letter as the seeds write it; {placeholders} are filled in order.
 * docs/errors.md lists the same table. Codes of the project's own range:
 * 41xx for malformed requests, 42xx/50xx for the service itself. */
#ifndef MIPGW_ERRORS_H
#define MIPGW_ERRORS_H

#include <stdio.h>
#include <yajl/yajl_gen.h>

#include "util.h"

enum err_id {
    E_NONE = 0,
    /* notices (2xxx) */
    E_VISIT_CANCELLED,        /* 200 2000 */
    /* seeds 000-002 */
    E_NO_MKAB_IN_LPU,         /* 400 4000 */
    E_NO_CARDS,               /* 404 4001 */
    E_NO_EMK,                 /* 404 4001 (seed 002) */
    E_CHILDREN_LPU,           /* 400 4005 */
    E_SELF_BOOKING_BLOCKED,   /* 400 4007 */
    E_NOT_ON_DISPENSARY,      /* 400 4007 */
    E_ONE_PER_SPECIALITY,     /* 400 4008 */
    E_CELL_TAKEN,             /* 400 4009 */
    E_AGE_GROUP,              /* 400 4029 */
    E_DIRECTION_UNKNOWN,      /* 400 4031 */
    E_DIRECTION_PAIR,         /* 400 4033 */
    E_TIME_OR_CELL_EMPTY,     /* 400 4036 */
    E_SCHEDULE_PERIOD,        /* 400 5066 */
    E_TOKEN_EXPIRED,          /* 403 5007 */
    E_TOKEN_INVALID,          /* 403 5008 */
    E_TOKEN_SIGNATURE,        /* 403 5009 */
    E_TOKEN_MISSING,          /* 403 5010 */
    E_CLIENT_APP_UNKNOWN,     /* 403 5096 */
    E_EMK_CLOSED,             /* 403 5096 (seed 002) */
    E_CARDS_UNAVAILABLE,      /* 500 5097 */
    /* the project's own: malformed requests (41xx) */
    E_PARAM_REQUIRED,         /* 400 4100 {field} */
    E_PARAM_FORMAT,           /* 400 4101 {field} */
    E_PARAM_CHECKSUM,         /* 400 4102 {field} */
    E_PARAM_PAIR,             /* 400 4103 {field} {field} */
    E_PARAM_COMBINATION,      /* 400 4104 */
    E_PARAM_UNEXPECTED,       /* 400 4105 {field} */
    E_PARAM_TOO_MANY,         /* 400 4106 */
    E_BODY_JSON,              /* 400 4110 */
    E_BODY_TOO_LARGE,         /* 413 4113 */
    E_CONTENT_TYPE,           /* 415 4115 */
    E_NOT_FOUND,              /* 404 4140 */
    E_METHOD,                 /* 405 4150 */
    E_RATE_LIMITED,           /* 429 4290 */
    E_DATE_ORDER,             /* 400 4107 {field} {field} */
    E_BATCH_TOO_LARGE,        /* 413 4114 {max} */
    E_MIS_UNAUTHORIZED,       /* 401 4120 */
    E_MIS_FORBIDDEN_LPU,      /* 403 4121 {login} {lpu} */
    E_LPU_NOT_FOUND,          /* 404 4141 {lpu} */
    E_RESOURCE_NOT_FOUND,     /* 404 4142 {resource} {lpu} */
    E_VISIT_NOT_FOUND,        /* 404 4143 {visitId} */
    E_LPU_MISMATCH,           /* 400 4108 {field} {field} */
    E_CELL_NONE,              /* 400 4130 {date} {time} */
    E_CELL_PAST,              /* 400 4131 {date} {time} */
    E_CELL_CLOSED,            /* 400 4132 */
    E_REFERRAL_REQUIRED,      /* 400 4133 */
    E_CANCEL_PAST,            /* 400 4135 DeleteOldTime */
    E_CANCEL_VISITED,         /* 400 4136 DeleteVisitStatus */
    /* the project's own: the service (50xx) */
    E_INTERNAL,               /* 500 5000 */
    E_STORE_UNAVAILABLE,      /* 503 5030 */
    E_OVERLOADED,             /* 503 5031 */
    E_SHUTTING_DOWN,          /* 503 5032 */
    E_UPSTREAM_LOST,          /* 502 5033: nginx's, when a gateway died with the request */
    E__COUNT
};

enum err_type {
    ERR_TYPE_ERROR,
    ERR_TYPE_VALIDATION,
};

struct err_def {
    enum err_id id;
    int http_status;
    const char *code;        /* Message_code, a string as the vendor sends it */
    enum err_type type;
    const char *message;     /* with {placeholders} */
};

const struct err_def *err_get(enum err_id id);
/* The entry's enum name ("E_CELL_TAKEN"), as docs/errors.md lists it. */
const char *err_name(enum err_id id);

/* The eHealth cabinet's own catalogue (issue 5): its routes answer every
 * error in the eHealth envelope, {"meta": {code, url, type, request_id},
 * "error": {type, message[, invalid]}}, never in the МИП body. */
enum eh_err_id {
    EH_NONE = 0,
    EH_ACCESS_DENIED,         /* 401 access_denied: the UserRequest JWT */
    EH_JWT_EXPIRED,           /* 401 jwt_expired */
    EH_CLIENT_UNAUTHORIZED,   /* 401 access_denied: the trusted caller's Basic credential */
    EH_CLIENT_FORBIDDEN,      /* 403 forbidden: a login that is not a cabinet client */
    EH_NOT_FOUND,             /* 404 not_found */
    EH_METHOD,                /* 405 method_not_allowed */
    EH_UR_GONE,               /* 409 request_conflict: UserRequest missing, expired or spent */
    EH_PERSON_MISMATCH,       /* 409 request_conflict: tax id or names differ from the UserRequest */
    EH_TAX_ID_EXISTS,         /* 409 tax_id_exists */
    EH_MALFORMED,             /* 400 request_malformed {reason} */
    EH_TOO_LARGE,             /* 413 request_too_large */
    EH_CONTENT_TYPE,          /* 415 content_type_invalid */
    EH_VALIDATION,            /* 422 validation_failed, with "invalid" */
    EH_RATE_LIMITED,          /* 429 too_many_requests */
    EH_INTERNAL,              /* 500 internal_error */
    EH_SMS_FAILED,            /* 503 sms_not_sent */
    EH_UNAVAILABLE,           /* 503 service_unavailable */
    EH_OVERLOADED,            /* 503 service_overloaded */
    EH_SHUTTING_DOWN,         /* 503 shutting_down */
    EH_UPSTREAM_LOST,         /* 502 upstream_lost: nginx's */
    EH__COUNT
};

struct eh_err_def {
    enum eh_err_id id;
    int http_status;
    const char *type;        /* error.type */
    const char *message;     /* error.message, with {placeholders} */
};

const struct eh_err_def *err_eh_get(enum eh_err_id id);
const char *err_eh_name(enum eh_err_id id);
/* The eHealth twin of a МИП entry that a shared layer (body limits, JSON
 * parsing, Basic auth, the stores, shutdown) answers with. */
enum eh_err_id err_eh_twin(enum err_id id);
/* Writes the envelope's "meta" key and object {code, url, type "object",
 * request_id} into g, inside the open top-level map: the success envelope
 * (req.c) and the error envelope below share it. */
void err_eh_meta(yajl_gen g, int status, const char *url, const char *request_id);
/* The eHealth envelope into out (reset first): meta {code, url, type
 * "object", request_id} and error {type, message[, invalid]}. invalid is
 * the JSON text of the "invalid" array, or NULL. */
void err_eh_body(enum eh_err_id id, const char *const *args, int nargs, const char *url,
                 const char *request_id, const char *invalid, struct buf *out);
/* Fills the placeholders of id's message with args, in order; a missing arg
 * leaves an empty string. The result goes into out (reset first). */
void err_message(enum err_id id, const char *const *args, int nargs, struct buf *out);
/* The МИП standard body {"Code","Message_code","Message"} into out. */
void err_body(enum err_id id, const char *const *args, int nargs, struct buf *out);
/* The same without arguments, made once for the process (placeholders
 * left empty): a pointer valid until exit. */
const char *err_plain_body(enum err_id id, size_t *len);
const char *err_type_name(enum err_type t);
/* The whole catalogue as Markdown, an introduction and one table row per
 * entry: docs/errors.md is this output (mipgw --list-errors). */
void err_write_markdown(FILE *out);

#endif
