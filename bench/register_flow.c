/* register_flow.c - the `register` scenario of scripts/bench: the whole
 * eHealth cabinet sign-up (issue 5) for N new patients over C concurrent
 * clients, each patient's three steps in turn:
 *
 *   POST /private/cabinet/user_requests               (Basic, the trusted client)
 *   POST /private/cabinet/verifications               (Basic), then the code is read
 *                                                      from the Redis sink list
 *   POST /private/cabinet/registration/user_request   (Bearer, seed 004's body)
 *
 * and prints one line:
 *
 *   BENCH scenario=register registrations=N seconds=S regs_per_s=R ok=K failed=F
 *         reg_p50_us=.. reg_p99_us=.. flow_p50_us=.. flow_p99_us=..
 *         hash_ms=H t_cost=T m_cost_kib=M hash_threads=X
 *
 * hash_ms is one argon2id hash at the cost the gateway runs with, measured
 * here on one core: the registration's floor, so that regs_per_s can be read
 * against hash_threads / hash_ms.
 *
 *   register_flow -p PORT -r REDIS_PORT -a LOGIN:PASSWORD [-n N] [-c CONNS] [-s FIRST]
 *
 * Patients are numbered from FIRST (default 0): tax id 2xxxxxxxxx and phone
 * +38093xxxxxxx from the number, so that a warm-up and the measured run
 * register different people. The gateway's configuration comes from the
 * environment (MIPGW_*), as the gateway's does, for the hash's cost. */
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "hasher.h"
#include "util.h"
#include "../tests/httpc.h"

struct run {
    int redis_port;
    char auth[512];             /* "Authorization: Basic ..." */
    long total, first;
    long next;                  /* under lock */
    long ok, failed;
    double *reg_us, *flow_us;   /* per patient; 0 when failed */
    pthread_mutex_t lock;
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static const char BODY[] =
    "{\"otp\":\"%s\",\"password\":\"Bench-Passw0rd-%ld\",\"patient\":{"
    "\"first_name\":\"Микола\",\"last_name\":\"Івченко\",\"second_name\":\"Степанович\","
    "\"birth_date\":\"1968-04-23\",\"birth_country\":\"Україна\",\"birth_settlement\":\"Чернігів\","
    "\"gender\":\"MALE\",\"tax_id\":\"%s\",\"unzr\":\"19680423-54321\","
    "\"addresses\":[{\"type\":\"RESIDENCE\",\"country\":\"UA\",\"area\":\"Житомирська\","
    "\"settlement\":\"Київ\",\"settlement_type\":\"CITY\","
    "\"settlement_id\":\"b075f148-7f63-4d5c-9a0b-3c2e8f1d6a54\",\"building\":\"15\",\"zip\":\"02090\"}],"
    "\"documents\":[{\"type\":\"PASSPORT\",\"number\":\"АА120518\",\"issued_by\":\"Рокитнянським РВ\","
    "\"issued_at\":\"2017-02-28\"}],"
    "\"phones\":[{\"type\":\"MOBILE\",\"number\":\"%s\"}],"
    "\"authentication_methods\":[{\"type\":\"OTP\",\"phone_number\":\"%s\"}],"
    "\"emergency_contact\":{\"first_name\":\"Петро\",\"last_name\":\"Іванов\","
    "\"phones\":[{\"type\":\"MOBILE\",\"number\":\"+380503410870\"}]},"
    "\"process_disclosure_data_consent\":true}}";

/* The value of "key":"..." in a JSON text (no escapes in what we look for). */
static bool json_field(const char *body, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = body ? strstr(body, pat) : NULL;
    if (!p)
        return false;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= cap)
        return false;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = '\0';
    return true;
}

/* The newest code the sink holds for phone; several clients share the list,
 * so the first few dozen entries are searched. */
static bool read_code(redisContext *rc, const char *phone, char code[5])
{
    redisReply *rep = redisCommand(rc, "LRANGE sms:sink 0 255");
    bool found = false;
    for (size_t i = 0; rep && rep->type == REDIS_REPLY_ARRAY && i < rep->elements && !found; i++) {
        const char *m = rep->element[i]->str;
        char p[32];
        if (m && json_field(m, "phone", p, sizeof(p)) && strcmp(p, phone) == 0) {
            const char *t = strstr(m, "eHealth: ");
            if (t && strlen(t) >= 9 + 4) {
                memcpy(code, t + 9, 4);
                code[4] = '\0';
                found = true;
            }
        }
    }
    if (rep)
        freeReplyObject(rep);
    return found;
}

static bool post_ok(const char *path, const char *auth, const char *body, int want, char *token,
                    size_t cap)
{
    const char *headers[] = {"Content-Type: application/json", auth, NULL};
    struct http_resp *r = http_request("POST", path, headers, body);
    bool ok = r->status == want && (!token || json_field(r->body, "token", token, cap));
    if (!ok && r->status != want)
        fprintf(stderr, "register_flow: %s answered %d: %.200s\n", path, r->status, r->body);
    http_free(r);
    return ok;
}

/* One patient's sign-up; the registration call's and the flow's time. */
static bool one(struct run *rn, redisContext *rc, long i, double *reg_us)
{
    char tax[16], phone[16], token[1024], body[4096], bearer[1100], code[5];
    long k = rn->first + i;
    snprintf(tax, sizeof(tax), "2%09ld", k % 1000000000);
    snprintf(phone, sizeof(phone), "+38093%07ld", k % 10000000);
    snprintf(body, sizeof(body),
             "{\"tax_id\":\"%s\",\"first_name\":\"Микола\",\"last_name\":\"Івченко\","
             "\"email\":\"p%ld@example.com\"}", tax, k);
    if (!post_ok("/private/cabinet/user_requests", rn->auth, body, 201, token, sizeof(token)))
        return false;
    snprintf(body, sizeof(body), "{\"phone_number\":\"%s\"}", phone);
    if (!post_ok("/private/cabinet/verifications", rn->auth, body, 201, NULL, 0))
        return false;
    if (!read_code(rc, phone, code)) {
        fprintf(stderr, "register_flow: no code for %s in the sink\n", phone);
        return false;
    }
    snprintf(body, sizeof(body), BODY, code, k, tax, phone, phone);
    snprintf(bearer, sizeof(bearer), "Authorization: Bearer %s", token);
    double t0 = now_us();
    bool ok = post_ok("/private/cabinet/registration/user_request", bearer, body, 201, NULL, 0);
    *reg_us = now_us() - t0;
    return ok;
}

static void *client(void *arg)
{
    struct run *rn = arg;
    redisContext *rc = redisConnect("127.0.0.1", rn->redis_port);
    if (!rc || rc->err) {
        fprintf(stderr, "register_flow: cannot reach Redis\n");
        exit(1);
    }
    for (;;) {
        pthread_mutex_lock(&rn->lock);
        long i = rn->next < rn->total ? rn->next++ : -1;
        pthread_mutex_unlock(&rn->lock);
        if (i < 0)
            break;
        double t0 = now_us(), reg = 0;
        bool ok = one(rn, rc, i, &reg);
        pthread_mutex_lock(&rn->lock);
        if (ok) {
            rn->reg_us[rn->ok] = reg;
            rn->flow_us[rn->ok] = now_us() - t0;
            rn->ok++;
        } else {
            rn->failed++;
        }
        pthread_mutex_unlock(&rn->lock);
    }
    redisFree(rc);
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, long n, double p)
{
    return n ? v[(long)((double)(n - 1) * p)] : 0;
}

int main(int argc, char **argv)
{
    struct run rn = {.total = 1000, .lock = PTHREAD_MUTEX_INITIALIZER};
    const char *auth = NULL, *port = NULL;
    int conns = 16, opt;
    while ((opt = getopt(argc, argv, "p:r:a:n:c:s:")) != -1) {
        switch (opt) {
        case 'p': port = optarg; break;
        case 'r': rn.redis_port = atoi(optarg); break;
        case 'a': auth = optarg; break;
        case 'n': rn.total = atol(optarg); break;
        case 'c': conns = atoi(optarg); break;
        case 's': rn.first = atol(optarg); break;
        default: goto usage;
        }
    }
    if (!port || !auth || rn.redis_port <= 0 || rn.total <= 0 || conns <= 0 || conns > 256)
        goto usage;
    char b64[400];
    util_b64url((const unsigned char *)auth, strlen(auth), b64);
    /* Basic wants the standard alphabet, padded. */
    for (char *p = b64; *p; p++)
        *p = *p == '-' ? '+' : *p == '_' ? '/' : *p;
    size_t n = strlen(b64);
    while (n % 4)
        b64[n++] = '=';
    b64[n] = '\0';
    snprintf(rn.auth, sizeof(rn.auth), "Authorization: Basic %s", b64);

    /* The hash's own cost, as the gateway is configured. */
    struct config cfg;
    char err[256];
    if (config_load(&cfg, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "register_flow: %s\n", err);
        return 1;
    }
    /* One hash first, untimed: the first of a process pays the page faults
     * of its memory, which the gateway's long-lived threads do not. */
    char enc[HASHER_ENCODED_MAX];
    hasher_hash(&cfg, "Bench-Passw0rd-cost", enc, sizeof(enc));
    double h0 = now_us();
    for (int i = 0; i < 10; i++)
        hasher_hash(&cfg, "Bench-Passw0rd-cost", enc, sizeof(enc));
    double hash_ms = (now_us() - h0) / 10 / 1000;
    /* httpc's target; set after the configuration read the environment. */
    setenv("MIPGW_TEST_HOST", "127.0.0.1", 1);
    setenv("MIPGW_TEST_PORT", port, 1);

    rn.reg_us = calloc((size_t)rn.total, sizeof(double));
    rn.flow_us = calloc((size_t)rn.total, sizeof(double));
    pthread_t *t = calloc((size_t)conns, sizeof(*t));
    double t0 = now_us();
    for (int i = 0; i < conns; i++)
        pthread_create(&t[i], NULL, client, &rn);
    for (int i = 0; i < conns; i++)
        pthread_join(t[i], NULL);
    double secs = (now_us() - t0) / 1e6;
    qsort(rn.reg_us, (size_t)rn.ok, sizeof(double), cmp_d);
    qsort(rn.flow_us, (size_t)rn.ok, sizeof(double), cmp_d);
    printf("BENCH scenario=register registrations=%ld seconds=%.2f regs_per_s=%.1f ok=%ld failed=%ld "
           "reg_p50_us=%.0f reg_p99_us=%.0f flow_p50_us=%.0f flow_p99_us=%.0f "
           "hash_ms=%.1f t_cost=%d m_cost_kib=%d hash_threads=%d\n",
           rn.total, secs, (double)rn.ok / secs, rn.ok, rn.failed, pct(rn.reg_us, rn.ok, 0.5),
           pct(rn.reg_us, rn.ok, 0.99), pct(rn.flow_us, rn.ok, 0.5), pct(rn.flow_us, rn.ok, 0.99),
           hash_ms, cfg.mis_hash_t_cost, cfg.mis_hash_m_cost_kib, cfg.mis_hash_threads);
    free(t);
    free(rn.reg_us);
    free(rn.flow_us);
    return rn.failed ? 1 : 0;
usage:
    fprintf(stderr, "usage: register_flow -p PORT -r REDIS_PORT -a LOGIN:PASSWORD [-n N] [-c CONNS] [-s FIRST]\n");
    return 2;
}
