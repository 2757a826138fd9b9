/* sd_notify glue (notify.c): notify(socketPath, message) → bytes sent. */
#define _GNU_SOURCE
#include <string.h>

#include "napi_util.h"
#include "notify.h"

static napi_value js_notify(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[128], msg[4096];
  const char *sc = "sendto";
  if (vx_args(env, info, 2, 2, argv, NULL) < 0) return NULL;
  if (vx_get_string(env, argv[0], "socketPath", path, sizeof path) < 0) return NULL;
  if (vx_get_string(env, argv[1], "message", msg, sizeof msg) < 0) return NULL;
  int rc = vx_notify(path, msg, strlen(msg), &sc);
  return vx_result_or_throw(env, rc, sc);
}

int vx_notify_glue_init(napi_env env, napi_value exports) {
  static const vx_fn fns[] = {{"notify", js_notify}};
  return vx_define(env, exports, fns, sizeof fns / sizeof fns[0]);
}
