/* ratelimit.c - see ratelimit.h. */
#include "ratelimit.h"

#include <pthread.h>
#include <stdio.h>

/* INCR and the expiry in one step: a counter that missed its PEXPIRE would
 * never expire and lock the key out for good. */
static struct redis_script rl_script = {
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
    "return n",
    ""};
static pthread_once_t rl_once = PTHREAD_ONCE_INIT;

static void rl_init(void)
{
    redis_script_init(&rl_script);
}

enum store_status ratelimit_hit(struct redis *r, const char *scope, const char *key,
                                int window_s, redis_cb cb, void *arg)
{
    pthread_once(&rl_once, rl_init);
    char k[160], ms[24];
    snprintf(k, sizeof(k), "rl:%s:%s", scope, key);
    snprintf(ms, sizeof(ms), "%lld", (long long)window_s * 1000);
    const char *argv[] = {k, ms};
    return redis_eval(r, &rl_script, cb, arg, 1, 2, argv);
}

long long ratelimit_count(const redisReply *reply)
{
    return reply && reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0;
}
