/* stallproxy.c - a TCP proxy that can stall, for scripts/chaos and the
 * end-to-end tests: it sits between the gateways and a store and forwards
 * bytes both ways, except while a control file exists:
 *   - empty, it forwards nothing and accepts nothing (what a server that has
 *     stopped answering looks like from the client's side: connections
 *     open, no bytes);
 *   - holding "swallow PREFIX", it forwards everything but the target's
 *     reads that begin with PREFIX, which it drops (a server that ran a
 *     command and whose answer never came: "swallow :" drops a Redis
 *     integer reply read on its own);
 *   - holding "drop PREFIX", the same with the client's reads (a command
 *     that never reached the server).
 *
 *   stallproxy LISTEN_PORT TARGET_PORT CONTROL_FILE
 *
 * Both ports are on 127.0.0.1. One thread, poll(2); a connection's two
 * sockets are closed together when either side closes. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROXY_MAX_PAIRS 512
#define PROXY_BUF 65536
#define PROXY_TICK_MS 20

struct pair {
    int fd[2];               /* 0: the client's, 1: the target's; -1: free */
};

static struct pair pairs[PROXY_MAX_PAIRS];

static int connect_target(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void pair_close(struct pair *p)
{
    for (int k = 0; k < 2; k++) {
        if (p->fd[k] >= 0)
            close(p->fd[k]);
        p->fd[k] = -1;
    }
}

/* What the control file asks for besides a stall: "swallow PREFIX" (the
 * target's reads) or "drop PREFIX" (the client's), PREFIX with the escapes
 * \r and \n; dir 1 or 0, prefix "" when it asks for neither. */
static void read_control(const char *control, int *dir, char *prefix, size_t cap)
{
    prefix[0] = '\0';
    FILE *f = fopen(control, "r");
    if (!f)
        return;
    char line[64];
    if (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        const char *p = strncmp(line, "swallow ", 8) == 0 ? line + 8
                        : strncmp(line, "drop ", 5) == 0  ? line + 5
                                                          : NULL;
        size_t n = 0;
        for (; p && *p && n + 1 < cap; p++) {  /* the escapes \r and \n */
            if (p[0] == '\\' && (p[1] == 'r' || p[1] == 'n')) {
                prefix[n++] = *++p == 'r' ? '\r' : '\n';
                continue;
            }
            prefix[n++] = *p;
        }
        prefix[n] = '\0';
        *dir = line[0] == 's' ? 1 : 0;
    }
    fclose(f);
}

/* Moves what is readable on from to to; false when the pair is done. The
 * target's socket is blocking-free enough for a proxy of a test: a short
 * write is finished before going on. A read that begins with drop (when
 * not NULL) is dropped. */
static bool pump(int from, int to, const char *drop)
{
    char buf[PROXY_BUF];
    ssize_t n = read(from, buf, sizeof(buf));
    if (n <= 0)
        return n < 0 && (errno == EAGAIN || errno == EINTR);
    if (drop && *drop && (size_t)n >= strlen(drop) && memcmp(buf, drop, strlen(drop)) == 0)
        return true;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        off += w;
    }
    return true;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: stallproxy LISTEN_PORT TARGET_PORT CONTROL_FILE\n");
        return 2;
    }
    int lport = atoi(argv[1]), tport = atoi(argv[2]);
    const char *control = argv[3];
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < PROXY_MAX_PAIRS; i++)
        pairs[i].fd[0] = pairs[i].fd[1] = -1;

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)lport),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(lfd, 128) != 0) {
        perror("stallproxy: listen");
        return 1;
    }

    static struct pollfd pfd[1 + 2 * PROXY_MAX_PAIRS];
    static int who[1 + 2 * PROXY_MAX_PAIRS];
    for (;;) {
        struct stat st;
        char drop[64] = "";
        int drop_dir = 1;
        bool stalled = stat(control, &st) == 0;
        if (stalled) {
            read_control(control, &drop_dir, drop, sizeof(drop));
            stalled = drop[0] == '\0';
        }
        int n = 0;
        if (!stalled) {
            pfd[n] = (struct pollfd){lfd, POLLIN, 0};
            who[n++] = -1;
            for (int i = 0; i < PROXY_MAX_PAIRS; i++) {
                for (int k = 0; k < 2 && pairs[i].fd[0] >= 0; k++) {
                    pfd[n] = (struct pollfd){pairs[i].fd[k], POLLIN, 0};
                    who[n++] = i * 2 + k;
                }
            }
        }
        /* Stalled: poll nothing, only sleep and look at the file again. */
        int rc = poll(pfd, (nfds_t)n, PROXY_TICK_MS);
        if (rc <= 0)
            continue;
        for (int j = 0; j < n; j++) {
            if (!pfd[j].revents)
                continue;
            if (who[j] < 0) {
                int cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (cfd < 0)
                    continue;
                int tfd = connect_target(tport);
                int slot = -1;
                for (int i = 0; i < PROXY_MAX_PAIRS && slot < 0; i++)
                    if (pairs[i].fd[0] < 0)
                        slot = i;
                if (tfd < 0 || slot < 0) {
                    close(cfd);
                    if (tfd >= 0)
                        close(tfd);
                    continue;
                }
                pairs[slot].fd[0] = cfd;
                pairs[slot].fd[1] = tfd;
                continue;
            }
            struct pair *p = &pairs[who[j] / 2];
            int k = who[j] % 2;
            if (p->fd[0] >= 0 && !pump(p->fd[k], p->fd[1 - k], k == drop_dir ? drop : NULL))
                pair_close(p);
        }
    }
}
