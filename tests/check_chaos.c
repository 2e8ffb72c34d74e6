/* check_chaos.c - the load and the verdict of scripts/chaos (issue 6).
 *
 * Booking load through nginx from CHAOS_THREADS clients for CHAOS_DURATION_S
 * while scripts/chaos injects faults (Redis killed, PostgreSQL restarted or
 * stalled, a gateway killed). Every request and its answer is recorded
 * (CHAOS_RECORD, one line each); afterwards the promises are checked from
 * PostgreSQL, Redis and the record, and every breach fails the test:
 *   - no cell has more than one active booking; no referral is used twice;
 *   - every 200 has its booking row; every booking row of the run has a 200,
 *     unless its client saw no answer, a 502 (its gateway died) or a 5xx
 *     after which the outcome is unknown: those are counted and printed;
 *   - every answer is the catalogue's: 200, a 4xx of the booking's codes,
 *     or 500/502/503 with the МИП standard body; never a hang past
 *     CHAOS_CLIENT_TIMEOUT_MS;
 *   - no Redis lock outlives booking.lock_ttl_ms: sampled every 500 ms
 *     during the run (a lock without expiry, or with more left than its
 *     lifetime, is a breach), and none is left CHAOS_LOCK_TTL_MS after it.
 *
 * Inputs (scripts/chaos): MIPGW_TEST_HOST/PORT (nginx), MIPGW_TEST_PG_CONNINFO,
 * MIPGW_TEST_REDIS_PORT, CHAOS_TOKENS ("person_guid token" a line, a
 * patient each), CHAOS_CELLS ("cell_guid lpu_code doctor_id day time" a
 * line; the first CHAOS_HOT are the contended ones), CHAOS_RECORD, CHAOS_DURATION_S,
 * CHAOS_THREADS, CHAOS_LOCK_TTL_MS, CHAOS_CLIENT_TIMEOUT_MS, CHAOS_LPU (the
 * run's LPU guid, to find its bookings), CHAOS_REFERRALS ("person cod_token
 * referral lpu resource" a line: a tenth of the requests book by referral,
 * seed 002, each referral's cells contending for it). */
#include <check.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "e2e_util.h"
#include "httpc.h"

#define CHAOS_MAX_THREADS 64
#define CHAOS_HOT_SHARE 10      /* percent of requests that go to the hot cells */
#define CHAOS_REFERRAL_SHARE 10 /* percent that book by a referral (seed 002) */

struct cellref {
    char guid[37], lpu_code[16], doctor_id[80], day[11], time[6];
};

struct patient {
    char person[37];
    char *token;
};

/* A referral of a patient to one resource, booked with a COD token. */
struct referral {
    char person[37], guid[37], lpu[37], resource[37];
    char *token;
    int *cells;                 /* indexes of the resource's cells */
    int ncells;
};

/* One request as the client saw it. */
struct rec {
    double at_ms;               /* since the start */
    double elapsed_ms;
    int patient, cell;
    int status;                 /* 0: no answer */
    char code[8];               /* Message_code, "" for 200 */
    char booking[37];           /* from a 200's Entry_id */
    char kind;                  /* o 200, r refused (4xx), e 5xx, d dropped, h hang, x not the catalogue's */
};

static struct {
    struct patient *patients;
    int npatients;
    struct cellref *cells;
    int ncells, hot;
    struct referral *referrals;
    int nreferrals;
    double t0, end_ms;
    int client_timeout_ms, lock_ttl_ms;
    pthread_mutex_t lock;
    struct rec *recs;
    size_t nrecs, cap;
    volatile int lock_breaches, lock_samples;
    volatile bool stop;
} run = {.lock = PTHREAD_MUTEX_INITIALIZER};

static char **read_lines(const char *path, int *n)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    char **v = NULL, line[4096];
    int cap = 0;
    *n = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0])
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            v = realloc(v, (size_t)cap * sizeof(*v));
        }
        v[(*n)++] = strdup(line);
    }
    fclose(f);
    return v;
}

static int env_int(const char *name)
{
    return atoi(env(name));
}

static void record(const struct rec *r)
{
    pthread_mutex_lock(&run.lock);
    if (run.nrecs == run.cap) {
        run.cap = run.cap ? run.cap * 2 : 4096;
        run.recs = realloc(run.recs, run.cap * sizeof(*run.recs));
    }
    run.recs[run.nrecs++] = *r;
    pthread_mutex_unlock(&run.lock);
}

/* The answer judged: a 200 with its Entry_id, or the МИП standard body. */
static void judge(struct rec *rc, const struct http_resp *r)
{
    rc->status = r->status;
    if (r->status == 0) {
        rc->kind = r->timed_out && rc->elapsed_ms >= run.client_timeout_ms ? 'h' : 'd';
        return;
    }
    yajl_val v = jparse_str(r->body);
    if (r->status == 200) {
        /* Seed 001 answers Entry_id (LPU and booking), seed 002 the ticket. */
        const char *e = v ? jstr(v, "Entry_id") : NULL, *t = v ? jstr(v, "ticketGuid") : NULL;
        rc->kind = (e && strlen(e) == 72) || (t && strlen(t) == 36) ? 'o' : 'x';
        if (rc->kind == 'o')
            snprintf(rc->booking, sizeof(rc->booking), "%s", e ? e + 36 : t);
    } else {
        yajl_val code = v ? jget(v, "Code") : NULL;
        const char *mc = v ? jstr(v, "Message_code") : NULL;
        bool standard = code && YAJL_IS_INTEGER(code) && YAJL_GET_INTEGER(code) == r->status &&
                        mc && jstr(v, "Message") && strlen(mc) == 4;
        if (standard)
            snprintf(rc->code, sizeof(rc->code), "%s", mc);
        if (!standard)
            rc->kind = 'x';
        else if (r->status >= 400 && r->status < 500)
            rc->kind = 'r';
        else if (r->status == 500 || r->status == 502 || r->status == 503)
            rc->kind = 'e';
        else
            rc->kind = 'x';
    }
    if (v)
        yajl_tree_free(v);
}

/* The patient that a referral's person is, for the record's matching. */
static int patient_of(const char *person)
{
    for (int i = 0; i < run.npatients; i++)
        if (strcmp(run.patients[i].person, person) == 0)
            return i;
    return 0;
}

/* One booking by a referral (seed 002), for a random cell of its resource;
 * a referral serves one active booking, so its several cells contend. */
static void by_referral(unsigned *seed)
{
    const struct referral *f = &run.referrals[rand_r(seed) % (unsigned)run.nreferrals];
    if (f->ncells == 0)
        return;
    struct rec rc = {0};
    rc.patient = patient_of(f->person);
    rc.cell = f->cells[rand_r(seed) % (unsigned)f->ncells];
    const struct cellref *c = &run.cells[rc.cell];
    char path[128], body[512], auth[4200];
    snprintf(path, sizeof(path), "/api/v2/directions/visit/%s", f->lpu);
    snprintf(body, sizeof(body),
             "{\"date\":\"%s\",\"time\":\"%s\",\"directionGuid\":\"%s\",\"lpuGuid\":\"%s\","
             "\"resourceGuid\":\"%s\"}", c->day, c->time, f->guid, f->lpu, f->resource);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", f->token);
    const char *h[] = {"Content-Type: application/json", auth, NULL};
    double t = mono_ms();
    rc.at_ms = t - run.t0;
    struct http_resp *r = http_request("POST", path, h, body);
    rc.elapsed_ms = mono_ms() - t;
    judge(&rc, r);
    http_free(r);
    record(&rc);
}

static void *client(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u;
    while (!run.stop && mono_ms() < run.end_ms) {
        struct rec rc = {0};
        if (run.nreferrals > 0 && (int)(rand_r(&seed) % 100) < CHAOS_REFERRAL_SHARE) {
            by_referral(&seed);
            continue;
        }
        rc.patient = (int)(rand_r(&seed) % (unsigned)run.npatients);
        bool hot = run.hot > 0 && (int)(rand_r(&seed) % 100) < CHAOS_HOT_SHARE;
        rc.cell = hot ? (int)(rand_r(&seed) % (unsigned)run.hot)
                      : run.hot + (int)(rand_r(&seed) % (unsigned)(run.ncells - run.hot));
        const struct cellref *c = &run.cells[rc.cell];
        char body[512], auth[4200];
        snprintf(body, sizeof(body),
                 "{\"lpu_code\":\"%s\",\"doctor_id\":\"%s\",\"day\":\"%s\",\"time\":\"%s\"}",
                 c->lpu_code, c->doctor_id, c->day, c->time);
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", run.patients[rc.patient].token);
        const char *h[] = {"Content-Type: application/json", auth, NULL};
        double t = mono_ms();
        rc.at_ms = t - run.t0;
        struct http_resp *r = http_request("POST", "/api/v2/iemk/doctors/entry", h, body);
        rc.elapsed_ms = mono_ms() - t;
        judge(&rc, r);
        http_free(r);
        record(&rc);
    }
    return NULL;
}

/* Every 500 ms: each cell lock's time to live, which must be set and no
 * longer than its lifetime. Redis away: no sample. */
static void *lock_sampler(void *arg)
{
    (void)arg;
    int port = env_int("MIPGW_TEST_REDIS_PORT");
    while (!run.stop) {
        struct timeval tv = {0, 300000};
        redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);
        if (rc && !rc->err) {
            redisSetTimeout(rc, tv);
            redisReply *keys = redisCommand(rc, "KEYS cell:lock:*");
            for (size_t i = 0; keys && keys->type == REDIS_REPLY_ARRAY && i < keys->elements; i++) {
                redisReply *ttl = redisCommand(rc, "PTTL %s", keys->element[i]->str);
                if (ttl && ttl->type == REDIS_REPLY_INTEGER &&
                    (ttl->integer == -1 || ttl->integer > run.lock_ttl_ms)) {
                    fprintf(stderr, "chaos: BREACH: lock %s has %lld ms to live\n",
                            keys->element[i]->str, ttl->integer);
                    run.lock_breaches++;
                }
                if (ttl)
                    freeReplyObject(ttl);
            }
            if (keys)
                freeReplyObject(keys);
            run.lock_samples++;
        }
        if (rc)
            redisFree(rc);
        sleep_ms(500);
    }
    return NULL;
}

static long sql_count(const char *sql, const char *param)
{
    const char *p[] = {param};
    char *v = pg_value(sql, param ? 1 : 0, p);
    long n = v ? atol(v) : -1;
    free(v);
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(chaos_run)
{
    int nlines;
    char **lines = read_lines(env("CHAOS_TOKENS"), &nlines);
    run.patients = calloc((size_t)nlines, sizeof(*run.patients));
    for (int i = 0; i < nlines; i++) {
        struct patient *p = &run.patients[run.npatients];
        char *sp = strchr(lines[i], ' ');
        if (sp && sp - lines[i] == 36) {
            memcpy(p->person, lines[i], 36);
            p->token = strdup(sp + 1);
            run.npatients++;
        }
        free(lines[i]);
    }
    free(lines);
    lines = read_lines(env("CHAOS_CELLS"), &nlines);
    run.cells = calloc((size_t)nlines, sizeof(*run.cells));
    for (int i = 0; i < nlines; i++) {
        struct cellref *c = &run.cells[run.ncells];
        if (sscanf(lines[i], "%36s %15s %79s %10s %5s", c->guid, c->lpu_code, c->doctor_id, c->day,
                   c->time) == 5)
            run.ncells++;
        free(lines[i]);
    }
    free(lines);
    /* Referrals: "person cod_token referral lpu resource" a line (optional). */
    const char *rf = getenv("CHAOS_REFERRALS");
    if (rf && *rf) {
        lines = read_lines(rf, &nlines);
        run.referrals = calloc((size_t)nlines, sizeof(*run.referrals));
        for (int i = 0; i < nlines; i++) {
            struct referral *f = &run.referrals[run.nreferrals];
            char tok[4096];
            if (sscanf(lines[i], "%36s %4095s %36s %36s %36s", f->person, tok, f->guid, f->lpu,
                       f->resource) == 5) {
                f->token = strdup(tok);
                f->cells = calloc((size_t)run.ncells, sizeof(int));
                for (int k = 0; k < run.ncells; k++)
                    if (strcmp(run.cells[k].doctor_id + 36, f->resource) == 0)
                        f->cells[f->ncells++] = k;
                run.nreferrals++;
            }
            free(lines[i]);
        }
        free(lines);
    }
    run.hot = env_int("CHAOS_HOT");
    int threads = env_int("CHAOS_THREADS");
    run.client_timeout_ms = env_int("CHAOS_CLIENT_TIMEOUT_MS");
    run.lock_ttl_ms = env_int("CHAOS_LOCK_TTL_MS");
    ck_assert(run.npatients > 0 && run.ncells > run.hot && threads > 0 && threads <= CHAOS_MAX_THREADS);
    run.t0 = mono_ms();
    run.end_ms = run.t0 + 1000.0 * env_int("CHAOS_DURATION_S");

    pthread_t t[CHAOS_MAX_THREADS], sampler;
    pthread_create(&sampler, NULL, lock_sampler, NULL);
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, client, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    run.stop = true;
    pthread_join(sampler, NULL);

    /* The record. */
    FILE *f = fopen(env("CHAOS_RECORD"), "w");
    ck_assert_ptr_nonnull(f);
    long by_kind[128] = {0}, ok = 0, taken = 0;
    for (size_t i = 0; i < run.nrecs; i++) {
        const struct rec *r = &run.recs[i];
        fprintf(f, "%.0f %.1f %d %d %d %s %s %c\n", r->at_ms, r->elapsed_ms, r->patient, r->cell,
                r->status, r->code[0] ? r->code : "-", r->booking[0] ? r->booking : "-", r->kind);
        by_kind[(unsigned char)r->kind]++;
        ok += r->kind == 'o';
        taken += strcmp(r->code, "4009") == 0;
    }
    fclose(f);

    /* What PostgreSQL holds. */
    const char *lpu = env("CHAOS_LPU");
    long multi = sql_count("SELECT count(*) FROM (SELECT cell_guid FROM bookings WHERE status <> 'cancelled'"
                           " GROUP BY cell_guid HAVING count(*) > 1) x", NULL);
    long referrals = sql_count("SELECT count(*) FROM (SELECT referral_guid FROM bookings"
                               " WHERE status <> 'cancelled' AND referral_guid IS NOT NULL"
                               " GROUP BY referral_guid HAVING count(*) > 1) x", NULL);
    /* Every 200's booking exists; every booking of the run's LPU has a 200,
     * or a request of its patient for its cell whose outcome the client
     * could not know (no answer, or a 5xx: the commit may have come
     * before the failure). */
    PGresult *rows = pg_exec("SELECT b.guid::text, b.person_guid::text, b.cell_guid::text FROM bookings b"
                             " JOIN cells c ON c.guid = b.cell_guid"
                             " JOIN resources r ON r.guid = c.resource_guid WHERE r.lpu_guid = $1::uuid"
                             " ORDER BY 1", 1, &lpu);
    int nrows = PQntuples(rows);
    char **have = calloc((size_t)nrows + 1, sizeof(char *));
    for (int i = 0; i < nrows; i++)
        have[i] = PQgetvalue(rows, i, 0);
    char **said = calloc((size_t)ok + 1, sizeof(char *));
    long ns = 0;
    for (size_t i = 0; i < run.nrecs; i++)
        if (run.recs[i].kind == 'o')
            said[ns++] = run.recs[i].booking;
    qsort(said, (size_t)ns, sizeof(char *), cmp_str);
    long missing = 0, unanswered = 0, unexplained = 0;
    for (long i = 0; i < ns; i++)
        if (!bsearch(&said[i], have, (size_t)nrows, sizeof(char *), cmp_str)) {
            fprintf(stderr, "chaos: BREACH: a 200 named booking %s, which PostgreSQL lacks\n", said[i]);
            missing++;
        }
    for (int i = 0; i < nrows; i++) {
        if (bsearch(&have[i], said, (size_t)ns, sizeof(char *), cmp_str))
            continue;
        unanswered++;
        const char *person = PQgetvalue(rows, i, 1), *cell = PQgetvalue(rows, i, 2);
        bool explained = false;
        for (size_t j = 0; j < run.nrecs && !explained; j++) {
            const struct rec *r = &run.recs[j];
            explained = (r->kind == 'd' || r->kind == 'e') &&
                        strcmp(run.patients[r->patient].person, person) == 0 &&
                        strcmp(run.cells[r->cell].guid, cell) == 0;
        }
        if (!explained) {
            fprintf(stderr, "chaos: BREACH: booking %s has neither a 200 nor an unknown outcome\n",
                    have[i]);
            unexplained++;
        }
    }
    long unknown = by_kind['d'] + by_kind['e'];
    free(have);
    free(said);
    PQclear(rows);

    /* No lock left once every lock's lifetime has passed. */
    sleep_ms(run.lock_ttl_ms + 1000);
    redisContext *rc = redisConnect("127.0.0.1", env_int("MIPGW_TEST_REDIS_PORT"));
    long left = -1;
    if (rc && !rc->err) {
        redisReply *k = redisCommand(rc, "KEYS cell:lock:*");
        left = k && k->type == REDIS_REPLY_ARRAY ? (long)k->elements : -1;
        if (k)
            freeReplyObject(k);
    }
    if (rc)
        redisFree(rc);

    printf("CHAOS attempts=%zu ok=%ld taken_4009=%ld refused=%ld errors_5xx=%ld dropped=%ld hangs=%ld "
           "not_catalogue=%ld bookings=%d bookings_without_200=%ld unknown_outcomes=%ld "
           "lock_samples=%d lock_breaches=%d locks_left=%ld double_cells=%ld double_referrals=%ld "
           "missing_rows=%ld unexplained_rows=%ld\n",
           run.nrecs, ok, taken, by_kind['r'], by_kind['e'], by_kind['d'], by_kind['h'], by_kind['x'],
           nrows, unanswered, unknown, run.lock_samples, run.lock_breaches, left, multi, referrals,
           missing, unexplained);
    /* Answers by status and code. */
    printf("CHAOS answers:");
    for (size_t i = 0; i < run.nrecs; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = run.recs[j].status == run.recs[i].status && strcmp(run.recs[j].code, run.recs[i].code) == 0;
        if (seen)
            continue;
        long n = 0;
        for (size_t j = i; j < run.nrecs; j++)
            n += run.recs[j].status == run.recs[i].status && strcmp(run.recs[j].code, run.recs[i].code) == 0;
        printf(" %d/%s=%ld", run.recs[i].status, run.recs[i].code[0] ? run.recs[i].code : "-", n);
    }
    printf("\n");
    fflush(stdout);

    ck_assert_msg(run.nrecs > 0 && ok > 0, "no booking succeeded");
    ck_assert_msg(multi == 0, "%ld cells with more than one active booking", multi);
    ck_assert_msg(referrals == 0, "%ld referrals used twice", referrals);
    ck_assert_msg(missing == 0, "%ld 200s without their booking row", missing);
    ck_assert_msg(unexplained == 0, "%ld booking rows without a 200 or an unknown outcome", unexplained);
    ck_assert_msg(by_kind['h'] == 0, "%ld requests hung past %d ms", by_kind['h'], run.client_timeout_ms);
    ck_assert_msg(by_kind['x'] == 0, "%ld answers not from the catalogue", by_kind['x']);
    ck_assert_msg(run.lock_breaches == 0, "%d locks outlived their lifetime", run.lock_breaches);
    ck_assert_msg(left == 0, "%ld locks left after their lifetime (or Redis unreachable: -1)", left);
}
END_TEST

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    Suite *s = suite_create("chaos");
    TCase *tc = tcase_create("run");
    tcase_set_timeout(tc, (double)atoi(getenv("CHAOS_DURATION_S") ? getenv("CHAOS_DURATION_S") : "300") + 120);
    tcase_add_test(tc, chaos_run);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
