/* redis.h - one asynchronous Redis connection per worker (hiredis with its
 * libevent adapter). Every command has a deadline; a connection that misses
 * one or drops is reset and reconnected with backoff, by itself. While it is
 * down, commands are refused at once (STORE_DOWN) so that no request waits
 * on a store that is not there. */
#ifndef MIPGW_REDIS_H
#define MIPGW_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#include "store.h"

struct event_base;
struct config;
struct metrics;
struct redis;

/* reply is valid only during the callback (NULL unless STORE_OK or
 * STORE_ERROR; an error reply comes with STORE_ERROR). Called exactly once
 * for every command that redis_command accepted, never from inside
 * redis_command itself. */
typedef void (*redis_cb)(const redisReply *reply, enum store_status st, void *arg);

/* A Lua script sent by EVALSHA, and by EVAL when the server has lost it. */
struct redis_script {
    const char *source;
    char sha1[41];            /* filled by redis_script_init */
};
void redis_script_init(struct redis_script *s);

struct redis *redis_new(struct event_base *base, const struct config *cfg, struct metrics *m);
void redis_free(struct redis *r);
bool redis_is_up(const struct redis *r);

/* Returns STORE_OK when queued (the callback will come), or STORE_DOWN at
 * once. Arguments are copied. */
enum store_status redis_command(struct redis *r, redis_cb cb, void *arg, int argc,
                                const char **argv, const size_t *lens);
/* The same with NUL-terminated arguments. */
enum store_status redis_commandv(struct redis *r, redis_cb cb, void *arg, int argc, const char **argv);
/* Runs a script with nkeys keys first in argv. */
enum store_status redis_eval(struct redis *r, struct redis_script *s, redis_cb cb, void *arg,
                             int nkeys, int argc, const char **argv);
/* For a script that must run even if the connection is away now and whose
 * answer nobody waits for: sent now, or kept (the last REDIS_LATER_MAX, in
 * order) and sent first once connected again. Only for scripts that are
 * right whenever they run, such as a compare-and-delete. */
void redis_eval_later(struct redis *r, struct redis_script *s, int nkeys, int argc, const char **argv);

#endif
