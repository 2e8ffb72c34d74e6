/* api/cabinet.c - the Ukrainian eHealth cabinet sign-up (seed 004, issue 5),
 * the whole flow in the gateway:
 *
 *   POST /private/cabinet/user_requests              a trusted client (Basic auth, a login of
 *        {tax_id, first_name, last_name, email}      ehealth.clients): what the national login's
 *                                                    callback vouched for → 201 {id, token, expires_at}
 *   POST /private/cabinet/verifications              a trusted client: an SMS code for a phone
 *        {phone_number}                              → 201 (the code goes by SMS only)
 *   POST /private/cabinet/registration/user_request  Bearer <the UserRequest's token>, seed 004's
 *        {otp, password, patient}                    body → 201 {patient, factor, user, access_token}
 *
 * Every error is in the eHealth envelope (r->ehealth). The registration's
 * chain, in the reference's order:
 *   token     signature, algorithm, expiry, user_request_id  → 401 access_denied / jwt_expired
 *   body      size, JSON, UTF-8, depth (req_json_object)     → 413 / 400
 *   sync      the schema is judged and every value the later steps need is
 *             copied to the arena; the tree is freed here
 *   request   the UserRequest alive, and its tax id's user   → 409 (PostgreSQL)
 *   schema    the report made above                          → 422 validation_failed
 *   otp       the patient's OTP phone and code (Redis)       → 422 at $.otp
 *             (a refused code re-reads the UserRequest: a twin that won
 *             meanwhile spent it and deleted the code      → 409)
 *   match     tax id and names against the UserRequest       → 409
 *   user      no user with the tax id yet                    → 409 tax_id_exists
 *   password  the policy                                     → 422 at $.password
 *   hash      argon2id on the hashing threads                → 503 when they are full
 *   write     mip_cab_register: person, user, factor, token,
 *             the request spent, one transaction             → 201, or 409 if a twin won
 *   spend     the OTP is forgotten (not waited for). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "config.h"
#include "ehealth_schema.h"
#include "hasher.h"
#include "json.h"
#include "log.h"
#include "misauth.h"
#include "otp.h"
#include "pg.h"
#include "sms.h"
#include "token.h"
#include "worker.h"

#define CABINET_ACCESS_TOKEN_BYTES 32   /* 256 random bits, 43 URL-safe characters */
#define CABINET_SMS_TEXT "Код авторизації дій в системі eHealth: "

/* --- shared steps --- */

/* The cabinet runs only with a key to sign its tokens (demo mode has one). */
static bool cabinet_enabled(struct req *r)
{
    if (r->w->keys.cabinet)
        return true;
    req_reply_eh_error(r, EH_NOT_FOUND, NULL, 0, NULL);
    return false;
}

static void reply_invalid(struct req *r, struct ehs_report *rep)
{
    struct buf invalid;
    buf_init(&invalid);
    ehs_report_json(rep, &invalid);
    ehs_report_free(rep);
    req_reply_eh_error(r, EH_VALIDATION, NULL, 0, invalid.data);
    buf_free(&invalid);
}

/* One 422 entry of a custom rule at path. */
static void reply_invalid_one(struct req *r, const char *path, const char *description)
{
    struct ehs_report rep;
    ehs_report_init(&rep);
    ehs_add(&rep, path, "invalid", description, "[]");
    reply_invalid(r, &rep);
}

/* A single-row answer, or the failure answered (through fail). */
static bool one_row(struct req *r, PGresult *res, enum store_status st,
                    void (*fail)(struct req *, enum store_status))
{
    if (st == STORE_OK && PQntuples(res) == 1)
        return true;
    fail(r, st == STORE_OK ? STORE_ERROR : st);
    return false;
}


/* The body of a trusted client's request, validated by check; NULL when
 * answered. The caller frees the tree. */
static yajl_val client_body(struct req *r, const struct misauth_login *who,
                            int (*check)(yajl_val, struct ehs_report *))
{
    if (!util_list_has(r->w->cfg->ehealth_clients, who->login)) {
        req_reply_eh_error(r, EH_CLIENT_FORBIDDEN, NULL, 0, NULL);
        return NULL;
    }
    yajl_val root = req_json_object(r, (size_t)r->w->cfg->ehealth_max_body, "an object");
    if (!root)
        return NULL;
    struct ehs_report rep;
    ehs_report_init(&rep);
    if (check(root, &rep) > 0) {
        yajl_tree_free(root);
        reply_invalid(r, &rep);
        return NULL;
    }
    ehs_report_free(&rep);
    return root;
}

/* Every cabinet body is JSON; a trusted client's request authenticates
 * before its body is read. */
static void client_start(struct req *r, misauth_cb cb)
{
    if (!cabinet_enabled(r))
        return;
    if (!req_is_json(r)) {
        req_fail(r, E_CONTENT_TYPE);
        return;
    }
    misauth_require(r, cb);
}

static const char *str_of(yajl_val root, const char *key)
{
    const char *path[] = {key, NULL};
    return YAJL_GET_STRING(yajl_tree_get(root, path, yajl_t_string));
}

/* --- POST /private/cabinet/user_requests --- */

struct ur_create {
    char id[GUID_LEN + 1];
};

static void ur_on_pg(PGresult *res, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct ur_create *u = r->state;
    if (!one_row(r, res, st, req_fail_store))
        return;
    const struct token_keys *k = &r->w->keys;
    long long exp = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    char *token = token_ur_sign(k->cabinet, k->cabinet_len, k->cabinet_alg, u->id,
                                util_wall_us() / 1000000, exp);
    if (!token) {
        req_reply_eh_error(r, EH_INTERNAL, NULL, 0, NULL);
        return;
    }
    char expires[32];
    util_format_time(exp, expires);
    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);
    json_gen_kv_str(g, "id", u->id);
    json_gen_kv_str(g, "token", token);
    json_gen_kv_str(g, "expires_at", expires);
    yajl_gen_map_close(g);
    free(token);
    req_reply_eh_gen(r, 201, g);
}

static void ur_authorized(struct req *r, const struct misauth_login *who)
{
    yajl_val root = client_body(r, who, ehs_validate_user_request);
    if (!root)
        return;
    struct ur_create *u = req_alloc(r, sizeof(*u));
    r->state = u;
    util_guid(u->id);
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", r->w->cfg->ehealth_user_request_ttl_s);
    const char *values[] = {u->id, str_of(root, "tax_id"), str_of(root, "first_name"),
                            str_of(root, "last_name"), str_of(root, "email"), who->login, ttl};
    enum store_status st = pg_query(r->w->pg, STMT_CAB_UR_CREATE, values, ur_on_pg, r);
    yajl_tree_free(root);
    if (st != STORE_OK)
        req_fail_store(r, st);
}

void api_cabinet_user_request(struct req *r)
{
    client_start(r, ur_authorized);
}

/* --- POST /private/cabinet/verifications --- */

struct otp_request {
    char phone[16];
    char code[OTP_LEN + 1];
    int64_t expires_s;
};

static void otp_on_sent(struct req *r, bool sent, void *arg)
{
    struct otp_request *o = arg;
    explicit_bzero(o->code, sizeof(o->code));
    if (!sent) {
        req_reply_eh_error(r, EH_SMS_FAILED, NULL, 0, NULL);
        return;
    }
    char expires[32];
    util_format_time(o->expires_s, expires);
    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);
    json_gen_kv_str(g, "phone_number", o->phone);
    json_gen_kv_str(g, "status", "NEW");
    json_gen_kv_bool(g, "active", true);
    json_gen_kv_str(g, "code_expired_at", expires);
    yajl_gen_map_close(g);
    req_reply_eh_gen(r, 201, g);
}

static void otp_on_issued(struct req *r, enum otp_verdict v, enum store_status st, void *arg)
{
    struct otp_request *o = arg;
    if (v != OTP_OK) {
        explicit_bzero(o->code, sizeof(o->code));
        if (v == OTP_RATE_LIMITED)
            req_reply_eh_error(r, EH_RATE_LIMITED, NULL, 0, NULL);
        else
            req_fail_store(r, st);
        return;
    }
    char text[sizeof(CABINET_SMS_TEXT) + OTP_LEN];
    snprintf(text, sizeof(text), "%s%s", CABINET_SMS_TEXT, o->code);
    sms_send(r, o->phone, text, otp_on_sent, o);
    explicit_bzero(text, sizeof(text));
}

static void otp_authorized(struct req *r, const struct misauth_login *who)
{
    yajl_val root = client_body(r, who, ehs_validate_otp_request);
    if (!root)
        return;
    struct otp_request *o = req_alloc(r, sizeof(*o));
    util_strlcpy(o->phone, str_of(root, "phone_number"), sizeof(o->phone));
    yajl_tree_free(root);
    o->expires_s = util_wall_us() / 1000000 + r->w->cfg->ehealth_otp_ttl_s;
    otp_issue(r, o->phone, o->code, otp_on_issued, o);
}

void api_cabinet_otp(struct req *r)
{
    client_start(r, otp_authorized);
}

/* --- POST /private/cabinet/registration/user_request --- */

/* What the registration carries across its asynchronous steps: copies in
 * the arena (the JSON tree is freed before the first store is asked). */
struct reg {
    char ur_id[GUID_LEN + 1];
    struct ehs_report schema;        /* judged at once, answered after the UserRequest */
    const char *otp, *otp_phone;
    char *password;                  /* wiped once hashed or refused */
    const char *tax_id, *first_name, *last_name;
    const char *patient_json;        /* preferred_way_communication forced to "phone" */
    bool user_exists;                /* the UserRequest's tax id has a user already */
    enum otp_verdict otp_verdict;    /* a refused code, told once the UserRequest is re-read */
    bool claiming;                   /* the second look at the code: claiming it */
    char ur_tax_id[11];
    const char *ur_first_name, *ur_last_name;
    struct hasher_job hash;
    char access_token[48];
    char token_sha256[65];
};

static void reg_wipe(struct reg *g)
{
    if (g->password)
        explicit_bzero(g->password, strlen(g->password));
    explicit_bzero(g->access_token, sizeof(g->access_token));
}

/* Ends the request with an eHealth error, the secrets wiped first. */
static void reg_fail(struct req *r, enum eh_err_id id)
{
    struct reg *g = r->state;
    reg_wipe(g);
    ehs_report_free(&g->schema);
    req_reply_eh_error(r, id, NULL, 0, NULL);
}

static void reg_fail_store(struct req *r, enum store_status st)
{
    reg_fail(r, err_eh_twin(req_store_error(st)));
}

static void reg_on_written(PGresult *res, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct reg *g = r->state;
    if (!one_row(r, res, st, reg_fail_store))
        return;
    char err[64];
    yajl_val ans = json_parse(PQgetvalue(res, 0, 0), strlen(PQgetvalue(res, 0, 0)), JSON_MAX_DEPTH,
                              err, sizeof(err));
    const char *verdict = ans ? str_of(ans, "r") : NULL;
    if (!verdict || strcmp(verdict, "ok") != 0) {
        /* A twin registration won the race between our check and our write. */
        enum eh_err_id id = !verdict ? EH_INTERNAL
                            : strcmp(verdict, "tax_id_exists") == 0 ? EH_TAX_ID_EXISTS
                                                                     : EH_UR_GONE;
        yajl_tree_free(ans);
        reg_fail(r, id);
        return;
    }
    otp_consume(r, g->otp_phone, g->ur_tax_id);

    char masked[14];
    ehs_mask_phone(g->otp_phone, masked);
    const char *pp[] = {"patient", NULL}, *up[] = {"user", NULL};
    yajl_gen gen = json_gen_new();
    yajl_gen_map_open(gen);
    json_gen_str(gen, "patient");
    json_gen_value(gen, yajl_tree_get(ans, pp, yajl_t_object));
    json_gen_str(gen, "factor");
    yajl_gen_map_open(gen);
    json_gen_kv_str(gen, "type", "SMS");
    json_gen_kv_str(gen, "factor", masked);
    json_gen_kv_bool(gen, "is_active", true);
    yajl_gen_map_close(gen);
    json_gen_str(gen, "user");
    json_gen_value(gen, yajl_tree_get(ans, up, yajl_t_object));
    json_gen_kv_str(gen, "access_token", g->access_token);
    yajl_gen_map_close(gen);
    yajl_tree_free(ans);
    reg_wipe(g);
    req_reply_eh_gen(r, 201, gen);
}

static void reg_on_hashed(struct hasher_job *j, void *arg)
{
    struct req *r = arg;
    struct reg *g = r->state;
    reg_wipe(g);   /* the password; the token is made below */
    if (!j->ok) {
        reg_fail(r, EH_INTERNAL);
        return;
    }
    unsigned char raw[CABINET_ACCESS_TOKEN_BYTES];
    util_random(raw, sizeof(raw));
    util_b64url(raw, sizeof(raw), g->access_token);
    explicit_bzero(raw, sizeof(raw));
    util_sha256_hex(g->access_token, strlen(g->access_token), g->token_sha256);

    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", r->w->cfg->ehealth_access_token_ttl_s);
    const char *values[] = {g->ur_id, g->patient_json, j->encoded, g->otp_phone, g->token_sha256,
                            ttl};
    enum store_status st = pg_query(r->w->pg, STMT_CAB_REGISTER, values, reg_on_written, r);
    explicit_bzero(j->encoded, sizeof(j->encoded));
    if (st != STORE_OK)
        reg_fail_store(r, st);
}

static void reg_on_otp(struct req *r, enum otp_verdict v, enum store_status st, void *arg);

/* The code claimed: the password's hash, then the write. */
static void reg_hash(struct req *r)
{
    struct reg *g = r->state;
    g->hash.op = HASHER_HASH;
    g->hash.password = g->password;
    g->hash.password_len = strlen(g->password);
    g->hash.cb = reg_on_hashed;
    g->hash.arg = r;
    if (!hasher_submit(r->w->base, &g->hash))
        reg_fail(r, EH_OVERLOADED);
}

/* The steps after the OTP, all on what is in hand: match, user, password;
 * then the code is claimed for this person (nothing left to refuse it). */
static void reg_checked(struct req *r)
{
    struct reg *g = r->state;
    if (!g->tax_id || strcmp(g->tax_id, g->ur_tax_id) != 0 ||
        !ehs_names_match(g->first_name, g->ur_first_name) ||
        !ehs_names_match(g->last_name, g->ur_last_name)) {
        reg_fail(r, EH_PERSON_MISMATCH);
        return;
    }
    if (g->user_exists) {
        reg_fail(r, EH_TAX_ID_EXISTS);
        return;
    }
    if (!ehs_password_ok(g->password)) {
        reg_wipe(g);
        reply_invalid_one(r, "$.password", "Password does not meet complexity requirements");
        return;
    }
    g->claiming = true;
    otp_check(r, g->otp_phone, g->otp, g->ur_tax_id, true, reg_on_otp, NULL);
}

/* STMT_CAB_UR_GET's answer: true when the UserRequest is alive, else the
 * request is answered (409, or the store's failure). */
static bool reg_ur_alive(struct req *r, PGresult *res, enum store_status st)
{
    if (st != STORE_OK) {
        reg_fail_store(r, st);
        return false;
    }
    if (PQntuples(res) != 1) {
        reg_fail(r, EH_UR_GONE);
        return false;
    }
    return true;
}

/* The code was refused; is the UserRequest still unspent? */
static void reg_on_otp_refused(PGresult *res, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct reg *g = r->state;
    if (!reg_ur_alive(r, res, st))
        return;
    reg_wipe(g);
    reply_invalid_one(r, "$.otp", otp_verdict_message(g->otp_verdict));
}

static void reg_on_otp(struct req *r, enum otp_verdict v, enum store_status st, void *arg)
{
    (void)arg;
    if (v == OTP_STORE_FAILED) {
        reg_fail_store(r, st);
        return;
    }
    if (v != OTP_OK) {
        /* A twin that registered meanwhile deletes the code it used: its
         * losers must hear 409, as they would have a moment earlier, not
         * be sent for a new code. The UserRequest is asked again. */
        struct reg *g = r->state;
        g->otp_verdict = v;
        const char *values[] = {g->ur_id};
        enum store_status qs = pg_query(r->w->pg, STMT_CAB_UR_GET, values, reg_on_otp_refused, r);
        if (qs != STORE_OK)
            reg_fail_store(r, qs);
        return;
    }
    struct reg *g = r->state;
    if (g->claiming)
        reg_hash(r);
    else
        reg_checked(r);
}

static void reg_on_user_request(PGresult *res, enum store_status st, void *arg)
{
    struct req *r = arg;
    struct reg *g = r->state;
    if (!reg_ur_alive(r, res, st))
        return;
    if (g->schema.n > 0) {
        reg_wipe(g);
        reply_invalid(r, &g->schema);
        return;
    }
    ehs_report_free(&g->schema);
    util_strlcpy(g->ur_tax_id, PQgetvalue(res, 0, 0), sizeof(g->ur_tax_id));
    g->ur_first_name = req_strdup(r, PQgetvalue(res, 0, 1));
    g->ur_last_name = req_strdup(r, PQgetvalue(res, 0, 2));
    g->user_exists = strcmp(PQgetvalue(res, 0, 4), "t") == 0;
    otp_check(r, g->otp_phone, g->otp, g->ur_tax_id, false, reg_on_otp, NULL);
}

/* The patient as it will be stored: every field as given (the input's
 * preferred_way_communication dropped already) and
 * preferred_way_communication "phone". */
static const char *reg_patient_json(struct req *r, yajl_val patient)
{
    yajl_gen gen = json_gen_new();
    yajl_gen_map_open(gen);
    for (size_t i = 0; i < patient->u.object.len; i++) {
        const char *k = patient->u.object.keys[i];
        json_gen_str(gen, k);
        json_gen_value(gen, patient->u.object.values[i]);
    }
    json_gen_kv_str(gen, "preferred_way_communication", "phone");
    yajl_gen_map_close(gen);
    struct buf out;
    buf_init(&out);
    json_gen_finish(gen, &out);
    const char *s = req_strdup(r, out.data);
    buf_free(&out);
    return s;
}

/* The reference's step 3, before the schema: whatever the input says of
 * preferred_way_communication is dropped (reg_patient_json writes
 * "phone"), so that no value of it can fail the registration. */
static void reg_drop_pwc(yajl_val patient)
{
    if (!YAJL_IS_OBJECT(patient))
        return;
    size_t n = patient->u.object.len, k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(patient->u.object.keys[i], "preferred_way_communication") == 0) {
            free((char *)patient->u.object.keys[i]);
            yajl_tree_free(patient->u.object.values[i]);
            continue;
        }
        patient->u.object.keys[k] = patient->u.object.keys[i];
        patient->u.object.values[k] = patient->u.object.values[i];
        k++;
    }
    patient->u.object.len = k;
}

/* Judges the body and keeps what the later steps need; false when
 * answered. */
static bool reg_take_body(struct req *r, struct reg *g)
{
    yajl_val root = req_json_object(r, (size_t)r->w->cfg->ehealth_max_body, "an object");
    if (!root)
        return false;   /* answered, and r with it: a body that is no JSON object stays unwiped */
    char today[32];
    util_format_time(util_wall_us() / 1000000, today);
    today[10] = '\0';
    ehs_report_init(&g->schema);
    const char *pp[] = {"patient", NULL};
    yajl_val patient = yajl_tree_get(root, pp, yajl_t_object);
    reg_drop_pwc(patient);
    /* The SMS factor is the OTP method's phone: a patient with only an
     * OFFLINE method has none to register. */
    if (ehs_validate_registration(root, today, &g->schema) == 0 && !ehs_otp_phone(patient))
        ehs_add(&g->schema, "$.patient.authentication_methods", "invalid",
                "An authentication method of type OTP with a phone_number is required", "[]");
    if (g->schema.n == 0) {
        g->otp = req_strdup(r, str_of(root, "otp"));
        g->password = req_strdup(r, str_of(root, "password"));
        g->otp_phone = req_strdup(r, ehs_otp_phone(patient));
        const char *tax = str_of(patient, "tax_id");
        g->tax_id = tax ? req_strdup(r, tax) : NULL;
        g->first_name = req_strdup(r, str_of(patient, "first_name"));
        g->last_name = req_strdup(r, str_of(patient, "last_name"));
        g->patient_json = reg_patient_json(r, patient);
    }
    /* The password's only copy from here on is the arena's: the tree's and
     * the body's are wiped (json_parse wipes its own). */
    const char *pw[] = {"password", NULL};
    yajl_val p = yajl_tree_get(root, pw, yajl_t_string);
    if (p)
        explicit_bzero(p->u.string, strlen(p->u.string));
    yajl_tree_free(root);
    req_body_wipe(r);
    return true;
}

void api_cabinet_register(struct req *r)
{
    if (!cabinet_enabled(r))
        return;
    const struct token_keys *k = &r->w->keys;
    struct reg *g = req_alloc(r, sizeof(*g));
    r->state = g;

    enum token_verdict v = token_ur_verify(k->cabinet, k->cabinet_len, k->cabinet_alg,
                                           req_header(r, "Authorization"),
                                           util_wall_us() / 1000000, g->ur_id);
    if (v != TOKEN_VALID) {
        req_reply_eh_error(r, v == TOKEN_EXPIRED ? EH_JWT_EXPIRED : EH_ACCESS_DENIED, NULL, 0,
                           NULL);
        return;
    }
    if (!req_is_json(r)) {
        req_fail(r, E_CONTENT_TYPE);
        return;
    }
    if (!reg_take_body(r, g))
        return;
    const char *values[] = {g->ur_id};
    enum store_status st = pg_query(r->w->pg, STMT_CAB_UR_GET, values, reg_on_user_request, r);
    if (st != STORE_OK)
        reg_fail_store(r, st);
}
