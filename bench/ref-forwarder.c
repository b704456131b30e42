/*
 * ref-forwarder: the floor for bench/balancer.ts (--ref-forwarder), not part of hadns.
 *
 * The least a batched UDP DNS forwarder can do: one epoll loop, recvmmsg on the listener, a fresh
 * upstream ID per query, round-robin over connected backend sockets with one sendmmsg per backend,
 * and on the way back recvmmsg, the client's ID restored, one sendmmsg to the clients. No
 * question check, no retries, no health, no timeouts (an ID's slot is simply reused 65535
 * queries later). It shows what hadns's DNS mode would cost without Node's loop and JS: the
 * question #3 left open is whether the p99 gap to nginx is the batching design or the runtime
 * around it.
 *
 * --sockets N opens N connected sockets per backend (hadns's sockets_per_backend, default 4 there)
 * and, as hadns does, takes the next one for each received batch.
 *
 * --work-ns N spends N ns of CPU per forwarded query (a busy loop), standing in for a
 * balancer's bookkeeping: --work-in inline does it in the loop after the batch is sent (where
 * hadns's JS books today), --work-in thread in a second thread woken through an eventfd (where a
 * native fast path would leave it).
 *
 * --pause-us U --pause-after N busies the loop for U µs once every N forwarded queries, after the
 * batch that crosses the mark: a stand-in for V8's young-generation collection, which an
 * allocating per-query path triggers by volume (hadns: a scavenge every ~8500 queries, 0.2–1.7 ms).
 *
 * --touch-bytes B writes B bytes per forwarded query, one byte in each of B/64 cache lines picked
 * at random in a buffer of --touch-span KiB (default 65536: 64 MiB), inline after the batch: the
 * memory footprint of a balancer's bookkeeping (JS objects, maps, a heap), which a busy loop
 * (--work-ns) does not have. (On our VM it cost p99 only with a span beyond 16 MiB:
 * docs/balancer-p99.md.)
 *
 * --epoll-timeout MS waits in epoll_wait with that timeout instead of none (-1), as Node's loop
 * does whenever a timer is pending (hadns's deadline and probe timers: 1-63 ms at 10k q/s), so
 * that every blocking wait arms a kernel timer.
 *
 * Built with -DREF_NAPI -shared it is a Node addon instead, driven by Node's libuv loop (below, and
 * bench/ref-on-loop.ts): what Node's loop and JS calls cost the same forwarder.
 *
 * Usage: ref-forwarder [--batch 64] [--sockets 1] [--work-ns 0] [--work-in inline|thread]
 *        [--pause-us 0 --pause-after 0] [--touch-bytes 0 [--touch-span KiB]] [--epoll-timeout -1]
 *        PORT BACKEND_PORT...
 * (127.0.0.1 only; prints "ready" once bound.)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXB 64
#define MAXBACK 8
#define MAXSOCK 4
#define SLOT 1500
#define LISTENER 0xffff

static struct { struct sockaddr_in addr; uint16_t cid; uint8_t live; } route[65536];
static long work_ns = 0;
static int work_thread = 0, efd = -1;
static long pending = 0;
static long pause_us = 0, pause_after = 0, since_pause = 0;
static long touch_bytes = 0, touch_span = 65536, epoll_timeout = -1;
static uint8_t *touch_buf = NULL;
static uint32_t touch_seed = 1;

static void touch(long n) {
  for (long k = 0; k < n * (touch_bytes / 64); k++) {
    touch_seed = touch_seed * 1664525u + 1013904223u;
    touch_buf[(touch_seed >> 6) % ((uint32_t)touch_span * 16) * 64]++;
  }
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void burn(long ns) {
  uint64_t end = now_ns() + (uint64_t)ns;
  while (now_ns() < end) {}
}

static void *worker(void *arg) {
  (void)arg;
  for (;;) {
    uint64_t v;
    if (read(efd, &v, sizeof v) != sizeof v) continue;
    burn(__atomic_exchange_n(&pending, 0, __ATOMIC_ACQ_REL) * work_ns);
  }
  return NULL;
}

static void bookkeeping(int n) {
  if (work_ns == 0 || n <= 0) return;
  if (!work_thread) { burn(n * work_ns); return; }
  __atomic_add_fetch(&pending, n, __ATOMIC_ACQ_REL);
  uint64_t one = 1;
  if (write(efd, &one, sizeof one) < 0) perror("eventfd");
}

static int udp_socket(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (fd < 0) { perror("socket"); exit(1); }
  return fd;
}

static struct sockaddr_in loopback(int port) {
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static int port_arg(const char *s) {
  char *end;
  long p = strtol(s, &end, 10);
  if (*end || p < 1 || p > 65535) { fprintf(stderr, "ref-forwarder: bad port %s\n", s); return -1; }
  return (int)p;
}

static uint8_t in[MAXB][SLOT], out[MAXBACK * MAXSOCK][MAXB][SLOT];
static struct mmsghdr rmsg[MAXB], smsg[MAXBACK * MAXSOCK][MAXB];
static struct iovec riov[MAXB], siov[MAXBACK * MAXSOCK][MAXB];
static struct sockaddr_in rname[MAXB], sname[MAXB];

static void out_slot(int b, int k, int len, struct sockaddr_in *to) {
  siov[b][k].iov_base = out[b][k];
  siov[b][k].iov_len = (size_t)len;
  memset(&smsg[b][k].msg_hdr, 0, sizeof smsg[b][k].msg_hdr);
  smsg[b][k].msg_hdr.msg_iov = &siov[b][k];
  smsg[b][k].msg_hdr.msg_iovlen = 1;
  if (to) { smsg[b][k].msg_hdr.msg_name = to; smsg[b][k].msg_hdr.msg_namelen = sizeof *to; }
}

/* The forwarder's state, set up once by setup(). */
static int lfd = -1, bfd[MAXBACK * MAXSOCK], nsock = 0, nb = 0, per = 1, batch = MAXB;
static uint16_t next_id = 0;
static unsigned turn = 0, batches = 0;

/* Parses the arguments (argv[0] is a name), binds the listener and connects the backend sockets;
 * 0, or the exit status (a message on stderr). */
static int setup(int argc, char **argv) {
  int i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
    if (i + 1 >= argc) { fprintf(stderr, "ref-forwarder: %s needs a value\n", argv[i]); return 2; }
    if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--sockets")) per = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--work-ns")) work_ns = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--work-in")) work_thread = !strcmp(argv[i + 1], "thread");
    else if (!strcmp(argv[i], "--pause-us")) pause_us = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--pause-after")) pause_after = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--touch-bytes")) touch_bytes = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--touch-span")) touch_span = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--epoll-timeout")) epoll_timeout = atol(argv[i + 1]);
    else { fprintf(stderr, "ref-forwarder: unknown option %s\n", argv[i]); return 2; }
  }
  nb = argc - i - 1;
  if (nb < 1 || nb > MAXBACK || batch < 1 || batch > MAXB || per < 1 || per > MAXSOCK || work_ns < 0
      || pause_us < 0 || pause_after < 0 || (pause_us > 0) != (pause_after > 0) || touch_bytes < 0
      || touch_span < 1 || touch_span > 1048576 || epoll_timeout < -1 || epoll_timeout > 60000) {
    fprintf(stderr, "usage: ref-forwarder [--batch 1-64] [--sockets 1-4] [--work-ns N] [--work-in inline|thread]"
                    " [--pause-us U --pause-after N] [--touch-bytes B [--touch-span 1-1048576 KiB]]"
                    " [--epoll-timeout -1-60000] PORT BACKEND_PORT... (1-8 backends)\n");
    return 2;
  }
  int lport = port_arg(argv[i]), bport[MAXBACK];
  if (lport < 0) return 2;
  for (int b = 0; b < nb; b++) if ((bport[b] = port_arg(argv[i + 1 + b])) < 0) return 2;
  lfd = udp_socket();
  nsock = nb * per;
  struct sockaddr_in la = loopback(lport);
  if (bind(lfd, (struct sockaddr *)&la, sizeof la) < 0) { perror("bind"); return 1; }
  for (int k = 0; k < nsock; k++) { /* socket k: backend k / per */
    bfd[k] = udp_socket();
    struct sockaddr_in ba = loopback(bport[k / per]);
    if (connect(bfd[k], (struct sockaddr *)&ba, sizeof ba) < 0) { perror("connect"); return 1; }
  }
  if (work_ns > 0 && work_thread) {
    pthread_t th;
    efd = eventfd(0, 0);
    if (efd < 0 || pthread_create(&th, NULL, worker, NULL) != 0) { perror("worker"); return 1; }
  }
  if (touch_bytes > 0 && (touch_buf = calloc(1, (size_t)touch_span << 10)) == NULL) { perror("calloc"); return 1; }
  for (int k = 0; k < MAXB; k++) {
    riov[k].iov_base = in[k];
    riov[k].iov_len = SLOT;
  }
  return 0;
}

/* One readable socket (LISTENER or a backend socket's number) read once and served; for the
 * listener, how many queries went out, else 0. */
static int handle(uint32_t who) {
  int fd = who == LISTENER ? lfd : bfd[who];
  for (int k = 0; k < batch; k++) {
    memset(&rmsg[k].msg_hdr, 0, sizeof rmsg[k].msg_hdr);
    rmsg[k].msg_hdr.msg_iov = &riov[k];
    rmsg[k].msg_hdr.msg_iovlen = 1;
    rmsg[k].msg_hdr.msg_name = &rname[k];
    rmsg[k].msg_hdr.msg_namelen = sizeof rname[k];
  }
  int n = recvmmsg(fd, rmsg, (unsigned)batch, MSG_DONTWAIT, NULL);
  if (n <= 0) return 0;
  if (who == LISTENER) {
    int nout[MAXBACK * MAXSOCK] = {0}, forwarded = 0, sk = (int)(batches++ % (unsigned)per);
    for (int k = 0; k < n; k++) {
      int len = (int)rmsg[k].msg_len;
      if (len < 12 || (in[k][2] & 0x80) || (rmsg[k].msg_hdr.msg_flags & MSG_TRUNC)) continue;
      uint16_t id = ++next_id;
      route[id].addr = rname[k];
      route[id].cid = (uint16_t)((in[k][0] << 8) | in[k][1]);
      route[id].live = 1;
      int b = (int)(turn++ % (unsigned)nb) * per + sk, j = nout[b]++;
      memcpy(out[b][j], in[k], (size_t)len);
      out[b][j][0] = (uint8_t)(id >> 8);
      out[b][j][1] = (uint8_t)id;
      out_slot(b, j, len, NULL);
      forwarded++;
    }
    for (int b = 0; b < nsock; b++) if (nout[b]) sendmmsg(bfd[b], smsg[b], (unsigned)nout[b], 0);
    bookkeeping(forwarded);
    if (touch_buf) touch(forwarded);
    if (pause_after > 0 && (since_pause += forwarded) >= pause_after) {
      since_pause = 0;
      burn(pause_us * 1000);
    }
    return forwarded;
  }
  int j = 0;
  for (int k = 0; k < n; k++) {
    int len = (int)rmsg[k].msg_len;
    if (len < 12 || !(in[k][2] & 0x80)) continue;
    uint16_t id = (uint16_t)((in[k][0] << 8) | in[k][1]);
    if (!route[id].live) continue; /* stray or duplicate */
    route[id].live = 0;
    memcpy(out[0][j], in[k], (size_t)len);
    out[0][j][0] = (uint8_t)(route[id].cid >> 8);
    out[0][j][1] = (uint8_t)route[id].cid;
    sname[j] = route[id].addr;
    out_slot(0, j, len, &sname[j]);
    j++;
  }
  if (j) sendmmsg(lfd, smsg[0], (unsigned)j, 0);
  return 0;
}

/* The program's epoll set over the listener and the backend sockets (after setup()), or -1. */
static int make_epoll(void) {
  int ep = epoll_create1(0);
  if (ep < 0) return -1;
  struct epoll_event ev = { .events = EPOLLIN, .data.u32 = LISTENER };
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  for (int k = 0; k < nsock; k++) {
    ev.data.u32 = (uint32_t)k;
    epoll_ctl(ep, EPOLL_CTL_ADD, bfd[k], &ev);
  }
  return ep;
}

/* The loop itself: the program's main thread, or (REF_NAPI, startThread) a thread of its own. */
static void *run_loop(void *arg) {
  int ep = (int)(intptr_t)arg;
  for (;;) {
    struct epoll_event evs[MAXBACK * MAXSOCK + 1];
    int ne = epoll_wait(ep, evs, MAXBACK * MAXSOCK + 1, (int)epoll_timeout);
    for (int e = 0; e < ne; e++) handle(evs[e].data.u32);
  }
  return NULL;
}

#ifndef REF_NAPI
int main(int argc, char **argv) {
  int r = setup(argc, argv);
  if (r != 0) return r;
  int ep = make_epoll();
  if (ep < 0) { perror("epoll"); return 1; }
  printf("ready\n");
  fflush(stdout);
  run_loop((void *)(intptr_t)ep);
  return 0;
}
#else
/*
 * Built with -DREF_NAPI -shared (bench/balancer.ts --ref-on-loop): the same forwarder as a Node
 * addon, its sockets watched by Node's own libuv loop (uv_poll) instead of an epoll loop of its
 * own. start(cb, ...args) sets up as the program does; cb, when a function, is called through
 * napi_make_callback (as any addon's callback, microtasks included) after each listener batch
 * that forwarded queries, with their count. bench/ref-on-loop.ts is the process around it.
 * startThread(...args) instead runs the program's own epoll loop in a thread of its own, Node's
 * loop idle beside it: the floor inside a Node process (its threads, heap and timers) but outside
 * its loop, where a native fast path of hadns's would run.
 */
#include <node_api.h>
#include <uv.h>

static napi_env genv;
static napi_ref cbref = NULL;
static napi_async_context actx;
static uv_poll_t polls[MAXBACK * MAXSOCK + 1];
static uint32_t whos[MAXBACK * MAXSOCK + 1];

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)status; (void)events;
  int forwarded = handle(*(uint32_t *)h->data);
  if (forwarded <= 0 || cbref == NULL) return;
  napi_handle_scope sc;
  napi_open_handle_scope(genv, &sc);
  napi_value cb, recv, arg, res;
  napi_get_reference_value(genv, cbref, &cb);
  napi_get_global(genv, &recv);
  napi_create_int32(genv, forwarded, &arg);
  if (napi_make_callback(genv, actx, recv, cb, 1, &arg, &res) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(genv, &pending);
    if (pending) { napi_value ex; napi_get_and_clear_last_exception(genv, &ex); napi_fatal_exception(genv, ex); }
  }
  napi_close_handle_scope(genv, sc);
}

/* The program's arguments from JS strings argv[from, argc), then setup(); 0, or -1 with a JS
 * exception thrown. */
static int setup_from_js(napi_env env, napi_value *argv, size_t from, size_t argc) {
  if (lfd >= 0) { napi_throw_error(env, NULL, "ref-forwarder: already started"); return -1; }
  static char *args[41];
  int n = 0;
  args[n++] = "ref-forwarder";
  for (size_t i = from; i < argc && n < 41; i++) {
    char buf[64];
    size_t l;
    if (napi_get_value_string_utf8(env, argv[i], buf, sizeof buf, &l) != napi_ok) {
      napi_throw_type_error(env, NULL, "ref-forwarder: arguments are strings");
      return -1;
    }
    args[n++] = strdup(buf);
  }
  if (setup(n, args) != 0) { napi_throw_error(env, NULL, "ref-forwarder: bad arguments or sockets (see stderr)"); return -1; }
  return 0;
}

static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 40;
  napi_value argv[40];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || argc > 40) { napi_throw_error(env, NULL, "ref-forwarder: start(cb, ...args)"); return NULL; }
  if (setup_from_js(env, argv, 1, argc) != 0) return NULL;
  genv = env;
  napi_valuetype t;
  napi_typeof(env, argv[0], &t);
  if (t == napi_function) napi_create_reference(env, argv[0], 1, &cbref);
  napi_value name;
  napi_create_string_utf8(env, "ref-forwarder", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &actx);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  for (int k = 0; k <= nsock; k++) {
    whos[k] = k == 0 ? LISTENER : (uint32_t)(k - 1);
    uv_poll_init(loop, &polls[k], k == 0 ? lfd : bfd[k - 1]);
    polls[k].data = &whos[k];
    uv_poll_start(&polls[k], UV_READABLE, on_readable);
  }
  return NULL;
}

static napi_value start_thread(napi_env env, napi_callback_info info) {
  size_t argc = 40;
  napi_value argv[40];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc > 40) { napi_throw_error(env, NULL, "ref-forwarder: startThread(...args)"); return NULL; }
  if (setup_from_js(env, argv, 0, argc) != 0) return NULL;
  int ep = make_epoll();
  pthread_t th;
  /* Signals stay with Node's thread (SIGTERM's handler), as for Node's own threads. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = ep < 0 ? -1 : pthread_create(&th, NULL, run_loop, (void *)(intptr_t)ep);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    napi_throw_error(env, NULL, "ref-forwarder: no epoll set or thread");
    return NULL;
  }
  pthread_detach(th);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value f;
  napi_create_function(env, "start", NAPI_AUTO_LENGTH, start, NULL, &f);
  napi_set_named_property(env, exports, "start", f);
  napi_create_function(env, "startThread", NAPI_AUTO_LENGTH, start_thread, NULL, &f);
  napi_set_named_property(env, exports, "startThread", f);
  return exports;
}
NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
#endif
