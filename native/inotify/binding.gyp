# Builds the Linux inotify addon used by src/watch/ (Node-API only, no node-addon-api).
# `node scripts/build-native.mjs` runs npm's bundled node-gyp on this folder.
{
  "targets": [
    {
      "target_name": "inotify",
      "sources": ["inotify.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8"],
      "include_dirs": ["../common"],
    }
  ]
}
