{
  "targets": [
    {
      "target_name": "vrrp_raw",
      "sources": ["vrrp_raw.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
