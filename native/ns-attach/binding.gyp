{
  "targets": [
    {
      "target_name": "stowage-attach",
      "type": "executable",
      "sources": ["ns-attach.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"]
    }
  ]
}
