/* fuzz_booking.c - the booking bodies: seed 001's (POST
 * /api/v2/iemk/doctors/entry) and seed 002's (POST
 * /api/v2/directions/visit/{lpuGuid}), parsed as api/booking.c does
 * (json_parse, an object) and read by booking_parse_entry and
 * booking_parse_direction. A refusal must name a catalogue entry. */
#include <stdlib.h>
#include <string.h>

#include "booking.h"
#include "fuzz.h"
#include "fuzz_alloc.h"
#include "json.h"

/* A fixed "now" (2026-01-01T00:00:00Z) and schedule.horizon_days' default,
 * so that a run repeats. */
#define FUZZ_NOW 1767225600
#define FUZZ_HORIZON 21

static void check(bool ok, const struct booking_refusal *why)
{
    if (ok != (why->id == E_NONE) || why->nargs < 0 || why->nargs > 2)
        abort();
    for (int i = 0; i < why->nargs; i++)
        if (!why->args[i] || strlen(why->args[i]) > 64)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16 * 1024)
        return 0;  /* api/booking.c's cap */
    char err[160];
    yajl_val root = json_parse((const char *)data, size, JSON_MAX_DEPTH, err, sizeof(err));
    if (!root)
        return 0;
    if (YAJL_IS_OBJECT(root)) {
        struct fuzz_arena arena = {NULL};
        struct booking_req b;
        struct booking_refusal why;
        memset(&b, 0, sizeof(b));
        check(booking_parse_entry(root, FUZZ_NOW, FUZZ_HORIZON, fuzz_alloc, &arena, &b, &why), &why);
        memset(&b, 0, sizeof(b));
        check(booking_parse_direction(root, "c3c977af-c3b4-4517-9d57-50a6844ec660", FUZZ_NOW,
                                      FUZZ_HORIZON, &b, &why),
              &why);
        fuzz_arena_free(&arena);
    }
    yajl_tree_free(root);
    return 0;
}
