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
 * at random in a buffer of --touch-span KiB (default 65536: 64 MiB), inline after the batch: the data-cache footprint of a balancer's
 * bookkeeping (JS objects, maps, a heap), which a busy loop (--work-ns) does not have. On a core
 * shared with a backend, that backend then runs on caches the balancer has evicted.
 *
 * --epoll-timeout MS waits in epoll_wait with that timeout instead of none (-1), as Node's loop
 * does whenever a timer is pending (hadns's deadline and probe timers: 1-63 ms at 10k q/s), so
 * that every blocking wait arms a kernel timer.
 *
 * Usage: ref-forwarder [--batch 64] [--sockets 1] [--work-ns 0] [--work-in inline|thread]
 *        [--pause-us 0 --pause-after 0] [--touch-bytes 0 [--touch-span KiB]] [--epoll-timeout -1] PORT BACKEND_PORT...
 * (127.0.0.1 only; prints "ready" once bound.)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
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
  if (*end || p < 1 || p > 65535) { fprintf(stderr, "ref-forwarder: bad port %s\n", s); exit(2); }
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

int main(int argc, char **argv) {
  int batch = MAXB, per = 1, i = 1;
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
  int nb = argc - i - 1;
  if (nb < 1 || nb > MAXBACK || batch < 1 || batch > MAXB || per < 1 || per > MAXSOCK || work_ns < 0
      || pause_us < 0 || pause_after < 0 || (pause_us > 0) != (pause_after > 0) || touch_bytes < 0
      || touch_span < 1 || touch_span > 1048576 || epoll_timeout < -1 || epoll_timeout > 60000) {
    fprintf(stderr, "usage: ref-forwarder [--batch 1-64] [--sockets 1-4] [--work-ns N] [--work-in inline|thread]"
                    " [--pause-us U --pause-after N] [--touch-bytes B [--touch-span 1-1048576 KiB]] [--epoll-timeout -1-60000] PORT BACKEND_PORT... (1-8 backends)\n");
    return 2;
  }
  int lfd = udp_socket(), ep = epoll_create1(0), bfd[MAXBACK * MAXSOCK], nsock = nb * per;
  struct sockaddr_in la = loopback(port_arg(argv[i]));
  if (bind(lfd, (struct sockaddr *)&la, sizeof la) < 0) { perror("bind"); return 1; }
  struct epoll_event ev = { .events = EPOLLIN, .data.u32 = LISTENER };
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  for (int k = 0; k < nsock; k++) { /* socket k: backend k / per */
    bfd[k] = udp_socket();
    struct sockaddr_in ba = loopback(port_arg(argv[i + 1 + k / per]));
    if (connect(bfd[k], (struct sockaddr *)&ba, sizeof ba) < 0) { perror("connect"); return 1; }
    ev.data.u32 = (uint32_t)k;
    epoll_ctl(ep, EPOLL_CTL_ADD, bfd[k], &ev);
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
  uint16_t next_id = 0;
  unsigned turn = 0, batches = 0;
  printf("ready\n");
  fflush(stdout);
  for (;;) {
    struct epoll_event evs[MAXBACK * MAXSOCK + 1];
    int ne = epoll_wait(ep, evs, MAXBACK * MAXSOCK + 1, (int)epoll_timeout);
    for (int e = 0; e < ne; e++) {
      uint32_t who = evs[e].data.u32;
      int fd = who == LISTENER ? lfd : bfd[who];
      for (int k = 0; k < batch; k++) {
        memset(&rmsg[k].msg_hdr, 0, sizeof rmsg[k].msg_hdr);
        rmsg[k].msg_hdr.msg_iov = &riov[k];
        rmsg[k].msg_hdr.msg_iovlen = 1;
        rmsg[k].msg_hdr.msg_name = &rname[k];
        rmsg[k].msg_hdr.msg_namelen = sizeof rname[k];
      }
      int n = recvmmsg(fd, rmsg, (unsigned)batch, MSG_DONTWAIT, NULL);
      if (n <= 0) continue;
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
      } else {
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
      }
    }
  }
}
