package node

import "sync/atomic"

// atomicBool flips on every call; flip returns the new value.
type atomicBool struct{ n atomic.Uint64 }

func (b *atomicBool) flip() bool { return b.n.Add(1)%2 == 0 }
