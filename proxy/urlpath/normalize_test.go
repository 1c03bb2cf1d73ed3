package urlpath

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"/", "/", true},
		{"/api/v1/users", "/api/v1/users", true},
		{"", "/", true},
		{"*", "*", true},
		{"api", "/api", true},
		// merged slashes
		{"//admin", "/admin", true},
		{"/api//admin///x", "/api/admin/x", true},
		{"/a//", "/a/", true},
		// dot segments (RFC 3986 5.2.4)
		{"/a/./b", "/a/b", true},
		{"/a/b/../c", "/a/c", true},
		{"/a/b/..", "/a/", true},
		{"/a/b/.", "/a/b/", true},
		{"/public/../admin", "/admin", true},
		{"/..", "/", true},
		{"/../../admin", "/admin", true},
		{"/a/.hidden/..x", "/a/.hidden/..x", true},
		// percent-encoding
		{"/%2e%2e/admin", "/admin", true},
		{"/public/%2E%2E/admin", "/admin", true},
		{"/public/%2e./admin", "/admin", true},
		{"/%61dmin", "/admin", true},
		{"/api%2Fadmin", "/api/admin", true},
		{"/api%2fadmin", "/api/admin", true},
		{"/public%2F..%2Fadmin", "/admin", true},
		{"/api%5Cadmin", "/api/admin", true},
		{"/a%20b", "/a%20b", true},
		{"/a%3fb", "/a%3Fb", true},
		{"/a%252e%252e/admin", "/a%252e%252e/admin", true}, // decoded once only
		{"/caf%c3%a9", "/caf%C3%A9", true},
		{"/%7Euser", "/~user", true},
		{"/a%zz", "", false},
		{"/a%2", "", false},
		{"/a%", "", false},
		// backslashes
		{"\\admin", "/admin", true},
		{"/public\\..\\admin", "/admin", true},
		// fragments
		{"/admin#x", "/admin", true},
		{"/public#/../admin", "/public", true},
		{"#", "/", true},
	}
	for _, tt := range tests {
		got, ok := Normalize(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Normalize(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestNormalPathDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { Normalize("/api/v1/users/42/.well-known") }); n != 0 {
		t.Errorf("Normalize of a normal path allocates %v times", n)
	}
}

// FuzzNormalize checks the invariants of Normalize on arbitrary input:
// the result is normal (idempotent, rooted, without empty or dot segments,
// backslashes or fragments) and never escapes the root.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"/", "//admin", "/%2e%2e/admin", "/a%2Fb", "\\admin", "/a#b", "/a/./b/../c", "/%zz", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, ok := Normalize(in)
		if !ok {
			return
		}
		if out == "*" {
			if in != "*" {
				t.Fatalf("Normalize(%q) = %q", in, out)
			}
			return
		}
		again, ok := Normalize(out)
		if !ok || again != out {
			t.Fatalf("not idempotent: Normalize(%q) = %q, Normalize(%q) = %q, %v", in, out, out, again, ok)
		}
		if !strings.HasPrefix(out, "/") || strings.Contains(out, "//") || strings.ContainsAny(out, "\\#") {
			t.Fatalf("Normalize(%q) = %q is not normal", in, out)
		}
		for _, seg := range strings.Split(out, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("Normalize(%q) = %q keeps a dot segment", in, out)
			}
			if l := strings.ToLower(seg); strings.Contains(l, "%2f") || strings.Contains(l, "%5c") || strings.Contains(l, "%2e") {
				t.Fatalf("Normalize(%q) = %q keeps an encoded separator or dot", in, out)
			}
		}
	})
}
