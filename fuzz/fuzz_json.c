/* fuzz_json.c - json_parse, the first thing every JSON body meets: any bytes
 * must give a tree or a reason, never a crash, and a tree must write back
 * out (json_gen_value, used to store objects as jsonb) and parse again. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "json.h"

/* The depth of a tree: json_parse's limit must hold for what it returns,
 * or the recursive walks of a deeper one (this one too) could overflow the
 * stack. A comment once hid brackets from the limit's count. */
static int tree_depth(yajl_val v)
{
    int d = 0;
    if (YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++) {
            int c = tree_depth(v->u.array.values[i]);
            d = c > d ? c : d;
        }
        return d + 1;
    }
    if (YAJL_IS_OBJECT(v)) {
        for (size_t i = 0; i < v->u.object.len; i++) {
            int c = tree_depth(v->u.object.values[i]);
            d = c > d ? c : d;
        }
        return d + 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[160];
    yajl_val v = json_parse((const char *)data, size, JSON_MAX_DEPTH, err, sizeof(err));
    if (!v) {
        /* The reason is echoed to clients: always a terminated string. */
        if (strlen(err) >= sizeof(err))
            abort();
        return 0;
    }
    if (tree_depth(v) > JSON_MAX_DEPTH)
        abort();
    /* Touch the accessors the handlers use on whatever came. */
    (void)json_str(json_get(v, "guid"));
    (void)json_is_null(json_get(v, "id"));

    struct buf out;
    buf_init(&out);
    yajl_gen g = json_gen_new();
    json_gen_value(g, v);
    json_gen_finish(g, &out);
    /* What we write must read back: a tree that does not would be stored
     * as jsonb PostgreSQL refuses. */
    yajl_val again = json_parse(out.data, out.len, JSON_MAX_DEPTH + 1, err, sizeof(err));
    if (!again)
        abort();
    yajl_tree_free(again);
    buf_free(&out);
    yajl_tree_free(v);
    return 0;
}
