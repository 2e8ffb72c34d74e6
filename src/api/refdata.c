/* api/refdata.c - POST /mis/v1/lpus, /resources, /cells, /referrals and
 * /dispensary (the project's own): bulk, idempotent uploads of reference
 * data by hospitals' systems.
 *
 * One request is a chain of steps:
 *   type     Content-Type (415)
 *   auth     misauth_require: 401, or the login and its МКОДs; nothing of
 *            the body is read before
 *   parse    the body as a JSON array (400/4110), at most
 *            mis.max_batch_items items (413/4114), every item validated
 *            into the request's arena (the parsed tree is freed at once)
 *   check    for LPUs, the МКОДs named (403)
 *   pg       the kind's SQL function, one round trip: 403 when an item
 *            names an LPU the login does not own (nothing written), else
 *            one result per item
 *   reply    200 [{"Guid","Status","ValidationMessage"}] in item order */
#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "json.h"
#include "log.h"
#include "misauth.h"
#include "pg.h"
#include "refdata.h"
#include "worker.h"

struct upload {
    struct refdata_batch b;
    const struct misauth_login *who; /* arena-owned, for the rest of the request */
};

static void *arena_alloc(void *ctx, size_t n)
{
    return req_alloc(ctx, n);
}

static void upload_reply(struct req *r)
{
    struct upload *u = r->state;
    yajl_gen g = json_gen_new();
    refdata_batch_gen(&u->b, g);
    req_reply_gen(r, 200, g);
}

static void upload_on_pg(PGresult *res, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct upload *u = r->state;
    if (st == STORE_ERROR) {
        /* The functions catch every per-item failure: this is a bug or a
         * schema out of step. SQLSTATE only; the detail would hold data. */
        log_error("refdata %s: SQL function failed, SQLSTATE %s", refdata_kind_name(u->b.kind),
                  pg_sqlstate(res));
        req_fail(r, E_INTERNAL);
        return;
    }
    if (st != STORE_OK || PQntuples(res) != 1) {
        req_fail_store(r, st);
        return;
    }
    char foreign[32];
    switch (refdata_batch_apply(&u->b, PQgetvalue(res, 0, 0), foreign, sizeof(foreign))) {
    case 0:
        upload_reply(r);
        return;
    case 1:
        misauth_forbid(r, u->who, foreign);
        return;
    default:
        req_fail(r, E_INTERNAL);
    }
}

/* Reads the body into the batch: every item validated into the arena, the
 * parsed tree freed before anything asynchronous. Answers and returns false
 * on a body that is not a JSON array or holds too many items. */
static bool upload_read(struct req *r, struct upload *u)
{
    yajl_val root = req_json_body(r);
    if (!root)
        return false;
    if (!YAJL_IS_ARRAY(root)) {
        yajl_tree_free(root);
        req_fail1(r, E_BODY_JSON, "ожидается массив элементов [...]");
        return false;
    }
    int max = r->w->cfg->mis_max_batch_items;
    if (root->u.array.len > (size_t)max) {
        yajl_tree_free(root);
        char n[16];
        snprintf(n, sizeof(n), "%d", max);
        req_fail1(r, E_BATCH_TOO_LARGE, n);
        return false;
    }
    int rc = refdata_batch_build(&u->b, u->b.kind, root, arena_alloc, r);
    yajl_tree_free(root);
    if (rc != 0) {
        req_fail(r, E_INTERNAL);
        return false;
    }
    return true;
}

static void upload_authed(struct req *r, const struct misauth_login *who)
{
    struct upload *u = r->state;
    if (!upload_read(r, u))
        return;
    /* An LPU's МКОД is in the item itself: refuse before PostgreSQL. */
    if (u->b.kind == REFDATA_LPUS) {
        for (int i = 0; i < u->b.n; i++) {
            const struct refdata_item *it = &u->b.items[i];
            if (it->mcod[0] && !misauth_owns(who, it->mcod)) {
                misauth_forbid(r, who, it->mcod);
                return;
            }
        }
    }
    if (u->b.nvalid == 0) {
        upload_reply(r);
        return;
    }
    u->who = who;
    struct buf lit;
    buf_init(&lit);
    bool ok = misauth_mcods_literal(who, &lit);
    const char *allowed = ok ? req_strdup(r, lit.data) : NULL;
    buf_free(&lit);
    if (!ok) {
        req_fail(r, E_INTERNAL);  /* mis_user_lpus' CHECK keeps this from happening */
        return;
    }
    const char *values[] = {u->b.json, allowed};
    enum store_status st = pg_query(r->w->pg, refdata_stmt(u->b.kind), values, upload_on_pg, r);
    if (st != STORE_OK)
        req_fail_store(r, st);
}

/* The first step: nothing of the body is read before the credential is
 * verified, so an unauthenticated client gets 401 and costs no parsing. */
static void upload(struct req *r, enum refdata_kind kind)
{
    struct upload *u = req_alloc(r, sizeof(*u));
    r->state = u;
    u->b.kind = kind;
    if (!req_is_json(r)) {
        req_fail(r, E_CONTENT_TYPE);
        return;
    }
    misauth_require(r, upload_authed);
}

void api_mis_lpus(struct req *r)
{
    upload(r, REFDATA_LPUS);
}

void api_mis_resources(struct req *r)
{
    upload(r, REFDATA_RESOURCES);
}

void api_mis_cells(struct req *r)
{
    upload(r, REFDATA_CELLS);
}

void api_mis_referrals(struct req *r)
{
    upload(r, REFDATA_REFERRALS);
}

void api_mis_dispensary(struct req *r)
{
    upload(r, REFDATA_DISPENSARY);
}
