/* check_contention.c - never one cell twice, under contention, through nginx
 * across two gateway processes (issue 4, "Tests and figures").
 *
 * Runs under tests/contention.sh, which starts scripts/cluster and passes:
 *   MIPGW_TEST_HOST, MIPGW_TEST_PORT    nginx
 *   MIPGW_TEST_PG_CONNINFO              the cluster's PostgreSQL
 *   MIPGW_TEST_REDIS_PORT               its Redis
 *   MIPGW_TEST_MIS_LOGIN, _PASSWORD     an MIS login for LPU 470102
 *   MIPGW_TEST_KILL_PID                 the gateway the second test kills
 *   MIPGW_TEST_LOCK_TTL_MS              the gateways' booking.lock_ttl_ms
 *
 * A storm is 200 bookings of one cell by 200 different patients, all new
 * (POST /patients, then an RPGU token each), at the same moment: every
 * connection is opened first, then every request is sent but its last byte,
 * then the last bytes, and only then are answers read. nginx forwards a
 * request only once it has all of it, so the 200 reach the gateways
 * together. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "e2e_util.h"
#include "httpc.h"
#include "ids.h"

#define LPU_GUID "c3c977af-c3b4-4517-9d57-50a6844ec660"
#define LPU_MCOD "470102"
#define RES_GUID "19ebd6d6-2bbf-45c1-a8fb-2c7747f3beb3" /* therapist, no age or sex limits */

#define STORM 200       /* patients per cell */
#define CELLS 20        /* storms with both gateways up */
#define KILL_CELLS 6    /* storms of the kill test... */
#define KILL_AT 1       /* ...the gateway dies during this one (0-based) */
#define IO_TIMEOUT_MS 30000

/* ---- many requests at once over non-blocking sockets ---- */

struct call {
    char *req;
    size_t len, sent;
    int fd;
    bool connected, eof;
    int err;            /* errno of a failed connect, send or receive */
    char *in;
    size_t in_len, in_cap;
    struct http_resp *resp;
};

static void call_fail(struct call *c, int err)
{
    c->err = err;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void call_read(struct call *c)
{
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            c->in_cap = c->in_cap * 2 + 8192;
            c->in = realloc(c->in, c->in_cap);
            ck_assert_ptr_nonnull(c->in);
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            continue;
        }
        if (n == 0) {
            c->eof = true;
            close(c->fd);
            c->fd = -1;
        } else if (errno != EAGAIN && errno != EINTR) {
            call_fail(c, errno);
        }
        return;
    }
}

/* What the phase waits for on each call: connected, sent all but `hold`
 * bytes, or the answer read to the connection's end. */
enum phase { CONNECT, SEND, RECV };

static bool call_done(const struct call *c, enum phase ph, size_t hold)
{
    if (c->fd < 0)
        return true;
    switch (ph) {
    case CONNECT: return c->connected;
    case SEND: return c->sent >= c->len - hold;
    case RECV: return c->eof;
    }
    return true;
}

static void call_step(struct call *c, enum phase ph, size_t hold)
{
    if (ph == CONNECT) {
        int err = 0;
        socklen_t l = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err)
            call_fail(c, err);
        else
            c->connected = true;
    } else if (ph == SEND) {
        ssize_t n = send(c->fd, c->req + c->sent, c->len - hold - c->sent, MSG_NOSIGNAL);
        if (n > 0)
            c->sent += (size_t)n;
        else if (n < 0 && errno != EAGAIN && errno != EINTR)
            call_fail(c, errno);
    } else {
        call_read(c);
    }
}

/* A gateway to kill during a storm: the moment the cell's lock shows in
 * Redis (a booking of it is then being written, by one gateway or the
 * other), or else when the first answer starts to arrive. */
struct killer {
    pid_t pid;              /* 0 once killed */
    redisContext *redis;
    const char *lock_key;
    bool saw_lock;
};

static bool killer_due(struct killer *k, const struct call *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c[i].in_len > 0)
            return true;
    redisReply *rep = redisCommand(k->redis, "EXISTS %s", k->lock_key);
    k->saw_lock = rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
    freeReplyObject(rep);
    return k->saw_lock;
}

/* Drives every call through one phase; while a killer waits, without
 * blocking, so that Redis is watched between reads. */
static void pump(struct call *c, size_t n, enum phase ph, size_t hold, struct killer *k)
{
    struct pollfd *p = calloc(n, sizeof(*p));
    size_t *idx = calloc(n, sizeof(*idx));
    ck_assert(p && idx);
    short ev = ph == RECV ? POLLIN : POLLOUT;
    double deadline = mono_ms() + IO_TIMEOUT_MS;
    for (;;) {
        size_t m = 0;
        if (k && k->pid > 0 && killer_due(k, c, n)) {
            ck_assert_msg(kill(k->pid, SIGKILL) == 0, "kill -9 %d: %s", (int)k->pid,
                          strerror(errno));
            k->pid = 0;
        }
        for (size_t i = 0; i < n; i++) {
            if (call_done(&c[i], ph, hold))
                continue;
            p[m].fd = c[i].fd;
            p[m].events = ev;
            p[m].revents = 0;
            idx[m++] = i;
        }
        if (m == 0)
            break;
        int left = (int)(deadline - mono_ms());
        if (left <= 0) {
            for (size_t j = 0; j < m; j++)
                call_fail(&c[idx[j]], ETIMEDOUT);
            break;
        }
        int r = poll(p, m, k && k->pid > 0 ? 0 : left);
        ck_assert_msg(r >= 0 || errno == EINTR, "poll: %s", strerror(errno));
        for (size_t j = 0; r > 0 && j < m; j++)
            if (p[j].revents)
                call_step(&c[idx[j]], ph, hold);
    }
    free(p);
    free(idx);
}

/* Sends every call's request at once (see the top) and reads the answers
 * into c[i].resp: status 0 for a connection that ended without one. */
static void run_calls(struct call *c, size_t n, struct killer *k)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_default_port())};
    ck_assert(inet_pton(AF_INET, env("MIPGW_TEST_HOST"), &sin.sin_addr) == 1);
    for (size_t i = 0; i < n; i++) {
        c[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ck_assert_msg(c[i].fd >= 0, "socket: %s", strerror(errno));
        int one = 1;
        setsockopt(c[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(c[i].fd, (struct sockaddr *)&sin, sizeof(sin)) == 0)
            c[i].connected = true;
        else if (errno != EINPROGRESS)
            call_fail(&c[i], errno);
    }
    pump(c, n, CONNECT, 0, NULL);
    pump(c, n, SEND, 1, NULL);
    pump(c, n, SEND, 0, NULL);
    pump(c, n, RECV, 0, k);
    for (size_t i = 0; i < n; i++) {
        c[i].resp = http_parse(c[i].in ? c[i].in : "", c[i].in_len);
        if (c[i].resp->closed)
            c[i].resp->status = 0; /* a cut answer counts as none */
    }
}

static void calls_free(struct call *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(c[i].req);
        free(c[i].in);
        http_free(c[i].resp);
    }
    memset(c, 0, n * sizeof(*c));
}

static char *request(const char *method, const char *path, const char *auth, const char *body)
{
    if (!body)
        return xasprintf("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n\r\n",
                         method, path, auth);
    return xasprintf("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     method, path, auth, strlen(body), body);
}

/* ---- patients ---- */

struct patient {
    char enp[17], bday[11];
    char person[37];
    char *token;
};

/* New patients of LPU 470102, each with a unique ЕНП and unique names (so
 * that the upload's look-up by names and birthday finds no one either),
 * and an RPGU token each. Uploaded and identified STORM at a time. */
static void new_patients(struct patient *pt, size_t n)
{
    static unsigned serial;
    static struct call c[STORM];
    /* Unique across runs against one database too: the time in the ЕНП. */
    static long salt = -1;
    if (salt < 0)
        salt = (long)(time(NULL) % 1000000);
    char *auth = basic_header(env("MIPGW_TEST_MIS_LOGIN"), env("MIPGW_TEST_MIS_PASSWORD"));

    for (size_t i = 0; i < n; i++) {
        struct patient *p = &pt[i];
        unsigned s = ++serial;
        char payload[16];
        snprintf(payload, sizeof(payload), "79%06ld%07u", salt, s);
        snprintf(p->enp, sizeof(p->enp), "%s%d", payload, ids_luhn_digit(payload, 15));
        time_t t = (time_t)(s % 15000) * 86400 - 25L * 365 * 86400; /* 1945 to 1986 */
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(p->bday, sizeof(p->bday), "%Y-%m-%d", &tm);
        /* The ЕНП's payload spelt in letters: a patronymic nobody else has. */
        static const char *const abc[] = {"а", "б", "в", "г", "д", "е", "ж", "з", "и", "к"};
        char patr[128] = "Штормович";
        for (const char *d = payload + 2; *d; d++)
            strcat(patr, abc[*d - '0']);
        p->person[0] = '\0';
        p->token = NULL;
        char *body = xasprintf("{\"Family\":\"Очередин\",\"Name\":\"Пациент\",\"Patronymic\":\"%s\","
                               "\"Birthday\":\"%s\",\"Polis\":{\"number\":\"%s\"},\"Mcod\":\"" LPU_MCOD
                               "\",\"Phone\":\"7999%07u\",\"Gender\":%d}",
                               patr, p->bday, p->enp, s % 10000000u, 1 + (int)(s % 2));
        c[i % STORM].req = request("POST", "/patients", auth, body);
        c[i % STORM].len = strlen(c[i % STORM].req);
        free(body);
        if ((i + 1) % STORM != 0 && i + 1 != n)
            continue;
        size_t first = i - i % STORM, m = i % STORM + 1;
        run_calls(c, m, NULL);
        for (size_t k = 0; k < m; k++) {
            struct http_resp *r = c[k].resp;
            ck_assert_msg(r->status == 200, "POST /patients: status %d: %s", r->status, show(r));
            yajl_val v = jbody(r, "POST /patients");
            const char *st = jstr(v, "MkabStatus"), *pg = jstr(v, "PersonGuid");
            ck_assert_msg(st && strcmp(st, "Uploaded") == 0 && is_guid(pg), "POST /patients: %s",
                          show(r));
            memcpy(pt[first + k].person, pg, 37);
            yajl_tree_free(v);
        }
        calls_free(c, m);
        for (size_t k = 0; k < m; k++) {
            char *path = qpath("/auth/rpgu/token", "n_pol", pt[first + k].enp, "birthday",
                               pt[first + k].bday, NULL);
            c[k].req = request("GET", path, "Accept: application/json", NULL);
            c[k].len = strlen(c[k].req);
            free(path);
        }
        run_calls(c, m, NULL);
        for (size_t k = 0; k < m; k++) {
            struct http_resp *r = c[k].resp;
            ck_assert_msg(r->status == 200, "RPGU token: status %d: %s", r->status, show(r));
            yajl_val v = jbody(r, "RPGU token");
            ck_assert_ptr_nonnull(jstr(v, "token"));
            pt[first + k].token = strdup(jstr(v, "token"));
            yajl_tree_free(v);
        }
        calls_free(c, m);
    }
    free(auth);
}

static void patients_free(struct patient *pt, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(pt[i].token);
}

/* ---- cells, bookings, locks ---- */

struct cell {
    char guid[37], day[11], time[6];
    char lock_key[128];     /* cell:lock:<resource>:<begin epoch s> */
};

/* The first n free future cells of the therapist that the internet may
 * book, from PostgreSQL; day and time are Moscow's, as the entry takes them. */
static void free_cells(struct cell *cl, int n)
{
    char lim[16];
    snprintf(lim, sizeof(lim), "%d", n);
    const char *params[] = {RES_GUID, lim};
    PGresult *res = pg_exec(
        "SELECT c.guid, to_char(c.begin_at AT TIME ZONE 'Europe/Moscow', 'YYYY-MM-DD'),"
        "       to_char(c.begin_at AT TIME ZONE 'Europe/Moscow', 'HH24:MI'),"
        "       extract(epoch FROM c.begin_at)::bigint"
        "  FROM cells c"
        " WHERE c.resource_guid = $1 AND c.begin_at > now() + interval '1 hour'"
        "   AND c.busy_type = 1 AND 'Internet' = ANY (c.access)"
        "   AND NOT EXISTS (SELECT FROM bookings b WHERE b.cell_guid = c.guid)"
        " ORDER BY c.begin_at LIMIT $2::int",
        2, params);
    ck_assert_msg(PQntuples(res) == n, "%d free cells of resource " RES_GUID ", want %d",
                  PQntuples(res), n);
    for (int i = 0; i < n; i++) {
        snprintf(cl[i].guid, sizeof(cl[i].guid), "%s", PQgetvalue(res, i, 0));
        snprintf(cl[i].day, sizeof(cl[i].day), "%s", PQgetvalue(res, i, 1));
        snprintf(cl[i].time, sizeof(cl[i].time), "%s", PQgetvalue(res, i, 2));
        snprintf(cl[i].lock_key, sizeof(cl[i].lock_key), "cell:lock:" RES_GUID ":%s",
                 PQgetvalue(res, i, 3));
    }
    PQclear(res);
}

/* What one storm's answers were. */
struct tally {
    int ok, taken, bad_gateway, dropped, other;
    int winner;             /* the call that got 200, or -1 */
    char booking[37];       /* the winner's booking guid, from Entry_id */
    char first_other[200];  /* the first unexpected answer, for the message */
};

static void storm(const struct cell *cl, struct patient *pt, struct killer *k, struct call *c,
                  struct tally *t)
{
    memset(t, 0, sizeof(*t));
    t->winner = -1;
    char *body = xasprintf("{\"lpu_code\":\"" LPU_MCOD "\",\"doctor_id\":\"" LPU_GUID RES_GUID
                           "\",\"day\":\"%s\",\"time\":\"%s\"}",
                           cl->day, cl->time);
    for (int i = 0; i < STORM; i++) {
        char *auth = xasprintf("Authorization: Bearer %s", pt[i].token);
        c[i].req = request("POST", "/api/v2/iemk/doctors/entry", auth, body);
        c[i].len = strlen(c[i].req);
        free(auth);
    }
    free(body);
    if (k)
        k->lock_key = cl->lock_key;
    run_calls(c, STORM, k);
    for (int i = 0; i < STORM; i++) {
        struct http_resp *r = c[i].resp;
        yajl_val v = r->status == 200 || r->status == 400 ? jparse_str(r->body) : NULL;
        const char *code = jstr(v, "Message_code"), *entry = jstr(v, "Entry_id");
        if (r->status == 200 && entry && strlen(entry) == 72 && strncmp(entry, LPU_GUID, 36) == 0 &&
            is_guid(entry + 36)) {
            if (t->ok++ == 0) {
                t->winner = i;
                memcpy(t->booking, entry + 36, 37);
            }
        } else if (r->status == 400 && code && strcmp(code, "4009") == 0) {
            t->taken++;
        } else if (r->status == 502) {
            t->bad_gateway++;
        } else if (r->status == 0) {
            t->dropped++;
        } else if (t->other++ == 0) {
            snprintf(t->first_other, sizeof(t->first_other), "%d %s", r->status, show(r));
        }
        yajl_tree_free(v);
    }
}

static const char *tally_str(const struct tally *t)
{
    static char buf[400];
    snprintf(buf, sizeof(buf), "200: %d, 4009: %d, 502: %d, dropped: %d, other: %d%s%.200s", t->ok,
             t->taken, t->bad_gateway, t->dropped, t->other, t->other ? "; first: " : "",
             t->first_other);
    return buf;
}

/* The cell's bookings that hold it (status active). */
static PGresult *active_bookings(const struct cell *cl)
{
    const char *params[] = {cl->guid};
    return pg_exec("SELECT guid, person_guid FROM bookings WHERE cell_guid = $1 AND status = 'active'",
                   1, params);
}

/* Every 200 has its row, for its patient; a row without a 200 belongs to a
 * patient whose connection was dropped or who got nginx's 502. */
static void check_rows(const struct cell *cl, const struct patient *pt, const struct call *c,
                       const struct tally *t, int storm_no)
{
    PGresult *res = active_bookings(cl);
    int rows = PQntuples(res);
    ck_assert_msg(rows <= 1, "storm %d, cell %s: %d active bookings (%s)", storm_no, cl->guid, rows,
                  tally_str(t));
    if (t->ok) {
        ck_assert_msg(rows == 1, "storm %d, cell %s: 200 for booking %s, but no active row (%s)",
                      storm_no, cl->guid, t->booking, tally_str(t));
        ck_assert_msg(strcmp(PQgetvalue(res, 0, 0), t->booking) == 0 &&
                          strcmp(PQgetvalue(res, 0, 1), pt[t->winner].person) == 0,
                      "storm %d, cell %s: the row is booking %s of %s, the 200 said %s of %s",
                      storm_no, cl->guid, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), t->booking,
                      pt[t->winner].person);
    } else if (rows == 1) {
        int who = -1;
        for (int i = 0; i < STORM; i++)
            if (strcmp(pt[i].person, PQgetvalue(res, 0, 1)) == 0)
                who = i;
        ck_assert_msg(who >= 0, "storm %d, cell %s: a row for %s, who is none of the storm's",
                      storm_no, cl->guid, PQgetvalue(res, 0, 1));
        ck_assert_msg(c[who].resp->status == 0 || c[who].resp->status == 502,
                      "storm %d, cell %s: booked for patient %d, who was answered %d: %s", storm_no,
                      cl->guid, who, c[who].resp->status, show(c[who].resp));
    }
    PQclear(res);
}

static redisContext *redis(void)
{
    struct timeval tv = {2, 0};
    redisContext *r = redisConnectWithTimeout("127.0.0.1", atoi(env("MIPGW_TEST_REDIS_PORT")), tv);
    ck_assert_msg(r && !r->err, "Redis: %s", r ? r->errstr : "out of memory");
    return r;
}

/* The keys matching pattern (KEYS: a test's Redis is small). */
static size_t redis_count(const char *pattern, char *first, size_t first_len)
{
    redisContext *rc = redis();
    redisReply *rep = redisCommand(rc, "KEYS %s", pattern);
    ck_assert_msg(rep && rep->type == REDIS_REPLY_ARRAY, "KEYS %s failed", pattern);
    size_t n = rep->elements;
    if (n && first)
        snprintf(first, first_len, "%s", rep->element[0]->str);
    freeReplyObject(rep);
    redisFree(rc);
    return n;
}

/* True while pid runs; a zombie (killed, not yet reaped by whoever
 * inherited it) counts as gone. */
static bool alive(pid_t pid)
{
    char path[64], stat[512];
    if (kill(pid, 0) != 0)
        return false;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(stat, 1, sizeof(stat) - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *p = strrchr(stat, ')');
    return !(p && p[1] == ' ' && p[2] == 'Z');
}

/* ---- the tests ---- */

static struct call calls[STORM];

/* Both gateways up: in every storm exactly one 200 and 199 × 4009, and
 * exactly one active booking, the winner's. */
START_TEST(storm_per_cell)
{
    struct cell cl[CELLS];
    free_cells(cl, CELLS);
    static struct patient pt[STORM];
    double t0 = mono_ms(), storm_ms = 0;
    for (int s = 0; s < CELLS; s++) {
        new_patients(pt, STORM);
        struct tally t;
        double ts = mono_ms();
        storm(&cl[s], pt, NULL, calls, &t);
        storm_ms += mono_ms() - ts;
        ck_assert_msg(t.ok == 1 && t.taken == STORM - 1,
                      "storm %d, cell %s %s %s: want 200: 1, 4009: %d; got %s", s, cl[s].guid,
                      cl[s].day, cl[s].time, STORM - 1, tally_str(&t));
        check_rows(&cl[s], pt, calls, &t, s);
        calls_free(calls, STORM);
        patients_free(pt, STORM);
    }
    printf("contention: %d storms of %d, both gateways: %.0f ms in all, %.0f ms of them storms\n",
           CELLS, STORM, mono_ms() - t0, storm_ms);
}
END_TEST

/* One gateway killed (kill -9) during a storm. Every 200 has its row, a row
 * without a 200 is a dropped or 502'd client's; storms before and after the
 * kill are as exact as with both up; once the lock's lifetime has passed no
 * lock is left, and a cell nobody got is bookable while one with a row is
 * not. */
START_TEST(storm_with_kill)
{
    pid_t victim = (pid_t)atoi(env("MIPGW_TEST_KILL_PID"));
    int ttl_ms = atoi(env("MIPGW_TEST_LOCK_TTL_MS"));
    ck_assert_msg(victim > 0 && alive(victim), "gateway %d is not running", (int)victim);
    struct cell cl[KILL_CELLS];
    free_cells(cl, KILL_CELLS);
    static struct patient pt[STORM];
    struct tally t[KILL_CELLS];
    for (int s = 0; s < KILL_CELLS; s++) {
        new_patients(pt, STORM);
        struct killer k = {.pid = victim, .redis = redis()};
        storm(&cl[s], pt, s == KILL_AT ? &k : NULL, calls, &t[s]);
        redisFree(k.redis);
        printf("contention: storm %d%s: %s\n", s,
               s != KILL_AT ? ""
               : k.saw_lock ? " (gateway killed while the cell was locked)"
                            : " (gateway killed at the first answer)",
               tally_str(&t[s]));
        if (s == KILL_AT) {
            ck_assert_msg(t[s].other == 0 && t[s].ok <= 1,
                          "storm %d (the kill), cell %s: %s", s, cl[s].guid, tally_str(&t[s]));
            ck_assert_msg(!alive(victim), "gateway %d survived kill -9", (int)victim);
        } else {
            ck_assert_msg(t[s].ok == 1 && t[s].taken == STORM - 1,
                          "storm %d, cell %s: want 200: 1, 4009: %d; got %s", s, cl[s].guid,
                          STORM - 1, tally_str(&t[s]));
        }
        check_rows(&cl[s], pt, calls, &t[s], s);
        calls_free(calls, STORM);
        patients_free(pt, STORM);
    }

    /* Past the lock's lifetime (and then some for a loaded machine), the
     * dead gateway's locks have expired and the live one's were released. */
    sleep_ms(ttl_ms + 500);
    char key[256] = "";
    size_t locks = redis_count("cell:lock:*", key, sizeof(key));
    ck_assert_msg(locks == 0, "%zu cell locks left %d ms after the storms, e.g. %s", locks,
                  ttl_ms + 500, key);

    /* Each cell once more, by a new patient: free only where no row holds it. */
    struct patient late[KILL_CELLS];
    new_patients(late, KILL_CELLS);
    for (int s = 0; s < KILL_CELLS; s++) {
        PGresult *res = active_bookings(&cl[s]);
        int rows = PQntuples(res);
        PQclear(res);
        char *body = xasprintf("{\"lpu_code\":\"" LPU_MCOD "\",\"doctor_id\":\"" LPU_GUID RES_GUID
                               "\",\"day\":\"%s\",\"time\":\"%s\"}",
                               cl[s].day, cl[s].time);
        char *auth = xasprintf("Authorization: Bearer %s", late[s].token);
        struct http_resp *r = post_json("/api/v2/iemk/doctors/entry", auth, body);
        if (t[s].ok == 0)
            printf("contention: storm %d's cell: no 200, %s\n", s,
                   rows ? "booked by a client that got no answer; 4009 to a new patient"
                        : "not booked; booked by a new patient after the lock's lifetime");
        if (rows == 0) {
            ck_assert_msg(r->status == 200, "cell %s (storm %d, nobody's) after the lock's lifetime: "
                          "%d %s", cl[s].guid, s, r->status, show(r));
            res = active_bookings(&cl[s]);
            ck_assert_msg(PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 1), late[s].person) == 0,
                          "cell %s: booked late, but no active row of the patient", cl[s].guid);
            PQclear(res);
        } else {
            assert_error(r, 400, "4009",
                         "Это время уже занято. Выберите другое свободное время приема.",
                         "a booked cell, once more");
        }
        http_free(r);
        free(auth);
        free(body);
    }
    patients_free(late, KILL_CELLS);
}
END_TEST

/* nginx in front refuses a body over the gateways' http.max_body_size
 * itself: with the МИП body, and under /private/cabinet/ with the eHealth
 * envelope (the gateway's own answer there when it is reached directly is
 * libevent's page, which has no hook: docs/api.md). */
START_TEST(front_too_large)
{
    size_t n = 1100 * 1024;
    char *big = malloc(n + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', n);
    big[n] = '\0';
    const char *h[] = {"Content-Type: application/json", NULL};
    struct http_resp *r = http_request("POST", "/private/cabinet/registration/user_request", h, big);
    ck_assert_msg(r->status == 413, "cabinet: %d %s", r->status, show(r));
    yajl_val v = jbody(r, "cabinet 413");
    ck_assert_str_eq(jstr(jget(v, "error"), "type"), "request_too_large");
    ck_assert_ptr_nonnull(jget(v, "meta"));
    yajl_tree_free(v);
    http_free(r);
    r = http_request("POST", "/patients", h, big);
    assert_error(r, 413, "4113", NULL, "МИП 413 through nginx");
    http_free(r);
    free(big);
}
END_TEST

static Suite *contention_suite(void)
{
    Suite *s = suite_create("contention");
    TCase *front = tcase_create("front");
    tcase_add_test(front, front_too_large);
    suite_add_tcase(s, front);
    TCase *tc = tcase_create("storms");
    /* The kill test comes second: it leaves one gateway. */
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, storm_per_cell);
    tcase_add_test(tc, storm_with_kill);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* Progress lines reach the log even from a test that fails. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    SRunner *sr = srunner_create(contention_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
