// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// IPIP decapsulation for servers whose kernel has no ipip or sit module: an
// IPv4 packet of protocol 4 whose inner packet is IPv4 to a configured VIP,
// or of protocol 41 whose inner packet is IPv6 to a configured VIP, loses
// its outer header and goes up the stack as the inner packet. Everything
// else, including malformed or truncated packets and fragmented outer
// packets, is XDP_PASS untouched.

#include "common.h"

#include <linux/ipv6.h>

char __license[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __be32);
	__type(value, __u8);
} decap_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct in6_addr);
	__type(value, __u8);
} decap_vips6 SEC(".maps");

struct counter {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counter);
} decap_counter SEC(".maps");

SEC("xdp")
int tern_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	struct iphdr *outer = (void *)(eth + 1);
	if ((void *)(outer + 1) > data_end)
		return XDP_PASS;
	if (outer->version != 4 || outer->ihl < 5)
		return XDP_PASS;
	if (outer->protocol != IPPROTO_IPIP && outer->protocol != IPPROTO_IPV6)
		return XDP_PASS;
	if (outer->frag_off & bpf_htons(IP_MF | IP_OFFMASK))
		return XDP_PASS;
	__u32 ohl = outer->ihl * 4;
	__u32 tot = bpf_ntohs(outer->tot_len);
	if (tot < ohl || (void *)outer + tot > data_end)
		return XDP_PASS; // malformed or truncated
	__u16 proto;
	if (outer->protocol == IPPROTO_IPIP) {
		struct iphdr *inner = (void *)outer + ohl;
		if ((void *)(inner + 1) > data_end)
			return XDP_PASS;
		if (inner->version != 4 || inner->ihl < 5)
			return XDP_PASS;
		if (tot < ohl + sizeof(struct iphdr) || tot != ohl + bpf_ntohs(inner->tot_len))
			return XDP_PASS;
		__be32 vip = inner->daddr;
		if (!bpf_map_lookup_elem(&decap_vips, &vip))
			return XDP_PASS;
		proto = ETH_P_IP;
	} else {
		struct ipv6hdr *inner = (void *)outer + ohl;
		if ((void *)(inner + 1) > data_end)
			return XDP_PASS;
		if (inner->version != 6)
			return XDP_PASS;
		if (tot != ohl + sizeof(struct ipv6hdr) + bpf_ntohs(inner->payload_len))
			return XDP_PASS;
		struct in6_addr vip = inner->daddr;
		if (!bpf_map_lookup_elem(&decap_vips6, &vip))
			return XDP_PASS;
		proto = ETH_P_IPV6;
	}

	struct ethhdr copy = *eth;
	if (bpf_xdp_adjust_head(ctx, (int)ohl))
		return XDP_PASS;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_DROP; // cannot happen: the inner header was there
	*eth = copy;
	eth->h_proto = bpf_htons(proto);

	__u32 zero = 0;
	struct counter *c = bpf_map_lookup_elem(&decap_counter, &zero);
	if (c) {
		c->packets++;
		c->bytes += data_end - data;
	}
	return XDP_PASS;
}
