/*
 * mobileha._slbio: batched datagram I/O for the HA-SLB virtual server (optional accelerator).
 *
 * Only socket I/O and one offset check live here; every decision (session, predictor, tag,
 * counters) stays in Python (mobileha.core.slb / mobileha.node.slb). The pure-Python reader
 * in node/slb.py is the reference and is used when this module is not built.
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
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
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

/* One datagram of a send list into a message header: 0, or -1 with an exception set. */
typedef int (*fill_fn)(PyObject *item, struct mmsghdr *msg, struct iovec *iov,
                       struct sockaddr_in *name);

static int fill_bytes(PyObject *item, struct mmsghdr *msg, struct iovec *iov,
                      struct sockaddr_in *name) {
    (void)name;
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

static int fill_addressed(PyObject *item, struct mmsghdr *msg, struct iovec *iov,
                          struct sockaddr_in *name) {
    PyObject *addr, *host, *port;
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) goto bad;
    addr = PyTuple_GET_ITEM(item, 1);
    if (!PyTuple_Check(addr) || PyTuple_GET_SIZE(addr) < 2) goto bad;
    host = PyTuple_GET_ITEM(addr, 0);
    port = PyTuple_GET_ITEM(addr, 1);
    if (!PyUnicode_Check(host) || !PyLong_Check(port)) goto bad;
    if (fill_bytes(PyTuple_GET_ITEM(item, 0), msg, iov, name) < 0) return -1;
    const char *h = PyUnicode_AsUTF8(host);
    long pn = PyLong_AsLong(port);
    if (h == NULL || (pn == -1 && PyErr_Occurred())) return -1;
    memset(name, 0, sizeof *name);
    name->sin_family = AF_INET;
    if (inet_pton(AF_INET, h, &name->sin_addr) != 1 || pn < 0 || pn > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "not an IPv4 address and port");
        return -1;
    }
    name->sin_port = htons((uint16_t)pn);
    msg->msg_hdr.msg_name = name;
    msg->msg_hdr.msg_namelen = sizeof *name;
    return 0;
bad:
    PyErr_SetString(PyExc_TypeError, "items must be (bytes, (address, port))");
    return -1;
}

/* sendmmsg(2) of list[start:] in order, 64 per call (MSG_DONTWAIT): how many were sent. It
 * stops at the first that would block; OSError when the first one fails otherwise (after
 * some were sent, the count: the caller retries the rest and sees the error then). */
static PyObject *send_list(PyObject *args, fill_fn fill) {
    int fd;
    PyObject *list;
    Py_ssize_t start = 0;
    if (!PyArg_ParseTuple(args, "iO!|n", &fd, &PyList_Type, &list, &start)) return NULL;
    Py_ssize_t total = PyList_GET_SIZE(list);
    if (start < 0 || start > total) {
        PyErr_SetString(PyExc_ValueError, "start out of range");
        return NULL;
    }
    Py_ssize_t sent = 0;
    struct mmsghdr msgs[64];
    struct iovec iov[64];
    struct sockaddr_in names[64];
    while (start + sent < total) {
        Py_ssize_t k = total - start - sent;
        if (k > 64) k = 64;
        memset(msgs, 0, sizeof msgs[0] * (size_t)k);
        for (Py_ssize_t i = 0; i < k; i++) {
            if (fill(PyList_GET_ITEM(list, start + sent + i), &msgs[i], &iov[i], &names[i]) < 0) {
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

static PyObject *send_all(PyObject *self, PyObject *args) {
    (void)self;
    return send_list(args, fill_bytes);
}

static PyObject *sendto_all(PyObject *self, PyObject *args) {
    (void)self;
    return send_list(args, fill_addressed);
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
    if (sport < 0 || sport > 0xFFFF || dport < 0 || dport > 0xFFFF || payload.len > 65507) {
        PyBuffer_Release(&payload);
        PyErr_SetString(PyExc_ValueError, "port or payload length out of range");
        return NULL;
    }
    size_t ulen = 8 + (size_t)payload.len;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)(20 + ulen));
    if (out == NULL) {
        PyBuffer_Release(&payload);
        return NULL;
    }
    unsigned char *h = (unsigned char *)PyBytes_AS_STRING(out);
    size_t tot = 20 + ulen;
    h[0] = 0x45;
    h[1] = 0;
    h[2] = (unsigned char)(tot >> 8);
    h[3] = (unsigned char)tot;
    h[4] = h[5] = h[6] = h[7] = 0;
    h[8] = 64;
    h[9] = IPPROTO_UDP;
    h[10] = h[11] = 0;
    memcpy(h + 12, &sa, 4);
    memcpy(h + 16, &da, 4);
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
    memcpy(u + 8, payload.buf, (size_t)payload.len);
    PyBuffer_Release(&payload);
    /* pseudo header: addresses, protocol, UDP length; then the UDP header and payload */
    uint64_t sum = sum16(h + 12, 8, 0) + IPPROTO_UDP + ulen;
    uint16_t uc = fold(sum16(u, ulen, sum));
    if (uc == 0) uc = 0xFFFF; /* RFC 768: a computed 0 is sent as all ones */
    u[6] = (unsigned char)(uc >> 8);
    u[7] = (unsigned char)uc;
    return out;
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
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "mobileha._slbio", "Batched datagram I/O for the HA-SLB.", -1, methods,
};

PyMODINIT_FUNC PyInit__slbio(void) { return PyModule_Create(&module); }
