{
  "targets": [
    {
      "target_name": "fuse3",
      "sources": ["fuse3.c"],
      "defines": ["NAPI_VERSION=8", "FUSE_USE_VERSION=312", "_FILE_OFFSET_BITS=64", "_GNU_SOURCE"],
      "cflags": ["<!@(pkg-config --cflags fuse3)", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["<!@(pkg-config --libs fuse3)"]
    }
  ]
}
