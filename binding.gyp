{
  # vxmesh native addon: plain C, N-API (node_api.h) + libuv (uv_poll) from the Node headers.
  # Syscall and packet files (tap, udp, reader, netdev, notify, gso, aead) build without Node headers;
  # the *_glue.c files (over napi_util.c) are the N-API layer; addon.c is the module init.
  "targets": [
    {
      "target_name": "vxmesh",
      "sources": [
        "native/addon.c",
        "native/napi_util.c",
        "native/handle_glue.c",
        "native/tap_glue.c",
        "native/udp_glue.c",
        "native/reader_glue.c",
        "native/gso_glue.c",
        "native/netdev_glue.c",
        "native/notify_glue.c",
        "native/aead_glue.c",
        "native/mac1_glue.c",
        "native/busypoll_glue.c",
        "native/tap.c",
        "native/udp.c",
        "native/udp_split.c",
        "native/netdev.c",
        "native/notify.c",
        "native/gso.c",
        "native/reader.c",
        "native/aead.c",
        "native/mac1.c",
        "native/busypoll.c",
      ],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-std=gnu11"],
      "cflags!": ["-O3"],
      "ldflags": []
    }
  ]
}
