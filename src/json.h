/* json.h - yajl with limits: parsing untrusted bodies into a tree with a
 * depth bound checked before yajl allocates anything, case-insensitive field
 * access (the seeds write the same field as "Family" and "family"), and a
 * few generator shortcuts. */
#ifndef MIPGW_JSON_H
#define MIPGW_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "util.h"

#define JSON_MAX_DEPTH 32

/* Parses len bytes (need not be NUL-terminated). Returns the tree, which the
 * caller frees with yajl_tree_free, or NULL with a short reason in err:
 * nesting deeper than max_depth, invalid UTF-8, or a syntax error. */
yajl_val json_parse(const char *data, size_t len, int max_depth, char *err, size_t errlen);

/* Field of an object, the key compared without regard to ASCII case.
 * NULL when obj is not an object or has no such field. */
yajl_val json_get(yajl_val obj, const char *key);
/* The string value, or NULL when v is absent, null or not a string. */
const char *json_str(yajl_val v);
/* True when v is absent or JSON null. */
bool json_is_null(yajl_val v);

/* A generator that writes compact JSON and does not validate UTF-8 (every
 * string it is given was validated on the way in or is our own). */
yajl_gen json_gen_new(void);
void json_gen_str(yajl_gen g, const char *s);
void json_gen_kv_str(yajl_gen g, const char *key, const char *val);  /* val NULL: null */
void json_gen_kv_int(yajl_gen g, const char *key, long long val);
void json_gen_kv_bool(yajl_gen g, const char *key, bool val);
/* Writes a parsed value back out (for storing an object as jsonb). */
void json_gen_value(yajl_gen g, yajl_val v);
/* Appends s as a JSON string, quoted and escaped (s is valid UTF-8). */
void json_buf_str(struct buf *out, const char *s);
/* Appends the generated text to out and frees the generator. */
void json_gen_finish(yajl_gen g, struct buf *out);

#endif
