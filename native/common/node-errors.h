/*
 * Shared by Satchel's addons: errors shaped like Node's own system errors, so JavaScript code
 * handles an addon's failure exactly as it handles one from the fs module (`err.code`).
 */
#ifndef SATCHEL_NODE_ERRORS_H
#define SATCHEL_NODE_ERRORS_H

#include <limits.h>
#include <stdio.h>

#include <node_api.h>
#include <uv.h>

/*
 * Builds an Error with message "CODE: description, syscall 'path'" and properties code
 * ("ENOSPC"), errno (negative, as in Node), syscall and path (when not NULL).
 */
static inline napi_value make_errno_error(napi_env env, int err, const char* syscall, const char* path) {
  const char* code = uv_err_name(-err);
  const char* description = uv_strerror(-err);
  char text[PATH_MAX + 256];
  if (path != NULL) {
    snprintf(text, sizeof text, "%s: %s, %s '%s'", code, description, syscall, path);
  } else {
    snprintf(text, sizeof text, "%s: %s, %s", code, description, syscall);
  }
  napi_value message, code_value, error, errno_value, syscall_value;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_value);
  napi_create_error(env, code_value, message, &error);
  napi_create_int32(env, -err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &syscall_value);
  napi_set_named_property(env, error, "syscall", syscall_value);
  if (path != NULL) {
    napi_value path_value;
    napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &path_value);
    napi_set_named_property(env, error, "path", path_value);
  }
  return error;
}

/*
 * make_errno_error for a copy: the error names `src` and carries `source: true` when it concerns
 * the file read (`on_source`), else it names `temp`, the file being written.
 */
static inline napi_value make_copy_error(napi_env env, int err, const char* syscall, const char* src,
                                         const char* temp, int on_source) {
  napi_value error = make_errno_error(env, err, syscall, on_source ? src : temp);
  if (on_source) {
    napi_value yes;
    napi_get_boolean(env, true, &yes);
    napi_set_named_property(env, error, "source", yes);
  }
  return error;
}

#endif
