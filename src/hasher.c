/* hasher.c - see hasher.h. A fixed set of threads takes jobs off one
 * bounded ring; each job carries an event made on its worker's loop before
 * it was queued, and the thread activates it when done (thread-safe with
 * evthread_use_pthreads, and it cannot fail). */
#include "hasher.h"

#include <argon2.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "config.h"
#include "util.h"

#define HASHER_SALT_LEN 16
#define HASHER_HASH_LEN 32

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct hasher_job **ring;
    int cap, head, count;
    pthread_t *threads;
    int nthreads;
    bool stopping;
    uint32_t t_cost, m_cost_kib;    /* for HASHER_HASH on the threads */
    char dummy[HASHER_ENCODED_MAX];
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static int hash_with(uint32_t t_cost, uint32_t m_cost, const char *password, size_t len,
                     char *out, size_t outlen)
{
    unsigned char salt[HASHER_SALT_LEN];
    if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt))
        return -1;
    size_t need = argon2_encodedlen(t_cost, m_cost, 1, HASHER_SALT_LEN, HASHER_HASH_LEN, Argon2_id);
    if (need > outlen)
        return -1;
    int rc = argon2id_hash_encoded(t_cost, m_cost, 1, password, len, salt, sizeof(salt),
                                   HASHER_HASH_LEN, out, outlen);
    return rc == ARGON2_OK ? 0 : -1;
}

static void *hasher_thread(void *unused)
{
    (void)unused;
    for (;;) {
        pthread_mutex_lock(&pool.lock);
        while (pool.count == 0 && !pool.stopping)
            pthread_cond_wait(&pool.wake, &pool.lock);
        if (pool.stopping) {
            pthread_mutex_unlock(&pool.lock);
            return NULL;
        }
        struct hasher_job *j = pool.ring[pool.head];
        pool.head = (pool.head + 1) % pool.cap;
        pool.count--;
        pthread_mutex_unlock(&pool.lock);

        if (j->op == HASHER_VERIFY)
            j->ok = argon2id_verify(j->encoded, j->password, j->password_len) == ARGON2_OK;
        else
            j->ok = hash_with(pool.t_cost, pool.m_cost_kib, j->password, j->password_len,
                              j->encoded, sizeof(j->encoded)) == 0;
        event_active(j->done, EV_TIMEOUT, 1);
    }
}

/* Back on the submitting loop. */
static void hasher_on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct hasher_job *j = arg;
    event_free(j->done);
    j->done = NULL;
    j->cb(j, j->arg);
}

bool hasher_submit(struct event_base *base, struct hasher_job *j)
{
    j->ok = false;
    j->done = event_new(base, -1, 0, hasher_on_done, j);
    if (!j->done)
        return false;
    bool queued = false;
    pthread_mutex_lock(&pool.lock);
    if (!pool.stopping && pool.count < pool.cap) {
        pool.ring[(pool.head + pool.count) % pool.cap] = j;
        pool.count++;
        pthread_cond_signal(&pool.wake);
        queued = true;
    }
    pthread_mutex_unlock(&pool.lock);
    if (!queued) {
        event_free(j->done);
        j->done = NULL;
    }
    return queued;
}

int hasher_hash(const struct config *cfg, const char *password, char *out, size_t outlen)
{
    return hash_with((uint32_t)cfg->mis_hash_t_cost, (uint32_t)cfg->mis_hash_m_cost_kib, password,
                     strlen(password), out, outlen);
}

bool hasher_verify(const char *encoded, const char *password)
{
    return argon2id_verify(encoded, password, strlen(password)) == ARGON2_OK;
}

const char *hasher_dummy(void)
{
    return pool.dummy;
}

int hasher_start(const struct config *cfg, char *err, size_t errlen)
{
    char random_pw[GUID_LEN + 1];
    util_guid(random_pw);
    if (hasher_hash(cfg, random_pw, pool.dummy, sizeof(pool.dummy)) != 0) {
        snprintf(err, errlen, "hasher: argon2id does not work with the configured cost");
        return -1;
    }
    pool.t_cost = (uint32_t)cfg->mis_hash_t_cost;
    pool.m_cost_kib = (uint32_t)cfg->mis_hash_m_cost_kib;
    pool.cap = cfg->mis_hash_queue_max;
    pool.ring = calloc((size_t)pool.cap, sizeof(*pool.ring));
    pool.threads = calloc((size_t)cfg->mis_hash_threads, sizeof(*pool.threads));
    if (!pool.ring || !pool.threads)
        goto err;
    pool.stopping = false;
    for (pool.nthreads = 0; pool.nthreads < cfg->mis_hash_threads; pool.nthreads++) {
        if (pthread_create(&pool.threads[pool.nthreads], NULL, hasher_thread, NULL) != 0)
            goto err;
    }
    return 0;
err:
    snprintf(err, errlen, "hasher: cannot start the hashing threads");
    hasher_stop();
    return -1;
}

/* Jobs still queued are dropped: their requests were answered by the
 * workers' shutdown, which has already run when this is called. */
void hasher_stop(void)
{
    pthread_mutex_lock(&pool.lock);
    pool.stopping = true;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    for (int i = 0; i < pool.nthreads; i++)
        pthread_join(pool.threads[i], NULL);
    free(pool.threads);
    free(pool.ring);
    pool.threads = NULL;
    pool.ring = NULL;
    pool.nthreads = pool.count = pool.head = 0;
}
