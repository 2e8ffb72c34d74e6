/* importer.c - see importer.h. */
#include "importer.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define IMPORT_MAX_FILE (64 * 1024 * 1024)

struct import {
    PGconn *c;
    char *err;
    size_t errlen;
    int apps, lpus, cards;
};

static const char *S(yajl_val obj, const char *key)
{
    return json_str(json_get(obj, key));
}

static const char *B(yajl_val obj, const char *key)
{
    yajl_val v = json_get(obj, key);
    return v && YAJL_IS_TRUE(v) ? "true" : "false";
}

static int import_exec(struct import *im, const char *sql, int n, const char *const *params,
                       PGresult **out)
{
    PGresult *res = PQexecParams(im->c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        /* Without DETAIL: it would repeat the key values of the data set. */
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        snprintf(im->err, im->errlen, "%s %s", state ? state : "", msg ? msg : PQerrorMessage(im->c));
        PQclear(res);
        return -1;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return 0;
}

static int import_apps(struct import *im, yajl_val list)
{
    for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
        yajl_val a = list->u.array.values[i];
        const char *p[] = {S(a, "guid"), S(a, "mnem"), S(a, "name"), B(a, "default")};
        if (import_exec(im,
                        "INSERT INTO client_applications (guid, mnem, name, is_default)"
                        " VALUES ($1::uuid, $2, $3, $4::boolean)"
                        " ON CONFLICT (guid) DO UPDATE SET mnem = EXCLUDED.mnem,"
                        " name = EXCLUDED.name, is_default = EXCLUDED.is_default",
                        4, p, NULL))
            return -1;
        im->apps++;
    }
    return 0;
}

static int import_lpus(struct import *im, yajl_val list)
{
    for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
        yajl_val l = list->u.array.values[i];
        yajl_gen g = json_gen_new();
        json_gen_value(g, l);
        struct buf attrs;
        buf_init(&attrs);
        json_gen_finish(g, &attrs);
        yajl_val active = json_get(l, "isActive");
        const char *p[] = {S(l, "guid"), S(l, "mcod"), S(l, "name"), B(l, "isChildrenPoliclinic"),
                           active && YAJL_IS_FALSE(active) ? "false" : "true", attrs.data};
        int rc = import_exec(im,
                             "INSERT INTO lpus (guid, mcod, name, is_children, is_active, attrs)"
                             " VALUES ($1::uuid, $2, $3, $4::boolean, $5::boolean, $6::jsonb)"
                             " ON CONFLICT (guid) DO UPDATE SET mcod = EXCLUDED.mcod,"
                             " name = EXCLUDED.name, is_children = EXCLUDED.is_children,"
                             " is_active = EXCLUDED.is_active, attrs = EXCLUDED.attrs,"
                             " updated_at = now()",
                             6, p, NULL);
        buf_free(&attrs);
        if (rc)
            return -1;
        im->lpus++;
    }
    return 0;
}

/* The person a card belongs to: the one with its SNILS, else the one with
 * its names and birthday, else a new one. */
static int import_person(struct import *im, yajl_val pt, const char *snils, const char *fam,
                         const char *nam, const char *pat, char person[37])
{
    PGresult *res;
    const char *p1[] = {snils[0] ? snils : NULL, fam, nam, pat, S(pt, "birthday")};
    if (import_exec(im,
                    "SELECT guid::text FROM persons WHERE snils = $1"
                    " OR ($1 IS NULL AND family_key = $2 AND name_key = $3"
                    "     AND patronymic_key = $4 AND birthday = $5::date)"
                    " ORDER BY created_at LIMIT 1",
                    5, p1, &res))
        return -1;
    if (PQntuples(res) > 0)
        util_strlcpy(person, PQgetvalue(res, 0, 0), 37);
    else
        util_guid(person);
    PQclear(res);
    yajl_val gender = json_get(pt, "gender");
    const char *g = json_str(gender);
    char gbuf[8];
    if (!g && gender && YAJL_IS_INTEGER(gender)) {
        snprintf(gbuf, sizeof(gbuf), "%lld", YAJL_GET_INTEGER(gender));
        g = gbuf;
    }
    const char *p2[] = {person, S(pt, "family"), S(pt, "name"), S(pt, "patronymic") ? S(pt, "patronymic") : "",
                        fam, nam, pat, S(pt, "birthday"), g, snils[0] ? snils : NULL};
    return import_exec(im,
                       "INSERT INTO persons (guid, family, name, patronymic, family_key, name_key,"
                       " patronymic_key, birthday, gender, snils)"
                       " VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8::date, $9::smallint, $10)"
                       " ON CONFLICT (guid) DO UPDATE SET family = EXCLUDED.family,"
                       " name = EXCLUDED.name, patronymic = EXCLUDED.patronymic,"
                       " family_key = EXCLUDED.family_key, name_key = EXCLUDED.name_key,"
                       " patronymic_key = EXCLUDED.patronymic_key, birthday = EXCLUDED.birthday,"
                       " gender = EXCLUDED.gender, snils = EXCLUDED.snils, updated_at = now()",
                       10, p2, NULL);
}

static int import_patient(struct import *im, yajl_val pt, size_t idx)
{
    char snils[12] = "", fam[256], nam[256], pat[256] = "", polis_key[96], docs[8] = "", docn[16] = "";
    const char *fail = NULL;
    yajl_val polis = json_get(pt, "polis");
    yajl_val doc = json_get(pt, "identityDocument");
    const char *sn = S(pt, "snils");
    const char *pseries = S(polis, "series"), *pnumber = S(polis, "number");
    char ps[48] = "", pn[48] = "";

    if (sn && ids_snils(sn, snils) != ID_OK)
        fail = "snils";
    else if (!S(pt, "family") || !ids_fold_name(S(pt, "family"), fam, sizeof(fam)))
        fail = "family";
    else if (!S(pt, "name") || !ids_fold_name(S(pt, "name"), nam, sizeof(nam)))
        fail = "name";
    else if (S(pt, "patronymic") && !ids_fold_name(S(pt, "patronymic"), pat, sizeof(pat)))
        fail = "patronymic";
    else if (!pnumber || (pseries && *pseries && ids_polis_part(pseries, ps, sizeof(ps)) != ID_OK))
        fail = "polis";
    else if ((!pseries || !*pseries) && strlen(pnumber) == 16 && ids_enp(pnumber) != ID_OK)
        fail = "polis.number";
    else if (ids_polis_part(pnumber, pn, sizeof(pn)) != ID_OK)
        fail = "polis.number";
    if (!fail && !json_is_null(doc)) {
        /* Passports are kept as bare digits, as the token look-up gives them. */
        if (ids_passport_series(S(doc, "series"), docs) != ID_OK ||
            ids_passport_number(S(doc, "number"), docn) != ID_OK) {
            util_strlcpy(docs, S(doc, "series") ? S(doc, "series") : "", sizeof(docs));
            util_strlcpy(docn, S(doc, "number") ? S(doc, "number") : "", sizeof(docn));
        }
    }
    if (fail) {
        snprintf(im->err, im->errlen, "patients[%zu]: invalid %s", idx, fail);
        return -1;
    }
    snprintf(polis_key, sizeof(polis_key), "%s|%s", ps, pn);

    char person[37];
    PGresult *res;
    if (import_person(im, pt, snils, fam, nam, pat, person))
        return -1;

    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);
    static const char *const extra[] = {"birthplace", "regAddress", "factAddress", "isWorker",
                                        "workPlace", "profession", "position"};
    for (size_t i = 0; i < ARRAY_LEN(extra); i++) {
        json_gen_str(g, extra[i]);
        json_gen_value(g, json_get(pt, extra[i]));
    }
    yajl_gen_map_close(g);
    struct buf attrs;
    buf_init(&attrs);
    json_gen_finish(g, &attrs);

    yajl_val rh = json_get(pt, "rh");
    const char *p[] = {
        S(pt, "guid"), person, S(pt, "mcod"),
        S(json_get(polis, "type"), "code") ? S(json_get(polis, "type"), "code") : "",
        pseries ? pseries : "", pnumber, polis_key, S(polis, "start"), S(polis, "end"), S(polis, "smo"),
        json_is_null(doc) ? NULL : S(json_get(doc, "type"), "code"),
        json_is_null(doc) ? NULL : docs, json_is_null(doc) ? NULL : docn,
        json_is_null(doc) ? NULL : S(doc, "date"), json_is_null(doc) ? NULL : S(doc, "issuedBy"),
        S(pt, "phone"), S(pt, "email"), S(pt, "bloodType"),
        json_is_null(rh) ? NULL : B(pt, "rh"), B(pt, "blackLabel"), attrs.data};
    int rc = import_exec(im,
        "INSERT INTO medical_cards (guid, person_guid, lpu_guid, polis_type, polis_series,"
        " polis_number, polis_key, polis_start, polis_end, polis_smo, doc_type, doc_series,"
        " doc_number, doc_date, doc_issued_by, phone, email, blood_type, rh, black_label, attrs)"
        " SELECT $1::uuid, $2::uuid, l.guid, $4, $5, $6, $7, $8::date, $9::date, $10, $11, $12,"
        "        $13, $14::date, $15, $16, $17, $18, $19::boolean, $20::boolean, $21::jsonb"
        " FROM lpus l WHERE l.mcod = $3"
        " ON CONFLICT (guid) DO UPDATE SET person_guid = EXCLUDED.person_guid,"
        " lpu_guid = EXCLUDED.lpu_guid, polis_type = EXCLUDED.polis_type,"
        " polis_series = EXCLUDED.polis_series, polis_number = EXCLUDED.polis_number,"
        " polis_key = EXCLUDED.polis_key, polis_start = EXCLUDED.polis_start,"
        " polis_end = EXCLUDED.polis_end, polis_smo = EXCLUDED.polis_smo,"
        " doc_type = EXCLUDED.doc_type, doc_series = EXCLUDED.doc_series,"
        " doc_number = EXCLUDED.doc_number, doc_date = EXCLUDED.doc_date,"
        " doc_issued_by = EXCLUDED.doc_issued_by, phone = EXCLUDED.phone, email = EXCLUDED.email,"
        " blood_type = EXCLUDED.blood_type, rh = EXCLUDED.rh, black_label = EXCLUDED.black_label,"
        " attrs = EXCLUDED.attrs, updated_at = now() RETURNING guid",
        21, p, &res);
    buf_free(&attrs);
    if (rc)
        return -1;
    int inserted = PQntuples(res);
    PQclear(res);
    if (inserted != 1) {
        snprintf(im->err, im->errlen, "patients[%zu]: no LPU with mcod %s", idx,
                 S(pt, "mcod") ? S(pt, "mcod") : "(none)");
        return -1;
    }
    im->cards++;
    return 0;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s", path);
        return NULL;
    }
    char *data = malloc(IMPORT_MAX_FILE);
    size_t n = data ? fread(data, 1, IMPORT_MAX_FILE, f) : 0;
    int too_big = data && n == IMPORT_MAX_FILE;
    fclose(f);
    if (!data || too_big) {
        snprintf(err, errlen, "%s: larger than %d bytes", path, IMPORT_MAX_FILE);
        free(data);
        return NULL;
    }
    *len = n;
    return data;
}

int importer_load_file(const char *conninfo, const char *path, char *err, size_t errlen)
{
    size_t len;
    char *data = read_file(path, &len, err, errlen);
    if (!data)
        return -1;
    char perr[160];
    yajl_val root = json_parse(data, len, JSON_MAX_DEPTH, perr, sizeof(perr));
    free(data);
    if (!root || !YAJL_IS_OBJECT(root)) {
        snprintf(err, errlen, "%s: not a JSON object: %s", path, root ? "" : perr);
        yajl_tree_free(root);
        return -1;
    }
    struct import im = {.err = err, .errlen = errlen};
    im.c = PQconnectdb(conninfo);
    int rc = -1;
    if (PQstatus(im.c) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(im.c));
        goto out;
    }
    /* One transaction: a data set loads whole or not at all. */
    if (import_exec(&im, "BEGIN", 0, NULL, NULL))
        goto out;
    if (import_apps(&im, json_get(root, "client_applications")) ||
        import_lpus(&im, json_get(root, "lpus")))
        goto rollback;
    yajl_val patients = json_get(root, "patients");
    for (size_t i = 0; patients && YAJL_IS_ARRAY(patients) && i < patients->u.array.len; i++)
        if (import_patient(&im, patients->u.array.values[i], i))
            goto rollback;
    if (import_exec(&im, "COMMIT", 0, NULL, NULL))
        goto out;
    static const char *const later[] = {"mis_users", "resources", "schedule", "directions", "dispensary"};
    for (size_t i = 0; i < ARRAY_LEN(later); i++)
        if (json_get(root, later[i]))
            log_info("import: section %s skipped (not yet served)", later[i]);
    log_info("import: %d client applications, %d LPUs, %d medical cards", im.apps, im.lpus, im.cards);
    rc = 0;
    goto out;
rollback:
    PQclear(PQexec(im.c, "ROLLBACK"));
out:
    PQfinish(im.c);
    yajl_tree_free(root);
    return rc;
}
