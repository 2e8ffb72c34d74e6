/* httpc.h - a tiny HTTP/1.1 client for the end-to-end tests.
 *
 * One blocking connection per request, a receive and send timeout of
 * HTTPC_TIMEOUT_MS on every socket call, and the raw bytes go out as given:
 * tests can send malformed request lines, huge headers or garbage. The
 * answer is read as far as it comes: status line, headers (looked up without
 * regard to case), and a body by Content-Length, by chunks, or up to the end
 * of the connection. A server that closes without answering, or that does
 * not answer in time, gives a response with status 0 and closed/timed_out
 * set, never a hang.
 *
 * The target is MIPGW_TEST_HOST and MIPGW_TEST_PORT unless a port is given
 * (the *_at variants, for a second gateway). No global state: every call
 * reads the environment afresh. */
#ifndef MIPGW_TESTS_HTTPC_H
#define MIPGW_TESTS_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

#define HTTPC_TIMEOUT_MS 5000

struct http_resp {
    int status;             /* 0: no status line came */
    char *reason;           /* "" when none */
    size_t nheaders;
    char **names;           /* header names as sent */
    char **values;          /* values, surrounding spaces trimmed */
    char *body;             /* always NUL-terminated (may hold NULs itself) */
    size_t body_len;
    bool closed;            /* the server closed the connection before a whole answer */
    bool timed_out;         /* a socket call ran into the timeout */
    int error;              /* errno of a failed connect, send or receive; 0 if none */
    double elapsed_ms;      /* connect to the last byte read */
};

/* Sends len raw bytes and reads one answer. */
struct http_resp *http_raw(const void *bytes, size_t len);
struct http_resp *http_raw_at(int port, const void *bytes, size_t len);

/* A request: headers is a NULL-terminated list of "Name: value" lines (or
 * NULL); body may be NULL. Host, Connection: close and, with a body,
 * Content-Length are added unless the headers give them. */
struct http_resp *http_request(const char *method, const char *path, const char *const *headers,
                               const char *body);
struct http_resp *http_request_at(int port, const char *method, const char *path,
                                  const char *const *headers, const char *body);

/* GET with "Name: value" header lines as the variable arguments, ended by
 * NULL: http_get("/health", "X-Request-Id: a1", NULL). */
struct http_resp *http_get(const char *path, ...) __attribute__((sentinel));
struct http_resp *http_get_at(int port, const char *path, ...) __attribute__((sentinel));

/* One whole answer read up to the end of its connection (len bytes), for
 * callers that do their own I/O: the status is 0 when no head came, and
 * closed is set when the body is shorter than it says. */
struct http_resp *http_parse(const char *bytes, size_t len);

/* The value of the first header named name (any case), or NULL. */
const char *http_header(const struct http_resp *r, const char *name);

void http_free(struct http_resp *r);

/* The port of the gateway under test (MIPGW_TEST_PORT), or 0. */
int http_default_port(void);

#endif
