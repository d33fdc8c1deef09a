/*
 * Satchel's Linux inotify addon (Node-API only).
 *
 * Why it exists: @parcel/watcher batches events for about 50 ms before delivering them, and
 * Node's recursive fs.watch costs ~55 MB per 20,000 folders and reports no close-after-write.
 * Satchel wants a save on the mirrors within milliseconds, and wants to know when a writer has
 * finished (IN_CLOSE_WRITE). This addon is the thinnest layer that gives both: one inotify
 * descriptor, polled on the main libuv loop, whose events are read and handed to JavaScript on
 * the same loop iteration they become readable, with no timer and no thread in between.
 *
 * JavaScript API (see src/watch/inotify-binding.ts for the typed wrapper):
 *   open(callback)              -> handle; callback(err, events) with events an array of
 *                                  { wd, mask, cookie, name } objects, in kernel order
 *   addWatch(handle, path, mask) -> wd (throws an Error with code/errno/syscall/path)
 *   rmWatch(handle, wd)          -> undefined (throws as addWatch does, e.g. EINVAL)
 *   close(handle)                -> undefined; idempotent, no callback afterwards
 *   setRef(handle, bool)         -> whether the descriptor keeps the event loop alive
 *   constants                    -> { IN_ACCESS: ..., ... } the kernel's mask bits
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "node-errors.h"

/* Guards against a foreign external being passed as a handle. */
#define WATCHER_MAGIC 0x53415443u /* "SATC" */

/*
 * Most bytes read per wake-up before yielding back to the loop. The poll is level-triggered,
 * so whatever is left is read on the next iteration; this keeps a flood (git checkout, rm -rf)
 * from starving timers and I/O of the rest of the process.
 */
#define MAX_BYTES_PER_WAKEUP (1u << 20)

typedef struct watcher {
  uint32_t magic;
  napi_env env;
  int fd;
  uv_poll_t poll;
  napi_ref callback;
  napi_async_context async_context;
  /* close() was called (or the environment is going away): no more callbacks. */
  int closed;
  /* The uv_poll_t is closed and its close callback ran (or it never started). */
  int handle_released;
  /* The JavaScript external that owns this struct was garbage-collected. */
  int external_released;
} watcher_t;

/* ---- small helpers ------------------------------------------------------------------------ */

#define NAPI_CALL(env, call)                                                                   \
  do {                                                                                         \
    if ((call) != napi_ok) {                                                                   \
      throw_last_napi_error(env, #call);                                                       \
      return NULL;                                                                             \
    }                                                                                          \
  } while (0)

static void throw_last_napi_error(napi_env env, const char* what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info* info = NULL;
  napi_get_last_error_info(env, &info);
  const char* msg = (info && info->error_message) ? info->error_message : "unknown Node-API error";
  char text[512];
  snprintf(text, sizeof text, "inotify addon: %s failed: %s", what, msg);
  napi_throw_error(env, NULL, text);
}


static void free_if_unowned(watcher_t* w) {
  if (w->handle_released && w->external_released) {
    w->magic = 0;
    free(w);
  }
}

static void on_poll_closed(uv_handle_t* handle) {
  watcher_t* w = (watcher_t*)handle->data;
  if (w->fd >= 0) {
    close(w->fd);
    w->fd = -1;
  }
  w->handle_released = 1;
  free_if_unowned(w);
}

static void on_env_cleanup(void* arg);

/*
 * Stops delivery and releases the descriptor. `from_js` is false when called from a finalizer
 * or the environment cleanup hook, where no JavaScript may run; `remove_hook` is false inside
 * the cleanup hook itself and before the hook was added.
 */
static void shutdown_watcher(watcher_t* w, int from_js, int remove_hook) {
  if (w->closed) return;
  w->closed = 1;
  if (remove_hook) napi_remove_env_cleanup_hook(w->env, on_env_cleanup, w);
  if (w->callback != NULL) {
    napi_delete_reference(w->env, w->callback);
    w->callback = NULL;
  }
  if (w->async_context != NULL && from_js) {
    napi_async_destroy(w->env, w->async_context);
  }
  w->async_context = NULL;
  uv_poll_stop(&w->poll);
  uv_close((uv_handle_t*)&w->poll, on_poll_closed);
}

static void on_env_cleanup(void* arg) { shutdown_watcher((watcher_t*)arg, 0, 0); }

static void on_external_finalized(napi_env env, void* data, void* hint) {
  (void)env;
  (void)hint;
  watcher_t* w = (watcher_t*)data;
  shutdown_watcher(w, 0, 1);
  w->external_released = 1;
  free_if_unowned(w);
}

static watcher_t* get_watcher(napi_env env, napi_value value) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok || type != napi_external) {
    napi_throw_type_error(env, NULL, "inotify addon: expected a handle returned by open()");
    return NULL;
  }
  void* data = NULL;
  napi_get_value_external(env, value, &data);
  watcher_t* w = (watcher_t*)data;
  if (w == NULL || w->magic != WATCHER_MAGIC) {
    napi_throw_type_error(env, NULL, "inotify addon: expected a handle returned by open()");
    return NULL;
  }
  return w;
}

/* ---- event delivery ----------------------------------------------------------------------- */

static napi_value event_object(napi_env env, const struct inotify_event* ev) {
  napi_value obj, wd, mask, cookie, name;
  napi_create_object(env, &obj);
  napi_create_int32(env, ev->wd, &wd);
  napi_create_uint32(env, ev->mask, &mask);
  napi_create_uint32(env, ev->cookie, &cookie);
  /* ev->name is NUL-padded to ev->len; it is empty for events on the watched folder itself. */
  napi_create_string_utf8(env, ev->len > 0 ? ev->name : "", ev->len > 0 ? strnlen(ev->name, ev->len) : 0,
                          &name);
  napi_set_named_property(env, obj, "wd", wd);
  napi_set_named_property(env, obj, "mask", mask);
  napi_set_named_property(env, obj, "cookie", cookie);
  napi_set_named_property(env, obj, "name", name);
  return obj;
}

static void on_poll(uv_poll_t* handle, int status, int events) {
  (void)events;
  watcher_t* w = (watcher_t*)handle->data;
  if (w->closed) return;
  napi_env env = w->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;

  napi_value list, error;
  napi_get_null(env, &error);
  napi_create_array(env, &list);
  uint32_t count = 0;

  if (status < 0) {
    napi_value message, code;
    napi_create_string_utf8(env, uv_strerror(status), NAPI_AUTO_LENGTH, &message);
    napi_create_string_utf8(env, uv_err_name(status), NAPI_AUTO_LENGTH, &code);
    napi_create_error(env, code, message, &error);
  } else {
    /* Aligned so the kernel's records can be read in place. */
    char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
    size_t total = 0;
    while (total < MAX_BYTES_PER_WAKEUP) {
      ssize_t len = read(w->fd, buf, sizeof buf);
      if (len < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) error = make_errno_error(env, errno, "read", NULL);
        break;
      }
      if (len == 0) break;
      total += (size_t)len;
      for (char* p = buf; p < buf + len;) {
        const struct inotify_event* ev = (const struct inotify_event*)p;
        napi_set_element(env, list, count++, event_object(env, ev));
        p += sizeof(struct inotify_event) + ev->len;
      }
    }
  }

  napi_valuetype error_type;
  napi_typeof(env, error, &error_type);
  if (count > 0 || error_type != napi_null) {
    napi_value callback, recv, result;
    napi_value argv[2] = {error, list};
    if (w->callback != NULL && napi_get_reference_value(env, w->callback, &callback) == napi_ok &&
        callback != NULL) {
      napi_get_global(env, &recv); /* make_callback needs an object receiver */
      /* make_callback runs process.nextTick queues and microtasks afterwards, as any I/O callback. */
      napi_status st = napi_make_callback(env, w->async_context, recv, callback, 2, argv, &result);
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (st != napi_ok || pending) {
        napi_value exception;
        if (napi_get_and_clear_last_exception(env, &exception) == napi_ok && pending) {
          napi_fatal_exception(env, exception); /* -> process 'uncaughtException' */
        }
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

/* ---- exported functions ------------------------------------------------------------------- */

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_valuetype type = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &type);
  if (type != napi_function) {
    napi_throw_type_error(env, NULL, "inotify addon: open(callback) needs a function");
    return NULL;
  }

  uv_loop_t* loop = NULL;
  NAPI_CALL(env, napi_get_uv_event_loop(env, &loop));

  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    /* EMFILE here means fs.inotify.max_user_instances is reached. */
    napi_throw(env, make_errno_error(env, errno, "inotify_init1", NULL));
    return NULL;
  }

  watcher_t* w = (watcher_t*)calloc(1, sizeof(watcher_t));
  if (w == NULL) {
    close(fd);
    napi_throw_error(env, "ENOMEM", "inotify addon: out of memory");
    return NULL;
  }
  w->magic = WATCHER_MAGIC;
  w->env = env;
  w->fd = fd;
  w->handle_released = 1; /* until uv_poll_init succeeds */

  int rc = uv_poll_init(loop, &w->poll, fd);
  if (rc != 0) {
    close(fd);
    free(w);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  w->poll.data = w;
  w->handle_released = 0;

  napi_value resource, resource_name, external;
  napi_create_object(env, &resource);
  napi_create_string_utf8(env, "SatchelInotify", NAPI_AUTO_LENGTH, &resource_name);
  if (napi_async_init(env, resource, resource_name, &w->async_context) != napi_ok ||
      napi_create_reference(env, argv[0], 1, &w->callback) != napi_ok ||
      napi_create_external(env, w, on_external_finalized, NULL, &external) != napi_ok) {
    w->external_released = 1;
    shutdown_watcher(w, 1, 0);
    throw_last_napi_error(env, "open");
    return NULL;
  }
  napi_add_env_cleanup_hook(env, on_env_cleanup, w);

  rc = uv_poll_start(&w->poll, UV_READABLE, on_poll);
  if (rc != 0) {
    shutdown_watcher(w, 1, 1);
    napi_throw_error(env, uv_err_name(rc), uv_strerror(rc));
    return NULL;
  }
  return external;
}

static napi_value js_add_watch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, NULL, "inotify addon: addWatch(handle, path, mask)");
    return NULL;
  }
  watcher_t* w = get_watcher(env, argv[0]);
  if (w == NULL) return NULL;
  if (w->closed) {
    napi_throw_error(env, "ERR_CLOSED", "inotify addon: addWatch on a closed handle");
    return NULL;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[1], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "inotify addon: path must be a string");
    return NULL;
  }
  uint32_t mask = 0;
  if (napi_get_value_uint32(env, argv[2], &mask) != napi_ok) {
    napi_throw_type_error(env, NULL, "inotify addon: mask must be a number");
    return NULL;
  }
  char* path = (char*)malloc(len + 1);
  if (path == NULL) {
    napi_throw_error(env, "ENOMEM", "inotify addon: out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[1], path, len + 1, &len);
  int wd = inotify_add_watch(w->fd, path, mask);
  if (wd < 0) {
    napi_value error = make_errno_error(env, errno, "inotify_add_watch", path);
    free(path);
    napi_throw(env, error);
    return NULL;
  }
  free(path);
  napi_value result;
  napi_create_int32(env, wd, &result);
  return result;
}

static napi_value js_rm_watch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "inotify addon: rmWatch(handle, wd)");
    return NULL;
  }
  watcher_t* w = get_watcher(env, argv[0]);
  if (w == NULL) return NULL;
  if (w->closed) {
    napi_throw_error(env, "ERR_CLOSED", "inotify addon: rmWatch on a closed handle");
    return NULL;
  }
  int32_t wd = 0;
  if (napi_get_value_int32(env, argv[1], &wd) != napi_ok) {
    napi_throw_type_error(env, NULL, "inotify addon: wd must be a number");
    return NULL;
  }
  if (inotify_rm_watch(w->fd, wd) != 0) {
    napi_throw(env, make_errno_error(env, errno, "inotify_rm_watch", NULL));
    return NULL;
  }
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "inotify addon: close(handle)");
    return NULL;
  }
  watcher_t* w = get_watcher(env, argv[0]);
  if (w == NULL) return NULL;
  shutdown_watcher(w, 1, 1);
  return NULL;
}

static napi_value js_set_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "inotify addon: setRef(handle, boolean)");
    return NULL;
  }
  watcher_t* w = get_watcher(env, argv[0]);
  if (w == NULL) return NULL;
  bool keep = true;
  if (napi_get_value_bool(env, argv[1], &keep) != napi_ok) {
    napi_throw_type_error(env, NULL, "inotify addon: setRef needs a boolean");
    return NULL;
  }
  if (!w->closed) {
    if (keep) {
      uv_ref((uv_handle_t*)&w->poll);
    } else {
      uv_unref((uv_handle_t*)&w->poll);
    }
  }
  return NULL;
}

/* ---- module ------------------------------------------------------------------------------- */

static void set_constant(napi_env env, napi_value obj, const char* name, uint32_t value) {
  napi_value v;
  napi_create_uint32(env, value, &v);
  napi_set_named_property(env, obj, name, v);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value constants;
  napi_create_object(env, &constants);
#define C(name) set_constant(env, constants, #name, name)
  C(IN_ACCESS);
  C(IN_MODIFY);
  C(IN_ATTRIB);
  C(IN_CLOSE_WRITE);
  C(IN_CLOSE_NOWRITE);
  C(IN_OPEN);
  C(IN_MOVED_FROM);
  C(IN_MOVED_TO);
  C(IN_CREATE);
  C(IN_DELETE);
  C(IN_DELETE_SELF);
  C(IN_MOVE_SELF);
  C(IN_UNMOUNT);
  C(IN_Q_OVERFLOW);
  C(IN_IGNORED);
  C(IN_ONLYDIR);
  C(IN_DONT_FOLLOW);
  C(IN_EXCL_UNLINK);
  C(IN_MASK_ADD);
  C(IN_ISDIR);
  C(IN_ONESHOT);
#ifdef IN_MASK_CREATE
  C(IN_MASK_CREATE);
#else
  set_constant(env, constants, "IN_MASK_CREATE", 0x10000000u);
#endif
#undef C

  napi_property_descriptor props[] = {
      {"open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"addWatch", NULL, js_add_watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rmWatch", NULL, js_rm_watch, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setRef", NULL, js_set_ref, NULL, NULL, NULL, napi_enumerable, NULL},
      {"constants", NULL, NULL, NULL, NULL, constants, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
