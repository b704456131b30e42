/*
 * vrrp_raw: the smallest native shim hadns needs for VRRP — raw IP protocol-112 sockets and raw
 * link-layer frames (gratuitous ARP / unsolicited NA). Node has no raw sockets, so this part is
 * hand-written C over N-API. Everything protocol-specific (packet layout, checksums, ARP/NA frames)
 * stays in TypeScript; this file only opens sockets, sets options, sends, and reports received
 * datagrams through uv_poll on Node's own event loop (no threads, no blocking calls).
 *
 * JS API (see src/vrrp/native.ts for the typed wrapper):
 *   open(family 4|6, ifname, multicast bool, bindAddr string|null) -> handle
 *   send(handle, Buffer, dstAddr) -> bytes sent
 *   recvStart(handle, cb(buf, src, ttlOrHopLimit, dst))  (IPv4: buf includes the IP header, ttl/dst are -1/'')
 *   close(handle)
 *   sendFrame(ifname, Buffer)  (whole Ethernet frame through the process's one AF_PACKET socket)
 *   addrChange(add bool, ifname, addr string, prefix, label string|null, nodad bool) -> 0 or errno
 *     (rtnetlink RTM_NEWADDR/RTM_DELADDR: a VIP change in microseconds instead of an `ip` process)
 * Real-time scheduling of the engine process is util/threads.ts's setRealtime (udp_batch addon).
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <uv.h>
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>
#include <sched.h>
#include <sys/ioctl.h>

#define VRRP_PROTO 112
#define RXBUF 2048

typedef struct {
  int fd;
  int family;
  int ifindex;
  napi_env env;
  napi_ref cb;
  napi_async_context actx;
  uv_poll_t poll;
  int polling;
  int closed;   /* fd closed, poll handle closing */
  int uv_gone;  /* uv_close finished */
  int js_gone;  /* JS handle finalized */
} sock_t;

static napi_value throw_errno(napi_env env, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(errno));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static int get_str(napi_env env, napi_value v, char *out, size_t cap) {
  size_t len = 0;
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_string) { out[0] = 0; return 0; }
  napi_get_value_string_utf8(env, v, out, cap, &len);
  return 1;
}

static sock_t *get_sock(napi_env env, napi_value v) {
  void *p = NULL;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) { napi_throw_type_error(env, NULL, "bad handle"); return NULL; }
  return (sock_t *)p;
}

/* The struct is freed when both the poll handle is closed and the JS handle is collected. */
static void on_uv_closed(uv_handle_t *h) {
  sock_t *s = (sock_t *)h->data;
  s->uv_gone = 1;
  if (s->js_gone) free(s);
}

static void shut(sock_t *s) {
  if (s->closed) return;
  s->closed = 1;
  if (s->polling) uv_poll_stop(&s->poll);
  s->polling = 0;
  close(s->fd);
  uv_close((uv_handle_t *)&s->poll, on_uv_closed);
}

static void finalize_sock(napi_env env, void *data, void *hint) {
  (void)env; (void)hint;
  sock_t *s = (sock_t *)data;
  s->js_gone = 1;
  if (!s->closed) shut(s);
  else if (s->uv_gone) free(s);
}

/* open(family, ifname, multicast, bindAddr) */
static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t family = 4;
  bool mcast = false;
  char ifname[IF_NAMESIZE + 1], bind_addr[64];
  napi_get_value_int32(env, argv[0], &family);
  get_str(env, argv[1], ifname, sizeof ifname);
  napi_get_value_bool(env, argv[2], &mcast);
  int have_bind = argc > 3 && get_str(env, argv[3], bind_addr, sizeof bind_addr) && bind_addr[0];

  unsigned ifindex = if_nametoindex(ifname);
  if (!ifindex) return throw_errno(env, "if_nametoindex");
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, VRRP_PROTO);
  if (fd < 0) return throw_errno(env, "socket(SOCK_RAW, 112)");
  int one = 1, zero = 0, ttl = 255;
#define SSO(level, opt, val, len, what) if (setsockopt(fd, level, opt, val, len) < 0) { int e = errno; close(fd); errno = e; return throw_errno(env, what); }
  /* Receive only what arrives on this interface (several instances/interfaces, one host). */
  SSO(SOL_SOCKET, SO_BINDTODEVICE, ifname, strlen(ifname), "SO_BINDTODEVICE");
  if (family == 6) {
    SSO(IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl, "IPV6_MULTICAST_HOPS");
    SSO(IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof ttl, "IPV6_UNICAST_HOPS");
    SSO(IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof zero, "IPV6_MULTICAST_LOOP");
    int idx = (int)ifindex;
    SSO(IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx, "IPV6_MULTICAST_IF");
    SSO(IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one, "IPV6_RECVHOPLIMIT");
    SSO(IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one, "IPV6_RECVPKTINFO");
    if (mcast) {
      struct ipv6_mreq mr;
      memset(&mr, 0, sizeof mr);
      inet_pton(AF_INET6, "ff02::12", &mr.ipv6mr_multiaddr);
      mr.ipv6mr_interface = ifindex;
      SSO(IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mr, sizeof mr, "IPV6_ADD_MEMBERSHIP");
    }
    if (have_bind) {
      struct sockaddr_in6 sa;
      memset(&sa, 0, sizeof sa);
      sa.sin6_family = AF_INET6;
      if (inet_pton(AF_INET6, bind_addr, &sa.sin6_addr) != 1) { close(fd); napi_throw_error(env, NULL, "bad bind address"); return NULL; }
      if (IN6_IS_ADDR_LINKLOCAL(&sa.sin6_addr)) sa.sin6_scope_id = ifindex;
      if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { int e = errno; close(fd); errno = e; return throw_errno(env, "bind"); }
    }
  } else {
    int tos = 0xc0; /* internetwork control, as keepalived sends */
    SSO(IPPROTO_IP, IP_TOS, &tos, sizeof tos, "IP_TOS");
    SSO(IPPROTO_IP, IP_TTL, &ttl, sizeof ttl, "IP_TTL");
    SSO(IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl, "IP_MULTICAST_TTL");
    SSO(IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof zero, "IP_MULTICAST_LOOP");
    struct ip_mreqn mr;
    memset(&mr, 0, sizeof mr);
    mr.imr_ifindex = (int)ifindex;
    SSO(IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr, "IP_MULTICAST_IF");
    if (mcast) {
      inet_pton(AF_INET, "224.0.0.18", &mr.imr_multiaddr);
      SSO(IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr, "IP_ADD_MEMBERSHIP");
    }
    if (have_bind) {
      struct sockaddr_in sa;
      memset(&sa, 0, sizeof sa);
      sa.sin_family = AF_INET;
      if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) { close(fd); napi_throw_error(env, NULL, "bad bind address"); return NULL; }
      if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { int e = errno; close(fd); errno = e; return throw_errno(env, "bind"); }
    }
  }
#undef SSO
  sock_t *s = calloc(1, sizeof *s);
  s->fd = fd;
  s->family = family;
  s->ifindex = (int)ifindex;
  s->env = env;
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &s->poll, fd);
  s->poll.data = s;
  uv_unref((uv_handle_t *)&s->poll);
  napi_value ext;
  napi_create_external(env, s, finalize_sock, NULL, &ext);
  return ext;
}

static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  sock_t *s = get_sock(env, argv[0]);
  if (!s) return NULL;
  if (s->closed) { napi_throw_error(env, NULL, "socket closed"); return NULL; }
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) { napi_throw_type_error(env, NULL, "buffer expected"); return NULL; }
  char dst[64];
  get_str(env, argv[2], dst, sizeof dst);
  ssize_t n;
  if (s->family == 6) {
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof sa);
    sa.sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, dst, &sa.sin6_addr) != 1) { napi_throw_error(env, NULL, "bad destination"); return NULL; }
    if (IN6_IS_ADDR_LINKLOCAL(&sa.sin6_addr) || IN6_IS_ADDR_MC_LINKLOCAL(&sa.sin6_addr)) sa.sin6_scope_id = (uint32_t)s->ifindex;
    n = sendto(s->fd, data, len, 0, (struct sockaddr *)&sa, sizeof sa);
  } else {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    if (inet_pton(AF_INET, dst, &sa.sin_addr) != 1) { napi_throw_error(env, NULL, "bad destination"); return NULL; }
    n = sendto(s->fd, data, len, 0, (struct sockaddr *)&sa, sizeof sa);
  }
  if (n < 0) return throw_errno(env, "sendto");
  napi_value r;
  napi_create_int64(env, n, &r);
  return r;
}

static void on_readable(uv_poll_t *h, int status, int events) {
  (void)events;
  sock_t *s = (sock_t *)h->data;
  if (s->closed || status < 0) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_open_handle_scope(env, &scope);
  napi_value cb, recv;
  napi_get_reference_value(env, s->cb, &cb);
  napi_get_global(env, &recv); /* make_callback needs an object receiver */
  /* Drain everything queued so a burst costs one wake-up; bounded so one socket can't hog the loop. */
  for (int i = 0; i < 64 && !s->closed; i++) {
    unsigned char buf[RXBUF];
    union { struct sockaddr_in v4; struct sockaddr_in6 v6; } from;
    char ctrl[256];
    struct iovec iov = { buf, sizeof buf };
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctrl;
    mh.msg_controllen = sizeof ctrl;
    ssize_t n = recvmsg(s->fd, &mh, MSG_DONTWAIT);
    if (n < 0) break;
    char src[INET6_ADDRSTRLEN] = "", dst[INET6_ADDRSTRLEN] = "";
    int hops = -1;
    if (s->family == 6) {
      inet_ntop(AF_INET6, &from.v6.sin6_addr, src, sizeof src);
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != IPPROTO_IPV6) continue;
        if (c->cmsg_type == IPV6_HOPLIMIT) memcpy(&hops, CMSG_DATA(c), sizeof hops);
        if (c->cmsg_type == IPV6_PKTINFO) {
          struct in6_pktinfo pi;
          memcpy(&pi, CMSG_DATA(c), sizeof pi);
          inet_ntop(AF_INET6, &pi.ipi6_addr, dst, sizeof dst);
        }
      }
    } else {
      inet_ntop(AF_INET, &from.v4.sin_addr, src, sizeof src);
    }
    napi_value args[4];
    void *copy;
    napi_create_buffer_copy(env, (size_t)n, buf, &copy, &args[0]);
    napi_create_string_utf8(env, src, NAPI_AUTO_LENGTH, &args[1]);
    napi_create_int32(env, hops, &args[2]);
    napi_create_string_utf8(env, dst, NAPI_AUTO_LENGTH, &args[3]);
    napi_value result;
    /* make_callback runs microtasks after the JS callback, like any libuv-driven callback. */
    if (napi_make_callback(env, s->actx, recv, cb, 4, args, &result) != napi_ok) {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) { napi_value ex; napi_get_and_clear_last_exception(env, &ex); napi_fatal_exception(env, ex); }
      break;
    }
  }
  napi_close_handle_scope(env, scope);
}

static napi_value js_recv_start(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  sock_t *s = get_sock(env, argv[0]);
  if (!s) return NULL;
  if (s->closed) { napi_throw_error(env, NULL, "socket closed"); return NULL; }
  if (s->cb) napi_delete_reference(env, s->cb);
  napi_create_reference(env, argv[1], 1, &s->cb);
  if (!s->actx) {
    napi_value name;
    napi_create_string_utf8(env, "hadns.vrrp.recv", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, NULL, name, &s->actx);
  }
  /* A receiving socket keeps the process alive, like a bound dgram socket. */
  uv_ref((uv_handle_t *)&s->poll);
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  s->polling = 1;
  return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  sock_t *s = get_sock(env, argv[0]);
  if (!s || s->closed) return NULL;
  if (s->cb) { napi_delete_reference(env, s->cb); s->cb = NULL; }
  if (s->actx) { napi_async_destroy(env, s->actx); s->actx = NULL; }
  shut(s);
  return NULL;
}

/*
 * The AF_PACKET socket for sendFrame, opened on first use and kept for the life of the process
 * (close-on-exec; the kernel closes it at exit). Not one per frame: closing a packet socket waits
 * for an RCU grace period (packet_release() calls synchronize_net()), 12-15 ms per close on a
 * 2-vCPU VM, so a burst of five gratuitous ARPs blocked the engine's loop for 55-100 ms — longer
 * than two 30 ms advert intervals, and the backup took over (the fault matrix's link-down row).
 * Protocol 0: the socket is bound to no protocol and receives nothing, so it queues nothing.
 * It belongs to the network namespace the process was in when it was opened; the engine never
 * changes namespace. Worker threads may load this addon too, hence the compare-and-swap.
 */
static int frame_fd = -1;

static int frame_socket(void) {
  int fd = __atomic_load_n(&frame_fd, __ATOMIC_ACQUIRE);
  if (fd >= 0) return fd;
  int mine = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
  if (mine < 0) return -1;
  int expected = -1;
  if (__atomic_compare_exchange_n(&frame_fd, &expected, mine, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) return mine;
  close(mine); /* another thread won; only ever at the first use */
  return expected;
}

/* sendFrame(ifname, Buffer): a complete Ethernet frame out of one interface. */
static napi_value js_send_frame(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char ifname[IF_NAMESIZE + 1];
  get_str(env, argv[0], ifname, sizeof ifname);
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok || len < 14) { napi_throw_type_error(env, NULL, "frame expected"); return NULL; }
  int fd = frame_socket();
  if (fd < 0) return throw_errno(env, "socket(AF_PACKET)");
  /* The index is looked up on every call: an interface can be deleted and recreated. */
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  size_t nl = strlen(ifname);
  if (nl >= IF_NAMESIZE) { errno = ENODEV; return throw_errno(env, "SIOCGIFINDEX"); }
  memcpy(ifr.ifr_name, ifname, nl);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) return throw_errno(env, "SIOCGIFINDEX");
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_ifindex = ifr.ifr_ifindex;
  sll.sll_halen = ETH_ALEN;
  memcpy(sll.sll_addr, data, ETH_ALEN);
  memcpy(&sll.sll_protocol, (unsigned char *)data + 12, 2);
  if (sendto(fd, data, len, 0, (struct sockaddr *)&sll, sizeof sll) < 0) return throw_errno(env, "sendto(AF_PACKET)");
  return NULL;
}

static void nl_attr(struct nlmsghdr *n, size_t cap, int type, const void *data, size_t len) {
  size_t off = NLMSG_ALIGN(n->nlmsg_len);
  struct rtattr *rta = (struct rtattr *)((char *)n + off);
  if (off + RTA_LENGTH(len) > cap) return;
  rta->rta_type = (unsigned short)type;
  rta->rta_len = (unsigned short)RTA_LENGTH(len);
  memcpy(RTA_DATA(rta), data, len);
  n->nlmsg_len = (unsigned)(off + RTA_ALIGN(rta->rta_len));
}

/*
 * addrChange(add, ifname, addr, prefix, label|null, nodad): adds or deletes one address through
 * rtnetlink and waits for the kernel's ack. Returns 0 or a positive errno (EEXIST on a duplicate
 * add, EADDRNOTAVAIL on deleting an absent address): the caller decides what counts as success.
 */
static napi_value js_addr_change(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  bool add = false, nodad = false;
  napi_get_value_bool(env, argv[0], &add);
  char ifname[IF_NAMESIZE + 1], addr[INET6_ADDRSTRLEN + 1], label[IF_NAMESIZE + 1];
  get_str(env, argv[1], ifname, sizeof ifname);
  get_str(env, argv[2], addr, sizeof addr);
  int32_t prefix = 0;
  napi_get_value_int32(env, argv[3], &prefix);
  int has_label = get_str(env, argv[4], label, sizeof label) && label[0];
  if (argc > 5) napi_get_value_bool(env, argv[5], &nodad);

  unsigned char bytes[16];
  int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
  if (inet_pton(family, addr, bytes) != 1) { napi_throw_type_error(env, NULL, "addrChange: bad address"); return NULL; }
  unsigned ifindex = if_nametoindex(ifname);
  napi_value ret;
  if (!ifindex) { napi_create_int32(env, errno ? errno : ENODEV, &ret); return ret; }

  struct { struct nlmsghdr n; struct ifaddrmsg ifa; char buf[256]; } req;
  memset(&req, 0, sizeof req);
  req.n.nlmsg_len = NLMSG_LENGTH(sizeof(struct ifaddrmsg));
  req.n.nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR;
  req.n.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (add ? (NLM_F_CREATE | NLM_F_EXCL) : 0);
  req.n.nlmsg_seq = 1;
  req.ifa.ifa_family = (unsigned char)family;
  req.ifa.ifa_prefixlen = (unsigned char)prefix;
  req.ifa.ifa_flags = (family == AF_INET6 && nodad) ? IFA_F_NODAD : 0;
  req.ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  req.ifa.ifa_index = ifindex;
  size_t alen = family == AF_INET ? 4 : 16;
  nl_attr(&req.n, sizeof req, IFA_LOCAL, bytes, alen);
  nl_attr(&req.n, sizeof req, IFA_ADDRESS, bytes, alen);
  if (family == AF_INET && has_label && add) nl_attr(&req.n, sizeof req, IFA_LABEL, label, strlen(label) + 1);

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) { napi_create_int32(env, errno, &ret); return ret; }
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  int result = 0;
  if (sendto(fd, &req, req.n.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
    result = errno;
  } else {
    char rbuf[1024];
    ssize_t n = recv(fd, rbuf, sizeof rbuf, 0);
    if (n < 0) result = errno;
    else {
      struct nlmsghdr *h = (struct nlmsghdr *)rbuf;
      if (NLMSG_OK(h, (unsigned)n) && h->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *e = (struct nlmsgerr *)NLMSG_DATA(h);
        result = e->error < 0 ? -e->error : 0;
      }
    }
  }
  close(fd);
  napi_create_int32(env, result, &ret);
  return ret;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL },
    { "send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL },
    { "recvStart", NULL, js_recv_start, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL },
    { "sendFrame", NULL, js_send_frame, NULL, NULL, NULL, napi_default, NULL },
    { "addrChange", NULL, js_addr_change, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
