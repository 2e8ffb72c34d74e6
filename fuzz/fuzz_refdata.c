/* fuzz_refdata.c - the MIS reference data uploads (POST /mis/v1/lpus,
 * resources, cells, referrals, dispensary): the body as api/refdata.c reads
 * it (json_parse, an array), every item validated as each of the five kinds
 * (refdata_batch_build), and the answer written (refdata_batch_gen). The
 * arena is the importer's pool. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json.h"
#include "refdata.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[160];
    yajl_val root = json_parse((const char *)data, size, JSON_MAX_DEPTH, err, sizeof(err));
    if (!root)
        return 0;
    /* 1000: mis.max_batch_items' default; longer arrays are refused first. */
    if (YAJL_IS_ARRAY(root) && root->u.array.len <= 1000) {
        for (int k = 0; k < REFDATA__KINDS; k++) {
            struct refdata_pool *pool = refdata_pool_new();
            if (!pool)
                abort();
            struct refdata_batch b;
            memset(&b, 0, sizeof(b));
            if (refdata_batch_build(&b, (enum refdata_kind)k, root, refdata_pool_alloc, pool) == 0) {
                if (b.nvalid > b.n || (b.nvalid > 0 && !b.json))
                    abort();
                struct buf out;
                buf_init(&out);
                yajl_gen g = json_gen_new();
                refdata_batch_gen(&b, g);
                json_gen_finish(g, &out);
                buf_free(&out);
            }
            refdata_pool_free(pool);
        }
    }
    yajl_tree_free(root);
    return 0;
}
