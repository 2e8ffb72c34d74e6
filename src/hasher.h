/* hasher.h - the process's password-hashing threads. argon2id costs tens of
 * milliseconds of CPU and megabytes of memory by design, so no event loop
 * ever runs it: a worker queues a job and its callback runs back on that
 * worker's loop. The queue is bounded (mis.hash_queue_max); a full queue
 * refuses at once, and the caller answers 503 rather than letting latency
 * grow without bound. Every password the gateway stores (MIS logins, cabinet
 * users) uses the one cost of [mis] hash_t_cost and hash_m_cost_kib. */
#ifndef MIPGW_HASHER_H
#define MIPGW_HASHER_H

#include <stdbool.h>
#include <stddef.h>

struct config;
struct event;
struct event_base;

#define HASHER_ENCODED_MAX 256

enum hasher_op {
    HASHER_VERIFY,   /* does password match encoded? → ok */
    HASHER_HASH,     /* a fresh salted hash of password → encoded, ok */
};

struct hasher_job;
typedef void (*hasher_cb)(struct hasher_job *j, void *arg);

/* Owned by the caller (usually in a request's arena) until the callback. */
struct hasher_job {
    enum hasher_op op;
    char encoded[HASHER_ENCODED_MAX];
    const char *password;        /* the caller's; wipe it in the callback */
    size_t password_len;
    bool ok;
    hasher_cb cb;
    void *arg;
    struct event *done;          /* internal: wakes the submitting loop */
};

/* Queues j; the callback comes on base's loop, never from inside this call.
 * False when the queue is full or the threads are stopping (no callback). */
bool hasher_submit(struct event_base *base, struct hasher_job *j);

/* Started before the workers, stopped after them. Returns 0, or -1 with
 * err filled (e.g. argon2id refuses the configured cost). */
int hasher_start(const struct config *cfg, char *err, size_t errlen);
void hasher_stop(void);

/* A hash of a random password at the configured cost: verified in place of
 * an unknown login's, so that timing does not tell which logins exist. */
const char *hasher_dummy(void);

/* Blocking, for the command line and the importer: an argon2id encoded hash
 * with a fresh salt, and its verification. */
int hasher_hash(const struct config *cfg, const char *password, char *out, size_t outlen);
bool hasher_verify(const char *encoded, const char *password);

#endif
