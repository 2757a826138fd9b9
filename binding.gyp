{
  # vxmesh native addon: plain C, N-API (node_api.h) + libuv (uv_poll) from the Node headers.
  # Syscall wrappers live in their own files (buildable without Node); addon.c is the only glue.
  "targets": [
    {
      "target_name": "vxmesh",
      "sources": [
        "native/addon.c",
        "native/tap.c",
        "native/udp.c",
        "native/netdev.c",
        "native/notify.c",
        "native/gso.c",
        "native/reader.c",
        "native/aead.c",  # crypto engineer: batched AEAD over Node's OpenSSL (vxm_aead_init called from addon.c)
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "cflags!": ["-O3"],
      "ldflags": []
    }
  ]
}
