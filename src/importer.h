/* importer.h - `mipgw import FILE`: loads a data set in the layout of
 * etc/demo.json (client applications, LPUs, patients' medical cards) into
 * PostgreSQL, idempotently: running it twice changes nothing. Blocking: a
 * command-line tool, never run on a reactor thread. Sections that later
 * capabilities own (resources, schedule, referrals, dispensary lists, MIS
 * logins) are reported as skipped until those capabilities exist. */
#ifndef MIPGW_IMPORTER_H
#define MIPGW_IMPORTER_H

#include <stddef.h>

int importer_load_file(const char *conninfo, const char *path, char *err, size_t errlen);

#endif
