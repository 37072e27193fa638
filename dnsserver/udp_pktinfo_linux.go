//go:build linux && portableudp

package dnsserver

import "golang.org/x/sys/unix"

// recvPktinfo4 asks an IPv4 socket for each datagram's destination.
const recvPktinfo4 = unix.IP_PKTINFO
