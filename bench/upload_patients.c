/* upload_patients.c - the `patients` scenario of scripts/bench: uploads N
 * generated patients through POST /patients over C keep-alive connections,
 * each with one request in flight, and prints one line:
 *
 *   BENCH scenario=patients uploads=N seconds=S cards_per_s=R uploaded=U
 *         non2xx=X errors=E p50_us=.. p99_us=..
 *
 * Every patient is a new person with a valid ЕНП and SNILS of its own (made
 * from its number, so that runs are repeatable), spread over the МКОДs
 * given; one in ten carries an attachment.
 *
 *   upload_patients -u URL -a LOGIN:PASSWORD -m MCOD[,MCOD...] [-n N] [-c CONNS] [-s FIRST]
 *
 * -s numbers the patients from FIRST (default 0), so that a warm-up run and
 * the measured run upload different people. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ids.h"

#define MAX_MCODS 16

struct run {
    struct event_base *base;
    const char *host;
    int port;
    char auth[512];
    char hosthdr[300];
    char mcods[MAX_MCODS][8];
    int nmcods;
    long total, next, done, uploaded, non2xx, errors, shown;
    long first;          /* the number of the first patient */
    double *lat_us;
};

struct conn {
    struct run *run;
    struct evhttp_connection *c;
    double sent_us;
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void b64(const char *in, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n) v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

/* Patient i: names from its number in Cyrillic letters, ЕНП 9 + 14 digits
 * of i + Luhn, SNILS 2xxxxxxxx from i + its check number, passport series
 * "00 NN" and number from i: none of them meets bench/gen_patients' data
 * (ЕНП 99…, SNILS 98…, passport series not starting with 0), which the
 * tokens scenario loads first, so every upload is a new person. */
static int make_patient(const struct run *rn, long i, char *out, size_t cap)
{
    static const char *const letters[] = {"а", "б", "в", "г", "д", "е", "ж", "з", "и", "к",
                                          "л", "м", "н", "о", "п", "р", "с", "т", "у", "ф"};
    char fam[64] = "Нагрузка";
    long k = i;
    for (int j = 0; j < 6; j++, k /= 20)
        strcat(fam, letters[k % 20]);
    char enp[32];
    snprintf(enp, sizeof(enp), "9%014ld", i % 100000000000000L);
    enp[15] = (char)('0' + ids_luhn_digit(enp, 15));
    enp[16] = '\0';
    char d[24];
    snprintf(d, sizeof(d), "2%08ld", i % 100000000);
    int sum = 0;
    for (int j = 0; j < 9; j++)
        sum += (d[j] - '0') * (9 - j);
    int c = sum < 100 ? sum : (sum == 100 || sum == 101) ? 0 : (sum % 101 == 100 ? 0 : sum % 101);
    char att[96] = "";
    if (i % 10 == 0)
        snprintf(att, sizeof(att), ",\"attachment\":{\"date\":\"2020-01-%02ld\",\"area\":\"%ld\"}",
                 1 + i % 28, i % 40);
    return snprintf(out, cap,
        "{\"family\":\"%s\",\"name\":\"Иван\",\"patronymic\":\"Петрович\",\"birthday\":\"19%02ld-%02ld-%02ld\","
        "\"polis\":{\"type\":{\"code\":\"3\",\"name\":\"ОМС\"},\"series\":\"\",\"number\":\"%s\","
        "\"start\":\"2013-04-08\",\"end\":null,\"smo\":\"1024000000000\"},"
        "\"identityDocument\":{\"type\":{\"code\":\"14\",\"name\":\"Паспорт\"},\"series\":\"00 %02ld\","
        "\"number\":\"%06ld\",\"date\":\"2013-04-08\",\"issuedBy\":\"УФМС\"},"
        "\"mcod\":\"%s\",\"phone\":\"7999%07ld\",\"email\":null,\"gender\":\"%ld\","
        "\"snils\":\"%.3s-%.3s-%.3s %02u\",\"regAddress\":\"г. Орехово-Зуево\",\"isWorker\":true,"
        "\"bloodType\":\"%ld\",\"rh\":true,\"blackLabel\":false%s}",
        fam, 30 + i % 70, 1 + i % 12, 1 + i % 28, enp, (i / 1000000) % 100, i % 1000000,
        rn->mcods[i % rn->nmcods], i % 10000000, 1 + i % 2, d, d + 3, d + 6, (unsigned)c % 100, 1 + i % 4, att);
}

static void send_next(struct conn *k);

static void on_done(struct evhttp_request *req, void *arg)
{
    struct conn *k = arg;
    struct run *rn = k->run;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    if (code == 0) {
        rn->errors++;
    } else if (code < 200 || code > 299) {
        rn->non2xx++;
    } else {
        struct evbuffer *b = evhttp_request_get_input_buffer(req);
        size_t n = evbuffer_get_length(b);
        const char *p = n ? (const char *)evbuffer_pullup(b, -1) : "";
        if (n && memmem(p, n, "\"MkabStatus\":\"Uploaded\"", 23))
            rn->uploaded++;
        else if (rn->shown++ < 3)
            fprintf(stderr, "upload_patients: not uploaded: %.*s\n", (int)(n > 400 ? 400 : n), p);
    }
    rn->lat_us[rn->done++] = now_us() - k->sent_us;
    if (rn->done == rn->total)
        event_base_loopexit(rn->base, NULL);
    else
        send_next(k);
}

static void send_next(struct conn *k)
{
    struct run *rn = k->run;
    if (rn->next >= rn->total)
        return;
    long i = rn->first + rn->next++;
    char body[4096];
    int len = make_patient(rn, i, body, sizeof(body));
    struct evhttp_request *req = evhttp_request_new(on_done, k);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Host", rn->hosthdr);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Authorization", rn->auth);
    evbuffer_add(evhttp_request_get_output_buffer(req), body, (size_t)len);
    k->sent_us = now_us();
    if (evhttp_make_request(k->c, req, EVHTTP_REQ_POST, "/patients") != 0) {
        rn->errors++;
        rn->lat_us[rn->done++] = 0;
        if (rn->done == rn->total)
            event_base_loopexit(rn->base, NULL);
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    struct run rn = {0};
    const char *url = NULL, *cred = NULL, *mcods = NULL;
    int nconns = 64, opt;
    rn.total = 100000;
    while ((opt = getopt(argc, argv, "u:a:m:n:c:s:")) != -1) {
        switch (opt) {
        case 'u': url = optarg; break;
        case 'a': cred = optarg; break;
        case 'm': mcods = optarg; break;
        case 'n': rn.total = atol(optarg); break;
        case 'c': nconns = atoi(optarg); break;
        case 's': rn.first = atol(optarg); break;
        default: goto usage;
        }
    }
    if (!url || !cred || !mcods || rn.total <= 0 || nconns <= 0 || rn.first < 0 ||
        rn.first + rn.total > 100000000)
        goto usage;
    static char host[256];
    if (sscanf(url, "http://%255[^:]:%d", host, &rn.port) != 2)
        goto usage;
    rn.host = host;
    snprintf(rn.hosthdr, sizeof(rn.hosthdr), "%s:%d", host, rn.port);
    char enc[400];
    if (strlen(cred) > 290)
        goto usage;
    b64(cred, enc);
    snprintf(rn.auth, sizeof(rn.auth), "Basic %s", enc);
    char *list = strdup(mcods);
    for (char *s = strtok(list, ","); s && rn.nmcods < MAX_MCODS; s = strtok(NULL, ","))
        snprintf(rn.mcods[rn.nmcods++], sizeof(rn.mcods[0]), "%s", s);
    free(list);
    if (!rn.nmcods)
        goto usage;
    rn.lat_us = calloc((size_t)rn.total, sizeof(double));
    rn.base = event_base_new();
    struct conn *conns = calloc((size_t)nconns, sizeof(*conns));
    if (!rn.lat_us || !rn.base || !conns)
        return 1;
    double t0 = now_us();
    for (int i = 0; i < nconns; i++) {
        conns[i].run = &rn;
        conns[i].c = evhttp_connection_base_new(rn.base, NULL, rn.host, (unsigned short)rn.port);
        evhttp_connection_set_timeout(conns[i].c, 10);
        evhttp_connection_set_retries(conns[i].c, 2);
        send_next(&conns[i]);
    }
    event_base_dispatch(rn.base);
    double secs = (now_us() - t0) / 1e6;
    qsort(rn.lat_us, (size_t)rn.done, sizeof(double), cmp_d);
    double p50 = rn.done ? rn.lat_us[rn.done / 2] : 0;
    double p99 = rn.done ? rn.lat_us[(size_t)((double)rn.done * 0.99)] : 0;
    printf("BENCH scenario=patients uploads=%ld seconds=%.2f cards_per_s=%.1f uploaded=%ld non2xx=%ld "
           "errors=%ld p50_us=%.0f p99_us=%.0f\n",
           rn.done, secs, (double)rn.uploaded / secs, rn.uploaded, rn.non2xx, rn.errors, p50, p99);
    for (int i = 0; i < nconns; i++)
        evhttp_connection_free(conns[i].c);
    free(conns);
    free(rn.lat_us);
    event_base_free(rn.base);
    return 0;
usage:
    fprintf(stderr, "usage: upload_patients -u http://HOST:PORT -a LOGIN:PASSWORD -m MCOD[,MCOD...] "
                    "[-n N] [-c CONNECTIONS] [-s FIRST]\n");
    return 2;
}
