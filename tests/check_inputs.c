/* check_inputs.c - unit tests of the pure parsers that fuzz/ feeds and that
 * had no unit tests of their own: the Basic credential (misauth_parse_basic),
 * the query string (req_query_decode), the booking bodies
 * (booking_parse_entry, booking_parse_direction) and a portal token's polis
 * (identity_from_polis). A crash a fuzz target
 * finds in one of them is kept here as a test. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "identity.h"
#include "json.h"
#include "misauth.h"
#include "req.h"

/* ---- an arena for the parsers' allocations ---- */

struct block {
    struct block *next;
};
static struct block *blocks;

static void *test_alloc(void *ctx, size_t n)
{
    (void)ctx;
    struct block *b = calloc(1, sizeof(*b) + n + 16);
    ck_assert_ptr_nonnull(b);
    b->next = blocks;
    blocks = b;
    return (char *)b + ((sizeof(*b) + 15) & ~(size_t)15);
}

static void blocks_free(void)
{
    while (blocks) {
        struct block *next = blocks->next;
        free(blocks);
        blocks = next;
    }
}

/* ---- Basic ---- */

static bool basic(const char *h, char login[MISAUTH_LOGIN_MAX + 1],
                  char pw[MISAUTH_PASSWORD_MAX + 1])
{
    return misauth_parse_basic(h, login, MISAUTH_LOGIN_MAX + 1, pw, MISAUTH_PASSWORD_MAX + 1);
}

START_TEST(basic_accepts)
{
    char login[MISAUTH_LOGIN_MAX + 1], pw[MISAUTH_PASSWORD_MAX + 1];
    ck_assert(basic("Basic dXNlcjpwYXNz", login, pw));  /* user:pass */
    ck_assert_str_eq(login, "user");
    ck_assert_str_eq(pw, "pass");
    /* The scheme in any case, blanks before the credential; a colon in the
     * password is the password's. */
    ck_assert(basic("bAsIc   dXNlcjpwOnc=", login, pw));  /* user:p:w */
    ck_assert_str_eq(login, "user");
    ck_assert_str_eq(pw, "p:w");
}
END_TEST

START_TEST(basic_refuses)
{
    static const char *const bad[] = {
        "",
        "Bearer dXNlcjpwYXNz",
        "Basic ",
        "Basic !!!!",
        "Basic dXNlcjpwYXNz=",   /* not a multiple of four */
        "Basic dXNlcg==",        /* user: no colon */
        "Basic OnBhc3N3b3Jk",    /* :password: no login */
        "Basic dXNlcjo=",        /* user: : no password */
        "Basic dSByOnA=",        /* "u r:p": a blank in the login */
        "Basic dQB4OnA=",        /* "u\0x:p": a NUL */
        "Basic YT1i",            /* "a=b" */
        "Basic YQ=b",            /* padding inside */
    };
    char login[MISAUTH_LOGIN_MAX + 1] = "untouched", pw[MISAUTH_PASSWORD_MAX + 1] = "untouched";
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(!basic(bad[i], login, pw), "accepted: %s", bad[i]);
        ck_assert_str_eq(login, "untouched");
    }
    ck_assert(!misauth_parse_basic(NULL, login, sizeof(login), pw, sizeof(pw)));
    /* Parts longer than the caller's buffers are refused, not cut. */
    char small[4];
    ck_assert(!misauth_parse_basic("Basic dXNlcjpwYXNz", small, sizeof(small), pw, sizeof(pw)));
    ck_assert(!misauth_parse_basic("Basic dXNlcjpwYXNz", login, sizeof(login), small, sizeof(small)));
    /* Over MISAUTH_HEADER_MAX bytes in all. */
    char *h = malloc(MISAUTH_HEADER_MAX + 8);
    ck_assert_ptr_nonnull(h);
    memcpy(h, "Basic ", 6);
    memset(h + 6, 'A', MISAUTH_HEADER_MAX);
    h[MISAUTH_HEADER_MAX + 6] = '\0';
    ck_assert(!basic(h, login, pw));
    free(h);
}
END_TEST

/* ---- the query string ---- */

START_TEST(query_decodes)
{
    struct req_param *p = NULL;
    int n = 0;
    const char *bad;
    ck_assert_int_eq(req_query_decode("a=1&&b=%D0%98+x&c&=", 8, test_alloc, NULL, &p, &n, &bad),
                     REQ_QUERY_BAD);  /* "=": an empty name */
    ck_assert_str_eq(bad, "query");
    p = NULL;
    n = 0;
    ck_assert_int_eq(req_query_decode("a=1&&b=%D0%98+x&c", 8, test_alloc, NULL, &p, &n, &bad),
                     REQ_QUERY_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(p[0].name, "a");
    ck_assert_str_eq(p[0].value, "1");
    ck_assert_str_eq(p[1].value, "И x");
    ck_assert_str_eq(p[2].name, "c");
    ck_assert_str_eq(p[2].value, "");
    n = 0;
    ck_assert_int_eq(req_query_decode(NULL, 8, test_alloc, NULL, &p, &n, &bad), REQ_QUERY_OK);
    ck_assert_int_eq(n, 0);
    blocks_free();
}
END_TEST

START_TEST(query_refuses)
{
    static const struct {
        const char *q, *bad;
    } cases[] = {
        {"a=%4", "a"}, {"a=%zz", "a"}, {"a=%00x", "a"}, {"a=%FF", "a"}, {"a=%ED%A0%80", "a"},
        {"%4=1", "query"}, {"%=1", "query"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct req_param *p = NULL;
        int n = 0;
        const char *bad;
        ck_assert_int_eq(req_query_decode(cases[i].q, 8, test_alloc, NULL, &p, &n, &bad),
                         REQ_QUERY_BAD);
        ck_assert_str_eq(bad, cases[i].bad);
    }
    struct req_param *p = NULL;
    int n = 0;
    const char *bad;
    ck_assert_int_eq(req_query_decode("a&b&c", 2, test_alloc, NULL, &p, &n, &bad),
                     REQ_QUERY_TOO_MANY);
    ck_assert_int_eq(n, 0);
    blocks_free();
}
END_TEST

/* ---- the booking bodies ---- */

#define NOW 1767225600  /* 2026-01-01T00:00:00Z */
#define LPU "c3c977af-c3b4-4517-9d57-50a6844ec660"
#define RES "19ebd6d6-2bbf-45c1-a8fb-2c7747f3beb3"
#define REF "f375509f-1924-4f38-8aa0-c33ced0a43f9"

static bool entry(const char *body, struct booking_req *b, struct booking_refusal *why)
{
    char err[128];
    yajl_val v = json_parse(body, strlen(body), JSON_MAX_DEPTH, err, sizeof(err));
    ck_assert_msg(v != NULL, "%s: %s", err, body);
    memset(b, 0, sizeof(*b));
    bool ok = booking_parse_entry(v, NOW, 21, test_alloc, NULL, b, why);
    yajl_tree_free(v);
    return ok;
}

START_TEST(entry_reads)
{
    struct booking_req b;
    struct booking_refusal why;
    ck_assert(entry("{\"lpu_code\":\"470102\",\"doctor_id\":\"" LPU RES "\",\"day\":\"2026-01-05\","
                    "\"time\":\"09:15\",\"email\":\"a@b.c\",\"email_confirm_agree\":true}",
                    &b, &why));
    ck_assert_int_eq(why.id, E_NONE);
    ck_assert_str_eq(b.lpu, LPU);
    ck_assert_str_eq(b.resource, RES);
    ck_assert_str_eq(b.mcod, "470102");
    ck_assert_str_eq(b.email, "a@b.c");
    ck_assert_ptr_null(b.phone);
    ck_assert_int_eq(b.email_agree, 1);
    ck_assert_str_eq(b.day, "2026-01-05");
    ck_assert_str_eq(b.time, "09:15");
    blocks_free();
}
END_TEST

START_TEST(entry_refusals)
{
    static const struct {
        const char *body;
        enum err_id id;
        const char *arg;
    } cases[] = {
        {"{\"directionID\":\"" REF "\"}", E_DIRECTION_PAIR, NULL},
        {"{\"lpu_code\":\"470102\",\"day\":\"2026-01-05\",\"time\":\"09:15\"}", E_TIME_OR_CELL_EMPTY, NULL},
        {"{\"doctor_id\":\"" LPU RES "\",\"day\":\"2026-01-05\",\"time\":\"09:15\"}", E_PARAM_REQUIRED, "lpu_code"},
        {"{\"lpu_code\":4701,\"doctor_id\":\"" LPU RES "\",\"time\":\"09:15\"}", E_PARAM_FORMAT, "lpu_code"},
        {"{\"lpu_code\":\"470102\",\"doctor_id\":\"x\",\"time\":\"09:15\"}", E_PARAM_FORMAT, "doctor_id"},
        {"{\"lpu_code\":\"470102\",\"doctor_id\":\"" LPU RES "\",\"day\":\"2026-02-30\",\"time\":\"09:15\"}",
         E_PARAM_FORMAT, "day"},
        {"{\"lpu_code\":\"470102\",\"doctor_id\":\"" LPU RES "\",\"day\":\"2026-03-01\",\"time\":\"09:15\"}",
         E_SCHEDULE_PERIOD, "21"},
        {"{\"lpu_code\":\"470102\",\"doctor_id\":\"" LPU RES "\",\"day\":\"2025-12-31\",\"time\":\"09:15\"}",
         E_CELL_PAST, "2025-12-31"},
        {"{\"lpu_code\":\"470102\",\"doctor_id\":\"" LPU RES "\",\"day\":\"2026-01-05\",\"time\":\"09:15\","
         "\"email\":\"a@\"}", E_PARAM_FORMAT, "email"},
        {"{\"lpu_code\":\"470102\",\"doctor_id\":\"" LPU RES "\",\"day\":\"2026-01-05\",\"time\":\"09:15\","
         "\"email_confirm_agree\":2}", E_PARAM_FORMAT, "email_confirm_agree"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct booking_req b;
        struct booking_refusal why;
        ck_assert_msg(!entry(cases[i].body, &b, &why), "accepted: %s", cases[i].body);
        ck_assert_int_eq(why.id, cases[i].id);
        if (cases[i].arg) {
            ck_assert_int_ge(why.nargs, 1);
            ck_assert_str_eq(why.args[0], cases[i].arg);
        } else {
            ck_assert_int_eq(why.nargs, 0);
        }
    }
    blocks_free();
}
END_TEST

START_TEST(direction_reads)
{
    static const char body[] = "{\"date\":\"2026-01-06\",\"time\":\"10:30\",\"lpuGuid\":\"" LPU
                               "\",\"resourceGuid\":\"" RES "\",\"directionGuid\":\"" REF "\"}";
    char err[128];
    yajl_val v = json_parse(body, strlen(body), JSON_MAX_DEPTH, err, sizeof(err));
    ck_assert_ptr_nonnull(v);
    struct booking_req b;
    struct booking_refusal why;
    memset(&b, 0, sizeof(b));
    ck_assert(booking_parse_direction(v, LPU, NOW, 21, &b, &why));
    ck_assert_str_eq(b.referral, REF);
    memset(&b, 0, sizeof(b));
    ck_assert(!booking_parse_direction(v, "not-a-guid", NOW, 21, &b, &why));
    ck_assert_int_eq(why.id, E_PARAM_FORMAT);
    ck_assert_str_eq(why.args[0], "lpuGuid");
    ck_assert(!booking_parse_direction(v, RES, NOW, 21, &b, &why));
    ck_assert_int_eq(why.id, E_LPU_MISMATCH);
    ck_assert_int_eq(why.nargs, 2);
    yajl_tree_free(v);
}
END_TEST

/* The longest polis there is (20 Cyrillic letters a part, two bytes each)
 * keeps all of itself in its key: two polises that differ in their last
 * letter are two identities, with caches and rate limits of their own. */
START_TEST(polis_key_whole)
{
    const char *series = "ЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖ";
    struct ident_query a, b;
    ck_assert_int_eq(identity_from_polis(series, "ЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖ", "1980-01-01", &a), E_NONE);
    ck_assert_int_eq(identity_from_polis(series, "ЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЯ", "1980-01-01", &b), E_NONE);
    ck_assert_uint_eq(strlen(a.polis_key), 40 + 1 + 40);
    ck_assert_str_ne(a.polis_key, b.polis_key);
    ck_assert_str_ne(a.key, b.key);
    /* One letter more is no polis. */
    ck_assert_int_eq(identity_from_polis(series, "ЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖЖ", "1980-01-01", &a), E_PARAM_FORMAT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("inputs");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, basic_accepts);
    tcase_add_test(tc, basic_refuses);
    tcase_add_test(tc, query_decodes);
    tcase_add_test(tc, query_refuses);
    tcase_add_test(tc, entry_reads);
    tcase_add_test(tc, entry_refusals);
    tcase_add_test(tc, direction_reads);
    tcase_add_test(tc, polis_key_whole);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
