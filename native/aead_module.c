/*
 * Standalone module of the AEAD functions alone (bench/micro/aead.ts loads build/aead/vxmesh_aead.node
 * when the main addon is not built): the same glue as the main addon (aead_glue.c over napi_util.c).
 *   gcc -O2 -fPIC -shared -DNODE_GYP_MODULE_NAME=vxmesh_aead -I/usr/include/node native/aead.c \
 *     native/aead_glue.c native/napi_util.c native/gso.c native/aead_module.c -o build/aead/vxmesh_aead.node
 */
#include "napi_util.h"

NAPI_MODULE_INIT() { return vx_aead_glue_init(env, exports) < 0 ? NULL : exports; }
