package mix

import "testing"

// TestMix64Known pins the function: nodes of different versions must
// hash alike (SplitMix64 reference values).
func TestMix64Known(t *testing.T) {
	for in, want := range map[uint64]uint64{
		0:                  0,
		1:                  0x5692161d100b05e5,
		0x9e3779b97f4a7c15: 0xe220a8397b1dcdaf,
	} {
		if got := Mix64(in); got != want {
			t.Errorf("Mix64(%#x) = %#x, want %#x", in, got, want)
		}
	}
}
