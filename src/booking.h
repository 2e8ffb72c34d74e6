/* booking.h - booking a cell and cancelling a booking: the steps both
 * booking endpoints (api/booking.c) share.
 *
 * A booking runs, over one request:
 *   lock    Redis, one script that also reads the token's session: a booked
 *           marker of another patient, or the cell's lock held by another
 *           booking → 4009 at once, without PostgreSQL; else the lock is
 *           taken (SET NX PX, a random value that names the patient). Redis
 *           away or slow: on to PostgreSQL alone, which is correct by
 *           itself (and rebuilds the session).
 *   write   PostgreSQL: mip_book (006_booking.sql), one transaction that
 *           checks every rule against the data and inserts the booking and
 *           its history; a unique index makes a second booking of a cell
 *           impossible whatever Redis said (→ 4009).
 *   unlock  Redis, one script, not waited for: the booked marker set (also
 *           after a 4009 that Redis did not know of), the lock deleted only
 *           if it still holds our value. A gateway that dies before this
 *           leaves the lock to expire (booking.lock_ttl_ms).
 *   done    the caller's callback, only after the commit: a 200 means the
 *           booking is durable. Refusals are answered here.
 * The same patient booking the same cell again (a client that lost the
 * first answer) gets the booking it holds, not 4009.
 *
 * A cancellation commits in PostgreSQL first, then deletes the marker
 * (waited for, so that the cell is free in Redis before the answer), then
 * drops this worker's cached schedule of the resource. */
#ifndef MIPGW_BOOKING_H
#define MIPGW_BOOKING_H

#include <stdbool.h>
#include <stdint.h>
#include <yajl/yajl_tree.h>

#include "errors.h"
#include "req.h"
#include "util.h"

struct config;

/* Seed 001's doctor_id and the visit id: two GUIDs glued, 72 characters. */
#define BOOKING_PAIR_LEN (2 * GUID_LEN)

/* Splits a 72-character pair into two lower-case GUIDs. */
bool booking_split_pair(const char *s, char a[GUID_LEN + 1], char b[GUID_LEN + 1]);
/* Epoch seconds of a local (TZ) day and minute of the day. */
int64_t booking_local_epoch(int y, int m, int d, int minutes);
/* Whether a session's "lpu:mkab,..." list holds a card in lpu. */
bool booking_cards_have_lpu(const char *cards, const char *lpu);

enum booking_kind {
    BOOKING_ENTRY,      /* seed 001: RPGU token, lpu_code */
    BOOKING_DIRECTION,  /* seed 002: COD token, a referral, TicketVisitWithLpu */
};

struct booking_result {
    const char *booking;     /* GUID */
    const char *ticket;
    bool existing;           /* the patient held it already: a retry */
    const char *visit;       /* TicketVisitWithLpu JSON (BOOKING_DIRECTION), or NULL */
    size_t visit_len;
};

typedef void (*booking_cb)(struct req *r, const struct booking_result *res);

/* What to book. The handler fills it in the arena and makes it r->state. */
struct booking_req {
    enum booking_kind kind;
    char person[GUID_LEN + 1];
    char lpu[GUID_LEN + 1];
    char resource[GUID_LEN + 1];
    char referral[GUID_LEN + 1];  /* "" none */
    const char *mcod;             /* seed 001's lpu_code; NULL: not checked */
    int64_t begin_s;
    char day[11], time[6];        /* as asked, for messages */
    const char *email, *phone;    /* NULL: not given */
    int email_agree;              /* 0/1, -1 not given */
    const char *source;           /* the token's client application */
    /* the steps' own */
    booking_cb cb;
    struct auth_state *auth;
    bool tried;                   /* the cell's marker was read (then the lock script sent) */
    bool with_session;            /* ... and the token's session with it */
    const char *session;          /* the session read with the marker (arena), or NULL */
    int verdict;                  /* their answer (booking.c's TRY_*) */
    char lock_key[96], marker_key[96], freed_key[96];
    char lock_value[2 * GUID_LEN + 2];
    bool locked;                  /* the lock is ours, or may be (its script missed its
                                   * deadline): let go when the booking is settled */
};

/* Why a booking body was refused: the catalogue's entry and its arguments
 * (they point into the booking_req, or are literals or num; none into the
 * body's tree, which may be freed before the answer). */
struct booking_refusal {
    enum err_id id;            /* E_NONE: not refused */
    const char *args[2];
    int nargs;
    char num[16];              /* a number argument's text */
};
typedef void *(*booking_alloc_fn)(void *ctx, size_t n);

/* Seed 001's body (POST /api/v2/iemk/doctors/entry) into b: the seed's own
 * checks first (4033, 4036), then each field's shape; the visit's day at
 * most horizon days after now's (epoch seconds) and its time not passed.
 * The strings b keeps (mcod, email, phone) are copied with alloc, which
 * must not fail. False, with *why, when refused. */
bool booking_parse_entry(yajl_val root, int64_t now, int horizon, booking_alloc_fn alloc,
                         void *ctx, struct booking_req *b, struct booking_refusal *why);
/* Seed 002's body (POST /api/v2/directions/visit/{lpuGuid}) into b;
 * path_lpu is the path's {lpuGuid} as given, which the body must name. */
bool booking_parse_direction(yajl_val root, const char *path_lpu, int64_t now, int horizon,
                             struct booking_req *b, struct booking_refusal *why);

struct auth_state;
/* Verifies the token of a booking request at once (auth_begin): NULL when
 * answered (403); else the step booking_book goes on with, and the Redis
 * key of the token's session. */
struct auth_state *booking_auth(struct req *r, unsigned accept, const char **session_key);
/* Books; b->person and b->source come from the token's session. */
void booking_book(struct req *r, struct booking_req *b, struct auth_state *auth,
                  const char *session_key, booking_cb cb);

typedef void (*cancel_cb)(struct req *r);

/* Cancels the person's booking (lpu, booking) and answers refusals; the
 * callback answers success. r->state is the function's own. */
void booking_cancel(struct req *r, const char *person, const char *lpu, const char *booking,
                    const char *visit_id, const char *source, cancel_cb cb);

#endif
