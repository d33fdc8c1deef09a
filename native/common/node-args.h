/*
 * Shared by Satchel's addons: reading string arguments (paths) from JavaScript into C.
 */
#ifndef SATCHEL_NODE_ARGS_H
#define SATCHEL_NODE_ARGS_H

#include <stdlib.h>
#include <string.h>

#include <node_api.h>

/*
 * A malloc'ed copy of the string argument `value`; NULL with an exception pending when it is
 * not a string (a TypeError saying `what`), when memory runs out, or when it holds a NUL byte
 * (as Node's fs refuses it: C would silently read another, shorter path).
 */
static inline char* string_arg_copy(napi_env env, napi_value value, const char* what) {
  size_t len = 0;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, what);
    return NULL;
  }
  char* out = malloc(len + 1);
  if (out == NULL) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, value, out, len + 1, &len);
  if (strlen(out) != len) {
    free(out);
    napi_throw_type_error(env, NULL, "a path must not contain a NUL byte");
    return NULL;
  }
  return out;
}

#endif
