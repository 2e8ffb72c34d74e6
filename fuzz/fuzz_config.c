/* fuzz_config.c - the configuration file: config_load on the input written
 * to a temporary file (the file is read line by line with getline, so there
 * is no buffer form to call), then config_dump of what loaded, which parses
 * the PostgreSQL conninfo again to mask its password. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"
#include "log.h"

static char path[64];
static FILE *devnull;

/* Once: the scratch file, /dev/null for the dump, and only errors logged
 * (a warning per input would be most of the run's time). */
static void setup(void)
{
    snprintf(path, sizeof(path), "/tmp/mipgw-fuzz-config-%ld.conf", (long)getpid());
    devnull = fopen("/dev/null", "w");
    if (!devnull)
        abort();
    log_open(NULL, LOG_ERROR, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!devnull)
        setup();
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    if (fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    struct config *cfg = malloc(sizeof(*cfg));
    if (!cfg)
        abort();
    char err[512];
    if (config_load(cfg, path, err, sizeof(err)) == 0)
        config_dump(cfg, devnull);
    else if (!err[0] || strlen(err) >= sizeof(err))
        abort();  /* a refusal always says why */
    free(cfg);
    unlink(path);
    return 0;
}
