/* fuzz_patient.c - POST /patients: the body as api/patients.c reads it
 * (json_parse, an object), patient_validate, and the answer of a card that
 * failed validation (patient_result_make without the store's JSON, then
 * patient_result_gen). */
#include <stdlib.h>

#include "fuzz.h"
#include "json.h"
#include "patient.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* api/patients.c refuses bodies over 64 KiB before parsing. */
    if (size > 64 * 1024)
        return 0;
    char err[160];
    yajl_val root = json_parse((const char *)data, size, JSON_MAX_DEPTH, err, sizeof(err));
    if (!root)
        return 0;
    if (YAJL_IS_OBJECT(root)) {
        struct patient_check c;
        /* A fixed day, so that a run repeats. */
        patient_validate(root, "2026-01-01", &c);
        if (c.card_valid && !c.item.data)
            abort();
        if (!c.card_valid) {
            struct patient_result res;
            if (!patient_result_make(&c, NULL, 0, &res))
                abort();
            struct buf out;
            buf_init(&out);
            yajl_gen g = json_gen_new();
            patient_result_gen(&res, g);
            json_gen_finish(g, &out);
            buf_free(&out);
        }
        patient_check_free(&c);
    }
    yajl_tree_free(root);
    return 0;
}
