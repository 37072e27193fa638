package api

// Series is a fixed number of the newest values of something sampled at
// a fixed step (the status page's plots): a ring, so its memory is bounded
// whatever the uptime. It is not safe for concurrent use; its owner locks.
type Series struct {
	vals []float64
	next int
	full bool
}

// NewSeries returns a series keeping the last n values (n < 1: 1).
func NewSeries(n int) *Series { return &Series{vals: make([]float64, max(n, 1))} }

// Add appends v, dropping the oldest value once the series is full.
func (s *Series) Add(v float64) {
	s.vals[s.next] = v
	s.next = (s.next + 1) % len(s.vals)
	if s.next == 0 {
		s.full = true
	}
}

// Values returns the kept values, oldest first, in a new slice.
func (s *Series) Values() []float64 {
	if !s.full {
		return append([]float64(nil), s.vals[:s.next]...)
	}
	out := make([]float64, 0, len(s.vals))
	out = append(out, s.vals[s.next:]...)
	return append(out, s.vals[:s.next]...)
}

// Len is the number of values kept.
func (s *Series) Len() int {
	if s.full {
		return len(s.vals)
	}
	return s.next
}
