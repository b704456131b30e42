/*
 * udp_batch: batched UDP I/O for the DNS hot path (recvmmsg/sendmmsg), hand-written because Node's
 * dgram has neither: every datagram there costs one recvmsg, one JS callback with a fresh Buffer
 * and rinfo object, one lookup and one sendmsg, ~18 µs of CPU per query on our machines — more
 * than dnsmasq's whole query. Here a wake-up drains up to `slots` datagrams with one recvmmsg
 * into a buffer JS shares with us, calls JS once for the whole batch, and sends every reply JS
 * queued with one sendmmsg. It moves bytes and addresses; the only DNS it knows is what the
 * balancer's reply relay and query forwarding need (below): the header, an uncompressed
 * question, an OPT record.
 *
 * Shared memory (allocated by JS, kept alive by references held here):
 *   in/out buffers: `slots` slots of `slotSize` bytes each;
 *   in/out meta (Int32Array): META ints per slot: [len, family(4|6|0), port, a0, a1, a2, a3, 0]
 *     IPv4: a0 = address as a host-order uint32; IPv6: a0..a3 = the 16 bytes as 4 big-endian
 *     words. Received len is -1 when the datagram did not fit the slot (MSG_TRUNC). Out family 0
 *     = no address (a connected socket).
 *
 * JS API (typed wrapper: src/util/udp-batch.ts):
 *   open(family 4|6, host, port, flags) -> handle   flags: 1 SO_REUSEADDR, 2 SO_REUSEPORT,
 *     4 IP_FREEBIND (bind an address this host does not hold yet), 8 IPV6_V6ONLY, 16 no registry
 *     number (a short-lived socket no relay will name: the resolver's upstream sockets, replaced
 *     every ~1000 queries, would otherwise use up the registry), 32 unref (the socket does not
 *     keep the event loop alive, as dgram's unref())
 *   localPort(handle) -> port
 *   connect(handle, family, port, a0, a1, a2, a3) -> 0 or errno
 *   start(handle, inBuf, inMeta, outBuf, outMeta, slots, slotSize, cb)
 *     cb(n): n > 0 datagrams in the in slots; n < 0: -errno of a socket error (ICMP unreachable on
 *     a connected socket: ECONNREFUSED). Returns how many out slots to send now.
 *   flush(handle, n) -> datagrams sent (the rest dropped: full send buffer, unreachable peer)
 *   sendTo(handle, buf, len, family, port, a0, a1, a2, a3) -> bytes or -errno   (one datagram)
 *   close(handle)
 *   idleThread(tid) -> 0 or errno   SCHED_IDLE for one thread of this process (helper threads:
 *     they then never preempt the event loop; unprivileged since Linux 2.6.39)
 *   rtThread(tid, prio) -> 0 or errno   SCHED_RR at prio (1..99), reset on fork, for one thread,
 *     or back to SCHED_OTHER with prio 0 (node.realtime_priority; the VRRP engine process)
 *   loopIdleTime(on) -> the previous setting (0|1), or -1: left alone (see js_loop_idle_time)
 *   index(handle) -> this socket's number in the process-wide registry (-1: registry full)
 *   relay(handle, route, claim, ring, tag)   the reply relay, below
 *   forward(handle, tickets, times, arena, book, bookNow, interleave = true, blocks = true)
 *     query forwarding on a listener, below; book(max) -> how many used tickets JS left unbooked
 *   gsoStats() -> [GSO messages, datagrams in them, sockets GSO was refused on] (flush_out)
 *   burstStats() -> [bursts, answers relayed during them, relay batches left to JS meanwhile,
 *     bursts laid out in blocks]
 *
 * The reply relay (balancer, src/balancer/relay.ts). Entering JS for each backend answer was the
 * largest share of the balancer's user-space CPU per query (1-3.7 µs of ~42 at 10k q/s). So for
 * an upstream socket with the relay on, the plain case is answered here: a
 * response whose ID has a route entry, whose query is still unclaimed, whose question is the one
 * we sent (same bytes, ASCII case aside) and whose RCODE is not SERVFAIL/REFUSED gets the
 * client's ID back and goes out of the listener to the client in the same wake-up, without JS.
 * Everything else (retries, fallbacks, the cache, TCP, strays) still goes to JS, which stays the
 * owner of every query: it writes the route entries, and it finishes relayed queries from the
 * completion ring the next time it runs. The only DNS this file knows is the 12-byte header and
 * a byte compare of the question; it is a hint table, and every miss is JS's job as before.
 *   route (Int32Array, cap * RW ints, cap a power of two; entry at id & (cap - 1)), written by JS
 *     before the query is sent: [id + 1, qidx, qgen, listener index, family, port, a0..a3,
 *     client ID, question end, question length (-1; set here when the query leaves), sequence,
 *     then QINL bytes: the question as sent, copied here in flush_out]. The sequence makes an
 *     entry a seqlock with a try-lock for writers: a writer moves it from even to odd by
 *     compare-and-swap (or gives up: the query then goes without a route, its answer to JS),
 *     writes, and makes it even again; a reader copies what it needs and uses the copy only if
 *     the sequence was even and the same before and after. Two threads (JS and a forwarding
 *     thread) can then write entries of the same slot (different IDs) without a lock to wait on.
 *   claim (Int32Array, per query index): JS keeps the live query's generation there; the relay
 *     answers only while it matches, and claims it by compare-and-swap to -1; JS, to answer a
 *     query itself, swaps the generation for -3 (dns-proxy.ts, own()): one of the two wins.
 *   ring (Float64Array): [produced, consumed (JS), clock offset ms, capacity (a power of two),
 *     0, 0, 0, 0, records of 6: tag, upstream ID, qidx, qgen, receive time (JS clock, ms), 0];
 *     produced and consumed are int32 cursors in the first 4 bytes of their doubles, written
 *     with release and read with acquire (JS: Atomics on an Int32Array view).
 *
 * Query forwarding, the relay's mirror on a balancer listener: forward(handle, tickets, times,
 * arena, book, bookNow). JS decides ahead of time where the next plain queries go: each ticket
 * is a query slot, the upstream socket (registry number, relay on) and the upstream ID it
 * reserved. A received query that is plain in the strictest sense (below) takes the next ticket,
 * gets the upstream ID, its route entry and claim written as JS would write them, and leaves on
 * the upstream socket in this wake-up; the ticket keeps its length, client address, question end
 * and listener, `times` its send time (JS's clock), the arena slot its bytes, and the in-slot is
 * marked -3 (JS skips it). JS books the used tickets (deadlines, counters, the copy for retries)
 * at its next entry, or when `book(max)` is called: after libuv has served every socket that
 * was ready in this loop iteration (a check handle), so that answers waiting on upstream sockets
 * are relayed before JS runs; there JS books at most BOOK_CHUNK and returns how many it left,
 * and the next poll does not block (an idle handle), so answers coming back meanwhile go out
 * between chunks. book(0) books all: when fewer than TICKETS_LOW tickets are left or a local
 * backend's query waits; with bookNow, in every wake-up. Sending first takes JS off the path from
 * a query's arrival to its forward, and in a burst the backend works on the first queries while
 * JS has not even started. A plain query: QR 0, opcode QUERY, TC 0, RCODE 0, one question with
 * an uncompressed name JS's scanner would accept, no answer or authority records, at most one
 * additional record and then an OPT record of exactly the rest of the datagram advertising at
 * most 4096 bytes, nothing after, and at most ARENA_SLOT bytes. Anything else goes to JS.
 *   tickets (Int32Array, THDR + cap * TW, cap a power of two): a ring with three cursors,
 *     [produced (JS), used (here), booked (JS), generation (JS), then per ticket: qidx, qgen,
 *     socket, upstream ID, len, family, port, a0..a3, question end, listener index, generation,
 *     0, 0]. A ticket drawn before JS last bumped the generation (a backend changed state) is
 *     voided when its turn comes (len -1, skipped; JS recycles it when booking). Ticket c
 *     (a cursor, counting up and wrapping as an int32) is at c & (cap - 1): JS writes tickets
 *     [produced, booked + cap) and then `produced`; C takes them from `used` on, in order (a
 *     burst's plan permutes the next few) and publishes `used` once a batch is done; JS books
 *     [booked, used) and then `booked`. Each cursor has one writer, so a forwarding thread can
 *     take tickets while JS draws and books them (the cursors are read and written atomically).
 *     Socket -1 is a turn of a backend in JS's own process: the ticket is taken and filled in
 *     all the same, and JS sends the query.
 *   times (Float64Array, cap), arena (Uint8Array, cap * ARENA_SLOT)
 * A burst (BURST_MIN or more datagrams in one read on a forwarding listener, with interleave):
 * the first forwarded query is sent at once, then the answers waiting on the burst's relay
 * sockets are relayed, then the rest goes out socket by socket with answers relayed in between
 * (serve_answers, flush_burst). On loopback each datagram of a sendmmsg is delivered before the
 * call returns, so a long burst would otherwise hold back every answer behind it.
 * With blocks, a burst also goes to each backend as one block of consecutive queries, the
 * oldest block first (plan_blocks): the burst's queries take the same next tickets, so each
 * backend gets as many as the policy gave it, but the queries are laid on them backend by
 * backend, and within a backend socket by socket, in arrival order. A backend serves its socket
 * in order, and backends sharing a CPU (the resolver on the balancer's own node, or a test rig)
 * are run one at a time until their queue is empty: dealt alternately, half of the oldest
 * queries would wait for the other backend's whole share. Where backends run in parallel each
 * one's queue is as long either way.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#define META 8
#define MAX_SLOTS 256
/* Batches per wake-up before yielding to the rest of the event loop (timers, other sockets). */
#define MAX_ROUNDS 16
static int gso_default(void); /* UDP GSO, see flush_out */
/* Socket registry (route entries name the listener by number); numbers are never reused. */
#define REG_MAX 16384
/* Route entry: RW ints, the question inline from int R_Q on (QINL bytes). */
#define RW 32
#define R_ID 0
#define R_QIDX 1
#define R_QGEN 2
#define R_LIS 3
#define R_FAM 4
#define R_PORT 5
#define R_A 6
#define R_CID 10
#define R_QE 11
#define R_QLEN 12
#define R_SEQ 13
#define R_Q 14
#define QINL ((RW - R_Q) * 4)
#define RING_HDR 8
#define RING_REC 6
/* Forwarding ticket: TW ints [qidx, qgen, socket, upstream ID, then filled in here when used:
 * len, family, port, a0..a3, question end, listener index, 0, 0, 0]; queries up to ARENA_SLOT
 * bytes are copied to the ticket's arena slot. */
#define TW 16
#define THDR 4
#define T_PROD 0
#define T_USED 1
#define T_BOOKED 2
#define T_GEN 3
/* A ticket's generation (T_GEN when JS drew it), and its len once taken (-1: voided, not used). */
#define TK_GEN 13
#define TK_LEN 4
#define ARENA_SLOT 512
/* Fewer tickets left than this after a wake-up: JS books and refills at once, not in the check phase. */
#define TICKETS_LOW 16

/*
 * A socket's I/O state on one thread: receive and send buffers, their headers, and what a wake-up
 * holds. The event loop's is in the socket (`io`, its buffers JS's); a forwarding thread (below)
 * has its own for each socket it serves (`tio`, its buffers private), so that the two never
 * share a slot. IO(s) is the calling thread's.
 */
typedef struct {
  uint8_t *in_buf, *out_buf;
  int32_t *in_meta, *out_meta;
  struct mmsghdr rmsg[MAX_SLOTS], smsg[MAX_SLOTS];
  struct iovec riov[MAX_SLOTS], siov[MAX_SLOTS];
  struct sockaddr_in6 rname[MAX_SLOTS], sname[MAX_SLOTS];
  /* UDP GSO (flush_out): per message sent, its UDP_SEGMENT control message, how many datagrams
   * it carries and the out slot of the first. */
  union { char buf[CMSG_SPACE(sizeof(uint16_t))]; struct cmsghdr align; } gcm[MAX_SLOTS];
  uint8_t gsegs[MAX_SLOTS];
  uint16_t gfirst[MAX_SLOTS];
  /* The out slot at each send position: the batch grouped by destination (gso_order). */
  uint16_t gord[MAX_SLOTS];
  /* Out slots this socket holds for relayed answers or forwarded queries, flushed at the end of
   * the wake-up. */
  int relay_out;
  /* A relay socket read by serve_answers whose batch still waits for JS (datagrams it did not
   * relay), or the socket error it read (negative). */
  int defer_n;
} io_t;

typedef struct fthread fthread_t;

typedef struct {
  int fd;
  int family;
  napi_env env;
  napi_ref cb;
  napi_async_context actx;
  napi_ref refs[4];
  int slots, slot_size;
  io_t io;
  /* The forwarding thread serving this socket, and its I/O state for it (NULL: the loop's). */
  fthread_t *thr;
  io_t *tio;
  uv_poll_t poll;
  int polling, closed, uv_gone, js_gone;
  /* Inside the JS callback: close() then defers dropping the callback and its async context
   * (napi_make_callback is still using them) until the callback has returned. */
  int in_cb, release_pending;
  int index;
  /* Reply relay (see the header): shared tables, owned by JS, kept alive by rrefs. */
  int relay, tag;
  int32_t *route, *claim;
  uint32_t route_mask, claim_cap;
  double *ring;
  napi_ref rrefs[3];
  /* Query forwarding on a listener (see the header): JS's ticket ring, kept alive by fref. */
  int fwd;
  int32_t *tickets;
  uint32_t tickets_cap;
  /* The next ticket to take (the `used` cursor while a batch is handled; published at its end). */
  uint32_t tused;
  double *ttimes;
  uint8_t *arena;
  napi_ref fref, fref_times, fref_arena, book_cb;
  int book_now; /* book in the wake-up itself (one JS call per wake-up) */
  int interleave; /* a listener: answers are relayed between the sends of a burst (see flush_burst) */
  /* A relay socket connected to its backend: [family, port, a0..a3]; a burst's blocks group
   * sockets by it (plan_blocks). peer[0] is 0 until then. */
  int32_t peer[6];
  int blocks; /* a listener: a burst is sent in one block per backend (plan_blocks) */
  int gso; /* send runs of datagrams with UDP_SEGMENT (flush_out); 0 once the kernel refused */
  /* Served by a forwarding thread: what it leaves to JS, staged until the loop takes it
   * (guarded by the thread's lock): ho_n datagrams as in a receive batch, and a socket error. */
  uint8_t *ho_buf;
  int32_t *ho_meta;
  int ho_n, ho_err;
} ub_t;

/* Set in a forwarding thread: IO(s) is then the thread's state for socket s. */
static __thread int on_thread = 0;
/*
 * Set while a burst's batch serves answers before its tickets are published (take_batch): the
 * completions relayed then stay unpublished (held_for) until the tickets are (release_held). JS
 * books a ticket before it takes its query's completion; a completion seen first (a forwarding
 * thread, JS draining meanwhile) would have JS finish a query it never booked, then book it as
 * not relayed.
 */
static __thread int hold_completions = 0;
/* The rings (one per service, shared by its relay sockets) with completions held, and how many. */
#define HELD_MAX 8
static __thread double *held_ring[HELD_MAX];
static __thread uint32_t held_n[HELD_MAX];
static __thread int nheld = 0;

/* The held count of `ring` (a new entry if need be), or NULL: no room, do not relay. */
static uint32_t *held_for(double *ring) {
  for (int i = 0; i < nheld; i++) if (held_ring[i] == ring) return &held_n[i];
  if (nheld == HELD_MAX) return NULL;
  held_ring[nheld] = ring;
  held_n[nheld] = 0;
  return &held_n[nheld++];
}

/* Publishes the held completions (their tickets are). */
static void release_held(void) {
  hold_completions = 0;
  for (int i = 0; i < nheld; i++) {
    int32_t *cur = (int32_t *)held_ring[i];
    __atomic_store_n(&cur[0], (int32_t)((uint32_t)cur[0] + held_n[i]), __ATOMIC_RELEASE);
  }
  nheld = 0;
}
static inline io_t *IO(ub_t *s) { return on_thread ? s->tio : &s->io; }
/* Whether the calling thread serves socket s (a forwarding thread serves only its own). */
static inline int mine(const ub_t *s) { return on_thread ? s->tio != NULL : 1; }

/* Points io's receive headers at its in slots, once: each wake-up then costs one recvmmsg, not
 * `slots` resets (take_batch resets only what the kernel wrote back). */
static void io_recv_headers(io_t *io, int slots, int slot_size) {
  for (int i = 0; i < slots; i++) {
    io->riov[i].iov_base = io->in_buf + (size_t)i * (size_t)slot_size;
    io->riov[i].iov_len = (size_t)slot_size;
    struct msghdr *mh = &io->rmsg[i].msg_hdr;
    mh->msg_name = &io->rname[i];
    mh->msg_namelen = sizeof io->rname[i];
    mh->msg_iov = &io->riov[i];
    mh->msg_iovlen = 1;
    mh->msg_control = NULL;
    mh->msg_controllen = 0;
    mh->msg_flags = 0;
  }
}

static ub_t *reg[REG_MAX];
static int reg_next = 0;

static napi_value throw_errno(napi_env env, const char *what, int e) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(e));
  napi_value m, err, code;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
  napi_create_error(env, NULL, m, &err);
  napi_create_int32(env, e, &code);
  napi_set_named_property(env, err, "errno", code);
  napi_throw(env, err);
  return NULL;
}

static ub_t *get_ub(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) { napi_throw_type_error(env, NULL, "bad handle"); return NULL; }
  return (ub_t *)p;
}

/* Reads a call's arguments (up to 9) and its handle argv[0]; NULL (with a JS exception) when the
 * handle is bad or, with `open`, when the socket is closed. */
static ub_t *ub_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, int open) {
  size_t argc = n;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  ub_t *s = get_ub(env, argv[0]);
  if (s && open && s->closed) { napi_throw_error(env, NULL, "socket closed"); return NULL; }
  return s;
}

static napi_value ret_i32(napi_env env, int32_t v) {
  napi_value r;
  napi_create_int32(env, v, &r);
  return r;
}

static int32_t arg_i32(napi_env env, napi_value v) {
  int32_t x = 0;
  napi_get_value_int32(env, v, &x);
  return x;
}

static void on_uv_closed(uv_handle_t *h) {
  ub_t *s = (ub_t *)h->data;
  s->uv_gone = 1;
  if (s->js_gone) free(s);
}

static void release_refs(ub_t *s) {
  for (int i = 0; i < 4; i++) if (s->refs[i]) { napi_delete_reference(s->env, s->refs[i]); s->refs[i] = NULL; }
  if (s->cb) { napi_delete_reference(s->env, s->cb); s->cb = NULL; }
  if (s->actx) { napi_async_destroy(s->env, s->actx); s->actx = NULL; }
  for (int i = 0; i < 3; i++) if (s->rrefs[i]) { napi_delete_reference(s->env, s->rrefs[i]); s->rrefs[i] = NULL; }
  if (s->fref) { napi_delete_reference(s->env, s->fref); s->fref = NULL; }
  if (s->fref_times) { napi_delete_reference(s->env, s->fref_times); s->fref_times = NULL; }
  if (s->fref_arena) { napi_delete_reference(s->env, s->fref_arena); s->fref_arena = NULL; }
  if (s->book_cb) { napi_delete_reference(s->env, s->book_cb); s->book_cb = NULL; }
  s->relay = 0;
  s->fwd = 0;
}

static void ft_stop(fthread_t *t);

static void shut(ub_t *s) {
  if (s->closed) return;
  if (s->thr) ft_stop(s->thr); /* it must not touch this socket again: the others go back to the loop */
  s->closed = 1;
  s->relay = 0;
  s->fwd = 0;
  if (s->index >= 0 && s->index < REG_MAX && reg[s->index] == s) reg[s->index] = NULL;
  if (s->polling) uv_poll_stop(&s->poll);
  s->polling = 0;
  close(s->fd);
  uv_close((uv_handle_t *)&s->poll, on_uv_closed);
}

static void finalize_ub(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  ub_t *s = (ub_t *)data;
  s->js_gone = 1;
  if (!s->closed) shut(s);
  else if (s->uv_gone) free(s);
}

/* Address words <-> sockaddr. Returns the sockaddr length, 0 for "no address". */
static socklen_t to_sockaddr(int fam, int port, const int32_t *a, struct sockaddr_in6 *out) {
  memset(out, 0, sizeof *out);
  if (fam == 4) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    v4->sin_addr.s_addr = htonl((uint32_t)a[0]);
    return sizeof *v4;
  }
  if (fam == 6) {
    out->sin6_family = AF_INET6;
    out->sin6_port = htons((uint16_t)port);
    for (int i = 0; i < 4; i++) {
      uint32_t w = htonl((uint32_t)a[i]);
      memcpy(&out->sin6_addr.s6_addr[i * 4], &w, 4);
    }
    return sizeof *out;
  }
  return 0;
}

static void from_sockaddr(const struct sockaddr_in6 *sa, int32_t *m) {
  if (sa->sin6_family == AF_INET) {
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
    m[1] = 4;
    m[2] = ntohs(v4->sin_port);
    m[3] = (int32_t)ntohl(v4->sin_addr.s_addr);
    m[4] = m[5] = m[6] = 0;
  } else if (sa->sin6_family == AF_INET6) {
    m[1] = 6;
    m[2] = ntohs(sa->sin6_port);
    for (int i = 0; i < 4; i++) {
      uint32_t w;
      memcpy(&w, &sa->sin6_addr.s6_addr[i * 4], 4);
      m[3 + i] = (int32_t)ntohl(w);
    }
  } else {
    m[1] = 0; m[2] = 0; m[3] = m[4] = m[5] = m[6] = 0;
  }
  m[7] = 0;
}

/* open(family, host, port, flags) */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int family = arg_i32(env, argv[0]);
  char host[64] = "";
  size_t hl = 0;
  napi_get_value_string_utf8(env, argv[1], host, sizeof host, &hl);
  int port = arg_i32(env, argv[2]);
  int flags = arg_i32(env, argv[3]);
  struct sockaddr_in6 sa;
  memset(&sa, 0, sizeof sa);
  socklen_t salen;
  if (family == 6) {
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &sa.sin6_addr) != 1) { napi_throw_error(env, NULL, "bad IPv6 address"); return NULL; }
    salen = sizeof sa;
  } else {
    struct sockaddr_in *v4 = (struct sockaddr_in *)&sa;
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &v4->sin_addr) != 1) { napi_throw_error(env, NULL, "bad IPv4 address"); return NULL; }
    salen = sizeof *v4;
  }
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  int one = 1, buf = 4 << 20;
  if ((flags & 1) && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) goto fail;
  if ((flags & 2) && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) goto fail;
  if ((flags & 4) && setsockopt(fd, family == 6 ? IPPROTO_IPV6 : IPPROTO_IP, family == 6 ? IPV6_FREEBIND : IP_FREEBIND, &one, sizeof one) < 0) goto fail;
  if (family == 6 && (flags & 8) && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) goto fail;
  /* Bursts of a few thousand queries must not overflow the queue between two wake-ups; the
   * kernel caps the value at net.core.[rw]mem_max, which is fine. */
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  if (bind(fd, (struct sockaddr *)&sa, salen) < 0) goto fail;
  ub_t *s = calloc(1, sizeof *s);
  if (!s) { close(fd); napi_throw_error(env, NULL, "out of memory"); return NULL; }
  s->fd = fd;
  s->family = family == 6 ? 6 : 4;
  s->gso = gso_default();
  s->env = env;
  s->index = (flags & 16) || reg_next >= REG_MAX ? -1 : reg_next++;
  if (s->index >= 0) reg[s->index] = s;
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &s->poll, fd);
  s->poll.data = s;
  if (flags & 32) uv_unref((uv_handle_t *)&s->poll);
  napi_value ext;
  napi_create_external(env, s, finalize_ub, NULL, &ext);
  return ext;
fail: {
    int e = errno;
    close(fd);
    char what[96];
    snprintf(what, sizeof what, "cannot listen on udp %s%s%s:%d", family == 6 ? "[" : "", host, family == 6 ? "]" : "", port);
    return throw_errno(env, what, e);
  }
}

static napi_value js_local_port(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  ub_t *s = ub_args(env, info, 1, argv, 0);
  if (!s) return NULL;
  struct sockaddr_in6 sa;
  socklen_t len = sizeof sa;
  int port = -1;
  if (!s->closed && getsockname(s->fd, (struct sockaddr *)&sa, &len) == 0) port = ntohs(sa.sin6_port); /* same offset in sockaddr_in */
  return ret_i32(env, port);
}

/* connect(handle, family, port, a0, a1, a2, a3): the kernel then drops datagrams from anyone else. */
static napi_value js_connect(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  ub_t *s = ub_args(env, info, 7, argv, 0);
  if (!s) return NULL;
  int32_t a[4] = { arg_i32(env, argv[3]), arg_i32(env, argv[4]), arg_i32(env, argv[5]), arg_i32(env, argv[6]) };
  struct sockaddr_in6 sa;
  socklen_t len = to_sockaddr(arg_i32(env, argv[1]), arg_i32(env, argv[2]), a, &sa);
  int rc = s->closed ? EBADF : (len && connect(s->fd, (struct sockaddr *)&sa, len) == 0 ? 0 : errno);
  if (rc == 0) {
    s->peer[0] = arg_i32(env, argv[1]); s->peer[1] = arg_i32(env, argv[2]);
    memcpy(s->peer + 2, a, sizeof a);
  }
  return ret_i32(env, rc);
}

/* A route entry's writer lock (see the header): 1 when taken; *seq then holds the odd value. */
static int route_lock(int32_t *e, int32_t *seq) {
  int32_t v = __atomic_load_n(&e[R_SEQ], __ATOMIC_RELAXED);
  if (v & 1) return 0;
  if (!__atomic_compare_exchange_n(&e[R_SEQ], &v, v + 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return 0;
  *seq = v + 1;
  return 1;
}

static void route_unlock(int32_t *e, int32_t seq) { __atomic_store_n(&e[R_SEQ], seq + 1, __ATOMIC_RELEASE); }

/* A query leaving a relay socket: keep its question in its route entry, to check the answer by. */
static void note_question(ub_t *s, const uint8_t *p, int len) {
  int id = (p[0] << 8) | p[1];
  int32_t *e = s->route + (size_t)((uint32_t)id & s->route_mask) * RW;
  int32_t seq;
  /* (Forwarded queries have theirs already: try_forward.) */
  if (e[R_ID] != id + 1 || e[R_QLEN] >= 0 || !route_lock(e, &seq)) return;
  int qe = e[R_QE];
  if (e[R_ID] != id + 1) { /* rewritten meanwhile: not ours */ }
  else if (qe < 12 || qe - 12 > QINL || len < qe) e[R_QLEN] = -1;
  else {
    memcpy((uint8_t *)(e + R_Q), p + 12, (size_t)(qe - 12));
    e[R_QLEN] = qe - 12;
  }
  route_unlock(e, seq);
}

static int flush_out(ub_t *s, int n);

/* Listeners holding relayed answers during one wake-up. */
#define MAX_TOUCHED 32
static __thread ub_t *touched[MAX_TOUCHED];
static __thread int ntouched = 0;

static void flush_touched(void) {
  for (int i = 0; i < ntouched; i++) {
    ub_t *l = touched[i];
    if (!l->closed && IO(l)->relay_out > 0) flush_out(l, IO(l)->relay_out);
    IO(l)->relay_out = 0;
  }
  ntouched = 0;
}

/* The next out slot of socket u for this wake-up (relayed answers, forwarded queries): u joins
 * the touched list on its first, and a full set of slots is sent before it is reused. */
static int take_out_slot(ub_t *u) {
  if (IO(u)->relay_out == 0) {
    if (ntouched == MAX_TOUCHED) flush_touched();
    touched[ntouched++] = u;
  } else if (IO(u)->relay_out == u->slots) {
    flush_out(u, IO(u)->relay_out);
    IO(u)->relay_out = 0;
  }
  return IO(u)->relay_out++;
}

static int ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c | 0x20 : c; }

/* Answers received datagram p[0, len) of relay socket s to its client if it is the plain case
 * (see the header); 1 when it did. Listener out slots are free here: JS flushes every slot it
 * queues before it returns to the event loop, and this runs only from the event loop. */
static int try_relay(ub_t *s, uint8_t *p, int len) {
  if (len < 12 || !(p[2] & 0x80)) return 0;
  int rc = p[3] & 0x0f;
  if (rc == 2 || rc == 5 || p[4] != 0 || p[5] != 1) return 0;
  int id = (p[0] << 8) | p[1];
  int32_t *e = s->route + (size_t)((uint32_t)id & s->route_mask) * RW;
  /* A consistent copy of the entry (seqlock, see the header), then the claim. */
  int32_t seq = __atomic_load_n(&e[R_SEQ], __ATOMIC_ACQUIRE);
  if ((seq & 1) || e[R_ID] != id + 1) return 0;
  int32_t w[R_QLEN + 1];
  memcpy(w, e, sizeof w);
  int32_t qidx = w[R_QIDX], qgen = w[R_QGEN];
  if (qidx < 0 || (uint32_t)qidx >= s->claim_cap || qgen < 0 || __atomic_load_n(&s->claim[qidx], __ATOMIC_RELAXED) != qgen) return 0;
  int qe = w[R_QE], ql = w[R_QLEN];
  if (ql < 0 || ql > QINL || ql != qe - 12 || len < qe) return 0;
  const uint8_t *q = (const uint8_t *)(e + R_Q);
  for (int i = 0; i < ql; i++) {
    int x = p[12 + i], y = q[i];
    if (x != y && ascii_lower(x) != ascii_lower(y)) return 0;
  }
  __atomic_thread_fence(__ATOMIC_ACQUIRE);
  if (__atomic_load_n(&e[R_SEQ], __ATOMIC_RELAXED) != seq) return 0; /* rewritten while read */
  int li = w[R_LIS];
  ub_t *l = li >= 0 && li < REG_MAX ? reg[li] : NULL;
  if (!l || l->closed || !mine(l) || !IO(l)->out_buf || len > l->slot_size) return 0;
  double *ring = s->ring;
  int32_t *cur = (int32_t *)ring;
  uint32_t *held = NULL;
  if (hold_completions && (held = held_for(ring)) == NULL) return 0;
  uint32_t head = (uint32_t)cur[0] + (held ? *held : 0), cap = (uint32_t)ring[3];
  if (head - (uint32_t)__atomic_load_n(&cur[2], __ATOMIC_ACQUIRE) >= cap) return 0; /* JS is behind: let it see this one itself */
  if (!__atomic_compare_exchange_n(&s->claim[qidx], &qgen, -1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return 0; /* JS took it */
  int k = take_out_slot(l);
  uint8_t *out = IO(l)->out_buf + (size_t)k * (size_t)l->slot_size;
  memcpy(out, p, (size_t)len);
  out[0] = (uint8_t)((uint32_t)w[R_CID] >> 8);
  out[1] = (uint8_t)w[R_CID];
  int32_t *m = IO(l)->out_meta + k * META;
  m[0] = len; m[1] = w[R_FAM]; m[2] = w[R_PORT];
  m[3] = w[R_A]; m[4] = w[R_A + 1]; m[5] = w[R_A + 2]; m[6] = w[R_A + 3]; m[7] = 0;
  double *r = ring + RING_HDR + (size_t)(head & (cap - 1)) * RING_REC;
  r[0] = s->tag; r[1] = id; r[2] = qidx; r[3] = qgen;
  r[4] = (double)uv_hrtime() / 1e6 - ring[2];
  r[5] = 0;
  if (held) (*held)++;
  else __atomic_store_n(&cur[0], (int32_t)(head + 1), __ATOMIC_RELEASE);
  return 1;
}

/* The question end of a plain query (see the header), or 0. */
static int plain_query(const uint8_t *p, int len) {
  if (len < 17 || (p[2] & 0xfa) != 0 || (p[3] & 0x0f) != 0) return 0; /* QR, opcode, TC; RCODE */
  if (p[4] != 0 || p[5] != 1 || p[6] != 0 || p[7] != 0 || p[8] != 0 || p[9] != 0 || p[10] != 0 || p[11] > 1) return 0;
  int off = 12, total = 0;
  for (;;) {
    if (off >= len) return 0;
    int l = p[off];
    if (l == 0) { off++; break; }
    if (l > 63) return 0;
    total += l + 1;
    if (total > 254) return 0;
    off += l + 1;
  }
  int qe = off + 4;
  if (qe > len) return 0;
  if (p[11] == 0) return qe == len ? qe : 0;
  /* OPT: root name, type 41, class = UDP size, TTL (4), RDLENGTH, RDATA to the end. */
  if (qe + 11 > len || p[qe] != 0 || p[qe + 1] != 0 || p[qe + 2] != 41) return 0;
  if (((p[qe + 3] << 8) | p[qe + 4]) > 4096) return 0;
  if (qe + 11 + ((p[qe + 9] << 8) | p[qe + 10]) != len) return 0;
  return qe;
}

/* The question end of received datagram p[0, len) if it is a query the addon forwards, or 0. */
static int forwardable(const uint8_t *p, int len) {
  if (len <= 0 || len > ARENA_SLOT) return 0;
  int qe = plain_query(p, len);
  return qe == 0 || qe - 12 > QINL ? 0 : qe;
}

/* Tickets listener l may take: produced and not used yet (0 when the cursors make no sense). */
static uint32_t tickets_left(const ub_t *l) {
  uint32_t prod = (uint32_t)__atomic_load_n(&l->tickets[T_PROD], __ATOMIC_ACQUIRE);
  uint32_t n = prod - l->tused;
  return n > l->tickets_cap ? 0 : n;
}

static int32_t *ticket_at(const ub_t *l, uint32_t c) {
  return l->tickets + THDR + (size_t)(c & (l->tickets_cap - 1)) * TW;
}

/* Whether ticket k of listener l can be used; *u its upstream socket (NULL: a local backend's
 * turn, socket -1; JS sends the query). Every slot is at least ARENA_SLOT bytes (start), so a
 * forwardable query fits any upstream socket's. */
static int ticket_ok(const ub_t *l, uint32_t k, ub_t **u) {
  const int32_t *t = ticket_at(l, k);
  int32_t qidx = t[0], qgen = t[1], si = t[2], id = t[3];
  *u = NULL;
  if (t[TK_GEN] != __atomic_load_n(&l->tickets[T_GEN], __ATOMIC_ACQUIRE)) return 0;
  if (si == -1) return !on_thread; /* a local backend's turn: JS's, on the loop */
  ub_t *v = si >= 0 && si < REG_MAX ? reg[si] : NULL;
  if (!v || v->closed || !v->relay || !mine(v) || !IO(v)->out_buf || id < 0 || id > 0xffff
      || qidx < 0 || (uint32_t)qidx >= v->claim_cap || qgen < 0) return 0;
  *u = v;
  return 1;
}

/*
 * A burst's block plan (see the header): the tickets its forwardable queries take, in arrival
 * order. They are the next ones, as without a plan, so that JS books [used, used + k) the same
 * way, but ordered by backend (the backend of the next ticket first), then by socket, then in
 * ticket order. Made before the batch's datagrams are handled, from the same tests try_forward
 * makes (so a burst's queries are parsed twice), and nothing those tests read changes until the
 * batch is done (JS only adds tickets after them meanwhile): each planned ticket is taken by
 * exactly one query, and the used tickets stay the next ones; `used` is published after the batch.
 */
#define PLAN_MAX 64
static __thread const ub_t *plan_of = NULL;
/* The relay sockets a burst goes out on, from its tickets (burst_sockets): where the answers to
 * it come back, and, as the policy rotates over them, those held during a stall. */
#define BSET_MAX 64
static __thread ub_t *bset[BSET_MAX];
static __thread int nbset = 0;
static __thread uint32_t plan[PLAN_MAX];
static __thread int plan_n = 0, plan_pos = 0;
static uint64_t n_blocked = 0; /* (counters: added to atomically, a forwarding thread counts too) */
#define COUNT(c, n) __atomic_fetch_add(&(c), (uint64_t)(n), __ATOMIC_RELAXED)

static int same_peer(const ub_t *a, const ub_t *b) {
  if (a == b) return 1;
  if (!a || !b || a->peer[0] == 0 || b->peer[0] == 0) return 0;
  return memcmp(a->peer, b->peer, sizeof a->peer) == 0;
}

static void plan_blocks(ub_t *l, int n) {
  plan_of = l;
  plan_n = plan_pos = 0;
  uint32_t count = tickets_left(l);
  if (count <= 1) return;
  uint32_t k = 0;
  for (int i = 0; i < n; i++) {
    int len = (IO(l)->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) ? -1 : (int)IO(l)->rmsg[i].msg_len;
    if (forwardable(IO(l)->in_buf + (size_t)i * (size_t)l->slot_size, len)) k++;
  }
  if (k > count) k = count;
  if (k > PLAN_MAX) k = PLAN_MAX;
  /* Rank of each ticket's backend by first appearance from the next one on, and of its socket by
   * its place in bset (burst_sockets: the same next tickets' sockets in that order; a local turn,
   * NULL, after them); try_forward stops at the first unusable ticket, and so does the plan. */
  const ub_t *backends[PLAN_MAX];
  int nb = 0, key[PLAN_MAX], v;
  for (v = 0; v < (int)k; v++) {
    ub_t *u;
    if (!ticket_ok(l, l->tused + (uint32_t)v, &u)) break;
    int b = 0, so = 0;
    while (b < nb && !same_peer(backends[b], u)) b++;
    if (b == nb) backends[nb++] = u;
    while (so < nbset && bset[so] != u) so++;
    key[v] = b * (BSET_MAX + 1) + so;
    /* Insertion by key, stable: equal keys stay in ticket order. */
    int j = v;
    while (j > 0 && key[plan[j - 1]] > key[v]) { plan[j] = plan[j - 1]; j--; }
    plan[j] = v;
  }
  if (nb < 2) return; /* one backend: the plan would change nothing */
  for (int j = 0; j < v; j++) plan[j] += l->tused;
  plan_n = v;
  COUNT(n_blocked, 1);
}

/* Forwards received query p[0, len) of listener l with its next ticket (the next one, or the
 * plan's) if it is plain; 1 when it did (m: the slot's in-meta, address already filled).
 * Upstream out slots are free here, as the listener's are in try_relay. */
static int try_forward(ub_t *l, const uint8_t *p, int len, int32_t *m) {
  uint32_t left = tickets_left(l);
  if (left == 0) return 0;
  int qe = forwardable(p, len);
  if (qe == 0) return 0;
  int planned = plan_of == l && plan_pos < plan_n;
  /* Tickets of an old generation are voided in turn (JS recycles them when it books). */
  int32_t gen = __atomic_load_n(&l->tickets[T_GEN], __ATOMIC_ACQUIRE);
  while (!planned && left > 0 && ticket_at(l, l->tused)[TK_GEN] != gen) {
    ticket_at(l, l->tused)[TK_LEN] = -1;
    l->tused++;
    left--;
  }
  if (left == 0) return 0;
  uint32_t c = planned ? plan[plan_pos] : l->tused;
  ub_t *u;
  if (!ticket_ok(l, c, &u)) return 0;
  int32_t *t = ticket_at(l, c);
  uint32_t tk = c & (l->tickets_cap - 1);
  int32_t qidx = t[0], qgen = t[1], id = t[3];
  if (planned) plan_pos++;
  l->tused++;
  t[4] = len; t[5] = m[1]; t[6] = m[2]; t[7] = m[3]; t[8] = m[4]; t[9] = m[5]; t[10] = m[6];
  t[11] = qe; t[12] = l->index;
  memcpy(l->arena + (size_t)tk * ARENA_SLOT, p, (size_t)len);
  if (u == NULL) { l->ttimes[tk] = 0; return 2; }
  l->ttimes[tk] = (double)uv_hrtime() / 1e6 - u->ring[2];
  int32_t *e = u->route + (size_t)((uint32_t)id & u->route_mask) * RW;
  int32_t seq;
  /* No route when another thread is writing this slot: the answer then goes to JS. */
  __atomic_store_n(&u->claim[qidx], qgen, __ATOMIC_RELEASE);
  if (route_lock(e, &seq)) {
    e[R_ID] = id + 1; e[R_QIDX] = qidx; e[R_QGEN] = qgen; e[R_LIS] = l->index;
    e[R_FAM] = m[1]; e[R_PORT] = m[2];
    e[R_A] = m[3]; e[R_A + 1] = m[4]; e[R_A + 2] = m[5]; e[R_A + 3] = m[6];
    e[R_CID] = (p[0] << 8) | p[1];
    e[R_QE] = qe;
    memcpy((uint8_t *)(e + R_Q), p + 12, (size_t)(qe - 12)); /* forwardable: it fits */
    e[R_QLEN] = qe - 12;
    route_unlock(e, seq);
  }
  int k = take_out_slot(u);
  uint8_t *out = IO(u)->out_buf + (size_t)k * (size_t)u->slot_size;
  memcpy(out, p, (size_t)len);
  out[0] = (uint8_t)(id >> 8);
  out[1] = (uint8_t)id;
  int32_t *om = IO(u)->out_meta + k * META;
  om[0] = len; om[1] = 0; om[2] = 0; om[3] = om[4] = om[5] = om[6] = om[7] = 0;
  return 1;
}

/* Booking: JS takes the tickets used since it last ran (their records and arena slots) and
 * draws new ones. Called in the wake-up when few tickets are left or a local backend's query
 * waits, else from one process-wide check handle: after libuv has served every socket that was
 * ready in this loop iteration. So answers waiting on the upstream sockets (after a stall, say)
 * are relayed before JS books the queries forwarded just before them. */
static uv_check_t book_check;
/* Active while a booking is left half done: the next poll then does not block, so sockets that
 * became ready meanwhile are served before the next chunk. */
static uv_idle_t book_idle;
static int book_handles = 0; /* book_check and book_idle initialised */
#define BOOK_MAX 64
/* Tickets booked per check-phase call: a burst's bookkeeping (~5 µs a ticket) is done in chunks
 * with the loop's I/O in between, so answers that came back meanwhile are relayed first. */
#define BOOK_CHUNK 8
static int book_pending[BOOK_MAX];
static int nbook = 0;

static int invoke(ub_t *s, napi_value cb, size_t argc, napi_value *argv, napi_value *result);

/* Calls JS's book(max) (max 0: all, and draw new tickets); returns how many used tickets JS
 * left for later. */
static int call_book(ub_t *l, int max) {
  if (l->closed || !l->book_cb) return 0;
  napi_handle_scope scope;
  napi_open_handle_scope(l->env, &scope);
  napi_value cb, result = NULL, arg;
  int32_t left = 0;
  napi_create_int32(l->env, max, &arg);
  if (napi_get_reference_value(l->env, l->book_cb, &cb) == napi_ok && cb && invoke(l, cb, 1, &arg, &result) && result) {
    if (napi_get_value_int32(l->env, result, &left) != napi_ok || left < 0) left = 0;
  }
  napi_close_handle_scope(l->env, scope);
  return left;
}

static void on_book_idle(uv_idle_t *h) { (void)h; }

static void on_book_check(uv_check_t *h) {
  (void)h;
  /* (JS cannot queue more meanwhile: want_book runs only from a socket's poll callback.) */
  int keep = 0;
  for (int i = 0; i < nbook; i++) {
    int idx = book_pending[i];
    ub_t *l = idx >= 0 && idx < REG_MAX ? reg[idx] : NULL;
    if (!l || l->closed || !l->fwd || l->tickets[T_BOOKED] == l->tickets[T_USED]) continue;
    if (call_book(l, BOOK_CHUNK) > 0 && !l->closed) book_pending[keep++] = idx;
  }
  nbook = keep;
  if (nbook == 0) {
    uv_check_stop(&book_check);
    uv_idle_stop(&book_idle);
  } else {
    uv_idle_start(&book_idle, on_book_idle);
  }
}

/* Listener l forwarded queries in this wake-up and JS did not run for them. */
static void want_book(ub_t *l) {
  if (tickets_left(l) < TICKETS_LOW) { call_book(l, 0); return; }
  int queued = 0;
  for (int i = 0; i < nbook && !queued; i++) queued = book_pending[i] == l->index;
  if (!queued) {
    if (nbook == BOOK_MAX) { call_book(l, 0); return; }
    book_pending[nbook++] = l->index;
  }
  uv_check_start(&book_check, on_book_check); /* no-op when active */
}

/*
 * UDP GSO (UDP_SEGMENT, Linux 4.18+). On loopback a sendmmsg pays, per datagram, the whole path
 * out and in again up to the receiving socket (~2.2-2.7 µs here); handed one buffer and a segment
 * size, the kernel takes a run of datagrams through IP, routing and netfilter once and cuts it
 * into datagrams only at the receiving end (udp_rcv_segment) or the device: 0.4-0.7 µs per
 * datagram in a loopback micro-benchmark. The batch is first grouped by destination (gso_order,
 * order kept per destination); a run is then datagrams adjacent in that order, to one
 * destination, all of one size but the last, which may be shorter (the kernel's rule); its
 * iovecs are laid out adjacent, so it becomes one message whose iovec array is the run's. The
 * receivers see the same datagrams as before. Runs are capped at GSO_SEGS datagrams and at
 * GSO_SEG_MAX bytes per datagram (larger ones go alone: a segment must fit the path MTU, and a
 * DNS message over 1232 bytes may not). A socket the kernel refuses GSO on (an old kernel, a
 * device or xfrm path without it) sends that run as plain datagrams and turns GSO off for good.
 * No library covers this (Node's dgram has no GSO), hence by hand. HADNS_UDP_GSO=0 turns it off.
 */
#define GSO_SEGS 64
#define GSO_SEG_MAX 1232
/* Batches smaller than this go as before: GSO is for a balancer under load, where batches fill
 * up. At 10k q/s (one or two datagrams a wake-up) p99 over 100 interleaved rounds was 1.06×
 * that of GSO off (not significant, p 0.13, but against nginx 1.09× with p 0.002, where GSO off
 * was level): whatever it is, a light load now does not pay it. */
#define GSO_MIN_BATCH 8
#define GSO_TOTAL_MAX 65000
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

/* Process-wide counts for gsoStats(): GSO messages sent, the datagrams they carried, sockets on
 * which the kernel refused GSO (turned off there). */
static uint64_t n_gso_msgs = 0, n_gso_dgrams = 0, n_gso_refused = 0;

static int gso_default(void) {
  const char *e = getenv("HADNS_UDP_GSO");
  return !(e && e[0] == '0');
}

static inline int same_dest(const int32_t *a, const int32_t *b) {
  if (a[1] != b[1] || a[2] != b[2]) return 0;
  if (a[1] == 4) return a[3] == b[3];
  if (a[1] == 6) return a[3] == b[3] && a[4] == b[4] && a[5] == b[5] && a[6] == b[6];
  return 1; /* no address: the connected peer */
}

/*
 * The send order for a batch of n out slots: grouped by destination, groups in the order of their
 * first datagram, each group's datagrams in their own order (nothing to one destination is
 * reordered), so that what goes to one place is adjacent and can form runs. The relay's answers
 * in a batch belong to many client sockets, interleaved. A small hash table of destinations
 * keeps it linear; past GROUPS_MAX destinations the rest keep their place.
 */
#define GROUPS_MAX 32
#define GTAB 64
static inline uint32_t dest_hash(const int32_t *m) {
  uint32_t h = (uint32_t)m[1] * 0x9e3779b1u ^ (uint32_t)m[2] * 0x85ebca6bu ^ (uint32_t)m[3] * 0xc2b2ae35u;
  if (m[1] == 6) h ^= (uint32_t)m[4] * 0x27d4eb2fu ^ (uint32_t)m[5] * 0x165667b1u ^ (uint32_t)m[6];
  return h ^ (h >> 15);
}
static void gso_order(io_t *io, int n) {
  int8_t tab[GTAB];
  memset(tab, -1, sizeof tab);
  int16_t head[GROUPS_MAX], tail[GROUPS_MAX], next[MAX_SLOTS];
  int16_t group[MAX_SLOTS]; /* per slot: its group, or -1 (ungrouped, keeps its place) */
  int ng = 0;
  for (int i = 0; i < n; i++) {
    const int32_t *m = io->out_meta + i * META;
    next[i] = -1;
    group[i] = -1;
    uint32_t h = dest_hash(m) & (GTAB - 1);
    for (int p = 0; p < GTAB; p++) {
      int t = tab[(h + (uint32_t)p) & (GTAB - 1)];
      if (t < 0) {
        if (ng < GROUPS_MAX) { tab[(h + (uint32_t)p) & (GTAB - 1)] = (int8_t)ng; head[ng] = tail[ng] = (int16_t)i; group[i] = (int16_t)ng++; }
        break;
      }
      if (same_dest(io->out_meta + head[t] * META, m)) { next[tail[t]] = (int16_t)i; tail[t] = (int16_t)i; group[i] = (int16_t)t; break; }
    }
  }
  /* Emit in order of first appearance: a group at its head's place, whole. */
  int k = 0;
  for (int i = 0; i < n; i++) {
    int g = group[i];
    if (g < 0) { io->gord[k++] = (uint16_t)i; continue; }
    if (head[g] != i) continue; /* emitted with its group */
    for (int j = i; j >= 0; j = next[j]) io->gord[k++] = (uint16_t)j;
  }
}

/* Folds the n send positions, whose headers flush_out has set one per position, into GSO runs:
 * message m (m <= its first position, so nothing not yet read is overwritten) carries gsegs[m]
 * datagrams from position gfirst[m] on. Returns the number of messages. */
static int gso_fold(io_t *io, int n) {
  int nm = 0;
  for (int i = 0; i < n;) {
    const int32_t *mi = io->out_meta + io->gord[i] * META;
    size_t size = io->siov[i].iov_len, total = size;
    int c = 1;
    if (size > 0 && size <= GSO_SEG_MAX) {
      while (i + c < n && c < GSO_SEGS) {
        size_t l = io->siov[i + c].iov_len;
        if (l == 0 || l > size || total + l > GSO_TOTAL_MAX || !same_dest(mi, io->out_meta + io->gord[i + c] * META)) break;
        total += l;
        c++;
        if (l < size) break; /* a shorter one ends the run */
      }
    }
    struct msghdr *h = &io->smsg[nm].msg_hdr;
    if (nm != i) *h = io->smsg[i].msg_hdr;
    io->gsegs[nm] = (uint8_t)c;
    io->gfirst[nm] = (uint16_t)i;
    if (c > 1) {
      h->msg_iovlen = (size_t)c;
      struct cmsghdr *cm = &io->gcm[nm].align;
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
      uint16_t seg = (uint16_t)size;
      memcpy(CMSG_DATA(cm), &seg, sizeof seg);
      h->msg_control = io->gcm[nm].buf;
      h->msg_controllen = sizeof io->gcm[nm].buf;
    }
    nm++;
    i += c;
  }
  return nm;
}

/* A run the kernel refused as one GSO message, sent datagram by datagram; how many went out. */
static int send_run_plain(ub_t *s, io_t *io, int first, int c) {
  int sent = 0;
  for (int j = first; j < first + c; j++) {
    struct msghdr h;
    memset(&h, 0, sizeof h);
    h.msg_iov = &io->siov[j];
    h.msg_iovlen = 1;
    const int32_t *m = io->out_meta + io->gord[j] * META;
    socklen_t nl = to_sockaddr(m[1], m[2], m + 3, &io->sname[j]);
    h.msg_name = nl ? &io->sname[j] : NULL;
    h.msg_namelen = nl;
    ssize_t r;
    do r = sendmsg(s->fd, &h, 0); while (r < 0 && errno == EINTR);
    if (r >= 0) sent++;
  }
  return sent;
}

/* Sends out slots [0, n); returns how many datagrams went out. A datagram the kernel refuses
 * (full send buffer, ICMP error pending) is skipped: UDP may drop, the rest of the batch must not
 * wait. Runs to one destination go as GSO messages (above). */
static int flush_out(ub_t *s, int n) {
  if (n > s->slots) n = s->slots;
  io_t *io = IO(s);
  int gso = n >= GSO_MIN_BATCH && __atomic_load_n(&s->gso, __ATOMIC_RELAXED);
  if (gso) gso_order(io, n);
  for (int i = 0; i < n; i++) {
    int slot = gso ? io->gord[i] : i;
    int32_t *m = io->out_meta + slot * META;
    int len = m[0];
    if (len < 0 || len > s->slot_size) len = 0;
    io->siov[i].iov_base = io->out_buf + (size_t)slot * (size_t)s->slot_size;
    io->siov[i].iov_len = (size_t)len;
    struct msghdr *h = &io->smsg[i].msg_hdr;
    h->msg_iov = &io->siov[i];
    h->msg_iovlen = 1;
    h->msg_control = NULL;
    h->msg_controllen = 0;
    h->msg_flags = 0;
    socklen_t nl = to_sockaddr(m[1], m[2], m + 3, &io->sname[i]);
    h->msg_name = nl ? &io->sname[i] : NULL;
    h->msg_namelen = nl;
    if (s->relay && len >= 12) note_question(s, (const uint8_t *)io->siov[i].iov_base, len);
  }
  int nm = gso ? gso_fold(io, n) : n;
  int sent = 0, k = 0, gm = 0, gd = 0;
  while (k < nm) {
    int r = sendmmsg(s->fd, io->smsg + k, (unsigned)(nm - k), 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      if (gso && io->gsegs[k] > 1 && e != EAGAIN && e != EWOULDBLOCK && e != ENOBUFS) {
        /* Not sent as a GSO message: as plain datagrams. If the kernel refused GSO itself and
         * they go, GSO is off on this socket from now on; any other error is one the socket had
         * pending (ECONNREFUSED after an ICMP port unreachable, say), reported by this call and
         * gone with it, and says nothing about GSO. */
        int refused = e == EINVAL || e == EIO || e == EOPNOTSUPP || e == EMSGSIZE || e == ENOPROTOOPT;
        int ok = send_run_plain(s, io, io->gfirst[k], io->gsegs[k]);
        if (refused && ok > 0 && __atomic_exchange_n(&s->gso, 0, __ATOMIC_RELAXED)) __atomic_fetch_add(&n_gso_refused, 1, __ATOMIC_RELAXED);
        sent += ok;
      }
      k++; /* this one failed: skip it */
      continue;
    }
    if (gso) {
      int d = 0, g = 0;
      for (int j = k; j < k + r; j++) { d += io->gsegs[j]; if (io->gsegs[j] > 1) { g++; gd += io->gsegs[j]; } }
      sent += d;
      gm += g;
    } else sent += r;
    k += r;
  }
  if (gm) { __atomic_fetch_add(&n_gso_msgs, (uint64_t)gm, __ATOMIC_RELAXED); __atomic_fetch_add(&n_gso_dgrams, (uint64_t)gd, __ATOMIC_RELAXED); }
  return sent;
}

/* After a failed napi_make_callback: the JS exception, reported as uncaught (as for any libuv
 * callback). */
static void report_uncaught(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) { napi_value ex; napi_get_and_clear_last_exception(env, &ex); napi_fatal_exception(env, ex); }
}

/* Calls JS function cb for socket s; 1 when it returned normally (an exception is reported as
 * uncaught, as for any libuv callback). */
static int invoke(ub_t *s, napi_value cb, size_t argc, napi_value *argv, napi_value *result) {
  napi_env env = s->env;
  napi_value recv;
  napi_get_global(env, &recv);
  s->in_cb = 1;
  /* make_callback runs microtasks and nextTicks after the JS callback, like any libuv callback. */
  napi_status st = napi_make_callback(env, s->actx, recv, cb, argc, argv, result);
  s->in_cb = 0;
  if (s->release_pending) { s->release_pending = 0; release_refs(s); }
  if (st == napi_ok) return 1;
  report_uncaught(env);
  return 0;
}

static void call_js(ub_t *s, int arg, int32_t *out_n) {
  napi_value cb, argv[1], result;
  *out_n = 0;
  if (napi_get_reference_value(s->env, s->cb, &cb) != napi_ok || !cb) return;
  napi_create_int32(s->env, arg, &argv[0]);
  if (invoke(s, cb, 1, argv, &result) && !s->closed) napi_get_value_int32(s->env, result, out_n);
}

/* Hands socket s's receive batch of `arg` datagrams (or -errno) to its JS callback and sends
 * the replies JS queued. */
static void deliver(ub_t *s, int arg) {
  napi_handle_scope scope;
  int32_t outs = 0;
  napi_open_handle_scope(s->env, &scope);
  call_js(s, arg, &outs);
  napi_close_handle_scope(s->env, scope);
  if (!s->closed && outs > 0) flush_out(s, outs);
}

/* Datagrams in one wake-up from which forwarded queries are a burst: the first is sent at once,
 * then the answers waiting are relayed, then the rest is sent with answers relayed in between
 * (serve_answers, flush_burst). */
#define BURST_MIN 8
static void serve_answers(void);
static void burst_sockets(ub_t *l, int n);
static int is_burst(const ub_t *s, int n) { return s->fwd && s->interleave && n >= BURST_MIN; }

/* A test knob, never set in service: HADNS_TEST_BURST_STALL_MS (read by forward()) stalls a
 * burst's take_batch that long before and after the answers it serves after its first query, so
 * that test/integration/balancer-thread.test.ts can have a backend answer that query, and JS
 * drain the relay's ring, before the batch's tickets are published. */
static int burst_stall_ms = 0;
static void test_stall(void) {
  if (burst_stall_ms > 0) { struct timespec ts = { burst_stall_ms / 1000, (burst_stall_ms % 1000) * 1000000L }; nanosleep(&ts, NULL); }
}

/* The datagrams [0, n) just received on s: their meta for JS, and the ones answered here (reply
 * relay) or forwarded (query forwarding) marked so that JS skips them. Returns how many were
 * answered or forwarded; *local is set when a local backend's query waits for JS. */
static int take_batch(ub_t *s, int n, int *local) {
  int handled = 0, forwarded = 0, burst = is_burst(s, n);
  /* Every listener of a service shares its ticket ring, and all of them are served by one
   * thread (the loop, or one forwarding thread): the cursor is read afresh for each batch. */
  if (s->fwd) s->tused = (uint32_t)__atomic_load_n(&s->tickets[T_USED], __ATOMIC_RELAXED);
  if (burst) burst_sockets(s, n);
  if (burst && s->blocks) plan_blocks(s, n);
  for (int i = 0; i < n; i++) {
    int32_t *m = IO(s)->in_meta + i * META;
    m[0] = (IO(s)->rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) ? -1 : (int32_t)IO(s)->rmsg[i].msg_len;
    from_sockaddr(&IO(s)->rname[i], m);
    /* The kernel wrote back this header's name length and flags: reset them for the next call. */
    IO(s)->rmsg[i].msg_hdr.msg_namelen = sizeof IO(s)->rname[i];
    IO(s)->rmsg[i].msg_hdr.msg_flags = 0;
    if (s->relay && m[0] > 0 && try_relay(s, IO(s)->in_buf + (size_t)i * (size_t)s->slot_size, m[0])) {
      m[0] = -2; /* answered here; JS skips the slot */
      handled++;
    } else if (s->fwd && m[0] > 0) {
      int f = try_forward(s, IO(s)->in_buf + (size_t)i * (size_t)s->slot_size, m[0], m);
      if (f) {
        m[0] = -3; /* forwarded (or left to JS for a local backend): JS books it from the ticket */
        handled++;
        if (f == 2) *local = 1;
        /* The first query of a burst leaves before the rest are even looked at: it has waited
         * longest, and its backend can start on it meanwhile. Then the answers that waited
         * during the stall behind the burst go out, older still. */
        if (forwarded++ == 0 && burst && ntouched > 0) {
          flush_touched();
          test_stall();
          hold_completions = 1; /* this query's ticket is not published yet: its answer may be back */
          serve_answers();
          test_stall();
        }
      }
    }
  }
  if (s->fwd) {
    plan_of = NULL;
    __atomic_store_n(&s->tickets[T_USED], (int32_t)s->tused, __ATOMIC_RELEASE);
  }
  if (burst && hold_completions) release_held(); /* the tickets are out: so are the completions */
  return handled;
}

static void burst_sockets(ub_t *l, int n) {
  nbset = 0;
  uint32_t count = tickets_left(l);
  for (uint32_t k = 0; k < count && k < (uint32_t)n && nbset < BSET_MAX; k++) {
    int si = ticket_at(l, l->tused + k)[2];
    ub_t *u = si >= 0 && si < REG_MAX ? reg[si] : NULL;
    if (!u || u->closed || !u->relay) continue;
    int dup = 0;
    for (int j = 0; j < nbset && !dup; j++) dup = bset[j] == u;
    if (!dup) bset[nbset++] = u;
  }
}

static __thread ub_t *deferred[BSET_MAX];
static __thread int ndeferred = 0;
/* Process-wide counts for burstStats(): bursts sent this way, answers relayed during them, and
 * relay-socket batches left to JS until the burst was out. */
static uint64_t n_bursts = 0, n_between = 0, n_deferred = 0;

/*
 * Answers waiting while a burst is sent: one poll() of the burst's relay sockets, and each one
 * ready is read once and its plain answers relayed at once. What the relay does not take (or a
 * socket error) waits in that socket's batch for JS: run_deferred.
 */
static void serve_answers(void) {
  struct pollfd pf[BSET_MAX];
  ub_t *who[BSET_MAX];
  int m = 0;
  for (int i = 0; i < nbset; i++) {
    ub_t *u = bset[i];
    if (u->closed || (on_thread ? !u->tio : !u->polling) || IO(u)->defer_n != 0) continue;
    pf[m].fd = u->fd;
    pf[m].events = POLLIN;
    pf[m].revents = 0;
    who[m++] = u;
  }
  if (m == 0 || poll(pf, (nfds_t)m, 0) <= 0) return;
  for (int i = 0; i < m; i++) {
    if (pf[i].revents != POLLIN) continue; /* nothing, or an error: libuv's callback takes that */
    ub_t *u = who[i];
    int n = recvmmsg(u->fd, IO(u)->rmsg, (unsigned)u->slots, MSG_DONTWAIT, NULL);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) n = -errno;
    else if (n <= 0) continue;
    int local = 0;
    int done = n < 0 ? 0 : take_batch(u, n, &local);
    COUNT(n_between, done);
    if (n < 0 || done < n) {
      IO(u)->defer_n = n;
      deferred[ndeferred++] = u;
      COUNT(n_deferred, 1);
    }
  }
  if (ntouched > 0) flush_touched();
}

/* JS for what serve_answers left in relay sockets' batches; only when no socket holds unsent
 * slots (JS sends from slot 0 of any socket it likes). */
static void run_deferred(void) {
  for (int i = 0; i < ndeferred; i++) {
    ub_t *u = deferred[i];
    int n = IO(u)->defer_n;
    IO(u)->defer_n = 0;
    if (u->closed) continue;
    deliver(u, n);
  }
  ndeferred = 0;
}

/*
 * Sends a burst of forwarded queries (the touched sockets, all upstream) socket by socket and,
 * between two sendmmsg calls, relays the answers that have come back meanwhile (serve_answers).
 * On loopback a sendmmsg delivers every datagram before it returns, ~3 µs each here, so a burst
 * of 30 after a stall took ~120 µs during which the first answers waited; nginx, one query per
 * event, relays them in between.
 */
static void flush_burst(void) {
  ub_t *mine[MAX_TOUCHED];
  int k = ntouched;
  COUNT(n_bursts, 1);
  memcpy(mine, touched, (size_t)k * sizeof *mine);
  ntouched = 0;
  for (int i = 0; i < k; i++) {
    ub_t *u = mine[i];
    if (!u->closed && IO(u)->relay_out > 0) flush_out(u, IO(u)->relay_out);
    IO(u)->relay_out = 0;
    if (i + 1 < k) serve_answers();
  }
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  ub_t *s = (ub_t *)h->data;
  if (s->closed) return;
  if (status < 0) {
    /* libuv stops a poll handle whose fd reports POLLERR (a pending ICMP error on a connected
     * socket) and says UV_EBADF. Take the error off the socket, report it, and poll again: the
     * socket itself is fine (a backend that restarts is reachable again). */
    int e = 0;
    socklen_t el = sizeof e;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &el);
    if (e) deliver(s, -e);
    if (s->closed) return;
    uv_poll_start(&s->poll, UV_READABLE, on_readable);
  }
  for (int round = 0; round < MAX_ROUNDS && !s->closed; round++) {
    int local = 0;
    int n = recvmmsg(s->fd, IO(s)->rmsg, (unsigned)s->slots, MSG_DONTWAIT, NULL);
    if (n < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      if (e == EINTR) continue;
      /* A pending socket error (ICMP port unreachable on a connected socket): report it once. */
      deliver(s, -e);
      if (e != ECONNREFUSED && e != EHOSTUNREACH && e != ENETUNREACH) break;
      continue;
    }
    if (n == 0) break;
    int relayed = take_batch(s, n, &local);
    if (ntouched > 0) {
      if (is_burst(s, n) && ntouched > 1) flush_burst();
      else flush_touched();
    }
    if (ndeferred > 0) run_deferred();
    if (s->closed) break;
    if (relayed == n) {
      if (s->fwd && !s->closed) {
        if (local || s->book_now) call_book(s, 0); /* a local backend's query waits for JS: no delay */
        else want_book(s);
      }
      if (n < s->slots) break;
      continue;
    }
    deliver(s, n);
    if (s->closed) break;
    if (n < s->slots) break;
  }
}

/* start(handle, inBuf, inMeta, outBuf, outMeta, slots, slotSize, cb) */
static napi_value js_start(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  ub_t *s = ub_args(env, info, 8, argv, 1);
  if (!s) return NULL;
  if (s->polling) { napi_throw_error(env, NULL, "already started"); return NULL; }
  int slots = arg_i32(env, argv[5]), slot_size = arg_i32(env, argv[6]);
  if (slots < 1 || slots > MAX_SLOTS || slot_size < 512 || slot_size > 65536) { napi_throw_range_error(env, NULL, "bad slots/slotSize"); return NULL; }
  void *p[4];
  size_t len[4];
  for (int i = 0; i < 4; i++) {
    napi_typedarray_type t;
    napi_value ab;
    size_t off, count;
    if (napi_get_typedarray_info(env, argv[1 + i], &t, &count, &p[i], &ab, &off) != napi_ok) {
      napi_throw_type_error(env, NULL, "typed array expected");
      return NULL;
    }
    len[i] = (t == napi_int32_array) ? count * 4 : count;
    if ((i == 1 || i == 3) && t != napi_int32_array) { napi_throw_type_error(env, NULL, "Int32Array expected for meta"); return NULL; }
  }
  size_t bytes = (size_t)slots * (size_t)slot_size, meta = (size_t)slots * META * 4;
  if (len[0] < bytes || len[2] < bytes || len[1] < meta || len[3] < meta) { napi_throw_range_error(env, NULL, "shared buffers too small"); return NULL; }
  for (int i = 0; i < 4; i++) napi_create_reference(env, argv[1 + i], 1, &s->refs[i]);
  s->io.in_buf = p[0]; s->io.in_meta = p[1]; s->io.out_buf = p[2]; s->io.out_meta = p[3];
  s->slots = slots;
  s->slot_size = slot_size;
  io_recv_headers(&s->io, slots, slot_size);
  napi_create_reference(env, argv[7], 1, &s->cb);
  napi_value name;
  napi_create_string_utf8(env, "hadns.udp.batch", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &s->actx);
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  s->polling = 1;
  return NULL;
}

static napi_value js_flush(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  ub_t *s = ub_args(env, info, 2, argv, 0);
  if (!s) return NULL;
  int n = arg_i32(env, argv[1]);
  int sent = (s->closed || !IO(s)->out_buf || n <= 0) ? 0 : flush_out(s, n);
  return ret_i32(env, sent);
}

/* sendTo(handle, buf, len, family, port, a0, a1, a2, a3) */
static napi_value js_send_to(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  ub_t *s = ub_args(env, info, 9, argv, 0);
  if (!s) return NULL;
  void *data;
  size_t cap;
  if (napi_get_buffer_info(env, argv[1], &data, &cap) != napi_ok) {
    napi_typedarray_type t; napi_value ab; size_t off;
    if (napi_get_typedarray_info(env, argv[1], &t, &cap, &data, &ab, &off) != napi_ok || t != napi_uint8_array) {
      napi_throw_type_error(env, NULL, "Uint8Array expected");
      return NULL;
    }
  }
  int32_t len = arg_i32(env, argv[2]);
  if (len < 0 || (size_t)len > cap) { napi_throw_range_error(env, NULL, "bad length"); return NULL; }
  int32_t a[4] = { arg_i32(env, argv[5]), arg_i32(env, argv[6]), arg_i32(env, argv[7]), arg_i32(env, argv[8]) };
  struct sockaddr_in6 sa;
  socklen_t nl = to_sockaddr(arg_i32(env, argv[3]), arg_i32(env, argv[4]), a, &sa);
  ssize_t r;
  if (s->closed) r = -EBADF;
  else {
    do r = sendto(s->fd, data, (size_t)len, 0, nl ? (struct sockaddr *)&sa : NULL, nl);
    while (r < 0 && errno == EINTR);
    if (r < 0) r = -errno;
  }
  return ret_i32(env, (int32_t)r);
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  ub_t *s = ub_args(env, info, 1, argv, 0);
  if (!s) return NULL;
  if (!s->closed) {
    if (s->in_cb) s->release_pending = 1; else release_refs(s);
    shut(s);
  }
  return NULL;
}

static napi_value js_index(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  ub_t *s = ub_args(env, info, 1, argv, 0);
  if (!s) return NULL;
  return ret_i32(env, s->index);
}

/* relay(handle, route: Int32Array, claim: Int32Array, ring: Float64Array, tag) */
static napi_value js_relay(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  ub_t *s = ub_args(env, info, 5, argv, 1);
  if (!s) return NULL;
  if (s->relay) { napi_throw_error(env, NULL, "relay already on"); return NULL; }
  void *p[3];
  size_t count[3];
  const napi_typedarray_type want[3] = { napi_int32_array, napi_int32_array, napi_float64_array };
  for (int i = 0; i < 3; i++) {
    napi_typedarray_type t;
    napi_value ab;
    size_t off;
    if (napi_get_typedarray_info(env, argv[1 + i], &t, &count[i], &p[i], &ab, &off) != napi_ok || t != want[i]) {
      napi_throw_type_error(env, NULL, "relay(route: Int32Array, claim: Int32Array, ring: Float64Array, tag)");
      return NULL;
    }
  }
  size_t cap = count[0] / RW;
  double *ring = p[2];
  if (cap < 1 || (cap & (cap - 1)) || count[0] != cap * RW || count[1] < 1 || count[1] > 0x7fffffff
      || count[2] < RING_HDR + RING_REC || ring[3] < 1 || ring[3] > 0x40000000
      || ((uint32_t)ring[3] & ((uint32_t)ring[3] - 1)) || RING_HDR + (size_t)ring[3] * RING_REC > count[2]) {
    napi_throw_range_error(env, NULL, "relay: bad table sizes");
    return NULL;
  }
  for (int i = 0; i < 3; i++) napi_create_reference(env, argv[1 + i], 1, &s->rrefs[i]);
  s->route = p[0];
  s->route_mask = (uint32_t)cap - 1;
  s->claim = p[1];
  s->claim_cap = (uint32_t)count[1];
  s->ring = ring;
  s->tag = arg_i32(env, argv[4]);
  s->relay = 1;
  return NULL;
}

/* forward(handle, tickets: Int32Array, times: Float64Array, arena: Uint8Array, book: (max) =>
 * left, bookNow: boolean, interleave = true, blocks = true): query forwarding on this listener
 * (see the header). */
static napi_value js_forward(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  ub_t *s = ub_args(env, info, 8, argv, 1);
  if (!s) return NULL;
  if (s->fwd) { napi_throw_error(env, NULL, "forwarding already on"); return NULL; }
  bool now = false;
  napi_get_value_bool(env, argv[5], &now);
  napi_typedarray_type t[3];
  napi_value ab;
  size_t off, count[3];
  void *p[3];
  for (int i = 0; i < 3; i++) {
    if (napi_get_typedarray_info(env, argv[1 + i], &t[i], &count[i], &p[i], &ab, &off) != napi_ok) t[i] = napi_int8_array;
  }
  napi_valuetype ft;
  napi_typeof(env, argv[4], &ft);
  size_t cap = count[0] >= THDR + TW ? (count[0] - THDR) / TW : 0;
  if (t[0] != napi_int32_array || cap < 1 || (cap & (cap - 1)) || cap > 0x10000 || count[0] != THDR + cap * TW
      || t[1] != napi_float64_array || count[1] < cap || t[2] != napi_uint8_array || count[2] < cap * ARENA_SLOT || ft != napi_function) {
    napi_throw_type_error(env, NULL, "forward(tickets: Int32Array of 4 + 16n (n a power of two), times: Float64Array(n), arena: Uint8Array(512n), book: function)");
    return NULL;
  }
  if (!book_handles) {
    uv_loop_t *loop;
    napi_get_uv_event_loop(env, &loop);
    uv_check_init(loop, &book_check);
    uv_unref((uv_handle_t *)&book_check);
    uv_idle_init(loop, &book_idle);
    uv_unref((uv_handle_t *)&book_idle);
    book_handles = 1;
  }
  napi_create_reference(env, argv[1], 1, &s->fref);
  napi_create_reference(env, argv[2], 1, &s->fref_times);
  napi_create_reference(env, argv[3], 1, &s->fref_arena);
  napi_create_reference(env, argv[4], 1, &s->book_cb);
  s->tickets = p[0];
  s->tickets_cap = (uint32_t)cap;
  s->tused = (uint32_t)s->tickets[T_USED];
  s->ttimes = p[1];
  s->arena = p[2];
  s->book_now = now ? 1 : 0;
  bool il = true;
  if (napi_get_value_bool(env, argv[6], &il) != napi_ok) il = true;
  s->interleave = il ? 1 : 0;
  bool bl = true;
  if (napi_get_value_bool(env, argv[7], &bl) != napi_ok) bl = true;
  s->blocks = bl ? 1 : 0;
  const char *stall = getenv("HADNS_TEST_BURST_STALL_MS");
  burst_stall_ms = stall ? atoi(stall) : 0;
  s->fwd = 1;
  return NULL;
}

/*
 * The forwarding thread (HADNS_FORWARD_THREAD=1; docs/balancer-p99.md, "The design left"): the
 * same wake-up as on_readable for a DNS service's listeners and relay sockets, on an epoll set
 * of its own in a thread of its own, so that a plain query and its answer never wait for Node's
 * loop. It runs take_batch as the loop does (relay, forwarding, bursts, plans) with I/O state of
 * its own per socket (tio), and never calls JS. What needs JS (a datagram the relay or the
 * forwarding left, a socket error) is staged per socket and the loop is woken (uv_async) to hand
 * it to the socket's JS callback as a receive batch; JS books used tickets and drains the relay's
 * ring on that wake-up, on a timer of its own, and when the thread finds the tickets running low.
 * The tables it shares with JS are built for it: the ticket ring's cursors, the claim by CAS, the
 * route entries' seqlocks (see the header). Stopping it (threadStop, or closing any socket it
 * serves) joins it, and its sockets go back to the loop.
 */
#define FT_MAX 256
struct fthread {
  pthread_t tid;
  int epfd, stopfd, started;
  int stop;
  int uv_gone, js_gone; /* freed when both its async handle is closed and its JS handle collected */
  ub_t *socks[FT_MAX];
  int nsocks;
  uv_async_t async;
  napi_env env;
  napi_ref wake;
  napi_async_context actx;
  pthread_mutex_t lock;
  int want_book; /* the tickets ran low (atomic) */
  int slice_us; /* the thread's EEVDF slice (0: the default; a kernel that refuses it keeps its own) */
  uint64_t wakes, batches, handed, dropped; /* (atomic) */
};

static void io_free(io_t *io) {
  if (!io) return;
  free(io->in_buf); free(io->out_buf); free(io->in_meta); free(io->out_meta);
  free(io);
}

static io_t *io_new(int slots, int slot_size) {
  io_t *io = calloc(1, sizeof *io);
  if (!io) return NULL;
  io->in_buf = malloc((size_t)slots * (size_t)slot_size);
  io->out_buf = malloc((size_t)slots * (size_t)slot_size);
  io->in_meta = calloc((size_t)slots * META, sizeof(int32_t));
  io->out_meta = calloc((size_t)slots * META, sizeof(int32_t));
  if (!io->in_buf || !io->out_buf || !io->in_meta || !io->out_meta) { io_free(io); return NULL; }
  io_recv_headers(io, slots, slot_size);
  return io;
}

/* Stages what socket s's batch [0, n) (in the thread's receive slots) leaves to JS. */
static void ft_stage(fthread_t *t, ub_t *s, int n, int err) {
  io_t *io = s->tio;
  int k = 0;
  pthread_mutex_lock(&t->lock);
  if (err) s->ho_err = err;
  for (int i = 0; i < n; i++) {
    const int32_t *m = io->in_meta + i * META;
    if (m[0] == -2 || m[0] == -3) continue; /* relayed or forwarded here */
    if (s->ho_n == s->slots) { COUNT(t->dropped, 1); continue; }
    int len = m[0] < 0 ? s->slot_size : m[0]; /* oversized (-1): JS reads the slot's first bytes */
    memcpy(s->ho_buf + (size_t)s->ho_n * (size_t)s->slot_size, io->in_buf + (size_t)i * (size_t)s->slot_size, (size_t)len);
    memcpy(s->ho_meta + s->ho_n * META, m, META * sizeof(int32_t));
    s->ho_n++;
    k++;
  }
  pthread_mutex_unlock(&t->lock);
  if (k || err) COUNT(t->handed, k + (err ? 1 : 0));
}

/* One wake-up of socket s in the thread (on_readable's loop, with hand-offs instead of JS);
 * 1 when something was staged for JS. */
static int ft_serve(fthread_t *t, ub_t *s) {
  int staged = 0;
  for (int round = 0; round < MAX_ROUNDS && !s->closed; round++) {
    int local = 0;
    int n = recvmmsg(s->fd, s->tio->rmsg, (unsigned)s->slots, MSG_DONTWAIT, NULL);
    if (n < 0) {
      int e = errno;
      if (e == EAGAIN || e == EWOULDBLOCK) break;
      if (e == EINTR) continue;
      ft_stage(t, s, 0, e);
      staged = 1;
      if (e != ECONNREFUSED && e != EHOSTUNREACH && e != ENETUNREACH) break;
      continue;
    }
    if (n == 0) break;
    COUNT(t->batches, 1);
    int done = take_batch(s, n, &local);
    if (ntouched > 0) {
      if (is_burst(s, n) && ntouched > 1) flush_burst();
      else flush_touched();
    }
    for (int i = 0; i < ndeferred; i++) {
      ub_t *u = deferred[i];
      int dn = u->tio->defer_n;
      u->tio->defer_n = 0;
      if (dn < 0) ft_stage(t, u, 0, -dn);
      else ft_stage(t, u, dn, 0);
      staged = 1;
    }
    ndeferred = 0;
    if (done < n) { ft_stage(t, s, n, 0); staged = 1; }
    if (s->fwd && tickets_left(s) < TICKETS_LOW && !__atomic_exchange_n(&t->want_book, 1, __ATOMIC_ACQ_REL)) staged = 1;
    if (n < s->slots) break;
  }
  return staged;
}

/* EEVDF's per-task slice (Linux 6.6+): sched_setattr with SCHED_OTHER and sched_runtime. */
struct ft_sched_attr {
  uint32_t size, sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
};

static void *ft_main(void *arg) {
  fthread_t *t = arg;
  on_thread = 1;
  if (t->slice_us > 0) {
    /* A short slice: the thread's virtual deadlines come early, so that waking it preempts the
     * loop's thread (booking, timers) on a shared core rather than waiting for its slice. */
    struct ft_sched_attr a;
    memset(&a, 0, sizeof a);
    a.size = sizeof a;
    a.sched_policy = SCHED_OTHER;
    a.sched_runtime = (uint64_t)t->slice_us * 1000;
    if (syscall(SYS_sched_setattr, 0, &a, 0) != 0) { /* refused (before Linux 6.6, say): the default slice */ }
  }
  struct epoll_event ev[64];
  while (!__atomic_load_n(&t->stop, __ATOMIC_ACQUIRE)) {
    int n = epoll_wait(t->epfd, ev, 64, -1);
    if (n < 0) { if (errno == EINTR) continue; break; }
    COUNT(t->wakes, 1);
    int wake = 0;
    for (int i = 0; i < n; i++) {
      ub_t *s = ev[i].data.ptr;
      if (s == NULL) continue; /* the stop eventfd */
      wake |= ft_serve(t, s);
    }
    if (wake) uv_async_send(&t->async);
  }
  return NULL;
}

/* On the loop: hands what the thread staged to each socket's JS callback, then wakes JS. */
static void ft_on_async(uv_async_t *h) {
  fthread_t *t = h->data;
  if (!t->started) return;
  for (int i = 0; i < t->nsocks; i++) {
    ub_t *s = t->socks[i];
    if (s->closed || !s->cb) continue;
    pthread_mutex_lock(&t->lock);
    int n = s->ho_n, err = s->ho_err;
    for (int k = 0; k < n; k++) {
      int32_t *m = s->ho_meta + k * META;
      int len = m[0] < 0 ? s->slot_size : m[0];
      memcpy(s->io.in_buf + (size_t)k * (size_t)s->slot_size, s->ho_buf + (size_t)k * (size_t)s->slot_size, (size_t)len);
      memcpy(s->io.in_meta + k * META, m, META * sizeof(int32_t));
    }
    s->ho_n = 0;
    s->ho_err = 0;
    pthread_mutex_unlock(&t->lock);
    if (err) deliver(s, -err);
    if (n > 0 && !s->closed && t->started) deliver(s, n);
    if (!t->started) return; /* JS stopped the thread meanwhile (t is freed when its handle closes) */
  }
  __atomic_store_n(&t->want_book, 0, __ATOMIC_RELEASE);
  napi_handle_scope scope;
  napi_open_handle_scope(t->env, &scope);
  napi_value cb, recv, result;
  if (napi_get_reference_value(t->env, t->wake, &cb) == napi_ok && cb) {
    napi_get_global(t->env, &recv);
    if (napi_make_callback(t->env, t->actx, recv, cb, 0, NULL, &result) != napi_ok) report_uncaught(t->env);
  }
  napi_close_handle_scope(t->env, scope);
}

static void ft_free(fthread_t *t) {
  pthread_mutex_destroy(&t->lock);
  free(t);
}

static void ft_closed(uv_handle_t *h) {
  fthread_t *t = h->data;
  t->uv_gone = 1;
  if (t->js_gone) ft_free(t);
}

/* Gives the thread's sockets back to the loop (no thread runs on them any more); what was
 * staged for JS is dropped and counted. */
static void ft_release(fthread_t *t) {
  for (int i = 0; i < t->nsocks; i++) {
    ub_t *s = t->socks[i];
    COUNT(t->dropped, s->ho_n);
    s->thr = NULL;
    io_free(s->tio);
    s->tio = NULL;
    free(s->ho_buf); free(s->ho_meta);
    s->ho_buf = NULL; s->ho_meta = NULL; s->ho_n = 0; s->ho_err = 0;
    if (!s->closed && !s->polling) { uv_poll_start(&s->poll, UV_READABLE, on_readable); s->polling = 1; }
  }
}

/* Joins the thread and gives its sockets back to the loop. */
static void ft_stop(fthread_t *t) {
  if (!t->started) return;
  t->started = 0;
  __atomic_store_n(&t->stop, 1, __ATOMIC_RELEASE);
  uint64_t one = 1;
  if (write(t->stopfd, &one, sizeof one) < 0) { /* the join below still ends it: epoll wakes on the eventfd or a datagram */ }
  pthread_join(t->tid, NULL);
  close(t->epfd);
  close(t->stopfd);
  ft_release(t);
  if (t->wake) { napi_delete_reference(t->env, t->wake); t->wake = NULL; }
  if (t->actx) { napi_async_destroy(t->env, t->actx); t->actx = NULL; }
  uv_close((uv_handle_t *)&t->async, ft_closed);
}

static void finalize_ft(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  fthread_t *t = data;
  t->js_gone = 1;
  if (t->started) ft_stop(t);
  else if (t->uv_gone) ft_free(t);
}

/* threadStart(handles: external[], wake: () => void, sliceUs = 0) -> thread handle: serves the
 * started sockets `handles` (a DNS service's forwarding listeners and relay sockets) in a thread;
 * sliceUs > 0 asks EEVDF for that slice for it. */
static napi_value js_thread_start(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t n = 0;
  bool isarr = false;
  napi_valuetype ft;
  napi_is_array(env, argv[0], &isarr);
  napi_typeof(env, argv[1], &ft);
  if (argc < 2 || !isarr || ft != napi_function || napi_get_array_length(env, argv[0], &n) != napi_ok || n < 1 || n > FT_MAX) {
    napi_throw_type_error(env, NULL, "threadStart(sockets: handle[1..256], wake: function)");
    return NULL;
  }
  ub_t *socks[FT_MAX];
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    napi_get_element(env, argv[0], i, &v);
    ub_t *s = get_ub(env, v);
    if (!s) return NULL;
    if (s->closed || !s->polling || s->thr || !s->io.in_buf) { napi_throw_error(env, NULL, "threadStart: a socket is closed, not started or served already"); return NULL; }
    for (uint32_t j = 0; j < i; j++) if (socks[j] == s) { napi_throw_error(env, NULL, "threadStart: a socket twice"); return NULL; }
    socks[i] = s;
  }
  fthread_t *t = calloc(1, sizeof *t);
  if (!t) { napi_throw_error(env, NULL, "out of memory"); return NULL; }
  if (argc >= 3) napi_get_value_int32(env, argv[2], &t->slice_us);
  t->epfd = epoll_create1(EPOLL_CLOEXEC);
  t->stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (t->epfd < 0 || t->stopfd < 0) {
    int e = errno;
    if (t->epfd >= 0) close(t->epfd);
    if (t->stopfd >= 0) close(t->stopfd);
    free(t);
    return throw_errno(env, "threadStart", e);
  }
  struct epoll_event ev = { .events = EPOLLIN, .data = { .ptr = NULL } };
  epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->stopfd, &ev);
  pthread_mutex_init(&t->lock, NULL);
  int fail = 0;
  for (uint32_t i = 0; i < n && !fail; i++) {
    ub_t *s = socks[i];
    s->tio = io_new(s->slots, s->slot_size);
    s->ho_buf = malloc((size_t)s->slots * (size_t)s->slot_size);
    s->ho_meta = calloc((size_t)s->slots * META, sizeof(int32_t));
    t->socks[t->nsocks++] = s;
    s->thr = t;
    ev.events = EPOLLIN;
    ev.data.ptr = s;
    if (!s->tio || !s->ho_buf || !s->ho_meta || epoll_ctl(t->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) fail = errno ? errno : ENOMEM;
    else { uv_poll_stop(&s->poll); s->polling = 0; }
  }
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  uv_async_init(loop, &t->async, ft_on_async);
  t->async.data = t;
  uv_unref((uv_handle_t *)&t->async);
  t->env = env;
  t->started = 1;
  if (!fail) {
    napi_create_reference(env, argv[1], 1, &t->wake);
    napi_value name;
    napi_create_string_utf8(env, "hadns.udp.thread", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, NULL, name, &t->actx);
    /* Signals stay with Node's main thread. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    fail = pthread_create(&t->tid, NULL, ft_main, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  if (fail) {
    /* Undo: no thread to join; the sockets go back to the loop. */
    ft_release(t);
    close(t->epfd); close(t->stopfd);
    if (t->wake) napi_delete_reference(env, t->wake);
    if (t->actx) napi_async_destroy(env, t->actx);
    t->started = 0;
    t->js_gone = 1; /* no JS handle was made */
    uv_close((uv_handle_t *)&t->async, ft_closed);
    return throw_errno(env, "threadStart", fail);
  }
  napi_value ext;
  napi_create_external(env, t, finalize_ft, NULL, &ext);
  return ext;
}

/* The thread handle a call got as its first argument (NULL, with a JS exception, if none). */
static fthread_t *ft_arg(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *p = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1 || napi_get_value_external(env, argv[0], &p) != napi_ok || !p) { napi_throw_type_error(env, NULL, "bad thread handle"); return NULL; }
  return p;
}

/* threadStop(thread): joins it; its sockets go back to the loop. Idempotent. */
static napi_value js_thread_stop(napi_env env, napi_callback_info info) {
  fthread_t *t = ft_arg(env, info);
  if (!t) return NULL;
  ft_stop(t);
  return NULL;
}

/* A JS array of numbers (the stats calls below). */
static napi_value number_array(napi_env env, const double *c, uint32_t n) {
  napi_value arr, v;
  napi_create_array_with_length(env, n, &arr);
  for (uint32_t i = 0; i < n; i++) { napi_create_double(env, c[i], &v); napi_set_element(env, arr, i, v); }
  return arr;
}

/* threadStats(thread) -> [running (0|1), wake-ups, batches read, datagrams and errors handed to
 * JS, hand-offs dropped (staging full, or left at stop)] */
static napi_value js_thread_stats(napi_env env, napi_callback_info info) {
  fthread_t *t = ft_arg(env, info);
  if (!t) return NULL;
  double c[5] = { t->started ? 1 : 0, (double)__atomic_load_n(&t->wakes, __ATOMIC_RELAXED), (double)__atomic_load_n(&t->batches, __ATOMIC_RELAXED),
    (double)__atomic_load_n(&t->handed, __ATOMIC_RELAXED), (double)__atomic_load_n(&t->dropped, __ATOMIC_RELAXED) };
  return number_array(env, c, 5);
}

/* burstStats() -> [bursts, answers relayed between a burst's sends, relay batches left to JS,
 * bursts laid out in blocks] */
static napi_value js_burst_stats(napi_env env, napi_callback_info info) {
  (void)info;
  double c[4] = { (double)__atomic_load_n(&n_bursts, __ATOMIC_RELAXED), (double)__atomic_load_n(&n_between, __ATOMIC_RELAXED),
    (double)__atomic_load_n(&n_deferred, __ATOMIC_RELAXED), (double)__atomic_load_n(&n_blocked, __ATOMIC_RELAXED) };
  return number_array(env, c, 4);
}

/* gsoStats() -> [GSO messages sent, datagrams in them, sockets the kernel refused GSO on] */
static napi_value js_gso_stats(napi_env env, napi_callback_info info) {
  (void)info;
  double c[3] = { (double)__atomic_load_n(&n_gso_msgs, __ATOMIC_RELAXED), (double)__atomic_load_n(&n_gso_dgrams, __ATOMIC_RELAXED),
    (double)__atomic_load_n(&n_gso_refused, __ATOMIC_RELAXED) };
  return number_array(env, c, 3);
}

static napi_value js_idle_thread(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t tid = arg_i32(env, argv[0]);
  int r = EINVAL;
  if (tid > 0) {
    struct sched_param sp;
    memset(&sp, 0, sizeof sp);
    r = sched_setscheduler((pid_t)tid, SCHED_IDLE, &sp) == 0 ? 0 : errno;
  }
  return ret_i32(env, r);
}

static napi_value js_rt_thread(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t tid = arg_i32(env, argv[0]);
  int32_t prio = argc > 1 ? arg_i32(env, argv[1]) : 0;
  int r = EINVAL;
  if (tid > 0 && prio >= 0 && prio <= 99) {
    struct sched_param sp;
    memset(&sp, 0, sizeof sp);
    sp.sched_priority = prio;
    /* SCHED_RESET_ON_FORK: threads and processes the thread starts later (libuv's pool, notify and
       track scripts) begin with normal scheduling instead of inheriting real-time. */
    r = sched_setscheduler((pid_t)tid, prio > 0 ? (SCHED_RR | SCHED_RESET_ON_FORK) : SCHED_OTHER, &sp) == 0 ? 0 : errno;
  }
  return ret_i32(env, r);
}

/*
 * Node configures its loop with UV_METRICS_IDLE_TIME (for performance.eventLoopUtilization), and
 * libuv then polls twice whenever it would block: epoll_pwait with timeout 0 first, to time the
 * idle wait exactly, then the real wait. That is one more syscall per wake-up, two per balanced
 * query (~1.1 µs each on our VMs, where syscalls are dear), for a figure hadns never reads.
 * libuv has no call to switch the option off, so this clears it in the loop's private fields:
 * since libuv 1.39 `loop->internal_fields` points at a struct whose first member is the flags
 * word, with UV_METRICS_IDLE_TIME as its bit. Only a word holding exactly 0 or that bit is
 * touched; anything else (another libuv layout) is left alone and reported as -1. Off, Node's
 * eventLoopUtilization() stops counting idle time (reads as fully busy).
 */
static napi_value js_loop_idle_time(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool on = false;
  if (argc < 1 || napi_get_value_bool(env, argv[0], &on) != napi_ok) {
    napi_throw_type_error(env, NULL, "loopIdleTime(on: boolean)");
    return NULL;
  }
  uv_loop_t *loop = NULL;
  napi_get_uv_event_loop(env, &loop);
  unsigned v = uv_version();
  if (loop == NULL || loop->internal_fields == NULL || v < 0x012700 || v >= 0x020000) return ret_i32(env, -1);
  unsigned int *flags = (unsigned int *)loop->internal_fields;
  const unsigned int bit = (unsigned int)UV_METRICS_IDLE_TIME;
  if ((*flags & ~bit) != 0) return ret_i32(env, -1);
  int was = (*flags & bit) ? 1 : 0;
  if (on) *flags |= bit;
  else *flags &= ~bit;
  return ret_i32(env, was);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor d[] = {
    { "open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL },
    { "localPort", NULL, js_local_port, NULL, NULL, NULL, napi_default, NULL },
    { "connect", NULL, js_connect, NULL, NULL, NULL, napi_default, NULL },
    { "start", NULL, js_start, NULL, NULL, NULL, napi_default, NULL },
    { "flush", NULL, js_flush, NULL, NULL, NULL, napi_default, NULL },
    { "sendTo", NULL, js_send_to, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL },
    { "idleThread", NULL, js_idle_thread, NULL, NULL, NULL, napi_default, NULL },
    { "rtThread", NULL, js_rt_thread, NULL, NULL, NULL, napi_default, NULL },
    { "loopIdleTime", NULL, js_loop_idle_time, NULL, NULL, NULL, napi_default, NULL },
    { "burstStats", NULL, js_burst_stats, NULL, NULL, NULL, napi_default, NULL },
    { "gsoStats", NULL, js_gso_stats, NULL, NULL, NULL, napi_default, NULL },
    { "index", NULL, js_index, NULL, NULL, NULL, napi_default, NULL },
    { "relay", NULL, js_relay, NULL, NULL, NULL, napi_default, NULL },
    { "forward", NULL, js_forward, NULL, NULL, NULL, napi_default, NULL },
    { "threadStart", NULL, js_thread_start, NULL, NULL, NULL, napi_default, NULL },
    { "threadStop", NULL, js_thread_stop, NULL, NULL, NULL, napi_default, NULL },
    { "threadStats", NULL, js_thread_stats, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof d / sizeof d[0], d);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
