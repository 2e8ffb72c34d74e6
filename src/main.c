/* main.c - the command line: start-up and shutdown of the gateway, and the
 * administrative commands. Everything else lives in its module. */
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "config.h"
#include "errors.h"
#include "importer.h"
#include "log.h"
#include "migrate.h"
#include "hasher.h"
#include "misauth.h"
#include "users.h"
#include "worker.h"


static void usage(FILE *out)
{
    fprintf(out,
            "Usage: mipgw [-c FILE] [COMMAND]\n"
            "\n"
            "Commands:\n"
            "  serve            run the gateway in the foreground (the default)\n"
            "  migrate          apply the schema migrations and exit\n"
            "  import FILE      load a data set (etc/demo.json's layout) and exit\n"
            "  user add LOGIN --lpu MCOD [--lpu MCOD...]\n"
            "                   create an MIS login (password on standard input)\n"
            "  user list        list MIS logins, their state and LPUs\n"
            "  user disable LOGIN | user enable LOGIN\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE  configuration file (INI); settings also come from\n"
            "                     MIPGW_<SECTION>_<KEY> environment variables\n"
            "      --check-config load and validate the configuration, print it, exit\n"
            "      --help-config  list every setting with its variable and default\n"
            "      --list-errors  the error catalogue as Markdown (docs/errors.md)\n"
            "  -h, --help         this text\n"
            "  -V, --version      the version\n");
}

/* A wall of sockets: idle keep-alive clients must not run the process out
 * of descriptors before the read timeout drops them. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int serve(const struct config *cfg)
{
    char err[512];
    int n = cfg->http_workers;
    struct worker *workers = calloc((size_t)n, sizeof(*workers));
    if (!workers)
        return 1;

    int applied = migrate_run(cfg->pg_conninfo, err, sizeof(err));
    if (applied < 0)
        log_warn("migrations not applied at start: %s (the pool retries until the schema is there)", err);

    /* Signals go to this thread only: workers never see them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* After the mask: the hashing threads must not take signals either. */
    if (hasher_start(cfg, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return 1;
    }
    for (int i = 0; i < n; i++) {
        if (worker_init(&workers[i], i, cfg, err, sizeof(err)) != 0) {
            log_error("%s", err);
            return 1;
        }
    }
    for (int i = 0; i < n; i++) {
        if (worker_start(&workers[i]) != 0) {
            log_error("cannot start worker %d", i);
            return 1;
        }
    }
    log_info("mipgw %s listening on %s:%d with %d workers%s", PACKAGE_VERSION, cfg->http_listen,
             cfg->http_port, n, cfg->demo_mode ? " (demo mode)" : "");

    for (;;) {
        int sig = 0;
        sigwait(&set, &sig);
        if (sig == SIGHUP) {
            log_reopen();
            log_info("log reopened");
            continue;
        }
        log_info("signal %d: draining (up to %d ms)", sig, cfg->http_shutdown_grace_ms);
        break;
    }
    for (int i = 0; i < n; i++)
        worker_request_stop(&workers[i]);
    for (int i = 0; i < n; i++)
        worker_join(&workers[i]);
    hasher_stop();
    for (int i = 0; i < n; i++)
        worker_free(&workers[i]);
    free(workers);
    log_info("stopped");
    return 0;
}

/* What is wrong with the n arguments after cmd, or NULL: serve and
 * migrate take none, import one file; user checks its own. */
static const char *command_args_wrong(const char *cmd, int n, char *const *args)
{
    if (strcmp(cmd, "serve") == 0 || strcmp(cmd, "migrate") == 0)
        return n > 0 ? "takes no arguments" : NULL;
    if (strcmp(cmd, "import") == 0)
        return n != 1 || args[0][0] == '-' ? "takes one FILE" : NULL;
    return NULL;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'k'},
        {"help-config", no_argument, NULL, 'H'},
        {"list-errors", no_argument, NULL, 'E'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    bool check_only = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': path = optarg; break;
        case 'k': check_only = true; break;
        case 'H': config_help(stdout); return 0;
        case 'E': err_write_markdown(stdout); return 0;
        case 'h': usage(stdout); return 0;
        case 'V': printf("mipgw %s\n", PACKAGE_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    const char *cmd = optind < argc ? argv[optind] : "serve";
    /* What follows the command is its own (import: one file; user: its
     * words); an option there would be ignored, so it is an error: a
     * "migrate -c FILE" that migrated the default database instead. */
    const char *args_wrong = command_args_wrong(cmd, argc - optind - (optind < argc), argv + optind + 1);
    if (args_wrong) {
        fprintf(stderr, "mipgw: %s: %s (options go before the command)\n", cmd, args_wrong);
        usage(stderr);
        return 2;
    }

    static struct config cfg;
    char err[512];
    if (config_load(&cfg, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "mipgw: configuration: %s\n", err);
        return 2;
    }
    if (check_only) {
        config_dump(&cfg, stdout);
        return 0;
    }
    enum log_level level = LOG_INFO;
    log_parse_level(cfg.log_level, &level);
    /* The admin commands (migrate, import, user) answer on the terminal
     * that ran them: their errors in the service's log file would leave a
     * failing command silent (and a log file owned by whoever ran it). */
    const char *log_file = strcmp(cmd, "serve") == 0 ? cfg.log_file : "";
    if (log_open(log_file, level, cfg.log_access) != 0) {
        fprintf(stderr, "mipgw: cannot open log file %s\n", log_file);
        return 2;
    }
    /* Timestamps in answers are local to this zone; set once, before any
     * thread calls localtime_r. */
    setenv("TZ", cfg.time_zone, 1);
    tzset();

    if (strcmp(cmd, "migrate") == 0) {
        int n = migrate_run(cfg.pg_conninfo, err, sizeof(err));
        if (n < 0) {
            log_error("migrate: %s", err);
            return 1;
        }
        log_info("migrate: %d applied, schema up to date", n);
        return 0;
    }
    if (strcmp(cmd, "import") == 0) {
        if (importer_load_file(&cfg, argv[optind + 1], err, sizeof(err)) != 0) {
            log_error("import: %s", err);
            return 1;
        }
        return 0;
    }
    if (strcmp(cmd, "user") == 0)
        return users_main(&cfg, argc - optind, argv + optind);
    if (strcmp(cmd, "serve") != 0) {
        usage(stderr);
        return 2;
    }
    if (evthread_use_pthreads() != 0) {
        log_error("libevent without thread support");
        return 1;
    }
    raise_nofile();
    return serve(&cfg);
}
