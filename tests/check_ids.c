/* check_ids.c - unit tests of the identifier validators (src/ids.c).
 * One TCase per validator, then a sweep that runs every function over
 * exact-size heap copies of odd inputs, so that ASan catches any read past
 * the NUL, and canary bytes catch any write past cap. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ids.h"
#include "util.h"

/* For hot loops: a passing ck_assert records a mark point (I/O to the
 * runner), which over many thousands of checks takes minutes. This one
 * costs nothing until it fails. */
#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond))                                                       \
            ck_abort_msg("%s:%d: failed: %s", __FILE__, __LINE__, #cond);  \
    } while (0)

/* ---- SNILS ---- */

START_TEST(snils_valid_examples)
{
    static const char *const ok[] = {
        "112-233-445 95", "123-456-789 64", "234-567-890 99", "345-678-901 23",
        "456-789-012 38", "567-890-123 43", "678-901-234 38",
    };
    char out[12];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        ck_assert_msg(ids_snils(ok[i], out) == ID_OK, "%s", ok[i]);
    ck_assert_int_eq(ids_snils("112-233-445 95", out), ID_OK);
    ck_assert_str_eq(out, "11223344595");
}
END_TEST

START_TEST(snils_separators)
{
    char out[12];

    ck_assert_int_eq(ids_snils("11223344595", out), ID_OK);
    ck_assert_str_eq(out, "11223344595");
    ck_assert_int_eq(ids_snils("112 233 445 95", out), ID_OK);
    ck_assert_int_eq(ids_snils("112-233-445-95", out), ID_OK);
    ck_assert_int_eq(ids_snils(" 1-1-2 233445 9 5 ", out), ID_OK);
    ck_assert_str_eq(out, "11223344595");
    /* Other separators are not accepted. */
    ck_assert_int_eq(ids_snils("112.233.445 95", out), ID_FORMAT);
    ck_assert_int_eq(ids_snils("112_233_445_95", out), ID_FORMAT);
    ck_assert_int_eq(ids_snils("112-233-445\t95", out), ID_FORMAT);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(ids_snils("--- ---", out), ID_FORMAT);
}
END_TEST

START_TEST(snils_checksum)
{
    char out[12];

    /* The SNILS printed in the vendor's docs. */
    ck_assert_int_eq(ids_snils("017-293-411 11", out), ID_CHECKSUM);
    ck_assert_str_eq(out, "01729341111"); /* digits given on ID_CHECKSUM too */
    ck_assert_int_eq(ids_snils("017-293-411 40", out), ID_OK);
    ck_assert_int_eq(ids_snils("112-233-445 96", out), ID_CHECKSUM);
    ck_assert_int_eq(ids_snils("112-233-445 59", out), ID_CHECKSUM);
    ck_assert_int_eq(ids_snils("123-456-789 46", out), ID_CHECKSUM);
}
END_TEST

START_TEST(snils_check_number_rules)
{
    char out[12];

    /* sum 100 and 101 give 00 */
    ck_assert_int_eq(ids_snils("050-234-316 00", out), ID_OK);
    ck_assert_int_eq(ids_snils("050-234-316 01", out), ID_CHECKSUM);
    ck_assert_int_eq(ids_snils("050-234-316 100", out), ID_FORMAT);
    ck_assert_int_eq(ids_snils("016-103-396 00", out), ID_OK);
    ck_assert_int_eq(ids_snils("016-103-396 01", out), ID_CHECKSUM);
    /* sum 102: mod 101 is 01 */
    ck_assert_int_eq(ids_snils("700-201-621 01", out), ID_OK);
    ck_assert_int_eq(ids_snils("700-201-621 02", out), ID_CHECKSUM);
    /* sum 201: mod 101 is 100, which gives 00 */
    ck_assert_int_eq(ids_snils("820-981-233 00", out), ID_OK);
    ck_assert_int_eq(ids_snils("820-981-233 99", out), ID_CHECKSUM);
    /* sum 202: mod 101 is 0 */
    ck_assert_int_eq(ids_snils("913-702-858 00", out), ID_OK);
    ck_assert_int_eq(ids_snils("913-702-858 01", out), ID_CHECKSUM);
}
END_TEST

START_TEST(snils_unchecked_range)
{
    char out[12];

    /* Up to 001-001-998 the check digits are not verified. */
    ck_assert_int_eq(ids_snils("001-001-998 00", out), ID_OK);
    ck_assert_int_eq(ids_snils("001-001-998 77", out), ID_OK);
    ck_assert_int_eq(ids_snils("001-001-998 64", out), ID_OK);
    ck_assert_int_eq(ids_snils("000-000-001 42", out), ID_OK);
    /* The seed's placeholder falls in that range, so the rule as written
     * lets it through: callers that must refuse it do so themselves. */
    ck_assert_int_eq(ids_snils("000-000-000 00", out), ID_OK);
    ck_assert_str_eq(out, "00000000000");
    /* From 001-001-999 on they are (its check number is 65). */
    ck_assert_int_eq(ids_snils("001-001-999 00", out), ID_CHECKSUM);
    ck_assert_int_eq(ids_snils("001-001-999 65", out), ID_OK);
}
END_TEST

START_TEST(snils_bad_shape)
{
    char out[12];

    ck_assert_int_eq(ids_snils(NULL, out), ID_EMPTY);
    ck_assert_int_eq(ids_snils("", out), ID_EMPTY);
    ck_assert_int_eq(ids_snils("112-233-445 9", out), ID_FORMAT);
    ck_assert_int_eq(ids_snils("112-233-445 955", out), ID_FORMAT);
    ck_assert_int_eq(ids_snils("1122334459", out), ID_FORMAT);
    ck_assert_int_eq(ids_snils("112233445950", out), ID_FORMAT);
    ck_assert_int_eq(ids_snils("112-233-445 9a", out), ID_FORMAT);
    ck_assert_int_eq(ids_snils("abc-def-ghi jk", out), ID_FORMAT);
    ck_assert_int_eq(ids_snils("112-233-445 95\n", out), ID_FORMAT);
    ck_assert_int_eq(ids_snils("\xd0\x9d\xd0\x95\xd1\x82", out), ID_FORMAT);
    ck_assert_int_eq(ids_snils("\xff\xfe", out), ID_FORMAT);
    ck_assert_str_eq(out, "");
    /* The output is optional. */
    ck_assert_int_eq(ids_snils("112-233-445 95", NULL), ID_OK);
    ck_assert_int_eq(ids_snils("x", NULL), ID_FORMAT);
}
END_TEST

/* ---- ЕНП and Luhn ---- */

START_TEST(enp_valid)
{
    ck_assert_int_eq(ids_enp("5000000000000041"), ID_OK);
    ck_assert_int_eq(ids_enp("7700000000000016"), ID_OK);
    ck_assert_int_eq(ids_enp("5000000000000058"), ID_OK);
    ck_assert_int_eq(ids_enp("5000000000000066"), ID_OK);
    ck_assert_int_eq(ids_enp("5000000000000074"), ID_OK);
}
END_TEST

START_TEST(enp_checksum)
{
    ck_assert_int_eq(ids_enp("5000000000000042"), ID_CHECKSUM);
    ck_assert_int_eq(ids_enp("7700000000000010"), ID_CHECKSUM);
    ck_assert_int_eq(ids_enp("0500000000000041"), ID_CHECKSUM);
    ck_assert_int_eq(ids_enp("5000000000000014"), ID_CHECKSUM);
}
END_TEST

START_TEST(enp_bad_shape)
{
    ck_assert_int_eq(ids_enp(NULL), ID_EMPTY);
    ck_assert_int_eq(ids_enp(""), ID_EMPTY);
    ck_assert_int_eq(ids_enp("500000000000004"), ID_FORMAT);
    ck_assert_int_eq(ids_enp("50000000000000410"), ID_FORMAT);
    ck_assert_int_eq(ids_enp("50000000000000411111111111"), ID_FORMAT);
    ck_assert_int_eq(ids_enp("5000 0000 0000 0041"), ID_FORMAT);
    ck_assert_int_eq(ids_enp("5000-0000-0000-0041"), ID_FORMAT);
    ck_assert_int_eq(ids_enp(" 5000000000000041"), ID_FORMAT);
    ck_assert_int_eq(ids_enp("5000000000000041 "), ID_FORMAT);
    ck_assert_int_eq(ids_enp("500000000000004A"), ID_FORMAT);
    ck_assert_int_eq(ids_enp("50000000000000\xd0\x90"), ID_FORMAT);
}
END_TEST

START_TEST(luhn_functions)
{
    ck_assert(ids_luhn_valid("79927398713", 11));
    ck_assert(!ids_luhn_valid("79927398710", 11));
    ck_assert(ids_luhn_valid("5000000000000041", 16));
    ck_assert(ids_luhn_valid("0", 1));
    ck_assert(!ids_luhn_valid("", 0));
    ck_assert(!ids_luhn_valid(NULL, 16));
    ck_assert(!ids_luhn_valid("12a4", 4));
    /* n beyond the string: stops at the NUL instead of reading on. */
    ck_assert(!ids_luhn_valid("79927398713", 100));
    ck_assert(!ids_luhn_valid("79927398713", SIZE_MAX));
    /* Only the first n characters count. */
    ck_assert(ids_luhn_valid("79927398713xyz", 11));

    ck_assert_int_eq(ids_luhn_digit("7992739871", 10), 3);
    ck_assert_int_eq(ids_luhn_digit("500000000000004", 15), 1);
    ck_assert_int_eq(ids_luhn_digit("770000000000001", 15), 6);
    ck_assert_int_eq(ids_luhn_digit("500000000000005", 15), 8);
    ck_assert_int_eq(ids_luhn_digit("", 0), 0);
    ck_assert_int_eq(ids_luhn_digit(NULL, 3), -1);
    ck_assert_int_eq(ids_luhn_digit("12x", 3), -1);
    ck_assert_int_eq(ids_luhn_digit("12", SIZE_MAX), -1);

    /* The two agree on every payload of a sample. */
    char buf[17];
    uint32_t x = 12345;
    for (int k = 0; k < 1000; k++) {
        for (int i = 0; i < 15; i++) {
            x = x * 1103515245u + 12345u;
            buf[i] = (char)('0' + (x >> 16) % 10);
        }
        buf[15] = (char)('0' + ids_luhn_digit(buf, 15));
        buf[16] = '\0';
        CHECK(ids_luhn_valid(buf, 16));
        CHECK(ids_enp(buf) == ID_OK);
        buf[15] = (char)('0' + (buf[15] - '0' + 1) % 10);
        CHECK(!ids_luhn_valid(buf, 16));
        CHECK(ids_enp(buf) == ID_CHECKSUM);
    }
}
END_TEST

/* ---- Polis ---- */

START_TEST(polis_normalize)
{
    char out[64];

    ck_assert_int_eq(ids_polis_part("\xd0\xb5\xd0\xb5 12-34", out, sizeof out), ID_OK);
    ck_assert_str_eq(out, "\xd0\x95\xd0\x95" "1234"); /* "ее 12-34" -> "ЕЕ1234" */
    ck_assert_int_eq(ids_polis_part("ab-12 cd", out, sizeof out), ID_OK);
    ck_assert_str_eq(out, "AB12CD");
    ck_assert_int_eq(ids_polis_part("1234567890", out, sizeof out), ID_OK);
    ck_assert_str_eq(out, "1234567890");
    /* а..я, ё upper-cased; А..Я, Ё kept */
    ck_assert_int_eq(ids_polis_part("\xd0\xb0\xd0\xbf\xd1\x80\xd1\x8f\xd1\x91", out, sizeof out),
                     ID_OK);
    ck_assert_str_eq(out, "\xd0\x90\xd0\x9f\xd0\xa0\xd0\xaf\xd0\x81"); /* АПРЯЁ */
    ck_assert_int_eq(ids_polis_part("\xd0\x90\xd0\xaf\xd0\x81", out, sizeof out), ID_OK);
    ck_assert_str_eq(out, "\xd0\x90\xd0\xaf\xd0\x81");
    ck_assert_int_eq(ids_polis_part("  x  ", out, sizeof out), ID_OK);
    ck_assert_str_eq(out, "X");
}
END_TEST

START_TEST(polis_length)
{
    char out[64];

    /* 20 characters, not bytes: 20 Cyrillic letters are 40 bytes. */
    ck_assert_int_eq(ids_polis_part("12345678901234567890", out, sizeof out), ID_OK);
    ck_assert_int_eq(ids_polis_part("123456789012345678901", out, sizeof out), ID_FORMAT);
    char cyr[64] = "";
    for (int i = 0; i < 20; i++) strcat(cyr, "\xd0\xb6"); /* ж */
    ck_assert_int_eq(ids_polis_part(cyr, out, sizeof out), ID_OK);
    ck_assert_uint_eq(strlen(out), 40);
    strcat(cyr, "\xd0\xb6");
    ck_assert_int_eq(ids_polis_part(cyr, out, sizeof out), ID_FORMAT);
    ck_assert_str_eq(out, "");
    /* Separators count towards the 20. */
    ck_assert_int_eq(ids_polis_part("1 2 3 4 5 6 7 8 9 0 1", out, sizeof out), ID_FORMAT);
    ck_assert_int_eq(ids_polis_part("1 2 3 4 5 6 7 8 9 0", out, sizeof out), ID_OK);
}
END_TEST

START_TEST(polis_bad)
{
    char out[64];

    ck_assert_int_eq(ids_polis_part(NULL, out, sizeof out), ID_EMPTY);
    ck_assert_int_eq(ids_polis_part("", out, sizeof out), ID_EMPTY);
    ck_assert_str_eq(out, "");
    ck_assert_int_eq(ids_polis_part(" ", out, sizeof out), ID_FORMAT);
    ck_assert_int_eq(ids_polis_part("- -", out, sizeof out), ID_FORMAT);
    ck_assert_int_eq(ids_polis_part("AB/12", out, sizeof out), ID_FORMAT);
    ck_assert_int_eq(ids_polis_part("AB\t12", out, sizeof out), ID_FORMAT);
    ck_assert_int_eq(ids_polis_part("AB.12", out, sizeof out), ID_FORMAT);
    ck_assert_int_eq(ids_polis_part("\xc3\xa9", out, sizeof out), ID_FORMAT);    /* é */
    ck_assert_int_eq(ids_polis_part("\xd1\x96", out, sizeof out), ID_FORMAT);    /* і */
    ck_assert_int_eq(ids_polis_part("\xef\xbc\x91", out, sizeof out), ID_FORMAT); /* fullwidth 1 */
    ck_assert_int_eq(ids_polis_part("AB\xd0", out, sizeof out), ID_FORMAT);      /* truncated */
    ck_assert_int_eq(ids_polis_part("\xc0\x80", out, sizeof out), ID_FORMAT);
    ck_assert_int_eq(ids_polis_part("\xff", out, sizeof out), ID_FORMAT);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(polis_cap)
{
    char out[16];

    memset(out, 'Z', sizeof out);
    ck_assert_int_eq(ids_polis_part("AB 12", out, 5), ID_OK); /* exactly fits */
    ck_assert_str_eq(out, "AB12");
    ck_assert_int_eq(out[5], 'Z');

    memset(out, 'Z', sizeof out);
    ck_assert_int_eq(ids_polis_part("AB 123", out, 5), ID_FORMAT);
    ck_assert_str_eq(out, "");
    for (int i = 5; i < 16; i++) ck_assert_int_eq(out[i], 'Z');

    /* A two-byte letter that does not fit is not written half. */
    memset(out, 'Z', sizeof out);
    ck_assert_int_eq(ids_polis_part("12\xd0\xb6", out, 4), ID_FORMAT);
    for (int i = 4; i < 16; i++) ck_assert_int_eq(out[i], 'Z');
    ck_assert_int_eq(ids_polis_part("12\xd0\xb6", out, 5), ID_OK);

    memset(out, 'Z', sizeof out);
    ck_assert_int_eq(ids_polis_part("A", out, 1), ID_FORMAT);
    ck_assert_int_eq(out[0], '\0');
    ck_assert_int_eq(out[1], 'Z');
    ck_assert_int_eq(ids_polis_part("A", out, 0), ID_FORMAT);
    ck_assert_int_eq(out[0], '\0');
    ck_assert_int_eq(ids_polis_part("A", NULL, 10), ID_FORMAT);
}
END_TEST

/* ---- Passport ---- */

START_TEST(passport_series)
{
    char out[5];

    ck_assert_int_eq(ids_passport_series("4603", out), ID_OK);
    ck_assert_str_eq(out, "4603");
    ck_assert_int_eq(ids_passport_series("46 03", out), ID_OK);
    ck_assert_str_eq(out, "4603");
    ck_assert_int_eq(ids_passport_series("4 6 0 3", out), ID_OK);
    ck_assert_int_eq(ids_passport_series("46  03", out), ID_OK);
    ck_assert_int_eq(ids_passport_series("0000", out), ID_OK);
    ck_assert_int_eq(ids_passport_series("4603", NULL), ID_OK);

    ck_assert_int_eq(ids_passport_series(NULL, out), ID_EMPTY);
    ck_assert_int_eq(ids_passport_series("", out), ID_EMPTY);
    ck_assert_int_eq(ids_passport_series(" 4603", out), ID_FORMAT);
    ck_assert_int_eq(ids_passport_series("4603 ", out), ID_FORMAT);
    ck_assert_int_eq(ids_passport_series("    ", out), ID_FORMAT);
    ck_assert_int_eq(ids_passport_series("460", out), ID_FORMAT);
    ck_assert_int_eq(ids_passport_series("46031", out), ID_FORMAT);
    ck_assert_int_eq(ids_passport_series("46-03", out), ID_FORMAT);
    ck_assert_int_eq(ids_passport_series("46O3", out), ID_FORMAT);
    ck_assert_int_eq(ids_passport_series("46\xd0\x9e\x33", out), ID_FORMAT);
    ck_assert_int_eq(ids_passport_series("46 03 123456", out), ID_FORMAT);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(passport_number)
{
    char out[7];

    ck_assert_int_eq(ids_passport_number("123456", out), ID_OK);
    ck_assert_str_eq(out, "123456");
    ck_assert_int_eq(ids_passport_number("000001", out), ID_OK);
    ck_assert_str_eq(out, "000001");
    ck_assert_int_eq(ids_passport_number("123456", NULL), ID_OK);

    ck_assert_int_eq(ids_passport_number(NULL, out), ID_EMPTY);
    ck_assert_int_eq(ids_passport_number("", out), ID_EMPTY);
    ck_assert_int_eq(ids_passport_number("12345", out), ID_FORMAT);
    ck_assert_int_eq(ids_passport_number("1234567", out), ID_FORMAT);
    ck_assert_int_eq(ids_passport_number("12345a", out), ID_FORMAT);
    ck_assert_int_eq(ids_passport_number("123 456", out), ID_FORMAT);
    ck_assert_int_eq(ids_passport_number(" 123456", out), ID_FORMAT);
    ck_assert_int_eq(ids_passport_number("-123456", out), ID_FORMAT);
    ck_assert_str_eq(out, "");
}
END_TEST

/* ---- GUID ---- */

START_TEST(guid)
{
    char out[37];

    ck_assert_int_eq(ids_guid("0c3a1f2e-9b7d-4e5f-8a6b-1c2d3e4f5a6b", out), ID_OK);
    ck_assert_str_eq(out, "0c3a1f2e-9b7d-4e5f-8a6b-1c2d3e4f5a6b");
    ck_assert_int_eq(ids_guid("0C3A1F2E-9B7D-4E5F-8A6B-1C2D3E4F5A6B", out), ID_OK);
    ck_assert_str_eq(out, "0c3a1f2e-9b7d-4e5f-8a6b-1c2d3e4f5a6b");
    ck_assert_int_eq(ids_guid("00000000-0000-0000-0000-000000000000", out), ID_OK);
    ck_assert_int_eq(ids_guid("FFFFFFFF-ffff-FfFf-fFfF-ABCDEFabcdef", out), ID_OK);
    ck_assert_str_eq(out, "ffffffff-ffff-ffff-ffff-abcdefabcdef");
    ck_assert_int_eq(ids_guid("0c3a1f2e-9b7d-4e5f-8a6b-1c2d3e4f5a6b", NULL), ID_OK);

    ck_assert_int_eq(ids_guid(NULL, out), ID_EMPTY);
    ck_assert_int_eq(ids_guid("", out), ID_EMPTY);
    ck_assert_int_eq(ids_guid("{0c3a1f2e-9b7d-4e5f-8a6b-1c2d3e4f5a6b}", out), ID_FORMAT);
    ck_assert_int_eq(ids_guid("0c3a1f2e9b7d4e5f8a6b1c2d3e4f5a6b", out), ID_FORMAT);
    ck_assert_int_eq(ids_guid("0c3a1f2e-9b7d-4e5f-8a6b-1c2d3e4f5a6", out), ID_FORMAT);
    ck_assert_int_eq(ids_guid("0c3a1f2e-9b7d-4e5f-8a6b-1c2d3e4f5a6b0", out), ID_FORMAT);
    ck_assert_int_eq(ids_guid("0c3a1f2e-9b7d-4e5f-8a6b-1c2d3e4f5a6g", out), ID_FORMAT);
    ck_assert_int_eq(ids_guid("0c3a1f2e-9b7d-4e5f-8a6b1-c2d3e4f5a6b", out), ID_FORMAT);
    ck_assert_int_eq(ids_guid("0c3a1f2e-9b7d-4e5f-8a6b-1c2d3e4f5a6b ", out), ID_FORMAT);
    ck_assert_int_eq(ids_guid(" 0c3a1f2e-9b7d-4e5f-8a6b-1c2d3e4f5a6", out), ID_FORMAT);
    ck_assert_int_eq(ids_guid("0c3a1f2e_9b7d_4e5f_8a6b_1c2d3e4f5a6b", out), ID_FORMAT);
    ck_assert_int_eq(ids_guid("0c3a1f2e-9b7d-4e5f-8a6b-1c2d3e4f5a\xd0\xb0", out), ID_FORMAT);
    ck_assert_str_eq(out, "");
}
END_TEST

/* ---- Dates and times ---- */

START_TEST(date)
{
    int y = 0, m = 0, d = 0;

    ck_assert_int_eq(ids_date("2022-12-08", &y, &m, &d), ID_OK);
    ck_assert_int_eq(y, 2022);
    ck_assert_int_eq(m, 12);
    ck_assert_int_eq(d, 8);
    ck_assert_int_eq(ids_date("2024-02-29", &y, &m, &d), ID_OK);
    ck_assert_int_eq(ids_date("2023-02-29", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("2000-02-29", &y, &m, &d), ID_OK);  /* 400 rule */
    ck_assert_int_eq(ids_date("1900-02-29", &y, &m, &d), ID_FORMAT); /* 100 rule */
    ck_assert_int_eq(ids_date("2100-02-29", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("2023-02-28", &y, &m, &d), ID_OK);
    ck_assert_int_eq(ids_date("2023-04-30", &y, &m, &d), ID_OK);
    ck_assert_int_eq(ids_date("2023-04-31", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("2023-12-31", &y, &m, &d), ID_OK);
    ck_assert_int_eq(ids_date("2023-12-32", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("2023-13-01", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("2023-00-01", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("2023-01-00", &y, &m, &d), ID_FORMAT);
    /* year range */
    ck_assert_int_eq(ids_date("1900-01-01", &y, &m, &d), ID_OK);
    ck_assert_int_eq(ids_date("2100-12-31", &y, &m, &d), ID_OK);
    ck_assert_int_eq(ids_date("1899-12-31", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("2101-01-01", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("0000-01-01", &y, &m, &d), ID_FORMAT);
    /* shape */
    ck_assert_int_eq(ids_date(NULL, &y, &m, &d), ID_EMPTY);
    ck_assert_int_eq(ids_date("", &y, &m, &d), ID_EMPTY);
    ck_assert_int_eq(ids_date("2022-12-8", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("2022-1-08", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("22-12-08", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("2022/12/08", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("08.12.2022", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("20221208", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("2022-12-08 ", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date(" 2022-12-08", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("2022-12-08T00:00:00", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("2O22-12-08", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date("+022-12-08", &y, &m, &d), ID_FORMAT);
    /* outputs untouched on failure, optional on success */
    y = m = d = -1;
    ck_assert_int_eq(ids_date("2023-02-29", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(y + m + d, -3);
    ck_assert_int_eq(ids_date("2024-02-29", NULL, NULL, NULL), ID_OK);
}
END_TEST

START_TEST(date_or_datetime)
{
    int y = 0, m = 0, d = 0;

    ck_assert_int_eq(ids_date_or_datetime("2022-12-08", &y, &m, &d), ID_OK);
    ck_assert_int_eq(y * 10000 + m * 100 + d, 20221208);
    y = m = d = 0;
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T00:00:00.000Z", &y, &m, &d), ID_OK);
    ck_assert_int_eq(y * 10000 + m * 100 + d, 20221208);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:00", &y, &m, &d), ID_OK);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:00+03:00", &y, &m, &d), ID_OK);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:00-05:30", &y, &m, &d), ID_OK);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:00+0300", &y, &m, &d), ID_OK);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:00+03", &y, &m, &d), ID_OK);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:00Z", &y, &m, &d), ID_OK);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00", &y, &m, &d), ID_OK);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00Z", &y, &m, &d), ID_OK);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T23:59:59.123456789+03:00", &y, &m, &d),
                     ID_OK);
    ck_assert_int_eq(ids_date_or_datetime("2024-02-29T12:00:00", &y, &m, &d), ID_OK);

    ck_assert_int_eq(ids_date_or_datetime(NULL, &y, &m, &d), ID_EMPTY);
    ck_assert_int_eq(ids_date_or_datetime("", &y, &m, &d), ID_EMPTY);
    ck_assert_int_eq(ids_date_or_datetime("2023-02-29T00:00:00", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:0", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T24:00:00", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:60:00", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:61", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:0", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:00.", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:00.1234567890", &y, &m, &d),
                     ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:00Zjunk", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:00+3:00", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:00+03:0", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:00+03:00:00", &y, &m, &d),
                     ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:00 ", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08 10:00:00", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08x", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08Tgarbage", &y, &m, &d), ID_FORMAT);
    ck_assert_int_eq(ids_date_or_datetime("2022-12-08T10:00:00\xd0\x97", &y, &m, &d),
                     ID_FORMAT);
}
END_TEST

START_TEST(time_hhmm)
{
    int h = -1, mi = -1;

    ck_assert_int_eq(ids_time_hhmm("00:00", &h, &mi), ID_OK);
    ck_assert_int_eq(h, 0);
    ck_assert_int_eq(mi, 0);
    ck_assert_int_eq(ids_time_hhmm("23:59", &h, &mi), ID_OK);
    ck_assert_int_eq(h, 23);
    ck_assert_int_eq(mi, 59);
    ck_assert_int_eq(ids_time_hhmm("09:30", NULL, NULL), ID_OK);

    ck_assert_int_eq(ids_time_hhmm(NULL, &h, &mi), ID_EMPTY);
    ck_assert_int_eq(ids_time_hhmm("", &h, &mi), ID_EMPTY);
    ck_assert_int_eq(ids_time_hhmm("24:00", &h, &mi), ID_FORMAT);
    ck_assert_int_eq(ids_time_hhmm("23:60", &h, &mi), ID_FORMAT);
    ck_assert_int_eq(ids_time_hhmm("9:30", &h, &mi), ID_FORMAT);
    ck_assert_int_eq(ids_time_hhmm("09:3", &h, &mi), ID_FORMAT);
    ck_assert_int_eq(ids_time_hhmm("09:30:00", &h, &mi), ID_FORMAT);
    ck_assert_int_eq(ids_time_hhmm("09:30 ", &h, &mi), ID_FORMAT);
    ck_assert_int_eq(ids_time_hhmm("0930", &h, &mi), ID_FORMAT);
    ck_assert_int_eq(ids_time_hhmm("09.30", &h, &mi), ID_FORMAT);
    ck_assert_int_eq(ids_time_hhmm("ab:cd", &h, &mi), ID_FORMAT);
    ck_assert_int_eq(ids_time_hhmm("-1:00", &h, &mi), ID_FORMAT);
    ck_assert_int_eq(h, 23); /* untouched on failure */
}
END_TEST

/* ---- MCOD ---- */

START_TEST(mcod)
{
    ck_assert_int_eq(ids_mcod("502301"), ID_OK);
    ck_assert_int_eq(ids_mcod("0502301"), ID_OK);
    ck_assert_int_eq(ids_mcod("000000"), ID_OK);
    ck_assert_int_eq(ids_mcod("0"), ID_FORMAT);
    ck_assert_int_eq(ids_mcod("50230"), ID_FORMAT);
    ck_assert_int_eq(ids_mcod("12345678"), ID_FORMAT);

    ck_assert_int_eq(ids_mcod(NULL), ID_EMPTY);
    ck_assert_int_eq(ids_mcod(""), ID_EMPTY);
    ck_assert_int_eq(ids_mcod("12345678901234567"), ID_FORMAT);
    ck_assert_int_eq(ids_mcod("50230A"), ID_FORMAT);
    ck_assert_int_eq(ids_mcod("502 301"), ID_FORMAT);
    ck_assert_int_eq(ids_mcod(" 502301"), ID_FORMAT);
    ck_assert_int_eq(ids_mcod("-502301"), ID_FORMAT);
    ck_assert_int_eq(ids_mcod("\xd9\xa1"), ID_FORMAT); /* Arabic-Indic one */
}
END_TEST

/* The one text[] literal of МКОДs (a login's LPUs for the SQL functions):
 * the cases that check_refdata and check_patient had for their own copies. */
START_TEST(mcod_array)
{
    const char *m[] = {"470102", "470103", "330501"};
    struct buf b;
    buf_init(&b);
    ck_assert(ids_mcod_array(m, 3, &b));
    ck_assert_str_eq(b.data, "{470102,470103,330501}");
    buf_free(&b);
    buf_init(&b);
    ck_assert(ids_mcod_array(m, 0, &b));
    ck_assert_str_eq(b.data, "{}");
    buf_free(&b);
    /* Anything that is not a МКОД is refused, never spliced in or skipped. */
    const char *bad[][2] = {{"470102", "47'0"}, {"470102", "bad}"}, {"470102", ""}, {"470102", "4701"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_init(&b);
        ck_assert(!ids_mcod_array(bad[i], 2, &b));
        buf_free(&b);
    }
}
END_TEST

/* ---- Phones ---- */

START_TEST(phone_ru)
{
    char out[12];

    ck_assert_int_eq(ids_phone_ru("+7 (999) 123-45-67", out), ID_OK);
    ck_assert_str_eq(out, "79991234567");
    ck_assert_int_eq(ids_phone_ru("8 (999) 123-45-67", out), ID_OK);
    ck_assert_str_eq(out, "79991234567");
    ck_assert_int_eq(ids_phone_ru("89991234567", out), ID_OK);
    ck_assert_str_eq(out, "79991234567");
    ck_assert_int_eq(ids_phone_ru("79991234567", out), ID_OK);
    ck_assert_int_eq(ids_phone_ru("+79991234567", out), ID_OK);
    ck_assert_int_eq(ids_phone_ru("(+7) 999 123 45 67", out), ID_OK);
    ck_assert_int_eq(ids_phone_ru(" 7-999-123-45-67 ", out), ID_OK);
    ck_assert_str_eq(out, "79991234567");
    ck_assert_int_eq(ids_phone_ru("+79991234567", NULL), ID_OK);

    ck_assert_int_eq(ids_phone_ru(NULL, out), ID_EMPTY);
    ck_assert_int_eq(ids_phone_ru("", out), ID_EMPTY);
    ck_assert_int_eq(ids_phone_ru("9991234567", out), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ru("799912345678", out), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ru("69991234567", out), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ru("+380501234567", out), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ru("7999123456a", out), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ru("7.999.123.45.67", out), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ru("++79991234567", out), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ru("7+9991234567", out), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ru("79991234567+", out), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ru("+7 999 123 45 67 ext 1", out), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ru("() - +", out), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ru("7\t9991234567", out), ID_FORMAT);
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(phone_ua)
{
    ck_assert_int_eq(ids_phone_ua("+380501234567"), ID_OK);
    ck_assert_int_eq(ids_phone_ua("+380000000000"), ID_OK);

    ck_assert_int_eq(ids_phone_ua(NULL), ID_EMPTY);
    ck_assert_int_eq(ids_phone_ua(""), ID_EMPTY);
    ck_assert_int_eq(ids_phone_ua("380501234567"), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ua("+38050123456"), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ua("+3805012345678"), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ua("+380 50 123 45 67"), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ua("+380-50-123-45-67"), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ua("+38050123456a"), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ua("+381501234567"), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ua("+79991234567"), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ua("+380501234567 "), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ua(" +380501234567"), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ua("+"), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ua("+38"), ID_FORMAT);
}
END_TEST

/* ---- Names ---- */

START_TEST(fold_name)
{
    char out[64];

    ck_assert(ids_fold_name("\xd0\x98\xd0\x92\xd0\x90\xd0\x9d\xd0\x9e\xd0\x92", out, sizeof out));
    ck_assert_str_eq(out, "\xd0\xb8\xd0\xb2\xd0\xb0\xd0\xbd\xd0\xbe\xd0\xb2"); /* иванов */
    ck_assert(ids_fold_name("\xd0\x9f\xd1\x91\xd1\x82\xd1\x80", out, sizeof out)); /* Пётр */
    ck_assert_str_eq(out, "\xd0\xbf\xd0\xb5\xd1\x82\xd1\x80");                     /* петр */
    ck_assert(ids_fold_name("\xd0\x81\xd0\xb6", out, sizeof out)); /* Ёж */
    ck_assert_str_eq(out, "\xd0\xb5\xd0\xb6");                     /* еж */
    /* "  Анна   Мария " -> "анна мария" */
    ck_assert(ids_fold_name("  \xd0\x90\xd0\xbd\xd0\xbd\xd0\xb0   "
                            "\xd0\x9c\xd0\xb0\xd1\x80\xd0\xb8\xd1\x8f ",
                            out, sizeof out));
    ck_assert_str_eq(out, "\xd0\xb0\xd0\xbd\xd0\xbd\xd0\xb0 "
                          "\xd0\xbc\xd0\xb0\xd1\x80\xd0\xb8\xd1\x8f");
    /* Р..Я (D0 A0..D0 AF) fold across the lead byte to р..я (D1 80..D1 8F) */
    ck_assert(ids_fold_name("\xd0\xa0\xd0\xaf", out, sizeof out));
    ck_assert_str_eq(out, "\xd1\x80\xd1\x8f");
    ck_assert(ids_fold_name("John  SMITH-Jones", out, sizeof out));
    ck_assert_str_eq(out, "john smith-jones");
    /* Other characters are kept: é, Ukrainian І, an emoji, a tab. */
    ck_assert(ids_fold_name("\xc3\x89\xd0\x86\xf0\x9f\x98\x80\tX", out, sizeof out));
    ck_assert_str_eq(out, "\xc3\x89\xd0\x86\xf0\x9f\x98\x80\tx");
    ck_assert(ids_fold_name("", out, sizeof out));
    ck_assert_str_eq(out, "");
    ck_assert(ids_fold_name("    ", out, sizeof out));
    ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(fold_name_bad)
{
    char out[16];

    ck_assert(!ids_fold_name(NULL, out, sizeof out));
    ck_assert(!ids_fold_name("abc", NULL, 10));
    ck_assert(!ids_fold_name("abc", out, 0));
    ck_assert(!ids_fold_name("\xc0\x80", out, sizeof out));
    ck_assert_str_eq(out, "");
    ck_assert(!ids_fold_name("ab\xed\xa0\x80", out, sizeof out));
    ck_assert(!ids_fold_name("ab\xd0", out, sizeof out));
    ck_assert(!ids_fold_name("\xff", out, sizeof out));
    ck_assert(!ids_fold_name("\x80", out, sizeof out));

    /* cap: "abc" needs 4 bytes */
    memset(out, 'Z', sizeof out);
    ck_assert(ids_fold_name("ABC", out, 4));
    ck_assert_str_eq(out, "abc");
    ck_assert_int_eq(out[4], 'Z');
    memset(out, 'Z', sizeof out);
    ck_assert(!ids_fold_name("ABCD", out, 4));
    ck_assert_int_eq(out[0], '\0');
    for (int i = 4; i < 16; i++) ck_assert_int_eq(out[i], 'Z');
    /* Trimmed spaces do not need room. */
    ck_assert(ids_fold_name("   abc   ", out, 4));
    ck_assert_str_eq(out, "abc");
    /* A Cyrillic letter is never split. */
    memset(out, 'Z', sizeof out);
    ck_assert(!ids_fold_name("a\xd0\x98", out, 3));
    ck_assert_int_eq(out[0], '\0');
    ck_assert_int_eq(out[3], 'Z');
    ck_assert(ids_fold_name("a\xd0\x98", out, 4));
    ck_assert_str_eq(out, "a\xd0\xb8");
}
END_TEST

/* ---- UTF-8 ---- */

/* Scrubbing keeps valid text as it is and makes any other valid: each byte
 * that starts no character (a stray byte, a sequence cut short) becomes
 * '?'. */
START_TEST(utf8_scrub)
{
    static const struct { const char *in, *out; } cases[] = {
        {"", ""},
        {"abc", "abc"},
        {"\xd0\x9f\xd1\x91", "\xd0\x9f\xd1\x91"},
        {"a\xff" "b", "a?b"},
        {"x\xd1", "x?"},                     /* a character cut at the end */
        {"\xe2\x82", "??"},                   /* three bytes cut to two */
        {"\xed\xa0\x80" "z", "???z"},            /* a surrogate */
        {"\xc0\x80\xd0\xb8", "??\xd0\xb8"},   /* an overlong, then a good one */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%s", cases[i].in);
        ids_utf8_scrub(buf);
        ck_assert_msg(strcmp(buf, cases[i].out) == 0, "case %zu", i);
        ck_assert(ids_utf8_valid(buf, strlen(buf)));
    }
}
END_TEST

START_TEST(utf8_valid)
{
#define U(lit) ids_utf8_valid(lit, sizeof(lit) - 1)
    ck_assert(U(""));
    ck_assert(U("abc"));
    ck_assert(U("\xd0\x9f\xd1\x91\xd1\x82\xd1\x80"));
    ck_assert(U("\xc2\x80"));             /* U+0080 */
    ck_assert(U("\xdf\xbf"));             /* U+07FF */
    ck_assert(U("\xe0\xa0\x80"));         /* U+0800 */
    ck_assert(U("\xed\x9f\xbf"));         /* U+D7FF */
    ck_assert(U("\xee\x80\x80"));         /* U+E000 */
    ck_assert(U("\xef\xbf\xbf"));         /* U+FFFF */
    ck_assert(U("\xf0\x90\x80\x80"));     /* U+10000 */
    ck_assert(U("\xf4\x8f\xbf\xbf"));     /* U+10FFFF */
    /* overlongs */
    ck_assert(!U("\xc0\x80"));
    ck_assert(!U("\xc1\xbf"));
    ck_assert(!U("\xe0\x80\x80"));
    ck_assert(!U("\xe0\x9f\xbf"));
    ck_assert(!U("\xf0\x80\x80\x80"));
    ck_assert(!U("\xf0\x8f\xbf\xbf"));
    /* surrogates */
    ck_assert(!U("\xed\xa0\x80"));
    ck_assert(!U("\xed\xbf\xbf"));
    ck_assert(!U("\xed\xa0\xbd\xed\xb8\x80"));
    /* above U+10FFFF, and bytes that never occur */
    ck_assert(!U("\xf4\x90\x80\x80"));
    ck_assert(!U("\xf5\x80\x80\x80"));
    ck_assert(!U("\xf8\x88\x80\x80\x80"));
    ck_assert(!U("\xfe"));
    ck_assert(!U("\xff"));
    /* stray continuations, truncated sequences */
    ck_assert(!U("\x80"));
    ck_assert(!U("a\xbf"));
    ck_assert(!U("\xd0"));
    ck_assert(!U("\xe0\xa0"));
    ck_assert(!U("\xf0\x90\x80"));
    ck_assert(!U("\xd0" "a"));
    ck_assert(!U("\xe2\x82" "a"));
    /* An embedded NUL is refused: it would cut a C string short. */
    ck_assert(!U("a\0b"));
#undef U
    ck_assert(!ids_utf8_valid(NULL, 0));
    ck_assert(!ids_utf8_valid(NULL, 5));
    /* n bounds the check: a sequence cut by n is truncated. */
    ck_assert(ids_utf8_valid("\xd0\x9f\xd1\x91", 2));
    ck_assert(!ids_utf8_valid("\xd0\x9f\xd1\x91", 3));
    ck_assert(ids_utf8_valid("\xff", 0));
}
END_TEST

/* ---- Robustness ---- */

static char *exact(const char *s, size_t n) {
    char *p = malloc(n + 1);
    CHECK(p != NULL);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Runs every function on s; outputs sit in larger buffers whose tails must
 * stay untouched, and every string output must be terminated in its size. */
static void run_all(const char *s) {
    char o[128];
    int a, b, c;
    size_t n = strlen(s);

#define CANARY(size)                                                        \
    do {                                                                    \
        for (size_t i_ = (size); i_ < sizeof o; i_++)                       \
            CHECK(o[i_] == 'Z');                                            \
        CHECK(memchr(o, '\0', (size)) != NULL);                             \
    } while (0)

    memset(o, 'Z', sizeof o);
    if (ids_snils(s, o) == ID_OK) CHECK(strlen(o) == 11);
    CANARY(12);
    memset(o, 'Z', sizeof o);
    (void)ids_passport_series(s, o);
    CANARY(5);
    memset(o, 'Z', sizeof o);
    (void)ids_passport_number(s, o);
    CANARY(7);
    memset(o, 'Z', sizeof o);
    (void)ids_guid(s, o);
    CANARY(37);
    memset(o, 'Z', sizeof o);
    (void)ids_phone_ru(s, o);
    CANARY(12);
    for (size_t cap = 0; cap <= 48; cap += 3) {
        memset(o, 'Z', sizeof o);
        if (ids_polis_part(s, o, cap) == ID_OK)
            CHECK(ids_utf8_valid(o, strlen(o)));
        if (cap > 0) CANARY(cap);
        memset(o, 'Z', sizeof o);
        if (ids_fold_name(s, o, cap)) {
            CHECK(ids_utf8_valid(s, n));
            CHECK(ids_utf8_valid(o, strlen(o)));
        }
        if (cap > 0) CANARY(cap);
    }
    (void)ids_enp(s);
    (void)ids_date(s, &a, &b, &c);
    (void)ids_date_or_datetime(s, &a, &b, &c);
    (void)ids_time_hhmm(s, &a, &b);
    (void)ids_mcod(s);
    (void)ids_phone_ua(s);
    (void)ids_luhn_valid(s, n);
    (void)ids_luhn_valid(s, n + 10); /* n past the NUL: must stop at it */
    (void)ids_luhn_digit(s, n + 10);
    (void)ids_utf8_valid(s, n);
#undef CANARY
}

START_TEST(no_overrun_on_prefixes)
{
    static const char *const samples[] = {
        "112-233-445 95", "5000000000000041", "\xd0\xb5\xd0\xb5 12-34",
        "46 03", "123456", "0c3a1f2e-9b7d-4e5f-8a6b-1c2d3e4f5a6b",
        "2022-12-08T10:00:00.000+03:00", "23:59", "0502301",
        "+7 (999) 123-45-67", "+380501234567",
        "  \xd0\x90\xd0\xbd\xd0\xbd\xd0\xb0   \xd0\x9f\xd1\x91\xd1\x82\xd1\x80 ",
        "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xed\xa0\x80\xc0\x80\xe0\xa0",
    };

    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        size_t len = strlen(samples[i]);
        /* Each prefix in a heap block of exactly its size: ASan reports any
         * read past the NUL. */
        for (size_t k = 0; k <= len; k++) {
            char *p = exact(samples[i], k);
            run_all(p);
            CHECK(ids_utf8_valid(p, k) == ids_utf8_valid(samples[i], k));
            free(p);
        }
    }
}
END_TEST

START_TEST(random_bytes)
{
    uint32_t x = 0x2545F491u;
    static const char alphabet[] = "0123456789-: +()TZ.aAfF\xd0\xd1\x81\x91\xb5\x80\xbf\xed\xa0"
                                   "\xc0\xf0\xf4\x8f\x90\xff";

    for (int iter = 0; iter < 3000; iter++) {
        char buf[48];
        x = x * 1664525u + 1013904223u;
        size_t len = (x >> 24) % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            x = x * 1664525u + 1013904223u;
            buf[i] = alphabet[(x >> 16) % (sizeof alphabet - 1)];
        }
        char *p = exact(buf, len);
        run_all(p);
        free(p);
    }
}
END_TEST

START_TEST(long_inputs)
{
    enum { N = 1 << 20 };
    char *s = malloc(N + 1);
    char out[64];

    ck_assert_ptr_nonnull(s);
    memset(s, '1', N);
    s[N] = '\0';
    ck_assert_int_eq(ids_snils(s, out), ID_FORMAT);
    ck_assert_int_eq(ids_enp(s), ID_FORMAT);
    ck_assert_int_eq(ids_mcod(s), ID_FORMAT);
    ck_assert_int_eq(ids_polis_part(s, out, sizeof out), ID_FORMAT);
    ck_assert_int_eq(ids_passport_series(s, out), ID_FORMAT);
    ck_assert_int_eq(ids_passport_number(s, out), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ru(s, out), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ua(s), ID_FORMAT);
    ck_assert_int_eq(ids_guid(s, out), ID_FORMAT);
    ck_assert(!ids_fold_name(s, out, sizeof out));
    ck_assert(ids_utf8_valid(s, N));

    memset(s, ' ', N); /* only separators: scanned to the end, still refused */
    ck_assert_int_eq(ids_snils(s, out), ID_FORMAT);
    ck_assert_int_eq(ids_phone_ru(s, out), ID_FORMAT);
    ck_assert(ids_fold_name(s, out, sizeof out));
    ck_assert_str_eq(out, "");
    free(s);
}
END_TEST

static Suite *ids_suite(void) {
    Suite *s = suite_create("ids");
    TCase *tc;

    tc = tcase_create("snils");
    tcase_add_test(tc, snils_valid_examples);
    tcase_add_test(tc, snils_separators);
    tcase_add_test(tc, snils_checksum);
    tcase_add_test(tc, snils_check_number_rules);
    tcase_add_test(tc, snils_unchecked_range);
    tcase_add_test(tc, snils_bad_shape);
    suite_add_tcase(s, tc);

    tc = tcase_create("enp");
    tcase_add_test(tc, enp_valid);
    tcase_add_test(tc, enp_checksum);
    tcase_add_test(tc, enp_bad_shape);
    suite_add_tcase(s, tc);

    tc = tcase_create("luhn");
    tcase_add_test(tc, luhn_functions);
    suite_add_tcase(s, tc);

    tc = tcase_create("polis_part");
    tcase_add_test(tc, polis_normalize);
    tcase_add_test(tc, polis_length);
    tcase_add_test(tc, polis_bad);
    tcase_add_test(tc, polis_cap);
    suite_add_tcase(s, tc);

    tc = tcase_create("passport_series");
    tcase_add_test(tc, passport_series);
    suite_add_tcase(s, tc);

    tc = tcase_create("passport_number");
    tcase_add_test(tc, passport_number);
    suite_add_tcase(s, tc);

    tc = tcase_create("guid");
    tcase_add_test(tc, guid);
    suite_add_tcase(s, tc);

    tc = tcase_create("date");
    tcase_add_test(tc, date);
    suite_add_tcase(s, tc);

    tc = tcase_create("date_or_datetime");
    tcase_add_test(tc, date_or_datetime);
    suite_add_tcase(s, tc);

    tc = tcase_create("time_hhmm");
    tcase_add_test(tc, time_hhmm);
    suite_add_tcase(s, tc);

    tc = tcase_create("mcod");
    tcase_add_test(tc, mcod);
    tcase_add_test(tc, mcod_array);
    suite_add_tcase(s, tc);

    tc = tcase_create("phone_ru");
    tcase_add_test(tc, phone_ru);
    suite_add_tcase(s, tc);

    tc = tcase_create("phone_ua");
    tcase_add_test(tc, phone_ua);
    suite_add_tcase(s, tc);

    tc = tcase_create("fold_name");
    tcase_add_test(tc, fold_name);
    tcase_add_test(tc, fold_name_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("utf8_valid");
    tcase_add_test(tc, utf8_valid);
    tcase_add_test(tc, utf8_scrub);
    suite_add_tcase(s, tc);

    tc = tcase_create("robustness");
    tcase_add_test(tc, no_overrun_on_prefixes);
    tcase_add_test(tc, random_bytes);
    tcase_add_test(tc, long_inputs);
    tcase_set_timeout(tc, 30); /* headroom for sanitizers on a busy machine */
    suite_add_tcase(s, tc);

    return s;
}

int main(void) {
    SRunner *sr = srunner_create(ids_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
