/* otp.c - see otp.h. Lua scripts keep each step one round trip and atomic
 * across gateways: issuing counts the request and replaces the code;
 * checking reads expiry and attempts, spends an attempt on a wrong code and
 * claims a right one for its sign-up; consuming deletes a claimed code. */
#include "otp.h"

#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ehealth_schema.h"
#include "log.h"
#include "redis.h"
#include "util.h"
#include "worker.h"

#define OTP_KEY_MAX 64
#define OTP_MAC_HEX 65
/* A code's key outlives its validity by this much, so that a late try is
 * told "expired" rather than "invalid". */
#define OTP_KEEP_MS 3600000

/* KEYS code, rate; ARGV mac, ttl ms, attempts, keep ms, window s, max.
 * Answers 0 rate-limited, 1 stored. */
static struct redis_script issue_script = {
    "local n = redis.call('INCR', KEYS[2])\n"
    "if n == 1 then redis.call('EXPIRE', KEYS[2], ARGV[5]) end\n"
    "if n > tonumber(ARGV[6]) then return 0 end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('HSET', KEYS[1], 'h', ARGV[1], 'exp', string.format('%d', now + tonumber(ARGV[2])),"
    " 'left', ARGV[3])\n"
    "redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + tonumber(ARGV[4]))\n"
    "return 1\n",
    ""};

/* KEYS code; ARGV mac, claimant's mac, "1" to claim a right code (else
 * only check it). Answers 0 none, 1 right, 2 wrong (an attempt spent), 3
 * expired, 4 no attempts left, 5 right but claimed by another person. A
 * right code is claimed by the first person whose sign-up is about to be
 * written with it: the same person may show it again (a registration
 * refused later is retried, maybe with a new UserRequest), another may
 * not. */
static struct redis_script check_script = {
    "local v = redis.call('HMGET', KEYS[1], 'h', 'exp', 'left', 'by')\n"
    "if not v[1] then return 0 end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "if now >= tonumber(v[2]) then return 3 end\n"
    "local left = tonumber(v[3])\n"
    "if left <= 0 then return 4 end\n"
    "if v[1] == ARGV[1] then\n"
    "  if v[4] and v[4] ~= ARGV[2] then return 5 end\n"
    "  if ARGV[3] == '1' and not v[4] then redis.call('HSET', KEYS[1], 'by', ARGV[2]) end\n"
    "  return 1\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'left', left - 1)\n"
    "return 2\n",
    ""};

/* KEYS code; ARGV claimant's mac. Deletes the code only if that claimant
 * holds it: a newer code for the phone has no claim yet and stays. */
static struct redis_script consume_script = {
    "if redis.call('HGET', KEYS[1], 'by') == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n",
    ""};

static pthread_once_t scripts_once = PTHREAD_ONCE_INIT;

static void otp_scripts_init(void)
{
    redis_script_init(&issue_script);
    redis_script_init(&check_script);
    redis_script_init(&consume_script);
}

struct otp_call {
    struct req *r;
    otp_cb cb;
    void *arg;
    bool issuing;
};

const char *otp_verdict_message(enum otp_verdict v)
{
    switch (v) {
    case OTP_EXPIRED: return "Verification code expired";
    case OTP_EXHAUSTED: return "Maximum attempts exceed";
    default: return "Invalid verification code";
    }
}

/* HMAC-SHA256(cabinet key, a ":" b) in hex. Of phone and code, it binds
 * the code to its phone, and nobody without the key can test guesses
 * against a copy; of "claim" and a tax id, it is the claimant kept beside
 * a code, so that Redis holds no tax id. */
static void otp_mac(const struct token_keys *keys, const char *a, const char *b, char out[OTP_MAC_HEX])
{
    char msg[96];
    int n = snprintf(msg, sizeof(msg), "%s:%s", a, b);
    if (n < 0 || (size_t)n >= sizeof(msg))
        n = (int)sizeof(msg) - 1;   /* never read past the buffer (inputs are validated shorter) */
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), keys->cabinet, (int)keys->cabinet_len, (const unsigned char *)msg, (size_t)n, mac,
         &len);
    util_hex(mac, 32, out);
    explicit_bzero(msg, sizeof(msg));
}

static void otp_on_reply(const redisReply *reply, enum store_status st, void *arg)
{
    struct otp_call *c = arg;
    if (st != STORE_OK || reply->type != REDIS_REPLY_INTEGER) {
        c->cb(c->r, OTP_STORE_FAILED, st == STORE_OK ? STORE_ERROR : st, c->arg);
        return;
    }
    enum otp_verdict v;
    if (c->issuing) {
        v = reply->integer == 1 ? OTP_OK : OTP_RATE_LIMITED;
    } else {
        static const enum otp_verdict by_answer[] = {OTP_NONE, OTP_OK, OTP_WRONG, OTP_EXPIRED,
                                                     OTP_EXHAUSTED, OTP_CLAIMED};
        v = reply->integer >= 0 && reply->integer < (long long)ARRAY_LEN(by_answer)
                ? by_answer[reply->integer]
                : OTP_NONE;
    }
    c->cb(c->r, v, STORE_OK, c->arg);
}

static void otp_keys(const char *phone, char code_key[OTP_KEY_MAX], char rate_key[OTP_KEY_MAX])
{
    snprintf(code_key, OTP_KEY_MAX, "otp:%s", phone);
    if (rate_key)
        snprintf(rate_key, OTP_KEY_MAX, "otp:rate:%s", phone);
}

/* Runs a script for the call; a store that refuses at once is called back
 * at once, and the caller returns without touching the request after. */
static void otp_eval(struct otp_call *c, struct redis_script *s, int nkeys, int argc,
                     const char **argv)
{
    pthread_once(&scripts_once, otp_scripts_init);
    enum store_status st = redis_eval(c->r->w->redis, s, otp_on_reply, c, nkeys, argc, argv);
    if (st != STORE_OK)
        c->cb(c->r, OTP_STORE_FAILED, st, c->arg);
}

void otp_issue(struct req *r, const char *phone, char code[OTP_LEN + 1], otp_cb cb, void *arg)
{
    const struct config *cfg = r->w->cfg;
    /* Three uniform digits (below 65,000, a multiple of 1,000, every value
     * of x % 1000 is equally likely) and the check digit. */
    uint16_t x;
    do
        util_random(&x, sizeof(x));
    while (x >= 65000);
    snprintf(code, OTP_LEN + 1, "%03u", (unsigned)(x % 1000));
    code[3] = (char)('0' + ehs_luhn_digit(code, 3));
    code[4] = '\0';

    struct otp_call *c = req_alloc(r, sizeof(*c));
    *c = (struct otp_call){r, cb, arg, true};
    char code_key[OTP_KEY_MAX], rate_key[OTP_KEY_MAX], mac[OTP_MAC_HEX];
    otp_keys(phone, code_key, rate_key);
    otp_mac(&r->w->keys, phone, code, mac);
    char ttl[16], attempts[16], keep[16], window[16], max[16];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)cfg->ehealth_otp_ttl_s * 1000);
    snprintf(attempts, sizeof(attempts), "%d", cfg->ehealth_otp_attempts);
    snprintf(keep, sizeof(keep), "%d", OTP_KEEP_MS);
    snprintf(window, sizeof(window), "%d", cfg->ehealth_otp_window_s);
    snprintf(max, sizeof(max), "%d", cfg->ehealth_otp_per_phone);
    const char *argv[] = {code_key, rate_key, mac, ttl, attempts, keep, window, max};
    otp_eval(c, &issue_script, 2, (int)ARRAY_LEN(argv), argv);
}

void otp_check(struct req *r, const char *phone, const char *code, const char *claimant, bool claim,
               otp_cb cb, void *arg)
{
    struct otp_call *c = req_alloc(r, sizeof(*c));
    *c = (struct otp_call){r, cb, arg, false};
    char code_key[OTP_KEY_MAX], mac[OTP_MAC_HEX], by[OTP_MAC_HEX];
    otp_keys(phone, code_key, NULL);
    otp_mac(&r->w->keys, phone, code, mac);
    otp_mac(&r->w->keys, "claim", claimant, by);
    const char *argv[] = {code_key, mac, by, claim ? "1" : "0"};
    otp_eval(c, &check_script, 1, (int)ARRAY_LEN(argv), argv);
}

static void otp_on_consumed(const redisReply *reply, enum store_status st, void *arg)
{
    (void)reply;
    (void)arg;
    /* A code left behind expires by itself. */
    if (st != STORE_OK)
        log_debug("otp: a used code was not deleted (%s)", store_status_name(st));
}

void otp_consume(struct req *r, const char *phone, const char *claimant)
{
    char code_key[OTP_KEY_MAX], by[OTP_MAC_HEX];
    otp_keys(phone, code_key, NULL);
    otp_mac(&r->w->keys, "claim", claimant, by);
    pthread_once(&scripts_once, otp_scripts_init);
    const char *argv[] = {code_key, by};
    redis_eval(r->w->redis, &consume_script, otp_on_consumed, NULL, 1, 2, argv);
}
