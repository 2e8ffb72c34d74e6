/* fuzz.h - what every libFuzzer target in fuzz/ declares: the entry point
 * libFuzzer calls once per input (the prototype keeps -Wmissing-prototypes
 * quiet, as libFuzzer declares none for C). */
#ifndef MIPGW_FUZZ_H
#define MIPGW_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
