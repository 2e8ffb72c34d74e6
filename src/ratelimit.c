/* ratelimit.c - see ratelimit.h. */
#include "ratelimit.h"

#include <stdlib.h>

/* A key is looked for in this many slots from its own; a new key takes an
 * empty one among them, or one whose window has passed, the oldest first.
 * None: the key is refused, not counted (a count of this window is never
 * dropped, or a flood of fresh keys would reset everyone's). */
#define RATELIMIT_PROBE 8

struct slot {
    uint64_t hash;     /* 0: never used */
    int64_t window;    /* the window's number (now_s / window_s) */
    uint32_t count;
};

struct ratelimit {
    unsigned mask;
    struct slot slots[];
};

/* FNV-1a, 64 bits: keys are short, and a collision only merges two
 * budgets, which a limit tolerates. Never 0 (the empty slot). */
static uint64_t key_hash(const char *key)
{
    uint64_t h = 14695981039346656037ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h ? h : 1;
}

struct ratelimit *ratelimit_new(unsigned slots)
{
    if (slots == 0 || (slots & (slots - 1)) != 0)
        return NULL;
    struct ratelimit *rl = calloc(1, sizeof(*rl) + (size_t)slots * sizeof(struct slot));
    if (rl)
        rl->mask = slots - 1;
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    free(rl);
}

bool ratelimit_hit(struct ratelimit *rl, const char *key, int limit, int64_t window_s, int64_t now_s)
{
    if (limit <= 0 || window_s <= 0)
        return false;
    uint64_t h = key_hash(key);
    int64_t window = now_s / window_s;
    struct slot *victim = NULL;
    for (unsigned i = 0; i < RATELIMIT_PROBE; i++) {
        struct slot *s = &rl->slots[(h + i) & rl->mask];
        if (s->hash == h) {
            if (s->window != window) {
                s->window = window;
                s->count = 0;
            }
            if (s->count < UINT32_MAX)
                s->count++;
            return s->count > (uint32_t)limit;
        }
        /* An empty slot's window is 0, older than any other. */
        if ((s->hash == 0 || s->window != window) && (!victim || s->window < victim->window))
            victim = s;
    }
    if (!victim)
        return true;
    *victim = (struct slot){.hash = h, .window = window, .count = 1};
    return false;  /* one request, and limit >= 1 */
}
