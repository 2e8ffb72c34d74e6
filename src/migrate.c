/* migrate.c - see migrate.h. */
#include "migrate.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

/* An arbitrary constant naming this project's advisory lock. */
#define MIGRATE_LOCK_ID "782341001"

/* Deadlines, as for every call to a store. Another gateway's migrations
 * hold the advisory lock for seconds; a migration's DDL waiting for a
 * table's lock makes all traffic on that table queue behind it, so that
 * wait is short (the start fails and is tried again, by the supervisor);
 * a migration's statements may rewrite a large table. */
#define MIGRATE_CONNECT_TIMEOUT_S "10"
#define MIGRATE_LOCK_WAIT "SET lock_timeout = '60s'"
#define MIGRATE_DDL_WAIT "SET lock_timeout = '10s'"
#define MIGRATE_STATEMENT_MAX "SET statement_timeout = '30min'"

/* The error's primary message only: DETAIL may repeat key values ("Key
 * (snils)=(...) is duplicated"), which must not reach a log. */
static void error_text(const PGresult *res, char *err, size_t errlen)
{
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    snprintf(err, errlen, "%s%s%s", code ? code : "", code ? " " : "",
             msg ? msg : PQresStatus(PQresultStatus(res)));
}

static int exec_ok(PGconn *c, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(res);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        error_text(res, err, errlen);
    PQclear(res);
    return ok ? 0 : -1;
}

int migrate_run(const char *conninfo, char *err, size_t errlen)
{
    int applied = 0;
    /* A connect_timeout of the connection string's own wins (it comes
     * later, expanded from dbname). */
    const char *keys[] = {"connect_timeout", "dbname", NULL};
    const char *vals[] = {MIGRATE_CONNECT_TIMEOUT_S, conninfo, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", PQerrorMessage(c));
        PQfinish(c);
        return -1;
    }
    if (exec_ok(c, "SET client_min_messages = warning", err, errlen) ||
        exec_ok(c, MIGRATE_STATEMENT_MAX, err, errlen) ||
        exec_ok(c, MIGRATE_LOCK_WAIT, err, errlen) ||
        exec_ok(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK_ID ")", err, errlen) ||
        exec_ok(c, MIGRATE_DDL_WAIT, err, errlen) ||
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
            error_text(res, err, errlen);
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
            error_text(res, err, errlen);
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
