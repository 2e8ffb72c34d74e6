/* fuzz_alloc.h - an arena for one fuzz input, standing in for a request's
 * (req_alloc) or an import's: zeroed blocks, all freed by fuzz_arena_free.
 * Each block is its own malloc, so ASan sees an overrun of any of them. */
#ifndef MIPGW_FUZZ_ALLOC_H
#define MIPGW_FUZZ_ALLOC_H

#include <stdlib.h>

struct fuzz_block {
    struct fuzz_block *next;
    _Alignas(16) unsigned char data[];
};

struct fuzz_arena {
    struct fuzz_block *head;
};

/* The allocator callback the modules take (ctx: a struct fuzz_arena). */
static inline void *fuzz_alloc(void *ctx, size_t n)
{
    struct fuzz_arena *a = ctx;
    struct fuzz_block *b = calloc(1, sizeof(*b) + n);
    if (!b)
        abort();  /* as req_alloc does */
    b->next = a->head;
    a->head = b;
    return b->data;
}

static inline void fuzz_arena_free(struct fuzz_arena *a)
{
    while (a->head) {
        struct fuzz_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

#endif
