/* ids.c - validators and normalizers of patient and LPU identifiers.
 *
 * Everything here runs on untrusted input straight from a request, so the
 * rules are the same in every function: a NULL or empty input is ID_EMPTY,
 * strings are read one byte at a time and every scan stops at the first byte
 * that does not fit (the NUL never fits), so no function reads past the
 * terminator; outputs are written only within their declared size, and on
 * failure a non-NULL output is left as an empty string. Output pointers may
 * be NULL when the caller only wants the verdict.
 *
 * ctype.h is avoided on purpose: its answers depend on the locale and it is
 * undefined for negative chars, while these rules are about ASCII digits. */
#include "ids.h"
#include "util.h"

#include <stdint.h>
#include <string.h>

/* SNILS numbers up to 001-001-998 were issued before the check number
 * existed, so their check digits are not verified. */
#define SNILS_UNCHECKED_MAX 1001998L
#define POLIS_MAX_CHARS 20
#define MCOD_MIN_DIGITS 6
#define MCOD_MAX_DIGITS 7

static bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

static int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads exactly n digits as a number. Stops at the first non-digit, so a
 * short string ends the scan at its NUL. */
static bool read_digits(const char *s, int n, int *v) {
    int r = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit((unsigned char)s[i])) return false;
        r = r * 10 + (s[i] - '0');
    }
    *v = r;
    return true;
}

static void clear_out(char *out, size_t cap) {
    if (out && cap > 0) out[0] = '\0';
}

/* ---- UTF-8 ---- */

/* Decodes one code point at p, of at most n bytes. Returns its length 1..4,
 * or 0 when the sequence is invalid: overlong, a surrogate, above U+10FFFF,
 * truncated, or a NUL (a NUL inside a C string would cut it short
 * somewhere downstream, and stopping at it keeps NUL-terminated callers from
 * reading past their terminator). Continuation bytes are checked one at a
 * time, so the decoder never looks beyond a byte that is not one. The ranges
 * are those of Unicode's table 3-7 of well-formed sequences. */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp) {
    unsigned char c = p[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    uint32_t v;

    if (c == 0x00) return 0;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;        /* overlong below U+0800 */
        else if (c == 0xED) hi = 0x9F;   /* surrogates U+D800..DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xF0) lo = 0x90;        /* overlong below U+10000 */
        else if (c == 0xF4) hi = 0x8F;   /* above U+10FFFF */
    } else {
        return 0; /* stray continuation, C0/C1 overlong leads, F5..FF */
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        unsigned char b = p[i];
        if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF)) return 0;
        v = (v << 6) | (b & 0x3F);
    }
    *cp = v;
    return len;
}

bool ids_utf8_valid(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    uint32_t cp;

    if (!s) return false;
    while (n > 0) {
        size_t len = utf8_decode(p, n, &cp);
        if (len == 0) return false;
        p += len;
        n -= len;
    }
    return true;
}

void ids_utf8_scrub(char *s) {
    unsigned char *p = (unsigned char *)s;
    size_t n = strlen(s);
    uint32_t cp;

    while (n > 0) {
        size_t len = utf8_decode(p, n, &cp);
        if (len == 0) {
            *p = '?';
            len = 1;
        }
        p += len;
        n -= len;
    }
}

/* Appends a code point as UTF-8, keeping room for the NUL. */
static bool put_cp(char *out, size_t cap, size_t *pos, uint32_t cp) {
    unsigned char b[4];
    size_t len;

    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        len = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        len = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        len = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        len = 4;
    }
    if (cap - *pos <= len) return false; /* caller guarantees *pos < cap */
    memcpy(out + *pos, b, len);
    *pos += len;
    return true;
}

/* ---- Luhn ---- */

bool ids_luhn_valid(const char *digits, size_t n) {
    int sum = 0;

    if (!digits || n == 0) return false;
    /* All digits first, left to right, so a string shorter than n stops at
     * its NUL instead of being read backwards from beyond it. */
    for (size_t i = 0; i < n; i++)
        if (!is_digit((unsigned char)digits[i])) return false;
    /* Every second digit from the right, the check digit being the first. */
    for (size_t i = 0; i < n; i++) {
        int v = digits[n - 1 - i] - '0';
        if (i % 2 == 1) {
            v *= 2;
            if (v > 9) v -= 9;
        }
        sum = (sum + v) % 10;
    }
    return sum == 0;
}

/* Returns the digit that, appended, makes digits valid; -1 if digits is NULL
 * or holds a non-digit among its first n characters. */
int ids_luhn_digit(const char *digits, size_t n) {
    int sum = 0;

    if (!digits) return -1;
    for (size_t i = 0; i < n; i++)
        if (!is_digit((unsigned char)digits[i])) return -1;
    /* The check digit will take position 1, so the payload's last digit is
     * position 2 and is doubled. */
    for (size_t i = 0; i < n; i++) {
        int v = digits[n - 1 - i] - '0';
        if (i % 2 == 0) {
            v *= 2;
            if (v > 9) v -= 9;
        }
        sum = (sum + v) % 10;
    }
    return (10 - sum) % 10;
}

/* ---- SNILS, ЕНП ---- */

static int snils_check(const char *d) {
    int sum = 0;

    for (int i = 0; i < 9; i++) sum += (d[i] - '0') * (9 - i);
    if (sum < 100) return sum;
    if (sum == 100 || sum == 101) return 0;
    sum %= 101;
    return sum == 100 ? 0 : sum;
}

enum id_check ids_snils(const char *s, char out[12]) {
    char d[12];
    int n = 0;
    long head = 0;

    clear_out(out, 12);
    if (!s || !*s) return ID_EMPTY;
    /* Separators are accepted anywhere: people and MIS write the number in
     * every grouping; only the count of digits matters. */
    for (const char *p = s; *p; p++) {
        if (*p == '-' || *p == ' ') continue;
        if (!is_digit((unsigned char)*p) || n == 11) return ID_FORMAT;
        d[n++] = *p;
    }
    if (n != 11) return ID_FORMAT;
    d[11] = '\0';
    if (out) memcpy(out, d, 12);
    for (int i = 0; i < 9; i++) head = head * 10 + (d[i] - '0');
    if (head <= SNILS_UNCHECKED_MAX) return ID_OK;
    if (snils_check(d) != (d[9] - '0') * 10 + (d[10] - '0')) return ID_CHECKSUM;
    return ID_OK;
}

enum id_check ids_enp(const char *s) {
    size_t n = 0;

    if (!s || !*s) return ID_EMPTY;
    while (n < 17 && is_digit((unsigned char)s[n])) n++;
    if (n != 16 || s[n] != '\0') return ID_FORMAT;
    return ids_luhn_valid(s, 16) ? ID_OK : ID_CHECKSUM;
}

/* ---- Polis ---- */

/* Upper-cases a polis letter; returns 0 for a code point that is not one of
 * the letters a polis may hold (Latin, Russian Cyrillic with Ё). */
static uint32_t polis_letter_upper(uint32_t cp) {
    if (cp >= 'A' && cp <= 'Z') return cp;
    if (cp >= 'a' && cp <= 'z') return cp - 0x20;
    if (cp >= 0x0410 && cp <= 0x042F) return cp;       /* А..Я */
    if (cp >= 0x0430 && cp <= 0x044F) return cp - 0x20; /* а..я */
    if (cp == 0x0401 || cp == 0x0451) return 0x0401;    /* Ё, ё */
    return 0;
}

enum id_check ids_polis_part(const char *s, char *out, size_t cap) {
    const unsigned char *p = (const unsigned char *)s;
    size_t pos = 0, chars = 0;

    clear_out(out, cap);
    if (!s || !*s) return ID_EMPTY;
    if (!out || cap == 0) return ID_FORMAT; /* nowhere to put the result */
    while (*p) {
        uint32_t cp, up;
        /* SIZE_MAX is safe: the decoder stops at the first byte that is not
         * a continuation, and the NUL is not one. */
        size_t len = utf8_decode(p, SIZE_MAX, &cp);

        if (len == 0 || ++chars > POLIS_MAX_CHARS) goto bad;
        p += len;
        if (cp == ' ' || cp == '-') continue;
        if (cp >= '0' && cp <= '9') up = cp;
        else if ((up = polis_letter_upper(cp)) == 0) goto bad;
        if (!put_cp(out, cap, &pos, up)) goto bad;
    }
    if (pos == 0) goto bad; /* only separators */
    out[pos] = '\0';
    return ID_OK;
bad:
    out[0] = '\0';
    return ID_FORMAT;
}

/* ---- Passport ---- */

enum id_check ids_passport_series(const char *s, char out[5]) {
    char d[5];
    int n = 0;
    bool space = false;

    clear_out(out, 5);
    if (!s || !*s) return ID_EMPTY;
    /* Spaces only between digits: "46 03" is how the series is printed; a
     * leading or trailing one means something else was glued on. */
    for (const char *p = s; *p; p++) {
        if (*p == ' ') {
            if (n == 0) return ID_FORMAT;
            space = true;
            continue;
        }
        if (!is_digit((unsigned char)*p) || n == 4) return ID_FORMAT;
        d[n++] = *p;
        space = false;
    }
    if (n != 4 || space) return ID_FORMAT;
    d[4] = '\0';
    if (out) memcpy(out, d, 5);
    return ID_OK;
}

enum id_check ids_passport_number(const char *s, char out[7]) {
    int n = 0;

    clear_out(out, 7);
    if (!s || !*s) return ID_EMPTY;
    while (n < 7 && is_digit((unsigned char)s[n])) n++;
    if (n != 6 || s[n] != '\0') return ID_FORMAT;
    if (out) {
        memcpy(out, s, 6);
        out[6] = '\0';
    }
    return ID_OK;
}

/* ---- GUID ---- */

enum id_check ids_guid(const char *s, char out[37]) {
    char g[37];

    clear_out(out, 37);
    if (!s || !*s) return ID_EMPTY;
    for (int i = 0; i < 36; i++) {
        unsigned char c = (unsigned char)s[i];
        int v;

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return ID_FORMAT;
            g[i] = '-';
            continue;
        }
        if ((v = hex_value(c)) < 0) return ID_FORMAT; /* also the NUL */
        g[i] = "0123456789abcdef"[v];
    }
    if (s[36] != '\0') return ID_FORMAT;
    g[36] = '\0';
    if (out) memcpy(out, g, 37);
    return ID_OK;
}

/* ---- Dates and times ---- */

static bool is_leap(int y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m) {
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Parses the 10 characters of YYYY-MM-DD at s, nothing about what follows. */
static bool parse_date10(const char *s, int *y, int *m, int *d) {
    if (!read_digits(s, 4, y) || s[4] != '-') return false;
    if (!read_digits(s + 5, 2, m) || s[7] != '-') return false;
    if (!read_digits(s + 8, 2, d)) return false;
    if (*y < 1900 || *y > 2100 || *m < 1 || *m > 12) return false;
    return *d >= 1 && *d <= days_in_month(*y, *m);
}

static void set_date(int *y, int *m, int *d, int yy, int mm, int dd) {
    if (y) *y = yy;
    if (m) *m = mm;
    if (d) *d = dd;
}

enum id_check ids_date(const char *s, int *y, int *m, int *d) {
    int yy, mm, dd;

    if (!s || !*s) return ID_EMPTY;
    if (!parse_date10(s, &yy, &mm, &dd) || s[10] != '\0') return ID_FORMAT;
    set_date(y, m, d, yy, mm, dd);
    return ID_OK;
}

/* HH:MM at s, 00:00..23:59. */
static bool parse_hhmm(const char *s, int *h, int *min) {
    if (!read_digits(s, 2, h) || s[2] != ':' || !read_digits(s + 3, 2, min))
        return false;
    return *h <= 23 && *min <= 59;
}

/* The time after the 'T': HH:MM[:SS[.fraction]] then an optional zone, "Z"
 * or +HH:MM / -HH:MM / +HHMM / +HH, then the end. Loose on purpose (the date
 * is all the callers use) but strict enough to refuse trailing garbage. */
static bool valid_time_part(const char *s) {
    int h, min, sec;

    if (!parse_hhmm(s, &h, &min)) return false;
    s += 5;
    if (*s == ':') {
        if (!read_digits(s + 1, 2, &sec) || sec > 60) return false; /* 60: leap second */
        s += 3;
        if (*s == '.' || *s == ',') {
            int n = 0;
            for (s++; is_digit((unsigned char)*s); s++)
                if (++n > 9) return false;
            if (n == 0) return false;
        }
    }
    if (*s == 'Z') return s[1] == '\0';
    if (*s == '+' || *s == '-') {
        if (!read_digits(s + 1, 2, &h) || h > 23) return false;
        s += 3;
        if (*s == '\0') return true;
        if (*s == ':') s++;
        if (!read_digits(s, 2, &min) || min > 59) return false;
        s += 2;
    }
    return *s == '\0';
}

enum id_check ids_date_or_datetime(const char *s, int *y, int *m, int *d) {
    int yy, mm, dd;

    if (!s || !*s) return ID_EMPTY;
    if (!parse_date10(s, &yy, &mm, &dd)) return ID_FORMAT;
    if (s[10] != '\0' && (s[10] != 'T' || !valid_time_part(s + 11)))
        return ID_FORMAT;
    set_date(y, m, d, yy, mm, dd);
    return ID_OK;
}

enum id_check ids_time_hhmm(const char *s, int *h, int *min) {
    int hh, mm;

    if (!s || !*s) return ID_EMPTY;
    if (!parse_hhmm(s, &hh, &mm) || s[5] != '\0') return ID_FORMAT;
    if (h) *h = hh;
    if (min) *min = mm;
    return ID_OK;
}

/* ---- MCOD, phones ---- */

enum id_check ids_mcod(const char *s) {
    size_t n = 0;

    if (!s || !*s) return ID_EMPTY;
    while (n <= MCOD_MAX_DIGITS && is_digit((unsigned char)s[n])) n++;
    if (n < MCOD_MIN_DIGITS || n > MCOD_MAX_DIGITS || s[n] != '\0') return ID_FORMAT;
    return ID_OK;
}

bool ids_mcod_array(const char *const *mcods, int n, struct buf *out) {
    buf_puts(out, "{");
    for (int i = 0; i < n; i++) {
        if (ids_mcod(mcods[i]) != ID_OK) return false;
        if (i) buf_puts(out, ",");
        buf_puts(out, mcods[i]);
    }
    buf_puts(out, "}");
    return true;
}

enum id_check ids_phone_ru(const char *s, char out[12]) {
    char d[12];
    int n = 0;
    bool plus = false;

    clear_out(out, 12);
    if (!s || !*s) return ID_EMPTY;
    for (const char *p = s; *p; p++) {
        char c = *p;

        if (c == ' ' || c == '(' || c == ')' || c == '-') continue;
        /* One '+', before the digits: "+7 (999)" and "(+7) 999" alike. */
        if (c == '+') {
            if (plus || n > 0) return ID_FORMAT;
            plus = true;
            continue;
        }
        if (!is_digit((unsigned char)c) || n == 11) return ID_FORMAT;
        d[n++] = c;
    }
    if (n != 11 || (d[0] != '7' && d[0] != '8')) return ID_FORMAT;
    d[0] = '7'; /* 8 is the domestic trunk prefix of the same number */
    d[11] = '\0';
    if (out) memcpy(out, d, 12);
    return ID_OK;
}

enum id_check ids_phone_ua(const char *s) {
    if (!s || !*s) return ID_EMPTY;
    if (strncmp(s, "+380", 4) != 0) return ID_FORMAT;
    for (int i = 4; i < 13; i++)
        if (!is_digit((unsigned char)s[i])) return ID_FORMAT;
    return s[13] == '\0' ? ID_OK : ID_FORMAT;
}

/* ---- Names ---- */

/* Lower-cases the letters names are matched on; ё and Ё become е, since
 * the two are written interchangeably in Russian names. */
static uint32_t name_fold_cp(uint32_t cp) {
    if (cp >= 'A' && cp <= 'Z') return cp + 0x20;
    if (cp >= 0x0410 && cp <= 0x042F) return cp + 0x20; /* А..Я */
    if (cp == 0x0401 || cp == 0x0451) return 0x0435;    /* Ё, ё -> е */
    return cp;
}

bool ids_fold_name(const char *s, char *out, size_t cap) {
    const unsigned char *p = (const unsigned char *)s;
    size_t pos = 0;
    bool space = false;

    clear_out(out, cap);
    if (!s || !out || cap == 0) return false;
    while (*p) {
        uint32_t cp;
        size_t len = utf8_decode(p, SIZE_MAX, &cp); /* stops at the NUL */

        if (len == 0) goto bad;
        p += len;
        if (cp == ' ') {
            space = pos > 0; /* leading spaces are dropped */
            continue;
        }
        /* A run of spaces is written only once a word follows it, which
         * both collapses it and trims the trailing one. */
        if (space && !put_cp(out, cap, &pos, ' ')) goto bad;
        space = false;
        if (!put_cp(out, cap, &pos, name_fold_cp(cp))) goto bad;
    }
    out[pos] = '\0';
    return true;
bad:
    out[0] = '\0';
    return false;
}
