// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// Tern's XDP load balancer: direct server return with Maglev hashing.
//
// For an IPv4 or IPv6 TCP or UDP packet to a configured VIP:port, the
// program hashes the flow's 5-tuple, picks a backend id from the service's
// Maglev table and either rewrites the destination MAC to the backend's
// (mode mac) or prepends an outer IPv4 header to the backend (mode ipip:
// IPv4-in-IPv4, or IPv6-in-IPv4 for an IPv6 VIP), then XDP_TX. ICMP
// fragmentation-needed and ICMPv6 packet-too-big messages about a VIP's
// flow follow the flow.
// Everything else is XDP_PASS, untouched.
//
// Malformed or truncated packets are passed to the kernel, which validates
// and drops them: the program never transmits a packet it has not fully
// parsed. IP options (IHL > 5) are skipped over. IP fragments are passed to
// the kernel (non-first fragments carry no ports, so they cannot follow
// their flow); first fragments of a service's flows are counted.
//
// Counters (per CPU): packets and bytes per service and per backend, and
// per service the TCP segments that open (SYN without ACK) or close (FIN,
// RST) a flow, from which the control side estimates active flows.
//
// Atomic table swap: a service entry in lb_services names a slot of the
// lb_tables map of maps. Each service index owns two slots (2*index and
// 2*index+1). The control side fills a new table in a fresh inner map, puts
// it in the slot the service is not using, then replaces the service entry
// in one map update. The program reads the entry once, so a packet sees the
// old table or the new one, each complete. The old table stays in its slot
// until the next change of that service.

#include "common.h"
#include "jhash.h"

#include <linux/ipv6.h>

char __license[] SEC("license") = "Dual MIT/GPL";

#define MODE_MAC 1
#define MODE_IPIP 2

#define BACKEND_SET 1
#define BACKEND_LOCAL 2

enum {
	STAT_FRAGMENT = 0,
	STAT_NO_BACKEND,
	STAT_ICMP_TOO_BIG,
	STAT_MAX,
};

struct svc_key {
	__u8 addr[16]; // IPv4: first 4 bytes, rest zero
	__be16 port;
	__u8 proto;
	__u8 family; // 4 or 6
};

struct svc_val {
	__u32 index;      // service index: counters
	__u32 table;      // slot in lb_tables
	__u32 table_size; // entries in the table; 0: no backends
	__u8 mode;        // MODE_*
	__u8 pad[3];
	__be32 tunnel_src; // outer source for ipip; 0: lb_config's
};

struct backend {
	__u8 addr[16];
	__u8 mac[6];
	__u8 family;
	__u8 flags; // BACKEND_*
};

struct dp_config {
	__u8 iface_mac[6];
	__u8 nexthop_mac[6];
	__be32 tunnel_src;
};

struct counter {
	__u64 packets;
	__u64 bytes;
};

// tcp_counter counts, per service, the TCP packets forwarded that open or
// close a flow. The dispatcher sees only the client's direction (direct
// server return), so these are the client's SYN, FIN and RST.
struct tcp_counter {
	__u64 syn;       // SYN without ACK: a new flow (or a retransmitted SYN)
	__u64 fin;       // FIN: the client's orderly close
	__u64 rst;       // RST with ACK: the client's abort of a flow
	__u64 rst_stray; // RST without ACK: answer to a segment of a flow the
	                 // client no longer has, often after its FIN or RST
};

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

struct table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 65537);
	__type(key, __u32);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct svc_key);
	__type(value, struct svc_val);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 512); // 2 * lb_services
	__type(key, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
	__array(values, struct table);
} lb_tables SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct backend);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_backends SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dp_config);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256); // = lb_services
	__type(key, __u32);
	__type(value, struct counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_svc_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 256); // = lb_services
	__type(key, __u32);
	__type(value, struct tcp_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_svc_tcp SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4096); // = lb_backends
	__type(key, __u32);
	__type(value, struct counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_backend_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} lb_stats SEC(".maps");

static __always_inline void stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&lb_stats, &which);
	if (v)
		*v += 1;
}

static __always_inline void count(void *map, __u32 idx, __u64 bytes)
{
	struct counter *c = bpf_map_lookup_elem(map, &idx);
	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

// count_tcp counts a forwarded TCP segment that opens or closes a flow.
// Most segments carry none of these flags and cost one test.
static __always_inline void count_tcp(__u32 idx, __u8 flags)
{
	if (!(flags & (TCP_SYN | TCP_FIN | TCP_RST)))
		return;
	struct tcp_counter *c = bpf_map_lookup_elem(&lb_svc_tcp, &idx);
	if (!c)
		return;
	if ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
		c->syn++;
	if (flags & TCP_FIN)
		c->fin++;
	if (flags & TCP_RST) {
		if (flags & TCP_ACK)
			c->rst++;
		else
			c->rst_stray++;
	}
}

// flow_hash hashes a flow in its client-to-VIP direction. Ports are the raw
// network-order 16-bit words.
static __always_inline __u32 flow_hash(__be32 saddr, __be32 daddr, __be16 sport, __be16 dport, __u8 proto)
{
	__u32 ports = ((__u32)sport << 16) | (__u32)dport;
	return jhash_3words(saddr, daddr, ports, proto);
}

static __always_inline struct svc_val *lookup_svc4(__be32 vip, __be16 port, __u8 proto)
{
	struct svc_key key = {};
	__builtin_memcpy(key.addr, &vip, 4);
	key.port = port;
	key.proto = proto;
	key.family = 4;
	return bpf_map_lookup_elem(&lb_services, &key);
}

// flow_hash6 is flow_hash for IPv6: lookup3 chained over the addresses.
static __always_inline __u32 flow_hash6(const __u32 *saddr, const __u32 *daddr, __be16 sport, __be16 dport, __u8 proto)
{
	__u32 ports = ((__u32)sport << 16) | (__u32)dport;
	__u32 h = jhash_3words(saddr[0], saddr[1], saddr[2], proto);
	h = jhash_3words(saddr[3], daddr[0], daddr[1], h);
	return jhash_3words(daddr[2], daddr[3], ports, h);
}

static __always_inline struct svc_val *lookup_svc6(const struct in6_addr *vip, __be16 port, __u8 proto)
{
	struct svc_key key = {};
	__builtin_memcpy(key.addr, vip, 16);
	key.port = port;
	key.proto = proto;
	key.family = 6;
	return bpf_map_lookup_elem(&lb_services, &key);
}

static __always_inline int addr6_equal(const struct in6_addr *a, const struct in6_addr *b)
{
	const __u32 *x = a->in6_u.u6_addr32, *y = b->in6_u.u6_addr32;
	return !((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]));
}

static __always_inline int mac_is_zero(const __u8 *m)
{
	return !(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]);
}

static __always_inline int mac_equal(const __u8 *a, const __u8 *b)
{
	return !((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) | (a[5] ^ b[5]));
}

// inner describes the packet to forward, for the outer header of ipip.
struct inner {
	__u16 len;   // IP packet length (IPv4 total length, IPv6 40 + payload)
	__u8 proto;  // outer protocol: 4 (IPv4 in IPv4) or 41 (IPv6 in IPv4)
	__u8 tos;    // TOS or traffic class, copied out
	__be16 id;   // IPv4 identification, copied out
	__be16 df;   // IP_DF (network order) if the outer header gets DF
	__u8 tcp_flags; // flags of a TCP segment; 0 for UDP and ICMP
};

// forward sends the packet at the start of ctx to the backend the hash
// picks.
static __always_inline int forward(struct xdp_md *ctx, const struct svc_val *svc, __u32 hash, const struct inner *in)
{
	__u64 frame_len = ctx->data_end - ctx->data;
	__u32 slot = svc->table;
	__u32 size = svc->table_size;
	__u8 mode = svc->mode;
	__be32 tunnel_src = svc->tunnel_src;
	__u32 index = svc->index;
	__u8 tcp_flags = in->tcp_flags;

	void *table = bpf_map_lookup_elem(&lb_tables, &slot);
	if (!table || size == 0)
		goto no_backend;
	__u32 pos = hash % size;
	__u32 *id = bpf_map_lookup_elem(table, &pos);
	if (!id)
		goto no_backend;
	__u32 bid = *id;
	struct backend *be = bpf_map_lookup_elem(&lb_backends, &bid);
	if (!be || !(be->flags & BACKEND_SET))
		goto no_backend;
	__u32 zero = 0;
	struct dp_config *cfg = bpf_map_lookup_elem(&lb_config, &zero);
	if (!cfg)
		goto no_backend;

	if ((be->flags & BACKEND_LOCAL) ||
	    (mode == MODE_MAC && mac_equal(be->mac, cfg->iface_mac))) {
		count(&lb_svc_counters, index, frame_len);
		count(&lb_backend_counters, bid, frame_len);
		count_tcp(index, tcp_flags);
		return XDP_PASS;
	}

	if (mode == MODE_MAC) {
		void *data = (void *)(long)ctx->data;
		void *data_end = (void *)(long)ctx->data_end;
		struct ethhdr *eth = data;
		if ((void *)(eth + 1) > data_end)
			return XDP_PASS;
		if (mac_is_zero(be->mac))
			goto no_backend;
		__builtin_memcpy(eth->h_dest, be->mac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, cfg->iface_mac, ETH_ALEN);
		count(&lb_svc_counters, index, frame_len);
		count(&lb_backend_counters, bid, frame_len);
		count_tcp(index, tcp_flags);
		return XDP_TX;
	}

	if (mode != MODE_IPIP)
		goto no_backend;

	if (be->family != 4) // the outer header is IPv4
		goto no_backend;
	const __u8 *dmac = mac_is_zero(be->mac) ? cfg->nexthop_mac : be->mac;
	if (mac_is_zero(dmac))
		goto no_backend;
	if (!tunnel_src)
		tunnel_src = cfg->tunnel_src;
	if (!tunnel_src)
		goto no_backend;
	if (in->len > 0xffff - sizeof(struct iphdr))
		return XDP_PASS; // would not fit an outer header
	__u16 outer_len = in->len + sizeof(struct iphdr);
	__u8 tos = in->tos, proto = in->proto;
	__be16 id16 = in->id, df = in->df;

	if (bpf_xdp_adjust_head(ctx, 0 - (int)sizeof(struct iphdr)))
		goto no_backend;
	{
		void *data = (void *)(long)ctx->data;
		void *data_end = (void *)(long)ctx->data_end;
		struct ethhdr *eth = data;
		struct iphdr *outer = data + sizeof(struct ethhdr);
		if ((void *)(outer + 1) > data_end)
			return XDP_DROP; // cannot happen: the head just grew
		__builtin_memcpy(eth->h_dest, dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, cfg->iface_mac, ETH_ALEN);
		eth->h_proto = bpf_htons(ETH_P_IP);
		outer->version = 4;
		outer->ihl = 5;
		outer->tos = tos;
		outer->tot_len = bpf_htons(outer_len);
		outer->id = id16;
		outer->frag_off = df;
		outer->ttl = 64;
		outer->protocol = proto;
		outer->check = 0;
		outer->saddr = tunnel_src;
		__builtin_memcpy(&outer->daddr, be->addr, 4);
		outer->check = ipv4_csum(outer);
	}
	count(&lb_svc_counters, index, frame_len);
	count(&lb_backend_counters, bid, frame_len);
	count_tcp(index, tcp_flags);
	return XDP_TX;

no_backend:
	stat_inc(STAT_NO_BACKEND);
	return XDP_DROP;
}

struct ports {
	__be16 src;
	__be16 dst;
};

// icmp4 handles an ICMP message to a VIP: a fragmentation-needed message
// about a packet the VIP sent (a backend's direct reply) goes to the
// backend of that flow.
static __always_inline int icmp4(struct xdp_md *ctx, struct iphdr *ip, void *l4, __u32 avail, void *data_end)
{
	struct icmphdr_min {
		__u8 type;
		__u8 code;
		__be16 csum;
		__be32 rest;
	} *icmp = l4;
	if ((void *)(icmp + 1) > data_end)
		return XDP_PASS;
	if (icmp->type != 3 || icmp->code != 4) // ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED
		return XDP_PASS;
	struct iphdr *in = (void *)(icmp + 1);
	if ((void *)(in + 1) > data_end)
		return XDP_PASS;
	if (in->version != 4 || in->ihl < 5)
		return XDP_PASS;
	if (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP)
		return XDP_PASS;
	if (in->saddr != ip->daddr)
		return XDP_PASS;
	__u32 in_ihl = in->ihl * 4;
	if (sizeof(*icmp) + in_ihl + sizeof(struct ports) > avail)
		return XDP_PASS; // truncated within the IP packet
	struct ports *p = (void *)in + in_ihl;
	if ((void *)(p + 1) > data_end)
		return XDP_PASS;
	struct svc_val *svc = lookup_svc4(in->saddr, p->src, in->protocol);
	if (!svc)
		return XDP_PASS;
	// The embedded packet went VIP -> client: reversed, it is the flow.
	__u32 hash = flow_hash(in->daddr, in->saddr, p->dst, p->src, in->protocol);
	struct inner inn = {
		.len = bpf_ntohs(ip->tot_len),
		.proto = IPPROTO_IPIP,
		.tos = ip->tos,
		.id = ip->id,
		.df = ip->frag_off & bpf_htons(IP_DF),
	};
	int act = forward(ctx, svc, hash, &inn);
	if (act == XDP_TX)
		stat_inc(STAT_ICMP_TOO_BIG);
	return act;
}

static __always_inline int lb4(struct xdp_md *ctx, void *data, void *data_end)
{
	struct iphdr *ip = data + sizeof(struct ethhdr);
	if ((void *)(ip + 1) > data_end)
		return XDP_PASS;
	if (ip->version != 4 || ip->ihl < 5)
		return XDP_PASS;
	__u32 ihl = ip->ihl * 4;
	__u32 tot = bpf_ntohs(ip->tot_len);
	if (tot < ihl || (void *)ip + tot > data_end)
		return XDP_PASS;
	void *l4 = (void *)ip + ihl;
	__u32 avail = tot - ihl; // IP payload; Ethernet padding ignored

	__u8 proto = ip->protocol;
	if (proto == IPPROTO_ICMP) {
		if (ip->frag_off & bpf_htons(IP_MF | IP_OFFMASK))
			return XDP_PASS;
		return icmp4(ctx, ip, l4, avail, data_end);
	}
	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return XDP_PASS;
	if (ip->frag_off & bpf_htons(IP_OFFMASK))
		return XDP_PASS; // no ports here
	__u32 l4min = proto == IPPROTO_TCP ? 20 : 8;
	if (l4min > avail)
		return XDP_PASS;
	struct ports *p = l4;
	if ((void *)(p + 1) > data_end)
		return XDP_PASS;
	struct svc_val *svc = lookup_svc4(ip->daddr, p->dst, proto);
	if (!svc)
		return XDP_PASS;
	__u8 tcp_flags = 0;
	if (proto == IPPROTO_TCP) {
		__u8 *fl = l4 + 13;
		if ((void *)(fl + 1) > data_end)
			return XDP_PASS;
		tcp_flags = *fl;
	}
	if (ip->frag_off & bpf_htons(IP_MF)) {
		stat_inc(STAT_FRAGMENT);
		return XDP_PASS;
	}
	__u32 hash = flow_hash(ip->saddr, ip->daddr, p->src, p->dst, proto);
	struct inner inn = {
		.len = tot,
		.proto = IPPROTO_IPIP,
		.tos = ip->tos,
		.id = ip->id,
		.df = ip->frag_off & bpf_htons(IP_DF),
		.tcp_flags = tcp_flags,
	};
	return forward(ctx, svc, hash, &inn);
}

// inner6 describes an IPv6 packet for the outer IPv4 header of ipip
// (IPv6 in IPv4, protocol 41, DF set as IPv6 is never fragmented on path).
static __always_inline struct inner inner6(const struct ipv6hdr *ip6, __u32 plen)
{
	struct inner in = {
		.len = sizeof(struct ipv6hdr) + plen,
		.proto = IPPROTO_IPV6,
		.tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4),
		.df = bpf_htons(IP_DF),
	};
	return in;
}

// icmp6 handles an ICMPv6 Packet Too Big message to a VIP about a packet
// from VIP:port, like icmp4.
static __always_inline int icmp6(struct xdp_md *ctx, struct ipv6hdr *ip6, void *l4, __u32 plen, void *data_end)
{
	struct icmp6hdr_min {
		__u8 type;
		__u8 code;
		__be16 csum;
		__be32 mtu;
	} *icmp = l4;
	if ((void *)(icmp + 1) > data_end)
		return XDP_PASS;
	if (icmp->type != 2 || icmp->code != 0) // ICMPV6_PKT_TOOBIG
		return XDP_PASS;
	if (sizeof(*icmp) + sizeof(struct ipv6hdr) + sizeof(struct ports) > plen)
		return XDP_PASS; // truncated within the IP packet
	struct ipv6hdr *in = (void *)(icmp + 1);
	struct ports *p = (void *)(in + 1);
	if ((void *)(p + 1) > data_end)
		return XDP_PASS;
	if (in->version != 6)
		return XDP_PASS;
	if (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP)
		return XDP_PASS;
	if (!addr6_equal(&in->saddr, &ip6->daddr))
		return XDP_PASS;
	struct svc_val *svc = lookup_svc6(&in->saddr, p->src, in->nexthdr);
	if (!svc)
		return XDP_PASS;
	__u32 hash = flow_hash6(in->daddr.in6_u.u6_addr32, in->saddr.in6_u.u6_addr32, p->dst, p->src, in->nexthdr);
	struct inner inn = inner6(ip6, plen);
	int act = forward(ctx, svc, hash, &inn);
	if (act == XDP_TX)
		stat_inc(STAT_ICMP_TOO_BIG);
	return act;
}

// lb6 balances IPv6 TCP and UDP whose next header is the transport one;
// packets with extension headers (fragments included) are passed.
static __always_inline int lb6(struct xdp_md *ctx, void *data, void *data_end)
{
	struct ipv6hdr *ip6 = data + sizeof(struct ethhdr);
	if ((void *)(ip6 + 1) > data_end)
		return XDP_PASS;
	if (ip6->version != 6)
		return XDP_PASS;
	__u32 plen = bpf_ntohs(ip6->payload_len);
	if ((void *)(ip6 + 1) + plen > data_end)
		return XDP_PASS;
	void *l4 = (void *)(ip6 + 1);
	__u8 nh = ip6->nexthdr;
	if (nh == 58) // IPPROTO_ICMPV6
		return icmp6(ctx, ip6, l4, plen, data_end);
	if (nh != IPPROTO_TCP && nh != IPPROTO_UDP)
		return XDP_PASS;
	__u32 l4min = nh == IPPROTO_TCP ? 20 : 8;
	if (l4min > plen)
		return XDP_PASS;
	struct ports *p = l4;
	if ((void *)(p + 1) > data_end)
		return XDP_PASS;
	struct svc_val *svc = lookup_svc6(&ip6->daddr, p->dst, nh);
	if (!svc)
		return XDP_PASS;
	__u8 tcp_flags = 0;
	if (nh == IPPROTO_TCP) {
		__u8 *fl = l4 + 13;
		if ((void *)(fl + 1) > data_end)
			return XDP_PASS;
		tcp_flags = *fl;
	}
	__u32 hash = flow_hash6(ip6->saddr.in6_u.u6_addr32, ip6->daddr.in6_u.u6_addr32, p->src, p->dst, nh);
	struct inner inn = inner6(ip6, plen);
	inn.tcp_flags = tcp_flags;
	return forward(ctx, svc, hash, &inn);
}

SEC("xdp")
int tern_lb(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_PASS;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		return lb4(ctx, data, data_end);
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return lb6(ctx, data, data_end);
	return XDP_PASS;
}
