# Builds the fast file-system addon of src/mirrors/path/ (folder listings, staged copies); Node-API only.
# `node scripts/build-native.mjs` runs npm's bundled node-gyp on this folder.
{
  "targets": [
    {
      "target_name": "fastfs",
      "sources": ["fastfs.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8"],
      "include_dirs": ["../common"],
    }
  ]
}
