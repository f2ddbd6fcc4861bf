{
  "targets": [
    {
      "target_name": "stowage-pty",
      "type": "executable",
      "sources": ["pty-relay.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"]
    }
  ]
}
