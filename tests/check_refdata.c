/* check_refdata.c - the reference-data validators (src/refdata.c): every
 * kind's normalized form, every message, the merge of the SQL functions'
 * answers, and the helpers the importer uses. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "json.h"
#include "refdata.h"

#define G1 "c3c977af-c3b4-4517-9d57-50a6844ec660"
#define G2 "19ebd6d6-2bbf-45c1-a8fb-2c7747f3beb3"
#define G3 "9b58e84c-1362-4824-9df3-97e0767c41ff"

static struct refdata_pool *pool;
static struct refdata_batch b;
static yajl_val tree;

static void setup(void)
{
    pool = refdata_pool_new();
    tree = NULL;
}

static void teardown(void)
{
    yajl_tree_free(tree);
    refdata_pool_free(pool);
}

static void build(enum refdata_kind k, const char *json)
{
    char err[128];
    yajl_tree_free(tree);
    tree = json_parse(json, strlen(json), JSON_MAX_DEPTH, err, sizeof(err));
    ck_assert_msg(tree != NULL, "test JSON: %s", err);
    ck_assert_int_eq(refdata_batch_build(&b, k, tree, refdata_pool_alloc, pool), 0);
}

/* The normalized items, parsed back. */
static yajl_val normalized(void)
{
    char err[128];
    yajl_val v = json_parse(b.json, strlen(b.json), JSON_MAX_DEPTH, err, sizeof(err));
    ck_assert_msg(v && YAJL_IS_ARRAY(v), "normalized JSON: %s", b.json);
    return v;
}

static bool has_msg(int item, const char *m)
{
    for (int i = 0; i < b.items[item].nmsgs; i++)
        if (strcmp(b.items[item].msgs[i], m) == 0)
            return true;
    return false;
}

#define ck_msg(item, m) \
    ck_assert_msg(has_msg(item, m), "item %d lacks message \"%s\" (has %d, first: %s)", item, m, \
                  b.items[item].nmsgs, b.items[item].nmsgs ? b.items[item].msgs[0] : "-")

/* --- date-times --- */

START_TEST(datetime_offsets)
{
    int64_t a, z, c;
    ck_assert(refdata_parse_datetime("2026-11-23T08:00:00+03:00", &a));
    ck_assert(refdata_parse_datetime("2026-11-23T05:00:00Z", &z));
    ck_assert(refdata_parse_datetime("2026-11-23T05:00+0000", &c));
    ck_assert_int_eq(a, z);
    ck_assert_int_eq(c, z);
    ck_assert(refdata_parse_datetime("2026-11-23T05:00:00.123Z", &c));
    ck_assert_int_eq(c, z);
    ck_assert(refdata_parse_datetime("2026-11-22T21:00:00-08:00", &c));
    ck_assert_int_eq(c, z);
    char out[21];
    refdata_format_utc(z, out);
    ck_assert_str_eq(out, "2026-11-23T05:00:00Z");
    refdata_format_utc(0, out);
    ck_assert_str_eq(out, "1970-01-01T00:00:00Z");
    ck_assert(refdata_parse_datetime("2024-02-29T23:59:59Z", &c));
    refdata_format_utc(c, out);
    ck_assert_str_eq(out, "2024-02-29T23:59:59Z");
}
END_TEST

START_TEST(datetime_refused)
{
    int64_t e;
    static const char *const bad[] = {
        "2026-11-23T08:00:00",        /* no offset */
        "2026-11-23",                 /* no time */
        "2026-02-30T08:00Z",          /* no such day */
        "2026-11-23T24:00Z",          /* hour */
        "2026-11-23T08:60Z",          /* minute */
        "2026-11-23T08:00:61Z",       /* second */
        "2026-11-23T08:00+15:00",     /* offset */
        "2026-11-23T08:00Zjunk",
        "2026-11-23T08:00:00.Z",
        "23.11.2026 08:00",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(!refdata_parse_datetime(bad[i], &e), "accepted %s", bad[i]);
}
END_TEST

START_TEST(cell_guid_deterministic)
{
    char a[37], a2[37], c[37], norm[37];
    refdata_cell_guid(G2, "2026-11-23T05:00:00Z", a);
    refdata_cell_guid(G2, "2026-11-23T05:00:00Z", a2);
    refdata_cell_guid(G2, "2026-11-23T05:15:00Z", c);
    ck_assert_str_eq(a, a2);
    ck_assert_str_ne(a, c);
    ck_assert_int_eq(ids_guid(a, norm), ID_OK);
    ck_assert_str_eq(a, norm);
    ck_assert_int_eq(a[14], '5');
    ck_assert_ptr_nonnull(strchr("89ab", a[19]));
}
END_TEST


/* --- LPUs --- */

START_TEST(lpu_valid)
{
    build(REFDATA_LPUS, "[{\"guid\":\"C3C977AF-C3B4-4517-9D57-50A6844EC660\",\"mcod\":\"470102\","
                        "\"name\":\"ГП №1\",\"isChildrenPoliclinic\":true,\"phone\":\"8-496\","
                        "\"email\":\"x@y\"}]");
    ck_assert_int_eq(b.n, 1);
    ck_assert_int_eq(b.nvalid, 1);
    ck_assert_int_eq(b.items[0].status, RD_PENDING);
    ck_assert_str_eq(b.items[0].guid, G1);
    ck_assert_str_eq(b.items[0].mcod, "470102");
    yajl_val n = normalized();
    yajl_val it = n->u.array.values[0];
    ck_assert_int_eq(YAJL_GET_INTEGER(json_get(it, "i")), 0);
    ck_assert_str_eq(json_str(json_get(it, "guid")), G1);
    ck_assert(YAJL_IS_TRUE(json_get(it, "is_children")));
    ck_assert(YAJL_IS_TRUE(json_get(it, "is_active")));
    ck_assert_str_eq(json_str(json_get(json_get(it, "attrs"), "email")), "x@y");
    yajl_tree_free(n);
}
END_TEST

START_TEST(lpu_messages)
{
    build(REFDATA_LPUS, "[{\"guid\":\"nope\",\"mcod\":\"47A102\",\"isActive\":\"yes\",\"phone\":5},"
                        "{\"mcod\":\"12345678\",\"name\":\"\"}, 7]");
    ck_assert_int_eq(b.nvalid, 0);
    ck_assert_str_eq(b.json, "[]");
    ck_assert_int_eq(b.items[0].status, RD_NOT_VALID);
    ck_msg(0, "guid: неверный формат GUID");
    ck_msg(0, "mcod: МКОД — строка от 1 до 7 цифр");
    ck_msg(0, "name: обязательное поле");
    ck_msg(0, "isActive: должно быть true или false");
    ck_msg(0, "phone: должно быть строкой");
    ck_assert_str_eq(b.items[0].guid, "");
    ck_msg(1, "guid: обязательное поле");
    ck_msg(1, "mcod: МКОД — строка от 1 до 7 цифр");
    ck_msg(1, "name: обязательное поле");
    ck_assert_int_eq(b.items[2].status, RD_NOT_VALID);
    ck_msg(2, "item: должно быть объектом JSON");
}
END_TEST

/* An LPU is kept whole (attrs), numbers and all: a number jsonb cannot
 * take (1e200000) failed the whole batch's statement, and a huge one
 * (1e131071) was spelt out digit by digit in every answer. Such an item is
 * NotValid, naming its field; the others and ordinary numbers pass. */
START_TEST(lpu_numbers)
{
    build(REFDATA_LPUS, "[{\"guid\":\"" G1 "\",\"mcod\":\"470102\",\"name\":\"ГП\",\"fcod\":1e200000},"
                        "{\"guid\":\"" G1 "\",\"mcod\":\"470102\",\"name\":\"ГП\",\"x\":{\"y\":[1,1e131071]}},"
                        "{\"guid\":\"" G1 "\",\"mcod\":\"470102\",\"name\":\"ГП\",\"fcod\":-12.5e3,"
                        "\"n\":12345678901234567890,\"m\":[1E+308,2e-308,0.5]},"
                        "{\"guid\":\"" G1 "\",\"mcod\":\"470102\",\"name\":\"ГП\",\"tiny\":1e-200000},"
                        "{\"guid\":\"" G1 "\",\"mcod\":\"470102\",\"name\":\"ГП\",\"zero\":0e-999}]");
    ck_assert_int_eq(b.nvalid, 1);
    ck_assert_int_eq(b.items[0].status, RD_NOT_VALID);
    ck_msg(0, "fcod: число вне допустимого диапазона (не длиннее 40 знаков, порядок от -308 до 308)");
    ck_assert_int_eq(b.items[1].status, RD_NOT_VALID);
    ck_msg(1, "x: число вне допустимого диапазона (не длиннее 40 знаков, порядок от -308 до 308)");
    ck_assert_int_eq(b.items[2].status, RD_PENDING);
    ck_msg(3, "tiny: число вне допустимого диапазона (не длиннее 40 знаков, порядок от -308 до 308)");
    ck_msg(4, "zero: число вне допустимого диапазона (не длиннее 40 знаков, порядок от -308 до 308)");
    /* A key too long for the message is cut, never inside a character. */
    char json[2048] = "[{\"guid\":\"" G1 "\",\"mcod\":\"470102\",\"name\":\"ГП\",\"";
    for (int i = 0; i < 200; i++)
        strcat(json, "я");
    strcat(json, "\":1e999}]");
    build(REFDATA_LPUS, json);
    ck_assert_int_eq(b.items[0].status, RD_NOT_VALID);
    ck_assert_int_eq(b.items[0].nmsgs, 1);
    ck_assert(ids_utf8_valid(b.items[0].msgs[0], strlen(b.items[0].msgs[0])));
}
END_TEST

/* --- resources --- */

START_TEST(resource_valid)
{
    build(REFDATA_RESOURCES,
          "[{\"guid\":\"" G2 "\",\"lpuGuid\":\"" G1 "\",\"resType\":\"Room\","
          "\"speciality\":{\"code\":29},\"flat\":2,\"ageMin\":18,\"gender\":2,"
          "\"directionOnly\":true}]");
    ck_assert_int_eq(b.nvalid, 1);
    yajl_val n = normalized();
    yajl_val it = n->u.array.values[0];
    ck_assert_str_eq(json_str(json_get(it, "res_type")), "Room");
    ck_assert_str_eq(json_str(json_get(it, "spec_code")), "29");
    ck_assert_str_eq(json_str(json_get(it, "family")), "");
    ck_assert_int_eq(YAJL_GET_INTEGER(json_get(it, "floor")), 2);
    ck_assert_int_eq(YAJL_GET_INTEGER(json_get(it, "age_min")), 18);
    ck_assert(YAJL_IS_NULL(json_get(it, "age_max")));
    ck_assert_int_eq(YAJL_GET_INTEGER(json_get(it, "gender")), 2);
    ck_assert(YAJL_IS_TRUE(json_get(it, "referral_only")));
    ck_assert(YAJL_IS_FALSE(json_get(it, "dispensary_only")));
    yajl_tree_free(n);
}
END_TEST

START_TEST(resource_messages)
{
    build(REFDATA_RESOURCES,
          "[{\"guid\":\"" G2 "\",\"lpuGuid\":\"" G1 "\",\"resType\":\"Doctor\",\"ageMin\":40,"
          "\"ageMax\":20,\"gender\":3,\"flat\":1.5,\"speciality\":{\"name\":\"x\"}},"
          "{\"guid\":\"" G2 "\",\"resType\":\"Nurse\",\"speciality\":\"27\"}]");
    ck_assert_int_eq(b.nvalid, 0);
    ck_msg(0, "family: обязательное поле");
    ck_msg(0, "name: обязательное поле");
    ck_msg(0, "ageMin: не может быть больше ageMax");
    ck_msg(0, "gender: должно быть целым числом от 1 до 2");
    ck_msg(0, "flat: должно быть целым числом от -20 до 500");
    ck_msg(0, "speciality.code: обязательное поле");
    ck_msg(1, "lpuGuid: обязательное поле");
    ck_msg(1, "resType: должно быть Doctor или Room");
    ck_msg(1, "speciality: должно быть объектом {code, name}");
}
END_TEST

/* --- cells --- */

START_TEST(cell_valid)
{
    build(REFDATA_CELLS,
          "[{\"guid\":\"" G3 "\",\"resourceGuid\":\"" G2 "\",\"begin\":\"2026-12-01T08:00:00+03:00\","
          "\"end\":\"2026-12-01T08:15:00+03:00\",\"busyType\":{\"name\":\"Приём\",\"type\":1,"
          "\"code\":4},\"flagAccess\":[\"Internet\",\"Registry\",\"Internet\",\"None\"]},"
          "{\"guid\":\"" G2 "\",\"deleted\":true}]");
    ck_assert_int_eq(b.nvalid, 2);
    yajl_val n = normalized();
    yajl_val it = n->u.array.values[0];
    ck_assert_str_eq(json_str(json_get(it, "begin")), "2026-12-01T05:00:00Z");
    ck_assert_str_eq(json_str(json_get(it, "end")), "2026-12-01T05:15:00Z");
    ck_assert_str_eq(json_str(json_get(it, "busy_code")), "4");
    yajl_val acc = json_get(it, "access");
    /* One spelling of one set: deduplicated, in the fixed order. */
    ck_assert_int_eq(acc->u.array.len, 2);
    ck_assert_str_eq(json_str(acc->u.array.values[0]), "Registry");
    ck_assert_str_eq(json_str(acc->u.array.values[1]), "Internet");
    ck_assert(YAJL_IS_FALSE(json_get(it, "deleted")));
    ck_assert(YAJL_IS_TRUE(json_get(n->u.array.values[1], "deleted")));
    ck_assert_int_eq(YAJL_GET_INTEGER(json_get(n->u.array.values[1], "i")), 1);
    yajl_tree_free(n);
}
END_TEST

START_TEST(cell_messages)
{
    build(REFDATA_CELLS,
          "[{\"guid\":\"" G3 "\",\"resourceGuid\":\"" G2 "\",\"begin\":\"2026-12-01T08:15:00+03:00\","
          "\"end\":\"2026-12-01T08:00:00+03:00\",\"flagAccess\":[\"Everyone\"],"
          "\"busyType\":{\"type\":5}},"
          "{\"guid\":\"" G3 "\",\"begin\":\"2026-12-01T08:00:00\",\"end\":\"soon\"},"
          "{\"guid\":\"" G3 "\",\"deleted\":\"yes\",\"resourceGuid\":\"x\",\"flagAccess\":\"Internet\","
          "\"begin\":\"2026-12-01T08:00Z\",\"end\":\"2026-12-01T08:10Z\"}]");
    ck_assert_int_eq(b.nvalid, 0);
    ck_msg(0, "end: должно быть позже begin");
    ck_msg(0, "flagAccess[0]: должно быть одним из None, Registry, Doctor, Internet, DoctorOtherLpu");
    ck_msg(0, "busyType.type: должно быть 0 (выходной) или 1 (приём)");
    ck_msg(1, "resourceGuid: обязательное поле");
    ck_msg(1, "begin: неверные дата и время (ожидается ГГГГ-ММ-ДДTчч:мм[:сс] с поясом: Z или ±чч:мм)");
    ck_msg(1, "end: неверные дата и время (ожидается ГГГГ-ММ-ДДTчч:мм[:сс] с поясом: Z или ±чч:мм)");
    ck_msg(1, "flagAccess: обязательное поле");
    ck_msg(2, "deleted: должно быть true или false");
    ck_msg(2, "resourceGuid: неверный формат GUID");
    ck_msg(2, "flagAccess: должно быть массивом из None, Registry, Doctor, Internet, DoctorOtherLpu");
}
END_TEST

/* --- referrals and dispensary --- */

START_TEST(referral_valid)
{
    build(REFDATA_REFERRALS,
          "[{\"guid\":\"" G3 "\",\"number\":\"N-1\",\"personSnils\":\"123-456-789 64\","
          "\"lpuFromGuid\":\"" G1 "\",\"lpuToGuid\":\"" G1 "\",\"resourceGuid\":\"" G2 "\","
          "\"issued\":\"2026-11-01T00:00:00Z\",\"validDays\":30,\"type\":\"consultation\"},"
          "{\"guid\":\"" G2 "\",\"number\":\"N-2\",\"mkabGuid\":\"" G3 "\",\"lpuFromGuid\":\"" G1 "\","
          "\"lpuToGuid\":\"" G1 "\",\"speciality\":{\"code\":\"9\"},\"issued\":\"2026-11-01\","
          "\"validUntil\":\"2026-12-01\"}]");
    ck_assert_int_eq(b.nvalid, 2);
    yajl_val n = normalized();
    yajl_val a = n->u.array.values[0], c = n->u.array.values[1];
    ck_assert_str_eq(json_str(json_get(a, "person_snils")), "12345678964");
    ck_assert_str_eq(json_str(json_get(a, "issued_on")), "2026-11-01");
    ck_assert_int_eq(YAJL_GET_INTEGER(json_get(a, "valid_days")), 30);
    ck_assert(YAJL_IS_NULL(json_get(a, "valid_until")));
    ck_assert_str_eq(json_str(json_get(a, "kind")), "consultation");
    ck_assert_str_eq(json_str(json_get(c, "mkab_guid")), G3);
    ck_assert(YAJL_IS_NULL(json_get(c, "resource_guid")));
    ck_assert_str_eq(json_str(json_get(c, "valid_until")), "2026-12-01");
    yajl_tree_free(n);
}
END_TEST

START_TEST(referral_messages)
{
    build(REFDATA_REFERRALS,
          "[{\"guid\":\"" G3 "\",\"personSnils\":\"123-456-789 65\",\"issued\":\"2026-11-31\"},"
          "{\"guid\":\"" G3 "\",\"number\":\"1\",\"personGuid\":\"bad\",\"lpuFromGuid\":\"" G1 "\","
          "\"lpuToGuid\":\"" G1 "\",\"speciality\":{\"code\":\"9\"},\"issued\":\"2026-11-10\","
          "\"validUntil\":\"2026-11-01\"},"
          "{\"guid\":\"" G3 "\",\"number\":\"1\",\"lpuFromGuid\":\"" G1 "\",\"lpuToGuid\":\"" G1 "\","
          "\"speciality\":{\"code\":\"9\"},\"issued\":\"2026-11-10\",\"validDays\":0,"
          "\"personSnils\":\"12\"}]");
    ck_assert_int_eq(b.nvalid, 0);
    ck_msg(0, "number: обязательное поле");
    ck_msg(0, "personSnils: контрольное число СНИЛС не сходится");
    ck_msg(0, "lpuFromGuid: обязательное поле");
    ck_msg(0, "lpuToGuid: обязательное поле");
    ck_msg(0, "speciality: обязательное поле (или resourceGuid)");
    ck_msg(0, "issued: неверная дата (ожидается ГГГГ-ММ-ДД)");
    ck_msg(0, "validUntil: обязательное поле (или validDays)");
    ck_msg(1, "personGuid: неверный формат GUID");
    ck_msg(1, "validUntil: не может быть раньше issued");
    ck_msg(2, "validDays: должно быть целым числом от 1 до 3650");
    ck_msg(2, "personSnils: неверный формат СНИЛС (11 цифр)");
    /* A validDays that is wrong is reported once, not also as missing. */
    ck_assert(!has_msg(2, "validUntil: обязательное поле (или validDays)"));
}
END_TEST

START_TEST(dispensary_items)
{
    build(REFDATA_DISPENSARY, "[{\"personSnils\":\"123-456-789 64\",\"resourceGuid\":\"" G2 "\"},"
                              "{\"personGuid\":\"" G3 "\",\"resourceGuid\":\"" G2 "\",\"deleted\":true},"
                              "{\"resourceGuid\":\"x\"}]");
    ck_assert_int_eq(b.nvalid, 2);
    ck_assert_str_eq(b.items[0].guid, "");
    ck_msg(2, "personSnils: обязательное поле (или personGuid, или mkabGuid)");
    ck_msg(2, "resourceGuid: неверный формат GUID");
    yajl_val n = normalized();
    ck_assert(YAJL_IS_TRUE(json_get(n->u.array.values[1], "deleted")));
    ck_assert_str_eq(json_str(json_get(n->u.array.values[1], "person_guid")), G3);
    yajl_tree_free(n);
}
END_TEST

/* --- answers --- */

static void two_lpus(void)
{
    build(REFDATA_LPUS, "[{\"guid\":\"" G1 "\",\"mcod\":\"470102\",\"name\":\"a\"},"
                        "{\"guid\":\"bad\"},"
                        "{\"guid\":\"" G2 "\",\"mcod\":\"470103\",\"name\":\"b\"}]");
    ck_assert_int_eq(b.nvalid, 2);
}

START_TEST(apply_and_generate)
{
    two_lpus();
    char f[32] = "";
    ck_assert_int_eq(refdata_batch_apply(&b, "{\"results\":[{\"i\":2,\"s\":\"Error\",\"m\":[\"mcod: x\"]},"
                                             "{\"i\":0,\"s\":\"Unchanged\",\"m\":[]}]}", f, sizeof(f)),
                     0);
    yajl_gen g = json_gen_new();
    refdata_batch_gen(&b, g);
    struct buf out;
    buf_init(&out);
    json_gen_finish(g, &out);
    ck_assert_str_eq(out.data,
                     "[{\"Guid\":\"" G1 "\",\"Status\":\"Unchanged\",\"ValidationMessage\":[]},"
                     "{\"Guid\":null,\"Status\":\"NotValid\",\"ValidationMessage\":"
                     "[\"guid: неверный формат GUID\",\"mcod: обязательное поле\",\"name: обязательное поле\"]},"
                     "{\"Guid\":\"" G2 "\",\"Status\":\"Error\",\"ValidationMessage\":[\"mcod: x\"]}]");
    buf_free(&out);
}
END_TEST

START_TEST(apply_forbidden)
{
    two_lpus();
    char f[32] = "";
    ck_assert_int_eq(refdata_batch_apply(&b, "{\"forbidden\":\"330501\"}", f, sizeof(f)), 1);
    ck_assert_str_eq(f, "330501");
}
END_TEST

START_TEST(apply_malformed)
{
    static const char *const bad[] = {
        "not json",
        "[]",
        "{}",
        "{\"results\":[{\"i\":0,\"s\":\"Uploaded\"}]}",                               /* item 2 left */
        "{\"results\":[{\"i\":0,\"s\":\"Uploaded\"},{\"i\":0,\"s\":\"Uploaded\"}]}",  /* twice */
        "{\"results\":[{\"i\":0,\"s\":\"Uploaded\"},{\"i\":1,\"s\":\"Uploaded\"}]}",  /* not sent */
        "{\"results\":[{\"i\":0,\"s\":\"Uploaded\"},{\"i\":9,\"s\":\"Uploaded\"}]}",
        "{\"results\":[{\"i\":0,\"s\":\"Uploaded\"},{\"i\":2,\"s\":\"Fine\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        two_lpus();
        char f[32];
        ck_assert_msg(refdata_batch_apply(&b, bad[i], f, sizeof(f)) == -1, "accepted %s", bad[i]);
    }
}
END_TEST

START_TEST(empty_and_large_batches)
{
    build(REFDATA_CELLS, "[]");
    ck_assert_int_eq(b.n, 0);
    ck_assert_str_eq(b.json, "[]");
    /* Messages stop at the limit instead of overflowing. */
    struct buf j;
    buf_init(&j);
    buf_puts(&j, "[{");
    for (int i = 0; i < 40; i++)
        buf_printf(&j, "%s\"x%d\":1", i ? "," : "", i);
    buf_puts(&j, "}]");
    build(REFDATA_REFERRALS, j.data);
    ck_assert_int_le(b.items[0].nmsgs, REFDATA_MAX_MSGS);
    ck_assert_int_eq(b.items[0].status, RD_NOT_VALID);
    buf_free(&j);
}
END_TEST

static Suite *refdata_suite(void)
{
    Suite *s = suite_create("refdata");
    TCase *t = tcase_create("core");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, datetime_offsets);
    tcase_add_test(t, datetime_refused);
    tcase_add_test(t, cell_guid_deterministic);
    tcase_add_test(t, lpu_valid);
    tcase_add_test(t, lpu_messages);
    tcase_add_test(t, lpu_numbers);
    tcase_add_test(t, resource_valid);
    tcase_add_test(t, resource_messages);
    tcase_add_test(t, cell_valid);
    tcase_add_test(t, cell_messages);
    tcase_add_test(t, referral_valid);
    tcase_add_test(t, referral_messages);
    tcase_add_test(t, dispensary_items);
    tcase_add_test(t, apply_and_generate);
    tcase_add_test(t, apply_forbidden);
    tcase_add_test(t, apply_malformed);
    tcase_add_test(t, empty_and_large_batches);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(refdata_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
