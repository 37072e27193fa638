// Package node is the composition root of one Tern node: it compiles a
// configuration (and, later, replicated state) into the immutable snapshot
// the DNS server answers from, starts the parts in order and stops them in
// reverse, and swaps in a new snapshot on reload only when the whole new
// configuration is valid.
//
// node is the only package that imports all the others.
package node
