/* json.c - see json.h. */
#include "json.h"

#include "ids.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What a scan of the raw body found before yajl sees it. */
enum json_scan {
    JSON_SCAN_OK,
    JSON_SCAN_DEEP,      /* nesting deeper than allowed */
    JSON_SCAN_COMMENT,   /* a '/' outside strings: a comment, which JSON has not */
};

/* Counts nesting outside strings. yajl's own stack would grow to any depth
 * and the tree is freed recursively, so a 10,000-deep body must be refused
 * before either sees it. yajl_tree_parse accepts comments, whose text this
 * count would read as code (a quote in one hides every bracket after it),
 * so a '/' outside strings is refused too: JSON has no comments. */
static enum json_scan json_scan(const char *p, size_t len, int max_depth)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = p[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return JSON_SCAN_DEEP;
        } else if (c == '}' || c == ']') {
            depth--;
        } else if (c == '/') {
            return JSON_SCAN_COMMENT;
        }
    }
    return JSON_SCAN_OK;
}

/* yajl encodes a lone \\udc00 escape as a surrogate: check what it built. */
static bool json_utf8_tree(yajl_val v)
{
    if (YAJL_IS_STRING(v))
        return ids_utf8_valid(v->u.string, strlen(v->u.string));
    if (YAJL_IS_ARRAY(v)) {
        for (size_t i = 0; i < v->u.array.len; i++)
            if (!json_utf8_tree(v->u.array.values[i]))
                return false;
    } else if (YAJL_IS_OBJECT(v)) {
        for (size_t i = 0; i < v->u.object.len; i++)
            if (!ids_utf8_valid(v->u.object.keys[i], strlen(v->u.object.keys[i])) ||
                !json_utf8_tree(v->u.object.values[i]))
                return false;
    }
    return true;
}

yajl_val json_parse(const char *data, size_t len, int max_depth, char *err, size_t errlen)
{
    switch (json_scan(data, len, max_depth)) {
    case JSON_SCAN_DEEP:
        snprintf(err, errlen, "nesting deeper than %d", max_depth);
        return NULL;
    case JSON_SCAN_COMMENT:
        snprintf(err, errlen, "a comment, which JSON does not allow");
        return NULL;
    case JSON_SCAN_OK:
        break;
    }
    if (memchr(data, '\0', len)) {
        snprintf(err, errlen, "NUL byte in body");
        return NULL;
    }
    if (!ids_utf8_valid(data, len)) {
        snprintf(err, errlen, "invalid UTF-8");
        return NULL;
    }
    char *copy = malloc(len + 1);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    memcpy(copy, data, len);
    copy[len] = '\0';
    char yerr[128] = "";
    yajl_val v = yajl_tree_parse(copy, yerr, sizeof(yerr));
    explicit_bzero(copy, len);   /* a body may carry a password */
    free(copy);
    if (v && !json_utf8_tree(v)) {
        yajl_tree_free(v);
        snprintf(err, errlen, "invalid UTF-8 (a lone surrogate escape)");
        return NULL;
    }
    if (!v) {
        /* yajl's message spans lines; keep the first one. */
        char *nl = strchr(yerr, '\n');
        if (nl)
            *nl = '\0';
        snprintf(err, errlen, "%s", yerr[0] ? yerr : "syntax error");
    }
    return v;
}

yajl_val json_get(yajl_val obj, const char *key)
{
    if (!obj || !YAJL_IS_OBJECT(obj))
        return NULL;
    for (size_t i = 0; i < obj->u.object.len; i++) {
        if (strcasecmp(obj->u.object.keys[i], key) == 0)
            return obj->u.object.values[i];
    }
    return NULL;
}

const char *json_str(yajl_val v)
{
    return v && YAJL_IS_STRING(v) ? v->u.string : NULL;
}

bool json_is_null(yajl_val v)
{
    return !v || YAJL_IS_NULL(v);
}

yajl_gen json_gen_new(void)
{
    return yajl_gen_alloc(NULL);
}

void json_gen_str(yajl_gen g, const char *s)
{
    yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

void json_buf_str(struct buf *out, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    buf_puts(out, "\"");
    for (const char *run = s;; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        buf_append(out, run, (size_t)(s - run));
        if (!ch)
            break;
        char esc[6] = {'\\', (char)ch};
        size_t n = 2;
        if (ch < 0x20) {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[ch >> 4];
            esc[5] = hex[ch & 15];
            n = 6;
        }
        buf_append(out, esc, n);
        run = s + 1;
    }
    buf_puts(out, "\"");
}

void json_gen_kv_str(yajl_gen g, const char *key, const char *val)
{
    json_gen_str(g, key);
    if (val)
        json_gen_str(g, val);
    else
        yajl_gen_null(g);
}

void json_gen_kv_int(yajl_gen g, const char *key, long long val)
{
    json_gen_str(g, key);
    yajl_gen_integer(g, val);
}

void json_gen_kv_bool(yajl_gen g, const char *key, bool val)
{
    json_gen_str(g, key);
    yajl_gen_bool(g, val);
}

void json_gen_finish(yajl_gen g, struct buf *out)
{
    const unsigned char *p;
    size_t n;
    yajl_gen_get_buf(g, &p, &n);
    buf_append(out, p, n);
    yajl_gen_free(g);
}

void json_gen_value(yajl_gen g, yajl_val v)
{
    if (!v || YAJL_IS_NULL(v)) {
        yajl_gen_null(g);
    } else if (YAJL_IS_STRING(v)) {
        json_gen_str(g, v->u.string);
    } else if (YAJL_IS_NUMBER(v)) {
        yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
    } else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
        yajl_gen_bool(g, YAJL_IS_TRUE(v));
    } else if (YAJL_IS_ARRAY(v)) {
        yajl_gen_array_open(g);
        for (size_t i = 0; i < v->u.array.len; i++)
            json_gen_value(g, v->u.array.values[i]);
        yajl_gen_array_close(g);
    } else if (YAJL_IS_OBJECT(v)) {
        yajl_gen_map_open(g);
        for (size_t i = 0; i < v->u.object.len; i++) {
            json_gen_str(g, v->u.object.keys[i]);
            json_gen_value(g, v->u.object.values[i]);
        }
        yajl_gen_map_close(g);
    }
}
