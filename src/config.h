/* config.h - every setting of the gateway, read from an INI file and then
 * overridden by environment variables named MIPGW_<SECTION>_<KEY>
 * (upper case). The table in config.c is the one place that names a setting,
 * its default, its bounds and its documentation. The loaded struct is
 * read-only once the workers start. */
#ifndef MIPGW_CONFIG_H
#define MIPGW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CONFIG_MAX_KEY 256
#define CONFIG_MAX_PROXIES 16
/* The longest lifetime a setting may give a key or token: thirty days. */
#define CONFIG_TTL_MAX_S (86400 * 30)

struct config {
    /* [http] */
    char http_listen[64];          /* listen address, an IP literal */
    int http_port;
    int http_workers;              /* 0: one per core */
    int http_backlog;              /* listen(2) backlog of each listener */
    int http_max_header_size;      /* bytes of request line + headers */
    int http_max_body_size;        /* bytes */
    int http_read_timeout_ms;      /* idle or slow client: connection dropped */
    int http_request_timeout_ms;   /* a whole request must arrive within this */
    int http_write_timeout_ms;
    int http_shutdown_grace_ms;    /* SIGTERM: how long requests in flight may finish */
    char http_trusted_proxies[256];/* comma-separated IPs whose X-Forwarded-For is believed */
    int http_max_query_params;     /* more parameters than this: 400 */
    int http_max_connections;      /* client connections per worker; more are closed */
    int http_max_buffered_mb;      /* unparsed request input per worker, MiB */

    /* [pg] */
    char pg_conninfo[1024];        /* libpq connection string; use hostaddr or a socket
                                      directory: a host name would block on DNS */
    int pg_pool_size;              /* connections per worker thread */
    int pg_timeout_ms;             /* deadline of each query */
    int pg_connect_timeout_ms;
    int pg_queue_max;              /* queries waiting for a connection, per worker; more: 503 */
    int pg_batch_max;              /* calls of a batchable statement sent as one */
    int pg_batch_conns;            /* connections batchable statements may hold at once */

    /* [redis] */
    char redis_host[256];          /* IP literal, or a path for a unix socket */
    int redis_port;
    int redis_timeout_ms;          /* deadline of each command */
    int redis_connect_timeout_ms;
    char redis_password[256];

    /* [tokens] */
    char tokens_cod_key[CONFIG_MAX_KEY];     /* HS256 key the gateway signs with */
    char tokens_cod_key_file[512];
    char tokens_portal_key[CONFIG_MAX_KEY];  /* HS256 key of portals that mint RPGU tokens */
    char tokens_portal_key_file[512];
    int tokens_cod_ttl_s;
    int tokens_rpgu_ttl_s;
    int tokens_portal_max_ttl_s;
    int tokens_ident_cache_ttl_s;  /* identity look-ups cached in Redis this long */
    int tokens_min_key_len;

    /* [time] */
    char time_zone[64];            /* time zone of timestamps in answers */

    /* [ratelimit] */
    int ratelimit_window_s;
    int ratelimit_token_per_addr;  /* token requests per client address per window; 0 = off */
    int ratelimit_token_per_identity; /* per identity (hash of the looked-up data) */

    /* [mis] hospitals' systems: logins and uploads */
    int mis_auth_cache_ttl_s;      /* a verified Basic credential is remembered this long */
    int mis_hash_t_cost;           /* argon2id passes */
    int mis_hash_m_cost_kib;       /* argon2id memory, KiB */
    int mis_hash_threads;          /* threads that verify passwords off the event loops */
    int mis_hash_queue_max;        /* verifications waiting for a thread; more get 503 */
    int mis_max_batch_items;       /* items in one upload request */

    /* [schedule] */
    int schedule_horizon_days;     /* how far ahead cells are shown and booked */
    int schedule_cache_ttl_ms;     /* a resource's cells are served from memory this long */

    /* [booking] rules (each on when true) and the Redis fast path */
    bool booking_rule_internet_access;      /* 4132 */
    bool booking_rule_self_booking_block;   /* 4007 */
    bool booking_rule_children_lpu;         /* 4005 */
    int booking_children_lpu_age;
    bool booking_rule_age_limits;           /* 4029 */
    bool booking_rule_dispensary;           /* 4007 */
    bool booking_rule_referral_only;        /* 4133 */
    bool booking_rule_one_per_speciality;   /* 4008 */
    bool booking_rule_delete_old_time;      /* 4135 */
    bool booking_rule_delete_visit_status;  /* 4136 */
    int booking_lock_ttl_ms;       /* a cell's lock in Redis */
    int booking_marker_ttl_s;      /* a booked cell's marker in Redis */
    int booking_visits_max;        /* bookings in a patient's list */

    /* [ehealth] the eHealth cabinet sign-up (seed 004) */
    char ehealth_clients[256];     /* comma-separated logins (`mipgw user`) that may call it */
    char ehealth_jwt_alg[8];       /* HS256 or HS512: the only one accepted */
    char ehealth_jwt_key[CONFIG_MAX_KEY];   /* signs UserRequest tokens; empty: cabinet off */
    char ehealth_jwt_key_file[512];
    int ehealth_user_request_ttl_s;
    int ehealth_otp_ttl_s;         /* an SMS code is valid this long */
    int ehealth_otp_attempts;      /* wrong codes before the code is spent */
    int ehealth_otp_per_phone;     /* code requests per phone per window */
    int ehealth_otp_window_s;
    int ehealth_access_token_ttl_s;
    int ehealth_max_body;          /* bytes of a cabinet request body */
    char ehealth_sms_sender[16];   /* "redis" (a list a test or demo reads) or "webhook" */
    char ehealth_sms_sink_key[128];
    int ehealth_sms_sink_max;      /* the list is trimmed to this many messages */
    char ehealth_sms_webhook_url[512];  /* http://IP:port/path of the operator's SMS gateway */
    int ehealth_sms_timeout_ms;    /* deadline of one webhook attempt */
    int ehealth_sms_retries;       /* further attempts after a failed one */

    /* [log] */
    char log_file[512];            /* empty: standard error */
    char log_level[16];
    bool log_access;

    /* [demo] */
    bool demo_mode;                /* allows the built-in demo keys and demo passwords */
};

/* Fills defaults, reads path (NULL: no file), applies the environment, loads
 * key files and validates. On failure writes a message naming the setting
 * into err and returns -1. */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);
/* Defaults only (tests start here). */
void config_defaults(struct config *cfg);
/* Sets one setting by section and key from a string, with the table's
 * checks. Returns 0 or -1 with err filled. */
int config_set(struct config *cfg, const char *section, const char *key,
               const char *value, char *err, size_t errlen);
/* Checks cross-setting rules (keys present and long enough outside demo
 * mode, ...). */
int config_validate(const struct config *cfg, char *err, size_t errlen);
/* Writes every setting with its value (secrets masked) for --check-config. */
void config_dump(const struct config *cfg, FILE *out);
/* Lists every setting with its environment name and documentation. */
void config_help(FILE *out);

/* Demo keys used only when demo_mode is on and no key is configured. */
extern const char config_demo_key[];
extern const char config_demo_cabinet_key[];

#endif
