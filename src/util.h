/* util.h - small shared helpers: growable buffers, clocks, time formatting,
 * randomness and encodings. Nothing here blocks or allocates behind the
 * caller's back except struct buf, whose owner frees it. */
#ifndef MIPGW_UTIL_H
#define MIPGW_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define GUID_LEN 36

/* A growable byte buffer, always NUL-terminated. The owner calls buf_free. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Monotonic clock in microseconds (for latencies and deadlines). */
int64_t util_mono_us(void);
/* Wall clock, seconds and microseconds since the epoch. */
int64_t util_wall_us(void);

/* ISO 8601 with the local offset of the process time zone (set once at
 * start-up through TZ): "2018-08-14T11:19:35+03:00". out needs 32 bytes. */
void util_format_time(int64_t epoch_s, char out[32]);

/* Cryptographically random bytes; aborts if the kernel cannot give them. */
void util_random(void *p, size_t n);
/* ms spread at random over [3/4 ms, 5/4 ms): reconnect delays, so that the
 * connections of every worker and gateway lost at one moment (a database
 * restart) do not all come back at the same one. */
int util_jitter_ms(int ms);
/* A random version-4 GUID, lower case, 36 characters plus NUL. */
void util_guid(char out[GUID_LEN + 1]);
/* Lower-case hex of n bytes into out (2n+1 bytes). */
void util_hex(const unsigned char *p, size_t n, char *out);
/* Unpadded base64url (RFC 4648 section 5) of n bytes into out, which needs
 * n / 3 * 4 + 4 bytes; NUL-terminated; returns the length without the NUL. */
size_t util_b64url(const unsigned char *in, size_t n, char *out);
/* SHA-256 of data: raw, and as 64 hex characters plus NUL. */
void util_sha256(const void *data, size_t n, unsigned char out[32]);
void util_sha256_hex(const void *data, size_t n, char out[65]);
/* Constant-time comparison for secrets. */
bool util_secret_eq(const void *a, const void *b, size_t n);

/* Splits "http://HOST[:PORT][/PATH]" into host (hostcap bytes), port (80
 * when absent) and path ("/" when absent, else a pointer into url).
 * False when it is not of that form, the host is empty or too long, or the
 * port is not 1-65535. The host is not resolved. */
bool util_http_url(const char *url, char *host, size_t hostcap, int *port, const char **path);

/* True when item is one of list's entries, which commas and blanks
 * separate ("127.0.0.1, ::1"). An empty item is in no list. */
bool util_list_has(const char *list, const char *item);

/* Copies at most cap-1 bytes and terminates; returns false if truncated. */
bool util_strlcpy(char *dst, const char *src, size_t cap);

#endif
