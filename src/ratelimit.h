/* ratelimit.h - fixed-window counters in Redis, shared by every gateway
 * process: "rl:{scope}:{key}" counts hits and expires with its window. When
 * Redis is down the limits are not enforced (the service stays up); that is
 * logged by the Redis client and counted in the metrics. */
#ifndef MIPGW_RATELIMIT_H
#define MIPGW_RATELIMIT_H

#include "redis.h"

/* Counts one hit of key in scope; cb receives the count so far (an integer
 * reply). Returns what redis_eval returns. */
enum store_status ratelimit_hit(struct redis *r, const char *scope, const char *key,
                                int window_s, redis_cb cb, void *arg);
/* The count in an integer reply, or 0 when the reply is not one. */
long long ratelimit_count(const redisReply *reply);

#endif
