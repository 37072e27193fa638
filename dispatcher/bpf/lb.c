// SPDX-License-Identifier: (MIT OR GPL-2.0)
//
// Tern's XDP load balancer: direct server return with Maglev hashing.
//
// For an IPv4 TCP or UDP packet to a configured VIP:port, the program hashes
// the flow's 5-tuple, picks a backend id from the service's Maglev table and
// either rewrites the destination MAC to the backend's (mode mac) or
// prepends an outer IPv4 header to the backend (mode ipip), then XDP_TX.
// ICMP fragmentation-needed messages about a VIP's flow follow the flow.
// Everything else is XDP_PASS, untouched.
//
// Malformed or truncated packets are passed to the kernel, which validates
// and drops them: the program never transmits a packet it has not fully
// parsed. IP options (IHL > 5) are skipped over. IP fragments are passed to
// the kernel (non-first fragments carry no ports, so they cannot follow
// their flow); first fragments of a service's flows are counted.
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

static __always_inline int mac_is_zero(const __u8 *m)
{
	return !(m[0] | m[1] | m[2] | m[3] | m[4] | m[5]);
}

static __always_inline int mac_equal(const __u8 *a, const __u8 *b)
{
	return !((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) | (a[5] ^ b[5]));
}

// forward4 sends the IPv4 packet at the start of ctx (Ethernet, then IPv4
// header with tot_len inner_len) to the backend the hash picks.
static __always_inline int forward4(struct xdp_md *ctx, const struct svc_val *svc, __u32 hash)
{
	__u64 frame_len = ctx->data_end - ctx->data;
	__u32 slot = svc->table;
	__u32 size = svc->table_size;
	__u8 mode = svc->mode;
	__be32 tunnel_src = svc->tunnel_src;
	__u32 index = svc->index;

	void *table = bpf_map_lookup_elem(&lb_tables, &slot);
	if (!table || size == 0)
		goto no_backend;
	__u32 pos = hash % size;
	__u32 *id = bpf_map_lookup_elem(table, &pos);
	if (!id)
		goto no_backend;
	__u32 bid = *id;
	struct backend *be = bpf_map_lookup_elem(&lb_backends, &bid);
	if (!be || !(be->flags & BACKEND_SET) || be->family != 4)
		goto no_backend;
	__u32 zero = 0;
	struct dp_config *cfg = bpf_map_lookup_elem(&lb_config, &zero);
	if (!cfg)
		goto no_backend;

	if ((be->flags & BACKEND_LOCAL) ||
	    (mode == MODE_MAC && mac_equal(be->mac, cfg->iface_mac))) {
		count(&lb_svc_counters, index, frame_len);
		count(&lb_backend_counters, bid, frame_len);
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
		return XDP_TX;
	}

	if (mode != MODE_IPIP)
		goto no_backend;

	const __u8 *dmac = mac_is_zero(be->mac) ? cfg->nexthop_mac : be->mac;
	if (mac_is_zero(dmac))
		goto no_backend;
	if (!tunnel_src)
		tunnel_src = cfg->tunnel_src;
	if (!tunnel_src)
		goto no_backend;

	{
		void *data = (void *)(long)ctx->data;
		void *data_end = (void *)(long)ctx->data_end;
		struct iphdr *inner = data + sizeof(struct ethhdr);
		if ((void *)(inner + 1) > data_end)
			return XDP_PASS;
		__u8 tos = inner->tos;
		__u16 inner_len = bpf_ntohs(inner->tot_len);
		__be16 id16 = inner->id;
		__be16 df = inner->frag_off & bpf_htons(IP_DF);
		if (inner_len > 0xffff - sizeof(struct iphdr))
			return XDP_PASS;

		if (bpf_xdp_adjust_head(ctx, 0 - (int)sizeof(struct iphdr)))
			goto no_backend;
		data = (void *)(long)ctx->data;
		data_end = (void *)(long)ctx->data_end;
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
		outer->tot_len = bpf_htons(inner_len + sizeof(struct iphdr));
		outer->id = id16;
		outer->frag_off = df;
		outer->ttl = 64;
		outer->protocol = IPPROTO_IPIP;
		outer->check = 0;
		outer->saddr = tunnel_src;
		__builtin_memcpy(&outer->daddr, be->addr, 4);
		outer->check = ipv4_csum(outer);
	}
	count(&lb_svc_counters, index, frame_len);
	count(&lb_backend_counters, bid, frame_len);
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
	int act = forward4(ctx, svc, hash);
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
	if (ip->frag_off & bpf_htons(IP_MF)) {
		stat_inc(STAT_FRAGMENT);
		return XDP_PASS;
	}
	__u32 hash = flow_hash(ip->saddr, ip->daddr, p->src, p->dst, proto);
	return forward4(ctx, svc, hash);
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
	return XDP_PASS;
}
