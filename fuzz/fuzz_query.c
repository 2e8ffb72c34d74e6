/* fuzz_query.c - the token endpoints' query strings (GET /auth/cod/token,
 * /auth/rpgu/token): req_query_decode, the parameter names' check and
 * identity_parse, in the order api/tokens.c runs them. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_alloc.h"
#include "identity.h"
#include "req.h"

struct params {
    const struct req_param *p;
    int n;
};

/* req_query's rule: the first of a name, an empty value as absent. */
static const char *param(void *ctx, const char *name)
{
    const struct params *ps = ctx;
    for (int i = 0; i < ps->n; i++) {
        if (strcmp(ps->p[i].name, name) == 0)
            return *ps->p[i].value ? ps->p[i].value : NULL;
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* evhttp hands the query over as a C string. */
    char *q = malloc(size + 1);
    if (!q)
        return 0;
    memcpy(q, data, size);
    q[size] = '\0';
    struct fuzz_arena arena = {NULL};
    struct req_param *pairs = NULL;
    int n = 0;
    const char *bad = NULL;
    /* 64: http.max_query_params' default. */
    enum req_query_status st = req_query_decode(q, 64, fuzz_alloc, &arena, &pairs, &n, &bad);
    if (st == REQ_QUERY_BAD && !bad)
        abort();
    if (st == REQ_QUERY_OK) {
        bool known = true;
        for (int i = 0; i < n; i++) {
            if (!pairs[i].name[0])
                abort();  /* an empty name is REQ_QUERY_BAD */
            known = known && identity_known_param(pairs[i].name);
        }
        if (known) {
            struct params ps = {pairs, n};
            struct ident_query iq;
            const char *f1, *f2;
            identity_parse(param, &ps, true, &iq, &f1, &f2);
            identity_parse(param, &ps, false, &iq, &f1, &f2);
        }
    }
    fuzz_arena_free(&arena);
    free(q);
    return 0;
}
