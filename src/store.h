/* store.h - what a store call (Redis or PostgreSQL) reports to its caller. */
#ifndef MIPGW_STORE_H
#define MIPGW_STORE_H

enum store_status {
    STORE_OK = 0,      /* the store answered (for PostgreSQL: successfully) */
    STORE_ERROR,       /* the store answered with an error (SQLSTATE, Redis error reply) */
    STORE_TIMEOUT,     /* no answer before the deadline; the connection is reset
                        * (the call may still run to its end) */
    STORE_DOWN,        /* not connected, refused at once; or the connection was lost
                        * before the answer came (the call may have run) */
    STORE_BUSY,        /* connected but the queue is full, refused at once; or
                        * (PostgreSQL) shed unsent after waiting too long */
};

const char *store_status_name(enum store_status s);

#endif
