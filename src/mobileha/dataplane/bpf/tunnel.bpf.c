// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Mobile IPv4 tunnels in eBPF: the forwarding programs of the `ebpf` data plane backend
 * (src/mobileha/dataplane/ebpf.py loads this object and owns its maps).
 *
 * mh_out   tc egress of the sink device, the device the kernel routes tunnelled traffic to
 *          (HA: the home prefix or host routes per home address; FA: the reverse-tunnel
 *          table of the visitors with T). The kernel has already forwarded the packet
 *          (inner TTL decremented, "fragmentation needed" sent for DF packets over the
 *          sink's MTU, which is the tunnel MTU minus our largest header). We look up the
 *          binding(s) of the packet (HA: inner destination, FA: inner source), add the outer
 *          header of each copy, and redirect it to the egress device of the care-of address
 *          (HA) or of the home agent (FA), found with bpf_fib_lookup.
 * mh_seg   tc ingress of the sink's veth peer. GSO packets (TCP aggregates) that need
 *          minimal encapsulation or more than one copy are passed to the peer instead: the
 *          sink does not offer GSO (gso_max_segs 1), so the kernel segments them on the way,
 *          and the peer's ingress sees one packet at a time. Linux has no GSO handler for IP
 *          protocol 55 (minimal), and a GSO packet cannot be re-encapsulated per copy.
 * mh_in    tc ingress of the uplinks: tunnelled packets (IP protocols 4, 47, 55) addressed
 *          to one of our tunnel endpoints. HA: reverse tunnels (T), the inner source must be
 *          the home address of a binding with T for that care-of address; FA: the tunnel
 *          from the home agent, the inner destination must be a visitor. Accepted packets
 *          are decapsulated in place and passed on (TC_ACT_OK): the kernel forwards the
 *          inner packet. Everything else addressed to an endpoint is dropped and counted.
 *
 * Outer header (as the userspace backend, P§3.1): TTL from the configuration, TOS copied
 * from the inner header, DF copied from the inner header, ID 0 with DF and random without.
 * Minimal encapsulation (RFC 2004 §3) keeps the inner TTL, TOS, ID and flags, and carries
 * the original source only when it is not the encapsulator.
 *
 * Every map layout below is mirrored by the struct formats in ebpf.py.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define AF_INET 2
#define IPPROTO_MINIMAL 55
#define MAX_COPIES 8
#define IP_DF 0x4000
#define IP_MF_OFFSET 0x3fff
#define GRE_KEY_PRESENT 0x2000
#define GRE_CSUM_PRESENT 0x8000
#define GRE_SEQ_PRESENT 0x1000
#define GRE_BAD_BITS 0x4ff8  /* routing present, strict route, recursion, flags, */
#define GRE_VERSION 0x0007   /* version: such packets are discarded (RFC 2784 §2.3) */
#define MINIMAL_S 0x80
#define GRE_CSUM_CHUNKS 64   /* a GRE checksum is verified over at most 64 * 32 bytes */

/* tunnel flags */
#define TF_KEY 1        /* GRE with a key */
#define TF_REVERSE 2    /* reverse tunnel accepted (HA) / used (FA) */
#define TF_SLOW 4       /* first entry: some copy needs software segmentation */

enum role { ROLE_HA = 0, ROLE_FA = 1 };

/* drop reasons: the order of REASONS in ebpf.py */
enum reason {
	R_NO_BINDING,
	R_LOOP,
	R_SPOOF,
	R_UNKNOWN_PEER,
	R_BAD_KEY,
	R_BAD_ENCAP,
	R_MALFORMED,
	R_FRAGMENT,
	R_UNREACHABLE,
	R_NOT_IPV4,
	R_ENCAP_ERROR,
	R_IP_OPTIONS,
	R_NO_NEIGHBOUR,
	R_MAX,
};

enum total { T_TX_PKTS, T_TX_BYTES, T_RX_PKTS, T_RX_BYTES, T_MAX };

struct tun {            /* one copy: a binding seen from the encapsulating side */
	__u32 remote;   /* outer destination: care-of address (HA) or home agent (FA) */
	__u32 local;    /* outer source */
	__u32 key;      /* GRE key, network order */
	__u32 slot;     /* counters slot of the binding */
	__u8 encap;     /* 4, 47 or 55 */
	__u8 flags;     /* TF_* */
	__u8 ncopies;   /* first entry: copies of this address (1..MAX_COPIES) */
	__u8 pad;
};

struct more_key {       /* copy idx >= 1 of an address (simultaneous bindings) */
	__u32 addr;
	__u32 idx;
};

struct dec_key {        /* a tunnel packet: outer source, outer destination, inner address */
	__u32 remote;
	__u32 local;
	__u32 inner;    /* HA: inner source (home address); FA: inner destination */
};

struct dec_val {
	__u32 key;      /* GRE key, network order */
	__u32 slot;
	__u8 encap;
	__u8 flags;
	__u16 pad;
};

struct peer_key {       /* a known tunnel peer: tells spoofing from unknown peers */
	__u32 remote;
	__u32 local;
};

struct tstat {          /* per binding, per CPU */
	__u64 tx_pkts;
	__u64 tx_bytes;
	__u64 rx_pkts;
	__u64 rx_bytes;
	__u64 drops;
};

struct cfg {
	__u32 role;
	__u32 ttl;
	__u32 fib_ifindex;  /* the sink: forwarding lookups are made as if received there */
	__u32 peer_ifindex; /* the sink's veth peer (software segmentation path) */
};

/* max_entries are set by the loader before the object is loaded */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct tun);
	__uint(max_entries, 1);
} mh_enc SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct more_key);
	__type(value, struct tun);
	__uint(max_entries, 1);
} mh_more SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct dec_key);
	__type(value, struct dec_val);
	__uint(max_entries, 1);
} mh_dec SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct peer_key);
	__type(value, __u32);  /* counters slot of one binding of the peer */
	__uint(max_entries, 1);
} mh_peer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);    /* our tunnel endpoint addresses */
	__type(value, __u32);  /* bindings using it */
	__uint(max_entries, 1);
} mh_local SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct tstat);
	__uint(max_entries, 1);
} mh_tstat SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, R_MAX);
} mh_drops SEC(".maps");

struct {                /* all bindings together: T_TX_PKTS .. T_RX_BYTES */
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, T_MAX);
} mh_totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct cfg);
	__uint(max_entries, 1);
} mh_cfg SEC(".maps");

struct inner {          /* the fields of the inner header the encapsulation needs */
	__u32 saddr;
	__u32 daddr;
	__u16 tot_len;
	__u16 frag_off;  /* host order */
	__u8 tos;
	__u8 ttl;
	__u8 protocol;
	__u8 ihl;
};

static __always_inline void count_drop(__u32 reason)
{
	__u64 *c = bpf_map_lookup_elem(&mh_drops, &reason);

	if (c)
		*c += 1;
}

/*
 * The counters of a binding, created at its first packet: a binding that never carries
 * traffic costs no per-CPU memory, and an install or a takeover writes no counters.
 */
static __always_inline struct tstat *tstat_of(__u32 slot)
{
	struct tstat *st = bpf_map_lookup_elem(&mh_tstat, &slot);

	if (!st && slot) {
		struct tstat zero = {};

		bpf_map_update_elem(&mh_tstat, &slot, &zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&mh_tstat, &slot);
	}
	return st;
}

static __always_inline void count_binding_drop(__u32 slot)
{
	struct tstat *st = tstat_of(slot);

	if (st)
		st->drops += 1;
}

static __always_inline void count_total(__u32 which, __u64 pkts, __u64 bytes)
{
	__u32 k = which + 1;
	__u64 *p = bpf_map_lookup_elem(&mh_totals, &which);
	__u64 *b = bpf_map_lookup_elem(&mh_totals, &k);

	if (p && b) {
		*p += pkts;
		*b += bytes;
	}
}

static __always_inline int drop(__u32 reason, __u32 slot)
{
	count_drop(reason);
	if (slot)
		count_binding_drop(slot);
	return TC_ACT_SHOT;
}

static __always_inline __u64 gso_segs(struct __sk_buff *skb)
{
	return skb->gso_segs > 1 ? skb->gso_segs : 1;
}

static __always_inline __u16 csum_fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* RFC 1071 over a 20-byte IPv4 header whose checksum field is zero */
static __always_inline __u16 ip_checksum(const struct iphdr *ip)
{
	const __u16 *w = (const __u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	return csum_fold(sum);
}

static __always_inline __u16 minimal_checksum(const __u8 *mh, int n)
{
	const __u16 *w = (const __u16 *)mh;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < 6; i++)
		if (i < n / 2)
			sum += w[i];
	return csum_fold(sum);
}

static __always_inline struct iphdr *ip_of(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;

	if ((void *)(ip + 1) > data_end)
		return NULL;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->version != 4)
		return NULL;
	return ip;
}

/*
 * Send the encapsulated packet toward its outer destination: a route lookup, then a
 * redirect to the egress device with the neighbour's MAC address (or through the
 * neighbour subsystem while it is being resolved). `clone` sends a copy and keeps the
 * packet (more copies follow). Returns a TC action, or -1 when the copy was not sent.
 */
static __always_inline int send_outer(struct __sk_buff *skb, const struct cfg *cfg,
				      __u32 src, __u32 dst, __u8 tos, __u8 proto, int clone)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	void *data, *data_end;
	struct ethhdr *eth;
	int rc;

	fib.family = AF_INET;
	fib.l4_protocol = proto;
	fib.tot_len = 0;  /* no MTU check: GSO packets are segmented after us */
	fib.ifindex = cfg->fib_ifindex;
	fib.tos = tos;
	fib.ipv4_src = src;
	fib.ipv4_dst = dst;
	rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if ((rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH) &&
	    (fib.ifindex == cfg->fib_ifindex || fib.ifindex == cfg->peer_ifindex))
		rc = BPF_FIB_LKUP_RET_UNREACHABLE;  /* routed back into the tunnel */
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		eth = data;
		if ((void *)(eth + 1) > data_end)
			return -1;
		__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
		eth->h_proto = bpf_htons(ETH_P_IP);
		if (clone)
			return bpf_clone_redirect(skb, fib.ifindex, 0) == 0 ? TC_ACT_OK : -1;
		return bpf_redirect(fib.ifindex, 0);
	}
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		if (clone) {  /* a clone cannot wait for ARP: drop this copy until resolved */
			count_drop(R_NO_NEIGHBOUR);
			return -1;
		}
		nh.nh_family = AF_INET;
		nh.ipv4_nh = fib.ipv4_dst;
		return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
	}
	count_drop(R_UNREACHABLE);
	return -1;
}

/* IP-in-IP (RFC 2003) or GRE (RFC 2784/2890): push the outer header in front of `in` */
static __always_inline int push_ipip_gre(struct __sk_buff *skb, const struct tun *t,
					 const struct cfg *cfg, const struct inner *in, int gso)
{
	int gre = t->encap == IPPROTO_GRE;
	int keyed = gre && (t->flags & TF_KEY);
	__u32 hl = sizeof(struct iphdr) + (gre ? (keyed ? 8 : 4) : 0);
	__u64 flags = 0;
	void *data, *data_end;
	struct iphdr *ip;
	__u32 outer_len;

	if (gso)  /* let the kernel segment the tunnelled aggregate (inner MSS kept) */
		flags = BPF_F_ADJ_ROOM_FIXED_GSO | BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 |
			(gre ? BPF_F_ADJ_ROOM_ENCAP_L4_GRE : 0);
	if (bpf_skb_adjust_room(skb, hl, BPF_ADJ_ROOM_MAC, flags))
		return -1;
	outer_len = skb->len - ETH_HLEN;
	if (outer_len > 0xffff)
		return -1;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ip = data + ETH_HLEN;
	if ((void *)ip + 28 > data_end)
		return -1;
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = in->tos;
	ip->tot_len = bpf_htons(outer_len);
	ip->id = (in->frag_off & IP_DF) ? 0 : (__u16)bpf_get_prandom_u32();
	ip->frag_off = bpf_htons(in->frag_off & IP_DF);
	ip->ttl = cfg->ttl;
	ip->protocol = t->encap;
	ip->check = 0;
	ip->saddr = t->local;
	ip->daddr = t->remote;
	ip->check = ip_checksum(ip);
	if (gre) {
		__u32 *g = (__u32 *)(ip + 1);

		g[0] = bpf_htonl(((keyed ? GRE_KEY_PRESENT : 0) << 16) | ETH_P_IP);
		if (keyed)
			g[1] = t->key;
	}
	return hl;
}

/* Minimal encapsulation (RFC 2004 §3): rewrite the IP header, insert the forwarding header */
static __always_inline int push_minimal(struct __sk_buff *skb, const struct tun *t,
					const struct inner *in)
{
	__u32 with_src = in->saddr != t->local;
	__u32 n = with_src ? 12 : 8;
	__u8 mh[12] = {};
	void *data, *data_end;
	struct iphdr *ip;
	__u8 *p;

	mh[0] = in->protocol;
	mh[1] = with_src ? MINIMAL_S : 0;
	__builtin_memcpy(&mh[4], &in->daddr, 4);
	if (with_src)
		__builtin_memcpy(&mh[8], &in->saddr, 4);
	*(__u16 *)&mh[2] = minimal_checksum(mh, n);
	/* room between the 20-byte IP header and the payload */
	if (bpf_skb_adjust_room(skb, n, BPF_ADJ_ROOM_NET, 0))
		return -1;
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ip = data + ETH_HLEN;
	p = (__u8 *)(ip + 1);
	if ((void *)p + 12 > data_end)
		return -1;
	__builtin_memcpy(p, mh, 8);
	if (with_src)
		__builtin_memcpy(p + 8, &mh[8], 4);
	ip->tot_len = bpf_htons(in->tot_len + n);
	ip->protocol = IPPROTO_MINIMAL;
	ip->saddr = t->local;
	ip->daddr = t->remote;
	ip->check = 0;
	ip->check = ip_checksum(ip);
	return n;
}

/* Undo the encapsulation of one copy so that the next copy starts from the inner packet */
static __always_inline int pop_copy(struct __sk_buff *skb, const struct tun *t, int len,
				    const struct iphdr *saved)
{
	if (t->encap != IPPROTO_MINIMAL)
		return bpf_skb_adjust_room(skb, -len, BPF_ADJ_ROOM_MAC, 0);
	if (bpf_skb_adjust_room(skb, -len, BPF_ADJ_ROOM_NET, 0))
		return -1;
	return bpf_skb_store_bytes(skb, ETH_HLEN, saved, sizeof(*saved), 0);
}

static __always_inline const struct tun *copy_of(const struct tun *first, __u32 addr, __u32 i)
{
	struct more_key k = {.addr = addr, .idx = i};

	if (i == 0)
		return first;
	return bpf_map_lookup_elem(&mh_more, &k);
}

static __always_inline int encapsulate(struct __sk_buff *skb, int segmented)
{
	__u32 zero = 0, addr, i, n, sent = 0;
	struct iphdr saved;
	const struct tun *first, *t;
	const struct cfg *cfg;
	struct inner in;
	struct iphdr *ip;
	int gso, rc = TC_ACT_SHOT;

	cfg = bpf_map_lookup_elem(&mh_cfg, &zero);
	if (!cfg)
		return TC_ACT_SHOT;
	ip = ip_of(skb);
	if (!ip)
		return drop(R_NOT_IPV4, 0);
	in.saddr = ip->saddr;
	in.daddr = ip->daddr;
	in.tot_len = bpf_ntohs(ip->tot_len);
	in.frag_off = bpf_ntohs(ip->frag_off);
	in.tos = ip->tos;
	in.ttl = ip->ttl;
	in.protocol = ip->protocol;
	in.ihl = ip->ihl;
	__builtin_memcpy(&saved, ip, sizeof(saved));

	addr = cfg->role == ROLE_HA ? in.daddr : in.saddr;
	first = bpf_map_lookup_elem(&mh_enc, &addr);
	if (!first)
		return drop(R_NO_BINDING, 0);
	n = first->ncopies;
	gso = skb->gso_segs > 1 || skb->gso_size > 0;
	if (gso && (first->flags & TF_SLOW)) {
		if (segmented)  /* the sink offers no GSO: segments only reach the peer */
			return drop(R_ENCAP_ERROR, first->slot);
		return TC_ACT_OK;  /* to the peer, segmented by the kernel on the way */
	}

	for (i = 0; i < MAX_COPIES; i++) {
		struct tstat *st;
		__u32 bytes = skb->len - ETH_HLEN;
		__u64 segs = gso_segs(skb);
		int last = i + 1 >= n, len;

		if (i >= n)
			break;
		t = copy_of(first, addr, i);
		if (!t)
			continue;
		if (in.saddr == t->remote) {  /* never tunnel a packet back to its source */
			drop(R_LOOP, t->slot);
			continue;
		}
		if (t->encap == IPPROTO_MINIMAL) {
			if (in.frag_off & IP_MF_OFFSET) {  /* RFC 2004 §3: no fragments */
				drop(R_FRAGMENT, t->slot);
				continue;
			}
			if (in.ihl != 5) {  /* the helper inserts after a 20-byte header */
				drop(R_IP_OPTIONS, t->slot);
				continue;
			}
			len = push_minimal(skb, t, &in);
		} else {
			len = push_ipip_gre(skb, t, cfg, &in, gso);
		}
		if (len < 0) {
			drop(R_ENCAP_ERROR, t->slot);
			return TC_ACT_SHOT;  /* the packet may be half rewritten */
		}
		rc = send_outer(skb, cfg, t->local, t->remote, in.tos, t->encap, !last);
		if (rc >= 0) {
			st = tstat_of(t->slot);
			if (st) {
				st->tx_pkts += segs;
				st->tx_bytes += bytes;
			}
			count_total(T_TX_PKTS, segs, bytes);
			sent++;
		} else {
			count_binding_drop(t->slot);
		}
		if (last)
			return rc >= 0 ? rc : TC_ACT_SHOT;
		if (pop_copy(skb, t, len, &saved)) {
			count_drop(R_ENCAP_ERROR);
			return TC_ACT_SHOT;
		}
	}
	return TC_ACT_SHOT;
}

SEC("tc")
int mh_out(struct __sk_buff *skb)
{
	return encapsulate(skb, 0);
}

SEC("tc")
int mh_seg(struct __sk_buff *skb)
{
	return encapsulate(skb, 1);
}

/* Sum of a GRE packet from offset `off` to the end, for the optional GRE checksum */
static __always_inline int gre_checksum_ok(struct __sk_buff *skb, __u32 off)
{
	__u32 len = skb->len - off, sum = 0, i;
	__u8 buf[32];

	if (len > GRE_CSUM_CHUNKS * 32)
		return 0;
	for (i = 0; i < GRE_CSUM_CHUNKS; i++) {
		__u32 o = i * 32, take = len - o;

		if (o >= len)
			break;
		if (take >= 32) {
			if (bpf_skb_load_bytes(skb, off + o, buf, 32))
				return 0;
			sum = bpf_csum_diff(NULL, 0, (__be32 *)buf, 32, sum);
		} else {
			__builtin_memset(buf, 0, sizeof(buf));
			/* 1..31 here; written so that the verifier sees the bounds */
			asm volatile("%0 += -1; %0 &= 31; %0 += 1" : "+r"(take));
			if (bpf_skb_load_bytes(skb, off + o, buf, take))
				return 0;
			sum = bpf_csum_diff(NULL, 0, (__be32 *)buf, 32, sum);
		}
	}
	return csum_fold(sum) == 0;
}

SEC("tc")
int mh_in(struct __sk_buff *skb)
{
	struct dec_key k = {};
	struct peer_key pk = {};
	const struct dec_val *v;
	const struct cfg *cfg;
	void *data, *data_end;
	struct iphdr *ip, *inner;
	struct tstat *st;
	__u32 zero = 0, *peer_slot, ihl, hl, gre_key = 0, has_key = 0;
	__u32 inner_src = 0, inner_dst = 0;  /* set on every path; older verifiers insist */
	__u32 inner_len;
	__u8 proto, mh_proto = 0;
	__u8 *p;

	ip = ip_of(skb);
	if (!ip)
		return TC_ACT_OK;
	proto = ip->protocol;
	if (proto != IPPROTO_IPIP && proto != IPPROTO_GRE && proto != IPPROTO_MINIMAL)
		return TC_ACT_OK;
	if (!bpf_map_lookup_elem(&mh_local, &ip->daddr))
		return TC_ACT_OK;  /* not addressed to one of our tunnel endpoints */
	cfg = bpf_map_lookup_elem(&mh_cfg, &zero);
	if (!cfg)
		return TC_ACT_OK;
	if (bpf_ntohs(ip->frag_off) & IP_MF_OFFSET)  /* no reassembly here: tunnel MTU */
		return drop(R_FRAGMENT, 0);           /* above the path MTU to the peer */

	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	ihl = ip->ihl * 4;
	if (ihl < 20 || ihl > 60)
		return drop(R_MALFORMED, 0);
	p = data + ETH_HLEN + ihl;
	k.remote = ip->saddr;
	k.local = ip->daddr;

	if (proto == IPPROTO_GRE) {
		__u16 gflags;

		if ((void *)p + 4 > data_end)
			return drop(R_MALFORMED, 0);
		gflags = bpf_ntohs(*(__u16 *)p);
		if ((gflags & (GRE_BAD_BITS | GRE_VERSION)) || *(__u16 *)(p + 2) != bpf_htons(ETH_P_IP))
			return drop(R_MALFORMED, 0);
		hl = 4;
		if (gflags & GRE_CSUM_PRESENT) {
			if (!gre_checksum_ok(skb, ETH_HLEN + ihl))
				return drop(R_MALFORMED, 0);
			hl += 4;
		}
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		p = data + ETH_HLEN + (ihl & 0x3c);
		if (gflags & GRE_KEY_PRESENT) {
			if ((void *)p + hl + 4 > data_end || hl > 8)
				return drop(R_MALFORMED, 0);
			gre_key = *(__u32 *)(p + hl);
			has_key = 1;
			hl += 4;
		}
		if (gflags & GRE_SEQ_PRESENT)
			hl += 4;
	} else if (proto == IPPROTO_MINIMAL) {
		if (ihl != 20)  /* the helper removes bytes after a 20-byte header */
			return drop(R_IP_OPTIONS, 0);
		if ((void *)p + 12 > data_end)
			return drop(R_MALFORMED, 0);
		hl = (p[1] & MINIMAL_S) ? 12 : 8;
		if ((p[1] & ~MINIMAL_S) || minimal_checksum(p, hl) != 0)
			return drop(R_MALFORMED, 0);
		mh_proto = p[0];
		inner_dst = *(__u32 *)(p + 4);
		inner_src = hl == 12 ? *(__u32 *)(p + 8) : ip->saddr;
	} else {
		hl = 0;
	}

	if (proto != IPPROTO_MINIMAL) {
		inner = (struct iphdr *)(p + (hl & 0x1f));
		if ((void *)(inner + 1) > data_end || inner->version != 4)
			return drop(R_MALFORMED, 0);
		inner_src = inner->saddr;
		inner_dst = inner->daddr;
	}
	k.inner = cfg->role == ROLE_HA ? inner_src : inner_dst;

	v = bpf_map_lookup_elem(&mh_dec, &k);
	if (!v) {
		pk.remote = k.remote;
		pk.local = k.local;
		peer_slot = bpf_map_lookup_elem(&mh_peer, &pk);
		if (peer_slot)
			return drop(R_SPOOF, *peer_slot);
		return drop(R_UNKNOWN_PEER, 0);
	}
	if (v->encap != proto)  /* not the encapsulation negotiated for this binding */
		return drop(R_BAD_ENCAP, v->slot);
	if (has_key != !!(v->flags & TF_KEY) || (has_key && gre_key != v->key))
		return drop(R_BAD_KEY, v->slot);

	st = tstat_of(v->slot);
	inner_len = skb->len - ETH_HLEN - hl - (proto == IPPROTO_MINIMAL ? 0 : ihl);
	if (st) {
		st->rx_pkts += gso_segs(skb);
		st->rx_bytes += inner_len;
	}
	count_total(T_RX_PKTS, gso_segs(skb), inner_len);
	if (proto == IPPROTO_MINIMAL) {
		__u16 tot;

		if (bpf_skb_adjust_room(skb, -(int)hl, BPF_ADJ_ROOM_NET, 0))
			return drop(R_ENCAP_ERROR, v->slot);
		data = (void *)(long)skb->data;
		data_end = (void *)(long)skb->data_end;
		ip = data + ETH_HLEN;
		if ((void *)(ip + 1) > data_end)
			return TC_ACT_SHOT;
		tot = bpf_ntohs(ip->tot_len);
		ip->tot_len = bpf_htons(tot - hl);
		ip->protocol = mh_proto;
		ip->saddr = inner_src;
		ip->daddr = inner_dst;
		ip->check = 0;
		ip->check = ip_checksum(ip);
		return TC_ACT_OK;
	}
	if (bpf_skb_adjust_room(skb, -(int)(ihl + hl), BPF_ADJ_ROOM_MAC, 0))
		return drop(R_ENCAP_ERROR, v->slot);
	return TC_ACT_OK;
}

/* bpf_fib_lookup is only offered to programs under a GPL-compatible licence */
char _license[] SEC("license") = "Dual BSD/GPL";
