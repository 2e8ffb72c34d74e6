/* ratelimit.h - a worker's own rate-limit counters, for when Redis, which
 * holds the counters every gateway shares, cannot be asked.
 *
 * Without them a Redis outage would switch the token endpoints' limits off,
 * and those limits are what stands between a public endpoint and someone
 * guessing birthdays for a polis. Each worker then counts on its own: a
 * gateway of W workers lets through at most W times a limit, not
 * everything. Fixed windows, as the Redis counters use, in a bounded table:
 * a new key takes the place of one whose window has passed, and when it
 * finds none (a flood of keys in one window) it is refused rather than
 * push out a count, so memory does not grow with the keys asked for and a
 * flood of fresh keys cannot reset anyone's. Not thread-safe: one per
 * worker. */
#ifndef MIPGW_RATELIMIT_H
#define MIPGW_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit;

/* slots: a power of two. NULL when out of memory. */
struct ratelimit *ratelimit_new(unsigned slots);
void ratelimit_free(struct ratelimit *rl);

/* Counts one request of key in the window of window_s seconds that now_s
 * falls in; true when that makes more than limit, or when the table has no
 * room for a new key in this window (0: no limit, nothing counted). */
bool ratelimit_hit(struct ratelimit *rl, const char *key, int limit, int64_t window_s, int64_t now_s);

#endif
