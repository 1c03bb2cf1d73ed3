// Package urlpath normalizes HTTP request paths before they are
// authorized, routed and forwarded, so that a path deny cannot be
// bypassed by another spelling of the same path (RELIABILITY #9).
package urlpath

import "strings"

// Normalize returns the normalized form of an escaped request path (the
// request target without its query) and whether it is well-formed:
//
//   - a fragment ("#...") is dropped;
//   - "\" becomes "/";
//   - percent-encoded unreserved characters (ALPHA DIGIT "-" "." "_" "~")
//     are decoded, as are "%2F" and "%5C", which become "/"; other
//     percent-encodings are kept, upper-cased; a malformed one makes the
//     path invalid;
//   - runs of "/" are merged;
//   - "." and ".." segments are removed (RFC 3986 section 5.2.4); ".."
//     above the root stays at the root.
//
// The result starts with "/" (except "*", which is returned as is). A path
// that is already normal is returned without allocating. Normalize is
// idempotent: Normalize(Normalize(p)) == Normalize(p).
func Normalize(p string) (string, bool) {
	if p == "*" {
		return p, true
	}
	if isNormal(p) {
		return p, true
	}
	decoded, ok := decode(p)
	if !ok {
		return "", false
	}
	return removeDots(decoded), true
}

// isNormal reports whether p needs no work: it starts with "/" and has no
// fragment, backslash, percent sign, empty segment or dot segment.
func isNormal(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '#', '\\', '%':
			return false
		case '/':
			if i+1 < len(p) && p[i+1] == '/' {
				return false
			}
			if isDotSegment(p[i+1:]) {
				return false
			}
		}
	}
	return true
}

// isDotSegment reports whether rest (what follows a "/") starts with a
// "." or ".." segment.
func isDotSegment(rest string) bool {
	seg := rest
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		seg = rest[:i]
	}
	return seg == "." || seg == ".."
}

// decode drops the fragment, turns separators into "/" and decodes what
// may be decoded. It reports false for a malformed percent-encoding.
func decode(p string) (string, bool) {
	if i := strings.IndexByte(p, '#'); i >= 0 {
		p = p[:i]
	}
	var b strings.Builder
	b.Grow(len(p) + 1)
	if p == "" || (p[0] != '/' && p[0] != '\\') {
		b.WriteByte('/')
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch c {
		case '\\':
			b.WriteByte('/')
		case '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", false
			}
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			switch {
			case v == '/' || v == '\\':
				b.WriteByte('/')
			case isUnreserved(v):
				b.WriteByte(v)
			default:
				b.WriteByte('%')
				b.WriteByte(upperHex[v>>4])
				b.WriteByte(upperHex[v&15])
			}
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// removeDots merges empty segments and removes dot segments of a path that
// starts with "/". A path ending in "/", "/." or "/.." keeps a trailing
// "/", as in RFC 3986.
func removeDots(p string) string {
	segs := make([]string, 0, strings.Count(p, "/"))
	trailing := false
	for _, seg := range strings.Split(p[1:], "/") {
		trailing = false
		switch seg {
		case "":
			trailing = true
		case ".":
			trailing = true
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
			trailing = true
		default:
			segs = append(segs, seg)
		}
	}
	out := "/" + strings.Join(segs, "/")
	if trailing && len(segs) > 0 {
		out += "/"
	}
	return out
}

const upperHex = "0123456789ABCDEF"

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
