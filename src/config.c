/* config.c - see config.h. The table below is the only place that names a
 * setting: defaults, parsing, bounds, the per-value checks, the dump and the
 * help text all walk it. Nothing here keeps mutable static state, so loading
 * two configurations from two threads at once is safe. */
#include "config.h"

#include "log.h"
#include "token.h"
#include "util.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef CONFIG_ZONEINFO_DIR
#define CONFIG_ZONEINFO_DIR "/usr/share/zoneinfo"
#endif

/* Longest line of the INI file, without its line end. */
#define CONFIG_MAX_LINE 4096
/* Largest string field (pg.conninfo); set_entry refuses a larger one. */
#define CONFIG_MAX_STRING 1024

/* 48 characters, public on purpose: it is in the source. */
const char config_demo_key[] = "DEMO-ONLY-mipgw-key-not-secret-never-production!";
const char config_demo_cabinet_key[] = "DEMO-ONLY-mipgw-cabinet-key-not-secret-never-production!";
_Static_assert(sizeof(config_demo_key) == 49, "the demo key has 48 characters");

enum setting_type {
    T_INT,
    T_BOOL,
    T_STRING,
    T_SECRET,   /* a string never shown: the dump prints only its length */
    T_CONNINFO, /* a libpq string: the dump hides its password */
};

/* Checks one string value; may rewrite it in place (only shorter). Writes
 * a message without the setting's name into msg and returns -1 if bad. */
typedef int (*check_fn)(char *value, char *msg, size_t cap);

struct setting {
    const char *section;
    const char *key;
    enum setting_type type;
    size_t offset;
    size_t size;      /* strings: the field's size, NUL included */
    const char *def;  /* default, as the file would spell it */
    long min, max;    /* ints */
    check_fn check;   /* strings: NULL or a check of the value */
    const char *doc;
};

static int check_ip(char *value, char *msg, size_t cap);
static int check_ip_list(char *value, char *msg, size_t cap);
static int check_nonempty(char *value, char *msg, size_t cap);
static int check_conninfo(char *value, char *msg, size_t cap);
static int check_redis_host(char *value, char *msg, size_t cap);
static int check_zone(char *value, char *msg, size_t cap);
static int check_log_level(char *value, char *msg, size_t cap);
static int check_jwt_alg(char *value, char *msg, size_t cap);
static int check_sms_sender(char *value, char *msg, size_t cap);
static int check_login_list(char *value, char *msg, size_t cap);
static int check_webhook_url(char *value, char *msg, size_t cap);

/* _Generic refuses to compile an entry whose field has the wrong type. */
#define FIELD(f) (((struct config *)0)->f)
#define S_INT(sec, k, f, def, lo, hi, doc) \
    {sec, k, T_INT, _Generic(FIELD(f), int: offsetof(struct config, f)), \
     sizeof(int), def, lo, hi, NULL, doc}
#define S_BOOL(sec, k, f, def, doc) \
    {sec, k, T_BOOL, _Generic(FIELD(f), bool: offsetof(struct config, f)), \
     sizeof(bool), def, 0, 1, NULL, doc}
#define S_STR(sec, k, type, f, def, check, doc) \
    {sec, k, type, _Generic(FIELD(f), char *: offsetof(struct config, f)), \
     sizeof(FIELD(f)), def, 0, 0, check, doc}

#define MS_MAX 600000          /* ten minutes, the longest timeout */
#define TTL_MAX CONFIG_TTL_MAX_S
#define RATE_MAX 10000000

static const struct setting settings[] = {
    /* [http] */
    S_STR("http", "listen", T_STRING, http_listen, "127.0.0.1", check_ip,
          "address to listen on: an IPv4 or IPv6 literal, no host name"),
    S_INT("http", "port", http_port, "8080", 1, 65535,
          "TCP port to listen on"),
    S_INT("http", "workers", http_workers, "0", 0, 64,
          "worker threads, each with its own event loop; 0 = one per online CPU (at most 64)"),
    S_INT("http", "backlog", http_backlog, "4096", 1, 65535,
          "listen(2) backlog of each listener (the kernel caps it at net.core.somaxconn)"),
    S_INT("http", "max_header_size", http_max_header_size, "8192", 1024, 1048576,
          "largest request line plus headers, in bytes"),
    S_INT("http", "max_body_size", http_max_body_size, "1048576", 1024, 67108864,
          "largest request body, in bytes"),
    S_INT("http", "read_timeout_ms", http_read_timeout_ms, "15000", 1, MS_MAX,
          "an idle or slow client is disconnected after this many ms"),
    S_INT("http", "request_timeout_ms", http_request_timeout_ms, "30000", 1000, MS_MAX,
          "a connection with no whole request for this long, in ms, while none of its requests is answered, is closed: the read timeout restarts with every byte, this does not (a client that sends a byte a second)"),
    S_INT("http", "write_timeout_ms", http_write_timeout_ms, "15000", 1, MS_MAX,
          "a client whose answer makes no progress for this many ms is disconnected (libevent applies read_timeout_ms to writes too: the shorter holds)"),
    S_INT("http", "shutdown_grace_ms", http_shutdown_grace_ms, "10000", 1, MS_MAX,
          "on SIGTERM, how long requests in flight may finish, in ms"),
    S_STR("http", "trusted_proxies", T_STRING, http_trusted_proxies, "127.0.0.1", check_ip_list,
          "comma-separated IP literals whose X-Forwarded-For is believed (at most 16); empty: none"),
    S_INT("http", "max_query_params", http_max_query_params, "32", 1, 1000,
          "a request with more query parameters than this is refused (400)"),
    S_INT("http", "max_connections", http_max_connections, "16384", 16, 1000000,
          "client connections per worker; one more is closed at once (the open-file limit bounds them too)"),
    S_INT("http", "max_buffered_mb", http_max_buffered_mb, "256", 1, 65536,
          "MiB of request input not yet parsed (headers, bodies arriving) per worker; the connection whose input passes it is closed"),

    /* [pg] */
    S_STR("pg", "conninfo", T_CONNINFO, pg_conninfo,
          "hostaddr=127.0.0.1 port=5432 dbname=mipgw user=mipgw connect_timeout=3", check_conninfo,
          "libpq connection string; a host name needs its address in hostaddr too (libpq looks names up with a blocking call)"),
    S_INT("pg", "pool_size", pg_pool_size, "4", 1, 64,
          "PostgreSQL connections per worker thread"),
    S_INT("pg", "timeout_ms", pg_timeout_ms, "2000", 1, MS_MAX,
          "deadline of each query, in ms"),
    S_INT("pg", "connect_timeout_ms", pg_connect_timeout_ms, "3000", 1, MS_MAX,
          "deadline of a connection attempt, in ms"),
    S_INT("pg", "queue_max", pg_queue_max, "512", 1, 100000,
          "queries waiting for a connection, per worker; more are refused with 503"),
    S_INT("pg", "batch_max", pg_batch_max, "32", 1, 256,
          "calls of a batchable statement (POST /patients) sent as one call and one transaction when they queue up; 1: never"),
    S_INT("pg", "batch_conns", pg_batch_conns, "1", 1, 64,
          "connections per worker that batchable statements may hold at once, so that their calls queue up into batches and other queries keep a connection"),

    /* [redis] */
    S_STR("redis", "host", T_STRING, redis_host, "127.0.0.1", check_redis_host,
          "an IP literal, or the absolute path of a unix socket"),
    S_INT("redis", "port", redis_port, "6379", 1, 65535,
          "TCP port (unused with a unix socket)"),
    S_INT("redis", "timeout_ms", redis_timeout_ms, "500", 1, MS_MAX,
          "deadline of each command, in ms"),
    S_INT("redis", "connect_timeout_ms", redis_connect_timeout_ms, "1000", 1, MS_MAX,
          "deadline of a connection attempt, in ms"),
    S_STR("redis", "password", T_SECRET, redis_password, "", NULL,
          "AUTH password; empty: no AUTH"),

    /* [tokens] */
    S_STR("tokens", "cod_key", T_SECRET, tokens_cod_key, "", NULL,
          "HS256 key the gateway signs its tokens with (required outside demo mode)"),
    S_STR("tokens", "cod_key_file", T_STRING, tokens_cod_key_file, "", NULL,
          "file holding tokens.cod_key, read when cod_key is empty (one trailing newline stripped)"),
    S_STR("tokens", "portal_key", T_SECRET, tokens_portal_key, "", NULL,
          "HS256 key of the portals that mint RPGU tokens"),
    S_STR("tokens", "portal_key_file", T_STRING, tokens_portal_key_file, "", NULL,
          "file holding tokens.portal_key, read when portal_key is empty"),
    S_INT("tokens", "cod_ttl_s", tokens_cod_ttl_s, "600", 1, TTL_MAX,
          "lifetime of the tokens the gateway issues, in seconds"),
    S_INT("tokens", "rpgu_ttl_s", tokens_rpgu_ttl_s, "600", 1, TTL_MAX,
          "lifetime of RPGU tokens, in seconds"),
    S_INT("tokens", "portal_max_ttl_s", tokens_portal_max_ttl_s, "86400", 60, TTL_MAX,
          "a portal's RPGU token that claims to live longer than this from now is refused (5008), in seconds"),
    S_INT("tokens", "ident_cache_ttl_s", tokens_ident_cache_ttl_s, "60", 1, TTL_MAX,
          "identity look-ups are cached in Redis this long, in seconds"),
    S_INT("tokens", "min_key_len", tokens_min_key_len, "32", 32, CONFIG_MAX_KEY - 1,
          "shortest accepted key, in bytes (RFC 7518: at least 32 for HS256)"),

    /* [time] */
    S_STR("time", "zone", T_STRING, time_zone, "Europe/Moscow", check_zone,
          "time zone of timestamps in answers: a name under " CONFIG_ZONEINFO_DIR ", or UTC"),

    /* [ratelimit] */
    S_INT("ratelimit", "window_s", ratelimit_window_s, "60", 1, 86400,
          "length of the rate-limit window, in seconds"),
    S_INT("ratelimit", "token_per_addr", ratelimit_token_per_addr, "300", 0, RATE_MAX,
          "token requests per client address per window; 0 = off"),
    S_INT("ratelimit", "token_per_identity", ratelimit_token_per_identity, "20", 0, RATE_MAX,
          "token requests per identity (hash of the looked-up data) per window; 0 = off"),

    /* [mis] */
    S_INT("mis", "auth_cache_ttl_s", mis_auth_cache_ttl_s, "30", 0, 3600,
          "a verified Basic credential is remembered this long, in seconds, so that a busy MIS "
          "does not pay a password hash per request; disabling a login takes effect within it; 0 = off"),
    S_INT("mis", "hash_t_cost", mis_hash_t_cost, "2", 1, 16,
          "argon2id passes for new password hashes"),
    S_INT("mis", "hash_m_cost_kib", mis_hash_m_cost_kib, "19456", 1024, 1048576,
          "argon2id memory for new password hashes, in KiB (19456: OWASP's minimum)"),
    S_INT("mis", "hash_threads", mis_hash_threads, "2", 1, 16,
          "threads that verify MIS passwords, so that no event loop blocks on a hash"),
    S_INT("mis", "hash_queue_max", mis_hash_queue_max, "64", 1, 10000,
          "password verifications waiting for a thread; more are refused with 503"),
    S_INT("mis", "max_batch_items", mis_max_batch_items, "1000", 1, 100000,
          "items in one upload request; more are refused with 413"),

    /* [schedule] */
    S_INT("schedule", "horizon_days", schedule_horizon_days, "21", 1, 366,
          "how many days ahead, today included, cells are shown and may be booked"),
    S_INT("schedule", "cache_ttl_ms", schedule_cache_ttl_ms, "5000", 0, 60000,
          "a resource's cells are served from the worker's memory this long, in ms: a change in PostgreSQL shows within it; 0 = off"),

    /* [booking] the vendor's per-region rules, each on or off */
    S_BOOL("booking", "rule_internet_access", booking_rule_internet_access, "true",
           "a cell must be open to Internet booking (flagAccess) and a working reception (busy type 1): 400/4132"),
    S_BOOL("booking", "rule_self_booking_block", booking_rule_self_booking_block, "true",
           "a card marked by its LPU (blackLabel) may not book itself: 400/4007"),
    S_BOOL("booking", "rule_children_lpu", booking_rule_children_lpu, "true",
           "a children's LPU refuses patients of booking.children_lpu_age or older: 400/4005"),
    S_INT("booking", "children_lpu_age", booking_children_lpu_age, "18", 1, 150,
          "the age, in full years on the day of the visit, from which a children's LPU refuses"),
    S_BOOL("booking", "rule_age_limits", booking_rule_age_limits, "true",
           "a resource's age and sex limits hold on the day of the visit: 400/4029"),
    S_BOOL("booking", "rule_dispensary", booking_rule_dispensary, "true",
           "a dispensary-only resource takes only the patients on its list: 400/4007"),
    S_BOOL("booking", "rule_referral_only", booking_rule_referral_only, "true",
           "a referral-only resource takes bookings only with a referral: 400/4133"),
    S_BOOL("booking", "rule_one_per_speciality", booking_rule_one_per_speciality, "true",
           "one active future booking per patient and speciality: 400/4008"),
    S_BOOL("booking", "rule_delete_old_time", booking_rule_delete_old_time, "true",
           "DeleteOldTime: a booking whose time has come cannot be cancelled: 400/4135"),
    S_BOOL("booking", "rule_delete_visit_status", booking_rule_delete_visit_status, "true",
           "DeleteVisitStatus: a booking whose visit took place cannot be cancelled: 400/4136"),
    S_INT("booking", "lock_ttl_ms", booking_lock_ttl_ms, "5000", 100, MS_MAX,
          "lifetime of a cell's lock in Redis while its booking is written: a gateway that dies mid-booking holds the cell no longer"),
    S_INT("booking", "marker_ttl_s", booking_marker_ttl_s, "600", 1, TTL_MAX,
          "lifetime of a booked cell's marker in Redis, which refuses a second booking without PostgreSQL; bounds how long a marker can outlive a cancellation that could not reach Redis"),
    S_INT("booking", "visits_max", booking_visits_max, "100", 1, 1000,
          "bookings listed by GET /api/v2/iemk/doctors/visits, the latest first"),

    /* [ehealth] */
    S_STR("ehealth", "clients", T_STRING, ehealth_clients, "cabinet", check_login_list,
          "comma-separated logins (made with `mipgw user add`) that may create UserRequests and ask for SMS codes, over Basic auth; empty: none"),
    S_STR("ehealth", "jwt_alg", T_STRING, ehealth_jwt_alg, "HS256", check_jwt_alg,
          "algorithm of UserRequest tokens, HS256 or HS512: the only one accepted"),
    S_STR("ehealth", "jwt_key", T_SECRET, ehealth_jwt_key, "", NULL,
          "key that signs UserRequest tokens, at least tokens.min_key_len bytes and unlike the other keys; empty (outside demo mode): the cabinet is off and answers 404"),
    S_STR("ehealth", "jwt_key_file", T_STRING, ehealth_jwt_key_file, "", NULL,
          "a file holding jwt_key, read when jwt_key is empty"),
    S_INT("ehealth", "user_request_ttl_s", ehealth_user_request_ttl_s, "1800", 60, 86400,
          "lifetime of a UserRequest and of its token, in seconds"),
    S_INT("ehealth", "otp_ttl_s", ehealth_otp_ttl_s, "900", 30, 86400,
          "an SMS code is valid this long, in seconds"),
    S_INT("ehealth", "otp_attempts", ehealth_otp_attempts, "3", 1, 10,
          "wrong codes after which the code is spent"),
    S_INT("ehealth", "otp_per_phone", ehealth_otp_per_phone, "5", 1, RATE_MAX,
          "SMS code requests per phone number per otp_window_s; more: 429"),
    S_INT("ehealth", "otp_window_s", ehealth_otp_window_s, "3600", 1, 86400,
          "the window of otp_per_phone, in seconds"),
    S_INT("ehealth", "access_token_ttl_s", ehealth_access_token_ttl_s, "2592000", 60, 31622400,
          "lifetime of the access token a registration issues, in seconds (30 days)"),
    S_INT("ehealth", "max_body", ehealth_max_body, "65536", 1024, 1048576,
          "bytes of a cabinet request body; more: 413"),
    S_STR("ehealth", "sms_sender", T_STRING, ehealth_sms_sender, "redis", check_sms_sender,
          "how SMS codes leave: redis (pushed to the list sms_sink_key, for demo and tests; refused outside demo mode when the cabinet is on) or webhook (POSTed to sms_webhook_url)"),
    S_STR("ehealth", "sms_sink_key", T_STRING, ehealth_sms_sink_key, "sms:sink", check_nonempty,
          "the Redis list the redis sender pushes {phone, text} to, newest first"),
    S_INT("ehealth", "sms_sink_max", ehealth_sms_sink_max, "1000", 1, 1000000,
          "the sink list is trimmed to this many messages"),
    S_STR("ehealth", "sms_webhook_url", T_STRING, ehealth_sms_webhook_url, "", check_webhook_url,
          "http://IP:port/path of the operator's SMS gateway (an IP literal: no DNS on an event loop); it gets {\"phone\", \"text\"} as JSON and must answer 2xx"),
    S_INT("ehealth", "sms_timeout_ms", ehealth_sms_timeout_ms, "3000", 100, MS_MAX,
          "deadline of one webhook attempt, in ms"),
    S_INT("ehealth", "sms_retries", ehealth_sms_retries, "2", 0, 10,
          "webhook attempts after a failed one (refused, timed out, or not 2xx)"),

    /* [log] */
    S_STR("log", "file", T_STRING, log_file, "", NULL,
          "log file; empty: standard error"),
    S_STR("log", "level", T_STRING, log_level, "info", check_log_level,
          "lowest level written: debug, info, warn or error"),
    S_BOOL("log", "access", log_access, "true",
           "write one access-log line per request"),

    /* [demo] */
    S_BOOL("demo", "mode", demo_mode, "false",
           "demo mode: without a configured key the built-in demo key signs tokens; never in production"),
};

/* ------------------------------------------------------------------ */
/* small helpers */

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *errno_text(int e, char *buf, size_t cap)
{
    /* GNU strerror_r: thread-safe, returns the text (maybe not in buf). */
    return strerror_r(e, buf, cap);
}

static char *skip_ws(char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static void rtrim(char *p)
{
    size_t n = strlen(p);
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        p[--n] = '\0';
}

static char *trim(char *p)
{
    p = skip_ws(p);
    rtrim(p);
    return p;
}

static void *field_of(struct config *cfg, const struct setting *s)
{
    return (char *)cfg + s->offset;
}

static const void *cfield_of(const struct config *cfg, const struct setting *s)
{
    return (const char *)cfg + s->offset;
}

static bool is_string(const struct setting *s)
{
    return s->type == T_STRING || s->type == T_SECRET || s->type == T_CONNINFO;
}

static const struct setting *find_setting(const char *section, const char *key)
{
    for (size_t i = 0; i < ARRAY_LEN(settings); i++)
        if (strcmp(settings[i].section, section) == 0 && strcmp(settings[i].key, key) == 0)
            return &settings[i];
    return NULL;
}

static bool section_known(const char *section)
{
    for (size_t i = 0; i < ARRAY_LEN(settings); i++)
        if (strcmp(settings[i].section, section) == 0)
            return true;
    return false;
}

/* MIPGW_<SECTION>_<KEY> */
static void env_name(const struct setting *s, char *out, size_t cap)
{
    snprintf(out, cap, "MIPGW_%s_%s", s->section, s->key);
    for (char *p = out; *p; p++)
        *p = (char)toupper((unsigned char)*p);
}

static bool is_ip_literal(const char *s)
{
    unsigned char addr[16];
    return inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1;
}

/* strtol with the whole string consumed and no overflow. */
static int parse_long(const char *s, long *out)
{
    char *end;
    if (!*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno == ERANGE || end == s || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* ------------------------------------------------------------------ */
/* per-value checks */

static int check_ip(char *value, char *msg, size_t cap)
{
    if (!is_ip_literal(value))
        return fail(msg, cap, "\"%s\" is not an IPv4 or IPv6 address", value);
    return 0;
}

/* Also drops the blanks around the commas, so that readers of the field can
 * split on ',' alone. */
static int check_ip_list(char *value, char *msg, size_t cap)
{
    char tmp[CONFIG_MAX_STRING];
    if (!util_strlcpy(tmp, value, sizeof(tmp)))
        return fail(msg, cap, "list too long");
    char *all = trim(tmp);
    size_t out = 0;
    int count = 0;
    value[0] = '\0';
    if (!*all)
        return 0;
    for (char *item = all;;) {
        char *comma = strchr(item, ',');
        if (comma)
            *comma = '\0';
        char *ip = trim(item);
        if (!*ip)
            return fail(msg, cap, "empty entry in the list");
        if (++count > CONFIG_MAX_PROXIES)
            return fail(msg, cap, "more than %d addresses", CONFIG_MAX_PROXIES);
        if (!is_ip_literal(ip))
            return fail(msg, cap, "\"%s\" is not an IPv4 or IPv6 address", ip);
        size_t n = strlen(ip);
        if (out)
            value[out++] = ',';
        memcpy(value + out, ip, n);
        out += n;
        value[out] = '\0';
        if (!comma)
            break;
        item = comma + 1;
    }
    return 0;
}

static int check_nonempty(char *value, char *msg, size_t cap)
{
    if (!*value)
        return fail(msg, cap, "must not be empty");
    return 0;
}

/* The first host of a libpq host list that needs a name look-up, or
 * NULL: each must be empty, a socket directory, or an IP address. */
static const char *conninfo_host_name(const char *hosts, char *one, size_t cap)
{
    for (const char *h = hosts; h && *h;) {
        size_t n = strcspn(h, ",");
        if (n >= cap) {
            snprintf(one, cap, "%.*s...", (int)(cap - 4), h);
            return one;  /* longer than any address */
        }
        memcpy(one, h, n);
        one[n] = '\0';
        if (one[0] && one[0] != '/' && one[0] != '@' && !is_ip_literal(one))
            return one;
        h += n + (h[n] == ',');
    }
    return NULL;
}

/* A libpq string whose hosts need no name look-up: libpq resolves a name
 * in host= with getaddrinfo, a blocking call, inside the worker's event
 * loop at every (re)connect. Each host must be a socket directory or an IP
 * address, unless hostaddr= gives the addresses (host= then serves TLS
 * and the passfile). */
static int check_conninfo(char *value, char *msg, size_t cap)
{
    if (!*value)
        return fail(msg, cap, "must not be empty");
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(value, &perr);
    PQfreemem(perr);  /* its text may quote the string, password and all */
    if (!opts)
        return fail(msg, cap, "not a libpq connection string (check its keywords and quoting)");
    const char *host = NULL, *hostaddr = NULL, *service = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "hostaddr") == 0)
            hostaddr = o->val;
        else if (strcmp(o->keyword, "service") == 0)
            service = o->val;
    }
    /* Without host= or hostaddr=, libpq takes them from the service file
     * (when a service is named) and then PGHOST and PGHOSTADDR. The service
     * file is libpq's to read, not ours, so a service has to come with the
     * host in the string itself. */
    const char *from = "host";
    if (!(host && *host) && !(hostaddr && *hostaddr)) {
        if (!(service && *service))
            service = getenv("PGSERVICE");
        if (service && *service) {
            PQconninfoFree(opts);
            return fail(msg, cap,
                        "names a service (service= or PGSERVICE) but no host= or hostaddr=: "
                        "the service file's host is not checked, so give the address here");
        }
        host = getenv("PGHOST");
        hostaddr = getenv("PGHOSTADDR");
        from = "PGHOST";
    }
    char one[256];
    const char *name = hostaddr && *hostaddr ? NULL : conninfo_host_name(host, one, sizeof(one));
    int rc = 0;
    if (name)
        rc = fail(msg, cap,
                  "%s \"%s\" is a name, which libpq would look up with a blocking call in a "
                  "worker; give its address in hostaddr= as well",
                  from, name);
    PQconninfoFree(opts);
    return rc;
}

static int check_redis_host(char *value, char *msg, size_t cap)
{
    if (value[0] == '/' || is_ip_literal(value))
        return 0;
    return fail(msg, cap, "\"%s\" is neither an IP address nor the absolute path of a socket",
                value);
}

static int check_zone(char *value, char *msg, size_t cap)
{
    if (!*value)
        return fail(msg, cap, "must not be empty");
    if (strcmp(value, "UTC") == 0)
        return 0;
    if (value[0] == '/' || strstr(value, ".."))
        return fail(msg, cap, "\"%s\" must be a zone name such as Europe/Moscow, not a path",
                    value);
    for (const char *p = value; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_+-.", *p))
            return fail(msg, cap, "\"%s\" is not a zone name", value);

    char path[sizeof(CONFIG_ZONEINFO_DIR) + CONFIG_MAX_STRING];
    snprintf(path, sizeof(path), "%s/%s", CONFIG_ZONEINFO_DIR, value);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(msg, cap, "no zone \"%s\" in %s", value, CONFIG_ZONEINFO_DIR);
    char magic[4];
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
              && read(fd, magic, sizeof(magic)) == (ssize_t)sizeof(magic)
              && memcmp(magic, "TZif", 4) == 0;
    close(fd);
    if (!ok)
        return fail(msg, cap, "%s is not a zoneinfo file", path);
    return 0;
}

static int check_log_level(char *value, char *msg, size_t cap)
{
    enum log_level level;
    if (log_parse_level(value, &level) != 0)
        return fail(msg, cap, "\"%s\" is not one of debug, info, warn, error", value);
    return 0;
}

/* The names token.c signs and verifies with. */
static int check_jwt_alg(char *value, char *msg, size_t cap)
{
    enum token_alg alg;
    if (!token_alg_parse(value, &alg))
        return fail(msg, cap, "\"%s\" is neither HS256 nor HS512", value);
    return 0;
}

static int check_sms_sender(char *value, char *msg, size_t cap)
{
    if (strcmp(value, "redis") != 0 && strcmp(value, "webhook") != 0)
        return fail(msg, cap, "\"%s\" is neither redis nor webhook", value);
    return 0;
}

/* Logins as mis_users allows them, comma-separated, no blanks. */
static int check_login_list(char *value, char *msg, size_t cap)
{
    for (const char *p = value; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._@-,", *p))
            return fail(msg, cap, "\"%s\" is not a comma-separated list of logins", value);
    return 0;
}

/* http://IP[:port]/path (util_http_url, which the sender uses too): the
 * sender connects without resolving names. */
static int check_webhook_url(char *value, char *msg, size_t cap)
{
    if (!*value)
        return 0;
    char host[64];
    int port;
    const char *path;
    if (!util_http_url(value, host, sizeof(host), &port, &path))
        return fail(msg, cap, "not http://HOST[:PORT][/PATH] with a port of 1-65535");
    if (!is_ip_literal(host))
        return fail(msg, cap, "the host must be an IPv4 address (no DNS on an event loop)");
    return 0;
}

/* ------------------------------------------------------------------ */
/* setting one value */

/* Parses value into the field of s. The message names the setting, never
 * the value of a secret. */
static int set_entry(struct config *cfg, const struct setting *s, const char *value,
                     bool run_check, char *err, size_t errlen)
{
    void *field = field_of(cfg, s);
    switch (s->type) {
    case T_INT: {
        long v;
        if (parse_long(value, &v) != 0)
            return fail(err, errlen, "%s.%s: \"%s\" is not an integer", s->section, s->key,
                        value);
        if (v < s->min || v > s->max)
            return fail(err, errlen, "%s.%s: %ld is outside %ld..%ld", s->section, s->key, v,
                        s->min, s->max);
        *(int *)field = (int)v;
        return 0;
    }
    case T_BOOL: {
        bool b;
        if (parse_bool(value, &b) != 0)
            return fail(err, errlen,
                        "%s.%s: \"%s\" is not a boolean (true/false, yes/no, on/off, 1/0)",
                        s->section, s->key, value);
        *(bool *)field = b;
        return 0;
    }
    case T_STRING:
    case T_SECRET:
    case T_CONNINFO: {
        size_t n = strlen(value);
        char tmp[CONFIG_MAX_STRING];
        if (s->size > sizeof(tmp))
            return fail(err, errlen, "%s.%s: field larger than CONFIG_MAX_STRING", s->section,
                        s->key);
        if (n >= s->size)
            return fail(err, errlen, "%s.%s: value too long (%zu bytes, at most %zu)",
                        s->section, s->key, n, s->size - 1);
        memcpy(tmp, value, n + 1);
        if (run_check && s->check) {
            char msg[256];
            if (s->check(tmp, msg, sizeof(msg)) != 0) {
                explicit_bzero(tmp, sizeof(tmp));
                return fail(err, errlen, "%s.%s: %s", s->section, s->key, msg);
            }
        }
        /* Clear the whole field so no tail of an older secret stays. */
        memset(field, 0, s->size);
        memcpy(field, tmp, strlen(tmp) + 1);
        explicit_bzero(tmp, sizeof(tmp));
        return 0;
    }
    }
    return fail(err, errlen, "%s.%s: unknown type", s->section, s->key);
}

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
        const struct setting *s = &settings[i];
        char err[256];
        /* The checks of the defaults run in config_validate: a missing
         * tzdata must not abort here. */
        if (set_entry(cfg, s, s->def, false, err, sizeof(err)) != 0) {
            fprintf(stderr, "config: bad default of %s.%s: %s\n", s->section, s->key, err);
            abort();
        }
    }
}

int config_set(struct config *cfg, const char *section, const char *key,
               const char *value, char *err, size_t errlen)
{
    if (!section || !key || !value)
        return fail(err, errlen, "config_set: NULL argument");
    const struct setting *s = find_setting(section, key);
    if (!s) {
        if (!section_known(section))
            return fail(err, errlen, "unknown section [%s]", section);
        return fail(err, errlen, "unknown setting %s.%s", section, key);
    }
    return set_entry(cfg, s, value, true, err, errlen);
}

/* ------------------------------------------------------------------ */
/* the file */

static int parse_line(struct config *cfg, char *line, char *section, size_t section_cap,
                      const char *path, unsigned lineno, char *err, size_t errlen)
{
    char *p = trim(line);
    if (!*p || *p == '#' || *p == ';')
        return 0;

    if (*p == '[') {
        char *close = strchr(p, ']');
        if (!close)
            return fail(err, errlen, "%s:%u: section header without ']'", path, lineno);
        char *rest = skip_ws(close + 1);
        if (*rest && *rest != '#' && *rest != ';')
            return fail(err, errlen, "%s:%u: unexpected text after the section header", path,
                        lineno);
        *close = '\0';
        char *name = trim(p + 1);
        if (!section_known(name))
            return fail(err, errlen, "%s:%u: unknown section [%s]", path, lineno, name);
        util_strlcpy(section, name, section_cap);
        return 0;
    }

    char *eq = strchr(p, '=');
    if (!eq)
        return fail(err, errlen, "%s:%u: expected \"[section]\" or \"key = value\"", path,
                    lineno);
    *eq = '\0';
    char *key = trim(p);
    if (!*key)
        return fail(err, errlen, "%s:%u: no key before '='", path, lineno);
    if (!*section)
        return fail(err, errlen, "%s:%u: setting \"%s\" before any [section]", path, lineno,
                    key);
    const struct setting *s = find_setting(section, key);
    if (!s)
        return fail(err, errlen, "%s:%u: unknown setting %s.%s", path, lineno, section, key);

    char *raw = eq + 1;
    char *value = skip_ws(raw);
    if (*value == '"') {
        /* Quoted: taken literally up to the next quote. */
        char *end = strchr(value + 1, '"');
        if (!end)
            return fail(err, errlen, "%s:%u: %s.%s: missing closing '\"'", path, lineno,
                        s->section, s->key);
        char *rest = skip_ws(end + 1);
        if (*rest && *rest != '#' && *rest != ';')
            return fail(err, errlen, "%s:%u: %s.%s: unexpected text after the closing '\"'",
                        path, lineno, s->section, s->key);
        *end = '\0';
        value++;
    } else {
        /* Unquoted: a '#' after a blank starts a comment. */
        for (char *q = raw; *q; q++) {
            if (*q == '#' && q > raw && (q[-1] == ' ' || q[-1] == '\t')) {
                *q = '\0';
                break;
            }
        }
        value = trim(raw);
    }

    char msg[512];
    if (set_entry(cfg, s, value, true, msg, sizeof(msg)) != 0)
        return fail(err, errlen, "%s:%u: %s", path, lineno, msg);
    return 0;
}

static int load_file(struct config *cfg, const char *path, char *err, size_t errlen)
{
    char ebuf[128];
    FILE *f = fopen(path, "re");
    if (!f)
        return fail(err, errlen, "%s: cannot open: %s", path,
                    errno_text(errno, ebuf, sizeof(ebuf)));

    char section[32] = "";
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    unsigned lineno = 0;
    int rc = 0;
    errno = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n')
            len--;
        if (len && line[len - 1] == '\r')
            len--;
        if (len > CONFIG_MAX_LINE) {
            rc = fail(err, errlen, "%s:%u: line longer than %d bytes", path, lineno,
                      CONFIG_MAX_LINE);
            break;
        }
        if (memchr(line, '\0', len)) {
            rc = fail(err, errlen, "%s:%u: NUL byte in the line", path, lineno);
            break;
        }
        line[len] = '\0';
        char *p = line;
        if (lineno == 1 && strncmp(p, "\xEF\xBB\xBF", 3) == 0)
            p += 3; /* a UTF-8 byte order mark */
        if (parse_line(cfg, p, section, sizeof(section), path, lineno, err, errlen) != 0) {
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f))
        rc = fail(err, errlen, "%s: read error: %s", path, errno_text(errno, ebuf, sizeof(ebuf)));
    if (line) {
        explicit_bzero(line, cap); /* it may have held a key */
        free(line);
    }
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------------ */
/* the environment */

static int load_env(struct config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
        const struct setting *s = &settings[i];
        char name[96];
        env_name(s, name, sizeof(name));
        const char *v = getenv(name);
        if (!v)
            continue;
        char msg[512];
        if (set_entry(cfg, s, v, true, msg, sizeof(msg)) != 0)
            return fail(err, errlen, "environment variable %s: %s", name, msg);
    }
    /* A misspelt variable would otherwise be ignored without a word. */
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "MIPGW_", 6) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
        bool known = false;
        for (size_t i = 0; i < ARRAY_LEN(settings) && !known; i++) {
            char name[96];
            env_name(&settings[i], name, sizeof(name));
            known = strlen(name) == n && memcmp(name, *e, n) == 0;
        }
        if (!known)
            log_warn("config: environment variable %.*s names no setting; ignored", (int)n, *e);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* key files */

static int read_key_file(const char *what, const char *path, char *dst, size_t cap,
                         char *err, size_t errlen)
{
    char ebuf[128];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return fail(err, errlen, "%s_file: cannot open %s: %s", what, path,
                    errno_text(errno, ebuf, sizeof(ebuf)));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, errlen, "%s_file: %s is not a regular file", what, path);
    }
    if (st.st_mode & S_IROTH)
        log_warn("config: %s_file %s is readable by every user", what, path);

    /* Room for the longest key, "\r\n" and one byte to notice a longer one. */
    char buf[CONFIG_MAX_KEY + 2];
    size_t len = 0;
    while (len < sizeof(buf)) {
        ssize_t r = read(fd, buf + len, sizeof(buf) - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            explicit_bzero(buf, sizeof(buf));
            return fail(err, errlen, "%s_file: cannot read %s: %s", what, path,
                        errno_text(e, ebuf, sizeof(ebuf)));
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    close(fd);

    int rc = 0;
    if (len && buf[len - 1] == '\n') {
        len--;
        if (len && buf[len - 1] == '\r')
            len--;
    }
    if (len == 0)
        rc = fail(err, errlen, "%s_file: %s is empty", what, path);
    else if (len > cap - 1)
        rc = fail(err, errlen, "%s_file: the key in %s is longer than %zu bytes", what, path,
                  cap - 1);
    else if (memchr(buf, '\0', len))
        rc = fail(err, errlen, "%s_file: the key in %s holds a NUL byte", what, path);
    else {
        memset(dst, 0, cap);
        memcpy(dst, buf, len);
    }
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

/* ------------------------------------------------------------------ */
/* validation and loading */

static int validate_key(const char *what, const char *key, int min_len, bool demo,
                        char *err, size_t errlen)
{
    char env[96];
    snprintf(env, sizeof(env), "MIPGW_%s", what);
    for (char *p = env; *p; p++)
        *p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);

    bool is_demo = strcmp(key, config_demo_key) == 0;
    if (is_demo && !demo)
        return fail(err, errlen,
                    "%s is the public demo key, accepted only with demo.mode on (set %s or "
                    "%s_file)", what, env, what);
    if (!is_demo && strlen(key) < (size_t)min_len)
        return fail(err, errlen, "%s is missing or shorter than %d bytes (set %s or %s_file)",
                    what, min_len, env, what);
    return 0;
}

int config_validate(const struct config *cfg, char *err, size_t errlen)
{
    /* Every setting on its own: the bounds and checks of the table (the
     * struct may have been filled by hand). */
    for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
        const struct setting *s = &settings[i];
        const void *field = cfield_of(cfg, s);
        if (s->type == T_INT) {
            int v = *(const int *)field;
            if (v < s->min || v > s->max)
                return fail(err, errlen, "%s.%s: %d is outside %ld..%ld", s->section, s->key,
                            v, s->min, s->max);
        } else if (is_string(s)) {
            if (!memchr(field, '\0', s->size))
                return fail(err, errlen, "%s.%s: not terminated", s->section, s->key);
            if (s->check) {
                char tmp[CONFIG_MAX_STRING];
                char msg[256];
                memcpy(tmp, field, strlen(field) + 1);
                int rc = s->check(tmp, msg, sizeof(msg));
                explicit_bzero(tmp, sizeof(tmp));
                if (rc != 0)
                    return fail(err, errlen, "%s.%s: %s", s->section, s->key, msg);
            }
        }
    }

    /* Across settings: the keys. */
    int min_len = cfg->tokens_min_key_len;
    bool demo = cfg->demo_mode;
    if ((!demo || cfg->tokens_cod_key[0])
        && validate_key("tokens.cod_key", cfg->tokens_cod_key, min_len, demo, err, errlen) != 0)
        return -1;
    if (cfg->tokens_portal_key[0]) {
        if (validate_key("tokens.portal_key", cfg->tokens_portal_key, min_len, demo, err,
                         errlen) != 0)
            return -1;
        /* One key for both would let a portal mint the gateway's own tokens. */
        if (strcmp(cfg->tokens_portal_key, cfg->tokens_cod_key) == 0)
            return fail(err, errlen, "tokens.portal_key must differ from tokens.cod_key");
    }
    if (cfg->ehealth_jwt_key[0]) {
        const char *k = cfg->ehealth_jwt_key;
        bool is_demo = strcmp(k, config_demo_cabinet_key) == 0;
        if (is_demo && !demo)
            return fail(err, errlen, "ehealth.jwt_key is the public demo key, accepted only "
                                     "with demo.mode on");
        if (!is_demo && strlen(k) < (size_t)min_len)
            return fail(err, errlen, "ehealth.jwt_key is shorter than %d bytes", min_len);
        /* A shared key would let one kind of token pass for another. */
        if (strcmp(k, cfg->tokens_cod_key) == 0 || strcmp(k, cfg->tokens_portal_key) == 0)
            return fail(err, errlen, "ehealth.jwt_key must differ from the tokens' keys");
    }
    if (strcmp(cfg->ehealth_sms_sender, "webhook") == 0 && !cfg->ehealth_sms_webhook_url[0])
        return fail(err, errlen, "ehealth.sms_sender is webhook but ehealth.sms_webhook_url is empty");
    /* The sink holds every code in clear in Redis and sends no SMS: a
     * cabinet outside demo mode must send its codes for real. */
    if (cfg->ehealth_jwt_key[0] && !demo && strcmp(cfg->ehealth_sms_sender, "redis") == 0)
        return fail(err, errlen, "ehealth.sms_sender redis (codes kept in a Redis list, no SMS "
                                 "sent) is for demo mode; outside it, use webhook");
    return 0;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    config_defaults(cfg);
    if (path && load_file(cfg, path, err, errlen) != 0)
        return -1;
    if (load_env(cfg, err, errlen) != 0)
        return -1;

    if (!cfg->tokens_cod_key[0] && cfg->tokens_cod_key_file[0]
        && read_key_file("tokens.cod_key", cfg->tokens_cod_key_file, cfg->tokens_cod_key,
                         sizeof(cfg->tokens_cod_key), err, errlen) != 0)
        return -1;
    if (!cfg->tokens_portal_key[0] && cfg->tokens_portal_key_file[0]
        && read_key_file("tokens.portal_key", cfg->tokens_portal_key_file,
                         cfg->tokens_portal_key, sizeof(cfg->tokens_portal_key), err,
                         errlen) != 0)
        return -1;

    if (!cfg->ehealth_jwt_key[0] && cfg->ehealth_jwt_key_file[0]
        && read_key_file("ehealth.jwt_key", cfg->ehealth_jwt_key_file, cfg->ehealth_jwt_key,
                         sizeof(cfg->ehealth_jwt_key), err, errlen) != 0)
        return -1;
    if (cfg->demo_mode && !cfg->ehealth_jwt_key[0])
        util_strlcpy(cfg->ehealth_jwt_key, config_demo_cabinet_key, sizeof(cfg->ehealth_jwt_key));

    if (cfg->demo_mode && !cfg->tokens_cod_key[0]) {
        util_strlcpy(cfg->tokens_cod_key, config_demo_key, sizeof(cfg->tokens_cod_key));
        log_warn("config: demo mode: tokens are signed with the built-in public demo key; "
                 "never run demo mode in production");
    }

    if (cfg->http_workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->http_workers = n < 1 ? 1 : n > 64 ? 64 : (int)n;
    }

    return config_validate(cfg, err, errlen);
}

/* ------------------------------------------------------------------ */
/* dump and help */

/* A connection string's keyword whose value is a secret: password and
 * sslpassword; in the URI form also any name with a %-escape, which libpq
 * decodes (pass%77ord is password). */
static bool conninfo_secret_key(const char *kw, size_t n)
{
    return (n >= 8 && memcmp(kw + n - 8, "password", 8) == 0) || memchr(kw, '%', n) != NULL;
}

/* A URL as --check-config shows it: its user information and its query
 * (an operator's SMS webhook may carry an API key in either) hidden. */
static void print_url_masked(FILE *out, const char *s)
{
    const char *scheme = strstr(s, "://");
    const char *auth = scheme ? scheme + 3 : s;
    const char *end = auth + strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', (size_t)(end - auth));
    if (at) {
        fwrite(s, 1, (size_t)(auth - s), out);
        fputs("***", out);
        s = at;
    }
    size_t n = strcspn(s, "?#");
    fwrite(s, 1, n, out);
    if (s[n])
        fputs("?***", out);
}

/* libpq's keyword = value form: prints it with every password value
 * replaced by "***". Returns -1 (nothing printed) if it cannot parse it. */
static int print_conninfo_keywords(FILE *out, const char *s)
{
    struct buf b;
    buf_init(&b);
    const char *p = s;
    while (*p) {
        const char *ws = p;
        while (isspace((unsigned char)*p))
            p++;
        buf_append(&b, ws, (size_t)(p - ws));
        if (!*p)
            break;
        const char *kw = p;
        while (*p && *p != '=' && !isspace((unsigned char)*p))
            p++;
        size_t kwlen = (size_t)(p - kw);
        while (isspace((unsigned char)*p))
            p++;
        if (*p != '=' || kwlen == 0)
            goto bad;
        p++;
        while (isspace((unsigned char)*p))
            p++;
        buf_append(&b, kw, (size_t)(p - kw));
        const char *val = p;
        if (*p == '\'') {
            p++;
            while (*p && *p != '\'') {
                if (*p == '\\' && p[1])
                    p++;
                p++;
            }
            if (*p != '\'')
                goto bad;
            p++;
        } else {
            while (*p && !isspace((unsigned char)*p)) {
                if (*p == '\\' && p[1])
                    p++;
                p++;
            }
        }
        if (conninfo_secret_key(kw, kwlen))
            buf_puts(&b, "***");
        else
            buf_append(&b, val, (size_t)(p - val));
    }
    fputs(b.data ? b.data : "", out);
    buf_free(&b);
    return 0;
bad:
    buf_free(&b);
    return -1;
}

/* The URI form: postgresql://user:password@host/db?password=... */
static void print_conninfo_uri(FILE *out, const char *s)
{
    const char *auth = strstr(s, "://") + 3;
    const char *p = auth;
    while (*p && *p != '@' && *p != '/')
        p++;
    if (*p == '@') {
        const char *colon = memchr(auth, ':', (size_t)(p - auth));
        if (colon) {
            fwrite(s, 1, (size_t)(colon + 1 - s), out);
            fputs("***", out);
            s = p;
        }
    }
    const char *q = strchr(s, '?');
    if (!q) {
        fputs(s, out);
        return;
    }
    fwrite(s, 1, (size_t)(q + 1 - s), out);
    for (p = q + 1; *p;) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        if (eq && conninfo_secret_key(p, (size_t)(eq - p))) {
            fwrite(p, 1, (size_t)(eq + 1 - p), out);
            fputs("***", out);
        } else {
            fwrite(p, 1, n, out);
        }
        if (!amp)
            break;
        fputc('&', out);
        p = amp + 1;
    }
}

static void print_conninfo(FILE *out, const char *s)
{
    if (strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0)
        print_conninfo_uri(out, s);
    else if (print_conninfo_keywords(out, s) != 0)
        fputs("(hidden: cannot be parsed)", out);
}

void config_dump(const struct config *cfg, FILE *out)
{
    const char *section = NULL;
    for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
        const struct setting *s = &settings[i];
        const void *field = cfield_of(cfg, s);
        if (!section || strcmp(section, s->section) != 0) {
            fprintf(out, "%s[%s]\n", section ? "\n" : "", s->section);
            section = s->section;
        }
        fprintf(out, "%s = ", s->key);
        switch (s->type) {
        case T_INT:
            fprintf(out, "%d", *(const int *)field);
            break;
        case T_BOOL:
            fputs(*(const bool *)field ? "true" : "false", out);
            break;
        case T_STRING:
            fputc('"', out);
            if (strstr(field, "://"))
                print_url_masked(out, field);
            else
                fputs(field, out);
            fputc('"', out);
            break;
        case T_SECRET: {
            size_t n = strnlen(field, s->size);
            if (n == 0)
                fputs("(unset)", out);
            else if (strcmp(field, config_demo_key) == 0)
                fprintf(out, "(set, %zu bytes)  # the built-in demo key", n);
            else
                fprintf(out, "(set, %zu bytes)", n);
            break;
        }
        case T_CONNINFO:
            fputc('"', out);
            print_conninfo(out, field);
            fputc('"', out);
            break;
        }
        fputc('\n', out);
    }
}

void config_help(FILE *out)
{
    for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
        const struct setting *s = &settings[i];
        char env[96];
        env_name(s, env, sizeof(env));
        bool quote = is_string(s);
        fprintf(out, "%s.%s  (%s)  default: %s%s%s  \u2014 %s\n", s->section, s->key, env,
                quote ? "\"" : "", s->def, quote ? "\"" : "", s->doc);
    }
}
