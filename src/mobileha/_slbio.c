/*
 * mobileha._slbio: batched datagram I/O for the HA-SLB virtual server and the registration
 * sockets, and the binding records of HA-HA sync (optional accelerator).
 *
 * Only socket I/O, one offset check and the headers the SLB puts around a datagram live
 * here; every decision (session, predictor, counters) stays in Python (mobileha.core.slb /
 * mobileha.node.slb). The pure-Python reader and senders in node/slb.py are the reference
 * and are used when this module is not built.
 *
 *   recv_requests(fd, max_n, bufsize) -> list[tuple[bytes, tuple[str, int], str | None, int]]
 *       Up to max_n datagrams with one recvmmsg(2) (MSG_DONTWAIT). Per datagram:
 *       (data, (source address, source port), nai, identification). ``nai`` is
 *       leading_nai(data); ``identification`` is the 64-bit Identification when the
 *       datagram has at least 24 bytes, else 0. A datagram longer than ``bufsize`` arrives
 *       truncated to ``bufsize`` bytes (the caller counts it as oversized). An empty list
 *       when nothing is queued; OSError on other errors.
 *
 *   leading_nai(data) -> str | None
 *       The NAI when it is the first extension of a Registration Request (type 1,
 *       extension 131 at offset 24, non-empty, inside the datagram, valid UTF-8), else
 *       None: the same check as mobileha.wire.mip.leading_nai (a property test compares
 *       them on random and mutated requests).
 *
 *   ipv4_udp(src, sport, dst, dport, payload) -> bytes
 *       The IPv4 + UDP datagram (both checksums filled, TTL 64, DF clear, ID 0) that the
 *       raw socket of ``directed`` mode sends: the same bytes as
 *       mobileha.wire.ip.build_udp_datagram. ValueError for a bad address or a payload
 *       that does not fit in one IPv4 datagram.
 *
 *   send_all(fd, datagrams: list[bytes], start=0) -> int
 *       sendmmsg(2) of datagrams[start:] on a connected socket (MSG_DONTWAIT), in order;
 *       returns how many were sent (the rest would block: the caller queues them). OSError
 *       when the first one fails for another reason than EAGAIN.
 *
 *   sendto_all(fd, items: list[tuple[bytes, tuple[str, int]]], start=0) -> int
 *       The same on an unconnected socket: each datagram to its own (IPv4 address, port),
 *       as the home agent's replies go. ValueError for an address that is not IPv4.
 *
 *   send_relay(fd, items, tag_head, start=0) -> int
 *       send_all of the SLB's relay mode from the reader's own tuples (data, (address,
 *       port), ...): each datagram followed by the plain relay tag, ``tag_head`` (its 10
 *       header bytes) and the item's address and port, gathered from two buffers (no
 *       copy): the same bytes as mobileha.wire.slbtag's plain encoder.
 *
 *   send_directed(fd, items, dst, dport, start=0) -> int
 *       send_all of the SLB's directed mode on its raw socket: each item's datagram behind
 *       the IPv4 + UDP header from the item's address and port to (dst, dport), the same
 *       bytes as ipv4_udp(address, port, dst, dport, data).
 *
 * HA-HA sync binding records (P§5.4), the one-pass forms of mobileha.wire.sync's Python
 * implementations (pack_binding_py, pack_bindings_py, decode_bindings_py: the reference;
 * tests/property/test_sync_fast_records.py compares them):
 *
 *   sync_pack_one(binding, now, rec_flags, nonce, sa_block, revocation) -> bytes
 *   sync_pack(bindings, now, rec_flags, nonces, sa_blocks, revocation) -> list[bytes]
 *       The record of each binding (its attributes home_addr, care_of, src_addr, ident,
 *       lifetime, expires, flags, encap, gre_key, nai, revocation) at ``now``; the lists
 *       are None or one item per binding; ``revocation(state)`` gives the record flags and
 *       FA timestamp of a non-zero ``revocation``.
 *
 *   sync_pack_chunk(bindings, now, rec_flags, nonces, sa_blocks, revocation, limit)
 *       -> (bytes, k)
 *       The records of bindings[:k] joined, k the most that fit in ``limit`` bytes (at
 *       least one): what one BI Reply carries, without a bytes object per record.
 *
 *   sync_decode(data, offset, count, factory, ha_addr, now, encaps, RecordSa, DecodeError,
 *               layout=None)
 *       -> (list of (factory(...), rec_flags, nonce, sa, revocation_ts), end offset)
 *       ``count`` records, each handed to ``factory`` as the arguments of a Binding; the
 *       same checks and DecodeError(reason, detail) as the Python decoder. With ``layout``
 *       (mobileha.wire.sync.slot_layout of a slots dataclass) the arguments are stored
 *       in the instance's slots directly, as its __init__ would.
 *
 * The dynamic home address pool (mobileha.core.pool.AddressPool: one byte per address,
 * 0 free, 1 allocated, 2 excluded; mobileha.wire.addrpool's Python lookups are the
 * reference and tests/property/test_pool_props.py compares them):
 *
 *   pool_state(bits, base, addr) -> int
 *       The byte of ``bits`` at the index of IPv4 address str ``addr`` (its value minus
 *       ``base``), -1 when that is outside ``bits`` or ``addr`` is no address
 *       socket.inet_aton accepts.
 *
 *   pool_flags(bits, base, addrs, flag) -> list[int]
 *       ``flag`` for each address of the sequence ``addrs`` whose state is 1 (allocated),
 *       0 for the others: the REC_DYNAMIC flags of a batch of sync records.
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_BATCH 1024
/* RFC 5944 §3.3: a Registration Request (type 1) has a 24-byte fixed part, the
 * Identification at offset 16; the first extension follows. FAs/PDSNs put the NAI (RFC 2794
 * §2, type 131: type, length, NAI) there. Same offsets as mobileha.wire.mip's NAI_AT and
 * IDENT_AT. */
#define RRQ_TYPE 1
#define IDENT_AT 16
#define NAI_AT 24
#define EXT_NAI 131
/* the plain relay tag (mobileha.wire.slbtag): a 10-byte NVSE header, then the origin's
 * address (4) and port (2) */
#define RELAY_HEAD 10
#define ADDR_CACHE 256

static PyObject *addr_cache_obj[ADDR_CACHE];
static uint32_t addr_cache_key[ADDR_CACHE];

static unsigned char *rbuf;
static size_t rbuf_size;
static struct mmsghdr *rmsgs;
static struct iovec *riov;
static struct sockaddr_in *rnames;
static int rmax;
static int rlay_n;          /* the layout of the headers: max_n and bufsize of their last setup */
static Py_ssize_t rlay_size;
static int rdirty;          /* headers the last call filled (their msg_namelen to restore) */

/* The dotted-quad str of an IPv4 address (network order), from a small direct-mapped cache:
 * a virtual server sees the same few hundred FA/PDSN addresses over and over. */
static PyObject *addr_str(uint32_t a) {
    uint32_t h = (a ^ (a >> 8) ^ (a >> 16) ^ (a >> 24)) & (ADDR_CACHE - 1);
    PyObject *o = addr_cache_obj[h];
    if (o != NULL && addr_cache_key[h] == a) {
        Py_INCREF(o);
        return o;
    }
    char buf[INET_ADDRSTRLEN];
    struct in_addr ia;
    ia.s_addr = a;
    if (inet_ntop(AF_INET, &ia, buf, sizeof buf) == NULL) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    o = PyUnicode_FromString(buf);
    if (o == NULL) {
        return NULL;
    }
    Py_XDECREF(addr_cache_obj[h]);
    Py_INCREF(o);
    addr_cache_obj[h] = o;
    addr_cache_key[h] = a;
    return o;
}

/* The NAI at offset 24 (a new reference), or Py_None (a new reference), or NULL with an
 * exception set on an error other than invalid UTF-8. */
static PyObject *nai_at_start(const unsigned char *p, Py_ssize_t n) {
    if (n >= NAI_AT + 2 && p[0] == RRQ_TYPE && p[NAI_AT] == EXT_NAI && p[NAI_AT + 1] > 0 &&
        NAI_AT + 2 + (Py_ssize_t)p[NAI_AT + 1] <= n) {
        PyObject *nai = PyUnicode_DecodeUTF8((const char *)p + NAI_AT + 2, p[NAI_AT + 1], "strict");
        if (nai != NULL) return nai;
        if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) return NULL;
        PyErr_Clear();
    }
    Py_INCREF(Py_None);
    return Py_None;
}

static PyObject *one(const unsigned char *p, Py_ssize_t n, const struct sockaddr_in *sa) {
    PyObject *data = NULL, *addr = NULL, *port = NULL, *src = NULL, *nai = NULL, *ident = NULL;
    data = PyBytes_FromStringAndSize((const char *)p, n);
    if (data == NULL) goto fail;
    addr = addr_str(sa->sin_addr.s_addr);
    if (addr == NULL) goto fail;
    port = PyLong_FromLong(ntohs(sa->sin_port));
    if (port == NULL) goto fail;
    src = PyTuple_New(2);
    if (src == NULL) goto fail;
    PyTuple_SET_ITEM(src, 0, addr); /* steals the references */
    PyTuple_SET_ITEM(src, 1, port);
    addr = port = NULL;
    nai = nai_at_start(p, n);
    if (nai == NULL) goto fail;
    if (n >= NAI_AT) {
        unsigned long long v = 0;
        for (int i = IDENT_AT; i < IDENT_AT + 8; i++) v = (v << 8) | p[i];
        ident = PyLong_FromUnsignedLongLong(v);
    } else {
        ident = PyLong_FromLong(0);
    }
    if (ident == NULL) goto fail;
    PyObject *t = PyTuple_New(4);
    if (t == NULL) goto fail;
    PyTuple_SET_ITEM(t, 0, data); /* steals the references */
    PyTuple_SET_ITEM(t, 1, src);
    PyTuple_SET_ITEM(t, 2, nai);
    PyTuple_SET_ITEM(t, 3, ident);
    return t;
fail:
    Py_XDECREF(data);
    Py_XDECREF(addr);
    Py_XDECREF(port);
    Py_XDECREF(src);
    Py_XDECREF(nai);
    Py_XDECREF(ident);
    return NULL;
}

static PyObject *leading_nai(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer b;
    if (!PyArg_ParseTuple(args, "y*", &b)) return NULL;
    PyObject *nai = nai_at_start(b.buf, b.len);
    PyBuffer_Release(&b);
    return nai;
}

static PyObject *recv_requests(PyObject *self, PyObject *args) {
    int fd, max_n;
    Py_ssize_t bufsize;
    if (!PyArg_ParseTuple(args, "iin", &fd, &max_n, &bufsize)) return NULL;
    if (max_n < 1 || max_n > MAX_BATCH) {
        PyErr_Format(PyExc_ValueError, "max_n must be 1..%d", MAX_BATCH);
        return NULL;
    }
    if (bufsize < 1 || bufsize > 65536) {
        PyErr_SetString(PyExc_ValueError, "bufsize must be 1..65536");
        return NULL;
    }
    /* Buffers kept between calls (grown when asked for more). The calls are non-blocking
     * and keep the GIL, so no two of them run at once. */
    size_t need = (size_t)max_n * (size_t)bufsize;
    if (need > rbuf_size || max_n > rmax) {
        PyMem_Free(rbuf);
        PyMem_Free(rmsgs);
        PyMem_Free(riov);
        PyMem_Free(rnames);
        rbuf_size = 0;
        rmax = 0;
        rbuf = PyMem_Malloc(need);
        rmsgs = PyMem_Calloc((size_t)max_n, sizeof *rmsgs);
        riov = PyMem_Malloc((size_t)max_n * sizeof *riov);
        rnames = PyMem_Calloc((size_t)max_n, sizeof *rnames);
        if (rbuf == NULL || rmsgs == NULL || riov == NULL || rnames == NULL) {
            return PyErr_NoMemory();
        }
        rbuf_size = need;
        rmax = max_n;
        rlay_n = 0; /* new buffers: lay the headers out again */
    }
    unsigned char *buf = rbuf;
    struct mmsghdr *msgs = rmsgs;
    struct iovec *iov = riov;
    struct sockaddr_in *names = rnames;
    PyObject *out = NULL;
    if (rlay_n != max_n || rlay_size != bufsize) {
        /* lay the headers out once per (max_n, bufsize); later calls only restore what
         * the kernel wrote into them (msg_namelen) */
        for (int i = 0; i < max_n; i++) {
            iov[i].iov_base = buf + (size_t)i * (size_t)bufsize;
            iov[i].iov_len = (size_t)bufsize;
            memset(&msgs[i], 0, sizeof msgs[i]);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &names[i];
            msgs[i].msg_hdr.msg_namelen = sizeof names[i];
        }
        rlay_n = max_n;
        rlay_size = bufsize;
        rdirty = 0;
    }
    for (int i = 0; i < rdirty; i++) {
        msgs[i].msg_hdr.msg_namelen = sizeof names[i];
    }
    rdirty = 0;
    int got = recvmmsg(fd, msgs, (unsigned)max_n, MSG_DONTWAIT, NULL);
    if (got > 0) rdirty = got;
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
            out = PyList_New(0);
        } else {
            PyErr_SetFromErrno(PyExc_OSError);
        }
        return out;
    }
    out = PyList_New(got);
    if (out == NULL) return NULL;
    for (int i = 0; i < got; i++) {
        Py_ssize_t n = (Py_ssize_t)msgs[i].msg_len;
        if (n > bufsize) n = bufsize;
        struct sockaddr_in sa = names[i];
        if (msgs[i].msg_hdr.msg_namelen < sizeof sa || sa.sin_family != AF_INET) {
            memset(&sa, 0, sizeof sa);
        }
        PyObject *t = one(iov[i].iov_base, n, &sa);
        if (t == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, t);
    }
    return out;
}

/* RFC 1071 one's-complement sum of a buffer, added to ``sum`` (not folded). */
static uint64_t sum16(const unsigned char *p, size_t n, uint64_t sum) {
    while (n >= 2) {
        sum += (uint64_t)((p[0] << 8) | p[1]);
        p += 2;
        n -= 2;
    }
    if (n) sum += (uint64_t)(p[0] << 8);
    return sum;
}

static uint16_t fold(uint64_t sum) {
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

#define IPV4_UDP_HDR 28
#define MAX_UDP_PAYLOAD 65507

/* The 28 bytes of IPv4 + UDP header in front of ``payload`` (both checksums filled, TTL
 * 64, DF clear, ID 0): the header of ipv4_udp() and of send_directed(). */
static void ipv4_udp_header(unsigned char *h, const struct in_addr *sa, uint16_t sport,
                            const struct in_addr *da, uint16_t dport,
                            const unsigned char *payload, size_t n) {
    size_t ulen = 8 + n, tot = 20 + ulen;
    h[0] = 0x45;
    h[1] = 0;
    h[2] = (unsigned char)(tot >> 8);
    h[3] = (unsigned char)tot;
    h[4] = h[5] = h[6] = h[7] = 0;
    h[8] = 64;
    h[9] = IPPROTO_UDP;
    h[10] = h[11] = 0;
    memcpy(h + 12, sa, 4);
    memcpy(h + 16, da, 4);
    uint16_t ic = fold(sum16(h, 20, 0));
    h[10] = (unsigned char)(ic >> 8);
    h[11] = (unsigned char)ic;
    unsigned char *u = h + 20;
    u[0] = (unsigned char)(sport >> 8);
    u[1] = (unsigned char)sport;
    u[2] = (unsigned char)(dport >> 8);
    u[3] = (unsigned char)dport;
    u[4] = (unsigned char)(ulen >> 8);
    u[5] = (unsigned char)ulen;
    u[6] = u[7] = 0;
    /* pseudo header: addresses, protocol, UDP length; then the UDP header and payload (the
     * header is 8 bytes: the payload's 16-bit words keep their alignment) */
    uint64_t sum = sum16(h + 12, 8, 0) + IPPROTO_UDP + ulen;
    uint16_t uc = fold(sum16(payload, n, sum16(u, 8, sum)));
    if (uc == 0) uc = 0xFFFF; /* RFC 768: a computed 0 is sent as all ones */
    u[6] = (unsigned char)(uc >> 8);
    u[7] = (unsigned char)uc;
}

/* One datagram of a send list into a message header: 0, or -1 with an exception set.
 * ``iov`` has room for two buffers and ``scratch`` for IPV4_UDP_HDR bytes (a header or
 * trailer built for this datagram); ``ctx`` is the send call's own argument. */
typedef int (*fill_fn)(PyObject *item, struct mmsghdr *msg, struct iovec *iov,
                       struct sockaddr_in *name, unsigned char *scratch, const void *ctx);

static int fill_bytes(PyObject *item, struct mmsghdr *msg, struct iovec *iov,
                      struct sockaddr_in *name, unsigned char *scratch, const void *ctx) {
    (void)name;
    (void)scratch;
    (void)ctx;
    if (!PyBytes_Check(item)) {
        PyErr_SetString(PyExc_TypeError, "datagrams must be bytes");
        return -1;
    }
    iov->iov_base = PyBytes_AS_STRING(item);
    iov->iov_len = (size_t)PyBytes_GET_SIZE(item);
    msg->msg_hdr.msg_iov = iov;
    msg->msg_hdr.msg_iovlen = 1;
    return 0;
}

#define PTON_CACHE 64
static PyObject *pton_obj[PTON_CACHE];
static struct in_addr pton_addr[PTON_CACHE];

/* inet_pton(3) of an address str, remembered per str object (direct-mapped on the object's
 * address, holding a reference so that the object cannot be freed and its address reused):
 * the reader's address strs come from addr_str's cache and repeat. 1, 0 for no IPv4
 * address, -1 with an exception set. */
static int pton_cached(PyObject *host, struct in_addr *a) {
    size_t h = ((uintptr_t)host >> 4) & (PTON_CACHE - 1);
    if (pton_obj[h] == host) {
        *a = pton_addr[h];
        return 1;
    }
    const char *s = PyUnicode_AsUTF8(host);
    if (s == NULL) return -1;
    if (inet_pton(AF_INET, s, a) != 1) return 0;
    Py_INCREF(host);
    Py_XDECREF(pton_obj[h]);
    pton_obj[h] = host;
    pton_addr[h] = *a;
    return 1;
}

/* item[0] (bytes) and item[1] (an (IPv4 address str, port) tuple) of a send-list item: 0,
 * or -1 with an exception set. */
static int data_and_addr(PyObject *item, PyObject **data, struct in_addr *a, uint16_t *port,
                         const char *what) {
    PyObject *addr, *host, *pobj;
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) < 2) goto bad;
    *data = PyTuple_GET_ITEM(item, 0);
    addr = PyTuple_GET_ITEM(item, 1);
    if (!PyBytes_Check(*data) || !PyTuple_Check(addr) || PyTuple_GET_SIZE(addr) < 2) goto bad;
    host = PyTuple_GET_ITEM(addr, 0);
    pobj = PyTuple_GET_ITEM(addr, 1);
    if (!PyUnicode_Check(host) || !PyLong_Check(pobj)) goto bad;
    long pn = PyLong_AsLong(pobj);
    if (pn == -1 && PyErr_Occurred()) return -1;
    int ok = pton_cached(host, a);
    if (ok < 0) return -1;
    if (!ok || pn < 0 || pn > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "not an IPv4 address and port");
        return -1;
    }
    *port = (uint16_t)pn;
    return 0;
bad:
    PyErr_SetString(PyExc_TypeError, what);
    return -1;
}

static int fill_addressed(PyObject *item, struct mmsghdr *msg, struct iovec *iov,
                          struct sockaddr_in *name, unsigned char *scratch, const void *ctx) {
    PyObject *data;
    uint16_t port;
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
        PyErr_SetString(PyExc_TypeError, "items must be (bytes, (address, port))");
        return -1;
    }
    memset(name, 0, sizeof *name);
    if (data_and_addr(item, &data, &name->sin_addr, &port,
                      "items must be (bytes, (address, port))") < 0) {
        return -1;
    }
    fill_bytes(data, msg, iov, name, scratch, ctx);
    name->sin_family = AF_INET;
    name->sin_port = htons(port);
    msg->msg_hdr.msg_name = name;
    msg->msg_hdr.msg_namelen = sizeof *name;
    return 0;
}

/* relay mode: the datagram, then the plain relay tag (``ctx``: its 10 header bytes) with
 * the item's source address and port, gathered from two buffers */
static int fill_relay(PyObject *item, struct mmsghdr *msg, struct iovec *iov,
                      struct sockaddr_in *name, unsigned char *scratch, const void *ctx) {
    PyObject *data;
    struct in_addr a;
    uint16_t port;
    (void)name;
    if (data_and_addr(item, &data, &a, &port, "items must be (bytes, (address, port), ...)") < 0) {
        return -1;
    }
    memcpy(scratch, ctx, RELAY_HEAD);
    memcpy(scratch + RELAY_HEAD, &a, 4);
    scratch[RELAY_HEAD + 4] = (unsigned char)(port >> 8);
    scratch[RELAY_HEAD + 5] = (unsigned char)port;
    iov[0].iov_base = PyBytes_AS_STRING(data);
    iov[0].iov_len = (size_t)PyBytes_GET_SIZE(data);
    iov[1].iov_base = scratch;
    iov[1].iov_len = RELAY_HEAD + 6;
    msg->msg_hdr.msg_iov = iov;
    msg->msg_hdr.msg_iovlen = 2;
    return 0;
}

struct directed_to {
    struct in_addr addr;
    uint16_t port;
};

/* directed mode: the IPv4 + UDP header from the item's source to ``ctx``'s real, then the
 * datagram, gathered from two buffers */
static int fill_directed(PyObject *item, struct mmsghdr *msg, struct iovec *iov,
                         struct sockaddr_in *name, unsigned char *scratch, const void *ctx) {
    const struct directed_to *to = ctx;
    PyObject *data;
    struct in_addr a;
    uint16_t port;
    (void)name;
    if (data_and_addr(item, &data, &a, &port, "items must be (bytes, (address, port), ...)") < 0) {
        return -1;
    }
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(data);
    size_t n = (size_t)PyBytes_GET_SIZE(data);
    if (n > MAX_UDP_PAYLOAD) {
        PyErr_SetString(PyExc_ValueError, "payload does not fit in one IPv4 datagram");
        return -1;
    }
    ipv4_udp_header(scratch, &a, port, &to->addr, to->port, p, n);
    iov[0].iov_base = scratch;
    iov[0].iov_len = IPV4_UDP_HDR;
    iov[1].iov_base = (void *)p;
    iov[1].iov_len = n;
    msg->msg_hdr.msg_iov = iov;
    msg->msg_hdr.msg_iovlen = 2;
    return 0;
}

/* sendmmsg(2) of list[start:] in order, 64 per call (MSG_DONTWAIT): how many were sent. It
 * stops at the first that would block; OSError when the first one fails otherwise (after
 * some were sent, the count: the caller retries the rest and sees the error then). */
static PyObject *send_list(int fd, PyObject *list, Py_ssize_t start, fill_fn fill,
                           const void *ctx) {
    Py_ssize_t total = PyList_GET_SIZE(list);
    if (start < 0 || start > total) {
        PyErr_SetString(PyExc_ValueError, "start out of range");
        return NULL;
    }
    Py_ssize_t sent = 0;
    struct mmsghdr msgs[64];
    struct iovec iov[64][2];
    struct sockaddr_in names[64];
    unsigned char scratch[64][IPV4_UDP_HDR];
    while (start + sent < total) {
        Py_ssize_t k = total - start - sent;
        if (k > 64) k = 64;
        memset(msgs, 0, sizeof msgs[0] * (size_t)k);
        for (Py_ssize_t i = 0; i < k; i++) {
            if (fill(PyList_GET_ITEM(list, start + sent + i), &msgs[i], iov[i], &names[i],
                     scratch[i], ctx) < 0) {
                return NULL;
            }
        }
        /* the GIL is held: the list and its bytes stay as they are during the call */
        int r = sendmmsg(fd, msgs, (unsigned)k, MSG_DONTWAIT);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (errno == EINTR) continue;
            if (sent == 0) return PyErr_SetFromErrno(PyExc_OSError);
            break;
        }
        sent += r;
        if (r < k) break;
    }
    return PyLong_FromSsize_t(sent);
}

/* (fd, list, start=0) arguments, then send_list with ``fill`` */
static PyObject *send_args(PyObject *args, fill_fn fill) {
    int fd;
    PyObject *list;
    Py_ssize_t start = 0;
    if (!PyArg_ParseTuple(args, "iO!|n", &fd, &PyList_Type, &list, &start)) return NULL;
    return send_list(fd, list, start, fill, NULL);
}

static PyObject *send_all(PyObject *self, PyObject *args) {
    (void)self;
    return send_args(args, fill_bytes);
}

static PyObject *sendto_all(PyObject *self, PyObject *args) {
    (void)self;
    return send_args(args, fill_addressed);
}

static PyObject *send_relay(PyObject *self, PyObject *args) {
    (void)self;
    int fd;
    PyObject *list;
    Py_buffer head;
    Py_ssize_t start = 0;
    if (!PyArg_ParseTuple(args, "iO!y*|n", &fd, &PyList_Type, &list, &head, &start)) return NULL;
    unsigned char h[RELAY_HEAD];
    int ok = head.len == RELAY_HEAD;
    if (ok) memcpy(h, head.buf, RELAY_HEAD);
    PyBuffer_Release(&head);
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "the relay tag header has %d bytes", RELAY_HEAD);
        return NULL;
    }
    return send_list(fd, list, start, fill_relay, h);
}

static PyObject *send_directed(PyObject *self, PyObject *args) {
    (void)self;
    int fd, dport;
    PyObject *list;
    const char *dst;
    Py_ssize_t start = 0;
    if (!PyArg_ParseTuple(args, "iO!si|n", &fd, &PyList_Type, &list, &dst, &dport, &start)) {
        return NULL;
    }
    struct directed_to to;
    if (inet_pton(AF_INET, dst, &to.addr) != 1 || dport < 0 || dport > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "not an IPv4 address and port");
        return NULL;
    }
    to.port = (uint16_t)dport;
    return send_list(fd, list, start, fill_directed, &to);
}

static PyObject *ipv4_udp(PyObject *self, PyObject *args) {
    (void)self;
    const char *src, *dst;
    int sport, dport;
    Py_buffer payload;
    if (!PyArg_ParseTuple(args, "sisiy*", &src, &sport, &dst, &dport, &payload)) return NULL;
    struct in_addr sa, da;
    if (inet_pton(AF_INET, src, &sa) != 1 || inet_pton(AF_INET, dst, &da) != 1) {
        PyBuffer_Release(&payload);
        PyErr_SetString(PyExc_ValueError, "not an IPv4 address");
        return NULL;
    }
    if (sport < 0 || sport > 0xFFFF || dport < 0 || dport > 0xFFFF ||
        payload.len > MAX_UDP_PAYLOAD) {
        PyBuffer_Release(&payload);
        PyErr_SetString(PyExc_ValueError, "port or payload length out of range");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, IPV4_UDP_HDR + payload.len);
    if (out != NULL) {
        unsigned char *h = (unsigned char *)PyBytes_AS_STRING(out);
        memcpy(h + IPV4_UDP_HDR, payload.buf, (size_t)payload.len);
        ipv4_udp_header(h, &sa, (uint16_t)sport, &da, (uint16_t)dport, h + IPV4_UDP_HDR,
                        (size_t)payload.len);
    }
    PyBuffer_Release(&payload);
    return out;
}

/* ---- HA-HA sync binding records (P§5.4; mobileha.wire.sync is the reference) ----------
 *
 * Record: !HBB4s4s4sQHHIBB (length, registration flags, record flags, home address, care-of
 * address, source address, Identification, lifetime, remaining lifetime, GRE key,
 * encapsulation, NAI length), the NAI, then with REC_NONCE a 4-byte nonce, with
 * REC_REVOCATION the FA's 4-byte timestamp, with REC_SA the SA block; bytes after those
 * inside the record length are a newer sender's and are skipped here. */
#define REC_LEN 34
#define REC_GRE_KEY 0x20
#define REC_NONCE 0x10
#define REC_SA 0x08
#define REC_REVOCATION 0x02
#define SA_BLOCK_LEN 27 /* !BIBBHH16s: length, SPI, algorithm, flags, tolerance, lifetime, salt */
#define LIFETIME_INF 0xFFFF

static PyObject *s_home_addr, *s_care_of, *s_src_addr, *s_ident, *s_lifetime, *s_expires,
    *s_flags, *s_encap, *s_gre_key, *s_nai, *s_revocation, *s_empty;

static void put16(unsigned char *p, unsigned v) {
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* An attribute of ``o`` as an unsigned integer <= max: 0, or -1 with an exception set. */
static int attr_uint(PyObject *o, PyObject *name, unsigned long long max, unsigned long long *out) {
    PyObject *v = PyObject_GetAttr(o, name);
    if (v == NULL) return -1;
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    Py_DECREF(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    if (x > max) {
        PyErr_Format(PyExc_OverflowError, "%U out of range for a sync record", name);
        return -1;
    }
    *out = x;
    return 0;
}

/* An unsigned value <= max (a Python int): 0, or -1 with an exception set. */
static int as_uint(PyObject *v, unsigned long long max, unsigned long long *out) {
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    if (x > max) {
        PyErr_SetString(PyExc_OverflowError, "value out of range for a sync record");
        return -1;
    }
    *out = x;
    return 0;
}

/* A dotted-quad str (what socket.inet_aton accepts) into 4 bytes: 0, or -1 with the
 * exception socket.inet_aton raises. */
static int aton(PyObject *s, unsigned char *out) {
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "an IPv4 address must be str, not %.100s", Py_TYPE(s)->tp_name);
        return -1;
    }
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(s, &n);
    if (p == NULL) return -1;
    if ((Py_ssize_t)strlen(p) != n) {
        PyErr_SetString(PyExc_ValueError, "embedded null character");
        return -1;
    }
    struct in_addr a;
    if (inet_aton(p, &a) == 0) {
        PyErr_SetString(PyExc_OSError, "illegal IP address string passed to inet_aton");
        return -1;
    }
    memcpy(out, &a, 4);
    return 0;
}

/* One binding's record, ready to be written: the fixed part, the NAI (the str's own
 * bytes or an encoded copy, held by ``owner``), nonce and FA timestamp, SA block. */
struct rec {
    unsigned char head[REC_LEN];
    unsigned char tail[8];
    Py_ssize_t tail_n;
    const char *nai;
    Py_ssize_t nai_n;
    PyObject *owner; /* keeps ``nai`` alive */
    PyObject *block; /* borrowed */
    Py_ssize_t block_n;
    Py_ssize_t total;
};

/* The record of one binding (the bytes of mobileha.wire.sync.pack_binding_py) into ``r``:
 * 0, or -1 with an exception set. rec_release(r) after a 0. */
static int rec_fields(PyObject *b, double now, unsigned long rec_flags, PyObject *nonce,
                      PyObject *block, PyObject *revocation, struct rec *r) {
    unsigned char *head = r->head;
    unsigned char *tail = r->tail;
    Py_ssize_t tail_n = 0;
    PyObject *v = NULL, *nai_bytes = NULL, *rev = NULL;
    const char *nai = NULL;
    Py_ssize_t nai_n = 0, block_n = 0;
    unsigned long long ident, lifetime, flags, encap, key = 0, x;
    unsigned long remaining;
    if ((v = PyObject_GetAttr(b, s_home_addr)) == NULL || aton(v, head + 4) < 0) goto fail;
    Py_DECREF(v);
    if ((v = PyObject_GetAttr(b, s_care_of)) == NULL || aton(v, head + 8) < 0) goto fail;
    Py_DECREF(v);
    if ((v = PyObject_GetAttr(b, s_src_addr)) == NULL) goto fail;
    int has_src = PyObject_IsTrue(v);
    if (has_src < 0) goto fail;
    if (has_src) {
        if (aton(v, head + 12) < 0) goto fail;
    } else {
        memset(head + 12, 0, 4);
    }
    Py_CLEAR(v);
    if (attr_uint(b, s_ident, 0xFFFFFFFFFFFFFFFFULL, &ident) < 0) goto fail;
    if ((v = PyObject_GetAttr(b, s_flags)) == NULL) goto fail;
    flags = PyLong_AsUnsignedLongMask(v) & 0xFF;
    if (flags == 0xFF && PyErr_Occurred()) goto fail;
    Py_CLEAR(v);
    if (attr_uint(b, s_encap, 0xFF, &encap) < 0) goto fail;
    if ((v = PyObject_GetAttr(b, s_gre_key)) == NULL) goto fail;
    if (v != Py_None) {
        if (as_uint(v, 0xFFFFFFFFULL, &key) < 0) goto fail;
        rec_flags |= REC_GRE_KEY;
    }
    Py_CLEAR(v);
    /* lifetimes: an infinite binding has a remaining lifetime of 0xFFFF; otherwise the
     * remaining lifetime at ``now`` rounded up, within 0..0xFFFE */
    if ((v = PyObject_GetAttr(b, s_lifetime)) == NULL) goto fail;
    long long lt = PyLong_AsLongLong(v);
    if (lt == -1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) goto fail;
        PyErr_Clear();
        int positive = PyObject_RichCompareBool(v, Py_False, Py_GT);
        if (positive < 0) goto fail;
        if (!positive) {
            PyErr_SetString(PyExc_OverflowError, "lifetime out of range for a sync record");
            goto fail;
        }
        lt = LIFETIME_INF;
    }
    Py_CLEAR(v);
    if (lt >= LIFETIME_INF) {
        lifetime = remaining = LIFETIME_INF;
    } else {
        if (lt < 0) {
            PyErr_SetString(PyExc_OverflowError, "lifetime out of range for a sync record");
            goto fail;
        }
        lifetime = (unsigned long long)lt;
        if ((v = PyObject_GetAttr(b, s_expires)) == NULL) goto fail;
        double e = PyFloat_AsDouble(v);
        if (e == -1.0 && PyErr_Occurred()) goto fail;
        Py_CLEAR(v);
        if (isinf(e) && e > 0) {
            remaining = LIFETIME_INF;
        } else {
            double d = ceil(e - now);
            if (isnan(d)) {
                PyErr_SetString(PyExc_ValueError, "cannot convert float NaN to integer");
                goto fail;
            }
            if (isinf(d)) {
                PyErr_SetString(PyExc_OverflowError, "cannot convert float infinity to integer");
                goto fail;
            }
            remaining = d < 0 ? 0 : d >= LIFETIME_INF ? LIFETIME_INF - 1 : (unsigned long)d;
        }
    }
    /* the NAI: None or empty for none */
    if ((v = PyObject_GetAttr(b, s_nai)) == NULL) goto fail;
    if (v != Py_None) {
        if (!PyUnicode_Check(v)) {
            PyErr_SetString(PyExc_TypeError, "the NAI must be str or None");
            goto fail;
        }
        if (PyUnicode_IS_COMPACT_ASCII(v)) { /* the str's own bytes: no copy, no cache */
            nai = (const char *)PyUnicode_DATA(v);
            nai_n = PyUnicode_GET_LENGTH(v);
        } else {
            nai_bytes = PyUnicode_AsUTF8String(v);
            if (nai_bytes == NULL) goto fail;
            nai = PyBytes_AS_STRING(nai_bytes);
            nai_n = PyBytes_GET_SIZE(nai_bytes);
        }
        if (nai_n > 255) {
            PyErr_SetString(PyExc_ValueError, "NAI longer than 255 bytes");
            goto fail;
        }
    }
    if (nonce != Py_None) {
        if (as_uint(nonce, 0xFFFFFFFFULL, &x) < 0) goto fail;
        put32(tail + tail_n, (uint32_t)x);
        tail_n += 4;
        rec_flags |= REC_NONCE;
    }
    if ((rev = PyObject_GetAttr(b, s_revocation)) == NULL) goto fail;
    int negotiated = PyObject_IsTrue(rev);
    if (negotiated < 0) goto fail;
    if (negotiated) { /* (record flags, FA timestamp) of the core's revocation state */
        PyObject *rt = PyObject_CallOneArg(revocation, rev);
        if (rt == NULL) goto fail;
        unsigned long long rf, ts;
        if (!PyTuple_Check(rt) || PyTuple_GET_SIZE(rt) != 2) {
            Py_DECREF(rt);
            PyErr_SetString(PyExc_TypeError, "revocation() must return (flags, timestamp)");
            goto fail;
        }
        if (as_uint(PyTuple_GET_ITEM(rt, 0), 0xFF, &rf) < 0 ||
            as_uint(PyTuple_GET_ITEM(rt, 1), 0xFFFFFFFFULL, &ts) < 0) {
            Py_DECREF(rt);
            goto fail;
        }
        Py_DECREF(rt);
        rec_flags |= (unsigned long)rf;
        put32(tail + tail_n, (uint32_t)ts);
        tail_n += 4;
    }
    Py_CLEAR(rev);
    if (block != Py_None) {
        if (!PyBytes_Check(block)) {
            PyErr_SetString(PyExc_TypeError, "an SA block must be bytes");
            goto fail;
        }
        block_n = PyBytes_GET_SIZE(block);
        rec_flags |= REC_SA;
    }
    if (rec_flags > 0xFF) {
        PyErr_SetString(PyExc_OverflowError, "record flags out of range");
        goto fail;
    }
    Py_ssize_t total = REC_LEN + nai_n + tail_n + block_n;
    if (total > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "record too long");
        goto fail;
    }
    put16(head, (unsigned)total);
    head[2] = (unsigned char)flags;
    head[3] = (unsigned char)rec_flags;
    put32(head + 16, (uint32_t)(ident >> 32));
    put32(head + 20, (uint32_t)ident);
    put16(head + 24, (unsigned)lifetime);
    put16(head + 26, (unsigned)remaining);
    put32(head + 28, (uint32_t)key);
    head[32] = (unsigned char)encap;
    head[33] = (unsigned char)nai_n;
    r->tail_n = tail_n;
    r->nai = nai;
    r->nai_n = nai_n;
    /* the encoded copy, else the str itself (its own bytes), else nothing */
    if (nai_bytes != NULL) {
        r->owner = nai_bytes;
        Py_XDECREF(v);
    } else {
        r->owner = v;
    }
    r->block = block;
    r->block_n = block_n;
    r->total = total;
    return 0;
fail:
    Py_XDECREF(v);
    Py_XDECREF(nai_bytes);
    Py_XDECREF(rev);
    return -1;
}

static void rec_release(struct rec *r) { Py_CLEAR(r->owner); }

/* Write the record of ``r`` (r->total bytes) at ``o``. */
static void rec_write(const struct rec *r, unsigned char *o) {
    memcpy(o, r->head, REC_LEN);
    o += REC_LEN;
    if (r->nai_n) memcpy(o, r->nai, (size_t)r->nai_n);
    o += r->nai_n;
    if (r->tail_n) memcpy(o, r->tail, (size_t)r->tail_n);
    o += r->tail_n;
    if (r->block_n) memcpy(o, PyBytes_AS_STRING(r->block), (size_t)r->block_n);
}

/* The record of one binding as bytes. */
static PyObject *pack_one(PyObject *b, double now, unsigned long rec_flags, PyObject *nonce,
                          PyObject *block, PyObject *revocation) {
    struct rec r;
    if (rec_fields(b, now, rec_flags, nonce, block, revocation, &r) < 0) return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, r.total);
    if (out != NULL) rec_write(&r, (unsigned char *)PyBytes_AS_STRING(out));
    rec_release(&r);
    return out;
}

static PyObject *sync_pack_one(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *b, *nonce, *block, *revocation;
    double now;
    unsigned long rec_flags;
    if (!PyArg_ParseTuple(args, "OdkOOO", &b, &now, &rec_flags, &nonce, &block, &revocation)) {
        return NULL;
    }
    return pack_one(b, now, rec_flags, nonce, block, revocation);
}

/* item i of an optional list argument (None: every item is ``dflt``) */
static PyObject *opt_item(PyObject *list, Py_ssize_t i, PyObject *dflt) {
    return list == Py_None ? dflt : PyList_GET_ITEM(list, i);
}

static int opt_list(PyObject *o, Py_ssize_t n, const char *what) {
    if (o == Py_None) return 0;
    if (!PyList_Check(o) || PyList_GET_SIZE(o) != n) {
        PyErr_Format(PyExc_ValueError, "%s must be None or a list as long as bindings", what);
        return -1;
    }
    return 0;
}

static PyObject *sync_pack(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *bindings, *rec_flags, *nonces, *blocks, *revocation;
    double now;
    if (!PyArg_ParseTuple(args, "O!dOOOO", &PyList_Type, &bindings, &now, &rec_flags, &nonces,
                          &blocks, &revocation)) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(bindings);
    if (opt_list(rec_flags, n, "rec_flags") < 0 || opt_list(nonces, n, "nonces") < 0 ||
        opt_list(blocks, n, "sa_blocks") < 0) {
        return NULL;
    }
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long f = 0;
        if (rec_flags != Py_None) {
            f = PyLong_AsUnsignedLong(PyList_GET_ITEM(rec_flags, i));
            if (f == (unsigned long)-1 && PyErr_Occurred()) goto fail;
        }
        PyObject *rec = pack_one(PyList_GET_ITEM(bindings, i), now, f,
                                 opt_item(nonces, i, Py_None), opt_item(blocks, i, Py_None),
                                 revocation);
        if (rec == NULL) goto fail;
        PyList_SET_ITEM(out, i, rec);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* The records of bindings[0:k] as one bytes object, k the most whose records fit in
 * ``limit`` bytes together (at least one): mobileha.wire.sync.pack_chunk_py. A record is
 * only built while one of REC_LEN bytes could still fit. */
static PyObject *sync_pack_chunk(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *bindings, *rec_flags, *nonces, *blocks, *revocation;
    double now;
    Py_ssize_t limit;
    if (!PyArg_ParseTuple(args, "O!dOOOOn", &PyList_Type, &bindings, &now, &rec_flags, &nonces,
                          &blocks, &revocation, &limit)) {
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(bindings);
    if (opt_list(rec_flags, n, "rec_flags") < 0 || opt_list(nonces, n, "nonces") < 0 ||
        opt_list(blocks, n, "sa_blocks") < 0) {
        return NULL;
    }
    if (limit < 0) {
        PyErr_SetString(PyExc_ValueError, "limit must not be negative");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, limit);
    if (out == NULL) return NULL;
    Py_ssize_t used = 0, k = 0;
    for (; k < n; k++) {
        if (k > 0 && used + REC_LEN > limit) break; /* no record can fit any more */
        unsigned long f = 0;
        if (rec_flags != Py_None) {
            f = PyLong_AsUnsignedLong(PyList_GET_ITEM(rec_flags, k));
            if (f == (unsigned long)-1 && PyErr_Occurred()) goto fail;
        }
        struct rec r;
        if (rec_fields(PyList_GET_ITEM(bindings, k), now, f, opt_item(nonces, k, Py_None),
                       opt_item(blocks, k, Py_None), revocation, &r) < 0) {
            goto fail;
        }
        if (used + r.total > limit) {
            if (k > 0) {
                rec_release(&r);
                break;
            }
            if (_PyBytes_Resize(&out, r.total) < 0) { /* the first one goes anyway */
                rec_release(&r);
                return NULL;
            }
        }
        rec_write(&r, (unsigned char *)PyBytes_AS_STRING(out) + used);
        used += r.total;
        rec_release(&r);
    }
    if (used != PyBytes_GET_SIZE(out) && _PyBytes_Resize(&out, used) < 0) return NULL;
    PyObject *res = Py_BuildValue("(Nn)", out, k);
    return res;
fail:
    Py_DECREF(out);
    return NULL;
}

/* raise decode_error(reason, detail) */
static void decode_error(PyObject *cls, const char *reason, PyObject *detail) {
    if (detail == NULL) return; /* the detail's own error stays */
    PyObject *e = PyObject_CallFunction(cls, "sO", reason, detail);
    Py_DECREF(detail);
    if (e == NULL) return;
    PyErr_SetObject(cls, e);
    Py_DECREF(e);
}

/* A dotted quad for an address that rarely repeats (home addresses): no cache. */
static PyObject *quad(const unsigned char *p) {
    char buf[16];
    int n = 0;
    for (int i = 0; i < 4; i++) {
        unsigned v = p[i];
        if (v >= 100) buf[n++] = (char)('0' + v / 100);
        if (v >= 10) buf[n++] = (char)('0' + v / 10 % 10);
        buf[n++] = (char)('0' + v % 10);
        if (i < 3) buf[n++] = '.';
    }
    PyObject *s = PyUnicode_New(n, 127);
    if (s == NULL) return NULL;
    memcpy(PyUnicode_DATA(s), buf, (size_t)n);
    return s;
}

static PyObject *cached_quad(const unsigned char *p) {
    uint32_t a;
    memcpy(&a, p, 4);
    return addr_str(a);
}

/* The slots a record's binding is written to directly, without calling the factory's
 * __init__ (mobileha.wire.sync.slot_layout: a slots dataclass whose __init__ only stores
 * its arguments): the offsets of the 11 factory arguments' slots, then of the remaining
 * fields' slots with their defaults. */
#define FACTORY_ARGS 11
#define MAX_SLOTS 32
struct layout {
    PyTypeObject *type;
    Py_ssize_t n_rest;
    Py_ssize_t at[FACTORY_ARGS];
    Py_ssize_t rest_at[MAX_SLOTS];
    PyObject *rest[MAX_SLOTS]; /* borrowed from the layout tuple */
};

/* The offset of a writable object slot of ``type`` (a member descriptor): 0, or -1. */
static int slot_offset(PyTypeObject *type, PyObject *d, Py_ssize_t *out) {
    if (!PyObject_TypeCheck(d, &PyMemberDescr_Type)) goto bad;
    PyMemberDescrObject *m = (PyMemberDescrObject *)d;
    if (!PyType_IsSubtype(type, m->d_common.d_type) || m->d_member->type != T_OBJECT_EX ||
        (m->d_member->flags & READONLY)) {
        goto bad;
    }
    *out = m->d_member->offset;
    return 0;
bad:
    PyErr_SetString(PyExc_TypeError, "slot layout: not a writable object slot of the factory");
    return -1;
}

/* Read ``spec`` ((11 descriptors), ((descriptor, default), ...)) for ``factory``. */
static int read_layout(PyObject *factory, PyObject *spec, struct layout *lay) {
    PyObject *args, *rest;
    if (!PyType_Check(factory) || !PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) != 2 ||
        !PyTuple_Check(args = PyTuple_GET_ITEM(spec, 0)) ||
        PyTuple_GET_SIZE(args) != FACTORY_ARGS || !PyTuple_Check(rest = PyTuple_GET_ITEM(spec, 1)) ||
        PyTuple_GET_SIZE(rest) > MAX_SLOTS) {
        PyErr_SetString(PyExc_TypeError, "slot layout: ((11 descriptors), ((descriptor, default), ...))");
        return -1;
    }
    lay->type = (PyTypeObject *)factory;
    for (Py_ssize_t i = 0; i < FACTORY_ARGS; i++) {
        if (slot_offset(lay->type, PyTuple_GET_ITEM(args, i), &lay->at[i]) < 0) return -1;
    }
    lay->n_rest = PyTuple_GET_SIZE(rest);
    for (Py_ssize_t i = 0; i < lay->n_rest; i++) {
        PyObject *pair = PyTuple_GET_ITEM(rest, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
            PyErr_SetString(PyExc_TypeError, "slot layout: (descriptor, default) pairs");
            return -1;
        }
        if (slot_offset(lay->type, PyTuple_GET_ITEM(pair, 0), &lay->rest_at[i]) < 0) return -1;
        lay->rest[i] = PyTuple_GET_ITEM(pair, 1);
    }
    return 0;
}

/* A new instance of the layout's type with the slots filled: ``f`` (stolen on success)
 * and the defaults. */
static PyObject *fill_slots(const struct layout *lay, PyObject **f) {
    PyObject *o = lay->type->tp_alloc(lay->type, 0);
    if (o == NULL) return NULL;
    char *base = (char *)o;
    for (int k = 0; k < FACTORY_ARGS; k++) {
        *(PyObject **)(base + lay->at[k]) = f[k];
        f[k] = NULL;
    }
    for (Py_ssize_t k = 0; k < lay->n_rest; k++) {
        PyObject *v = lay->rest[k];
        Py_INCREF(v);
        *(PyObject **)(base + lay->rest_at[k]) = v;
    }
    return o;
}

/* ``count`` records from data[offset:] as entries (factory(...), record flags, nonce, SA,
 * revocation timestamp), the same as mobileha.wire.sync.decode_bindings_py. */
static PyObject *sync_decode(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer buf;
    Py_ssize_t offset, count;
    PyObject *factory, *ha_addr, *encaps, *record_sa, *error_cls, *spec = Py_None;
    double now;
    if (!PyArg_ParseTuple(args, "y*nnOUdO!OO|O", &buf, &offset, &count, &factory, &ha_addr, &now,
                          &PyDict_Type, &encaps, &record_sa, &error_cls, &spec)) {
        return NULL;
    }
    const unsigned char *data = buf.buf;
    Py_ssize_t end_all = buf.len;
    PyObject *out = NULL, *res = NULL, *last_lt = NULL, *last_exp = NULL;
    struct layout lay;
    if (spec != Py_None && read_layout(factory, spec, &lay) < 0) goto done;
    if (offset < 0 || count < 0 || offset > end_all) {
        PyErr_SetString(PyExc_ValueError, "offset or count out of range");
        goto done;
    }
    out = PyList_New(count < 4096 ? count : 0);
    if (out == NULL) goto done;
    /* the lifetime and deadline of the previous record, reused when they repeat (most
     * records of a chunk have the same): fewer objects per binding */
    unsigned last_lt_v = 0;
    double last_exp_v = 0.0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (offset + REC_LEN > end_all) {
            decode_error(error_cls, "short", PyUnicode_FromString("binding record truncated"));
            goto fail;
        }
        const unsigned char *r = data + offset;
        unsigned length = ((unsigned)r[0] << 8) | r[1];
        unsigned reg_flags = r[2], rec_flags = r[3];
        unsigned long long ident = ((unsigned long long)get32(r + 16) << 32) | get32(r + 20);
        unsigned lifetime = ((unsigned)r[24] << 8) | r[25];
        unsigned remaining = ((unsigned)r[26] << 8) | r[27];
        uint32_t key = get32(r + 28);
        unsigned encap = r[32], nai_len = r[33];
        Py_ssize_t end = offset + (Py_ssize_t)length;
        if (length < REC_LEN + nai_len || end > end_all) {
            decode_error(error_cls, "bad-length", PyUnicode_FromFormat("record length %u", length));
            goto fail;
        }
        if (encap != 4 && encap != 47 && encap != 55) {
            decode_error(error_cls, "bad-encap", PyUnicode_FromFormat("encapsulation %u", encap));
            goto fail;
        }
        PyObject *f[11] = {NULL};
        PyObject *nai = Py_None, *nonce = Py_None, *sa = Py_None, *rev_ts = Py_None;
        Py_INCREF(Py_None);
        Py_INCREF(Py_None);
        Py_INCREF(Py_None);
        Py_INCREF(Py_None);
        Py_ssize_t at = offset + REC_LEN + nai_len;
        PyObject *entry = NULL, *bnd = NULL;
        if (nai_len) {
            Py_DECREF(nai);
            nai = PyUnicode_DecodeUTF8((const char *)r + REC_LEN, nai_len, "strict");
            if (nai == NULL) {
                if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                    PyErr_Clear();
                    decode_error(error_cls, "bad-nai", PyUnicode_FromString("NAI is not UTF-8"));
                }
                goto rec_fail;
            }
        }
        if (rec_flags & REC_NONCE) {
            if (at + 4 > end) {
                decode_error(error_cls, "bad-length",
                             PyUnicode_FromFormat("record length %u without its nonce", length));
                goto rec_fail;
            }
            Py_DECREF(nonce);
            if ((nonce = PyLong_FromUnsignedLong(get32(data + at))) == NULL) goto rec_fail;
            at += 4;
        }
        if (rec_flags & REC_REVOCATION) {
            if (at + 4 > end) {
                decode_error(error_cls, "bad-length",
                             PyUnicode_FromFormat("record length %u without its timestamp", length));
                goto rec_fail;
            }
            Py_DECREF(rev_ts);
            if ((rev_ts = PyLong_FromUnsignedLong(get32(data + at))) == NULL) goto rec_fail;
            at += 4;
        }
        if (rec_flags & REC_SA) {
            if (at + SA_BLOCK_LEN > end) {
                decode_error(error_cls, "bad-length",
                             PyUnicode_FromString("record too short for its SA block"));
                goto rec_fail;
            }
            const unsigned char *s = data + at;
            unsigned n = s[0];
            long hidden = (long)n - SA_BLOCK_LEN;
            if (hidden <= 0 || hidden % 16 || at + (Py_ssize_t)n > end) {
                decode_error(error_cls, "bad-length", PyUnicode_FromFormat("SA block length %u", n));
                goto rec_fail;
            }
            if (s[5] > 1) {
                decode_error(error_cls, "bad-sa", PyUnicode_FromFormat("SA algorithm %u", s[5]));
                goto rec_fail;
            }
            Py_DECREF(sa);
            sa = PyObject_CallFunction(record_sa, "kBBHHy#y#", (unsigned long)get32(s + 1), s[5],
                                       s[6], (unsigned short)((s[7] << 8) | s[8]),
                                       (unsigned short)((s[9] << 8) | s[10]), s + 11,
                                       (Py_ssize_t)16, s + SA_BLOCK_LEN, (Py_ssize_t)hidden);
            if (sa == NULL) goto rec_fail;
        }
        /* factory(home, care-of, ha_addr, lifetime, expires, ident, reg_flags, encap,
         *         gre_key, nai, src) */
        if ((f[0] = quad(r + 4)) == NULL) goto rec_fail;
        if ((f[1] = cached_quad(r + 8)) == NULL) goto rec_fail;
        Py_INCREF(ha_addr);
        f[2] = ha_addr;
        if (last_lt == NULL || last_lt_v != lifetime) {
            Py_XDECREF(last_lt);
            if ((last_lt = PyLong_FromUnsignedLong(lifetime)) == NULL) goto rec_fail;
            last_lt_v = lifetime;
        }
        Py_INCREF(last_lt);
        f[3] = last_lt;
        double expires = remaining >= LIFETIME_INF || lifetime >= LIFETIME_INF
                             ? Py_HUGE_VAL
                             : now + (double)remaining;
        if (last_exp == NULL || last_exp_v != expires) {
            Py_XDECREF(last_exp);
            if ((last_exp = PyFloat_FromDouble(expires)) == NULL) goto rec_fail;
            last_exp_v = expires;
        }
        Py_INCREF(last_exp);
        f[4] = last_exp;
        if ((f[5] = PyLong_FromUnsignedLongLong(ident)) == NULL) goto rec_fail;
        if ((f[6] = PyLong_FromUnsignedLong(reg_flags)) == NULL) goto rec_fail;
        PyObject *e = PyLong_FromUnsignedLong(encap);
        if (e == NULL) goto rec_fail;
        f[7] = PyDict_GetItemWithError(encaps, e);
        Py_DECREF(e);
        if (f[7] == NULL) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_KeyError, "encapsulation %u", encap);
            goto rec_fail;
        }
        Py_INCREF(f[7]);
        if (key || rec_flags & REC_GRE_KEY) {
            if ((f[8] = PyLong_FromUnsignedLong(key)) == NULL) goto rec_fail;
        } else {
            Py_INCREF(Py_None);
            f[8] = Py_None;
        }
        Py_INCREF(nai);
        f[9] = nai;
        if (r[12] | r[13] | r[14] | r[15]) {
            if ((f[10] = cached_quad(r + 12)) == NULL) goto rec_fail;
        } else {
            Py_INCREF(s_empty);
            f[10] = s_empty;
        }
        bnd = spec != Py_None ? fill_slots(&lay, f) : PyObject_Vectorcall(factory, f, 11, NULL);
        if (bnd == NULL) goto rec_fail;
        entry = PyTuple_New(5);
        if (entry == NULL) goto rec_fail;
        PyTuple_SET_ITEM(entry, 0, bnd); /* steals the references */
        bnd = NULL;
        PyObject *fl = PyLong_FromUnsignedLong(rec_flags);
        if (fl == NULL) goto rec_fail;
        PyTuple_SET_ITEM(entry, 1, fl);
        PyTuple_SET_ITEM(entry, 2, nonce);
        PyTuple_SET_ITEM(entry, 3, sa);
        PyTuple_SET_ITEM(entry, 4, rev_ts);
        nonce = sa = rev_ts = NULL;
        if (i < PyList_GET_SIZE(out)) {
            PyList_SET_ITEM(out, i, entry);
        } else if (PyList_Append(out, entry) < 0) {
            goto rec_fail;
        } else {
            Py_DECREF(entry);
        }
        entry = NULL;
        for (int k = 0; k < 11; k++) Py_XDECREF(f[k]);
        Py_DECREF(nai);
        offset = end;
        continue;
    rec_fail:
        for (int k = 0; k < 11; k++) Py_XDECREF(f[k]);
        Py_XDECREF(nai);
        Py_XDECREF(nonce);
        Py_XDECREF(sa);
        Py_XDECREF(rev_ts);
        Py_XDECREF(bnd);
        Py_XDECREF(entry);
        goto fail;
    }
    res = Py_BuildValue("(On)", out, offset);
fail:
    Py_XDECREF(out);
    Py_XDECREF(last_lt);
    Py_XDECREF(last_exp);
done:
    PyBuffer_Release(&buf);
    return res;
}

/* The state byte of ``addr`` in a pool (see pool_state): 0..255, -1 outside the pool or not
 * an address, -2 with an exception set (``addr`` not a str, an embedded null). */
static int pool_state_of(PyObject *addr, const unsigned char *bits, Py_ssize_t size,
                         unsigned long base) {
    unsigned char a[4];
    if (aton(addr, a) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_OSError)) return -2;
        PyErr_Clear();
        return -1;
    }
    uint32_t v = ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) | ((uint32_t)a[2] << 8) | a[3];
    if (v < base) return -1;
    unsigned long i = v - base;
    if (i >= (unsigned long)size) return -1;
    return bits[i];
}

static PyObject *pool_state(PyObject *self, PyObject *args) {
    Py_buffer bits;
    unsigned long base;
    PyObject *addr;
    if (!PyArg_ParseTuple(args, "y*kO", &bits, &base, &addr)) return NULL;
    int st = pool_state_of(addr, bits.buf, bits.len, base);
    PyBuffer_Release(&bits);
    if (st == -2) return NULL;
    return PyLong_FromLong(st);
}

static PyObject *pool_flags(PyObject *self, PyObject *args) {
    Py_buffer bits;
    unsigned long base;
    PyObject *addrs, *flag, *zero = NULL, *seq = NULL, *res = NULL;
    if (!PyArg_ParseTuple(args, "y*kOO!", &bits, &base, &addrs, &PyLong_Type, &flag)) return NULL;
    seq = PySequence_Fast(addrs, "pool_flags: addrs must be a sequence");
    if (seq == NULL) goto done;
    zero = PyLong_FromLong(0);
    if (zero == NULL) goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    res = PyList_New(n);
    if (res == NULL) goto done;
    for (Py_ssize_t k = 0; k < n; k++) {
        int st = pool_state_of(items[k], bits.buf, bits.len, base);
        if (st == -2) {
            Py_CLEAR(res);
            goto done;
        }
        PyObject *v = st == 1 ? flag : zero;
        Py_INCREF(v);
        PyList_SET_ITEM(res, k, v);
    }
done:
    Py_XDECREF(zero);
    Py_XDECREF(seq);
    PyBuffer_Release(&bits);
    return res;
}

static PyMethodDef methods[] = {
    {"ipv4_udp", ipv4_udp, METH_VARARGS,
     "ipv4_udp(src, sport, dst, dport, payload) -> IPv4 + UDP datagram, checksums filled"},
    {"leading_nai", leading_nai, METH_VARARGS,
     "leading_nai(data) -> the NAI when it is a request's first extension, else None"},
    {"recv_requests", recv_requests, METH_VARARGS,
     "recv_requests(fd, max_n, bufsize) -> list of (data, (addr, port), nai | None, ident)"},
    {"send_all", send_all, METH_VARARGS,
     "send_all(fd, datagrams, start=0) -> number sent (sendmmsg on a connected socket)"},
    {"sendto_all", sendto_all, METH_VARARGS,
     "sendto_all(fd, [(data, (addr, port)), ...], start=0) -> number sent (sendmmsg)"},
    {"send_relay", send_relay, METH_VARARGS,
     "send_relay(fd, [(data, (addr, port), ...), ...], tag_head, start=0) -> number sent"},
    {"send_directed", send_directed, METH_VARARGS,
     "send_directed(fd, [(data, (addr, port), ...), ...], dst, dport, start=0) -> number sent"},
    {"sync_pack_one", sync_pack_one, METH_VARARGS,
     "sync_pack_one(binding, now, rec_flags, nonce, sa_block, revocation) -> one sync record"},
    {"sync_pack", sync_pack, METH_VARARGS,
     "sync_pack(bindings, now, rec_flags, nonces, sa_blocks, revocation) -> list of records"},
    {"sync_pack_chunk", sync_pack_chunk, METH_VARARGS,
     "sync_pack_chunk(bindings, now, rec_flags, nonces, sa_blocks, revocation, limit)"
     " -> (records that fit in limit bytes, how many)"},
    {"sync_decode", sync_decode, METH_VARARGS,
     "sync_decode(data, offset, count, factory, ha_addr, now, encaps, RecordSa, DecodeError,"
     " layout=None)"
     " -> (entries, end)"},
    {"pool_state", pool_state, METH_VARARGS,
     "pool_state(bits, base, addr) -> the state byte of addr in the pool, -1 outside"},
    {"pool_flags", pool_flags, METH_VARARGS,
     "pool_flags(bits, base, addrs, flag) -> flag for each allocated address, else 0"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "mobileha._slbio", "Batched datagram I/O for the HA-SLB.", -1, methods,
};

PyMODINIT_FUNC PyInit__slbio(void) {
    struct {
        PyObject **slot;
        const char *name;
    } names[] = {
        {&s_home_addr, "home_addr"}, {&s_care_of, "care_of"}, {&s_src_addr, "src_addr"},
        {&s_ident, "ident"},         {&s_lifetime, "lifetime"}, {&s_expires, "expires"},
        {&s_flags, "flags"},         {&s_encap, "encap"},     {&s_gre_key, "gre_key"},
        {&s_nai, "nai"},             {&s_revocation, "revocation"}, {&s_empty, ""},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (*names[i].slot == NULL && (*names[i].slot = PyUnicode_InternFromString(names[i].name)) == NULL) {
            return NULL;
        }
    }
    return PyModule_Create(&module);
}
