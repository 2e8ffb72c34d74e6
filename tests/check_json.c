/* check_json.c - unit tests of the JSON layer (src/json.c): the limits
 * json_parse puts on untrusted bodies (depth, UTF-8, NUL), case-insensitive
 * field access, and the generator helpers. */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ids.h"
#include "json.h"
#include "stmts.h"
#include "util.h"

/* Parses exactly len bytes from an exact-size heap copy, so that ASan
 * catches a read past the end (the input is not NUL-terminated). */
static yajl_val parse_n(const char *data, size_t len, int max_depth, char *err, size_t errlen)
{
    char *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, data, len);
    err[0] = '\0';
    yajl_val v = json_parse(copy, len, max_depth, err, errlen);
    free(copy);
    return v;
}

static yajl_val parse(const char *s, char *err, size_t errlen)
{
    return parse_n(s, strlen(s), JSON_MAX_DEPTH, err, errlen);
}

/* A refusal comes with a one-line reason. */
static void assert_refused(const char *data, size_t len, int max_depth, const char *what)
{
    char err[128];
    yajl_val v = parse_n(data, len, max_depth, err, sizeof(err));
    if (v)
        yajl_tree_free(v);
    ck_assert_msg(v == NULL, "%s: accepted", what);
    ck_assert_msg(err[0] != '\0', "%s: refused without a reason", what);
    ck_assert_msg(strchr(err, '\n') == NULL, "%s: the reason spans lines: %s", what, err);
}

/* Refused, with a reason that names what. */
static void v_refused_with(const char *data, const char *what)
{
    char err[128] = "";
    yajl_val v = parse_n(data, strlen(data), JSON_MAX_DEPTH, err, sizeof(err));
    if (v)
        yajl_tree_free(v);
    ck_assert_msg(v == NULL, "accepted: %.60s", data);
    ck_assert_msg(strstr(err, what) != NULL, "refused as \"%s\", not for a %s", err, what);
}

static char *repeat(const char *head, const char *unit, int n, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = malloc(hl + ul * (size_t)n + tl + 1);
    ck_assert_ptr_nonnull(s);
    char *p = s;
    memcpy(p, head, hl);
    p += hl;
    for (int i = 0; i < n; i++, p += ul)
        memcpy(p, unit, ul);
    memcpy(p, tail, tl + 1);
    return s;
}

/* n nested arrays around 1: [[[1]]] */
static char *nested_arrays(int n)
{
    char *open = repeat("", "[", n, "1");
    char *all = repeat(open, "]", n, "");
    free(open);
    return all;
}

/* ---- parsing ---- */

START_TEST(parse_valid)
{
    static const char *const ok[] = {
        "{}", "[]", "null", "true", "0", "-1.5e10", "\"\"", " \t\r\n{ \"a\" : [ 1 , 2 ] }\n",
        "{\"Family\":\"Иванов\",\"Name\":\"Иван\",\"Birthdate\":\"1980-01-01\",\"n\":[1,2.5,-3,true,false,null]}",
        "\"\\u0416\\ud83d\\ude00 \\\" \\\\ \\/ \\b\\f\\n\\r\\t\"",
        "\"ё 𝄞 €\"",
    };
    char err[128];

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        yajl_val v = parse(ok[i], err, sizeof(err));
        ck_assert_msg(v != NULL, "refused %s: %s", ok[i], err);
        yajl_tree_free(v);
    }
    yajl_val v = parse("{\"a\":{\"b\":[10,\"x\"]}}", err, sizeof(err));
    ck_assert_ptr_nonnull(v);
    yajl_val b = json_get(json_get(v, "a"), "b");
    ck_assert(b && YAJL_IS_ARRAY(b));
    ck_assert_uint_eq(b->u.array.len, 2);
    ck_assert_int_eq(YAJL_GET_INTEGER(b->u.array.values[0]), 10);
    ck_assert_str_eq(json_str(b->u.array.values[1]), "x");
    yajl_tree_free(v);

    v = parse("\"\\u0416\\ud83d\\ude00\"", err, sizeof(err));
    ck_assert_str_eq(json_str(v), "Ж😀");
    yajl_tree_free(v);
}
END_TEST

START_TEST(depth_limit)
{
    char err[128];

    for (int n = 1; n <= JSON_MAX_DEPTH; n++) {
        char *s = nested_arrays(n);
        yajl_val v = parse(s, err, sizeof(err));
        ck_assert_msg(v != NULL, "depth %d refused: %s", n, err);
        yajl_tree_free(v);
        free(s);
    }
    char *s = nested_arrays(JSON_MAX_DEPTH + 1);
    assert_refused(s, strlen(s), JSON_MAX_DEPTH, "one level too deep");
    parse(s, err, sizeof(err));
    ck_assert_msg(strstr(err, "nesting") != NULL, "reason: %s", err);
    free(s);

    /* Objects count as arrays do, and the limit is the caller's. */
    s = repeat("", "{\"a\":", 4, "1}}}}");
    yajl_val v = parse_n(s, strlen(s), 4, err, sizeof(err));
    ck_assert_msg(v != NULL, "%s", err);
    yajl_tree_free(v);
    assert_refused(s, strlen(s), 3, "objects one level too deep");
    free(s);
    assert_refused("[{\"a\":[{}]}]", 12, 3, "mixed one level too deep");
    v = parse_n("[{\"a\":[{}]}]", 12, 4, err, sizeof(err));
    ck_assert_ptr_nonnull(v);
    yajl_tree_free(v);

    /* Siblings do not add up: depth, not count. */
    s = repeat("[", "[[1]],", 1000, "[]]");
    v = parse_n(s, strlen(s), 3, err, sizeof(err));
    ck_assert_msg(v != NULL, "%s", err);
    yajl_tree_free(v);
    free(s);
}
END_TEST

/* Refused before yajl builds (and later frees, recursively) a deep tree. */
START_TEST(depth_ten_thousand)
{
    char *arr = nested_arrays(10000);
    char *obj = repeat("", "{\"k\":", 10000, "");
    char *open = repeat("", "[", 10000, ""); /* unclosed */
    struct timespec t0, t1;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 20; i++) {
        assert_refused(arr, strlen(arr), JSON_MAX_DEPTH, "10,000 nested arrays");
        assert_refused(obj, strlen(obj), JSON_MAX_DEPTH, "10,000 nested objects");
        assert_refused(open, strlen(open), JSON_MAX_DEPTH, "10,000 open brackets");
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    ck_assert_msg(ms < 1000.0, "60 refusals of 10,000-deep bodies took %.0f ms", ms);
    free(arr);
    free(obj);
    free(open);
}
END_TEST

/* JSON has no comments, though yajl_tree_parse reads them: a comment with a
 * quote in it would hide the brackets after it from the depth count, and a
 * 400,000-deep body behind one overflowed the stack of the tree's recursive
 * walks. Refused with its reason; a slash inside a string is text. */
START_TEST(comments_refused)
{
    char err[128];
    char *s = repeat("/*\"*/", "[", 100000, "");
    char *t = repeat(s, "]", 100000, "/*\"*/");
    v_refused_with(t, "comment");
    free(s);
    free(t);
    v_refused_with("{\"a\": 1 // one\n}", "comment");
    v_refused_with("/* lead */ {\"a\": 1}", "comment");
    yajl_val v = parse("{\"url\": \"http://x/y/*z*/\", \"d\": \"1/2\"}", err, sizeof(err));
    ck_assert_msg(v != NULL, "a slash in a string refused: %s", err);
    ck_assert_str_eq(json_str(json_get(v, "url")), "http://x/y/*z*/");
    yajl_tree_free(v);
}
END_TEST

/* Brackets inside strings are text, escaped quotes do not end a string, and
 * an escaped backslash does not swallow the closing quote. */
START_TEST(depth_not_fooled_by_strings)
{
    char err[128];
    char *s = repeat("{\"a\":\"", "[[[[", 1000, "\",\"b\":\"{{{{\"}");
    yajl_val v = parse(s, err, sizeof(err));
    ck_assert_msg(v != NULL, "brackets in a string counted: %s", err);
    ck_assert_uint_eq(strlen(json_str(json_get(v, "a"))), 4000);
    yajl_tree_free(v);
    free(s);

    s = repeat("[\"\\\"", "[[[[", 100, "\\\"\"]");
    v = parse(s, err, sizeof(err));
    ck_assert_msg(v != NULL, "an escaped quote ended the string: %s", err);
    yajl_tree_free(v);
    free(s);

    s = repeat("{\"[[[[\\\\\":\"]]]]\\\"[[[[\",\"k\":\"", "[", 100, "\"}"); /* in keys too */
    v = parse(s, err, sizeof(err));
    ck_assert_msg(v != NULL, "%s", err);
    yajl_tree_free(v);
    free(s);

    /* "\\" ends with a real quote: the brackets after it are structure. */
    s = repeat("[\"\\\\\",", "[", JSON_MAX_DEPTH, "");
    char *t = repeat(s, "]", JSON_MAX_DEPTH + 1, "");
    assert_refused(t, strlen(t), JSON_MAX_DEPTH, "depth after an escaped backslash");
    free(s);
    free(t);

    /* Closing brackets inside strings do not lower the count either. */
    s = repeat("[", "\"]]]]\",[", JSON_MAX_DEPTH, "");
    t = repeat(s, "]", JSON_MAX_DEPTH + 1, "");
    assert_refused(t, strlen(t), JSON_MAX_DEPTH, "closing brackets in strings");
    free(s);
    free(t);
}
END_TEST

static const struct {
    const char *what;
    const char *data;
} bad_utf8[] = {
    {"overlong C0 80", "\"\xC0\x80\""},
    {"overlong C1 BF", "\"\xC1\xBF\""},
    {"overlong E0 80 AF", "\"\xE0\x80\xAF\""},
    {"overlong F0 80 80 AF", "\"\xF0\x80\x80\xAF\""},
    {"surrogate ED A0 80", "\"\xED\xA0\x80\""},
    {"surrogate ED BF BF", "\"\xED\xBF\xBF\""},
    {"above U+10FFFF F4 90 80 80", "\"\xF4\x90\x80\x80\""},
    {"F5 lead", "\"\xF5\x80\x80\x80\""},
    {"FF", "\"\xFF\""},
    {"stray continuation", "\"\x80\""},
    {"truncated two-byte", "\"\xD0\""},
    {"truncated three-byte", "\"\xE2\x82\""},
    {"truncated four-byte", "\"\xF0\x9F\x98\""},
    {"truncated at the end of the body", "[\"\xE2\x82"},
    {"overlong in a key", "{\"\xC0\xAF\":1}"},
    {"surrogate in a key", "{\"\xED\xA0\x80\":1}"},
    {"Cyrillic then overlong", "{\"Family\":\"Иванов\xC0\x80\"}"},
};

/* One loop iteration per sequence above. */
START_TEST(utf8_refused)
{
    const char *data = bad_utf8[_i].data;
    char err[128];

    assert_refused(data, strlen(data), JSON_MAX_DEPTH, bad_utf8[_i].what);
    parse(data, err, sizeof(err));
    ck_assert_msg(strcasestr(err, "utf") != NULL, "%s: reason \"%s\" does not name UTF-8", bad_utf8[_i].what,
                  err);
}
END_TEST

/* The edges of the valid ranges are accepted. */
START_TEST(utf8_edges_accepted)
{
    static const char *const edges[] = {
        "\"\xC2\x80\"", "\"\xDF\xBF\"", "\"\xE0\xA0\x80\"", "\"\xED\x9F\xBF\"", "\"\xEE\x80\x80\"",
        "\"\xEF\xBF\xBF\"", "\"\xF0\x90\x80\x80\"", "\"\xF4\x8F\xBF\xBF\"",
    };
    char err[128];

    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        yajl_val v = parse(edges[i], err, sizeof(err));
        ck_assert_msg(v != NULL, "valid edge %zu refused: %s", i, err);
        yajl_tree_free(v);
    }
}
END_TEST

START_TEST(nul_refused)
{
    char err[128];

    assert_refused("\"a\0b\"", 5, JSON_MAX_DEPTH, "NUL in a string");
    assert_refused("{\"a\":1}\0", 8, JSON_MAX_DEPTH, "NUL after the value");
    assert_refused("\0{}", 3, JSON_MAX_DEPTH, "NUL before the value");
    assert_refused("{\"a\0\":1}", 8, JSON_MAX_DEPTH, "NUL in a key");
    parse_n("[1,\0 2]", 7, JSON_MAX_DEPTH, err, sizeof(err));
    ck_assert_msg(strstr(err, "NUL") != NULL, "reason: %s", err);
}
END_TEST

START_TEST(syntax_error_reason)
{
    static const char *const bad[] = {
        "", " ", "{", "}", "[1,]", "{\"a\":}", "{\"a\" 1}", "{a:1}", "{'a':1}", "[1 2]", "tru", "nul",
        "01", "1.", "\"unterminated", "\"bad \\x escape\"", "\"tab\tinside\"", "{} {}", "[] x", "NaN",
    };
    char err[128];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_refused(bad[i], strlen(bad[i]), JSON_MAX_DEPTH, bad[i]);
        parse(bad[i], err, sizeof(err));
        ck_assert_msg(strstr(err, "error") != NULL || strstr(err, "EOF") != NULL, "%s: reason \"%s\"", bad[i],
                      err);
    }
    /* A short buffer gets a truncated, terminated reason. */
    char tiny[8];
    memset(tiny, 'x', sizeof(tiny));
    ck_assert_ptr_null(json_parse("[1,]", 4, JSON_MAX_DEPTH, tiny, sizeof(tiny)));
    ck_assert(memchr(tiny, '\0', sizeof(tiny)) != NULL);
}
END_TEST

/* Whatever its escapes say, a string in the tree is valid UTF-8 (refusing
 * the body is fine too). One loop iteration per input. */
static const char *const escaped[] = {
    "\"\\ud800\"", "\"\\udc00\"", "\"\\udfff\"", "\"\\ud800x\"", "\"\\ud800\\u0041\"", "\"\\ud83d\\ude00\"",
};

START_TEST(escapes_give_utf8)
{
    char err[128];
    yajl_val v = parse(escaped[_i], err, sizeof(err));

    if (v) {
        const char *s = json_str(v);
        bool valid = ids_utf8_valid(s, strlen(s));
        yajl_tree_free(v);
        ck_assert_msg(valid, "%s decodes to invalid UTF-8", escaped[_i]);
    }
}
END_TEST

/* ---- access ---- */

START_TEST(get_case_insensitive)
{
    char err[128];
    yajl_val v = parse("{\"Family\":\"Иванов\",\"name\":\"Иван\",\"OT\":null,\"Фамилия\":\"x\"}", err, sizeof(err));

    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(json_str(json_get(v, "Family")), "Иванов");
    ck_assert_str_eq(json_str(json_get(v, "family")), "Иванов");
    ck_assert_str_eq(json_str(json_get(v, "FAMILY")), "Иванов");
    ck_assert_str_eq(json_str(json_get(v, "fAmIlY")), "Иванов");
    ck_assert_str_eq(json_str(json_get(v, "NAME")), "Иван");
    ck_assert_ptr_nonnull(json_get(v, "ot"));
    ck_assert_ptr_null(json_get(v, "Famil"));
    ck_assert_ptr_null(json_get(v, "Family "));
    ck_assert_ptr_null(json_get(v, "Familyy"));
    ck_assert_ptr_null(json_get(v, ""));
    ck_assert_str_eq(json_str(json_get(v, "Фамилия")), "x");
    ck_assert_ptr_null(json_get(v, "ФАМИЛИЯ")); /* ASCII case only */
    yajl_tree_free(v);

    v = parse("[\"Family\"]", err, sizeof(err));
    ck_assert_ptr_null(json_get(v, "Family")); /* not an object */
    yajl_tree_free(v);
    v = parse("\"Family\"", err, sizeof(err));
    ck_assert_ptr_null(json_get(v, "Family"));
    yajl_tree_free(v);
    ck_assert_ptr_null(json_get(NULL, "Family"));
}
END_TEST

START_TEST(str_and_null)
{
    char err[128];
    yajl_val v = parse("{\"s\":\"x\",\"e\":\"\",\"n\":null,\"i\":1,\"t\":true,\"f\":false,\"a\":[\"x\"],\"o\":{}}",
                       err, sizeof(err));

    ck_assert_ptr_nonnull(v);
    ck_assert_str_eq(json_str(json_get(v, "s")), "x");
    ck_assert_str_eq(json_str(json_get(v, "e")), "");
    ck_assert_ptr_null(json_str(json_get(v, "n")));
    ck_assert_ptr_null(json_str(json_get(v, "i")));
    ck_assert_ptr_null(json_str(json_get(v, "t")));
    ck_assert_ptr_null(json_str(json_get(v, "f")));
    ck_assert_ptr_null(json_str(json_get(v, "a")));
    ck_assert_ptr_null(json_str(json_get(v, "o")));
    ck_assert_ptr_null(json_str(json_get(v, "missing")));
    ck_assert_ptr_null(json_str(NULL));

    ck_assert(json_is_null(json_get(v, "n")));
    ck_assert(json_is_null(json_get(v, "missing")));
    ck_assert(json_is_null(NULL));
    ck_assert(!json_is_null(json_get(v, "s")));
    ck_assert(!json_is_null(json_get(v, "e")));
    ck_assert(!json_is_null(json_get(v, "i")));
    ck_assert(!json_is_null(json_get(v, "f")));
    ck_assert(!json_is_null(json_get(v, "a")));
    ck_assert(!json_is_null(json_get(v, "o")));
    yajl_tree_free(v);
}
END_TEST

/* ---- generating ---- */

static bool same_value(yajl_val a, yajl_val b)
{
    if (!a || !b)
        return a == b;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case yajl_t_string:
        return strcmp(a->u.string, b->u.string) == 0;
    case yajl_t_number:
        return strcmp(a->u.number.r, b->u.number.r) == 0;
    case yajl_t_array:
        if (a->u.array.len != b->u.array.len)
            return false;
        for (size_t i = 0; i < a->u.array.len; i++)
            if (!same_value(a->u.array.values[i], b->u.array.values[i]))
                return false;
        return true;
    case yajl_t_object:
        if (a->u.object.len != b->u.object.len)
            return false;
        for (size_t i = 0; i < a->u.object.len; i++)
            if (strcmp(a->u.object.keys[i], b->u.object.keys[i]) != 0 ||
                !same_value(a->u.object.values[i], b->u.object.values[i]))
                return false;
        return true;
    default: /* true, false, null */
        return true;
    }
}

static char *gen_value(yajl_val v)
{
    struct buf out;
    buf_init(&out);
    yajl_gen g = json_gen_new();
    json_gen_value(g, v);
    json_gen_finish(g, &out);
    return out.data;
}

START_TEST(gen_value_round_trip)
{
    static const char doc[] =
        "{\"Patient\": {\"Lpu\": \"c3c977af-c3b4-4517-9d57-50a6844ec660\", \"IsClosed\": false,\n"
        "  \"Names\": [\"Иванов\", \"Ж😀\", \"q\\\"b\\\\s\\n\\t\\u0001/\", \"\"]},\n"
        " \"Payload\": {\"PersonGuid\": [], \"x\": {}, \"deep\": [[[[{\"a\": [null]}]]]]},\n"
        " \"n\": [0, -1, 12345678901234567890, 1.5, -2.5e-3, 1E+2], \"t\": true, \"z\": null}";
    char err[128];
    yajl_val a = parse(doc, err, sizeof(err));
    ck_assert_msg(a != NULL, "%s", err);

    char *text = gen_value(a);
    yajl_val b = parse(text, err, sizeof(err));
    ck_assert_msg(b != NULL, "generated text does not parse (%s): %s", err, text);
    ck_assert_msg(same_value(a, b), "round trip changed the document: %s", text);
    char *again = gen_value(b);
    ck_assert_str_eq(again, text); /* a fixed point */
    ck_assert_ptr_null(strchr(text, '\n')); /* compact */
    ck_assert_ptr_null(strstr(text, ": "));
    yajl_tree_free(a);
    yajl_tree_free(b);
    free(text);
    free(again);

    a = parse("{\"a\":[1,\"x\",null,true,false,{},[]],\"b\":-2.5e3,\"Ключ\":\"значение\"}", err, sizeof(err));
    text = gen_value(a);
    ck_assert_str_eq(text, "{\"a\":[1,\"x\",null,true,false,{},[]],\"b\":-2.5e3,\"Ключ\":\"значение\"}");
    yajl_tree_free(a);
    free(text);

    text = gen_value(NULL);
    ck_assert_str_eq(text, "null");
    free(text);
}
END_TEST

START_TEST(gen_kv_helpers)
{
    struct buf out;
    char err[128];

    buf_init(&out);
    buf_puts(&out, "prefix:");
    yajl_gen g = json_gen_new();
    yajl_gen_map_open(g);
    json_gen_kv_str(g, "Family", "Иванов");
    json_gen_kv_str(g, "Middle", NULL);
    json_gen_kv_str(g, "Empty", "");
    json_gen_kv_str(g, "Esc", "q\"b\\s\n\x01");
    json_gen_kv_int(g, "Zero", 0);
    json_gen_kv_int(g, "Min", INT64_MIN);
    json_gen_kv_int(g, "Max", INT64_MAX);
    json_gen_kv_bool(g, "T", true);
    json_gen_kv_bool(g, "F", false);
    yajl_gen_string(g, (const unsigned char *)"List", 4);
    yajl_gen_array_open(g);
    json_gen_str(g, "a");
    json_gen_str(g, "б");
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    json_gen_finish(g, &out); /* appends, frees g */

    ck_assert_str_eq(out.data, "prefix:{\"Family\":\"Иванов\",\"Middle\":null,\"Empty\":\"\","
                               "\"Esc\":\"q\\\"b\\\\s\\n\\u0001\",\"Zero\":0,"
                               "\"Min\":-9223372036854775808,\"Max\":9223372036854775807,"
                               "\"T\":true,\"F\":false,\"List\":[\"a\",\"б\"]}");
    ck_assert_uint_eq(out.len, strlen(out.data));

    yajl_val v = parse(out.data + strlen("prefix:"), err, sizeof(err));
    ck_assert_msg(v != NULL, "%s", err);
    ck_assert_str_eq(json_str(json_get(v, "esc")), "q\"b\\s\n\x01");
    ck_assert(json_is_null(json_get(v, "middle")));
    ck_assert(YAJL_IS_TRUE(json_get(v, "t")));
    ck_assert(YAJL_IS_FALSE(json_get(v, "f")));
    ck_assert_int_eq(YAJL_GET_INTEGER(json_get(v, "min")), INT64_MIN);
    yajl_tree_free(v);
    buf_free(&out);
}
END_TEST

/* json_buf_str writes what yajl reads back as the same string, and escapes
 * exactly the quote, the backslash and the control characters. */
START_TEST(buf_str_round_trip)
{
    static const char *const cases[] = {"", "plain", "Иванов", "{470102,470103}", "q\"b\\s",
                                        "\n\r\t\x01\x1f", "\x7f and €"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf out;
        char err[128];
        buf_init(&out);
        buf_puts(&out, "[");
        json_buf_str(&out, cases[i]);
        buf_puts(&out, "]");
        yajl_val v = parse(out.data, err, sizeof(err));
        ck_assert_msg(v && YAJL_IS_ARRAY(v) && v->u.array.len == 1, "case %zu: %s", i, out.data);
        ck_assert_str_eq(json_str(v->u.array.values[0]), cases[i]);
        yajl_tree_free(v);
        buf_free(&out);
    }
    struct buf out;
    buf_init(&out);
    json_buf_str(&out, "a\"\\\x02z");
    ck_assert_str_eq(out.data, "\"a\\\"\\\\\\u0002z\"");
    buf_free(&out);
}
END_TEST

/* A batchable statement's values: one JSON array per parameter, JSON
 * parameters as they are, text ones as strings, NULL as null. */
START_TEST(batch_values)
{
    const char *a[] = {"{\"k\":1}", "{470102}"};
    const char *b[] = {"{\"k\":\"\\\"\"}", NULL};
    const char *const *calls[] = {a, b};
    struct buf out[2];
    buf_init(&out[0]);
    buf_init(&out[1]);
    stmt_batch_values(STMT_PATIENT_UPLOAD, calls, 2, out);
    ck_assert_str_eq(out[0].data, "[{\"k\":1},{\"k\":\"\\\"\"}]");
    ck_assert_str_eq(out[1].data, "[\"{470102}\",null]");
    buf_reset(&out[0]);
    buf_reset(&out[1]);
    stmt_batch_values(STMT_PATIENT_UPLOAD, calls + 1, 1, out);
    ck_assert_str_eq(out[0].data, "[{\"k\":\"\\\"\"}]");
    ck_assert_str_eq(out[1].data, "[null]");
    buf_free(&out[0]);
    buf_free(&out[1]);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc;

    tc = tcase_create("parse");
    tcase_add_test(tc, parse_valid);
    tcase_add_test(tc, syntax_error_reason);
    tcase_add_test(tc, nul_refused);
    tcase_add_loop_test(tc, utf8_refused, 0, (int)(sizeof(bad_utf8) / sizeof(bad_utf8[0])));
    tcase_add_test(tc, utf8_edges_accepted);
    tcase_add_loop_test(tc, escapes_give_utf8, 0, (int)(sizeof(escaped) / sizeof(escaped[0])));
    suite_add_tcase(s, tc);

    tc = tcase_create("depth");
    tcase_add_test(tc, depth_limit);
    tcase_add_test(tc, depth_ten_thousand);
    tcase_add_test(tc, depth_not_fooled_by_strings);
    tcase_add_test(tc, comments_refused);
    tcase_set_timeout(tc, 30); /* slow under sanitizers */
    suite_add_tcase(s, tc);

    tc = tcase_create("access");
    tcase_add_test(tc, get_case_insensitive);
    tcase_add_test(tc, str_and_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("gen");
    tcase_add_test(tc, gen_value_round_trip);
    tcase_add_test(tc, gen_kv_helpers);
    tcase_add_test(tc, buf_str_round_trip);
    tcase_add_test(tc, batch_values);
    suite_add_tcase(s, tc);

    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(json_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
