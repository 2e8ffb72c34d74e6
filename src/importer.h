/* importer.h - `mipgw import FILE`: loads a data set in the layout of
 * etc/demo.json into PostgreSQL, idempotently: running it twice changes
 * nothing. In order: client applications, LPUs, MIS logins, resources,
 * schedule cells (expanded from the file's weekly templates, in its
 * `timezone` or else time.zone), patients' medical cards, referrals
 * ("directions") and dispensary lists. Reference data goes through the
 * validators and SQL functions of the /mis/v1 uploads (refdata.h).
 * Blocking: a command-line tool, never run on a reactor thread. */
#ifndef MIPGW_IMPORTER_H
#define MIPGW_IMPORTER_H

#include <stddef.h>

#include "config.h"

int importer_load_file(const struct config *cfg, const char *path, char *err, size_t errlen);

#endif
