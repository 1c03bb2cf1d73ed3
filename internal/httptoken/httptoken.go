// Package httptoken holds net/http's rule for finding a token in an
// HTTP/1.x field value (Connection: close, Expect: 100-continue), which
// the lean HTTP/1.1 server and client both follow, so that they decide
// as net/http's server and client do.
package httptoken

import "strings"

// Contains reports whether token is one of v's comma- or space-separated
// tokens, case-insensitively. token must be lower-case ASCII.
func Contains(v, token string) bool {
	if len(token) > len(v) || token == "" {
		return false
	}
	if v == token {
		return true
	}
	for sp := 0; sp <= len(v)-len(token); sp++ {
		if b := v[sp]; b != token[0] && b|0x20 != token[0] {
			continue
		}
		if sp > 0 && !isBoundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !isBoundary(v[end]) {
			continue
		}
		if strings.EqualFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

func isBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }
