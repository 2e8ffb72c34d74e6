/* log.c - see log.h. The file descriptor is swapped atomically on reopen so
 * that worker threads never take a lock to log. */
#include "log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char log_path[512];
static _Atomic int log_fd = 2;
static enum log_level log_min = LOG_INFO;
static int log_access_on = 1;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int log_parse_level(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_open(const char *path, enum log_level min_level, int access_log)
{
    log_min = min_level;
    log_access_on = access_log;
    if (!path || !*path) {
        log_path[0] = '\0';
        atomic_store(&log_fd, 2);
        return 0;
    }
    snprintf(log_path, sizeof(log_path), "%s", path);
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    atomic_store(&log_fd, fd);
    return 0;
}

void log_reopen(void)
{
    if (!log_path[0])
        return;
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return;
    /* The new file takes the old descriptor's number, so that the number
     * workers read never changes. Swapping numbers and closing the old one
     * would free it for the next accept() or store connection while a
     * worker that had just read it still writes a line: into a client's
     * answer, or a store's protocol. A line in flight goes to one file or
     * the other whole. */
    int old = atomic_load(&log_fd);
    if (old > 2 && dup3(fd, old, O_CLOEXEC) == old) {
        close(fd);
        return;
    }
    /* Never seen: dup3 into our own descriptor failed. The swap is then the
     * lesser harm than no log. */
    old = atomic_exchange(&log_fd, fd);
    if (old > 2)
        close(old);
}

static void log_write_line(char *line, size_t len, size_t cap)
{
    if (len >= cap - 1)
        len = cap - 2;
    line[len++] = '\n';
    ssize_t r = write(atomic_load(&log_fd), line, len);
    (void)r;
}

static size_t log_stamp(char *out, size_t cap)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    time_t t = tv.tv_sec;
    gmtime_r(&t, &tm);
    return strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm)
         + (size_t)snprintf(out + 19, cap - 19, ".%03ldZ", (long)tv.tv_usec / 1000);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level < log_min)
        return;
    char line[2048];
    size_t n = log_stamp(line, sizeof(line));
    n += (size_t)snprintf(line + n, sizeof(line) - n, " %s ", level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    va_end(ap);
    if (w > 0)
        n += (size_t)w < sizeof(line) - n ? (size_t)w : sizeof(line) - n - 1;
    log_write_line(line, n, sizeof(line));
}

int log_access_enabled(void)
{
    return log_access_on;
}

void log_access(const char *req_id, const char *method, const char *route,
                int status, const char *msg_code, long latency_us)
{
    if (!log_access_on)
        return;
    char line[512];
    size_t n = log_stamp(line, sizeof(line));
    int w = snprintf(line + n, sizeof(line) - n,
                     " access id=%s method=%s route=%s status=%d code=%s latency_us=%ld",
                     req_id, method, route, status, msg_code && *msg_code ? msg_code : "-",
                     latency_us);
    if (w > 0)
        n += (size_t)w < sizeof(line) - n ? (size_t)w : sizeof(line) - n - 1;
    log_write_line(line, n, sizeof(line));
}

void log_mask(const char *s, size_t keep, char *out, size_t cap)
{
    if (cap == 0)
        return;
    size_t n = s ? strlen(s) : 0;
    size_t i = 0;
    for (; i < n && i + 1 < cap; i++)
        out[i] = (i + keep < n) ? '*' : s[i];
    out[i] = '\0';
}
