/* pg.h - a small pool of non-blocking libpq connections per worker. Each
 * connection prepares every statement of stmts.c when it connects; queries
 * name a statement and pass text parameters. A query that finds no free
 * connection waits in a bounded queue (pg.queue_max places for calls of
 * batchable statements, as many for all the others); a full queue sheds the query at once
 * (STORE_BUSY) rather than letting latency grow without bound, and a call
 * that waited three quarters of its deadline is shed unsent (STORE_BUSY,
 * through its callback; not a call of a failed batch running again alone). Every query has a deadline; a connection whose query
 * misses it is closed and reconnected with backoff. The server may still
 * finish that query, commit included: STORE_TIMEOUT of a write means its
 * outcome is unknown. A command whose commit fails after its rows were
 * sent (a deferred constraint) is an error, not its rows.
 *
 * Calls of a batchable statement (stmts.h) hold at most pg.batch_conns
 * connections (fewer than the pool's, per statement); those that queue up
 * meanwhile go as one call and one
 * transaction, up to pg.batch_max of them, and each still gets its own
 * outcome and its own row, after the commit. A batch that fails is run
 * again call by call, so that one bad call fails alone. */
#ifndef MIPGW_PG_H
#define MIPGW_PG_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "stmts.h"
#include "store.h"

struct event_base;
struct config;
struct metrics;
struct pg_pool;

/* res is valid only during the callback and is cleared by the pool: non-NULL
 * with STORE_OK (tuples or command OK) and STORE_ERROR (check SQLSTATE with
 * pg_sqlstate), NULL otherwise. Called exactly once for every accepted query,
 * never from inside pg_query. */
typedef void (*pg_cb)(PGresult *res, enum store_status st, void *arg);

struct pg_pool *pg_pool_new(struct event_base *base, const struct config *cfg, struct metrics *m);
void pg_pool_free(struct pg_pool *p);
/* True when at least one connection is up. */
bool pg_pool_is_up(const struct pg_pool *p);

/* Returns STORE_OK when accepted, STORE_DOWN or STORE_BUSY at once.
 * values are copied; a NULL value is SQL NULL. */
enum store_status pg_query(struct pg_pool *p, enum stmt_id stmt, const char *const *values,
                           pg_cb cb, void *arg);

/* "23505" and so on, or "" when res has none. */
const char *pg_sqlstate(const PGresult *res);

#endif
