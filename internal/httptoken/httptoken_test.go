package httptoken

import "testing"

func TestContains(t *testing.T) {
	tests := []struct {
		v, token string
		want     bool
	}{
		{"close", "close", true},
		{"Close", "close", true},
		{"keep-alive, close", "close", true},
		{"keep-alive,\tCLOSE ", "close", true},
		{"closed", "close", false},
		{"unclose", "close", false},
		{"", "close", false},
		{"close", "", false},
		{"100-continue", "100-continue", true},
	}
	for _, tt := range tests {
		if got := Contains(tt.v, tt.token); got != tt.want {
			t.Errorf("Contains(%q, %q) = %v, want %v", tt.v, tt.token, got, tt.want)
		}
	}
}
