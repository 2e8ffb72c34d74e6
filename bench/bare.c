/* bare.c - the benchmark's yardstick: the least an evhttp server can do.
 *
 * Built the way the gateway's reactor is built: N threads, each with its own
 * event_base and evhttp, all accepting on one port through their own
 * SO_REUSEPORT listening sockets, so the kernel spreads connections over the
 * threads. Every request, whatever its method or path, gets 200 with a fixed
 * JSON body about the size of a token answer. What the gateway does beyond
 * this (parsing, Redis, PostgreSQL, signing, JSON) is what the ratio between
 * the two measures.
 *
 *   bare [-p PORT] [-t THREADS]
 *
 * Listens on 127.0.0.1:PORT (default 8099); THREADS defaults to the number
 * of online cores. Stops on SIGINT or SIGTERM. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#define MAX_THREADS 256
#define BACKLOG 4096

/* About the size of a token answer: a JSON envelope around an HS256 JWT. */
static const char BODY[] =
    "{\"token\":\"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJQYXlsb2FkIjp7IlBlcnNvbkd1aWQiOlsiMDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAw"
    "MDAwMDAwMDAwIl19LCJUb2tlbkJlZ2luTGlmZVRpbWUiOiIyMDI1LTAxLTAxVDAwOjAwOjAw"
    "KzAzOjAwIiwiVG9rZW5FbmRMaWZlVGltZSI6IjIwMjUtMDEtMDFUMDE6MDA6MDArMDM6MDAi"
    "LCJsb2dpbiI6IiIsImF1dGhTb3VyY2UiOiJJbnRlcm5ldCIsInByaXZpbGVnZSI6ZmFsc2Us"
    "InRva2VuVHlwZSI6IkNvZFRva2VuIiwiaXNzIjoibWlwZ3ciLCJpYXQiOjB9."
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
    "\"tokenType\":\"CodToken\",\"expiresIn\":3600}";

struct worker {
    pthread_t thread;
    struct event_base *base;
    struct evhttp *http;
    int fd;
};

static struct worker workers[MAX_THREADS];
static int nworkers;

static void reply(struct evhttp_request *req, void *arg) {
    struct evbuffer *out = evhttp_request_get_output_buffer(req);

    (void)arg;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json");
    evbuffer_add_reference(out, BODY, sizeof(BODY) - 1, NULL, NULL);
    evhttp_send_reply(req, HTTP_OK, "OK", NULL);
}

static int listen_socket(int port) {
    struct sockaddr_in sa;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) return -1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto fail;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) goto fail;
    if (listen(fd, BACKLOG) < 0) goto fail;
    return fd;
fail: {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
}
}

static void *run(void *arg) {
    struct worker *w = arg;

    event_base_dispatch(w->base);
    return NULL;
}

static void usage(const char *argv0) {
    fprintf(stderr, "usage: %s [-p PORT] [-t THREADS]\n", argv0);
    exit(2);
}

int main(int argc, char **argv) {
    int port = 8099;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cores > 0 ? (int)cores : 1;
    int opt;
    sigset_t sigs;
    int sig;

    while ((opt = getopt(argc, argv, "p:t:h")) != -1) {
        switch (opt) {
        case 'p':
            port = atoi(optarg);
            if (port <= 0 || port > 65535) usage(argv[0]);
            break;
        case 't':
            threads = atoi(optarg);
            if (threads <= 0 || threads > MAX_THREADS) usage(argv[0]);
            break;
        default:
            usage(argv[0]);
        }
    }
    if (optind != argc) usage(argv[0]);

    /* The main thread waits for the signals; the workers never see them. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Locking bases, as the gateway's are, so that the main thread may stop
     * them with event_base_loopbreak. */
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "bare: evthread_use_pthreads failed\n");
        return 1;
    }

    nworkers = threads;
    for (int i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];

        w->fd = listen_socket(port);
        if (w->fd < 0) {
            fprintf(stderr, "bare: 127.0.0.1:%d: %s\n", port, strerror(errno));
            return 1;
        }
        /* The same loop set-up as the gateway's, so the ratio compares
         * the work per request and not the epoll flags. */
        struct event_config *ecfg = event_config_new();
        if (ecfg) {
            event_config_set_flag(ecfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
            w->base = event_base_new_with_config(ecfg);
            event_config_free(ecfg);
        }
        w->http = w->base ? evhttp_new(w->base) : NULL;
        if (!w->http) {
            fprintf(stderr, "bare: out of memory\n");
            return 1;
        }
        evhttp_set_allowed_methods(w->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
        evhttp_set_gencb(w->http, reply, NULL);
        if (!evhttp_accept_socket_with_handle(w->http, w->fd)) {
            fprintf(stderr, "bare: evhttp_accept_socket_with_handle failed\n");
            return 1;
        }
    }
    for (int i = 0; i < nworkers; i++) {
        if (pthread_create(&workers[i].thread, NULL, run, &workers[i]) != 0) {
            fprintf(stderr, "bare: pthread_create failed\n");
            return 1;
        }
    }
    fprintf(stderr, "bare: listening on 127.0.0.1:%d with %d thread(s)\n", port, nworkers);

    while (sigwait(&sigs, &sig) != 0)
        ;
    fprintf(stderr, "bare: signal %d, stopping\n", sig);
    for (int i = 0; i < nworkers; i++)
        event_base_loopbreak(workers[i].base);
    for (int i = 0; i < nworkers; i++) {
        pthread_join(workers[i].thread, NULL);
        evhttp_free(workers[i].http); /* closes the bound socket too */
        event_base_free(workers[i].base);
    }
    return 0;
}
