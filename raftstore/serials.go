package raftstore

import "maps"

// ZoneStamp is what one zone of a bundle is, as the proposer compiled it:
// the serial its file carries and a fingerprint of the content it serves.
// Both are pure functions of the bundle, so any node would compute the
// same; the FSM only compares them.
type ZoneStamp struct {
	Serial  uint32 `json:"serial"`
	Content Hash   `json:"content"`
}

// ZoneSerial is one zone of a configuration version: its stamp and the
// serial served for it, the same on every node.
type ZoneSerial struct {
	ZoneStamp
	Served uint32 `json:"served"`
}

// NextSerials returns the serial to serve for each zone of stamps, given
// last, the last served serial of every zone ever served (with the stamp
// it was served for). A zone whose stamp is unchanged keeps its serial;
// else it gets its file's serial when that is newer than the last served
// one in RFC 1982 serial arithmetic, and the last served one + 1 when not
// (content changed without the file's serial moving, or a rollback to
// older content); a zone never served gets its file's serial. So a zone's
// served serial never goes backwards, across rollbacks and whatever the
// files' serials do. The FSM calls it as it makes a version; a standalone
// node calls it with the serials it keeps in its data directory.
func NextSerials(last map[string]ZoneSerial, stamps map[string]ZoneStamp) map[string]ZoneSerial {
	out := make(map[string]ZoneSerial, len(stamps))
	for name, st := range stamps {
		z := ZoneSerial{ZoneStamp: st, Served: st.Serial}
		if p, ok := last[name]; ok {
			switch {
			case p.ZoneStamp == st:
				z.Served = p.Served
			case !SerialLess(p.Served, st.Serial):
				z.Served = p.Served + 1
			}
		}
		out[name] = z
	}
	return out
}

// WithSerials returns last updated with next (a copy: last is not
// modified); zones not in next keep their last served serial, so one that
// comes back later does not start below it.
func WithSerials(last, next map[string]ZoneSerial) map[string]ZoneSerial {
	out := maps.Clone(last)
	if out == nil {
		out = make(map[string]ZoneSerial, len(next))
	}
	maps.Copy(out, next)
	return out
}

// SerialLess reports a < b in RFC 1982 serial number arithmetic (a and b
// exactly 2^31 apart are not comparable: false).
func SerialLess(a, b uint32) bool { return a != b && int32(b-a) > 0 }
