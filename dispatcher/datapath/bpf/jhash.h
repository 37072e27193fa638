// SPDX-License-Identifier: (MIT OR GPL-2.0)
// Bob Jenkins' lookup3 hash of three words (public domain), the function
// the Linux kernel calls jhash_3words. Both dispatchers of a pair compute
// it with the same seed, so a flow hashes alike on either.
#pragma once

#include <linux/types.h>

#define rol32(x, k) (((x) << (k)) | ((x) >> (32 - (k))))

#define jhash_final(a, b, c)                                                   \
	{                                                                      \
		c ^= b;                                                        \
		c -= rol32(b, 14);                                             \
		a ^= c;                                                        \
		a -= rol32(c, 11);                                             \
		b ^= a;                                                        \
		b -= rol32(a, 25);                                             \
		c ^= b;                                                        \
		c -= rol32(b, 16);                                             \
		a ^= c;                                                        \
		a -= rol32(c, 4);                                              \
		b ^= a;                                                        \
		b -= rol32(a, 14);                                             \
		c ^= b;                                                        \
		c -= rol32(b, 24);                                             \
	}

#define JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	a += JHASH_INITVAL + (3 << 2) + initval;
	b += JHASH_INITVAL + (3 << 2) + initval;
	c += JHASH_INITVAL + (3 << 2) + initval;
	jhash_final(a, b, c);
	return c;
}
