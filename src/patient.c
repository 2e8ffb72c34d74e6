/* patient.c - see patient.h. */
#include "patient.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ids.h"
#include "json.h"
#include "stmts.h"

/* How a field came. */
enum field {
    F_ABSENT,  /* missing or null (or, for a required string, blank) */
    F_OK,
    F_BAD,     /* present but wrong: a message was added */
};

/* The normalized card, filled while validating. Pointers point into the
 * parsed tree or into the arrays here. */
struct norm {
    char guid[GUID_LEN + 1];
    const char *family, *name, *patronymic;
    char family_key[PATIENT_STR_MAX * 4], name_key[PATIENT_STR_MAX * 4],
        patronymic_key[PATIENT_STR_MAX * 4];
    char birthday[11];
    int gender;                      /* 0: none */
    char snils[12];
    char polis_type[16];
    char polis_series[48], polis_number[48];
    char polis_key[100];
    bool is_enp;
    char polis_start[11], polis_end[11];
    const char *polis_smo;
    bool has_doc;
    char doc_type[16];
    char doc_series[48], doc_number[48];
    char doc_date[11];
    const char *doc_issued_by;
    char phone[12];
    const char *email;
    int blood_type;                  /* 0: none */
    int rh, black_label, is_worker;  /* -1: none */
    const char *birthplace, *reg_address, *fact_address, *work_place, *profession, *position;
    /* attachment */
    char att_guid[GUID_LEN + 1];
    char att_date[11];
    int att_type;                    /* 1 by residence (default), 2 by application */
    const char *att_area;
};

void patient_msg(struct patient_msgs *m, const char *fmt, ...)
{
    if (m->n >= PATIENT_MSGS_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->text[m->n], PATIENT_MSG_LEN, fmt, ap);
    va_end(ap);
    m->n++;
}

const char *patient_status_name(enum patient_status s)
{
    switch (s) {
    case PATIENT_UPLOADED: return "Uploaded";
    case PATIENT_NOT_VALID: return "NotValid";
    case PATIENT_ERROR: return "Error";
    case PATIENT_NONE: break;
    }
    return "None";
}

static enum patient_status status_from_name(const char *s)
{
    if (!s)
        return PATIENT_NONE;
    if (strcmp(s, "Uploaded") == 0)
        return PATIENT_UPLOADED;
    if (strcmp(s, "NotValid") == 0)
        return PATIENT_NOT_VALID;
    if (strcmp(s, "Error") == 0)
        return PATIENT_ERROR;
    return PATIENT_NONE;
}

/* Code points of valid UTF-8 (json_parse has validated it). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static bool blank(const char *s)
{
    return s[strspn(s, " \t\r\n")] == '\0';
}

/* A string field: a JSON string of at most PATIENT_STR_MAX characters.
 * Required ones must not be blank. */
static enum field get_str(struct patient_msgs *m, yajl_val obj, const char *key, const char *label,
                          bool required, const char **out)
{
    yajl_val v = json_get(obj, key);
    *out = NULL;
    if (json_is_null(v) || (YAJL_IS_STRING(v) && required && blank(v->u.string))) {
        if (required)
            patient_msg(m, "%s: не заполнено обязательное поле", label);
        return F_ABSENT;
    }
    if (!YAJL_IS_STRING(v)) {
        patient_msg(m, "%s: ожидается строка", label);
        return F_BAD;
    }
    if (utf8_chars(v->u.string) > PATIENT_STR_MAX) {
        patient_msg(m, "%s: длиннее %d символов", label, PATIENT_STR_MAX);
        return F_BAD;
    }
    *out = v->u.string;
    return F_OK;
}

/* A code that MIS send as a string or as an integer ("1" or 1). */
static enum field get_code(struct patient_msgs *m, yajl_val v, const char *label, char *out, size_t cap)
{
    out[0] = '\0';
    if (json_is_null(v) || (YAJL_IS_STRING(v) && blank(v->u.string)))
        return F_ABSENT;
    if (YAJL_IS_INTEGER(v)) {
        snprintf(out, cap, "%lld", YAJL_GET_INTEGER(v));
        return F_OK;
    }
    if (YAJL_IS_STRING(v) && strlen(v->u.string) < cap) {
        util_strlcpy(out, v->u.string, cap);
        return F_OK;
    }
    patient_msg(m, "%s: неверный формат", label);
    return F_BAD;
}

/* A small enumeration 1..max as an integer or a string of one digit. */
static enum field get_small(struct patient_msgs *m, yajl_val obj, const char *key, const char *label,
                            int max, const char *expect, int *out)
{
    char code[16];
    *out = 0;
    enum field f = get_code(m, json_get(obj, key), label, code, sizeof(code));
    if (f != F_OK)
        return f;
    if (strlen(code) == 1 && code[0] >= '1' && code[0] <= '0' + max) {
        *out = code[0] - '0';
        return F_OK;
    }
    patient_msg(m, "%s: допустимые значения %s", label, expect);
    return F_BAD;
}

static enum field get_bool(struct patient_msgs *m, yajl_val obj, const char *key, const char *label,
                           int *out)
{
    yajl_val v = json_get(obj, key);
    *out = -1;
    if (json_is_null(v))
        return F_ABSENT;
    if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        *out = YAJL_IS_TRUE(v) ? 1 : 0;
        return F_OK;
    }
    patient_msg(m, "%s: ожидается true или false", label);
    return F_BAD;
}

static bool two_digits(const char *p, int max, int *out)
{
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9')
        return false;
    *out = (p[0] - '0') * 10 + (p[1] - '0');
    return *out <= max;
}

/* DateTime as MIS write it: YYYY-MM-DD, optionally followed by "T" or " ",
 * HH:MM:SS, a fraction and a zone (Z or ±hh:mm). The date part is kept. */
static bool parse_datetime(const char *s, char out[11])
{
    int y, mo, d, x;
    char date[11];
    if (strlen(s) < 10)
        return false;
    memcpy(date, s, 10);
    date[10] = '\0';
    if (ids_date(date, &y, &mo, &d) != ID_OK)
        return false;
    const char *p = s + 10;
    if (*p) {
        if (*p != 'T' && *p != ' ')
            return false;
        p++;
        if (!two_digits(p, 23, &x) || p[2] != ':' || !two_digits(p + 3, 59, &x) || p[5] != ':' ||
            !two_digits(p + 6, 59, &x))
            return false;
        p += 8;
        if (*p == '.') {
            size_t n = strspn(p + 1, "0123456789");
            if (n < 1 || n > 9)
                return false;
            p += 1 + n;
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            if (!two_digits(p + 1, 14, &x) || p[3] != ':' || !two_digits(p + 4, 59, &x))
                return false;
            p += 6;
        }
        if (*p)
            return false;
    }
    snprintf(out, 11, "%04d-%02d-%02d", y, mo, d);
    return true;
}

static enum field get_date(struct patient_msgs *m, yajl_val obj, const char *key, const char *label,
                           bool required, const char *today, char out[11])
{
    const char *s;
    out[0] = '\0';
    enum field f = get_str(m, obj, key, label, required, &s);
    if (f != F_OK)
        return f;
    if (!parse_datetime(s, out)) {
        out[0] = '\0';
        patient_msg(m, "%s: ожидается дата ГГГГ-ММ-ДД (1900-2100) или дата и время ISO 8601", label);
        return F_BAD;
    }
    if (today && strcmp(out, today) > 0) {
        patient_msg(m, "%s: дата в будущем", label);
        return F_BAD;
    }
    return F_OK;
}

/* A name: folded for matching. */
static enum field get_name(struct patient_msgs *m, yajl_val obj, const char *key, const char *label,
                           bool required, const char **out, char *fold, size_t cap)
{
    fold[0] = '\0';
    enum field f = get_str(m, obj, key, label, required, out);
    if (f != F_OK)
        return f;
    if (!ids_fold_name(*out, fold, cap)) {
        patient_msg(m, "%s: неверный формат", label);
        return F_BAD;
    }
    return F_OK;
}

/* The basic shape of an address: local@domain.tld, no spaces. */
static bool email_shape(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || at == s || strchr(at + 1, '@') || strpbrk(s, " \t\r\n,;<>\"()[]\\"))
        return false;
    const char *dot = strrchr(at + 1, '.');
    return dot && dot > at + 1 && dot[1] != '\0';
}

static void check_polis(struct patient_msgs *m, yajl_val pt, const char *today, struct norm *n)
{
    yajl_val polis = json_get(pt, "polis");
    if (json_is_null(polis)) {
        patient_msg(m, "Polis: не заполнено обязательное поле");
        return;
    }
    if (!YAJL_IS_OBJECT(polis)) {
        patient_msg(m, "Polis: ожидается объект");
        return;
    }
    yajl_val type = json_get(polis, "type");
    if (!json_is_null(type) && !YAJL_IS_OBJECT(type))
        patient_msg(m, "Polis.Type: ожидается объект {code, name}");
    else
        get_code(m, json_get(type, "code"), "Polis.Type.Code", n->polis_type, sizeof(n->polis_type));
    const char *series, *number;
    enum field fs = get_str(m, polis, "series", "Polis.Series", false, &series);
    enum field fn = get_str(m, polis, "number", "Polis.Number", true, &number);
    if (fs == F_OK && blank(series))
        fs = F_ABSENT;
    if (fn == F_OK) {
        /* Type 3 is the polis of the single form, Э and П its electronic and
         * paper kinds; a 16-digit number without a series is one too. Its
         * key has no series, as the token look-up builds it. */
        const char *t = n->polis_type;
        bool enp_type = strcmp(t, "3") == 0 || strcmp(t, "Э") == 0 || strcmp(t, "П") == 0;
        if (enp_type || (fs != F_OK && strlen(number) == 16 && strspn(number, "0123456789") == 16)) {
            enum id_check c = ids_enp(number);
            if (c == ID_CHECKSUM)
                patient_msg(m, "Polis.Number: ЕНП не прошёл проверку контрольного числа");
            else if (c != ID_OK)
                patient_msg(m, "Polis.Number: ЕНП должен состоять из 16 цифр");
            else {
                n->is_enp = true;
                util_strlcpy(n->polis_number, number, sizeof(n->polis_number));
                snprintf(n->polis_key, sizeof(n->polis_key), "|%s", number);
            }
        } else {
            bool ok = true;
            if (ids_polis_part(number, n->polis_number, sizeof(n->polis_number)) != ID_OK) {
                patient_msg(m, "Polis.Number: неверный формат (до 20 букв, цифр, пробелов и дефисов)");
                ok = false;
            }
            if (fs == F_OK &&
                ids_polis_part(series, n->polis_series, sizeof(n->polis_series)) != ID_OK) {
                patient_msg(m, "Polis.Series: неверный формат (до 20 букв, цифр, пробелов и дефисов)");
                ok = false;
            }
            if (ok)
                snprintf(n->polis_key, sizeof(n->polis_key), "%s|%s", n->polis_series,
                         n->polis_number);
        }
    }
    enum field f1 = get_date(m, polis, "start", "Polis.Start", false, today, n->polis_start);
    /* A polis may end in the future: no today for its end. */
    enum field f2 = get_date(m, polis, "end", "Polis.End", false, NULL, n->polis_end);
    if (f1 == F_OK && f2 == F_OK && strcmp(n->polis_end, n->polis_start) < 0)
        patient_msg(m, "Polis.End: раньше Polis.Start");
    get_str(m, polis, "smo", "Polis.Smo", false, &n->polis_smo);
}

static void check_document(struct patient_msgs *m, yajl_val pt, const char *today, struct norm *n)
{
    yajl_val doc = json_get(pt, "identityDocument");
    if (json_is_null(doc))
        return;
    if (!YAJL_IS_OBJECT(doc)) {
        patient_msg(m, "IdentityDocument: ожидается объект");
        return;
    }
    n->has_doc = true;
    yajl_val type = json_get(doc, "type");
    enum field ft = F_ABSENT;
    if (!json_is_null(type) && !YAJL_IS_OBJECT(type))
        patient_msg(m, "IdentityDocument.Type: ожидается объект {code, name}");
    else
        ft = get_code(m, json_get(type, "code"), "IdentityDocument.Type.Code", n->doc_type,
                      sizeof(n->doc_type));
    if (ft == F_ABSENT && (json_is_null(type) || YAJL_IS_OBJECT(type)))
        patient_msg(m, "IdentityDocument.Type.Code: не заполнено обязательное поле");
    const char *series, *number;
    enum field fs = get_str(m, doc, "series", "IdentityDocument.Series", false, &series);
    enum field fn = get_str(m, doc, "number", "IdentityDocument.Number", true, &number);
    if (strcmp(n->doc_type, "14") == 0) {
        /* A passport is kept as bare digits, as the token look-up gives it. */
        if (fs != F_OK)
            patient_msg(m, "IdentityDocument.Series: не заполнено обязательное поле");
        else if (ids_passport_series(series, n->doc_series) != ID_OK)
            patient_msg(m, "IdentityDocument.Series: серия паспорта - 4 цифры");
        if (fn == F_OK && ids_passport_number(number, n->doc_number) != ID_OK)
            patient_msg(m, "IdentityDocument.Number: номер паспорта - 6 цифр");
    } else {
        if (fs == F_OK && strlen(series) >= sizeof(n->doc_series))
            patient_msg(m, "IdentityDocument.Series: длиннее %zu байт", sizeof(n->doc_series) - 1);
        else if (fs == F_OK)
            util_strlcpy(n->doc_series, series, sizeof(n->doc_series));
        if (fn == F_OK && strlen(number) >= sizeof(n->doc_number))
            patient_msg(m, "IdentityDocument.Number: длиннее %zu байт", sizeof(n->doc_number) - 1);
        else if (fn == F_OK)
            util_strlcpy(n->doc_number, number, sizeof(n->doc_number));
    }
    get_date(m, doc, "date", "IdentityDocument.Date", false, today, n->doc_date);
    get_str(m, doc, "issuedBy", "IdentityDocument.IssuedBy", false, &n->doc_issued_by);
}

/* Attachment (прикрепление; the seed does not define it): Guid?, Mcod?
 * (the card's LPU; another is refused), Date (required, not in the
 * future), Type? (1 by residence, 2 by application; default 1), Area?
 * (the district, участок). Returns whether it passed. */
static bool check_attachment(struct patient_msgs *m, yajl_val att, const char *card_mcod,
                             const char *today, struct norm *n)
{
    int before = m->n;
    if (!YAJL_IS_OBJECT(att)) {
        patient_msg(m, "Attachment: ожидается объект");
        return false;
    }
    const char *s;
    if (get_str(m, att, "guid", "Attachment.Guid", false, &s) == F_OK &&
        ids_guid(s, n->att_guid) != ID_OK)
        patient_msg(m, "Attachment.Guid: неверный формат GUID");
    if (get_str(m, att, "mcod", "Attachment.Mcod", false, &s) == F_OK) {
        if (ids_mcod(s) != ID_OK)
            patient_msg(m, "Attachment.Mcod: МКОД - 6 или 7 цифр");
        else if (card_mcod[0] && strcmp(s, card_mcod) != 0)
            patient_msg(m, "Attachment.Mcod: прикрепление возможно только к ЛПУ карты (%s)", card_mcod);
    }
    get_date(m, att, "date", "Attachment.Date", true, today, n->att_date);
    if (get_small(m, att, "type", "Attachment.Type", 2, "1 (по месту жительства) или 2 (по заявлению)",
                  &n->att_type) == F_ABSENT)
        n->att_type = 1;
    get_str(m, att, "area", "Attachment.Area", false, &n->att_area);
    return m->n == before;
}

static void gen_kv_opt(yajl_gen g, const char *key, const char *val)
{
    json_gen_kv_str(g, key, val && *val ? val : NULL);
}

static void gen_kv_tri(yajl_gen g, const char *key, int v)
{
    json_gen_str(g, key);
    if (v < 0)
        yajl_gen_null(g);
    else
        yajl_gen_bool(g, v);
}

/* The item mip_patient_upload reads. */
static void gen_item(const struct norm *n, const char *mcod, bool attachment, struct buf *out)
{
    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);
    gen_kv_opt(g, "guid", n->guid);
    json_gen_kv_str(g, "mcod", mcod);
    json_gen_kv_str(g, "family", n->family);
    json_gen_kv_str(g, "name", n->name);
    json_gen_kv_str(g, "patronymic", n->patronymic ? n->patronymic : "");
    json_gen_kv_str(g, "family_key", n->family_key);
    json_gen_kv_str(g, "name_key", n->name_key);
    json_gen_kv_str(g, "patronymic_key", n->patronymic_key);
    json_gen_kv_str(g, "birthday", n->birthday);
    json_gen_str(g, "gender");
    if (n->gender)
        yajl_gen_integer(g, n->gender);
    else
        yajl_gen_null(g);
    gen_kv_opt(g, "snils", n->snils);
    json_gen_kv_str(g, "polis_type", n->polis_type);
    json_gen_kv_str(g, "polis_series", n->polis_series);
    json_gen_kv_str(g, "polis_number", n->polis_number);
    json_gen_kv_str(g, "polis_key", n->polis_key);
    json_gen_kv_bool(g, "is_enp", n->is_enp);
    gen_kv_opt(g, "polis_start", n->polis_start);
    gen_kv_opt(g, "polis_end", n->polis_end);
    gen_kv_opt(g, "polis_smo", n->polis_smo);
    gen_kv_opt(g, "doc_type", n->has_doc ? n->doc_type : NULL);
    gen_kv_opt(g, "doc_series", n->has_doc ? n->doc_series : NULL);
    gen_kv_opt(g, "doc_number", n->has_doc ? n->doc_number : NULL);
    gen_kv_opt(g, "doc_date", n->has_doc ? n->doc_date : NULL);
    gen_kv_opt(g, "doc_issued_by", n->has_doc ? n->doc_issued_by : NULL);
    json_gen_kv_str(g, "phone", n->phone);
    gen_kv_opt(g, "email", n->email);
    char bt[4] = "";
    if (n->blood_type)
        snprintf(bt, sizeof(bt), "%d", n->blood_type);
    gen_kv_opt(g, "blood_type", bt);
    gen_kv_tri(g, "rh", n->rh);
    json_gen_kv_bool(g, "black_label", n->black_label == 1);
    json_gen_str(g, "attrs");
    yajl_gen_map_open(g);
    gen_kv_opt(g, "birthplace", n->birthplace);
    gen_kv_opt(g, "regAddress", n->reg_address);
    gen_kv_opt(g, "factAddress", n->fact_address);
    gen_kv_tri(g, "isWorker", n->is_worker);
    gen_kv_opt(g, "workPlace", n->work_place);
    gen_kv_opt(g, "profession", n->profession);
    gen_kv_opt(g, "position", n->position);
    yajl_gen_map_close(g);
    json_gen_str(g, "attachment");
    if (attachment) {
        yajl_gen_map_open(g);
        gen_kv_opt(g, "guid", n->att_guid);
        json_gen_kv_str(g, "date", n->att_date);
        json_gen_kv_int(g, "type", n->att_type);
        gen_kv_opt(g, "area", n->att_area);
        yajl_gen_map_close(g);
    } else {
        yajl_gen_null(g);
    }
    yajl_gen_map_close(g);
    json_gen_finish(g, out);
}

static void local_today(char out[11])
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(out, 11, "%Y-%m-%d", &tm);
}

void patient_validate(yajl_val v, const char *today, struct patient_check *c)
{
    memset(c, 0, sizeof(*c));
    buf_init(&c->item);
    struct patient_msgs *m = &c->msgs;
    char today_buf[11];
    if (!today) {
        local_today(today_buf);
        today = today_buf;
    }
    if (!YAJL_IS_OBJECT(v)) {
        patient_msg(m, "Patient: ожидается объект");
        return;
    }
    struct norm *n = calloc(1, sizeof(*n));
    if (!n) {
        patient_msg(m, "Patient: недостаточно памяти");
        return;
    }
    const char *s;

    if (get_str(m, v, "guid", "Guid", false, &s) == F_OK && ids_guid(s, n->guid) != ID_OK)
        patient_msg(m, "Guid: неверный формат GUID");
    get_name(m, v, "family", "Family", true, &n->family, n->family_key, sizeof(n->family_key));
    get_name(m, v, "name", "Name", true, &n->name, n->name_key, sizeof(n->name_key));
    /* Required by the seed, but not everyone has one: the field must come,
     * and may be "" (or blank). */
    yajl_val pv = json_get(v, "patronymic");
    if (json_is_null(pv))
        patient_msg(m, "Patronymic: не заполнено обязательное поле (пустая строка, если отчества нет)");
    else
        get_name(m, v, "patronymic", "Patronymic", false, &n->patronymic, n->patronymic_key,
                 sizeof(n->patronymic_key));
    get_date(m, v, "birthday", "Birthday", true, today, n->birthday);
    get_str(m, v, "birthplace", "Birthplace", false, &n->birthplace);
    check_polis(m, v, today, n);
    check_document(m, v, today, n);
    if (get_str(m, v, "mcod", "Mcod", true, &s) == F_OK) {
        if (ids_mcod(s) == ID_OK)
            util_strlcpy(c->mcod, s, sizeof(c->mcod));
        else
            patient_msg(m, "Mcod: МКОД - 6 или 7 цифр");
    }
    if (get_str(m, v, "phone", "Phone", true, &s) == F_OK && ids_phone_ru(s, n->phone) != ID_OK)
        patient_msg(m, "Phone: ожидается номер из 11 цифр, начинающийся с 7 или 8");
    if (get_str(m, v, "email", "Email", false, &n->email) == F_OK && !email_shape(n->email))
        patient_msg(m, "Email: неверный формат адреса");
    get_small(m, v, "gender", "Gender", 2, "1 (мужской) или 2 (женский)", &n->gender);
    if (get_str(m, v, "snils", "Snils", false, &s) == F_OK && !blank(s)) {
        enum id_check sc = ids_snils(s, n->snils);
        if (sc == ID_CHECKSUM)
            patient_msg(m, "Snils: не прошёл проверку контрольного числа");
        else if (sc != ID_OK)
            patient_msg(m, "Snils: ожидается 11 цифр (XXX-XXX-XXX YY)");
        /* The placeholder for "unknown" (seed 003's example), not a
         * number: no SNILS. */
        if (sc != ID_OK || strcmp(n->snils, IDS_SNILS_PLACEHOLDER) == 0)
            n->snils[0] = '\0';
    }
    get_str(m, v, "regAddress", "RegAddress", false, &n->reg_address);
    get_str(m, v, "factAddress", "FactAddress", false, &n->fact_address);
    get_bool(m, v, "isWorker", "IsWorker", &n->is_worker);
    get_str(m, v, "workPlace", "WorkPlace", false, &n->work_place);
    get_str(m, v, "profession", "Profession", false, &n->profession);
    get_str(m, v, "position", "Position", false, &n->position);
    get_small(m, v, "bloodType", "BloodType", 4, "1, 2, 3 или 4 (I, II, III, IV)", &n->blood_type);
    get_bool(m, v, "rh", "RH", &n->rh);
    get_bool(m, v, "blackLabel", "BlackLabel", &n->black_label);
    int card_msgs = m->n;

    yajl_val att = json_get(v, "attachment");
    if (!json_is_null(att)) {
        c->has_attachment = true;
        c->attachment_valid = check_attachment(m, att, c->mcod, today, n);
    }
    c->card_valid = card_msgs == 0;
    if (c->card_valid)
        gen_item(n, c->mcod, c->has_attachment && c->attachment_valid, &c->item);
    free(n);
}

void patient_check_free(struct patient_check *c)
{
    buf_free(&c->item);
}

static void copy_guid(yajl_val v, char out[GUID_LEN + 1])
{
    const char *s = json_str(v);
    if (!s || ids_guid(s, out) != ID_OK)
        out[0] = '\0';
}

bool patient_result_make(const struct patient_check *c, const char *json, size_t len,
                         struct patient_result *res)
{
    memset(res, 0, sizeof(*res));
    res->msgs = c->msgs;
    res->mkab = PATIENT_NOT_VALID;
    res->attachment = PATIENT_NONE;
    if (!c->card_valid)
        return true;
    if (!json)
        return false;
    char err[128];
    yajl_val root = json_parse(json, len, 4, err, sizeof(err));
    if (!root || !YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        return false;
    }
    res->mkab = status_from_name(json_str(json_get(root, "MkabStatus")));
    res->attachment = status_from_name(json_str(json_get(root, "AttachmentStatus")));
    copy_guid(json_get(root, "PersonGuid"), res->person);
    copy_guid(json_get(root, "MkabGuid"), res->mkab_guid);
    copy_guid(json_get(root, "AttachmentGuid"), res->attachment_guid);
    res->changed = YAJL_IS_TRUE(json_get(root, "Changed"));
    yajl_val msgs = json_get(root, "ValidationMessage");
    for (size_t i = 0; YAJL_IS_ARRAY(msgs) && i < msgs->u.array.len; i++) {
        const char *s = json_str(msgs->u.array.values[i]);
        if (s)
            patient_msg(&res->msgs, "%s", s);
    }
    yajl_tree_free(root);
    if (res->mkab == PATIENT_NONE)
        return false;
    /* The card was stored; an attachment that failed validation was not. */
    if (res->mkab == PATIENT_UPLOADED && c->has_attachment && !c->attachment_valid)
        res->attachment = PATIENT_NOT_VALID;
    return true;
}

void patient_result_gen(const struct patient_result *res, yajl_gen g)
{
    yajl_gen_map_open(g);
    json_gen_kv_str(g, "MkabStatus", patient_status_name(res->mkab));
    json_gen_kv_str(g, "AttachmentStatus", patient_status_name(res->attachment));
    gen_kv_opt(g, "PersonGuid", res->person);
    gen_kv_opt(g, "MkabGuid", res->mkab_guid);
    gen_kv_opt(g, "AttachmentGuid", res->attachment_guid);
    json_gen_str(g, "ValidationMessage");
    yajl_gen_array_open(g);
    for (int i = 0; i < res->msgs.n; i++)
        json_gen_str(g, res->msgs.text[i]);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
}

int patient_import(PGconn *conn, yajl_val item, const char *const *allowed, int nallowed,
                   struct buf *msg)
{
    struct patient_check c;
    struct patient_result res;
    int rc = -1;
    patient_validate(item, NULL, &c);
    if (!c.card_valid) {
        patient_result_make(&c, NULL, 0, &res);
        rc = PATIENT_NOT_VALID;
        goto out;
    }
    struct buf lit;
    buf_init(&lit);
    if (allowed && !ids_mcod_array(allowed, nallowed, &lit)) {
        buf_free(&lit);
        buf_printf(msg, "an allowed LPU is not a МКОД");
        goto out;
    }
    /* A batch of one, as the pool sends a call that found no company. */
    const char *call[] = {c.item.data, allowed ? lit.data : NULL};
    const char *const *calls[] = {call};
    struct buf vals[2];
    buf_init(&vals[0]);
    buf_init(&vals[1]);
    stmt_batch_values(STMT_PATIENT_UPLOAD, calls, 1, vals);
    const char *params[] = {vals[0].data, vals[1].data};
    const struct pg_stmt *st = &pg_stmts[STMT_PATIENT_UPLOAD];
    PGresult *pr = PQexecParams(conn, st->sql, st->nparams, NULL, params, NULL, NULL, 0);
    buf_free(&vals[0]);
    buf_free(&vals[1]);
    buf_free(&lit);
    if (PQresultStatus(pr) != PGRES_TUPLES_OK || PQntuples(pr) != 1) {
        const char *e = PQresultErrorField(pr, PG_DIAG_MESSAGE_PRIMARY);
        buf_printf(msg, "PostgreSQL: %s", e ? e : PQerrorMessage(conn));
        PQclear(pr);
        patient_check_free(&c);
        return -1;
    }
    bool ok = patient_result_make(&c, PQgetvalue(pr, 0, 0), (size_t)PQgetlength(pr, 0, 0), &res);
    PQclear(pr);
    if (!ok) {
        buf_puts(msg, "mip_patient_upload gave an answer of another shape");
        goto out;
    }
    rc = res.mkab;
out:
    for (int i = 0; rc >= 0 && i < res.msgs.n; i++)
        buf_printf(msg, "%s%s", i ? "; " : "", res.msgs.text[i]);
    patient_check_free(&c);
    return rc;
}
