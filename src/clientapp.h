/* clientapp.h - the client applications (Internet, RPGU, Infomat, …) a
 * request may name in its ClientApplication header. Each worker keeps its
 * own copy, filled from PostgreSQL at start and refreshed by a timer, so the
 * token path asks no store to resolve the header. */
#ifndef MIPGW_CLIENTAPP_H
#define MIPGW_CLIENTAPP_H

#include <stdbool.h>
#include <stdint.h>

#define CLIENTAPP_MAX 64
#define CLIENTAPP_REFRESH_MS 30000

struct clientapp {
    char guid[37];
    char mnem[64];
    bool is_default;
};

struct clientapp_cache {
    struct clientapp apps[CLIENTAPP_MAX];
    int n;
    bool loaded;                /* at least one successful load */
    struct event *timer;
    struct worker *w;
};

/* Starts loading and the refresh timer. */
void clientapp_start(struct worker *w);
void clientapp_stop(struct worker *w);
/* guid NULL: the default application. NULL when unknown (or not loaded). */
const struct clientapp *clientapp_find(const struct clientapp_cache *c, const char *guid);

#endif
