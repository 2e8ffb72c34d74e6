/* util.c - see util.h. */
#include "util.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

void buf_init(struct buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_free(struct buf *b)
{
    free(b->data);
    buf_init(b);
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Grows so that n more bytes and the terminator fit. Out of memory is not a
 * condition this service can answer meaningfully, so it aborts. */
static void buf_reserve(struct buf *b, size_t n)
{
    if (b->len + n + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        abort();
    b->data = p;
    b->cap = cap;
}

void buf_append(struct buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        buf_append(b, tmp, (size_t)n);
        return;
    }
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

int64_t util_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t util_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void util_format_time(int64_t epoch_s, char out[32])
{
    /* localtime_r takes glibc's time zone lock; two calls per token from
     * every worker would contend on it. Offsets change only at quarter-hour
     * boundaries in every zone in use, so each thread keeps the broken-down
     * start of the current quarter and adds the seconds. */
    static _Thread_local int64_t quarter = -1;
    static _Thread_local struct tm base;
    int64_t q = epoch_s >= 0 ? epoch_s / 900 : -1;
    struct tm tm;
    if (q < 0 || q != quarter) {
        time_t t = (time_t)(q >= 0 ? q * 900 : epoch_s);
        localtime_r(&t, &base);
        quarter = q;
    }
    tm = base;
    if (q >= 0) {
        int rest = (int)(epoch_s - q * 900);
        tm.tm_sec += rest;
        tm.tm_min += tm.tm_sec / 60;
        tm.tm_sec %= 60;
        /* Quarter boundaries in local time are minute-aligned: no carry
         * past the hour. */
    }
    /* Offsets are at most 14 hours; the casts keep the compiler's bounds
     * tight enough to prove the output fits. */
    int off = (int)(tm.tm_gmtoff % 86400);
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    unsigned vals[] = {(unsigned)(tm.tm_year + 1900) % 10000u, (unsigned)(tm.tm_mon + 1) % 100u,
                       (unsigned)tm.tm_mday % 100u, (unsigned)tm.tm_hour % 100u,
                       (unsigned)tm.tm_min % 100u, (unsigned)tm.tm_sec % 100u,
                       (unsigned)(off / 3600) % 100u, (unsigned)(off % 3600) / 60u};
    /* "YYYY-MM-DDTHH:MM:SS+HH:MM", by hand: snprintf was a tenth of the
     * token endpoint's own CPU. */
    static const char seps[] = "--T::\0:";
    char *o = out;
    o[0] = (char)('0' + vals[0] / 1000);
    o[1] = (char)('0' + vals[0] / 100 % 10);
    o[2] = (char)('0' + vals[0] / 10 % 10);
    o[3] = (char)('0' + vals[0] % 10);
    o += 4;
    for (int i = 1; i < 8; i++) {
        *o++ = i == 6 ? sign : seps[i - 1];
        *o++ = (char)('0' + vals[i] / 10);
        *o++ = (char)('0' + vals[i] % 10);
    }
    *o = '\0';
}

void util_random(void *p, size_t n)
{
    unsigned char *c = p;
    while (n > 0) {
        ssize_t got = getrandom(c, n, 0);
        if (got < 0)
            abort();
        c += got;
        n -= (size_t)got;
    }
}

int util_jitter_ms(int ms)
{
    if (ms < 4)
        return ms;
    uint32_t r;
    util_random(&r, sizeof(r));
    return ms - ms / 4 + (int)(r % (uint32_t)(ms / 2));
}

/* GUIDs are made per request (token ids): draw them from a per-thread pool
 * of kernel randomness instead of a system call each. */
static void util_random_pooled(unsigned char *p, size_t n)
{
    static _Thread_local unsigned char pool[4096];
    static _Thread_local size_t left;
    if (n > sizeof(pool)) {
        util_random(p, n);
        return;
    }
    if (left < n) {
        util_random(pool, sizeof(pool));
        left = sizeof(pool);
    }
    memcpy(p, pool + sizeof(pool) - left, n);
    /* Used bytes are wiped so that a later memory disclosure cannot
     * recover ids already handed out. */
    memset(pool + sizeof(pool) - left, 0, n);
    left -= n;
}

void util_guid(char out[GUID_LEN + 1])
{
    unsigned char b[16];
    util_random_pooled(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    /* 8-4-4-4-12 hex digits; written by hand, as snprintf showed in the
     * token endpoint's profile. */
    static const int group_end[] = {4, 6, 8, 10, 16};
    char *o = out;
    for (int i = 0, g = 0; i < 16; i++) {
        util_hex(&b[i], 1, o);
        o += 2;
        if (i + 1 == group_end[g] && g < 4) {
            *o++ = '-';
            g++;
        }
    }
    *o = '\0';
}

void util_hex(const unsigned char *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

void util_sha256(const void *data, size_t n, unsigned char out[32])
{
    /* SHA256() looks the algorithm up on every call in OpenSSL 3; it is
     * fetched once instead. */
    pthread_once(&sha256_once, sha256_fetch);
    if (sha256_md == NULL || EVP_Digest(data, n, out, NULL, sha256_md, NULL) != 1)
        abort();  /* OpenSSL without SHA-256: nothing sensible to do */
}

void util_sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    util_sha256(data, n, md);
    util_hex(md, sizeof(md), out);
}

bool util_secret_eq(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(x[i] ^ y[i]);
    return d == 0;
}

bool util_strlcpy(char *dst, const char *src, size_t cap)
{
    size_t n = strlen(src);
    if (cap == 0)
        return false;
    if (n >= cap) {
        memcpy(dst, src, cap - 1);
        dst[cap - 1] = '\0';
        return false;
    }
    memcpy(dst, src, n + 1);
    return true;
}

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t util_b64url(const unsigned char *in, size_t n, char *out)
{
    char *o = out;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *o++ = B64URL[v >> 18];
        *o++ = B64URL[(v >> 12) & 63];
        *o++ = B64URL[(v >> 6) & 63];
        *o++ = B64URL[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *o++ = B64URL[v >> 18];
        *o++ = B64URL[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *o++ = B64URL[v >> 18];
        *o++ = B64URL[(v >> 12) & 63];
        *o++ = B64URL[(v >> 6) & 63];
    }
    *o = '\0';
    return (size_t)(o - out);
}

bool util_list_has(const char *list, const char *item)
{
    size_t n = strlen(item);
    while (*list) {
        while (*list == ' ' || *list == ',')
            list++;
        size_t len = strcspn(list, ", ");
        if (len == n && len && memcmp(list, item, n) == 0)
            return true;
        list += len;
    }
    return false;
}

bool util_http_url(const char *url, char *host, size_t hostcap, int *port, const char **path)
{
    if (strncmp(url, "http://", 7) != 0)
        return false;
    const char *h = url + 7;
    size_t n = strcspn(h, ":/");
    if (n == 0 || n >= hostcap)
        return false;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = 80;
    const char *p = h + n;
    if (*p == ':') {
        char *end;
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v < 1 || v > 65535 || (*end && *end != '/'))
            return false;
        *port = (int)v;
        p = end;
    }
    *path = *p == '/' ? p : "/";
    return true;
}
