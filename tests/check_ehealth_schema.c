/* check_ehealth_schema.c - the eHealth cabinet registration's input rules
 * (src/ehealth_schema.c): a valid variant of seed 004's example passes, the
 * seed's own example fails exactly where the reference says, every rule of
 * every field gives its entry (path, rule, params), the answer is bounded,
 * and the flow's helpers: password policy, name matching, the masked
 * factor, the OTP's Luhn digit. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ehealth_schema.h"
#include "json.h"

#define TODAY "2026-11-23"

/* The params of the format rules as the answer writes them (JSON text). */
#define P_NAME "[\"^(?!.*[ЫЪЭЁыъэё@%&$^#])[А-ЯҐЇІЄа-яґїіє\\\\'\\\\- ]+$\"]"
#define P_DOC_LETTERS "[\"^((?![ЫЪЭЁ])([А-ЯҐЇІЄ])){2}[0-9]{6}$\"]"
#define P_PHONE "[\"^\\\\+38[0-9]{10}$\"]"
#define P_UUID "[\"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$\"]"
#define P_DOC_TYPES                                                                                 \
    "[\"PASSPORT\",\"NATIONAL_ID\",\"BIRTH_CERTIFICATE\",\"TEMPORARY_PASSPORT\","                  \
    "\"COMPLEMENTARY_PROTECTION_CERTIFICATE\",\"REFUGEE_CERTIFICATE\",\"TEMPORARY_CERTIFICATE\"," \
    "\"PERMANENT_RESIDENCE_PERMIT\"]"

#define NATIONAL_ID_DOC                                                                        \
    "{\"type\":\"NATIONAL_ID\",\"number\":\"123456789\",\"expiration_date\":\"2030-01-01\"," \
    "\"issued_by\":\"4601\",\"issued_at\":\"2020-01-01\"}"
#define BIRTH_CERT_DOC                                                                    \
    "{\"type\":\"BIRTH_CERTIFICATE\",\"number\":\"І-БК 123456\",\"issued_by\":\"РАЦС\"," \
    "\"issued_at\":\"1968-05-01\"}"
#define PASSPORT_DOC \
    "{\"type\":\"PASSPORT\",\"number\":\"ВК654321\",\"issued_by\":\"РВ\",\"issued_at\":\"1990-01-01\"}"

/* ---- fixtures ---- */

/* A file of the source tree: $srcdir (automake sets it for tests), else
 * $top_srcdir, else the tree this file was compiled from, else ".". */
static char *slurp(const char *rel, size_t *len)
{
    char path[1024];
    const char *dir = getenv("srcdir");
    if (!dir || !*dir)
        dir = getenv("top_srcdir");
    if (dir && *dir) {
        snprintf(path, sizeof(path), "%s/%s", dir, rel);
    } else {
        const char *file = __FILE__;
        const char *tail = strstr(file, "tests/check_ehealth_schema.c");
        int n = tail ? (int)(tail - file) : 0;
        snprintf(path, sizeof(path), "%.*s%s", n, tail ? file : "./", rel);
    }
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    size_t cap = 1 << 16;
    char *data = malloc(cap);
    *len = fread(data, 1, cap, f);
    fclose(f);
    ck_assert_uint_lt(*len, cap);
    data[*len] = '\0';
    return data;
}

static yajl_val parse(const char *text, size_t len)
{
    char err[128];
    yajl_val v = json_parse(text, len, JSON_MAX_DEPTH, err, sizeof(err));
    ck_assert_msg(v != NULL, "test JSON does not parse: %s: %.200s", err, text);
    return v;
}

static yajl_val load(const char *rel)
{
    size_t len;
    char *text = slurp(rel, &len);
    yajl_val v = parse(text, len);
    free(text);
    return v;
}

static yajl_val valid_body(void)
{
    return load("tests/data/ehealth_registration.json");
}

/* One JSON value, parsed on its own. */
static yajl_val value_of(const char *json)
{
    size_t n = strlen(json);
    char *text = malloc(n + 3);
    snprintf(text, n + 3, "[%s]", json);
    yajl_val w = parse(text, n + 2);
    free(text);
    ck_assert(YAJL_IS_ARRAY(w) && w->u.array.len == 1);
    yajl_val v = w->u.array.values[0];
    w->u.array.len = 0;  /* stolen */
    yajl_tree_free(w);
    return v;
}

/* Sets the value at a dotted path ("patient.documents.0.number", numbers
 * index arrays) to json; json NULL removes it. A missing last key, or the
 * index one past an array's end, is added. */
static void mutate(yajl_val root, const char *where, const char *json)
{
    char path[256];
    char *save = NULL;
    snprintf(path, sizeof(path), "%s", where);
    yajl_val cur = root;
    char *part = strtok_r(path, ".", &save);
    while (part) {
        char *next = strtok_r(NULL, ".", &save);
        if (YAJL_IS_OBJECT(cur)) {
            size_t *len = &cur->u.object.len, i = 0;
            while (i < *len && strcmp(cur->u.object.keys[i], part) != 0)
                i++;
            if (next) {
                ck_assert_msg(i < *len, "%s: no %s", where, part);
                cur = cur->u.object.values[i];
            } else if (!json) {
                ck_assert_msg(i < *len, "%s: no %s to remove", where, part);
                free((char *)cur->u.object.keys[i]);
                yajl_tree_free(cur->u.object.values[i]);
                memmove(&cur->u.object.keys[i], &cur->u.object.keys[i + 1],
                        (*len - i - 1) * sizeof(cur->u.object.keys[0]));
                memmove(&cur->u.object.values[i], &cur->u.object.values[i + 1],
                        (*len - i - 1) * sizeof(cur->u.object.values[0]));
                (*len)--;
            } else if (i < *len) {
                yajl_tree_free(cur->u.object.values[i]);
                cur->u.object.values[i] = value_of(json);
            } else {
                cur->u.object.keys = realloc((void *)cur->u.object.keys, (*len + 1) * sizeof(char *));
                cur->u.object.values = realloc(cur->u.object.values, (*len + 1) * sizeof(yajl_val));
                cur->u.object.keys[*len] = strdup(part);
                cur->u.object.values[*len] = value_of(json);
                (*len)++;
            }
        } else {
            ck_assert_msg(YAJL_IS_ARRAY(cur), "%s: %s is in no container", where, part);
            size_t *len = &cur->u.array.len, i = strtoul(part, NULL, 10);
            if (next) {
                ck_assert(i < *len);
                cur = cur->u.array.values[i];
            } else if (!json) {
                ck_assert(i < *len);
                yajl_tree_free(cur->u.array.values[i]);
                memmove(&cur->u.array.values[i], &cur->u.array.values[i + 1],
                        (*len - i - 1) * sizeof(yajl_val));
                (*len)--;
            } else if (i < *len) {
                yajl_tree_free(cur->u.array.values[i]);
                cur->u.array.values[i] = value_of(json);
            } else {
                ck_assert(i == *len);
                cur->u.array.values = realloc(cur->u.array.values, (*len + 1) * sizeof(yajl_val));
                cur->u.array.values[(*len)++] = value_of(json);
            }
        }
        part = next;
    }
}

/* "\"жжж…\"": n copies of unit, quoted. The caller frees. */
static char *repeat(const char *unit, int n)
{
    size_t u = strlen(unit);
    char *s = malloc(u * (size_t)n + 3);
    char *p = s;
    *p++ = '"';
    for (int i = 0; i < n; i++, p += u)
        memcpy(p, unit, u);
    strcpy(p, "\"");
    return s;
}

/* ---- reading a report ---- */

/* The answer's text; valid JSON, an array of rep->n entries (checked). */
static const char *report_text(const struct ehs_report *rep)
{
    static struct buf b;
    buf_free(&b);
    ehs_report_json(rep, &b);
    yajl_val v = parse(b.data, b.len);
    ck_assert(YAJL_IS_ARRAY(v));
    ck_assert_uint_eq(v->u.array.len, (size_t)rep->n);
    yajl_tree_free(v);
    return b.data;
}

static char *compact(yajl_val v)
{
    yajl_gen g = json_gen_new();
    json_gen_value(g, v);
    struct buf b;
    buf_init(&b);
    json_gen_finish(g, &b);
    return b.data;
}

/* The entry of path and rule, checked for its shape; NULL if none. Its
 * params (compact JSON) and description go to params and desc. */
static bool find_entry(const struct ehs_report *rep, const char *entry, const char *rule, char **params,
                       char **desc)
{
    const char *text = report_text(rep);
    yajl_val arr = parse(text, strlen(text));
    bool found = false;
    for (size_t i = 0; i < arr->u.array.len && !found; i++) {
        yajl_val e = arr->u.array.values[i];
        ck_assert_str_eq(json_str(json_get(e, "entry_type")), "json_data_property");
        yajl_val rules = json_get(e, "rules");
        ck_assert(YAJL_IS_ARRAY(rules) && rules->u.array.len == 1);
        yajl_val r = rules->u.array.values[0];
        ck_assert(YAJL_IS_OBJECT(r) && r->u.object.len == 3);
        ck_assert(YAJL_IS_ARRAY(json_get(r, "params")));
        if (strcmp(json_str(json_get(e, "entry")), entry) != 0 || strcmp(json_str(json_get(r, "rule")), rule) != 0)
            continue;
        found = true;
        if (params)
            *params = compact(json_get(r, "params"));
        if (desc)
            *desc = strdup(json_str(json_get(r, "description")));
    }
    yajl_tree_free(arr);
    return found;
}

/* Asserts an entry of path, rule and params (and description unless NULL). */
static void assert_entry(const struct ehs_report *rep, const char *entry, const char *rule, const char *params,
                         const char *desc)
{
    char *p = NULL, *d = NULL;
    ck_assert_msg(find_entry(rep, entry, rule, &p, &d), "no %s entry at %s in %s", rule, entry,
                  report_text(rep));
    ck_assert_msg(strcmp(p, params) == 0, "%s %s: params %s, want %s", entry, rule, p, params);
    if (desc)
        ck_assert_msg(strcmp(d, desc) == 0, "%s %s: description \"%s\", want \"%s\"", entry, rule, d, desc);
    free(p);
    free(d);
}

static int validate(yajl_val body, struct ehs_report *rep)
{
    ehs_report_init(rep);
    int n = ehs_validate_registration(body, TODAY, rep);
    ck_assert_int_eq(n, rep->n);
    return n;
}

/* ---- the examples ---- */

START_TEST(test_valid_example)
{
    yajl_val body = valid_body();
    struct ehs_report rep;
    ck_assert_msg(validate(body, &rep) == 0, "%s", report_text(&rep));
    ck_assert_str_eq(report_text(&rep), "[]");
    ck_assert_str_eq(ehs_otp_phone(json_get(body, "patient")), "+380931234585");
    ck_assert(ehs_password_ok(json_str(json_get(body, "password"))));
    ck_assert(ehs_luhn_ok(json_str(json_get(body, "otp"))));
    ehs_report_free(&rep);
    yajl_tree_free(body);
}
END_TEST

/* The reference: settlement_id no UUID, unzr not the birth date, the OTP
 * phone masked. Nothing else. */
START_TEST(test_seed_example)
{
    yajl_val body = load("tests/data/ehealth_seed004.json");
    struct ehs_report rep;
    ck_assert_msg(validate(body, &rep) == 3, "%s", report_text(&rep));
    assert_entry(&rep, "$.patient.addresses.[0].settlement_id", "format", P_UUID,
                 "string does not match pattern "
                 "\"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$\"");
    assert_entry(&rep, "$.patient.unzr", "invalid", "[]", "Birthdate or unzr is not correct");
    assert_entry(&rep, "$.patient.authentication_methods.[0].phone_number", "format", P_PHONE,
                 "string does not match pattern \"^\\+38[0-9]{10}$\"");
    ehs_report_free(&rep);
    yajl_tree_free(body);
}
END_TEST

/* ---- one broken rule at a time ---- */

struct mut {
    const char *where;
    const char *json;  /* NULL: removed */
};

struct bad_case {
    struct mut m[3];
    const char *entry;
    const char *rule;
    const char *params;
    const char *desc;  /* NULL: not compared */
    int n;             /* entries in all; 0 means 1 */
};

static const struct bad_case bad_cases[] = {
    /* top level */
    {{{"otp", NULL}}, "$.otp", "required", "[]", "required property otp was not present", 0},
    {{{"otp", "\"12345\""}}, "$.otp", "format", "[\"^[0-9]{4}$\"]",
     "string does not match pattern \"^[0-9]{4}$\"", 0},
    {{{"otp", "\"12a4\""}}, "$.otp", "format", "[\"^[0-9]{4}$\"]", NULL, 0},
    {{{"otp", "1234"}}, "$.otp", "cast", "[\"string\"]", "type mismatch. Expected string but got integer", 0},
    {{{"password", NULL}}, "$.password", "required", "[]", NULL, 0},
    {{{"password", "\"\""}}, "$.password", "length", "[1]", "expected value to have a minimum length of 1", 0},
    {{{"password", "null"}}, "$.password", "cast", "[\"string\"]", "type mismatch. Expected string but got null", 0},
    {{{"patient", NULL}}, "$.patient", "required", "[]", "required property patient was not present", 0},
    {{{"patient", "[]"}}, "$.patient", "cast", "[\"object\"]", "type mismatch. Expected object but got array", 0},
    {{{"patient", "\"x\""}}, "$.patient", "cast", "[\"object\"]", NULL, 0},
    {{{"user", "{}"}}, "$.user", "schema", "[\"user\"]", "schema does not allow additional properties", 0},
    {{{"OTP", "\"1230\""}}, "$.OTP", "schema", "[\"OTP\"]", NULL, 0},

    /* names */
    {{{"patient.first_name", NULL}}, "$.patient.first_name", "required", "[]",
     "required property first_name was not present", 0},
    {{{"patient.first_name", "\"Mykola\""}}, "$.patient.first_name", "format", P_NAME,
     "string does not match pattern \"^(?!.*[ЫЪЭЁыъэё@%&$^#])[А-ЯҐЇІЄа-яґїіє\\'\\- ]+$\"", 0},
    {{{"patient.first_name", "\"Мыкола\""}}, "$.patient.first_name", "format", P_NAME, NULL, 0},
    {{{"patient.first_name", "\"Пётр\""}}, "$.patient.first_name", "format", P_NAME, NULL, 0},
    {{{"patient.first_name", "\"ЭДУАРД\""}}, "$.patient.first_name", "format", P_NAME, NULL, 0},
    {{{"patient.first_name", "\"Подъезд\""}}, "$.patient.first_name", "format", P_NAME, NULL, 0},
    {{{"patient.first_name", "\"Мико1а\""}}, "$.patient.first_name", "format", P_NAME, NULL, 0},
    {{{"patient.first_name", "\"Микола@\""}}, "$.patient.first_name", "format", P_NAME, NULL, 0},
    {{{"patient.first_name", "\"Мико\\u0430\\u0301\""}}, "$.patient.first_name", "format", P_NAME, NULL, 0},
    /* "" breaks both the length and the pattern (which wants one character) */
    {{{"patient.first_name", "\"\""}}, "$.patient.first_name", "length", "[1]",
     "expected value to have a minimum length of 1", 2},
    {{{"patient.first_name", "5"}}, "$.patient.first_name", "cast", "[\"string\"]", NULL, 0},
    {{{"patient.last_name", NULL}}, "$.patient.last_name", "required", "[]", NULL, 0},
    {{{"patient.last_name", "\"Ivchenko\""}}, "$.patient.last_name", "format", P_NAME, NULL, 0},
    {{{"patient.second_name", "\"Степанович1\""}}, "$.patient.second_name", "format", P_NAME, NULL, 0},
    {{{"patient.second_name", "null"}}, "$.patient.second_name", "cast", "[\"string\"]", NULL, 0},

    /* birth date: unzr removed where the date moves, so that only one rule breaks */
    {{{"patient.birth_date", NULL}}, "$.patient.birth_date", "required", "[]", NULL, 0},
    {{{"patient.birth_date", "\"1968-02-30\""}}, "$.patient.birth_date", "date", "[]",
     "expected \"1968-02-30\" to be a valid ISO 8601 date", 0},
    {{{"patient.birth_date", "\"1900-02-29\""}, {"patient.unzr", NULL}}, "$.patient.birth_date", "date", "[]",
     NULL, 0},
    {{{"patient.birth_date", "\"23.04.1968\""}}, "$.patient.birth_date", "date", "[]", NULL, 0},
    {{{"patient.birth_date", "\"1968-04-23T00:00:00Z\""}}, "$.patient.birth_date", "date", "[]", NULL, 0},
    {{{"patient.birth_date", "\"1968-4-23\""}}, "$.patient.birth_date", "date", "[]", NULL, 0},
    {{{"patient.birth_date", "19680423"}}, "$.patient.birth_date", "cast", "[\"string\"]", NULL, 0},
    {{{"patient.birth_date", "\"2026-11-24\""}, {"patient.unzr", NULL}}, "$.patient.birth_date", "invalid",
     "[]", "Invalid birth date", 0},
    {{{"patient.birth_date", "\"1875-11-23\""}, {"patient.unzr", NULL}}, "$.patient.birth_date", "invalid",
     "[]", "Invalid birth date", 0},

    {{{"patient.birth_country", NULL}}, "$.patient.birth_country", "required", "[]", NULL, 0},
    {{{"patient.birth_country", "\"\""}}, "$.patient.birth_country", "length", "[1]", NULL, 0},
    {{{"patient.birth_settlement", "{}"}}, "$.patient.birth_settlement", "cast", "[\"string\"]",
     "type mismatch. Expected string but got object", 0},
    {{{"patient.birth_settlement", NULL}}, "$.patient.birth_settlement", "required", "[]", NULL, 0},
    {{{"patient.gender", NULL}}, "$.patient.gender", "required", "[]", NULL, 0},
    {{{"patient.gender", "\"M\""}}, "$.patient.gender", "inclusion", "[\"MALE\",\"FEMALE\"]",
     "value is not allowed in enum", 0},
    {{{"patient.gender", "\"male\""}}, "$.patient.gender", "inclusion", "[\"MALE\",\"FEMALE\"]", NULL, 0},
    {{{"patient.gender", "1"}}, "$.patient.gender", "cast", "[\"string\"]", NULL, 0},
    {{{"patient.email", "\"a b@c.ua\""}}, "$.patient.email", "email", "[]",
     "expected \"a b@c.ua\" to be an email address", 0},
    {{{"patient.email", "\"mykola@localhost\""}}, "$.patient.email", "email", "[]", NULL, 0},
    {{{"patient.email", "\"mykola.example.com\""}}, "$.patient.email", "email", "[]", NULL, 0},
    {{{"patient.email", "\"a@b@example.com\""}}, "$.patient.email", "email", "[]", NULL, 0},
    {{{"patient.email", "\"a@example.c0m\""}}, "$.patient.email", "email", "[]", NULL, 0},
    {{{"patient.email", "\"a..b@example.com\""}}, "$.patient.email", "email", "[]", NULL, 0},
    {{{"patient.email", "\"a@-example.com\""}}, "$.patient.email", "email", "[]", NULL, 0},
    {{{"patient.email", "\"микола@example.com\""}}, "$.patient.email", "email", "[]", NULL, 0},
    {{{"patient.email", "true"}}, "$.patient.email", "cast", "[\"string\"]",
     "type mismatch. Expected string but got boolean", 0},
    {{{"patient.tax_id", "\"100200304\""}}, "$.patient.tax_id", "format", "[\"^[0-9]{10}$\"]",
     "string does not match pattern \"^[0-9]{10}$\"", 0},
    {{{"patient.tax_id", "\"100200304O\""}}, "$.patient.tax_id", "format", "[\"^[0-9]{10}$\"]", NULL, 0},
    {{{"patient.tax_id", "1002003040"}}, "$.patient.tax_id", "cast", "[\"string\"]", NULL, 0},
    {{{"patient.tax_id", "1.5e9"}}, "$.patient.tax_id", "cast", "[\"string\"]",
     "type mismatch. Expected string but got number", 0},
    {{{"patient.no_tax_id", "\"true\""}}, "$.patient.no_tax_id", "cast", "[\"boolean\"]",
     "type mismatch. Expected boolean but got string", 0},
    /* a unzr of the wrong shape breaks the format only: it is not compared */
    {{{"patient.unzr", "\"19680423-5432\""}}, "$.patient.unzr", "format", "[\"^[0-9]{8}-[0-9]{5}$\"]",
     "string does not match pattern \"^[0-9]{8}-[0-9]{5}$\"", 0},
    {{{"patient.unzr", "\"1968042354321\""}}, "$.patient.unzr", "format", "[\"^[0-9]{8}-[0-9]{5}$\"]", NULL, 0},
    {{{"patient.unzr", "\"19680424-54321\""}}, "$.patient.unzr", "invalid", "[]",
     "Birthdate or unzr is not correct", 0},
    {{{"patient.secret", "\"12345\""}}, "$.patient.secret", "length", "[6]",
     "expected value to have a minimum length of 6", 0},
    {{{"patient.secret", "\"123456789012345678901\""}}, "$.patient.secret", "length", "[20]",
     "expected value to have a maximum length of 20", 0},
    {{{"patient.preferred_way_communication", "\"sms\""}}, "$.patient.preferred_way_communication",
     "inclusion", "[\"email\",\"phone\"]", NULL, 0},
    {{{"patient.preferred_way_communication", "null"}}, "$.patient.preferred_way_communication", "cast",
     "[\"string\"]", NULL, 0},
    {{{"patient.process_disclosure_data_consent", "false"}}, "$.patient.process_disclosure_data_consent",
     "inclusion", "[true]", "value is not allowed in enum", 0},
    {{{"patient.process_disclosure_data_consent", NULL}}, "$.patient.process_disclosure_data_consent",
     "required", "[]", NULL, 0},
    {{{"patient.process_disclosure_data_consent", "\"true\""}}, "$.patient.process_disclosure_data_consent",
     "cast", "[\"boolean\"]", NULL, 0},
    {{{"patient.middle_name", "\"Степанович\""}}, "$.patient.middle_name", "schema", "[\"middle_name\"]",
     "schema does not allow additional properties", 0},
    /* keys are case-sensitive: First_Name is another property, and first_name is then missing */
    {{{"patient.first_name", NULL}, {"patient.First_Name", "\"Микола\""}}, "$.patient.First_Name", "schema",
     "[\"First_Name\"]", NULL, 2},

    /* documents */
    {{{"patient.documents", NULL}}, "$.patient.documents", "required", "[]", NULL, 0},
    {{{"patient.documents", "\"АА120518\""}}, "$.patient.documents", "cast", "[\"array\"]",
     "type mismatch. Expected array but got string", 0},
    {{{"patient.documents", "{}"}}, "$.patient.documents", "cast", "[\"array\"]", NULL, 0},
    {{{"patient.documents", "[]"}}, "$.patient.documents", "length", "[1]", "expected a minimum of 1 items", 0},
    {{{"patient.documents.0", "\"АА120518\""}}, "$.patient.documents.[0]", "cast", "[\"object\"]",
     "type mismatch. Expected object but got string", 0},
    {{{"patient.documents.0.type", NULL}}, "$.patient.documents.[0].type", "required", "[]",
     "required property type was not present", 0},
    {{{"patient.documents.0.type", "\"ID_CARD\""}}, "$.patient.documents.[0].type", "inclusion", P_DOC_TYPES,
     NULL, 0},
    {{{"patient.documents.0.type", "\"passport\""}}, "$.patient.documents.[0].type", "inclusion", P_DOC_TYPES,
     NULL, 0},
    {{{"patient.documents.0.number", NULL}}, "$.patient.documents.[0].number", "required", "[]", NULL, 0},
    {{{"patient.documents.0.number", "120518"}}, "$.patient.documents.[0].number", "cast", "[\"string\"]",
     NULL, 0},
    {{{"patient.documents.0.number", "\"AA120518\""}}, "$.patient.documents.[0].number", "format",
     P_DOC_LETTERS, "string does not match pattern \"^((?![ЫЪЭЁ])([А-ЯҐЇІЄ])){2}[0-9]{6}$\"", 0},
    {{{"patient.documents.0.number", "\"ЫА120518\""}}, "$.patient.documents.[0].number", "format",
     P_DOC_LETTERS, NULL, 0},
    {{{"patient.documents.0.number", "\"аа120518\""}}, "$.patient.documents.[0].number", "format",
     P_DOC_LETTERS, NULL, 0},
    {{{"patient.documents.0.number", "\"АА12051\""}}, "$.patient.documents.[0].number", "format",
     P_DOC_LETTERS, NULL, 0},
    {{{"patient.documents.0.number", "\"АА1205189\""}}, "$.patient.documents.[0].number", "format",
     P_DOC_LETTERS, NULL, 0},
    {{{"patient.documents.0.type", "\"REFUGEE_CERTIFICATE\""}, {"patient.documents.0.number", "\"AB123456\""}},
     "$.patient.documents.[0].number", "format", P_DOC_LETTERS, NULL, 0},
    {{{"patient.documents.0.type", "\"PERMANENT_RESIDENCE_PERMIT\""},
      {"patient.documents.0.number", "\"123456789\""}},
     "$.patient.documents.[0].number", "format", P_DOC_LETTERS, NULL, 0},
    {{{"patient.documents.0.issued_by", NULL}}, "$.patient.documents.[0].issued_by", "required", "[]", NULL, 0},
    {{{"patient.documents.0.issued_by", "\"\""}}, "$.patient.documents.[0].issued_by", "length", "[1]", NULL, 0},
    {{{"patient.documents.0.issued_at", NULL}}, "$.patient.documents.[0].issued_at", "required", "[]", NULL, 0},
    {{{"patient.documents.0.issued_at", "\"2017-13-01\""}}, "$.patient.documents.[0].issued_at", "date", "[]",
     "expected \"2017-13-01\" to be a valid ISO 8601 date", 0},
    {{{"patient.documents.0.expiration_date", "\"never\""}}, "$.patient.documents.[0].expiration_date", "date",
     "[]", NULL, 0},
    {{{"patient.documents.0.series", "\"АА\""}}, "$.patient.documents.[0].series", "schema", "[\"series\"]",
     NULL, 0},
    {{{"patient.documents.0", NATIONAL_ID_DOC}, {"patient.documents.0.number", "\"12345678\""}},
     "$.patient.documents.[0].number", "format", "[\"^[0-9]{9}$\"]", NULL, 0},
    {{{"patient.documents.0", NATIONAL_ID_DOC}, {"patient.documents.0.expiration_date", NULL}},
     "$.patient.documents.[0].expiration_date", "required", "[]",
     "required property expiration_date was not present", 0},
    {{{"patient.documents.0", NATIONAL_ID_DOC}, {"patient.unzr", NULL}}, "$.patient.unzr", "invalid", "[]",
     "unzr is required for NATIONAL_ID document", 0},
    /* a unzr that is there but wrong has its own entry, no second one */
    {{{"patient.documents.0", NATIONAL_ID_DOC}, {"patient.unzr", "null"}}, "$.patient.unzr", "cast",
     "[\"string\"]", NULL, 0},
    {{{"patient.documents.1", NATIONAL_ID_DOC}}, "$.patient.documents", "invalid", "[]",
     "Only one document of type PASSPORT or NATIONAL_ID is allowed", 0},
    {{{"patient.documents.1", PASSPORT_DOC}}, "$.patient.documents", "invalid", "[]",
     "Only one document of type PASSPORT or NATIONAL_ID is allowed", 0},
    {{{"patient.documents.1", BIRTH_CERT_DOC}, {"patient.documents.2", BIRTH_CERT_DOC}},
     "$.patient.documents.[2].type", "invalid", "[]", "Only one document of each type is allowed", 0},
    {{{"patient.documents.0", BIRTH_CERT_DOC}, {"patient.documents.0.number", "\"1\""}},
     "$.patient.documents.[0].number", "length", "[2]", "expected value to have a minimum length of 2", 0},
    {{{"patient.documents.0", BIRTH_CERT_DOC}, {"patient.documents.0.number", "\"12345678901234567890123456\""}},
     "$.patient.documents.[0].number", "length", "[25]", "expected value to have a maximum length of 25", 0},
    {{{"patient.documents.0.type", "\"TEMPORARY_PASSPORT\""}, {"patient.documents.0.number", "\"Ж\""}},
     "$.patient.documents.[0].number", "length", "[2]", NULL, 0},

    /* addresses */
    {{{"patient.addresses", NULL}}, "$.patient.addresses", "required", "[]", NULL, 0},
    {{{"patient.addresses", "{}"}}, "$.patient.addresses", "cast", "[\"array\"]",
     "type mismatch. Expected array but got object", 0},
    {{{"patient.addresses", "[]"}}, "$.patient.addresses", "length", "[1]", NULL, 0},
    {{{"patient.addresses.0", "[]"}}, "$.patient.addresses.[0]", "cast", "[\"object\"]", NULL, 2},
    /* a type off the list is an entry, and then no RESIDENCE is one more */
    {{{"patient.addresses.0.type", "\"HOME\""}}, "$.patient.addresses.[0].type", "inclusion",
     "[\"RESIDENCE\",\"REGISTRATION\"]", NULL, 2},
    {{{"patient.addresses.0.type", "\"HOME\""}}, "$.patient.addresses", "invalid", "[]",
     "Must contain exactly one address of type RESIDENCE", 2},
    {{{"patient.addresses.0.type", NULL}}, "$.patient.addresses.[0].type", "required", "[]", NULL, 2},
    {{{"patient.addresses.0.type", "\"REGISTRATION\""}}, "$.patient.addresses", "invalid", "[]",
     "Must contain exactly one address of type RESIDENCE", 0},
    {{{"patient.addresses.0.country", NULL}}, "$.patient.addresses.[0].country", "required", "[]", NULL, 0},
    {{{"patient.addresses.0.country", "\"\""}}, "$.patient.addresses.[0].country", "length", "[1]", NULL, 0},
    {{{"patient.addresses.0.area", NULL}}, "$.patient.addresses.[0].area", "required", "[]", NULL, 0},
    {{{"patient.addresses.0.settlement", NULL}}, "$.patient.addresses.[0].settlement", "required", "[]", NULL, 0},
    {{{"patient.addresses.0.settlement_type", NULL}}, "$.patient.addresses.[0].settlement_type", "required", "[]",
     NULL, 0},
    {{{"patient.addresses.0.settlement_type", "\"METROPOLIS\""}}, "$.patient.addresses.[0].settlement_type",
     "inclusion", "[\"CITY\",\"TOWNSHIP\",\"VILLAGE\",\"SETTLEMENT\"]", NULL, 0},
    {{{"patient.addresses.0.settlement_id", NULL}}, "$.patient.addresses.[0].settlement_id", "required", "[]",
     NULL, 0},
    {{{"patient.addresses.0.settlement_id", "\"b075f148-7f63-4d5c-9a0b-3c2e8f1d6a5\""}},
     "$.patient.addresses.[0].settlement_id", "format", P_UUID, NULL, 0},
    {{{"patient.addresses.0.settlement_id", "\"{b075f148-7f63-4d5c-9a0b-3c2e8f1d6a54}\""}},
     "$.patient.addresses.[0].settlement_id", "format", P_UUID, NULL, 0},
    {{{"patient.addresses.0.settlement_id", "\"g075f148-7f63-4d5c-9a0b-3c2e8f1d6a54\""}},
     "$.patient.addresses.[0].settlement_id", "format", P_UUID, NULL, 0},
    {{{"patient.addresses.0.building", NULL}}, "$.patient.addresses.[0].building", "required", "[]", NULL, 0},
    {{{"patient.addresses.0.building", "15"}}, "$.patient.addresses.[0].building", "cast", "[\"string\"]", NULL,
     0},
    {{{"patient.addresses.0.region", "5"}}, "$.patient.addresses.[0].region", "cast", "[\"string\"]", NULL, 0},
    {{{"patient.addresses.0.street_type", "[]"}}, "$.patient.addresses.[0].street_type", "cast", "[\"string\"]",
     NULL, 0},
    {{{"patient.addresses.0.street", "null"}}, "$.patient.addresses.[0].street", "cast", "[\"string\"]", NULL, 0},
    {{{"patient.addresses.0.apartment", "23"}}, "$.patient.addresses.[0].apartment", "cast", "[\"string\"]",
     NULL, 0},
    {{{"patient.addresses.0.zip", "\"0209\""}}, "$.patient.addresses.[0].zip", "format", "[\"^[0-9]{5}$\"]",
     "string does not match pattern \"^[0-9]{5}$\"", 0},
    {{{"patient.addresses.0.zip", "2090"}}, "$.patient.addresses.[0].zip", "cast", "[\"string\"]", NULL, 0},
    {{{"patient.addresses.0.floor", "\"2\""}}, "$.patient.addresses.[0].floor", "schema", "[\"floor\"]", NULL, 0},

    /* phones */
    {{{"patient.phones", "\"+380503410870\""}}, "$.patient.phones", "cast", "[\"array\"]", NULL, 0},
    {{{"patient.phones.0", "\"+380503410870\""}}, "$.patient.phones.[0]", "cast", "[\"object\"]", NULL, 0},
    {{{"patient.phones.0.type", "\"CELL\""}}, "$.patient.phones.[0].type", "inclusion",
     "[\"MOBILE\",\"LAND_LINE\"]", NULL, 0},
    {{{"patient.phones.0.type", NULL}}, "$.patient.phones.[0].type", "required", "[]", NULL, 0},
    {{{"patient.phones.0.number", NULL}}, "$.patient.phones.[0].number", "required", "[]", NULL, 0},
    {{{"patient.phones.0.number", "\"0503410870\""}}, "$.patient.phones.[0].number", "format", P_PHONE, NULL, 0},
    {{{"patient.phones.0.number", "\"+3805034108701\""}}, "$.patient.phones.[0].number", "format", P_PHONE, NULL,
     0},
    {{{"patient.phones.0.number", "\"+38 050 341 08 70\""}}, "$.patient.phones.[0].number", "format", P_PHONE,
     NULL, 0},
    {{{"patient.phones.0.number", "380503410870"}}, "$.patient.phones.[0].number", "cast", "[\"string\"]", NULL,
     0},
    {{{"patient.phones.0.note", "\"\""}}, "$.patient.phones.[0].note", "schema", "[\"note\"]", NULL, 0},

    /* authentication methods */
    {{{"patient.authentication_methods", NULL}}, "$.patient.authentication_methods", "required", "[]", NULL, 0},
    {{{"patient.authentication_methods", "[]"}}, "$.patient.authentication_methods", "length", "[1]", NULL, 0},
    {{{"patient.authentication_methods", "{\"type\":\"OTP\"}"}}, "$.patient.authentication_methods", "cast",
     "[\"array\"]", NULL, 0},
    {{{"patient.authentication_methods.0.type", "\"SMS\""}}, "$.patient.authentication_methods.[0].type",
     "inclusion", "[\"OTP\",\"OFFLINE\"]", NULL, 0},
    {{{"patient.authentication_methods.0.type", NULL}}, "$.patient.authentication_methods.[0].type", "required",
     "[]", NULL, 0},
    {{{"patient.authentication_methods.0.phone_number", NULL}},
     "$.patient.authentication_methods.[0].phone_number", "required", "[]",
     "required property phone_number was not present", 0},
    {{{"patient.authentication_methods.0.phone_number", "\"+38093*****85\""}},
     "$.patient.authentication_methods.[0].phone_number", "format", P_PHONE, NULL, 0},
    {{{"patient.authentication_methods.0.type", "\"OFFLINE\""}},
     "$.patient.authentication_methods.[0].phone_number", "schema", "[\"phone_number\"]",
     "schema does not allow additional properties", 0},
    {{{"patient.authentication_methods.1", "{\"type\":\"OTP\",\"phone_number\":\"+380931234586\"}"}},
     "$.patient.authentication_methods", "invalid", "[]", "Only one authentication method of type OTP is allowed",
     0},
    {{{"patient.authentication_methods.0.value", "\"x\""}}, "$.patient.authentication_methods.[0].value",
     "schema", "[\"value\"]", NULL, 0},

    /* emergency contact */
    {{{"patient.emergency_contact", NULL}}, "$.patient.emergency_contact", "required", "[]", NULL, 0},
    {{{"patient.emergency_contact", "\"Петро\""}}, "$.patient.emergency_contact", "cast", "[\"object\"]", NULL,
     0},
    {{{"patient.emergency_contact.first_name", NULL}}, "$.patient.emergency_contact.first_name", "required",
     "[]", NULL, 0},
    {{{"patient.emergency_contact.first_name", "\"Peter\""}}, "$.patient.emergency_contact.first_name",
     "format", P_NAME, NULL, 0},
    {{{"patient.emergency_contact.last_name", "\"Эдуардов\""}}, "$.patient.emergency_contact.last_name",
     "format", P_NAME, NULL, 0},
    {{{"patient.emergency_contact.second_name", "\"Ёлкин\""}}, "$.patient.emergency_contact.second_name",
     "format", P_NAME, NULL, 0},
    {{{"patient.emergency_contact.phones", NULL}}, "$.patient.emergency_contact.phones", "required", "[]", NULL,
     0},
    {{{"patient.emergency_contact.phones", "[]"}}, "$.patient.emergency_contact.phones", "length", "[1]",
     "expected a minimum of 1 items", 0},
    {{{"patient.emergency_contact.phones.0.number", "\"+38050341087\""}},
     "$.patient.emergency_contact.phones.[0].number", "format", P_PHONE, NULL, 0},
    {{{"patient.emergency_contact.phones.0.type", "\"FAX\""}}, "$.patient.emergency_contact.phones.[0].type",
     "inclusion", "[\"MOBILE\",\"LAND_LINE\"]", NULL, 0},
    {{{"patient.emergency_contact.email", "\"a@b.ua\""}}, "$.patient.emergency_contact.email", "schema",
     "[\"email\"]", NULL, 0},
};

START_TEST(test_bad_field)
{
    const struct bad_case *bc = &bad_cases[_i];
    yajl_val body = valid_body();
    for (int k = 0; k < 3 && bc->m[k].where; k++)
        mutate(body, bc->m[k].where, bc->m[k].json);
    struct ehs_report rep;
    int n = validate(body, &rep);
    assert_entry(&rep, bc->entry, bc->rule, bc->params, bc->desc);
    ck_assert_msg(n == (bc->n ? bc->n : 1), "case %d (%s): %d entries: %s", _i, bc->m[0].where, n,
                  report_text(&rep));
    ehs_report_free(&rep);
    yajl_tree_free(body);
}
END_TEST

/* Changes that keep the body valid. */
static const struct mut good_cases[][3] = {
    {{"patient.first_name", "\"Мар'яна\""}},
    {{"patient.first_name", "\"Мар’яна\""}},
    {{"patient.first_name", "\"Марʼяна\""}},
    {{"patient.first_name", "\"Анна-Марія\""}},
    {{"patient.first_name", "\"Анна Марія\""}},
    {{"patient.last_name", "\"ҐЄЇІ ґєїіь\""}},
    {{"patient.second_name", NULL}},
    {{"patient.birth_date", "\"2026-11-23\""}, {"patient.unzr", NULL}},  /* age 0, born today */
    {{"patient.birth_date", "\"1875-11-24\""}, {"patient.unzr", NULL}},  /* 150 tomorrow */
    {{"patient.birth_date", "\"2000-02-29\""}, {"patient.unzr", "\"20000229-00001\""}},
    {{"patient.unzr", NULL}},
    {{"patient.tax_id", NULL}, {"patient.no_tax_id", "true"}},
    {{"patient.no_tax_id", "false"}},
    {{"patient.email", "\"mykola.ivchenko+reg@example.com.ua\""}},
    {{"patient.secret", "\"secret\""}},
    {{"patient.secret", "\"12345678901234567890\""}},
    {{"patient.preferred_way_communication", "\"email\""}},
    {{"patient.preferred_way_communication", "\"phone\""}},
    {{"patient.gender", "\"FEMALE\""}},
    {{"patient.documents.0", NATIONAL_ID_DOC}},
    {{"patient.documents.1", BIRTH_CERT_DOC}},
    {{"patient.documents.0.expiration_date", NULL}},
    {{"patient.documents.0.type", "\"COMPLEMENTARY_PROTECTION_CERTIFICATE\""},
     {"patient.documents.0.number", "\"ҐЄ123456\""}},
    {{"patient.documents.0.type", "\"TEMPORARY_CERTIFICATE\""}, {"patient.documents.0.number", "\"ЇІ123456\""}},
    {{"patient.documents.0.type", "\"TEMPORARY_PASSPORT\""}, {"patient.documents.0.number", "\"AB\""}},
    {{"patient.addresses.1", "{\"type\":\"REGISTRATION\",\"country\":\"UA\",\"area\":\"Київ\","
                             "\"settlement\":\"Київ\",\"settlement_type\":\"CITY\","
                             "\"settlement_id\":\"B075F148-7F63-4D5C-9A0B-3C2E8F1D6A54\",\"building\":\"1\"}"}},
    {{"patient.addresses.0.zip", NULL}, {"patient.addresses.0.region", NULL}, {"patient.addresses.0.street", NULL}},
    {{"patient.addresses.0.apartment", "\"\""}},
    {{"patient.phones", NULL}},
    {{"patient.phones", "[]"}},
    {{"patient.phones.1", "{\"type\":\"LAND_LINE\",\"number\":\"+380441234567\"}"}},
    {{"patient.authentication_methods.1", "{\"type\":\"OFFLINE\"}"}},
    {{"patient.emergency_contact.second_name", NULL}},
};

START_TEST(test_good_change)
{
    const struct mut *m = good_cases[_i];
    yajl_val body = valid_body();
    for (int k = 0; k < 3 && m[k].where; k++)
        mutate(body, m[k].where, m[k].json);
    struct ehs_report rep;
    ck_assert_msg(validate(body, &rep) == 0, "%s=%s: %s", m[0].where, m[0].json ? m[0].json : "(none)",
                  report_text(&rep));
    ehs_report_free(&rep);
    yajl_tree_free(body);
}
END_TEST

/* Two RESIDENCE addresses: one entry at the array. */
START_TEST(test_two_residences)
{
    yajl_val body = valid_body();
    yajl_val addr = json_get(json_get(body, "patient"), "addresses");
    char *copy = compact(addr->u.array.values[0]);
    mutate(body, "patient.addresses.1", copy);
    free(copy);
    struct ehs_report rep;
    ck_assert_int_eq(validate(body, &rep), 1);
    assert_entry(&rep, "$.patient.addresses", "invalid", "[]", "Must contain exactly one address of type RESIDENCE");
    ehs_report_free(&rep);
    yajl_tree_free(body);
}
END_TEST

/* The 150-year bound is at today, not at the process's clock. */
START_TEST(test_today)
{
    yajl_val body = valid_body();
    mutate(body, "patient.unzr", NULL);
    mutate(body, "patient.birth_date", "\"2030-01-01\"");
    struct ehs_report rep;
    ehs_report_init(&rep);
    ck_assert_int_eq(ehs_validate_registration(body, "2030-01-01", &rep), 0);
    ehs_report_free(&rep);
    ehs_report_init(&rep);
    ck_assert_int_eq(ehs_validate_registration(body, "2029-12-31", &rep), 1);
    assert_entry(&rep, "$.patient.birth_date", "invalid", "[]", "Invalid birth date");
    ehs_report_free(&rep);
    /* no today (or no date): the age is not checked */
    ehs_report_init(&rep);
    ck_assert_int_eq(ehs_validate_registration(body, NULL, &rep), 0);
    ehs_report_free(&rep);
    ehs_report_init(&rep);
    ck_assert_int_eq(ehs_validate_registration(body, "today", &rep), 0);
    ehs_report_free(&rep);
    yajl_tree_free(body);
}
END_TEST

/* Every broken rule is listed, not the first only. */
START_TEST(test_every_problem_listed)
{
    yajl_val body = valid_body();
    mutate(body, "otp", NULL);
    mutate(body, "patient.first_name", "\"Mykola\"");
    mutate(body, "patient.gender", "\"X\"");
    mutate(body, "patient.documents.0.number", "\"1\"");
    mutate(body, "patient.addresses.0.zip", "\"1\"");
    mutate(body, "patient.phones.0.number", "\"1\"");
    mutate(body, "patient.emergency_contact.last_name", "\"Ы\"");
    mutate(body, "extra", "1");
    struct ehs_report rep;
    ck_assert_int_eq(validate(body, &rep), 8);
    ck_assert(!rep.truncated);
    const char *want[][2] = {
        {"$.otp", "required"},
        {"$.patient.first_name", "format"},
        {"$.patient.gender", "inclusion"},
        {"$.patient.documents.[0].number", "format"},
        {"$.patient.addresses.[0].zip", "format"},
        {"$.patient.phones.[0].number", "format"},
        {"$.patient.emergency_contact.last_name", "format"},
        {"$.extra", "schema"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(find_entry(&rep, want[i][0], want[i][1], NULL, NULL), "no %s %s in %s", want[i][1],
                      want[i][0], report_text(&rep));
    ehs_report_free(&rep);
    yajl_tree_free(body);
}
END_TEST

START_TEST(test_not_an_object)
{
    const char *bodies[] = {"[]", "\"x\"", "1", "null", "true"};
    const char *got[] = {"array", "string", "integer", "null", "boolean"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        yajl_val body = value_of(bodies[i]);
        struct ehs_report rep;
        char desc[64];
        snprintf(desc, sizeof(desc), "type mismatch. Expected object but got %s", got[i]);
        ck_assert_int_eq(validate(body, &rep), 1);
        assert_entry(&rep, "$", "cast", "[\"object\"]", desc);
        ehs_report_free(&rep);
        ehs_report_init(&rep);
        ck_assert_int_eq(ehs_validate_user_request(body, &rep), 1);
        assert_entry(&rep, "$", "cast", "[\"object\"]", desc);
        ehs_report_free(&rep);
        ehs_report_init(&rep);
        ck_assert_int_eq(ehs_validate_otp_request(body, &rep), 1);
        assert_entry(&rep, "$", "cast", "[\"object\"]", desc);
        ehs_report_free(&rep);
        yajl_tree_free(body);
    }
    struct ehs_report rep;
    ck_assert_int_eq(validate(NULL, &rep), 1);
    ehs_report_free(&rep);
}
END_TEST

/* A property given twice: the checks read the first, so the second is
 * refused rather than left for a handler to read. */
START_TEST(test_duplicate_property)
{
    size_t len;
    char *text = slurp("tests/data/ehealth_registration.json", &len);
    char *at = strstr(text, "\"tax_id\"");
    ck_assert_ptr_nonnull(at);
    char *dup = malloc(len + 64);
    int head = (int)(at - text);
    int n = snprintf(dup, len + 64, "%.*s\"tax_id\": \"0000000000\", %s", head, text, at);
    yajl_val body = parse(dup, (size_t)n);
    struct ehs_report rep;
    ck_assert_int_eq(validate(body, &rep), 1);
    assert_entry(&rep, "$.patient.tax_id", "invalid", "[]", "property is given more than once");
    ehs_report_free(&rep);
    yajl_tree_free(body);
    free(dup);
    free(text);
}
END_TEST

/* ---- bounds and unicode ---- */

/* Strings are measured in characters, not bytes. */
START_TEST(test_string_lengths)
{
    static const struct {
        const char *where, *unit;
        int ok, max;  /* ok: the longest that passes */
    } cases[] = {
        {"patient.first_name", "ж", 100, 100},
        {"patient.last_name", "ї", 100, 100},
        {"patient.emergency_contact.second_name", "Ґ", 100, 100},
        {"patient.birth_country", "a", 100, 100},
        {"patient.birth_settlement", "Ж", 100, 100},
        {"password", "ш", 256, 256},
        {"patient.addresses.0.street", "ж", 255, 255},
        {"patient.documents.0.issued_by", "ж", 255, 255},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *ok = repeat(cases[i].unit, cases[i].ok), *over = repeat(cases[i].unit, cases[i].ok + 1);
        struct ehs_report rep;
        yajl_val body = valid_body();
        mutate(body, cases[i].where, ok);
        ck_assert_msg(validate(body, &rep) == 0, "%s: %s", cases[i].where, report_text(&rep));
        ehs_report_free(&rep);
        mutate(body, cases[i].where, over);
        ck_assert_msg(validate(body, &rep) == 1, "%s: %s", cases[i].where, report_text(&rep));
        char entry[128], params[16], desc[96];
        snprintf(entry, sizeof(entry), "$.%s", cases[i].where);
        char *idx = strstr(entry, ".0.");
        if (idx) {  /* "addresses.0.street" is written "addresses.[0].street" */
            memmove(idx + 4, idx + 2, strlen(idx + 2) + 1);
            memcpy(idx, ".[0]", 4);
        }
        snprintf(params, sizeof(params), "[%d]", cases[i].max);
        snprintf(desc, sizeof(desc), "expected value to have a maximum length of %d", cases[i].max);
        assert_entry(&rep, entry, "length", params, desc);
        ehs_report_free(&rep);
        yajl_tree_free(body);
        free(ok);
        free(over);
    }
}
END_TEST

/* 100 entries at most; the rest are counted, not written. */
START_TEST(test_entry_cap)
{
    yajl_val body = valid_body();
    for (int i = 0; i < 150; i++) {
        char where[32];
        snprintf(where, sizeof(where), "patient.x%d", i);
        mutate(body, where, "1");
    }
    struct ehs_report rep;
    ck_assert_int_eq(validate(body, &rep), EHS_MAX_ENTRIES);
    ck_assert(rep.truncated);
    ck_assert(find_entry(&rep, "$.patient.x0", "schema", NULL, NULL));
    ck_assert(find_entry(&rep, "$.patient.x99", "schema", NULL, NULL));
    ck_assert(!find_entry(&rep, "$.patient.x100", "schema", NULL, NULL));
    ehs_add(&rep, "$.more", "invalid", "more", NULL);
    ck_assert_int_eq(rep.n, EHS_MAX_ENTRIES);
    report_text(&rep);  /* still valid JSON of 100 entries */
    ehs_report_free(&rep);
    yajl_tree_free(body);
}
END_TEST

/* Arrays over the bound get one entry and are not walked. */
START_TEST(test_array_bounds)
{
    yajl_val body = valid_body();
    struct ehs_report rep;
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "[");
    for (int i = 0; i <= EHS_ARRAY_MAX; i++)
        buf_puts(&b, i ? ",\"x\"" : "\"x\"");
    buf_puts(&b, "]");
    mutate(body, "patient.documents", b.data);
    ck_assert_int_eq(validate(body, &rep), 1);
    assert_entry(&rep, "$.patient.documents", "length", "[100]", "expected a maximum of 100 items");
    ehs_report_free(&rep);
    mutate(body, "patient.addresses", b.data);
    mutate(body, "patient.authentication_methods", b.data);
    ck_assert_int_eq(validate(body, &rep), 3);
    assert_entry(&rep, "$.patient.addresses", "length", "[100]", NULL);
    assert_entry(&rep, "$.patient.authentication_methods", "length", "[100]", NULL);
    ehs_report_free(&rep);
    yajl_tree_free(body);
    buf_free(&b);

    /* phones: ten at most */
    body = valid_body();
    for (int i = 1; i < 10; i++) {
        char where[32];
        snprintf(where, sizeof(where), "patient.phones.%d", i);
        mutate(body, where, "{\"type\":\"MOBILE\",\"number\":\"+380501111111\"}");
    }
    ck_assert_int_eq(validate(body, &rep), 0);
    ehs_report_free(&rep);
    mutate(body, "patient.phones.10", "{\"type\":\"MOBILE\",\"number\":\"+380501111111\"}");
    ck_assert_int_eq(validate(body, &rep), 1);
    assert_entry(&rep, "$.patient.phones", "length", "[10]", "expected a maximum of 10 items");
    ehs_report_free(&rep);
    yajl_tree_free(body);
}
END_TEST

/* User text echoed in an answer is cut: a key or a value of 5,000 bytes
 * does not make an entry of 5,000 bytes. */
START_TEST(test_echo_bounded)
{
    yajl_val body = valid_body();
    char *date = repeat("ж", 2500);
    mutate(body, "patient.birth_date", date);
    char key[5001];
    memset(key, 'k', 5000);
    key[5000] = '\0';
    char where[5100];
    snprintf(where, sizeof(where), "patient.%s", key);
    mutate(body, where, "1");
    struct ehs_report rep;
    ck_assert_int_eq(validate(body, &rep), 2);
    ck_assert_uint_lt(strlen(report_text(&rep)), 1200);
    char path[200], params[200], *desc = NULL;
    snprintf(path, sizeof(path), "$.patient.%.*s...", EHS_ECHO_MAX, key);
    snprintf(params, sizeof(params), "[\"%.*s...\"]", EHS_ECHO_MAX, key);
    assert_entry(&rep, path, "schema", params, NULL);
    ck_assert(find_entry(&rep, "$.patient.birth_date", "date", NULL, &desc));
    /* cut at a character: 50 two-byte letters */
    ck_assert_str_eq(desc + strlen("expected \"") + 100, "...\" to be a valid ISO 8601 date");
    ck_assert(strncmp(desc, "expected \"жжж", 16) == 0);
    free(desc);
    ehs_report_free(&rep);
    yajl_tree_free(body);
    free(date);
}
END_TEST

/* What a client writes comes back escaped: the answer stays JSON. */
START_TEST(test_escaping)
{
    yajl_val body = valid_body();
    mutate(body, "patient.a\"b\\c\x01\x1f", "1");
    mutate(body, "patient.email", "\"\\\"quoted\\\"@example.com\"");
    struct ehs_report rep;
    ck_assert_int_eq(validate(body, &rep), 2);
    assert_entry(&rep, "$.patient.a\"b\\c\x01\x1f", "schema", "[\"a\\\"b\\\\c\\u0001\\u001F\"]", NULL);
    assert_entry(&rep, "$.patient.email", "email", "[]", "expected \"\"quoted\"@example.com\" to be an email address");
    ck_assert_ptr_nonnull(strstr(report_text(&rep), "\\u0001\\u001f"));
    ehs_report_free(&rep);
    yajl_tree_free(body);
}
END_TEST

START_TEST(test_report_json)
{
    struct ehs_report rep;
    struct buf b;
    ehs_report_init(&rep);
    buf_init(&b);
    ehs_report_json(&rep, &b);
    ck_assert_str_eq(b.data, "[]");
    buf_reset(&b);
    ehs_add(&rep, "$.otp", "invalid", "Invalid \"verification\" code", NULL);
    ehs_add(&rep, "$.x", "length", "expected value to have a minimum length of 1", "[1]");
    ck_assert_int_eq(rep.n, 2);
    ehs_report_json(&rep, &b);
    ck_assert_str_eq(b.data, "[{\"entry_type\":\"json_data_property\",\"entry\":\"$.otp\",\"rules\":"
                             "[{\"description\":\"Invalid \\\"verification\\\" code\",\"rule\":\"invalid\","
                             "\"params\":[]}]},"
                             "{\"entry_type\":\"json_data_property\",\"entry\":\"$.x\",\"rules\":"
                             "[{\"description\":\"expected value to have a minimum length of 1\","
                             "\"rule\":\"length\",\"params\":[1]}]}]");
    buf_free(&b);
    ehs_report_free(&rep);
    ck_assert_int_eq(rep.n, 0);
}
END_TEST

START_TEST(test_otp_phone)
{
    yajl_val body = valid_body();
    yajl_val patient = json_get(body, "patient");
    ck_assert_str_eq(ehs_otp_phone(patient), "+380931234585");
    mutate(body, "patient.authentication_methods.0", "{\"type\":\"OFFLINE\"}");
    ck_assert_ptr_null(ehs_otp_phone(patient));
    mutate(body, "patient.authentication_methods.1", "{\"type\":\"OTP\",\"phone_number\":\"+380671111111\"}");
    ck_assert_str_eq(ehs_otp_phone(patient), "+380671111111");
    mutate(body, "patient.authentication_methods.1.type", "\"otp\"");  /* exact keys and values */
    ck_assert_ptr_null(ehs_otp_phone(patient));
    ck_assert_ptr_null(ehs_otp_phone(NULL));
    mutate(body, "patient.authentication_methods", "\"OTP\"");
    ck_assert_ptr_null(ehs_otp_phone(patient));
    yajl_tree_free(body);
}
END_TEST

/* ---- the other bodies ---- */

static int check_user_request(const char *json, struct ehs_report *rep)
{
    yajl_val v = value_of(json);
    ehs_report_init(rep);
    int n = ehs_validate_user_request(v, rep);
    yajl_tree_free(v);
    return n;
}

START_TEST(test_user_request)
{
    struct ehs_report rep;
    ck_assert_int_eq(check_user_request("{\"tax_id\":\"1002003040\",\"first_name\":\"Микола\","
                                        "\"last_name\":\"Івченко\",\"email\":\"m@example.com\"}",
                                        &rep),
                     0);
    ehs_report_free(&rep);

    ck_assert_int_eq(check_user_request("{}", &rep), 4);
    assert_entry(&rep, "$.tax_id", "required", "[]", "required property tax_id was not present");
    assert_entry(&rep, "$.first_name", "required", "[]", NULL);
    assert_entry(&rep, "$.last_name", "required", "[]", NULL);
    assert_entry(&rep, "$.email", "required", "[]", NULL);
    ehs_report_free(&rep);

    ck_assert_int_eq(check_user_request("{\"tax_id\":\"12345\",\"first_name\":\"Mykola\","
                                        "\"last_name\":\"Іванов\",\"email\":\"nope\",\"id\":1}",
                                        &rep),
                     4);
    assert_entry(&rep, "$.tax_id", "format", "[\"^[0-9]{10}$\"]", NULL);
    assert_entry(&rep, "$.first_name", "format", P_NAME, NULL);
    assert_entry(&rep, "$.email", "email", "[]", "expected \"nope\" to be an email address");
    assert_entry(&rep, "$.id", "schema", "[\"id\"]", NULL);
    ehs_report_free(&rep);

    ck_assert_int_eq(check_user_request("{\"tax_id\":1002003040,\"first_name\":null,"
                                        "\"last_name\":\"\",\"email\":\"m@example.com\",\"Email\":\"x\"}",
                                        &rep),
                     5);
    assert_entry(&rep, "$.tax_id", "cast", "[\"string\"]", NULL);
    assert_entry(&rep, "$.first_name", "cast", "[\"string\"]", NULL);
    assert_entry(&rep, "$.last_name", "length", "[1]", NULL);
    assert_entry(&rep, "$.last_name", "format", P_NAME, NULL);
    assert_entry(&rep, "$.Email", "schema", "[\"Email\"]", NULL);
    ehs_report_free(&rep);
}
END_TEST

static int check_otp_request(const char *json, struct ehs_report *rep)
{
    yajl_val v = value_of(json);
    ehs_report_init(rep);
    int n = ehs_validate_otp_request(v, rep);
    yajl_tree_free(v);
    return n;
}

START_TEST(test_otp_request)
{
    struct ehs_report rep;
    ck_assert_int_eq(check_otp_request("{\"phone_number\":\"+380931234585\"}", &rep), 0);
    ehs_report_free(&rep);
    ck_assert_int_eq(check_otp_request("{\"phone_number\":\"380931234585\"}", &rep), 1);
    assert_entry(&rep, "$.phone_number", "format", P_PHONE, NULL);
    ehs_report_free(&rep);
    ck_assert_int_eq(check_otp_request("{\"phone_number\":\"+38093*****85\"}", &rep), 1);
    assert_entry(&rep, "$.phone_number", "format", P_PHONE, NULL);
    ehs_report_free(&rep);
    ck_assert_int_eq(check_otp_request("{}", &rep), 1);
    assert_entry(&rep, "$.phone_number", "required", "[]", NULL);
    ehs_report_free(&rep);
    ck_assert_int_eq(check_otp_request("{\"phone_number\":380931234585}", &rep), 1);
    assert_entry(&rep, "$.phone_number", "cast", "[\"string\"]", NULL);
    ehs_report_free(&rep);
    ck_assert_int_eq(check_otp_request("{\"phone_number\":\"+380931234585\",\"channel\":\"sms\"}", &rep), 1);
    assert_entry(&rep, "$.channel", "schema", "[\"channel\"]", NULL);
    ehs_report_free(&rep);
}
END_TEST

/* ---- the flow's helpers ---- */

START_TEST(test_password_policy)
{
    ck_assert(ehs_password_ok("passWoRd1234"));
    ck_assert(!ehs_password_ok("passWoRd123"));     /* 11 */
    ck_assert(!ehs_password_ok("passWoRdabcd"));    /* no digit */
    ck_assert(!ehs_password_ok("PASSWORD1234"));    /* no lower case */
    ck_assert(!ehs_password_ok("password1234"));    /* no upper case */
    ck_assert(!ehs_password_ok("passWoRd1"));       /* the seed's */
    ck_assert(ehs_password_ok("Пароль123456"));     /* 12 characters, 17 bytes */
    ck_assert(!ehs_password_ok("Пароль12345"));     /* 11 characters, 17 bytes */
    ck_assert(!ehs_password_ok("пароль123456"));    /* no upper case */
    ck_assert(ehs_password_ok("ҐРУНТ-їжак-12"));    /* Ukrainian upper and lower */
    ck_assert(ehs_password_ok("ЄІЇҐ1 abc   "));     /* Latin lower, Ukrainian upper */
    ck_assert(!ehs_password_ok("ЫЫЫЫЫЫыыыыы1"));    /* not Ukrainian letters */
    ck_assert(!ehs_password_ok("123456789012"));
    ck_assert(!ehs_password_ok(""));
    ck_assert(!ehs_password_ok(NULL));
}
END_TEST

START_TEST(test_names_match)
{
    ck_assert(ehs_names_match("Микола", "Микола"));
    ck_assert(ehs_names_match("Микола", "МИКОЛА"));
    ck_assert(ehs_names_match("  Микола ", "микола"));
    ck_assert(ehs_names_match("ҐЕДЗЬ ЄВА ІЇ", "ґедзь єва ії"));
    ck_assert(ehs_names_match("Мар'яна", "мар’яна"));
    ck_assert(ehs_names_match("Марʼяна", "Мар'яна"));
    ck_assert(ehs_names_match("Мар’яна", "МАРʼЯНА"));
    ck_assert(ehs_names_match("Ivchenko", "IVCHENKO"));
    ck_assert(ehs_names_match("Анна-Марія", "анна-марія"));
    ck_assert(!ehs_names_match("Микола", "Миколаа"));
    ck_assert(!ehs_names_match("Микола", "Мыкола"));
    ck_assert(!ehs_names_match("Ганна", "Гана"));
    ck_assert(!ehs_names_match("Ілля", "Илля"));          /* І and И are different letters */
    ck_assert(!ehs_names_match("Анна Марія", "Анна  Марія"));  /* inner spaces count */
    ck_assert(!ehs_names_match("Анна-Марія", "Анна Марія"));
    ck_assert(!ehs_names_match("Марʼяна", "Марьяна"));
    ck_assert(!ehs_names_match("Микола", NULL));
    ck_assert(!ehs_names_match(NULL, NULL));
    ck_assert(!ehs_names_match("Микола", ""));
}
END_TEST

START_TEST(test_mask_phone)
{
    char out[14];
    ehs_mask_phone("+380931234585", out);
    ck_assert_str_eq(out, "+38093*****85");
    ehs_mask_phone("+380671111111", out);
    ck_assert_str_eq(out, "+38067*****11");
    ehs_mask_phone("1234567", out);
    ck_assert_str_eq(out, "*****");
    ehs_mask_phone(NULL, out);
    ck_assert_str_eq(out, "*****");
}
END_TEST

START_TEST(test_luhn)
{
    ck_assert_int_eq(ehs_luhn_digit("7992739871", 10), 3);
    ck_assert(ehs_luhn_ok("79927398713"));
    ck_assert(!ehs_luhn_ok("79927398710"));
    ck_assert_int_eq(ehs_luhn_digit("123", 3), 0);
    ck_assert(ehs_luhn_ok("1230"));
    ck_assert(!ehs_luhn_ok("1234"));
    ck_assert_int_eq(ehs_luhn_digit("12a", 3), -1);
    ck_assert(!ehs_luhn_ok("12a0"));
    ck_assert(!ehs_luhn_ok(""));
    ck_assert(!ehs_luhn_ok("0"));
    ck_assert(!ehs_luhn_ok(NULL));
    /* every OTP: three digits and the check digit pass, any other last digit fails */
    for (int i = 0; i < 1000; i++) {
        char code[8];
        snprintf(code, sizeof(code), "%03d", i);
        int d = ehs_luhn_digit(code, 3);
        ck_assert(d >= 0 && d <= 9);
        for (int x = 0; x < 10; x++) {
            code[3] = (char)('0' + x);
            code[4] = '\0';
            ck_assert_msg(ehs_luhn_ok(code) == (x == d), "%s", code);
        }
    }
}
END_TEST

static Suite *ehealth_schema_suite(void)
{
    Suite *s = suite_create("ehealth_schema");
    TCase *tc = tcase_create("registration");
    tcase_add_test(tc, test_valid_example);
    tcase_add_test(tc, test_seed_example);
    tcase_add_loop_test(tc, test_bad_field, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_loop_test(tc, test_good_change, 0, (int)(sizeof(good_cases) / sizeof(good_cases[0])));
    tcase_add_test(tc, test_two_residences);
    tcase_add_test(tc, test_today);
    tcase_add_test(tc, test_every_problem_listed);
    tcase_add_test(tc, test_not_an_object);
    tcase_add_test(tc, test_duplicate_property);
    suite_add_tcase(s, tc);

    tc = tcase_create("bounds");
    tcase_add_test(tc, test_string_lengths);
    tcase_add_test(tc, test_entry_cap);
    tcase_add_test(tc, test_array_bounds);
    tcase_add_test(tc, test_echo_bounded);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_report_json);
    suite_add_tcase(s, tc);

    tc = tcase_create("other bodies");
    tcase_add_test(tc, test_otp_phone);
    tcase_add_test(tc, test_user_request);
    tcase_add_test(tc, test_otp_request);
    suite_add_tcase(s, tc);

    tc = tcase_create("helpers");
    tcase_add_test(tc, test_password_policy);
    tcase_add_test(tc, test_names_match);
    tcase_add_test(tc, test_mask_phone);
    tcase_add_test(tc, test_luhn);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ehealth_schema_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
