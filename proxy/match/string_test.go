package match

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	tests := []struct {
		kind       Kind
		value      string
		ignoreCase bool
		in         string
		want       bool
	}{
		{Exact, "spiffe://weft.local/ns/default/dc/dc1/svc/web", false, "spiffe://weft.local/ns/default/dc/dc1/svc/web", true},
		{Exact, "spiffe://weft.local/ns/default/dc/dc1/svc/web", false, "spiffe://weft.local/ns/default/dc/dc1/svc/web2", false},
		{Exact, "/Admin", true, "/aDMIN", true},
		{Exact, "", false, "", true},
		{Prefix, "spiffe://weft.local/", false, "spiffe://weft.local/ns/x", true},
		{Prefix, "spiffe://weft.local/", false, "spiffe://weft.localhost/ns/x", false},
		{Prefix, "/admin", true, "/ADMIN/x", true},
		{Prefix, "/admin", false, "/adm", false},
		{Suffix, "/svc/lb", false, "spiffe://weft.local/ns/default/dc/dc1/svc/lb", true},
		{Suffix, "/svc/lb", true, "X/SVC/LB", true},
		{Suffix, "/svc/lb", false, "lb", false},
		{Contains, "admin", false, "/x/admin/y", true},
		{Contains, "admin", true, "/x/ADMIN/y", true},
		{Contains, "admin", true, "/x/adm", false},
		{Regex, `^spiffe://weft\.local/ns/default/dc/[^/]+/svc/lb$`, false, "spiffe://weft.local/ns/default/dc/dc2/svc/lb", true},
		{Regex, `^spiffe://weft\.local/ns/default/dc/[^/]+/svc/lb$`, false, "spiffe://weft.local/ns/default/dc/dc2/svc/lb2", false},
		{Regex, `/api/.*`, false, "/api/x", true},
		{Regex, `/api/.*`, false, "/x/api/x", false}, // the whole string must match
		{Regex, `a|b`, false, "ab", false},           // alternation is anchored as a group
		{Exact, "k", true, "\u212a", false},          // ASCII folding only (Kelvin sign)
	}
	for _, tt := range tests {
		m, err := NewString(tt.kind, tt.value, tt.ignoreCase)
		if err != nil {
			t.Fatalf("NewString(%v, %q): %v", tt.kind, tt.value, err)
		}
		if got := m.Match(tt.in); got != tt.want {
			t.Errorf("%v.Match(%q) = %v, want %v", m, tt.in, got, tt.want)
		}
	}
}

func TestNewStringRejects(t *testing.T) {
	tests := []struct {
		kind       Kind
		value      string
		ignoreCase bool
		wantErr    string
	}{
		{Prefix, "", false, "empty value"},
		{Regex, "(", false, "safe_regex"},
		{Regex, "a", true, "ignore_case"},
		{Kind(42), "a", false, "unknown"},
	}
	for _, tt := range tests {
		if _, err := NewString(tt.kind, tt.value, tt.ignoreCase); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("NewString(%v, %q, %v) error = %v, want %q", tt.kind, tt.value, tt.ignoreCase, err, tt.wantErr)
		}
	}
}

func TestZeroMatchesNothing(t *testing.T) {
	var m String
	if m.Match("") || m.Match("x") {
		t.Error("zero String matched")
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	m := MustString(Prefix, "/admin", true)
	if n := testing.AllocsPerRun(100, func() { m.Match("/ADMIN/users") }); n != 0 {
		t.Errorf("Match allocates %v times", n)
	}
}
