{
  "targets": [
    {
      "target_name": "vrrp_raw",
      "sources": ["vrrp_raw.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    },
    {
      "target_name": "udp_batch",
      "sources": ["udp_batch.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
