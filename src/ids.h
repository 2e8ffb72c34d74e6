/* ids.h - validators and normalizers of the identifiers patients and MIS
 * send: SNILS, ЕНП, old-style polis, passport, GUID, dates, times, phones,
 * MCOD, and a case-fold of names for matching. Pure functions, no
 * allocation: every one of them is safe on untrusted input of any length. */
#ifndef MIPGW_IDS_H
#define MIPGW_IDS_H

#include <stdbool.h>
#include <stddef.h>

/* Result of a check: what is wrong, so that the caller can pick the error. */
enum id_check {
    ID_OK = 0,
    ID_EMPTY,      /* missing or empty */
    ID_FORMAT,     /* wrong shape: characters or length */
    ID_CHECKSUM,   /* right shape, wrong check digits */
};

/* SNILS: 11 digits, written with or without "-" and " " separators
 * ("112-233-445 95", "11223344595"). Check number: first nine digits times
 * weights 9..1; sum < 100 is the check; 100 and 101 give 00; above 101 the
 * sum mod 101, where 100 gives 00. Numbers up to 001-001-998 are not
 * checked. On ID_OK (and ID_CHECKSUM) out gets the 11 bare digits + NUL. */
enum id_check ids_snils(const char *s, char out[12]);
/* 000-000-000 00, bare: what MIS send for an unknown SNILS, never a
 * person's number (passes ids_snils, being unchecked). */
#define IDS_SNILS_PLACEHOLDER "00000000000"

/* ЕНП: exactly 16 digits, the last a Luhn check digit over the first 15. */
enum id_check ids_enp(const char *s);

/* Old-style polis number or series: 1..20 characters of letters (any
 * script), digits, '-' and ' '. out gets the normalized form: spaces and
 * dashes removed, letters upper-cased (Cyrillic and Latin). */
enum id_check ids_polis_part(const char *s, char *out, size_t cap);

/* Passport of the Russian Federation: series of 4 digits (spaces allowed
 * inside, "46 03"), number of 6 digits. Normalized to bare digits. */
enum id_check ids_passport_series(const char *s, char out[5]);
enum id_check ids_passport_number(const char *s, char out[7]);

/* GUID: 8-4-4-4-12 hex digits, any case, no braces. out gets lower case. */
enum id_check ids_guid(const char *s, char out[37]);

/* Calendar date YYYY-MM-DD, a real day, year 1900..2100. */
enum id_check ids_date(const char *s, int *y, int *m, int *d);
/* Date or ISO date-time ("2022-12-08T00:00:00.000Z"): takes the date part. */
enum id_check ids_date_or_datetime(const char *s, int *y, int *m, int *d);
/* Time HH:MM, 00:00..23:59. */
enum id_check ids_time_hhmm(const char *s, int *h, int *min);

/* МКОД of an LPU: 6 or 7 digits, leading zeros kept (mip-api.md: the sizes
 * seen; logins, patients and LPUs all take it by this one rule). */
enum id_check ids_mcod(const char *s);
struct buf;
/* The PostgreSQL text[] literal "{470102,330501}" of n МКОДs, appended to
 * out: the one place a login's LPUs become an SQL parameter. False, with
 * out unusable, when any of them is not a МКОД (digits only, so nothing in
 * the literal needs quoting). */
bool ids_mcod_array(const char *const *mcods, int n, struct buf *out);

/* Russian phone: 11 digits starting with 7 or 8, optional leading '+',
 * separators " ()-" ignored. Normalized to "7XXXXXXXXXX". */
enum id_check ids_phone_ru(const char *s, char out[12]);

/* Ukrainian phone for OTP: exactly "+380" followed by 9 digits. */
enum id_check ids_phone_ua(const char *s);

/* Luhn check over a string of digits (true when the last digit checks). */
bool ids_luhn_valid(const char *digits, size_t n);
/* The Luhn check digit for a string of digits. */
int ids_luhn_digit(const char *digits, size_t n);

/* Case-fold of a name for matching: valid UTF-8 only (else returns false);
 * Cyrillic and Latin letters lower-cased, "ё" folded to "е", leading and
 * trailing spaces trimmed, inner runs of spaces collapsed to one. */
bool ids_fold_name(const char *s, char *out, size_t cap);

/* True when s is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool ids_utf8_valid(const char *s, size_t n);
/* Makes s (NUL-terminated) valid UTF-8 in place: each byte that does not
 * start a valid character becomes '?', a character cut by a truncation
 * included. For text of the client's that an answer echoes. */
void ids_utf8_scrub(char *s);

#endif
