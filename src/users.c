/* users.c - see users.h. */
#include "users.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "ids.h"
#include "hasher.h"
#include "misauth.h"
#include "util.h"

#define USERS_HASH_MAX 256

/* Runs one statement; on failure fills err and returns NULL. */
static PGresult *exec(PGconn *c, const char *sql, int n, const char *const *params, char *err,
                      size_t errlen)
{
    PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    snprintf(err, errlen, "%s", msg ? msg : PQerrorMessage(c));
    PQclear(res);
    return NULL;
}

static bool run(PGconn *c, const char *sql, int n, const char *const *params, char *err, size_t errlen)
{
    PGresult *res = exec(c, sql, n, params, err, errlen);
    PQclear(res);
    return res != NULL;
}

int users_upsert(PGconn *c, const struct config *cfg, const char *login, const char *password,
                 const char *const *mcods, int nmcods, char *err, size_t errlen)
{
    if (!misauth_login_valid(login)) {
        snprintf(err, errlen, "login must be 1-%d of A-Z a-z 0-9 . _ @ -", MISAUTH_LOGIN_MAX);
        return -1;
    }
    if (strlen(password) < USERS_PASSWORD_MIN) {
        snprintf(err, errlen, "password of %s is shorter than %d characters", login, USERS_PASSWORD_MIN);
        return -1;
    }
    /* No LPU: a login that writes no hospital's data (a cabinet client). */
    if (nmcods < 0 || nmcods > MISAUTH_MAX_LPUS) {
        snprintf(err, errlen, "a login has 0-%d LPUs", MISAUTH_MAX_LPUS);
        return -1;
    }
    for (int i = 0; i < nmcods; i++) {
        if (ids_mcod(mcods[i]) != ID_OK) {
            snprintf(err, errlen, "МКОД %s is not 6 or 7 digits", mcods[i]);
            return -1;
        }
    }
    struct buf arr;
    buf_init(&arr);
    ids_mcod_array(mcods, nmcods, &arr);  /* each one checked above */
    char hash[USERS_HASH_MAX];
    const char *p1[] = {login};
    PGresult *res = NULL;
    /* Inside the caller's transaction (an import, all or nothing), a
     * savepoint of its own; otherwise a transaction. */
    bool outer = PQtransactionStatus(c) == PQTRANS_INTRANS;
    const char *begin = outer ? "SAVEPOINT users_upsert" : "BEGIN";
    const char *commit = outer ? "RELEASE SAVEPOINT users_upsert" : "COMMIT";
    const char *rollback = outer ? "ROLLBACK TO SAVEPOINT users_upsert" : "ROLLBACK";

    if (!run(c, begin, 0, NULL, err, errlen)) {
        buf_free(&arr);
        return -1;
    }
    res = exec(c, "SELECT password_hash FROM mis_users WHERE login = $1 FOR UPDATE", 1, p1, err, errlen);
    if (!res)
        goto err;
    bool keep = PQntuples(res) == 1 && hasher_verify(PQgetvalue(res, 0, 0), password);
    if (keep)
        util_strlcpy(hash, PQgetvalue(res, 0, 0), sizeof(hash));
    PQclear(res);
    if (!keep && hasher_hash(cfg, password, hash, sizeof(hash)) != 0) {
        snprintf(err, errlen, "argon2id hashing failed");
        goto err;
    }
    const char *p3[] = {login, hash};
    const char *p2[] = {login, arr.data};
    if (!run(c,
             "INSERT INTO mis_users (login, password_hash) VALUES ($1, $2)"
             " ON CONFLICT (login) DO UPDATE SET password_hash = EXCLUDED.password_hash, updated_at = now()"
             " WHERE mis_users.password_hash IS DISTINCT FROM EXCLUDED.password_hash",
             2, p3, err, errlen) ||
        !run(c, "DELETE FROM mis_user_lpus WHERE login = $1 AND mcod <> ALL ($2::text[])", 2,
             p2, err, errlen) ||
        !run(c,
             "INSERT INTO mis_user_lpus (login, mcod) SELECT $1, unnest($2::text[])"
             " ON CONFLICT DO NOTHING",
             2, p2, err, errlen) ||
        !run(c, commit, 0, NULL, err, errlen))
        goto err;
    explicit_bzero(hash, sizeof(hash));
    buf_free(&arr);
    return 0;
err:
    explicit_bzero(hash, sizeof(hash));
    buf_free(&arr);
    PQclear(PQexec(c, rollback));
    return -1;
}

/* One line of standard input, without echo when it is a terminal. */
static int read_password(char *out, size_t cap)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fprintf(stderr, "Password: ");
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *line = fgets(out, (int)cap, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fprintf(stderr, "\n");
    }
    if (!line)
        return -1;
    size_t n = strcspn(out, "\r\n");
    if (out[n] == '\0' && n == cap - 1)
        return -1;  /* longer than the buffer: refuse rather than cut */
    out[n] = '\0';
    return 0;
}

static int user_add(PGconn *c, const struct config *cfg, int argc, char **argv)
{
    static const struct option opts[] = {{"lpu", required_argument, NULL, 'l'}, {NULL, 0, NULL, 0}};
    const char *mcods[MISAUTH_MAX_LPUS];
    int n = 0, opt;
    optind = 0;  /* glibc: start afresh after main's own parse */
    while ((opt = getopt_long(argc, argv, "l:", opts, NULL)) != -1) {
        if (opt != 'l' || n == MISAUTH_MAX_LPUS) {
            fprintf(stderr, "usage: mipgw user add LOGIN [--lpu MCOD...] < password\n");
            return 2;
        }
        mcods[n++] = optarg;
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "usage: mipgw user add LOGIN [--lpu MCOD...] < password\n");
        return 2;
    }
    const char *login = argv[optind];
    char err[256];
    const char *p1[] = {login};
    PGresult *res = exec(c, "SELECT 1 FROM mis_users WHERE login = $1", 1, p1, err, sizeof(err));
    if (!res) {
        fprintf(stderr, "mipgw: user add: %s\n", err);
        return 1;
    }
    bool exists = PQntuples(res) > 0;
    PQclear(res);
    if (exists) {
        fprintf(stderr, "mipgw: user add: login %s exists\n", login);
        return 1;
    }
    char password[MISAUTH_LOGIN_MAX * 4 + 256];
    if (read_password(password, sizeof(password)) != 0) {
        fprintf(stderr, "mipgw: user add: no password on standard input\n");
        return 1;
    }
    int rc = users_upsert(c, cfg, login, password, mcods, n, err, sizeof(err));
    explicit_bzero(password, sizeof(password));
    if (rc != 0) {
        fprintf(stderr, "mipgw: user add: %s\n", err);
        return 1;
    }
    printf("user %s added\n", login);
    return 0;
}

static int user_list(PGconn *c)
{
    char err[256];
    PGresult *res = exec(c,
                         "SELECT u.login, CASE WHEN u.is_disabled THEN 'disabled' ELSE 'enabled' END,"
                         "       coalesce(string_agg(l.mcod, ',' ORDER BY l.mcod), '')"
                         "  FROM mis_users u LEFT JOIN mis_user_lpus l ON l.login = u.login"
                         " GROUP BY u.login ORDER BY u.login",
                         0, NULL, err, sizeof(err));
    if (!res) {
        fprintf(stderr, "mipgw: user list: %s\n", err);
        return 1;
    }
    printf("%-32s %-9s %s\n", "LOGIN", "STATE", "LPUS");
    for (int i = 0; i < PQntuples(res); i++)
        printf("%-32s %-9s %s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2));
    PQclear(res);
    return 0;
}

static int user_set_disabled(PGconn *c, const char *login, bool disabled)
{
    char err[256];
    const char *p[] = {login, disabled ? "true" : "false"};
    PGresult *res = exec(c,
                         "UPDATE mis_users SET is_disabled = $2, updated_at = now()"
                         " WHERE login = $1 RETURNING 1",
                         2, p, err, sizeof(err));
    if (!res) {
        fprintf(stderr, "mipgw: user: %s\n", err);
        return 1;
    }
    int found = PQntuples(res);
    PQclear(res);
    if (!found) {
        fprintf(stderr, "mipgw: user: no login %s\n", login);
        return 1;
    }
    printf("user %s %s\n", login, disabled ? "disabled" : "enabled");
    return 0;
}

int users_main(const struct config *cfg, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    bool one_login = strcmp(sub, "disable") == 0 || strcmp(sub, "enable") == 0;
    if (!(strcmp(sub, "add") == 0 || strcmp(sub, "list") == 0 || one_login) ||
        (one_login && argc != 3)) {
        fprintf(stderr, "usage: mipgw user add LOGIN [--lpu MCOD...] | list | disable LOGIN | enable LOGIN\n");
        return 2;
    }
    PGconn *c = PQconnectdb(cfg->pg_conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "mipgw: user: PostgreSQL: %s", PQerrorMessage(c));
        PQfinish(c);
        return 1;
    }
    int rc;
    if (strcmp(sub, "add") == 0)
        rc = user_add(c, cfg, argc - 1, argv + 1);
    else if (strcmp(sub, "list") == 0)
        rc = user_list(c);
    else
        rc = user_set_disabled(c, argv[2], strcmp(sub, "disable") == 0);
    PQfinish(c);
    return rc;
}
