// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The data plane's programs with a defective mh_in: it reads the packet without checking
 * the read against data_end, which the verifier refuses (a BPF program that fails to load).
 */
#define mh_in mh_in_checked
#include "tunnel.bpf.c"
#undef mh_in

SEC("tc")
int mh_in(struct __sk_buff *skb)
{
	__u8 *p = (void *)(long)skb->data;

	return p[40] ? TC_ACT_OK : TC_ACT_SHOT;
}
