/* users.h - MIS logins, kept from the command line (`mipgw user ...`) and
 * by the demo import. Blocking libpq: never on a worker's loop. */
#ifndef MIPGW_USERS_H
#define MIPGW_USERS_H

#include <libpq-fe.h>
#include <stddef.h>

#include "config.h"

#define USERS_PASSWORD_MIN 12

/* Creates the login or brings it to this password and exactly these LPUs.
 * A stored hash that already verifies the password is kept (a new salt
 * would change the row for nothing), and a disabled login stays disabled.
 * Returns 0, or -1 with err filled. */
int users_upsert(PGconn *c, const struct config *cfg, const char *login, const char *password,
                 const char *const *mcods, int nmcods, char *err, size_t errlen);

/* `mipgw user add LOGIN --lpu MCOD...` (password on standard input),
 * `user list`, `user disable LOGIN`, `user enable LOGIN`. argv[0] is
 * "user". Returns the process's exit status. */
int users_main(const struct config *cfg, int argc, char **argv);

#endif
