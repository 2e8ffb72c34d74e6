/* api/patients.c - POST /patients (seed 003): a hospital's system (MIS)
 * uploads one patient's medical card.
 *
 * A chain of steps over one request, in this order, so that a client that
 * has not authenticated learns nothing about its body:
 *   type    Content-Type application/json                  → 415
 *   auth    misauth_require: HTTP Basic                    → 401 (misauth)
 *   body    size, JSON (synchronously in the auth callback) → 413/400
 *   valid   validation (src/patient.c); the tree is freed here, only the
 *           arena's copy of the normalized item goes on
 *   owner   a well-formed МКОД the login does not own      → 403
 *           a card that failed validation                  → 200 NotValid
 *   pg      mip_patient_upload, atomic, in one transaction with the
 *           uploads that queued up beside it (pg.c batches) → 503/500
 *   forget  a change of the person's cards drops their cached look-ups
 *           and token sessions (identity_forget_person)
 *   reply   200 {MkabStatus, AttachmentStatus, PersonGuid, MkabGuid,
 *                AttachmentGuid, ValidationMessage} */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "identity.h"
#include "json.h"
#include "misauth.h"
#include "patient.h"
#include "pg.h"
#include "worker.h"

/* One patient is a few KiB; a body far larger is not one. */
#define PATIENTS_MAX_BODY (64 * 1024)

struct upload {
    struct patient_check check;  /* .item freed at once; item_json is the arena's copy */
    const char *item_json;
    const char *allowed;         /* "{mcod,...}" of the login */
    struct patient_result res;
};

static void upload_reply(struct req *r)
{
    struct upload *u = r->state;
    yajl_gen g = json_gen_new();
    patient_result_gen(&u->res, g);
    req_reply_gen(r, 200, g);
}

static void upload_on_forgotten(void *arg)
{
    upload_reply(arg);  /* Redis failing here only means the caches expire by themselves */
}

static void upload_on_pg(PGresult *res, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct upload *u = r->state;
    /* A unique index refusing the write is a race the function's locks do
     * not cover (a card's person changing under another upload at once):
     * nothing was written, and the MIS may send the card again. Answered
     * here rather than caught in the function, which would cost every call
     * a subtransaction. */
    static const char raced[] =
        "{\"MkabStatus\":\"Error\",\"AttachmentStatus\":\"None\",\"PersonGuid\":null,"
        "\"MkabGuid\":null,\"AttachmentGuid\":null,\"ValidationMessage\":"
        "[\"Guid: карта изменена одновременно другой загрузкой; повторите\"],\"Changed\":false}";
    bool race = st == STORE_ERROR && strcmp(pg_sqlstate(res), "23505") == 0;
    if (st != STORE_OK && !race) {
        req_fail_store(r, st);
        return;
    }
    if (race ? !patient_result_make(&u->check, raced, sizeof(raced) - 1, &u->res)
             : PQntuples(res) != 1 ||
                   !patient_result_make(&u->check, PQgetvalue(res, 0, 0),
                                        (size_t)PQgetlength(res, 0, 0), &u->res)) {
        req_fail(r, E_INTERNAL);
        return;
    }
    if (u->res.mkab == PATIENT_UPLOADED && u->res.changed && u->res.person[0]) {
        identity_forget_person(r->w->redis, r->w->cfg, u->res.person, upload_on_forgotten, r);
        return;
    }
    upload_reply(r);
}

/* Parses and validates the body into u->check (the tree freed before
 * returning). Returns false when the request was answered (413/400). */
static bool upload_parse(struct req *r, struct upload *u)
{
    yajl_val root = req_json_object(r, PATIENTS_MAX_BODY, "ожидается объект Patient");
    if (!root)
        return false;
    patient_validate(root, NULL, &u->check);
    yajl_tree_free(root);
    u->item_json = req_strdup(r, u->check.item.data ? u->check.item.data : "");
    patient_check_free(&u->check);
    return true;
}

static void upload_authorized(struct req *r, const struct misauth_login *who)
{
    struct upload *u = r->state;
    if (!upload_parse(r, u))
        return;
    /* A card for a foreign LPU is refused as such, whatever else is wrong
     * with it: a login learns nothing of another LPU's rules. */
    if (u->check.mcod[0] && !misauth_owns(who, u->check.mcod)) {
        misauth_forbid(r, who, u->check.mcod);
        return;
    }
    if (!u->check.card_valid) {
        patient_result_make(&u->check, NULL, 0, &u->res);
        upload_reply(r);
        return;
    }
    struct buf lit;
    buf_init(&lit);
    bool ok = misauth_mcods_literal(who, &lit);
    u->allowed = ok ? req_strdup(r, lit.data) : NULL;
    buf_free(&lit);
    if (!ok) {
        req_fail(r, E_INTERNAL);  /* mis_user_lpus' CHECK keeps this from happening */
        return;
    }
    const char *values[] = {u->item_json, u->allowed};
    enum store_status st = pg_query(r->w->pg, STMT_PATIENT_UPLOAD, values, upload_on_pg, r);
    if (st != STORE_OK)
        req_fail_store(r, st);
}

void api_patients_upload(struct req *r)
{
    struct upload *u = req_alloc(r, sizeof(*u));
    r->state = u;
    if (!req_is_json(r)) {
        req_fail(r, E_CONTENT_TYPE);
        return;
    }
    /* Nothing of the body is read before the login is known. */
    misauth_require(r, upload_authorized);
}
