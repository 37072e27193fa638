//go:build race

package node

// raceDetector: the tests run under -race, which makes parsing a zone of
// a million records ten times slower.
const raceDetector = true
