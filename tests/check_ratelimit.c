/* check_ratelimit.c - unit tests of a worker's own rate-limit counters
 * (src/ratelimit.c): counting within a window, a new window, keys of their
 * own, no limit, and a table that stays bounded as keys come and go. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "ratelimit.h"

START_TEST(test_counts_within_window)
{
    struct ratelimit *rl = ratelimit_new(64);
    ck_assert_ptr_nonnull(rl);
    /* Window of 60 s: 1000..1019 are in one (1000 / 60 = 16, as is 1019). */
    for (int i = 0; i < 3; i++)
        ck_assert_msg(!ratelimit_hit(rl, "rl:tok-id:a", 3, 60, 1000 + i), "hit %d refused", i + 1);
    ck_assert(ratelimit_hit(rl, "rl:tok-id:a", 3, 60, 1019));
    ck_assert(ratelimit_hit(rl, "rl:tok-id:a", 3, 60, 1019));
    /* Another key has a budget of its own. */
    ck_assert(!ratelimit_hit(rl, "rl:tok-id:b", 3, 60, 1019));
    /* The next window starts again. */
    ck_assert(!ratelimit_hit(rl, "rl:tok-id:a", 3, 60, 1020));
    ratelimit_free(rl);
}
END_TEST

START_TEST(test_no_limit)
{
    struct ratelimit *rl = ratelimit_new(8);
    for (int i = 0; i < 100; i++)
        ck_assert(!ratelimit_hit(rl, "k", 0, 60, 1000));
    /* Nothing was counted while the limit was off. */
    ck_assert(!ratelimit_hit(rl, "k", 1, 60, 1000));
    ck_assert(ratelimit_hit(rl, "k", 1, 60, 1000));
    ratelimit_free(rl);
}
END_TEST

START_TEST(test_bad_sizes)
{
    ck_assert_ptr_null(ratelimit_new(0));
    ck_assert_ptr_null(ratelimit_new(100));
}
END_TEST

/* Far more keys than slots in one window: the table keeps its size, and a
 * key that finds no room is refused rather than push out a count of this
 * window, so the counts that were there hold (a flood of fresh keys cannot
 * reset the budget of the one it targets). In the next window the stale
 * slots are taken again. */
START_TEST(test_bounded)
{
    struct ratelimit *rl = ratelimit_new(16);
    for (int i = 0; i < 5; i++)
        ck_assert(!ratelimit_hit(rl, "rl:tok-id:target", 5, 60, 1000));
    char key[32];
    int refused = 0;
    for (int i = 0; i < 10000; i++) {
        snprintf(key, sizeof(key), "rl:tok-addr:%d", i);
        refused += ratelimit_hit(rl, key, 5, 60, 1000);
    }
    ck_assert_int_ge(refused, 10000 - 16);
    ck_assert(ratelimit_hit(rl, "rl:tok-id:target", 5, 60, 1000));
    /* The next window: room again, and the target starts afresh. */
    ck_assert(!ratelimit_hit(rl, "rl:tok-addr:fresh", 5, 60, 1060));
    ck_assert(!ratelimit_hit(rl, "rl:tok-id:target", 5, 60, 1060));
    ratelimit_free(rl);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_counts_within_window);
    tcase_add_test(tc, test_no_limit);
    tcase_add_test(tc, test_bad_sizes);
    tcase_add_test(tc, test_bounded);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
