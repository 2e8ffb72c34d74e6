/* refdata.c - see refdata.h. */
#include "refdata.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "json.h"
#include "util.h"

#define STR_SHORT 100
#define STR_NAME 300
#define STR_LONG 1000

static const char *const kind_names[REFDATA__KINDS] = {"lpus", "resources", "cells", "referrals",
                                                        "dispensary"};
static const char *const status_names[] = {"Pending", "Uploaded", "Unchanged", "Deleted",
                                           "NotValid", "Error"};
/* flagAccess values in the order cells.access keeps them: one spelling of
 * one set, so that a re-sent cell compares equal. "None" means no one. */
static const char *const access_names[] = {"Registry", "Doctor", "Internet", "DoctorOtherLpu"};

const char *refdata_kind_name(enum refdata_kind k)
{
    return k < REFDATA__KINDS ? kind_names[k] : "?";
}

const char *refdata_status_name(enum refdata_status s)
{
    return (size_t)s < ARRAY_LEN(status_names) ? status_names[s] : "Error";
}

enum stmt_id refdata_stmt(enum refdata_kind k)
{
    static const enum stmt_id ids[REFDATA__KINDS] = {STMT_REFDATA_LPUS, STMT_REFDATA_RESOURCES,
                                                     STMT_REFDATA_CELLS, STMT_REFDATA_REFERRALS,
                                                     STMT_REFDATA_DISPENSARY};
    return ids[k];
}

/* --- validation of one item --- */

struct vctx {
    struct refdata_batch *b;
    struct refdata_item *it;
    yajl_gen g;
    bool oom;
};

/* Length of a string value; 0 for anything else. */
static size_t slen(yajl_val v)
{
    const char *s = json_str(v);
    return s ? strlen(s) : 0;
}

static char *b_strdup(struct refdata_batch *b, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = b->alloc(b->ctx, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void msg(struct vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void msg(struct vctx *v, const char *fmt, ...)
{
    if (v->it->nmsgs >= REFDATA_MAX_MSGS)
        return;
    char text[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    ids_utf8_scrub(text);   /* a long key of the client's may have been cut inside a character */
    const char *p = b_strdup(v->b, text);
    if (!p) {
        v->oom = true;
        return;
    }
    v->it->msgs[v->it->nmsgs++] = p;
}

/* A string field: NULL when absent or null (a message when required),
 * and when not a string or longer than max bytes (a message). */
static const char *v_str(struct vctx *v, yajl_val obj, const char *key, bool required, size_t max)
{
    yajl_val f = json_get(obj, key);
    if (json_is_null(f)) {
        if (required)
            msg(v, "%s: обязательное поле", key);
        return NULL;
    }
    if (!YAJL_IS_STRING(f)) {
        msg(v, "%s: должно быть строкой", key);
        return NULL;
    }
    const char *s = YAJL_GET_STRING(f);
    if (required && !*s) {
        msg(v, "%s: обязательное поле", key);
        return NULL;
    }
    if (strlen(s) > max) {
        msg(v, "%s: длиннее %zu байт", key, max);
        return NULL;
    }
    return s;
}

/* Writes key: the string, or "" when absent. */
static void g_str(struct vctx *v, const char *key, const char *s)
{
    json_gen_kv_str(v->g, key, s ? s : "");
}

static bool v_guid(struct vctx *v, yajl_val obj, const char *key, bool required, char out[37])
{
    out[0] = '\0';
    yajl_val f = json_get(obj, key);
    if (json_is_null(f)) {
        if (required)
            msg(v, "%s: обязательное поле", key);
        return false;
    }
    if (!YAJL_IS_STRING(f) || ids_guid(YAJL_GET_STRING(f), out) != ID_OK) {
        out[0] = '\0';
        msg(v, "%s: неверный формат GUID", key);
        return false;
    }
    return true;
}

static bool v_bool(struct vctx *v, yajl_val obj, const char *key, bool dflt)
{
    yajl_val f = json_get(obj, key);
    if (json_is_null(f))
        return dflt;
    if (YAJL_IS_TRUE(f))
        return true;
    if (YAJL_IS_FALSE(f))
        return false;
    msg(v, "%s: должно быть true или false", key);
    return dflt;
}

/* An integer in [min, max]: false when absent or null (*bad tells a
 * message was given). */
static bool v_int(struct vctx *v, yajl_val obj, const char *key, long long min, long long max,
                  long long *out, bool *bad)
{
    yajl_val f = json_get(obj, key);
    if (json_is_null(f))
        return false;
    if (!YAJL_IS_INTEGER(f) || YAJL_GET_INTEGER(f) < min || YAJL_GET_INTEGER(f) > max) {
        msg(v, "%s: должно быть целым числом от %lld до %lld", key, min, max);
        if (bad)
            *bad = true;
        return false;
    }
    *out = YAJL_GET_INTEGER(f);
    return true;
}

static void g_opt_int(struct vctx *v, const char *key, bool present, long long val)
{
    json_gen_str(v->g, key);
    if (present)
        yajl_gen_integer(v->g, val);
    else
        yajl_gen_null(v->g);
}

/* A date (or a date-time, whose date part counts) into "YYYY-MM-DD". */
static bool v_date(struct vctx *v, yajl_val obj, const char *key, bool required, char out[11])
{
    const char *s = v_str(v, obj, key, required, 64);
    int y, m, d;
    if (!s)
        return false;
    if (ids_date_or_datetime(s, &y, &m, &d) != ID_OK) {
        msg(v, "%s: неверная дата (ожидается ГГГГ-ММ-ДД)", key);
        return false;
    }
    snprintf(out, 11, "%04d-%02d-%02d", y, m, d);
    return true;
}

static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* A time without an offset is refused: a schedule's times must not depend
 * on the server's zone. */
bool refdata_parse_datetime(const char *s, int64_t *epoch)
{
    int y, mo, d, h, mi, sec = 0, oh = 0, om = 0, sign = 1;
    size_t n = strlen(s);
    if (n < 17 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        s[13] != ':')
        return false;
    char date[11];
    memcpy(date, s, 10);
    date[10] = '\0';
    if (ids_date(date, &y, &mo, &d) != ID_OK || !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) ||
        h > 23 || mi > 59)
        return false;
    const char *p = s + 16;
    if (*p == ':') {
        if (!digits(p + 1, 2, &sec) || sec > 59)
            return false;
        p += 3;
        if (*p == '.') {
            p++;
            const char *f = p;
            while (*p >= '0' && *p <= '9')
                p++;
            if (p == f || p - f > 9)
                return false;
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
        if (!digits(p, 2, &oh))
            return false;
        p += 2;
        if (*p == ':')
            p++;
        if (!digits(p, 2, &om))
            return false;
        p += 2;
        if (oh > 14 || om > 59)
            return false;
    } else {
        return false;
    }
    if (*p)
        return false;
    *epoch = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
             sign * (oh * 3600 + om * 60);
    return true;
}

void refdata_format_utc(int64_t epoch, char out[21])
{
    int64_t days = epoch >= 0 ? epoch / 86400 : (epoch - 86399) / 86400;
    int64_t rem = epoch - days * 86400;
    /* civil_from_days */
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp + (mp < 10 ? 3 : -9);
    y += m <= 2;
    char tmp[64];
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y, (int)m, (int)d,
             (int)(rem / 3600), (int)(rem % 3600 / 60), (int)(rem % 60));
    util_strlcpy(out, tmp, 21);
}

static bool v_datetime(struct vctx *v, yajl_val obj, const char *key, int64_t *epoch)
{
    const char *s = v_str(v, obj, key, true, 64);
    if (!s)
        return false;
    if (!refdata_parse_datetime(s, epoch)) {
        msg(v, "%s: неверные дата и время (ожидается ГГГГ-ММ-ДДTчч:мм[:сс] с поясом: Z или ±чч:мм)",
            key);
        return false;
    }
    return true;
}

/* {code, name}: the code required (a string, or a number written as one). */
static void v_speciality(struct vctx *v, yajl_val obj, bool required, const char *prefix)
{
    yajl_val sp = json_get(obj, "speciality");
    if (json_is_null(sp)) {
        if (required)
            msg(v, "speciality: обязательное поле%s", prefix);
        g_str(v, "spec_code", "");
        g_str(v, "spec_name", "");
        return;
    }
    if (!YAJL_IS_OBJECT(sp)) {
        msg(v, "speciality: должно быть объектом {code, name}");
        return;
    }
    char num[32];
    const char *code = NULL;
    yajl_val c = json_get(sp, "code");
    if (c && YAJL_IS_INTEGER(c)) {
        snprintf(num, sizeof(num), "%lld", YAJL_GET_INTEGER(c));
        code = num;
    } else if (json_is_null(c) || (YAJL_IS_STRING(c) && !*YAJL_GET_STRING(c))) {
        msg(v, "speciality.code: обязательное поле");
    } else if (!YAJL_IS_STRING(c) || slen(c) > STR_SHORT) {
        msg(v, "speciality.code: должно быть строкой не длиннее %d байт", STR_SHORT);
    } else {
        code = YAJL_GET_STRING(c);
    }
    const char *name = NULL;
    yajl_val nm = json_get(sp, "name");
    if (!json_is_null(nm)) {
        if (!YAJL_IS_STRING(nm) || slen(nm) > STR_NAME)
            msg(v, "speciality.name: должно быть строкой не длиннее %d байт", STR_NAME);
        else
            name = YAJL_GET_STRING(nm);
    }
    g_str(v, "spec_code", code);
    g_str(v, "spec_name", name);
}

/* The patient: personSnils, else personGuid, else mkabGuid (the first
 * given counts). */
static void v_person(struct vctx *v, yajl_val obj)
{
    if (!json_is_null(json_get(obj, "personSnils"))) {
        const char *s = v_str(v, obj, "personSnils", true, 32);
        char snils[12];
        if (!s)
            return;
        switch (ids_snils(s, snils)) {
        case ID_OK:
            g_str(v, "person_snils", snils);
            break;
        case ID_CHECKSUM:
            msg(v, "personSnils: контрольное число СНИЛС не сходится");
            break;
        default:
            msg(v, "personSnils: неверный формат СНИЛС (11 цифр)");
        }
        return;
    }
    char g[37];
    if (!json_is_null(json_get(obj, "personGuid"))) {
        if (v_guid(v, obj, "personGuid", true, g))
            g_str(v, "person_guid", g);
        return;
    }
    if (!json_is_null(json_get(obj, "mkabGuid"))) {
        if (v_guid(v, obj, "mkabGuid", true, g))
            g_str(v, "mkab_guid", g);
        return;
    }
    msg(v, "personSnils: обязательное поле (или personGuid, или mkabGuid)");
}

/* A number PostgreSQL's jsonb takes as it is written: at most
 * REFDATA_NUMBER_MAX characters and an exponent within a double's
 * (|e| <= REFDATA_EXPONENT_MAX). jsonb keeps numbers as numeric, which
 * refuses an exponent past its range (1e200000, 1e-200000) for the whole
 * statement, and spells out a large one digit by digit (1e131071: 131 KB
 * in every answer that shows the item). */
#define REFDATA_NUMBER_MAX 40
#define REFDATA_EXPONENT_MAX 308

static bool number_ok(yajl_val n)
{
    const char *t = YAJL_GET_NUMBER(n);
    if (!t || strlen(t) > REFDATA_NUMBER_MAX)
        return false;
    const char *e = strpbrk(t, "eE");
    if (!e)
        return true;   /* digits and a point, 40 at most */
    char *end;
    long x = strtol(e + 1, &end, 10);
    return *end == '\0' && x >= -REFDATA_EXPONENT_MAX && x <= REFDATA_EXPONENT_MAX;
}

static bool numbers_ok(yajl_val x)
{
    if (YAJL_IS_NUMBER(x))
        return number_ok(x);
    if (YAJL_IS_ARRAY(x)) {
        for (size_t i = 0; i < x->u.array.len; i++)
            if (!numbers_ok(x->u.array.values[i]))
                return false;
    } else if (YAJL_IS_OBJECT(x)) {
        for (size_t i = 0; i < x->u.object.len; i++)
            if (!numbers_ok(x->u.object.values[i]))
                return false;
    }
    return true;
}

/* Every number of an item kept whole (an LPU's attrs), by its field. */
static void v_numbers(struct vctx *v, yajl_val o)
{
    for (size_t i = 0; i < o->u.object.len; i++)
        if (!numbers_ok(o->u.object.values[i]))
            msg(v, "%s: число вне допустимого диапазона (не длиннее %d знаков, порядок от -%d до %d)",
                o->u.object.keys[i], REFDATA_NUMBER_MAX, REFDATA_EXPONENT_MAX, REFDATA_EXPONENT_MAX);
}

static void validate_lpu(struct vctx *v, yajl_val o)
{
    char guid[37];
    v_guid(v, o, "guid", true, guid);
    g_str(v, "guid", guid);
    const char *mcod = NULL;
    yajl_val m = json_get(o, "mcod");
    if (json_is_null(m))
        msg(v, "mcod: обязательное поле");
    else if (!YAJL_IS_STRING(m) || ids_mcod(YAJL_GET_STRING(m)) != ID_OK ||
             slen(m) > REFDATA_MCOD_MAX)
        msg(v, "mcod: МКОД — строка от 1 до %d цифр", REFDATA_MCOD_MAX);
    else
        mcod = YAJL_GET_STRING(m);
    if (mcod)
        util_strlcpy(v->it->mcod, mcod, sizeof(v->it->mcod));
    g_str(v, "mcod", mcod);
    g_str(v, "name", v_str(v, o, "name", true, STR_NAME));
    /* Checked for their type only: they are kept as uploaded. */
    v_str(v, o, "fullName", false, STR_LONG);
    v_str(v, o, "address", false, STR_LONG);
    v_str(v, o, "phone", false, STR_SHORT);
    v_numbers(v, o);
    json_gen_kv_bool(v->g, "is_children", v_bool(v, o, "isChildrenPoliclinic", false));
    json_gen_kv_bool(v->g, "is_active", v_bool(v, o, "isActive", true));
    json_gen_str(v->g, "attrs");
    json_gen_value(v->g, o);
}

static void validate_resource(struct vctx *v, yajl_val o)
{
    char guid[37], lpu[37];
    v_guid(v, o, "guid", true, guid);
    g_str(v, "guid", guid);
    v_guid(v, o, "lpuGuid", true, lpu);
    g_str(v, "lpu_guid", lpu);
    const char *type = v_str(v, o, "resType", true, 16);
    if (type && strcmp(type, "Doctor") != 0 && strcmp(type, "Room") != 0) {
        msg(v, "resType: должно быть Doctor или Room");
        type = NULL;
    }
    g_str(v, "res_type", type);
    bool doctor = type && strcmp(type, "Doctor") == 0;
    g_str(v, "family", v_str(v, o, "family", doctor, STR_SHORT));
    g_str(v, "name", v_str(v, o, "name", doctor, STR_NAME));
    g_str(v, "patronymic", v_str(v, o, "patronymic", false, STR_SHORT));
    g_str(v, "role", v_str(v, o, "doctorRole", false, STR_NAME));
    v_speciality(v, o, true, "");
    g_str(v, "room", v_str(v, o, "room", false, STR_SHORT));
    long long floor = 0, amin = 0, amax = 0, gender = 0;
    bool has;
    has = v_int(v, o, "flat", -20, 500, &floor, NULL);
    g_opt_int(v, "floor", has, floor);
    bool has_min = v_int(v, o, "ageMin", 0, 150, &amin, NULL);
    bool has_max = v_int(v, o, "ageMax", 0, 150, &amax, NULL);
    if (has_min && has_max && amin > amax)
        msg(v, "ageMin: не может быть больше ageMax");
    g_opt_int(v, "age_min", has_min, amin);
    g_opt_int(v, "age_max", has_max, amax);
    has = v_int(v, o, "gender", 1, 2, &gender, NULL);
    g_opt_int(v, "gender", has, gender);
    json_gen_kv_bool(v->g, "dispensary_only", v_bool(v, o, "dispensaryOnly", false));
    json_gen_kv_bool(v->g, "referral_only", v_bool(v, o, "directionOnly", false));
    json_gen_kv_bool(v->g, "is_active", v_bool(v, o, "isActive", true));
}

static void validate_cell(struct vctx *v, yajl_val o)
{
    char guid[37], res[37];
    v_guid(v, o, "guid", true, guid);
    g_str(v, "guid", guid);
    bool del = v_bool(v, o, "deleted", false);
    json_gen_kv_bool(v->g, "deleted", del);
    if (del) {
        /* A deletion names the cell only; a resource, if given, must be
         * well-formed (it is not used). */
        if (!json_is_null(json_get(o, "resourceGuid")))
            v_guid(v, o, "resourceGuid", false, res);
        return;
    }
    v_guid(v, o, "resourceGuid", true, res);
    g_str(v, "resource_guid", res);
    int64_t b = 0, e = 0;
    bool hb = v_datetime(v, o, "begin", &b);
    bool he = v_datetime(v, o, "end", &e);
    if (hb && he && e <= b)
        msg(v, "end: должно быть позже begin");
    char ts[21];
    refdata_format_utc(b, ts);
    g_str(v, "begin", hb ? ts : NULL);
    refdata_format_utc(e, ts);
    g_str(v, "end", he ? ts : NULL);

    const char *bname = NULL, *bcode = NULL;
    long long btype = 1;
    char num[32];
    yajl_val bt = json_get(o, "busyType");
    if (!json_is_null(bt)) {
        if (!YAJL_IS_OBJECT(bt)) {
            msg(v, "busyType: должно быть объектом {name, type, code}");
        } else {
            yajl_val nm = json_get(bt, "name"), c = json_get(bt, "code"), t = json_get(bt, "type");
            if (!json_is_null(nm) && (!YAJL_IS_STRING(nm) || slen(nm) > STR_NAME))
                msg(v, "busyType.name: должно быть строкой не длиннее %d байт", STR_NAME);
            else
                bname = json_str(nm);
            if (c && YAJL_IS_INTEGER(c)) {
                snprintf(num, sizeof(num), "%lld", YAJL_GET_INTEGER(c));
                bcode = num;
            } else if (!json_is_null(c) && (!YAJL_IS_STRING(c) || slen(c) > STR_SHORT)) {
                msg(v, "busyType.code: должно быть строкой не длиннее %d байт", STR_SHORT);
            } else {
                bcode = json_str(c);
            }
            if (!json_is_null(t) && (!YAJL_IS_INTEGER(t) || YAJL_GET_INTEGER(t) < 0 ||
                                     YAJL_GET_INTEGER(t) > 1))
                msg(v, "busyType.type: должно быть 0 (выходной) или 1 (приём)");
            else if (!json_is_null(t))
                btype = YAJL_GET_INTEGER(t);
        }
    }
    g_str(v, "busy_name", bname);
    json_gen_kv_int(v->g, "busy_type", btype);
    g_str(v, "busy_code", bcode);

    bool seen[ARRAY_LEN(access_names)] = {false};
    yajl_val fa = json_get(o, "flagAccess");
    if (json_is_null(fa)) {
        msg(v, "flagAccess: обязательное поле");
    } else if (!YAJL_IS_ARRAY(fa)) {
        msg(v, "flagAccess: должно быть массивом из None, Registry, Doctor, Internet, DoctorOtherLpu");
    } else {
        for (size_t i = 0; i < fa->u.array.len; i++) {
            const char *s = json_str(fa->u.array.values[i]);
            size_t k = 0;
            if (s && strcmp(s, "None") == 0)
                continue;
            while (s && k < ARRAY_LEN(access_names) && strcmp(s, access_names[k]) != 0)
                k++;
            if (!s || k == ARRAY_LEN(access_names)) {
                msg(v, "flagAccess[%zu]: должно быть одним из None, Registry, Doctor, Internet, "
                       "DoctorOtherLpu", i);
                break;
            }
            seen[k] = true;
        }
    }
    json_gen_str(v->g, "access");
    yajl_gen_array_open(v->g);
    for (size_t k = 0; k < ARRAY_LEN(access_names); k++)
        if (seen[k])
            json_gen_str(v->g, access_names[k]);
    yajl_gen_array_close(v->g);
}

static void validate_referral(struct vctx *v, yajl_val o)
{
    char guid[37], from[37], to[37], res[37];
    v_guid(v, o, "guid", true, guid);
    g_str(v, "guid", guid);
    bool del = v_bool(v, o, "deleted", false);
    json_gen_kv_bool(v->g, "deleted", del);
    if (del)
        return;
    g_str(v, "number", v_str(v, o, "number", true, STR_SHORT));
    v_person(v, o);
    v_guid(v, o, "lpuFromGuid", true, from);
    g_str(v, "lpu_from_guid", from);
    v_guid(v, o, "lpuToGuid", true, to);
    g_str(v, "lpu_to_guid", to);
    bool has_res = v_guid(v, o, "resourceGuid", false, res);
    json_gen_str(v->g, "resource_guid");
    if (has_res)
        json_gen_str(v->g, res);
    else
        yajl_gen_null(v->g);
    bool res_given = !json_is_null(json_get(o, "resourceGuid"));
    v_speciality(v, o, !res_given, " (или resourceGuid)");
    char issued[11], until[11];
    bool has_issued = v_date(v, o, "issued", true, issued);
    g_str(v, "issued_on", has_issued ? issued : NULL);
    long long days = 0;
    bool bad_days = false;
    bool has_days = v_int(v, o, "validDays", 1, 3650, &days, &bad_days);
    bool until_given = !json_is_null(json_get(o, "validUntil"));
    bool has_until = v_date(v, o, "validUntil", false, until);
    if (!has_days && !bad_days && !until_given)
        msg(v, "validUntil: обязательное поле (или validDays)");
    if (has_until && has_issued && strcmp(until, issued) < 0)
        msg(v, "validUntil: не может быть раньше issued");
    json_gen_kv_str(v->g, "valid_until", has_until ? until : NULL);
    g_opt_int(v, "valid_days", has_days, days);
    g_str(v, "kind", v_str(v, o, "type", false, STR_SHORT));
}

static void validate_dispensary(struct vctx *v, yajl_val o)
{
    char res[37];
    v_person(v, o);
    v_guid(v, o, "resourceGuid", true, res);
    g_str(v, "resource_guid", res);
    json_gen_kv_bool(v->g, "deleted", v_bool(v, o, "deleted", false));
}

typedef void (*validator)(struct vctx *v, yajl_val o);
static const validator validators[REFDATA__KINDS] = {validate_lpu, validate_resource, validate_cell,
                                                     validate_referral, validate_dispensary};

int refdata_batch_build(struct refdata_batch *b, enum refdata_kind k, yajl_val arr,
                        refdata_alloc_fn alloc, void *ctx)
{
    memset(b, 0, sizeof(*b));
    b->kind = k;
    b->alloc = alloc;
    b->ctx = ctx;
    b->n = arr && YAJL_IS_ARRAY(arr) ? (int)arr->u.array.len : 0;
    b->items = alloc(ctx, sizeof(*b->items) * (size_t)(b->n ? b->n : 1));
    if (!b->items)
        return -1;
    struct buf out;
    buf_init(&out);
    buf_puts(&out, "[");
    int rc = 0;
    for (int i = 0; i < b->n; i++) {
        yajl_val o = arr->u.array.values[i];
        struct refdata_item *it = &b->items[i];
        struct vctx v = {.b = b, .it = it, .g = json_gen_new()};
        yajl_gen_map_open(v.g);
        json_gen_kv_int(v.g, "i", i);
        if (!YAJL_IS_OBJECT(o))
            msg(&v, "item: должно быть объектом JSON");
        else
            validators[k](&v, o);
        yajl_gen_map_close(v.g);
        /* The guid the answer names: the item's own, when readable. */
        if (YAJL_IS_OBJECT(o) && k != REFDATA_DISPENSARY) {
            const char *g = json_str(json_get(o, "guid"));
            if (!g || ids_guid(g, it->guid) != ID_OK)
                it->guid[0] = '\0';
        }
        struct buf one;
        buf_init(&one);
        json_gen_finish(v.g, &one);
        if (v.oom) {
            buf_free(&one);
            rc = -1;
            break;
        }
        if (it->nmsgs > 0) {
            it->status = RD_NOT_VALID;
        } else {
            it->status = RD_PENDING;
            if (b->nvalid++)
                buf_puts(&out, ",");
            buf_append(&out, one.data, one.len);
        }
        buf_free(&one);
    }
    buf_puts(&out, "]");
    if (rc == 0) {
        char *json = b_strdup(b, out.data);
        if (!json)
            rc = -1;
        b->json = json;
    }
    buf_free(&out);
    return rc;
}

/* --- the SQL function's answer --- */

static enum refdata_status status_from(const char *s)
{
    for (size_t i = RD_UPLOADED; i < ARRAY_LEN(status_names); i++)
        if (s && strcmp(s, status_names[i]) == 0)
            return (enum refdata_status)i;
    return RD_PENDING;
}

int refdata_batch_apply(struct refdata_batch *b, const char *answer, char *forbidden,
                        size_t forbidden_len)
{
    char perr[128];
    yajl_val root = json_parse(answer, strlen(answer), 8, perr, sizeof(perr));
    int rc = -1;
    if (!root || !YAJL_IS_OBJECT(root))
        goto out;
    const char *f = json_str(json_get(root, "forbidden"));
    if (f) {
        util_strlcpy(forbidden, f, forbidden_len);
        rc = 1;
        goto out;
    }
    yajl_val res = json_get(root, "results");
    if (!res || !YAJL_IS_ARRAY(res))
        goto out;
    for (size_t i = 0; i < res->u.array.len; i++) {
        yajl_val r = res->u.array.values[i];
        yajl_val idx = json_get(r, "i");
        if (!idx || !YAJL_IS_INTEGER(idx) || YAJL_GET_INTEGER(idx) < 0 ||
            YAJL_GET_INTEGER(idx) >= b->n)
            goto out;
        struct refdata_item *it = &b->items[YAJL_GET_INTEGER(idx)];
        if (it->status != RD_PENDING)
            goto out;
        it->status = status_from(json_str(json_get(r, "s")));
        if (it->status == RD_PENDING)
            goto out;
        yajl_val m = json_get(r, "m");
        for (size_t k = 0; m && YAJL_IS_ARRAY(m) && k < m->u.array.len; k++) {
            const char *s = json_str(m->u.array.values[k]);
            if (s && it->nmsgs < REFDATA_MAX_MSGS) {
                const char *p = b_strdup(b, s);
                if (!p)
                    goto out;
                it->msgs[it->nmsgs++] = p;
            }
        }
    }
    for (int i = 0; i < b->n; i++)
        if (b->items[i].status == RD_PENDING)
            goto out;
    rc = 0;
out:
    yajl_tree_free(root);
    return rc;
}

void refdata_batch_gen(const struct refdata_batch *b, yajl_gen g)
{
    yajl_gen_array_open(g);
    for (int i = 0; i < b->n; i++) {
        const struct refdata_item *it = &b->items[i];
        yajl_gen_map_open(g);
        json_gen_kv_str(g, "Guid", it->guid[0] ? it->guid : NULL);
        json_gen_kv_str(g, "Status", refdata_status_name(it->status));
        json_gen_str(g, "ValidationMessage");
        yajl_gen_array_open(g);
        for (int k = 0; k < it->nmsgs; k++)
            json_gen_str(g, it->msgs[k]);
        yajl_gen_array_close(g);
        yajl_gen_map_close(g);
    }
    yajl_gen_array_close(g);
}

/* --- a pool for the importer --- */

struct refdata_pool {
    struct refdata_pool *next;
};

struct refdata_pool *refdata_pool_new(void)
{
    return calloc(1, sizeof(struct refdata_pool));
}

void *refdata_pool_alloc(void *pool, size_t n)
{
    struct refdata_pool *head = pool;
    /* Each block is a link after the head: header, then the caller's bytes,
     * aligned as malloc aligns. */
    size_t hdr = sizeof(max_align_t);
    struct refdata_pool *blk = calloc(1, hdr + n);
    if (!blk)
        return NULL;
    blk->next = head->next;
    head->next = blk;
    return (char *)blk + hdr;
}

void refdata_pool_free(struct refdata_pool *p)
{
    while (p) {
        struct refdata_pool *next = p->next;
        free(p);
        p = next;
    }
}

void refdata_cell_guid(const char *resource_guid, const char *begin, char out[37])
{
    char key[128], hex[65];
    int n = snprintf(key, sizeof(key), "cell|%s|%s", resource_guid, begin);
    util_sha256_hex(key, (size_t)n < sizeof(key) ? (size_t)n : sizeof(key) - 1, hex);
    hex[12] = '5';                              /* version: name-based */
    int nib = hex[16] <= '9' ? hex[16] - '0' : hex[16] - 'a' + 10;
    hex[16] = "89ab"[nib & 3];                  /* variant: RFC 4122 */
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
}
