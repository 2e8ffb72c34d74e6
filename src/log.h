/* log.h - the process log and the access log. Lines are written with one
 * write(2) each so that threads never interleave within a line. Nothing that
 * reaches a log may hold a token, a password or a whole document number:
 * callers mask with log_mask() first. */
#ifndef MIPGW_LOG_H
#define MIPGW_LOG_H

#include <stddef.h>

enum log_level {
    LOG_DEBUG,
    LOG_INFO,
    LOG_WARN,
    LOG_ERROR,
};

/* path NULL or "" means standard error. Returns 0, or -1 if it cannot open. */
int log_open(const char *path, enum log_level min_level, int access_log);
/* Reopens the file (SIGHUP, after rotation). Safe from any thread. */
void log_reopen(void);
int log_parse_level(const char *s, enum log_level *out);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int log_access_enabled(void);
/* One access line: route, status, latency, request id. */
void log_access(const char *req_id, const char *method, const char *route,
                int status, const char *msg_code, long latency_us);
/* Keeps the last `keep` characters of s and stars the rest: "*******3456". */
void log_mask(const char *s, size_t keep, char *out, size_t cap);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
