/* check_patient.c - validation of the Patient model of seed 003
 * (src/patient.c): every field's rules, any letter case of names, the
 * normalized item the SQL function reads, and the answer's shape. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "json.h"
#include "patient.h"

#define TODAY "2026-11-23"

/* The default patient, field by field; a test replaces or drops one. */
struct kv {
    const char *key;
    const char *json;
};

static const struct kv base[] = {
    {"guid", "\"26F407BC-01C7-4E64-AE16-80AE909B1574\""},
    {"family", "\"Иванов\""},
    {"name", "\"Иван\""},
    {"patronymic", "\"Иванович\""},
    {"birthday", "\"1990-01-01\""},
    {"birthplace", "\"г. Орехово-Зуево\""},
    {"polis", "{\"type\":{\"code\":\"3\",\"name\":\"ОМС\"},\"series\":\"\",\"number\":\"5000000000000041\","
              "\"start\":\"2013-04-08 00:00:00.000\",\"end\":null,\"smo\":\"1024000000000\"}"},
    {"identityDocument", "{\"type\":{\"code\":\"14\",\"name\":\"Паспорт\"},\"series\":\"46 03\","
                         "\"number\":\"123456\",\"date\":\"2013-04-08\",\"issuedBy\":\"УФМС\"}"},
    {"mcod", "\"470102\""},
    {"phone", "\"8 (999) 999-99-99\""},
    {"email", "\"a@a.ru\""},
    {"gender", "\"1\""},
    {"snils", "\"123-456-789 64\""},
    {"regAddress", "\"ул. Ленина, 1\""},
    {"factAddress", "\"ул. Ленина, 1\""},
    {"isWorker", "true"},
    {"workPlace", "\"\""},
    {"profession", "null"},
    {"position", "\"\""},
    {"bloodType", "\"1\""},
    {"rh", "false"},
    {"blackLabel", "false"},
};

/* The default patient with key's value replaced by json (NULL: dropped);
 * a key not in the defaults is added. The caller frees. */
static char *patient_with(const char *key, const char *json)
{
    size_t cap = 8192;
    char *s = malloc(cap);
    size_t n = 0;
    bool seen = false;
    n += (size_t)snprintf(s + n, cap - n, "{");
    for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++) {
        const char *v = base[i].json;
        if (key && strcmp(key, base[i].key) == 0) {
            seen = true;
            v = json;
        }
        if (v)
            n += (size_t)snprintf(s + n, cap - n, "%s\"%s\":%s", n > 1 ? "," : "", base[i].key, v);
    }
    if (key && !seen && json)
        n += (size_t)snprintf(s + n, cap - n, ",\"%s\":%s", key, json);
    snprintf(s + n, cap - n, "}");
    return s;
}

static void check_json(const char *text, struct patient_check *c)
{
    char err[128];
    yajl_val v = json_parse(text, strlen(text), JSON_MAX_DEPTH, err, sizeof(err));
    ck_assert_msg(v != NULL, "test JSON does not parse: %s: %s", err, text);
    patient_validate(v, TODAY, c);
    yajl_tree_free(v);
}

static bool has_msg(const struct patient_check *c, const char *prefix)
{
    for (int i = 0; i < c->msgs.n; i++)
        if (strncmp(c->msgs.text[i], prefix, strlen(prefix)) == 0)
            return true;
    return false;
}

static const char *all_msgs(const struct patient_check *c)
{
    static char out[4096];
    out[0] = '\0';
    for (int i = 0; i < c->msgs.n; i++) {
        strncat(out, c->msgs.text[i], sizeof(out) - strlen(out) - 3);
        strncat(out, " | ", sizeof(out) - strlen(out) - 1);
    }
    return out;
}

/* A field of the normalized item. */
static yajl_val item_field(const struct patient_check *c, const char *key)
{
    static yajl_val tree;
    char err[128];
    yajl_tree_free(tree);
    tree = json_parse(c->item.data, c->item.len, JSON_MAX_DEPTH, err, sizeof(err));
    ck_assert_ptr_nonnull(tree);
    return json_get(tree, key);
}

START_TEST(test_valid_default)
{
    char *s = patient_with(NULL, NULL);
    struct patient_check c;
    check_json(s, &c);
    ck_assert_msg(c.card_valid, "messages: %s", all_msgs(&c));
    ck_assert_int_eq(c.msgs.n, 0);
    ck_assert(!c.has_attachment);
    ck_assert_str_eq(c.mcod, "470102");
    ck_assert_str_eq(json_str(item_field(&c, "guid")), "26f407bc-01c7-4e64-ae16-80ae909b1574");
    ck_assert_str_eq(json_str(item_field(&c, "family_key")), "иванов");
    ck_assert_str_eq(json_str(item_field(&c, "polis_key")), "|5000000000000041");
    ck_assert(YAJL_IS_TRUE(item_field(&c, "is_enp")));
    ck_assert_str_eq(json_str(item_field(&c, "polis_start")), "2013-04-08");
    ck_assert_str_eq(json_str(item_field(&c, "doc_series")), "4603");
    ck_assert_str_eq(json_str(item_field(&c, "phone")), "79999999999");
    ck_assert_str_eq(json_str(item_field(&c, "snils")), "12345678964");
    ck_assert_int_eq(YAJL_GET_INTEGER(item_field(&c, "gender")), 1);
    ck_assert_str_eq(json_str(item_field(&c, "blood_type")), "1");
    ck_assert(YAJL_IS_FALSE(item_field(&c, "rh")));
    ck_assert(YAJL_IS_NULL(item_field(&c, "attachment")));
    patient_check_free(&c);
    free(s);
}
END_TEST

/* 000-000-000 00 (seed 003's own example) stands for an unknown SNILS: the
 * card is valid and has none, in any spelling. */
START_TEST(test_snils_placeholder)
{
    static const char *const spellings[] = {"\"000-000-000 00\"", "\"00000000000\"", "\"000 000 000-00\""};
    for (size_t i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        char *s = patient_with("snils", spellings[i]);
        struct patient_check c;
        check_json(s, &c);
        ck_assert_msg(c.card_valid, "%s: %s", spellings[i], all_msgs(&c));
        ck_assert_msg(YAJL_IS_NULL(item_field(&c, "snils")), "%s kept as a SNILS", spellings[i]);
        patient_check_free(&c);
        free(s);
    }
}
END_TEST

/* The seed's table writes Family, its example family: any case will do. */
START_TEST(test_any_case)
{
    const char *s =
        "{\"FAMILY\":\"Петров\",\"Name\":\"Пётр\",\"PATRONYMIC\":\"\",\"BirthDay\":\"1990-01-01T10:00:00Z\","
        "\"POLIS\":{\"Type\":{\"Code\":1},\"SERIES\":\"ее\",\"Number\":\"123 456\"},"
        "\"MCOD\":\"4701020\",\"PHONE\":\"+7 999 000-00-01\",\"Gender\":2,\"BloodType\":4,\"Rh\":true}";
    struct patient_check c;
    check_json(s, &c);
    ck_assert_msg(c.card_valid, "messages: %s", all_msgs(&c));
    ck_assert_str_eq(c.mcod, "4701020");
    ck_assert_str_eq(json_str(item_field(&c, "polis_key")), "ЕЕ|123456");
    ck_assert(YAJL_IS_FALSE(item_field(&c, "is_enp")));
    ck_assert_str_eq(json_str(item_field(&c, "birthday")), "1990-01-01");
    ck_assert_str_eq(json_str(item_field(&c, "patronymic_key")), "");
    ck_assert_str_eq(json_str(item_field(&c, "name_key")), "петр");
    ck_assert_int_eq(YAJL_GET_INTEGER(item_field(&c, "gender")), 2);
    ck_assert(YAJL_IS_NULL(item_field(&c, "guid")));
    ck_assert(YAJL_IS_NULL(item_field(&c, "snils")));
    patient_check_free(&c);
}
END_TEST

/* One bad field: the card is NotValid, and a message names the field. */
struct bad_case {
    const char *key;
    const char *json;   /* NULL: the field is dropped */
    const char *msg;    /* the message's prefix */
};

static const struct bad_case bad_cases[] = {
    {"family", NULL, "Family: не заполнено"},
    {"family", "\"  \"", "Family: не заполнено"},
    {"family", "42", "Family: ожидается строка"},
    {"name", NULL, "Name: не заполнено"},
    {"name", "null", "Name: не заполнено"},
    {"patronymic", NULL, "Patronymic: не заполнено"},
    {"birthday", NULL, "Birthday: не заполнено"},
    {"birthday", "\"01.01.1990\"", "Birthday: ожидается дата"},
    {"birthday", "\"1990-02-30\"", "Birthday: ожидается дата"},
    {"birthday", "\"1990-01-01T25:00:00\"", "Birthday: ожидается дата"},
    {"birthday", "\"1990-01-01T10:00:00+3\"", "Birthday: ожидается дата"},
    {"birthday", "\"2026-11-24\"", "Birthday: дата в будущем"},
    {"polis", NULL, "Polis: не заполнено"},
    {"polis", "\"5000000000000041\"", "Polis: ожидается объект"},
    {"polis", "{\"type\":{\"code\":\"3\"},\"number\":\"5000000000000042\"}", "Polis.Number: ЕНП не прошёл"},
    {"polis", "{\"number\":\"5000000000000042\"}", "Polis.Number: ЕНП не прошёл"},
    {"polis", "{\"type\":{\"code\":\"3\"},\"number\":\"123456789\"}", "Polis.Number: ЕНП должен"},
    {"polis", "{\"type\":{\"code\":\"3\"}}", "Polis.Number: не заполнено"},
    {"polis", "{\"type\":{\"code\":\"1\"},\"series\":\"ЕЕ\",\"number\":\"12*45\"}", "Polis.Number: неверный"},
    {"polis", "{\"type\":{\"code\":\"1\"},\"series\":\"Е/Е\",\"number\":\"1245\"}", "Polis.Series: неверный"},
    {"polis", "{\"number\":\"5000000000000041\",\"start\":\"2013-13-01\"}", "Polis.Start: ожидается"},
    {"polis", "{\"number\":\"5000000000000041\",\"start\":\"2013-01-02\",\"end\":\"2013-01-01\"}",
     "Polis.End: раньше"},
    {"polis", "{\"type\":\"3\",\"number\":\"5000000000000041\"}", "Polis.Type: ожидается объект"},
    {"identityDocument", "{\"type\":{\"code\":\"14\"},\"series\":\"460\",\"number\":\"123456\"}",
     "IdentityDocument.Series: серия паспорта"},
    {"identityDocument", "{\"type\":{\"code\":14},\"series\":\"4603\",\"number\":\"12345\"}",
     "IdentityDocument.Number: номер паспорта"},
    {"identityDocument", "{\"type\":{\"code\":\"14\"},\"number\":\"123456\"}",
     "IdentityDocument.Series: не заполнено"},
    {"identityDocument", "{\"series\":\"4603\",\"number\":\"123456\"}", "IdentityDocument.Type.Code: не заполнено"},
    {"identityDocument", "{\"type\":{\"code\":\"3\"},\"series\":\"I-МЮ\"}", "IdentityDocument.Number: не заполнено"},
    {"identityDocument", "{\"type\":{\"code\":\"14\"},\"series\":\"4603\",\"number\":\"123456\",\"date\":\"x\"}",
     "IdentityDocument.Date: ожидается"},
    {"identityDocument", "[]", "IdentityDocument: ожидается объект"},
    {"mcod", NULL, "Mcod: не заполнено"},
    {"mcod", "\"47010\"", "Mcod: МКОД"},
    {"mcod", "\"47010200\"", "Mcod: МКОД"},
    {"mcod", "470102", "Mcod: ожидается строка"},
    {"phone", NULL, "Phone: не заполнено"},
    {"phone", "\"12345\"", "Phone: ожидается номер"},
    {"email", "\"a@\"", "Email: неверный"},
    {"email", "\"a b@c.ru\"", "Email: неверный"},
    {"gender", "3", "Gender: допустимые значения"},
    {"gender", "\"М\"", "Gender: допустимые значения"},
    {"gender", "1.0", "Gender: неверный формат"},
    {"snils", "\"123-456-789 65\"", "Snils: не прошёл проверку"},
    {"snils", "\"123-456-789\"", "Snils: ожидается 11 цифр"},
    {"bloodType", "\"5\"", "BloodType: допустимые значения"},
    {"bloodType", "\"A\"", "BloodType: допустимые значения"},
    {"rh", "\"true\"", "RH: ожидается true или false"},
    {"isWorker", "1", "IsWorker: ожидается true или false"},
    {"blackLabel", "\"no\"", "BlackLabel: ожидается true или false"},
    {"guid", "\"26f407bc-01c7-4e64-ae16\"", "Guid: неверный формат"},
    {"regAddress", "{}", "RegAddress: ожидается строка"},
};

START_TEST(test_bad_field)
{
    const struct bad_case *bc = &bad_cases[_i];
    char *s = patient_with(bc->key, bc->json);
    struct patient_check c;
    check_json(s, &c);
    ck_assert_msg(!c.card_valid, "%s=%s passed", bc->key, bc->json ? bc->json : "(none)");
    ck_assert_msg(has_msg(&c, bc->msg), "%s=%s: want \"%s\", have: %s", bc->key,
                  bc->json ? bc->json : "(none)", bc->msg, all_msgs(&c));
    ck_assert_msg(c.msgs.n == 1, "one problem, one message: %s", all_msgs(&c));
    ck_assert_uint_eq(c.item.len, 0);  /* nothing to store */
    patient_check_free(&c);
    free(s);
}
END_TEST

/* Strings are bounded: 256 characters (not bytes) pass, 257 do not. */
START_TEST(test_string_bound)
{
    char v[2000] = "\"";
    for (int i = 0; i < PATIENT_STR_MAX; i++)
        strcat(v, "ж");
    strcat(v, "\"");
    char *s = patient_with("birthplace", v);
    struct patient_check c;
    check_json(s, &c);
    ck_assert_msg(c.card_valid, "%s", all_msgs(&c));
    patient_check_free(&c);
    free(s);
    v[strlen(v) - 1] = '\0';
    strcat(v, "ж\"");
    s = patient_with("birthplace", v);
    check_json(s, &c);
    ck_assert(!c.card_valid);
    ck_assert(has_msg(&c, "Birthplace: длиннее 256"));
    patient_check_free(&c);
    free(s);
}
END_TEST

/* Every problem is listed, not the first only. */
START_TEST(test_every_problem_listed)
{
    const char *s = "{\"family\":\"\",\"birthday\":\"x\",\"polis\":{\"number\":\"5000000000000042\"},"
                    "\"mcod\":\"1\",\"gender\":7,\"snils\":\"11111111111\"}";
    struct patient_check c;
    check_json(s, &c);
    ck_assert(!c.card_valid);
    const char *want[] = {"Family:", "Name:", "Patronymic:", "Birthday:", "Polis.Number:",
                          "Mcod:", "Phone:", "Gender:", "Snils:"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        ck_assert_msg(has_msg(&c, want[i]), "no %s in %s", want[i], all_msgs(&c));
    ck_assert_int_eq(c.msgs.n, (int)(sizeof(want) / sizeof(want[0])));
    patient_check_free(&c);
}
END_TEST

START_TEST(test_not_an_object)
{
    struct patient_check c;
    check_json("[1,2]", &c);
    ck_assert(!c.card_valid);
    ck_assert(has_msg(&c, "Patient: ожидается объект"));
    patient_check_free(&c);
}
END_TEST

START_TEST(test_attachment_valid)
{
    char *s = patient_with("attachment", "{\"Guid\":\"97A33040-9ECB-4FFE-854E-1EFCD5F94EB0\","
                                         "\"Mcod\":\"470102\",\"Date\":\"2020-01-15T00:00:00\","
                                         "\"Type\":2,\"Area\":\"12\"}");
    struct patient_check c;
    check_json(s, &c);
    ck_assert_msg(c.card_valid && c.has_attachment && c.attachment_valid, "%s", all_msgs(&c));
    yajl_val a = item_field(&c, "attachment");
    ck_assert_str_eq(json_str(json_get(a, "guid")), "97a33040-9ecb-4ffe-854e-1efcd5f94eb0");
    ck_assert_str_eq(json_str(json_get(a, "date")), "2020-01-15");
    ck_assert_int_eq(YAJL_GET_INTEGER(json_get(a, "type")), 2);
    patient_check_free(&c);
    free(s);
    /* Type defaults to 1 (by residence). */
    s = patient_with("attachment", "{\"date\":\"2020-01-15\"}");
    check_json(s, &c);
    ck_assert(c.card_valid && c.attachment_valid);
    ck_assert_int_eq(YAJL_GET_INTEGER(json_get(item_field(&c, "attachment"), "type")), 1);
    patient_check_free(&c);
    free(s);
}
END_TEST

static const struct bad_case bad_attachments[] = {
    {"attachment", "{}", "Attachment.Date: не заполнено"},
    {"attachment", "{\"date\":\"2030-01-01\"}", "Attachment.Date: дата в будущем"},
    {"attachment", "{\"date\":\"2020-01-01\",\"mcod\":\"330501\"}", "Attachment.Mcod: прикрепление возможно"},
    {"attachment", "{\"date\":\"2020-01-01\",\"mcod\":\"33\"}", "Attachment.Mcod: МКОД"},
    {"attachment", "{\"date\":\"2020-01-01\",\"type\":3}", "Attachment.Type: допустимые"},
    {"attachment", "{\"date\":\"2020-01-01\",\"guid\":\"x\"}", "Attachment.Guid: неверный"},
    {"attachment", "\"yes\"", "Attachment: ожидается объект"},
};

/* A bad attachment leaves the card valid: it is stored, the attachment not. */
START_TEST(test_attachment_bad)
{
    const struct bad_case *bc = &bad_attachments[_i];
    char *s = patient_with(bc->key, bc->json);
    struct patient_check c;
    check_json(s, &c);
    ck_assert_msg(c.card_valid, "%s", all_msgs(&c));
    ck_assert(c.has_attachment && !c.attachment_valid);
    ck_assert_msg(has_msg(&c, bc->msg), "want %s, have %s", bc->msg, all_msgs(&c));
    ck_assert(YAJL_IS_NULL(item_field(&c, "attachment")));
    patient_check_free(&c);
    free(s);
}
END_TEST

static char *gen_answer(const struct patient_result *res)
{
    yajl_gen g = json_gen_new();
    patient_result_gen(res, g);
    struct buf b;
    buf_init(&b);
    json_gen_finish(g, &b);
    return b.data;
}

/* The answer of a stored card and one of an attachment that failed
 * validation: the card Uploaded, the attachment NotValid, messages of both. */
START_TEST(test_result_make)
{
    char *s = patient_with("attachment", "{\"date\":\"2030-01-01\"}");
    struct patient_check c;
    check_json(s, &c);
    const char *sql = "{\"MkabStatus\": \"Uploaded\", \"AttachmentStatus\": \"None\","
                      " \"PersonGuid\": \"2957007c-c4d2-4819-a79d-384ceee6bdd0\","
                      " \"MkabGuid\": \"c180af82-b7bb-477c-a6de-e1625b49a21f\","
                      " \"AttachmentGuid\": null, \"ValidationMessage\": [\"x: y\"], \"Changed\": true}";
    struct patient_result res;
    ck_assert(patient_result_make(&c, sql, strlen(sql), &res));
    ck_assert_int_eq(res.mkab, PATIENT_UPLOADED);
    ck_assert_int_eq(res.attachment, PATIENT_NOT_VALID);
    ck_assert(res.changed);
    ck_assert_int_eq(res.msgs.n, 2);
    char *out = gen_answer(&res);
    ck_assert_str_eq(out, "{\"MkabStatus\":\"Uploaded\",\"AttachmentStatus\":\"NotValid\","
                          "\"PersonGuid\":\"2957007c-c4d2-4819-a79d-384ceee6bdd0\","
                          "\"MkabGuid\":\"c180af82-b7bb-477c-a6de-e1625b49a21f\",\"AttachmentGuid\":null,"
                          "\"ValidationMessage\":[\"Attachment.Date: дата в будущем\",\"x: y\"]}");
    free(out);
    ck_assert(!patient_result_make(&c, "[]", 2, &res));
    ck_assert(!patient_result_make(&c, "{\"MkabStatus\":\"Maybe\"}", 23, &res));
    patient_check_free(&c);
    free(s);
}
END_TEST

START_TEST(test_result_not_valid)
{
    char *s = patient_with("snils", "\"123-456-789 65\"");
    struct patient_check c;
    check_json(s, &c);
    struct patient_result res;
    ck_assert(patient_result_make(&c, NULL, 0, &res));
    char *out = gen_answer(&res);
    ck_assert_str_eq(out, "{\"MkabStatus\":\"NotValid\",\"AttachmentStatus\":\"None\",\"PersonGuid\":null,"
                          "\"MkabGuid\":null,\"AttachmentGuid\":null,"
                          "\"ValidationMessage\":[\"Snils: не прошёл проверку контрольного числа\"]}");
    free(out);
    patient_check_free(&c);
    free(s);
}
END_TEST


/* Every patient of the demo data set passes. */
START_TEST(test_demo_patients_valid)
{
    const char *dir = getenv("top_srcdir");
    char path[512];
    snprintf(path, sizeof(path), "%s/etc/demo.json", dir ? dir : ".");
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char data[1 << 20];
    size_t n = fread(data, 1, sizeof(data), f);
    fclose(f);
    char err[128];
    yajl_val root = json_parse(data, n, JSON_MAX_DEPTH, err, sizeof(err));
    ck_assert_ptr_nonnull(root);
    yajl_val pts = json_get(root, "patients");
    ck_assert(YAJL_IS_ARRAY(pts) && pts->u.array.len >= 8);
    for (size_t i = 0; i < pts->u.array.len; i++) {
        struct patient_check c;
        patient_validate(pts->u.array.values[i], NULL, &c);
        ck_assert_msg(c.card_valid, "demo patient %zu: %s", i, all_msgs(&c));
        patient_check_free(&c);
    }
    yajl_tree_free(root);
}
END_TEST

static Suite *patient_suite(void)
{
    Suite *s = suite_create("patient");
    TCase *tc = tcase_create("validate");
    tcase_add_test(tc, test_valid_default);
    tcase_add_test(tc, test_any_case);
    tcase_add_test(tc, test_snils_placeholder);
    tcase_add_loop_test(tc, test_bad_field, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_test(tc, test_string_bound);
    tcase_add_test(tc, test_every_problem_listed);
    tcase_add_test(tc, test_not_an_object);
    tcase_add_test(tc, test_attachment_valid);
    tcase_add_loop_test(tc, test_attachment_bad, 0,
                        (int)(sizeof(bad_attachments) / sizeof(bad_attachments[0])));
    tcase_add_test(tc, test_result_make);
    tcase_add_test(tc, test_result_not_valid);
    tcase_add_test(tc, test_demo_patients_valid);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(patient_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
