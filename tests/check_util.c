/* check_util.c - unit tests of the hand-written formatters in src/util.c
 * against the C library's own: local timestamps with their offset, GUIDs,
 * SHA-256 in hex. */
#include <check.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util.h"

/* strftime's "%Y-%m-%dT%H:%M:%S%z" with a colon put into the offset. */
static void reference_time(int64_t epoch_s, char out[32])
{
    time_t t = (time_t)epoch_s;
    struct tm tm;
    localtime_r(&t, &tm);
    char z[8];
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(z, sizeof(z), "%z", &tm);
    size_t n = strlen(out);
    snprintf(out + n, 32 - n, "%.3s:%.2s", z, z + 3);
}

/* Every zone the tests set: east and west of Greenwich, half and quarter
 * hours, daylight saving. Times walk over years in odd steps, so that they
 * fall in every quarter hour and both sides of each change. */
START_TEST(format_time_matches_libc)
{
    static const char *const zones[] = {"Europe/Moscow", "UTC", "America/New_York",
                                        "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe",
                                        "Europe/Kyiv"};
    const char *zone = zones[_i];
    setenv("TZ", zone, 1);
    tzset();
    for (int64_t t = 946684800; t < 1893456000; t += 86400 * 3 + 3607) {
        for (int64_t d = 0; d < 3; d++) {
            char ours[32], want[32];
            util_format_time(t + d * 450, ours);
            reference_time(t + d * 450, want);
            ck_assert_msg(strcmp(ours, want) == 0, "%s at %lld: %s, want %s", zone,
                          (long long)(t + d * 450), ours, want);
        }
    }
    unsetenv("TZ");
    tzset();
}
END_TEST

START_TEST(guid_shape)
{
    char seen[64][GUID_LEN + 1];
    for (int i = 0; i < 64; i++) {
        char *g = seen[i];
        memset(g, 'x', sizeof(seen[i]));
        util_guid(g);
        ck_assert_uint_eq(strlen(g), GUID_LEN);
        for (int j = 0; j < GUID_LEN; j++) {
            if (j == 8 || j == 13 || j == 18 || j == 23)
                ck_assert_msg(g[j] == '-', "%s", g);
            else
                ck_assert_msg(strchr("0123456789abcdef", g[j]) != NULL, "%s", g);
        }
        ck_assert_msg(g[14] == '4', "version 4: %s", g);
        ck_assert_msg(strchr("89ab", g[19]) != NULL, "RFC 4122 variant: %s", g);
        for (int k = 0; k < i; k++)
            ck_assert_str_ne(seen[k], g);
    }
}
END_TEST

START_TEST(list_membership)
{
    ck_assert(util_list_has("127.0.0.1, ::1", "::1"));
    ck_assert(util_list_has("127.0.0.1,::1", "127.0.0.1"));
    ck_assert(util_list_has("cabinet", "cabinet"));
    ck_assert(!util_list_has("cabinet", "cab"));
    ck_assert(!util_list_has("cabinet,portal", "cabinet,portal"));
    ck_assert(!util_list_has("", ""));
    ck_assert(!util_list_has("a,,b", ""));
}
END_TEST

START_TEST(http_url_parts)
{
    char host[16];
    int port;
    const char *path;
    ck_assert(util_http_url("http://10.0.0.5:8080/sms/send", host, sizeof(host), &port, &path));
    ck_assert_str_eq(host, "10.0.0.5");
    ck_assert_int_eq(port, 8080);
    ck_assert_str_eq(path, "/sms/send");
    ck_assert(util_http_url("http://10.0.0.5", host, sizeof(host), &port, &path));
    ck_assert_int_eq(port, 80);
    ck_assert_str_eq(path, "/");
    ck_assert(!util_http_url("https://10.0.0.5/", host, sizeof(host), &port, &path));
    ck_assert(!util_http_url("http:///x", host, sizeof(host), &port, &path));
    ck_assert(!util_http_url("http://10.0.0.5:0/x", host, sizeof(host), &port, &path));
    ck_assert(!util_http_url("http://10.0.0.5:65536/x", host, sizeof(host), &port, &path));
    ck_assert(!util_http_url("http://10.0.0.5:/x", host, sizeof(host), &port, &path));
    ck_assert(!util_http_url("http://10.0.0.5:80abc", host, sizeof(host), &port, &path));
    ck_assert(!util_http_url("http://a-host-name-far-too-long.example:80/", host, sizeof(host), &port, &path));
}
END_TEST

START_TEST(sha256_hex)
{
    char out[65];
    util_sha256_hex("", 0, out);
    ck_assert_str_eq(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    util_sha256_hex("abc", 3, out);
    ck_assert_str_eq(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}
END_TEST

/* Reconnect delays: within [3/4, 5/4) of the backoff, and spread over it
 * (of 10,000 draws, some in each outer eighth); tiny ones as they are. */
START_TEST(jitter_spread)
{
    int lo = 1000, hi = 0;
    for (int i = 0; i < 10000; i++) {
        int j = util_jitter_ms(1000);
        ck_assert_int_ge(j, 750);
        ck_assert_int_lt(j, 1250);
        lo = j < lo ? j : lo;
        hi = j > hi ? j : hi;
    }
    ck_assert_int_lt(lo, 800);
    ck_assert_int_ge(hi, 1200);
    ck_assert_int_eq(util_jitter_ms(3), 3);
    ck_assert_int_eq(util_jitter_ms(0), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("format");
    tcase_add_loop_test(tc, format_time_matches_libc, 0, 7);
    tcase_add_test(tc, guid_shape);
    tcase_add_test(tc, sha256_hex);
    tcase_add_test(tc, list_membership);
    tcase_add_test(tc, http_url_parts);
    tcase_add_test(tc, jitter_spread);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
