/* fuzz_ehealth.c - the eHealth cabinet's bodies: the registration with its
 * person schema, the national login's UserRequest and the SMS code request,
 * each validated (ehs_validate_*) and its 422 report written, as
 * api/cabinet.c does with a body of any of them. */
#include <stdlib.h>

#include "ehealth_schema.h"
#include "fuzz.h"
#include "json.h"

typedef int (*validate_fn)(yajl_val body, struct ehs_report *rep);

static int registration(yajl_val body, struct ehs_report *rep)
{
    /* A fixed day, so that a run repeats. */
    int n = ehs_validate_registration(body, "2026-01-01", rep);
    if (n == 0) {
        /* What api/cabinet.c reads of a body that passed. */
        yajl_val patient = json_get(body, "patient");
        (void)ehs_otp_phone(patient);
        const char *pw = json_str(json_get(body, "password"));
        if (!pw)
            abort();  /* the schema requires it */
        (void)ehs_password_ok(pw);
        const char *first = json_str(json_get(patient, "first_name"));
        if (first)
            (void)ehs_names_match(first, "Тарас");
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* ehealth.max_body's default. */
    if (size > 64 * 1024)
        return 0;
    char err[160];
    yajl_val root = json_parse((const char *)data, size, JSON_MAX_DEPTH, err, sizeof(err));
    if (!root)
        return 0;
    const validate_fn checks[] = {registration, ehs_validate_user_request, ehs_validate_otp_request};
    for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        struct ehs_report rep;
        ehs_report_init(&rep);
        int n = checks[i](root, &rep);
        if (n != rep.n || n > EHS_MAX_ENTRIES)
            abort();
        struct buf out;
        buf_init(&out);
        ehs_report_json(&rep, &out);
        /* The report is sent as JSON: it must parse. */
        char perr[160];
        yajl_val again = json_parse(out.data, out.len, JSON_MAX_DEPTH, perr, sizeof(perr));
        if (!again)
            abort();
        yajl_tree_free(again);
        buf_free(&out);
        ehs_report_free(&rep);
    }
    yajl_tree_free(root);
    return 0;
}
