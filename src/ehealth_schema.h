/* ehealth_schema.h - the Ukrainian eHealth cabinet registration's input
 * rules (seed 004, docs in shared/reference/ehealth-registration.md): the
 * person schema of the predecessor's person_create_update, the UserRequest
 * the national login posts and the SMS code request, each answered as the
 * eHealth 422 "invalid" array. Also the small pure helpers of the flow:
 * password policy, name matching, the masked SMS factor and the OTP's Luhn
 * digit. No I/O, no stores, no clock: the caller passes today's date. */
#ifndef MIPGW_EHEALTH_SCHEMA_H
#define MIPGW_EHEALTH_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "util.h"

/* A hostile body must not make a huge answer: entries past this many are
 * dropped (and the walk stops early), and user text echoed in an entry (a
 * property's name, a bad date or e-mail) is cut to EHS_ECHO_MAX bytes at a
 * character boundary and followed by "...". */
#define EHS_MAX_ENTRIES 100
#define EHS_ECHO_MAX 100
/* Arrays longer than this get a length entry and are not walked. */
#define EHS_ARRAY_MAX 100

/* A 422 report: the eHealth "invalid" array being built. */
struct ehs_report {
    struct buf entries;  /* the entries' JSON, comma-separated, no brackets */
    int n;               /* entries so far, at most EHS_MAX_ENTRIES */
    bool truncated;      /* an entry was refused by the cap */
};

void ehs_report_init(struct ehs_report *rep);
void ehs_report_free(struct ehs_report *rep);
/* Appends one entry {"entry_type":"json_data_property","entry":entry,
 * "rules":[{"description":description,"rule":rule,"params":params_json}]}.
 * params_json is JSON text of an array ("[]" when NULL), written as given;
 * the strings are JSON-escaped. Once the report holds EHS_MAX_ENTRIES it
 * only sets truncated. */
void ehs_add(struct ehs_report *rep, const char *entry, const char *rule, const char *description,
             const char *params_json);
/* Appends the whole array text "[...]" to out. */
void ehs_report_json(const struct ehs_report *rep, struct buf *out);

/* The registration body of seed 004: exactly otp (string "^[0-9]{4}$"),
 * password (string of 1..256 characters) and patient (the person schema).
 * today is "YYYY-MM-DD", the caller's local date, for the birth date's
 * checks (skipped when today is NULL or not a date). Adds one entry per
 * broken rule and returns rep->n. Neither the password policy nor the OTP
 * itself is checked here. */
int ehs_validate_registration(yajl_val body, const char *today, struct ehs_report *rep);
/* The UserRequest the national login's callback posts: exactly tax_id,
 * first_name, last_name and email, all required strings. */
int ehs_validate_user_request(yajl_val body, struct ehs_report *rep);
/* The SMS code request: exactly {phone_number}, "^\+38[0-9]{10}$". */
int ehs_validate_otp_request(yajl_val body, struct ehs_report *rep);

/* The phone_number of the patient's first OTP authentication method, or
 * NULL. Keys compared exactly, as the schema does. */
const char *ehs_otp_phone(yajl_val patient);

/* Password policy: at least 12 characters (code points) with a lower-case
 * letter, an upper-case letter (Latin or Ukrainian Cyrillic) and a digit. */
bool ehs_password_ok(const char *pw);
/* True when two names are the same person's: equal after trimming spaces,
 * without regard to the case of Latin and Ukrainian Cyrillic letters, the
 * apostrophes ' ’ ʼ taken as one. */
bool ehs_names_match(const char *a, const char *b);
/* The SMS factor as the reference shows it: "+380931234585" ->
 * "+38093*****85" (six characters, five asterisks, the last two). A string
 * shorter than eight bytes gives "*****". */
void ehs_mask_phone(const char *phone, char out[14]);
/* The Luhn check digit of the first n characters of digits, -1 when one of
 * them is not a digit (the OTP is three random digits and this one). */
int ehs_luhn_digit(const char *digits, size_t n);
/* True when code is two or more digits, the last the Luhn digit of the rest. */
bool ehs_luhn_ok(const char *code);

#endif
