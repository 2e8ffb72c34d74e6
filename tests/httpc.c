/* httpc.c - see httpc.h. */
#include "httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define HTTPC_MAX_ANSWER (64 * 1024 * 1024)
#define HTTPC_MAX_HEADERS 256

struct rbuf {
    char *data;
    size_t len, cap;
};

static void rbuf_add(struct rbuf *b, const void *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d)
            abort();
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void rbuf_puts(struct rbuf *b, const char *s)
{
    rbuf_add(b, s, strlen(s));
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        abort();
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

int http_default_port(void)
{
    const char *p = getenv("MIPGW_TEST_PORT");
    return p ? atoi(p) : 0;
}

static const char *target_host(void)
{
    const char *h = getenv("MIPGW_TEST_HOST");
    return h && *h ? h : "127.0.0.1";
}

static int connect_to(int port, int *err)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (port <= 0 || port > 65535 || inet_pton(AF_INET, target_host(), &sin.sin_addr) != 1) {
        *err = EINVAL;
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    struct timeval tv = {HTTPC_TIMEOUT_MS / 1000, (HTTPC_TIMEOUT_MS % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        *err = errno;
        close(fd);
        return -1;
    }
    return fd;
}

/* After a failed recv or send: true to try again (EINTR), else records on r
 * whether the socket timed out or failed, and gives false. */
static bool io_retry(struct http_resp *r)
{
    if (errno == EINTR)
        return true;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        r->timed_out = true;
    else
        r->error = errno;
    return false;
}

/* Reads more bytes into b. Returns the count, 0 at EOF, -1 on error (with
 * r->timed_out or r->error set). */
static ssize_t read_more(int fd, struct rbuf *b, struct http_resp *r)
{
    char tmp[16384];
    for (;;) {
        ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
        if (n > 0) {
            if (b->len + (size_t)n > HTTPC_MAX_ANSWER) {
                r->error = EMSGSIZE;
                return -1;
            }
            rbuf_add(b, tmp, (size_t)n);
            return n;
        }
        if (n == 0)
            return 0;
        if (io_retry(r))
            continue;
        return -1;
    }
}

static char *find_crlf2(const char *s, size_t len)
{
    for (size_t i = 0; i + 3 < len; i++)
        if (s[i] == '\r' && s[i + 1] == '\n' && s[i + 2] == '\r' && s[i + 3] == '\n')
            return (char *)s + i;
    return NULL;
}

static char *trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    return s;
}

/* Parses the status line and the headers of head (len bytes, CRLF lines). */
static bool parse_head(char *head, size_t len, struct http_resp *r)
{
    char *end = head + len;
    char *eol = strstr(head, "\r\n");
    if (!eol || eol > end)
        eol = end;
    *eol = '\0';
    int major, minor, status, used = 0;
    if (sscanf(head, "HTTP/%d.%d %3d%n", &major, &minor, &status, &used) != 3 || status < 100 ||
        status > 999)
        return false;
    char *reason = head + used;
    while (*reason == ' ')
        reason++;
    r->status = status;
    r->reason = xstrndup(reason, strlen(reason));
    r->names = calloc(HTTPC_MAX_HEADERS, sizeof(char *));
    r->values = calloc(HTTPC_MAX_HEADERS, sizeof(char *));
    if (!r->names || !r->values)
        abort();
    char *line = eol + 2;
    while (line < end && r->nheaders < HTTPC_MAX_HEADERS) {
        char *le = strstr(line, "\r\n");
        if (!le || le > end)
            le = end;
        *le = '\0';
        char *colon = strchr(line, ':');
        if (colon) {
            char *name = trim(line, colon);
            char *value = trim(colon + 1, le);
            r->names[r->nheaders] = xstrndup(name, strlen(name));
            r->values[r->nheaders] = xstrndup(value, strlen(value));
            r->nheaders++;
        }
        line = le + 2;
    }
    return true;
}

const char *http_header(const struct http_resp *r, const char *name)
{
    if (!r)
        return NULL;
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->names[i], name) == 0)
            return r->values[i];
    return NULL;
}

/* Decodes a chunked body held in src (n bytes) into out. Returns 1 when the
 * last chunk was seen, 0 when more is needed, -1 when malformed. */
static int dechunk(const char *src, size_t n, struct rbuf *out)
{
    size_t pos = 0;
    out->len = 0;
    for (;;) {
        const char *le = NULL;
        for (size_t i = pos; i + 1 < n; i++)
            if (src[i] == '\r' && src[i + 1] == '\n') {
                le = src + i;
                break;
            }
        if (!le)
            return 0;
        char *endp;
        unsigned long size = strtoul(src + pos, &endp, 16);
        if (endp == src + pos)
            return -1;
        pos = (size_t)(le - src) + 2;
        if (size == 0)
            return 1; /* trailers ignored */
        if (n - pos < size + 2)
            return 0;
        rbuf_add(out, src + pos, size);
        pos += size + 2;
    }
}

static struct http_resp *exchange(int port, const void *bytes, size_t len, bool head_request)
{
    struct http_resp *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    double t0 = now_ms();
    int fd = connect_to(port, &r->error);
    struct rbuf in = {0};
    if (fd < 0)
        goto out;

    /* Send everything; a server that stops reading and answers early is
     * still read below. */
    const char *p = bytes;
    size_t left = len;
    while (left > 0) {
        ssize_t n = send(fd, p, left, MSG_NOSIGNAL);
        if (n < 0) {
            if (io_retry(r))
                continue;
            break;
        }
        p += n;
        left -= (size_t)n;
    }

    char *hend = NULL;
    for (;;) {
        hend = find_crlf2(in.data ? in.data : "", in.len);
        if (hend)
            break;
        ssize_t n = read_more(fd, &in, r);
        if (n <= 0) {
            if (n == 0)
                r->closed = true;
            break;
        }
    }
    if (!hend) {
        /* No whole head: keep what came as the body, for diagnostics. */
        goto out;
    }
    size_t head_len = (size_t)(hend - in.data);
    size_t body_off = head_len + 4;
    char *head = xstrndup(in.data, head_len);
    bool ok = parse_head(head, head_len, r);
    free(head);
    if (!ok) {
        r->status = 0;
        goto out;
    }

    const char *cl = http_header(r, "Content-Length");
    const char *te = http_header(r, "Transfer-Encoding");
    bool no_body = head_request || r->status == 204 || r->status == 304 || r->status < 200;
    struct rbuf body = {0};
    if (no_body) {
        /* nothing */
    } else if (te && strcasecmp(te, "chunked") == 0) {
        for (;;) {
            int d = dechunk(in.data + body_off, in.len - body_off, &body);
            if (d != 0) {
                if (d < 0)
                    r->error = EPROTO;
                break;
            }
            ssize_t n = read_more(fd, &in, r);
            if (n <= 0) {
                if (n == 0)
                    r->closed = true;
                break;
            }
        }
    } else if (cl) {
        char *endp;
        unsigned long long want = strtoull(cl, &endp, 10);
        if (*endp != '\0' || want > HTTPC_MAX_ANSWER) {
            r->error = EPROTO;
        } else {
            while (in.len - body_off < want) {
                ssize_t n = read_more(fd, &in, r);
                if (n <= 0) {
                    if (n == 0)
                        r->closed = true;
                    break;
                }
            }
            size_t have = in.len - body_off;
            rbuf_add(&body, in.data + body_off, have < want ? have : (size_t)want);
        }
    } else {
        /* Up to the end of the connection. */
        for (;;) {
            ssize_t n = read_more(fd, &in, r);
            if (n <= 0)
                break;
        }
        rbuf_add(&body, in.data + body_off, in.len - body_off);
    }
    if (!body.data)
        rbuf_add(&body, "", 0);
    r->body = body.data;
    r->body_len = body.len;

out:
    if (!r->body) {
        /* Whatever arrived without a parsable head. */
        struct rbuf b = {0};
        rbuf_add(&b, in.data ? in.data : "", in.len);
        r->body = b.data;
        r->body_len = b.len;
    }
    if (!r->reason)
        r->reason = xstrndup("", 0);
    free(in.data);
    if (fd >= 0)
        close(fd);
    r->elapsed_ms = now_ms() - t0;
    return r;
}

struct http_resp *http_raw_at(int port, const void *bytes, size_t len)
{
    bool head = len >= 5 && memcmp(bytes, "HEAD ", 5) == 0;
    return exchange(port, bytes, len, head);
}

struct http_resp *http_raw(const void *bytes, size_t len)
{
    return http_raw_at(http_default_port(), bytes, len);
}

static bool has_header(const char *const *headers, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; headers && headers[i]; i++)
        if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':')
            return true;
    return false;
}

struct http_resp *http_request_at(int port, const char *method, const char *path,
                                  const char *const *headers, const char *body)
{
    struct rbuf req = {0};
    char line[128];
    rbuf_puts(&req, method);
    rbuf_puts(&req, " ");
    rbuf_puts(&req, path);
    rbuf_puts(&req, " HTTP/1.1\r\n");
    if (!has_header(headers, "Host")) {
        snprintf(line, sizeof(line), "Host: %s:%d\r\n", target_host(), port);
        rbuf_puts(&req, line);
    }
    if (!has_header(headers, "Connection"))
        rbuf_puts(&req, "Connection: close\r\n");
    if (body && !has_header(headers, "Content-Length")) {
        snprintf(line, sizeof(line), "Content-Length: %zu\r\n", strlen(body));
        rbuf_puts(&req, line);
    }
    for (size_t i = 0; headers && headers[i]; i++) {
        rbuf_puts(&req, headers[i]);
        rbuf_puts(&req, "\r\n");
    }
    rbuf_puts(&req, "\r\n");
    if (body)
        rbuf_puts(&req, body);
    struct http_resp *r = exchange(port, req.data, req.len, strcmp(method, "HEAD") == 0);
    free(req.data);
    return r;
}

struct http_resp *http_request(const char *method, const char *path, const char *const *headers,
                               const char *body)
{
    return http_request_at(http_default_port(), method, path, headers, body);
}

static struct http_resp *get_va(int port, const char *path, va_list ap)
{
    const char *hdrs[64];
    size_t n = 0;
    const char *h;
    while ((h = va_arg(ap, const char *)) != NULL && n < 63)
        hdrs[n++] = h;
    hdrs[n] = NULL;
    return http_request_at(port, "GET", path, hdrs, NULL);
}

struct http_resp *http_get(const char *path, ...)
{
    va_list ap;
    va_start(ap, path);
    struct http_resp *r = get_va(http_default_port(), path, ap);
    va_end(ap);
    return r;
}

struct http_resp *http_get_at(int port, const char *path, ...)
{
    va_list ap;
    va_start(ap, path);
    struct http_resp *r = get_va(port, path, ap);
    va_end(ap);
    return r;
}

struct http_resp *http_parse(const char *bytes, size_t len)
{
    struct http_resp *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    struct rbuf body = {0};
    const char *hend = find_crlf2(bytes, len);
    char *head = hend ? xstrndup(bytes, (size_t)(hend - bytes)) : NULL;
    if (!head || !parse_head(head, (size_t)(hend - bytes), r)) {
        /* No head: what came is kept as the body, for diagnostics. */
        r->status = 0;
        r->closed = true;
        rbuf_add(&body, bytes, len);
    } else {
        const char *p = hend + 4;
        size_t n = len - (size_t)(p - bytes);
        const char *cl = http_header(r, "Content-Length");
        const char *te = http_header(r, "Transfer-Encoding");
        if (te && strcasecmp(te, "chunked") == 0) {
            int d = dechunk(p, n, &body);
            r->closed = d == 0;
            if (d < 0)
                r->error = EPROTO;
        } else if (cl) {
            unsigned long long want = strtoull(cl, NULL, 10);
            r->closed = n < want;
            rbuf_add(&body, p, n < want ? n : (size_t)want);
        } else {
            rbuf_add(&body, p, n);
        }
    }
    free(head);
    if (!body.data)
        rbuf_add(&body, "", 0);
    r->body = body.data;
    r->body_len = body.len;
    if (!r->reason)
        r->reason = xstrndup("", 0);
    return r;
}

void http_free(struct http_resp *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nheaders; i++) {
        free(r->names[i]);
        free(r->values[i]);
    }
    free(r->names);
    free(r->values);
    free(r->reason);
    free(r->body);
    free(r);
}
