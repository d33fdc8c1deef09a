# Builds the XSalsa20-Poly1305 addon used by src/mirrors/encrypted/ (Node-API only, no node-addon-api).
# `node scripts/build-native.mjs` runs npm's bundled node-gyp on this folder.
{
  "targets": [
    {
      "target_name": "secretbox",
      "sources": ["secretbox.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O3"],
      "defines": ["NAPI_VERSION=8"],
      "include_dirs": ["../common"],
    }
  ]
}
