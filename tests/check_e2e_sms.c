/* check_e2e_sms.c - the cabinet's SMS webhook sender (issue 5), end to end:
 * a gateway of the test's own with ehealth.sms_sender = webhook pointed at
 * an HTTP server inside this test, which answers as each test scripts it
 * (fail first, fail always, never answer) and records what it was sent.
 * Run by tests/e2e.sh after the main suites. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "e2e_util.h"
#include "ehealth_schema.h"
#include "httpc.h"

#define HOOK_TIMEOUT_MS 300
#define HOOK_RETRIES 2
#define HOOK_HELD_MAX 8

/* The operator's SMS gateway, as a test scripts it. */
struct hook {
    int listen_fd;
    int port;
    pthread_t thread;
    pthread_mutex_t lock;
    volatile bool stop;
    int fail_first;              /* answer 500 to this many requests, then 200 */
    bool hang;                   /* read requests, never answer */
    bool trickle;                /* with hang: answer a byte every 50 ms, never finishing */
    int sent[HOOK_HELD_MAX];     /* bytes trickled to each held connection */
    int hits;                    /* requests read */
    char last_body[2048];
    char last_path[128];
    int held[HOOK_HELD_MAX];     /* connections left unanswered */
    int nheld;
};

static struct hook hook;

/* Reads one request: head and Content-Length bytes of body. */
static void hook_read(int fd, char *path, size_t pcap, char *body, size_t bcap)
{
    char buf[8192];
    size_t n = 0;
    char *end = NULL;
    while (n < sizeof(buf) - 1 && !end) {
        ssize_t k = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
        if (k <= 0)
            return;
        n += (size_t)k;
        buf[n] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    if (!end)
        return;
    const char *cl = strcasestr(buf, "Content-Length:");
    size_t want = cl ? (size_t)atol(cl + 15) : 0;
    size_t have = n - (size_t)(end + 4 - buf);
    while (have < want && n < sizeof(buf) - 1) {
        ssize_t k = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
        if (k <= 0)
            break;
        n += (size_t)k;
        have += (size_t)k;
    }
    buf[n] = '\0';
    sscanf(buf, "POST %127s", path);
    (void)pcap;
    snprintf(body, bcap, "%s", end + 4);
}

static void *hook_main(void *arg)
{
    (void)arg;
    static const char slow_head[] = "HTTP/1.1 200 OK\r\nX-Slow: ";
    while (!hook.stop) {
        struct pollfd p = {hook.listen_fd, POLLIN, 0};
        int ready = poll(&p, 1, 50);
        pthread_mutex_lock(&hook.lock);
        for (int i = 0; hook.trickle && i < hook.nheld; i++) {
            /* The status line and a header that never ends, well within
             * the gateway's idle timeout and its header limit. */
            int k = hook.sent[i]++;
            char b = k < (int)sizeof(slow_head) - 1 ? slow_head[k] : 'a';
            ssize_t w = send(hook.held[i], &b, 1, MSG_NOSIGNAL);
            (void)w;
        }
        pthread_mutex_unlock(&hook.lock);
        if (ready <= 0)
            continue;
        int fd = accept(hook.listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        char path[128] = "", body[2048] = "";
        hook_read(fd, path, sizeof(path), body, sizeof(body));
        pthread_mutex_lock(&hook.lock);
        hook.hits++;
        snprintf(hook.last_body, sizeof(hook.last_body), "%s", body);
        snprintf(hook.last_path, sizeof(hook.last_path), "%s", path);
        bool hang = hook.hang, fail = hook.hits <= hook.fail_first;
        if (hang && hook.nheld < HOOK_HELD_MAX) {
            hook.held[hook.nheld++] = fd;
            fd = -1;
        }
        pthread_mutex_unlock(&hook.lock);
        if (fd < 0)
            continue;
        const char *answer = fail ? "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                                    "Connection: close\r\n\r\n"
                                  : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        ssize_t w = send(fd, answer, strlen(answer), MSG_NOSIGNAL);
        (void)w;
        close(fd);
    }
    return NULL;
}

static void hook_start_as(int fail_first, bool hang, bool trickle)
{
    memset(&hook, 0, sizeof(hook));
    pthread_mutex_init(&hook.lock, NULL);
    hook.fail_first = fail_first;
    hook.hang = hang;
    hook.trickle = trickle;
    hook.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(hook.listen_fd, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(hook.listen_fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    socklen_t len = sizeof(sin);
    ck_assert_int_eq(getsockname(hook.listen_fd, (struct sockaddr *)&sin, &len), 0);
    hook.port = ntohs(sin.sin_port);
    ck_assert_int_eq(listen(hook.listen_fd, 16), 0);
    ck_assert_int_eq(pthread_create(&hook.thread, NULL, hook_main, NULL), 0);
}

static void hook_start(int fail_first, bool hang)
{
    hook_start_as(fail_first, hang, false);
}

static void hook_stop(void)
{
    hook.stop = true;
    pthread_join(hook.thread, NULL);
    for (int i = 0; i < hook.nheld; i++)
        close(hook.held[i]);
    close(hook.listen_fd);
}

static int hook_hits(void)
{
    pthread_mutex_lock(&hook.lock);
    int n = hook.hits;
    pthread_mutex_unlock(&hook.lock);
    return n;
}

/* A gateway whose SMS go to url. */
static int gw_with_webhook(const char *url, pid_t *pid)
{
    static char u[256];
    snprintf(u, sizeof(u), "MIPGW_EHEALTH_SMS_WEBHOOK_URL=%s", url);
    static char t[64], n[64];
    snprintf(t, sizeof(t), "MIPGW_EHEALTH_SMS_TIMEOUT_MS=%d", HOOK_TIMEOUT_MS);
    snprintf(n, sizeof(n), "MIPGW_EHEALTH_SMS_RETRIES=%d", HOOK_RETRIES);
    const char *settings[] = {"MIPGW_EHEALTH_SMS_SENDER=webhook", u, t, n, NULL};
    return gw_spawn(settings, pid);
}

/* A phone of this run and test. */
static void test_phone(int k, char out[16])
{
    snprintf(out, 16, "+38067%05d%02d", (int)(getpid() % 100000), k);
}

/* POST /private/cabinet/verifications as the demo's trusted client. */
static struct http_resp *ask_code(int port, const char *phone)
{
    char *auth = basic_header("cabinet", "Demo-Only-Secret-Cabinet");
    char body[64];
    snprintf(body, sizeof(body), "{\"phone_number\":\"%s\"}", phone);
    const char *headers[] = {"Content-Type: application/json", auth, NULL};
    struct http_resp *r = http_request_at(port, "POST", "/private/cabinet/verifications", headers, body);
    free(auth);
    return r;
}

/* A gateway whose webhook is http://127.0.0.1:port/path, asked for a code
 * for this test's phone k (into phone): the answer; *pid is the gateway's. */
static struct http_resp *code_through(int port, const char *path, int k, char phone[16], pid_t *pid)
{
    char url[96];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    int gw_port = gw_with_webhook(url, pid);
    test_phone(k, phone);
    return ask_code(gw_port, phone);
}

static void assert_eh_error(const struct http_resp *r, int status, const char *type)
{
    ck_assert_msg(r->status == status, "want %d, got %d: %s", status, r->status, show(r));
    yajl_val v = jbody(r, "eHealth error");
    yajl_val meta = jget(v, "meta"), err = jget(v, "error");
    ck_assert_msg(meta && err && jget(v, "Code") == NULL, "not the eHealth envelope: %s", show(r));
    ck_assert_str_eq(jstr(err, "type"), type);
    yajl_tree_free(v);
}

static void setup(void)
{
    spawned_reset();
}

static void teardown(void)
{
    spawned_kill_all();
}

/* One failed attempt (500), then a success: 201, and the operator got the
 * phone and the text with a Luhn-valid code, at the configured path. */
START_TEST(test_webhook_retries_then_sends)
{
    hook_start(1, false);
    char phone[16];
    pid_t pid;
    struct http_resp *r = code_through(hook.port, "/sms/send", 1, phone, &pid);
    int hits = hook_hits();
    hook_stop();
    ck_assert_msg(r->status == 201, "want 201, got %d: %s", r->status, show(r));
    ck_assert_int_eq(hits, 2);
    ck_assert_str_eq(hook.last_path, "/sms/send");
    yajl_val sms = jparse_str(hook.last_body);
    ck_assert_msg(sms != NULL, "the webhook got no JSON: %s", hook.last_body);
    ck_assert_str_eq(jstr(sms, "phone"), phone);
    const char *text = jstr(sms, "text");
    const char *prefix = "Код авторизації дій в системі eHealth: ";
    ck_assert_msg(text && strncmp(text, prefix, strlen(prefix)) == 0, "text: %s", text);
    const char *code = text + strlen(prefix);
    ck_assert_uint_eq(strlen(code), 4);
    ck_assert_msg(ehs_luhn_ok(code), "code %s fails its Luhn digit", code);
    /* The answer never carries the code. */
    ck_assert_ptr_null(strstr(r->body, code));
    yajl_tree_free(sms);
    http_free(r);
    ck_assert_int_eq(gw_stop(pid), 0);
}
END_TEST

/* Every attempt fails: 1 + retries attempts, then 503 sms_not_sent. */
START_TEST(test_webhook_gives_up)
{
    hook_start(1000, false);
    char phone[16];
    pid_t pid;
    struct http_resp *r = code_through(hook.port, "/sms", 2, phone, &pid);
    int hits = hook_hits();
    hook_stop();
    assert_eh_error(r, 503, "sms_not_sent");
    ck_assert_int_eq(hits, 1 + HOOK_RETRIES);
    http_free(r);
    ck_assert_int_eq(gw_stop(pid), 0);
}
END_TEST

/* An operator that never finishes an answer (trickle: it sends a byte
 * every 50 ms, each of which restarts libevent's idle timeout): each
 * attempt ends at its whole deadline, and the client has its 503 within
 * the attempts' deadlines and pauses. */
static void assert_gives_up_at_deadlines(bool trickle, int k)
{
    hook_start_as(0, true, trickle);
    char phone[16];
    pid_t pid;
    struct http_resp *r = code_through(hook.port, "/sms", k, phone, &pid);
    int hits = hook_hits();
    double elapsed = r->elapsed_ms;
    hook_stop();
    assert_eh_error(r, 503, "sms_not_sent");
    ck_assert_int_eq(hits, 1 + HOOK_RETRIES);
    /* 3 deadlines of 300 ms, pauses of 200 and 400 ms. */
    ck_assert_msg(elapsed >= 3 * HOOK_TIMEOUT_MS, "gave up after %.0f ms, before the deadlines", elapsed);
    ck_assert_msg(elapsed < 3 * HOOK_TIMEOUT_MS + 600 + 1500, "took %.0f ms", elapsed);
    http_free(r);
    ck_assert_int_eq(gw_stop(pid), 0);
}

START_TEST(test_webhook_deadline)
{
    assert_gives_up_at_deadlines(false, 3);
}
END_TEST

START_TEST(test_webhook_trickle)
{
    assert_gives_up_at_deadlines(true, 5);
}
END_TEST

/* An address no connection can go to (broadcast: refused inside the
 * connect call): each attempt fails at once, and the client has its 503
 * after the pauses alone, not after a deadline per attempt. */
START_TEST(test_webhook_fails_at_once)
{
    char phone[16];
    pid_t pid;
    char url[64];
    snprintf(url, sizeof(url), "http://255.255.255.255:9/sms");
    int gw_port = gw_with_webhook(url, &pid);
    test_phone(6, phone);
    struct http_resp *r = ask_code(gw_port, phone);
    assert_eh_error(r, 503, "sms_not_sent");
    /* Pauses of 200 and 400 ms; a deadline each would add 900. */
    ck_assert_msg(r->elapsed_ms < 600 + 500, "took %.0f ms", r->elapsed_ms);
    http_free(r);
    ck_assert_int_eq(gw_stop(pid), 0);
}
END_TEST

/* Nothing listens there: refused at once, each attempt, then 503. */
START_TEST(test_webhook_refused)
{
    char phone[16];
    pid_t pid;
    struct http_resp *r = code_through(free_port(), "/sms", 4, phone, &pid);
    assert_eh_error(r, 503, "sms_not_sent");
    ck_assert_msg(r->elapsed_ms < 3000, "took %.0f ms", r->elapsed_ms);
    http_free(r);
    ck_assert_int_eq(gw_stop(pid), 0);
}
END_TEST

static Suite *sms_suite(void)
{
    Suite *s = suite_create("e2e_sms");
    TCase *tc = tcase_create("webhook");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_webhook_retries_then_sends);
    tcase_add_test(tc, test_webhook_gives_up);
    tcase_add_test(tc, test_webhook_deadline);
    tcase_add_test(tc, test_webhook_trickle);
    tcase_add_test(tc, test_webhook_fails_at_once);
    tcase_add_test(tc, test_webhook_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(sms_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
