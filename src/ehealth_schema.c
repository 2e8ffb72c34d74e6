/* ehealth_schema.c - see ehealth_schema.h. */
#include "ehealth_schema.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ids.h"

#define PATH_LEN 256
#define NAME_MAX_CHARS 100
#define STR_MAX 255         /* free text the reference gives no bound for */
#define PHONES_MAX 10
#define PASSWORD_MAX 256

/* The predecessor's patterns, written in the answers as it writes them; the
 * checks themselves are C (see name_ok and friends). */
static const char NAME_PATTERN[] = "^(?!.*[ЫЪЭЁыъэё@%&$^#])[А-ЯҐЇІЄа-яґїіє\\'\\- ]+$";
static const char DOC_LETTERS_PATTERN[] = "^((?![ЫЪЭЁ])([А-ЯҐЇІЄ])){2}[0-9]{6}$";
static const char NATIONAL_ID_PATTERN[] = "^[0-9]{9}$";
static const char TAX_ID_PATTERN[] = "^[0-9]{10}$";
static const char UNZR_PATTERN[] = "^[0-9]{8}-[0-9]{5}$";
static const char PHONE_PATTERN[] = "^\\+38[0-9]{10}$";
static const char ZIP_PATTERN[] = "^[0-9]{5}$";
static const char OTP_PATTERN[] = "^[0-9]{4}$";
static const char UUID_PATTERN[] =
    "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";

/* ---- the report ---- */

/* A JSON string literal. s is valid UTF-8 (json_parse saw to it, or it is
 * ours), so only the quote, the backslash and control bytes need escapes. */
static void put_json_str(struct buf *b, const char *s)
{
    const char *run = s;
    buf_append(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_append(b, run, (size_t)(s - run));
        if (c == '"')
            buf_puts(b, "\\\"");
        else if (c == '\\')
            buf_puts(b, "\\\\");
        else
            buf_printf(b, "\\u%04x", c);
        run = s + 1;
    }
    buf_append(b, run, (size_t)(s - run));
    buf_append(b, "\"", 1);
}

void ehs_report_init(struct ehs_report *rep)
{
    buf_init(&rep->entries);
    rep->n = 0;
    rep->truncated = false;
}

void ehs_report_free(struct ehs_report *rep)
{
    buf_free(&rep->entries);
    rep->n = 0;
    rep->truncated = false;
}

static bool full(const struct ehs_report *rep)
{
    return rep->n >= EHS_MAX_ENTRIES;
}

void ehs_add(struct ehs_report *rep, const char *entry, const char *rule, const char *description,
             const char *params_json)
{
    if (full(rep)) {
        rep->truncated = true;
        return;
    }
    struct buf *b = &rep->entries;
    if (rep->n > 0)
        buf_append(b, ",", 1);
    buf_puts(b, "{\"entry_type\":\"json_data_property\",\"entry\":");
    put_json_str(b, entry);
    buf_puts(b, ",\"rules\":[{\"description\":");
    put_json_str(b, description);
    buf_puts(b, ",\"rule\":");
    put_json_str(b, rule);
    buf_puts(b, ",\"params\":");
    buf_puts(b, params_json ? params_json : "[]");
    buf_puts(b, "}]}");
    rep->n++;
}

void ehs_report_json(const struct ehs_report *rep, struct buf *out)
{
    buf_append(out, "[", 1);
    buf_append(out, rep->entries.data, rep->entries.len);
    buf_append(out, "]", 1);
}

/* ---- UTF-8 and characters ---- */

/* The code point at *s, which is not the terminator, advancing *s past it.
 * A byte that starts no valid sequence reads as U+FFFD and is skipped
 * alone, so that no caller loops or runs past the NUL on a bad string. */
static uint32_t utf8_next(const char **s)
{
    const unsigned char *p = (const unsigned char *)*s;
    uint32_t c = p[0], min;
    int n;

    if (c < 0x80) {
        *s += 1;
        return c;
    }
    if ((c & 0xE0) == 0xC0) {
        n = 1, c &= 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        n = 2, c &= 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        n = 3, c &= 0x07, min = 0x10000;
    } else {
        goto bad;
    }
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80)  /* the NUL stops here too */
            goto bad;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        goto bad;
    *s += n + 1;
    return c;
bad:
    *s += 1;
    return 0xFFFD;
}

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    while (*s) {
        utf8_next(&s);
        n++;
    }
    return n;
}

/* User text echoed in an answer, cut at a character boundary. */
static void echo(char out[EHS_ECHO_MAX + 4], const char *s)
{
    const char *p = s, *end = s;
    while (*p) {
        utf8_next(&p);
        if ((size_t)(p - s) > EHS_ECHO_MAX)
            break;
        end = p;
    }
    size_t n = (size_t)(end - s);
    memcpy(out, s, n);
    strcpy(out + n, *end ? "..." : "");
}

/* Ukrainian Cyrillic: А-Я without Ы Ъ Э (Ё lies outside the range), with
 * Ґ Є І Ї; the same for the lower case. Ь stays: Ukrainian writes it. */
static bool uk_upper(uint32_t c)
{
    if (c >= 0x0410 && c <= 0x042F)
        return c != 0x042A && c != 0x042B && c != 0x042D;
    return c == 0x0490 || c == 0x0404 || c == 0x0406 || c == 0x0407;
}

static bool uk_lower(uint32_t c)
{
    if (c >= 0x0430 && c <= 0x044F)
        return c != 0x044A && c != 0x044B && c != 0x044D;
    return c == 0x0491 || c == 0x0454 || c == 0x0456 || c == 0x0457;
}

static bool is_apostrophe(uint32_t c)
{
    return c == '\'' || c == 0x2019 || c == 0x02BC;
}

/* Lower case of Latin and Cyrillic letters, every apostrophe as '. */
static uint32_t name_fold(uint32_t c)
{
    if (c >= 'A' && c <= 'Z')
        return c + 0x20;
    if (c >= 0x0410 && c <= 0x042F)
        return c + 0x20;
    if (c == 0x0401)
        return 0x0451;
    if (c == 0x0490)
        return 0x0491;
    if (c == 0x0404 || c == 0x0406 || c == 0x0407)
        return c + 0x50;
    if (is_apostrophe(c))
        return '\'';
    return c;
}

/* ---- the patterns, in C ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool digits_at(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_digit(s[i]))  /* stops at the NUL */
            return false;
    return true;
}

static bool all_digits(const char *s, size_t n)
{
    return digits_at(s, n) && s[n] == '\0';
}

static bool is_tax_id(const char *s)
{
    return all_digits(s, 10);
}

static bool is_national_id(const char *s)
{
    return all_digits(s, 9);
}

static bool is_zip(const char *s)
{
    return all_digits(s, 5);
}

static bool is_otp(const char *s)
{
    return all_digits(s, 4);
}

static bool is_unzr(const char *s)
{
    return digits_at(s, 8) && s[8] == '-' && all_digits(s + 9, 5);
}

static bool is_phone(const char *s)
{
    return strncmp(s, "+38", 3) == 0 && all_digits(s + 3, 10);
}

/* Any case: the pattern is written in lower case, as the reference does. */
static bool is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!is_digit(c) && !(c >= 'a' && c <= 'f') && !(c >= 'A' && c <= 'F')) {
            return false;  /* the NUL too */
        }
    }
    return s[36] == '\0';
}

/* Two Ukrainian capitals and six digits: old-style passports and the
 * certificates of foreigners. */
static bool is_doc_letters(const char *s)
{
    for (int i = 0; i < 2; i++)
        if (!*s || !uk_upper(utf8_next(&s)))
            return false;
    return all_digits(s, 6);
}

static bool name_ok(const char *s)
{
    if (!*s)
        return false;
    while (*s) {
        uint32_t c = utf8_next(&s);
        if (!uk_upper(c) && !uk_lower(c) && !is_apostrophe(c) && c != '-' && c != ' ')
            return false;
    }
    return true;
}

/* local@domain.tld, pragmatic: printable ASCII without spaces or the
 * specials in the local part, letter-digit-hyphen labels in the domain,
 * and a top-level domain of two or more letters. */
static bool email_ok(const char *s)
{
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    if (n > 254 || !at || at == s || at - s > 64 || strchr(at + 1, '@'))
        return false;
    if (s[0] == '.' || at[-1] == '.')
        return false;
    for (const char *p = s; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7F || strchr("\"(),:;<>[\\]", c) || (c == '.' && p[1] == '.'))
            return false;
    }
    const char *label = at + 1, *p = label;
    int labels = 0;
    for (;; p++) {
        char c = *p;
        if (c == '.' || c == '\0') {
            size_t len = (size_t)(p - label);
            if (len == 0 || len > 63 || label[0] == '-' || p[-1] == '-')
                return false;
            labels++;
            if (c == '\0')
                break;
            label = p + 1;
        } else if (!is_digit(c) && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && c != '-') {
            return false;
        }
    }
    if (labels < 2 || p - label < 2)
        return false;
    for (const char *t = label; t < p; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z')))
            return false;
    return true;
}

/* ---- dates ---- */

static int atoi_n(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* A real calendar date YYYY-MM-DD as a number that orders: YYYYMMDD. */
static bool parse_date(const char *s, long *out)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!s || !digits_at(s, 4) || s[4] != '-' || !digits_at(s + 5, 2) || s[7] != '-' ||
        !all_digits(s + 8, 2))
        return false;
    int y = atoi_n(s, 4), m = atoi_n(s + 5, 2), d = atoi_n(s + 8, 2);
    if (m < 1 || m > 12 || d < 1)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] + (m == 2 && leap))
        return false;
    *out = (long)y * 10000 + m * 100 + d;
    return true;
}

/* Not in the future and at most 150 years old at today (unchecked when
 * today is not a date). Full years are the YYYYMMDD difference / 10000. */
static bool birth_date_sane(long birth, const char *today)
{
    long now;
    if (!parse_date(today, &now))
        return true;
    return birth <= now && (now - birth) / 10000 <= 150;
}

/* ---- entries of each rule ---- */

enum jtype { J_STRING, J_OBJECT, J_ARRAY, J_BOOLEAN };
static const char *const jtype_names[] = {"string", "object", "array", "boolean"};

static bool is_type(yajl_val v, enum jtype t)
{
    switch (t) {
    case J_STRING: return YAJL_IS_STRING(v);
    case J_OBJECT: return YAJL_IS_OBJECT(v);
    case J_ARRAY: return YAJL_IS_ARRAY(v);
    case J_BOOLEAN: return YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v);
    }
    return false;
}

/* JSON Schema's names: a number without fraction or exponent is an integer
 * (yajl's own flag says only whether it fits in a long long). */
static const char *type_name(yajl_val v)
{
    if (!v || YAJL_IS_NULL(v))
        return "null";
    if (YAJL_IS_STRING(v))
        return "string";
    if (YAJL_IS_NUMBER(v))
        return strpbrk(v->u.number.r, ".eE") ? "number" : "integer";
    if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v))
        return "boolean";
    if (YAJL_IS_ARRAY(v))
        return "array";
    return "object";
}

/* An entry whose params are one string. */
static void add_str_param(struct ehs_report *rep, const char *path, const char *rule, const char *desc,
                          const char *param)
{
    if (full(rep)) {
        rep->truncated = true;
        return;
    }
    struct buf p;
    buf_init(&p);
    buf_append(&p, "[", 1);
    put_json_str(&p, param);
    buf_append(&p, "]", 1);
    ehs_add(rep, path, rule, desc, p.data);
    buf_free(&p);
}

static void add_required(struct ehs_report *rep, const char *path, const char *key)
{
    char desc[128];
    snprintf(desc, sizeof(desc), "required property %s was not present", key);
    ehs_add(rep, path, "required", desc, NULL);
}

static void add_cast(struct ehs_report *rep, const char *path, enum jtype want, yajl_val v)
{
    char desc[96];
    snprintf(desc, sizeof(desc), "type mismatch. Expected %s but got %s", jtype_names[want], type_name(v));
    add_str_param(rep, path, "cast", desc, jtype_names[want]);
}

static void add_format(struct ehs_report *rep, const char *path, const char *pattern)
{
    char desc[192];
    snprintf(desc, sizeof(desc), "string does not match pattern \"%s\"", pattern);
    add_str_param(rep, path, "format", desc, pattern);
}

static void add_length(struct ehs_report *rep, const char *path, bool items, bool is_min, size_t lim)
{
    char desc[96], params[32];
    if (items)
        snprintf(desc, sizeof(desc), "expected a %s of %zu items", is_min ? "minimum" : "maximum", lim);
    else
        snprintf(desc, sizeof(desc), "expected value to have a %s length of %zu", is_min ? "minimum" : "maximum",
                 lim);
    snprintf(params, sizeof(params), "[%zu]", lim);
    ehs_add(rep, path, "length", desc, params);
}

static void add_inclusion(struct ehs_report *rep, const char *path, const char *const *vals, size_t n)
{
    struct buf p;
    buf_init(&p);
    buf_append(&p, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_append(&p, ",", 1);
        put_json_str(&p, vals[i]);
    }
    buf_append(&p, "]", 1);
    ehs_add(rep, path, "inclusion", "value is not allowed in enum", p.data);
    buf_free(&p);
}

/* The date and email rules quote the value. */
static void add_quoting(struct ehs_report *rep, const char *path, const char *rule, const char *what,
                        const char *value)
{
    char v[EHS_ECHO_MAX + 4], desc[EHS_ECHO_MAX + 64];
    echo(v, value);
    snprintf(desc, sizeof(desc), "expected \"%s\" to be %s", v, what);
    ehs_add(rep, path, rule, desc, NULL);
}

static void add_invalid(struct ehs_report *rep, const char *path, const char *desc)
{
    ehs_add(rep, path, "invalid", desc, NULL);
}

/* ---- walking objects ---- */

/* An object being checked, and its path. */
struct walk {
    struct ehs_report *rep;
    yajl_val obj;
    const char *path;
};

/* Appends s to the path in out (of n bytes). Paths are far shorter than
 * PATH_LEN (ours, and a key cut to EHS_ECHO_MAX), so the cut never comes. */
static void path_add(char out[PATH_LEN], size_t *n, const char *s)
{
    size_t k = strlen(s);
    if (k > PATH_LEN - 1 - *n)
        k = PATH_LEN - 1 - *n;
    memcpy(out + *n, s, k);
    *n += k;
    out[*n] = '\0';
}

static void join(char out[PATH_LEN], const char *base, const char *key)
{
    size_t n = 0;
    path_add(out, &n, base);
    path_add(out, &n, ".");
    path_add(out, &n, key);
}

/* Keys compared exactly: the schema is case-sensitive, json_get is not. */
static yajl_val field(yajl_val obj, const char *key)
{
    for (size_t i = 0; i < obj->u.object.len; i++)
        if (strcmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    return NULL;
}

/* Every property not named in names is refused, and so is a named one given
 * twice: the checks here read the first, and a handler must not read
 * another. */
static void only_props(const struct walk *w, const char *const *names, size_t n)
{
    uint32_t seen = 0;  /* n <= 32 */
    for (size_t i = 0; i < w->obj->u.object.len && !full(w->rep); i++) {
        const char *key = w->obj->u.object.keys[i];
        char path[PATH_LEN];
        size_t j = 0;
        while (j < n && strcmp(key, names[j]) != 0)
            j++;
        if (j < n && !(seen & (1u << j))) {
            seen |= 1u << j;
            continue;
        }
        char k[EHS_ECHO_MAX + 4];
        echo(k, key);
        join(path, w->path, k);
        if (j < n)
            add_invalid(w->rep, path, "property is given more than once");
        else
            add_str_param(w->rep, path, "schema", "schema does not allow additional properties", k);
    }
}

/* The property key when it is of type t, else NULL: absent (an entry when
 * required) or another type, null included (an entry). fp gets its path. */
static yajl_val get(const struct walk *w, const char *key, enum jtype t, bool required, char fp[PATH_LEN])
{
    yajl_val v = field(w->obj, key);
    join(fp, w->path, key);
    if (!v) {
        if (required)
            add_required(w->rep, fp, key);
        return NULL;
    }
    if (!is_type(v, t)) {
        add_cast(w->rep, fp, t, v);
        return NULL;
    }
    return v;
}

/* A string of min..max characters (max 0: unbounded). The string is
 * returned even when its length is wrong, so that the caller's own rule is
 * checked too: every broken rule gives its entry. */
static const char *get_str(const struct walk *w, const char *key, bool required, size_t min, size_t max,
                           char fp[PATH_LEN])
{
    yajl_val v = get(w, key, J_STRING, required, fp);
    if (!v)
        return NULL;
    if (max) {
        size_t n = utf8_len(v->u.string);
        if (n < min)
            add_length(w->rep, fp, false, true, min);
        else if (n > max)
            add_length(w->rep, fp, false, false, max);
    }
    return v->u.string;
}

/* A string matching a pattern; NULL unless it does. */
static const char *get_fmt(const struct walk *w, const char *key, bool required, bool (*ok)(const char *),
                           const char *pattern)
{
    char fp[PATH_LEN];
    const char *s = get_str(w, key, required, 0, 0, fp);
    if (s && !ok(s)) {
        add_format(w->rep, fp, pattern);
        return NULL;
    }
    return s;
}

static void get_name(const struct walk *w, const char *key, bool required)
{
    char fp[PATH_LEN];
    const char *s = get_str(w, key, required, 1, NAME_MAX_CHARS, fp);
    if (s && !name_ok(s))
        add_format(w->rep, fp, NAME_PATTERN);
}

static void get_email(const struct walk *w, const char *key, bool required)
{
    char fp[PATH_LEN];
    const char *s = get_str(w, key, required, 0, 0, fp);
    if (s && !email_ok(s))
        add_quoting(w->rep, fp, "email", "an email address", s);
}

/* The index of the value in vals, or -1 (absent or wrong: reported). */
static int get_enum(const struct walk *w, const char *key, bool required, const char *const *vals, size_t n)
{
    char fp[PATH_LEN];
    const char *s = get_str(w, key, required, 0, 0, fp);
    if (!s)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, vals[i]) == 0)
            return (int)i;
    add_inclusion(w->rep, fp, vals, n);
    return -1;
}

/* A date as YYYYMMDD, or false. */
static bool get_date(const struct walk *w, const char *key, bool required, long *out)
{
    char fp[PATH_LEN];
    const char *s = get_str(w, key, required, 0, 0, fp);
    if (!s)
        return false;
    if (!parse_date(s, out)) {
        add_quoting(w->rep, fp, "date", "a valid ISO 8601 date", s);
        return false;
    }
    return true;
}

/* An array of min..max items to walk, or NULL: absent, not an array, or of
 * a length out of bounds (one entry, and a huge one is never walked). */
static yajl_val get_array(const struct walk *w, const char *key, bool required, size_t min, size_t max,
                          char fp[PATH_LEN])
{
    yajl_val v = get(w, key, J_ARRAY, required, fp);
    if (!v)
        return NULL;
    if (v->u.array.len < min) {
        add_length(w->rep, fp, true, true, min);
        return NULL;
    }
    if (v->u.array.len > max) {
        add_length(w->rep, fp, true, false, max);
        return NULL;
    }
    return v;
}

/* Item i of an array as an object to walk; false (reported) if it is none. */
static bool get_item(struct ehs_report *rep, yajl_val arr, const char *path, size_t i, struct walk *it,
                     char ip[PATH_LEN])
{
    yajl_val v = arr->u.array.values[i];
    char idx[32];
    size_t n = 0;
    snprintf(idx, sizeof(idx), ".[%zu]", i);
    path_add(ip, &n, path);
    path_add(ip, &n, idx);
    if (!YAJL_IS_OBJECT(v)) {
        add_cast(rep, ip, J_OBJECT, v);
        return false;
    }
    *it = (struct walk){rep, v, ip};
    return true;
}

/* ---- the person schema ---- */

enum doc_type {
    DOC_PASSPORT,
    DOC_NATIONAL_ID,
    DOC_BIRTH_CERTIFICATE,
    DOC_TEMPORARY_PASSPORT,
    DOC_COMPLEMENTARY_PROTECTION_CERTIFICATE,
    DOC_REFUGEE_CERTIFICATE,
    DOC_TEMPORARY_CERTIFICATE,
    DOC_PERMANENT_RESIDENCE_PERMIT,
    DOC_TYPES
};
static const char *const doc_types[DOC_TYPES] = {
    "PASSPORT", "NATIONAL_ID", "BIRTH_CERTIFICATE", "TEMPORARY_PASSPORT",
    "COMPLEMENTARY_PROTECTION_CERTIFICATE", "REFUGEE_CERTIFICATE", "TEMPORARY_CERTIFICATE",
    "PERMANENT_RESIDENCE_PERMIT",
};
static const char *const doc_props[] = {"type", "number", "issued_by", "issued_at", "expiration_date"};

static void check_doc_number(struct ehs_report *rep, int type, const char *num, const char *path)
{
    switch (type) {
    case DOC_NATIONAL_ID:
        if (!is_national_id(num))
            add_format(rep, path, NATIONAL_ID_PATTERN);
        break;
    case DOC_BIRTH_CERTIFICATE:
    case DOC_TEMPORARY_PASSPORT: {
        size_t n = utf8_len(num);
        if (n < 2 || n > 25)
            add_length(rep, path, false, n < 2, n < 2 ? 2 : 25);
        break;
    }
    default:
        if (!is_doc_letters(num))
            add_format(rep, path, DOC_LETTERS_PATTERN);
        break;
    }
}

/* Returns the set of document types given (bit per enum doc_type). */
static unsigned check_documents(const struct walk *w)
{
    char fp[PATH_LEN];
    yajl_val arr = get_array(w, "documents", true, 1, EHS_ARRAY_MAX, fp);
    unsigned seen = 0;
    int id_docs = 0;
    if (!arr)
        return 0;
    for (size_t i = 0; i < arr->u.array.len && !full(w->rep); i++) {
        struct walk d;
        char ip[PATH_LEN], p[PATH_LEN];
        long date;
        if (!get_item(w->rep, arr, fp, i, &d, ip))
            continue;
        only_props(&d, doc_props, ARRAY_LEN(doc_props));
        int t = get_enum(&d, "type", true, doc_types, DOC_TYPES);
        const char *num = get_str(&d, "number", true, t < 0 ? 1 : 0, t < 0 ? STR_MAX : 0, p);
        if (num && t >= 0)
            check_doc_number(w->rep, t, num, p);
        get_str(&d, "issued_by", true, 1, STR_MAX, p);
        get_date(&d, "issued_at", true, &date);
        get_date(&d, "expiration_date", t == DOC_NATIONAL_ID, &date);
        if (t < 0)
            continue;
        /* Two passports break the PASSPORT-or-NATIONAL_ID rule below: one
         * entry for them, not two. */
        if (t == DOC_PASSPORT || t == DOC_NATIONAL_ID) {
            id_docs++;
        } else if (seen & (1u << t)) {
            join(p, ip, "type");
            add_invalid(w->rep, p, "Only one document of each type is allowed");
        }
        seen |= 1u << t;
    }
    if (id_docs > 1)
        add_invalid(w->rep, fp, "Only one document of type PASSPORT or NATIONAL_ID is allowed");
    return seen;
}

static const char *const addr_types[] = {"RESIDENCE", "REGISTRATION"};
static const char *const settlement_types[] = {"CITY", "TOWNSHIP", "VILLAGE", "SETTLEMENT"};
static const char *const addr_props[] = {"type", "country", "area", "region", "settlement",
                                         "settlement_type", "settlement_id", "street_type", "street",
                                         "building", "apartment", "zip"};

static void check_addresses(const struct walk *w)
{
    char fp[PATH_LEN];
    yajl_val arr = get_array(w, "addresses", true, 1, EHS_ARRAY_MAX, fp);
    int residences = 0;
    if (!arr)
        return;
    for (size_t i = 0; i < arr->u.array.len && !full(w->rep); i++) {
        struct walk a;
        char ip[PATH_LEN], p[PATH_LEN];
        if (!get_item(w->rep, arr, fp, i, &a, ip))
            continue;
        only_props(&a, addr_props, ARRAY_LEN(addr_props));
        if (get_enum(&a, "type", true, addr_types, ARRAY_LEN(addr_types)) == 0)
            residences++;
        get_str(&a, "country", true, 1, STR_MAX, p);
        get_str(&a, "area", true, 1, STR_MAX, p);
        get_str(&a, "region", false, 0, STR_MAX, p);
        get_str(&a, "settlement", true, 1, STR_MAX, p);
        get_enum(&a, "settlement_type", true, settlement_types, ARRAY_LEN(settlement_types));
        get_fmt(&a, "settlement_id", true, is_uuid, UUID_PATTERN);
        get_str(&a, "street_type", false, 0, STR_MAX, p);
        get_str(&a, "street", false, 0, STR_MAX, p);
        get_str(&a, "building", true, 1, STR_MAX, p);
        get_str(&a, "apartment", false, 0, STR_MAX, p);
        get_fmt(&a, "zip", false, is_zip, ZIP_PATTERN);
    }
    if (residences != 1)
        add_invalid(w->rep, fp, "Must contain exactly one address of type RESIDENCE");
}

static const char *const phone_types[] = {"MOBILE", "LAND_LINE"};
static const char *const phone_props[] = {"type", "number"};

/* phones of a patient (optional, may be empty) or of an emergency contact
 * (required, at least one). */
static void check_phones(const struct walk *w, bool required)
{
    char fp[PATH_LEN];
    yajl_val arr = get_array(w, "phones", required, required ? 1 : 0, PHONES_MAX, fp);
    if (!arr)
        return;
    for (size_t i = 0; i < arr->u.array.len && !full(w->rep); i++) {
        struct walk ph;
        char ip[PATH_LEN];
        if (!get_item(w->rep, arr, fp, i, &ph, ip))
            continue;
        only_props(&ph, phone_props, ARRAY_LEN(phone_props));
        get_enum(&ph, "type", true, phone_types, ARRAY_LEN(phone_types));
        get_fmt(&ph, "number", true, is_phone, PHONE_PATTERN);
    }
}

enum { AUTH_OTP, AUTH_OFFLINE };
static const char *const auth_types[] = {"OTP", "OFFLINE"};
static const char *const auth_props[] = {"type", "phone_number"};

static void check_auth_methods(const struct walk *w)
{
    char fp[PATH_LEN];
    yajl_val arr = get_array(w, "authentication_methods", true, 1, EHS_ARRAY_MAX, fp);
    int otps = 0;
    if (!arr)
        return;
    for (size_t i = 0; i < arr->u.array.len && !full(w->rep); i++) {
        struct walk m;
        char ip[PATH_LEN];
        if (!get_item(w->rep, arr, fp, i, &m, ip))
            continue;
        int t = get_enum(&m, "type", true, auth_types, ARRAY_LEN(auth_types));
        /* OFFLINE has no phone: a phone_number there is an extra property. */
        only_props(&m, auth_props, t == AUTH_OFFLINE ? 1 : 2);
        if (t != AUTH_OFFLINE)
            get_fmt(&m, "phone_number", t == AUTH_OTP, is_phone, PHONE_PATTERN);
        if (t == AUTH_OTP)
            otps++;
    }
    if (otps > 1)
        add_invalid(w->rep, fp, "Only one authentication method of type OTP is allowed");
}

static const char *const contact_props[] = {"first_name", "last_name", "second_name", "phones"};

static void check_emergency_contact(const struct walk *w)
{
    char fp[PATH_LEN];
    yajl_val v = get(w, "emergency_contact", J_OBJECT, true, fp);
    if (!v)
        return;
    struct walk c = {w->rep, v, fp};
    only_props(&c, contact_props, ARRAY_LEN(contact_props));
    get_name(&c, "first_name", true);
    get_name(&c, "last_name", true);
    get_name(&c, "second_name", false);
    check_phones(&c, true);
}

static const char *const genders[] = {"MALE", "FEMALE"};
static const char *const ways[] = {"email", "phone"};
static const char *const person_props[] = {
    "first_name", "last_name", "second_name", "birth_date", "birth_country", "birth_settlement",
    "gender", "email", "tax_id", "no_tax_id", "unzr", "secret", "documents", "addresses", "phones",
    "authentication_methods", "emergency_contact", "preferred_way_communication",
    "process_disclosure_data_consent",
};

static void check_person(struct ehs_report *rep, yajl_val patient, const char *today)
{
    struct walk w = {rep, patient, "$.patient"};
    char fp[PATH_LEN];
    long birth;

    only_props(&w, person_props, ARRAY_LEN(person_props));
    get_name(&w, "first_name", true);
    get_name(&w, "last_name", true);
    get_name(&w, "second_name", false);
    bool birth_ok = get_date(&w, "birth_date", true, &birth);
    if (birth_ok && !birth_date_sane(birth, today))
        add_invalid(rep, "$.patient.birth_date", "Invalid birth date");
    get_str(&w, "birth_country", true, 1, NAME_MAX_CHARS, fp);
    get_str(&w, "birth_settlement", true, 1, NAME_MAX_CHARS, fp);
    get_enum(&w, "gender", true, genders, ARRAY_LEN(genders));
    get_email(&w, "email", false);
    get_fmt(&w, "tax_id", false, is_tax_id, TAX_ID_PATTERN);
    get(&w, "no_tax_id", J_BOOLEAN, false, fp);
    const char *unzr = get_fmt(&w, "unzr", false, is_unzr, UNZR_PATTERN);
    if (unzr && birth_ok) {
        char ymd[16];
        snprintf(ymd, sizeof(ymd), "%08ld", birth);
        if (strncmp(unzr, ymd, 8) != 0)
            add_invalid(rep, "$.patient.unzr", "Birthdate or unzr is not correct");
    }
    get_str(&w, "secret", false, 6, 20, fp);
    unsigned docs = check_documents(&w);
    /* Absent only: a unzr of a wrong type or shape has its entry already. */
    if ((docs & (1u << DOC_NATIONAL_ID)) && !field(patient, "unzr"))
        add_invalid(rep, "$.patient.unzr", "unzr is required for NATIONAL_ID document");
    check_addresses(&w);
    check_phones(&w, false);
    check_auth_methods(&w);
    check_emergency_contact(&w);
    get_enum(&w, "preferred_way_communication", false, ways, ARRAY_LEN(ways));
    yajl_val consent = get(&w, "process_disclosure_data_consent", J_BOOLEAN, true, fp);
    if (consent && !YAJL_IS_TRUE(consent))
        ehs_add(rep, fp, "inclusion", "value is not allowed in enum", "[true]");
}

/* ---- the bodies ---- */

static const char *const registration_props[] = {"otp", "password", "patient"};

int ehs_validate_registration(yajl_val body, const char *today, struct ehs_report *rep)
{
    struct walk w = {rep, body, "$"};
    char fp[PATH_LEN];

    if (!YAJL_IS_OBJECT(body)) {
        add_cast(rep, "$", J_OBJECT, body);
        return rep->n;
    }
    only_props(&w, registration_props, ARRAY_LEN(registration_props));
    get_fmt(&w, "otp", true, is_otp, OTP_PATTERN);
    get_str(&w, "password", true, 1, PASSWORD_MAX, fp);
    yajl_val patient = get(&w, "patient", J_OBJECT, true, fp);
    if (patient)
        check_person(rep, patient, today);
    return rep->n;
}

static const char *const user_request_props[] = {"tax_id", "first_name", "last_name", "email"};

int ehs_validate_user_request(yajl_val body, struct ehs_report *rep)
{
    struct walk w = {rep, body, "$"};

    if (!YAJL_IS_OBJECT(body)) {
        add_cast(rep, "$", J_OBJECT, body);
        return rep->n;
    }
    only_props(&w, user_request_props, ARRAY_LEN(user_request_props));
    get_fmt(&w, "tax_id", true, is_tax_id, TAX_ID_PATTERN);
    get_name(&w, "first_name", true);
    get_name(&w, "last_name", true);
    get_email(&w, "email", true);
    return rep->n;
}

static const char *const otp_request_props[] = {"phone_number"};

int ehs_validate_otp_request(yajl_val body, struct ehs_report *rep)
{
    struct walk w = {rep, body, "$"};

    if (!YAJL_IS_OBJECT(body)) {
        add_cast(rep, "$", J_OBJECT, body);
        return rep->n;
    }
    only_props(&w, otp_request_props, ARRAY_LEN(otp_request_props));
    get_fmt(&w, "phone_number", true, is_phone, PHONE_PATTERN);
    return rep->n;
}

const char *ehs_otp_phone(yajl_val patient)
{
    if (!YAJL_IS_OBJECT(patient))
        return NULL;
    yajl_val arr = field(patient, "authentication_methods");
    if (!YAJL_IS_ARRAY(arr))
        return NULL;
    for (size_t i = 0; i < arr->u.array.len; i++) {
        yajl_val m = arr->u.array.values[i];
        if (!YAJL_IS_OBJECT(m))
            continue;
        yajl_val t = field(m, "type");
        yajl_val phone = field(m, "phone_number");
        if (YAJL_IS_STRING(t) && strcmp(t->u.string, "OTP") == 0 && YAJL_IS_STRING(phone))
            return phone->u.string;
    }
    return NULL;
}

/* ---- the flow's helpers ---- */

bool ehs_password_ok(const char *pw)
{
    size_t n = 0;
    bool lower = false, upper = false, digit = false;
    if (!pw)
        return false;
    while (*pw) {
        uint32_t c = utf8_next(&pw);
        n++;
        if ((c >= 'a' && c <= 'z') || uk_lower(c))
            lower = true;
        else if ((c >= 'A' && c <= 'Z') || uk_upper(c))
            upper = true;
        else if (c >= '0' && c <= '9')
            digit = true;
    }
    return n >= 12 && lower && upper && digit;
}

static bool trim_char(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The bounds of s without the surrounding spaces. Only ASCII is cut, so the
 * end never falls inside a character. */
static void trim(const char *s, const char **b, const char **e)
{
    while (trim_char(*s))
        s++;
    const char *end = s + strlen(s);
    while (end > s && trim_char(end[-1]))
        end--;
    *b = s;
    *e = end;
}

bool ehs_names_match(const char *a, const char *b)
{
    const char *ae, *be;
    if (!a || !b)
        return false;
    trim(a, &a, &ae);
    trim(b, &b, &be);
    while (a < ae && b < be)
        if (name_fold(utf8_next(&a)) != name_fold(utf8_next(&b)))
            return false;
    return a == ae && b == be;
}

void ehs_mask_phone(const char *phone, char out[14])
{
    size_t n = phone ? strlen(phone) : 0;
    if (n < 8) {
        strcpy(out, "*****");
        return;
    }
    memcpy(out, phone, 6);
    memcpy(out + 6, "*****", 5);
    memcpy(out + 11, phone + n - 2, 2);
    out[13] = '\0';
}

int ehs_luhn_digit(const char *digits, size_t n)
{
    return ids_luhn_digit(digits, n);
}

bool ehs_luhn_ok(const char *code)
{
    return code && strlen(code) >= 2 && ids_luhn_valid(code, strlen(code));
}
