/* migrate.c - see migrate.h. */
#include "migrate.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

/* An arbitrary constant naming this project's advisory lock. */
#define MIGRATE_LOCK_ID "782341001"

static int exec_ok(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "%s", PQresultErrorMessage(res));
    PQclear(res);
    return ok ? 0 : -1;
}

int migrate_run(const char *conninfo, char *err, size_t errlen)
{
    int applied = 0;
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    if (exec_ok(c, "SET client_min_messages = warning", err, errlen) ||
        exec_ok(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_ID ")", err, errlen) ||
        exec_ok(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                   " version integer PRIMARY KEY, name text NOT NULL,"
                   " applied_at timestamptz NOT NULL DEFAULT now())", err, errlen))
        goto err;

    for (const struct migration *m = migrations; m->sql; m++) {
        char ver[16];
        snprintf(ver, sizeof(ver), "%d", m->version);
        const char *params[] = {ver, m->name};
        PGresult *res = PQexecParams(c, "SELECT 1 FROM schema_migrations WHERE version = $1::int",
                                     1, NULL, params, NULL, NULL, 0);
        int done = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0;
        int failed = PQresultStatus(res) != PGRES_TUPLES_OK;
        if (failed)
            snprintf(err, errlen, "%s", PQresultErrorMessage(res));
        PQclear(res);
        if (failed)
            goto err;
        if (done)
            continue;
        if (exec_ok(c, "BEGIN", err, errlen))
            goto err;
        if (exec_ok(c, m->sql, err, errlen)) {
            char msg[512];
            snprintf(msg, sizeof(msg), "%s", err);
            snprintf(err, errlen, "migration %03d_%s: %s", m->version, m->name, msg);
            PQclear(PQexec(c, "ROLLBACK"));
            goto err;
        }
        res = PQexecParams(c, "INSERT INTO schema_migrations (version, name) VALUES ($1::int, $2)",
                           2, NULL, params, NULL, NULL, 0);
        failed = PQresultStatus(res) != PGRES_COMMAND_OK;
        if (failed)
            snprintf(err, errlen, "%s", PQresultErrorMessage(res));
        PQclear(res);
        if (failed || exec_ok(c, "COMMIT", err, errlen)) {
            PQclear(PQexec(c, "ROLLBACK"));
            goto err;
        }
        log_info("migrate: applied %03d_%s", m->version, m->name);
        applied++;
    }
    PQclear(PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_ID ")"));
    PQfinish(c);
    return applied;
err:
    PQfinish(c);
    return -1;
}
