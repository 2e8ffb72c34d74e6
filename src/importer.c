/* importer.c - see importer.h. */
#include "importer.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ids.h"
#include "json.h"
#include "log.h"
#include "patient.h"
#include "misauth.h"
#include "refdata.h"
#include "stmts.h"
#include "users.h"
#include "util.h"

#define IMPORT_MAX_FILE (64 * 1024 * 1024)

struct import {
    PGconn *c;
    const struct config *cfg;
    char *err;
    size_t errlen;
    int apps, users, cards;
    int refdata[REFDATA__KINDS];
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
    /* The file's default takes over from the stored one whatever the
     * order: the old one lets go first (one default at a time, by index). */
    for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
        yajl_val a = list->u.array.values[i];
        const char *p[] = {S(a, "guid")};
        if (YAJL_IS_TRUE(json_get(a, "default")) && p[0] &&
            import_exec(im,
                        "UPDATE client_applications SET is_default = false"
                        " WHERE is_default AND guid <> $1::uuid",
                        1, p, NULL))
            return -1;
    }
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

/* A section through the endpoints' own validators and SQL function (with
 * no ownership limit): the data set loads exactly as an upload would. Any
 * item that is not stored fails the import, naming its index and why. */
static int import_refdata(struct import *im, enum refdata_kind k, yajl_val list, const char *section)
{
    if (!list)
        return 0;
    if (!YAJL_IS_ARRAY(list)) {
        snprintf(im->err, im->errlen, "%s: not an array", section);
        return -1;
    }
    int rc = -1;
    struct refdata_pool *pool = refdata_pool_new();
    struct refdata_batch b;
    if (!pool || refdata_batch_build(&b, k, list, refdata_pool_alloc, pool) != 0) {
        snprintf(im->err, im->errlen, "%s: out of memory", section);
        goto out;
    }
    if (b.nvalid > 0) {
        const char *p[] = {b.json, NULL};
        PGresult *res;
        char foreign[32];
        if (import_exec(im, pg_stmts[refdata_stmt(k)].sql, 2, p, &res))
            goto out;
        int applied = PQntuples(res) == 1 ? refdata_batch_apply(&b, PQgetvalue(res, 0, 0), foreign,
                                                                sizeof(foreign))
                                          : -1;
        PQclear(res);
        if (applied != 0) {
            snprintf(im->err, im->errlen, "%s: unexpected answer of PostgreSQL", section);
            goto out;
        }
    }
    int counts[RD_ERROR + 1] = {0};
    for (int i = 0; i < b.n; i++) {
        const struct refdata_item *it = &b.items[i];
        if (it->status == RD_NOT_VALID || it->status == RD_ERROR) {
            struct buf m;
            buf_init(&m);
            for (int j = 0; j < it->nmsgs; j++)
                buf_printf(&m, "%s%s", j ? "; " : "", it->msgs[j]);
            snprintf(im->err, im->errlen, "%s[%d]: %s: %s", section, i,
                     refdata_status_name(it->status), m.data ? m.data : "");
            buf_free(&m);
            goto out;
        }
        counts[it->status]++;
    }
    log_info("import: %s: %d uploaded, %d unchanged, %d deleted", section, counts[RD_UPLOADED],
             counts[RD_UNCHANGED], counts[RD_DELETED]);
    im->refdata[k] += b.n;
    rc = 0;
out:
    refdata_pool_free(pool);
    return rc;
}

static int int_field(yajl_val obj, const char *key, long long min, long long max, long long *out)
{
    yajl_val v = json_get(obj, key);
    if (!v || !YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < min || YAJL_GET_INTEGER(v) > max)
        return -1;
    *out = YAJL_GET_INTEGER(v);
    return 0;
}

/* One schedule template into cells: for each of the next daysAhead days
 * (today first, in the data set's time zone) whose ISO weekday is listed,
 * slots of slotMinutes from `from` to `to`. Each cell's guid is derived
 * from its resource and begin, so a re-import finds the same cells. */
static int expand_template(struct import *im, yajl_val t, size_t idx, yajl_gen g)
{
    const char *res = S(t, "resourceGuid");
    char guid[37];
    int fh, fm, th, tm;
    long long slot, days;
    yajl_val wd = json_get(t, "weekdays");
    if (!res || ids_guid(res, guid) != ID_OK || !S(t, "from") ||
        ids_time_hhmm(S(t, "from"), &fh, &fm) != ID_OK || !S(t, "to") ||
        ids_time_hhmm(S(t, "to"), &th, &tm) != ID_OK || int_field(t, "slotMinutes", 1, 1440, &slot) ||
        int_field(t, "daysAhead", 1, 366, &days) || !wd || !YAJL_IS_ARRAY(wd)) {
        snprintf(im->err, im->errlen,
                 "schedule[%zu]: needs resourceGuid, weekdays [1-7], from and to (HH:MM),"
                 " slotMinutes and daysAhead",
                 idx);
        return -1;
    }
    bool on[8] = {false};
    for (size_t i = 0; i < wd->u.array.len; i++) {
        yajl_val d = wd->u.array.values[i];
        if (!YAJL_IS_INTEGER(d) || YAJL_GET_INTEGER(d) < 1 || YAJL_GET_INTEGER(d) > 7) {
            snprintf(im->err, im->errlen, "schedule[%zu]: weekdays are 1 (Monday) to 7", idx);
            return -1;
        }
        on[YAJL_GET_INTEGER(d)] = true;
    }
    time_t now = time(NULL);
    struct tm today;
    localtime_r(&now, &today);
    for (long long d = 0; d < days; d++) {
        struct tm day = {.tm_year = today.tm_year, .tm_mon = today.tm_mon,
                         .tm_mday = today.tm_mday + (int)d, .tm_hour = 12, .tm_isdst = -1};
        mktime(&day);
        int iso = day.tm_wday == 0 ? 7 : day.tm_wday;
        if (!on[iso])
            continue;
        for (int m = fh * 60 + fm; m + slot <= th * 60 + tm; m += (int)slot) {
            struct tm at = {.tm_year = day.tm_year, .tm_mon = day.tm_mon, .tm_mday = day.tm_mday,
                            .tm_hour = m / 60, .tm_min = m % 60, .tm_isdst = -1};
            time_t b = mktime(&at);
            char begin[21], end[21], cell[37];
            refdata_format_utc(b, begin);
            refdata_format_utc(b + slot * 60, end);
            refdata_cell_guid(guid, begin, cell);
            yajl_gen_map_open(g);
            json_gen_kv_str(g, "guid", cell);
            json_gen_kv_str(g, "resourceGuid", guid);
            json_gen_kv_str(g, "begin", begin);
            json_gen_kv_str(g, "end", end);
            json_gen_str(g, "busyType");
            json_gen_value(g, json_get(t, "busyType"));
            json_gen_str(g, "flagAccess");
            json_gen_value(g, json_get(t, "flagAccess"));
            yajl_gen_map_close(g);
        }
    }
    return 0;
}

static int import_schedule(struct import *im, yajl_val list, const char *tz)
{
    if (!list)
        return 0;
    if (!YAJL_IS_ARRAY(list)) {
        snprintf(im->err, im->errlen, "schedule: not an array");
        return -1;
    }
    /* The templates' days and times are the data set's local ones. The
     * command is single-threaded: TZ is switched for the expansion and put
     * back after it. */
    char path[300];
    snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
    if (!*tz || strstr(tz, "..") || access(path, R_OK) != 0) {
        snprintf(im->err, im->errlen, "timezone %s: unknown", tz);
        return -1;
    }
    const char *old = getenv("TZ");
    char saved[128];
    bool had = old && util_strlcpy(saved, old, sizeof(saved));
    setenv("TZ", tz, 1);
    tzset();
    yajl_gen g = json_gen_new();
    yajl_gen_array_open(g);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < list->u.array.len; i++)
        rc = expand_template(im, list->u.array.values[i], i, g);
    yajl_gen_array_close(g);
    if (had)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    tzset();
    struct buf cells;
    buf_init(&cells);
    json_gen_finish(g, &cells);
    if (rc == 0) {
        char perr[128];
        yajl_val arr = json_parse(cells.data, cells.len, JSON_MAX_DEPTH, perr, sizeof(perr));
        if (!arr) {
            snprintf(im->err, im->errlen, "schedule: %s", perr);
            rc = -1;
        } else {
            rc = import_refdata(im, REFDATA_CELLS, arr, "schedule");
            yajl_tree_free(arr);
        }
    }
    buf_free(&cells);
    return rc;
}

/* MIS logins, in the import's transaction (users_upsert's savepoint each).
 * A stored hash that still verifies is kept, so a re-import changes
 * nothing. An LPU list the login cannot hold whole is refused, not cut:
 * cutting it would take away the rights of the LPUs past the cut. */
static int import_users(struct import *im, yajl_val list)
{
    for (size_t i = 0; list && YAJL_IS_ARRAY(list) && i < list->u.array.len; i++) {
        yajl_val u = list->u.array.values[i];
        yajl_val l = json_get(u, "lpuMcods");
        const char *mcods[MISAUTH_MAX_LPUS];
        int n = 0;
        for (size_t k = 0; l && YAJL_IS_ARRAY(l) && k < l->u.array.len; k++) {
            if (n == MISAUTH_MAX_LPUS || !json_str(l->u.array.values[k])) {
                snprintf(im->err, im->errlen, "mis_users[%zu].lpuMcods: at most %d МКОДs, each a string",
                         i, MISAUTH_MAX_LPUS);
                return -1;
            }
            mcods[n++] = json_str(l->u.array.values[k]);
        }
        if (!S(u, "login") || !S(u, "password")) {
            snprintf(im->err, im->errlen, "mis_users[%zu]: needs login and password", i);
            return -1;
        }
        char uerr[200];
        if (users_upsert(im->c, im->cfg, S(u, "login"), S(u, "password"), mcods, n, uerr,
                         sizeof(uerr)) != 0) {
            snprintf(im->err, im->errlen, "mis_users[%zu]: %s", i, uerr);
            return -1;
        }
        im->users++;
    }
    return 0;
}

/* A patient goes through POST /patients' own validation and SQL function
 * (patient_import), so that the demo data is held to the same rules as an
 * MIS upload; anything but Uploaded stops the import. */
static int import_patient(struct import *im, yajl_val pt, size_t idx)
{
    struct buf msg;
    buf_init(&msg);
    int st = patient_import(im->c, pt, NULL, 0, &msg);
    if (st != PATIENT_UPLOADED)
        snprintf(im->err, im->errlen, "patients[%zu]: %s%s", idx,
                 st < 0 ? "" : "not uploaded: ", msg.data ? msg.data : "");
    buf_free(&msg);
    if (st != PATIENT_UPLOADED)
        return -1;
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

int importer_load_file(const struct config *cfg, const char *path, char *err, size_t errlen)
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
    struct import im = {.cfg = cfg, .err = err, .errlen = errlen};
    const char *tz = S(root, "timezone") ? S(root, "timezone") : cfg->time_zone;
    im.c = PQconnectdb(cfg->pg_conninfo);
    int rc = -1;
    if (PQstatus(im.c) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(im.c));
        goto out;
    }
    /* One transaction: a file refused anywhere (a bad schedule, say)
     * leaves nothing behind, no client application and no MIS login. */
    if (import_exec(&im, "BEGIN", 0, NULL, NULL))
        goto out;
    if (import_apps(&im, json_get(root, "client_applications")) ||
        import_refdata(&im, REFDATA_LPUS, json_get(root, "lpus"), "lpus") ||
        import_users(&im, json_get(root, "mis_users")))
        goto rollback;
    if (import_refdata(&im, REFDATA_RESOURCES, json_get(root, "resources"), "resources") ||
        import_schedule(&im, json_get(root, "schedule"), tz))
        goto rollback;
    yajl_val patients = json_get(root, "patients");
    for (size_t i = 0; patients && YAJL_IS_ARRAY(patients) && i < patients->u.array.len; i++)
        if (import_patient(&im, patients->u.array.values[i], i))
            goto rollback;
    if (import_refdata(&im, REFDATA_REFERRALS, json_get(root, "directions"), "directions") ||
        import_refdata(&im, REFDATA_DISPENSARY, json_get(root, "dispensary"), "dispensary"))
        goto rollback;
    if (import_exec(&im, "COMMIT", 0, NULL, NULL))
        goto out;
    log_info("import: %d client applications, %d LPUs, %d MIS logins, %d resources, %d cells,"
             " %d medical cards, %d referrals, %d dispensary registrations",
             im.apps, im.refdata[REFDATA_LPUS], im.users, im.refdata[REFDATA_RESOURCES],
             im.refdata[REFDATA_CELLS], im.cards, im.refdata[REFDATA_REFERRALS],
             im.refdata[REFDATA_DISPENSARY]);
    rc = 0;
    goto out;
rollback:
    PQclear(PQexec(im.c, "ROLLBACK"));
out:
    PQfinish(im.c);
    yajl_tree_free(root);
    return rc;
}
