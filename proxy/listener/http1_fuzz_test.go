package listener

import (
	"bytes"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzHTTP1Server sends arbitrary bytes to the lean HTTP/1.1 server and
// to net/http's, with the same handler and settings (the differential
// test's), and checks what the handler sees (RELIABILITY #12, #16):
//
//   - the lean server's handler never sees a request net/http's did not:
//     the requests it sees are the first of those net/http's saw, the
//     same ones;
//   - for input without both Content-Length and Transfer-Encoding (the
//     intended difference: the lean server refuses such a request and
//     closes), it sees all of them, and the client gets the same bytes.
//
// Inputs longer than the servers' 4 KiB header limit are compared no
// further than the first rule: net/http applies its header read bound to
// what it reads ahead as well, so it may refuse with 431 a request the
// lean server reads whole.
func FuzzHTTP1Server(f *testing.F) {
	for _, c := range http1Corpus {
		f.Add([]byte(c.raw))
	}
	var leanLog, stdLog requestLog
	lean := startLeanServer(f, testServerSettings(diffHandler(&leanLog)))
	std := startNetHTTPServer(f, testServerSettings(diffHandler(&stdLog)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		gotLean := normalizeResponses(exchangeRaw(t, lean.addr, raw))
		seenLean := leanLog.take()
		gotStd := normalizeResponses(exchangeRaw(t, std, raw))
		seenStd := stdLog.take()
		if len(seenLean) > len(seenStd) {
			t.Fatalf("the lean server's handler saw %d requests, net/http's %d:\n%s", len(seenLean), len(seenStd), cmp.Diff(seenStd, seenLean))
		}
		if diff := cmp.Diff(seenStd[:len(seenLean)], seenLean, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("requests the handler saw (-net/http +lean):\n%s", diff)
		}
		if len(raw) > 4<<10 || hasLengthAndCoding(raw) {
			return
		}
		if len(seenLean) != len(seenStd) {
			t.Fatalf("the lean server's handler saw %d requests, net/http's %d", len(seenLean), len(seenStd))
		}
		if diff := cmp.Diff(gotStd, gotLean); diff != "" {
			t.Fatalf("bytes the client got (-net/http +lean):\n%s", diff)
		}
	})
}

// hasLengthAndCoding reports whether raw names both Content-Length and
// Transfer-Encoding anywhere, in any case: input that may hold a request
// the lean server refuses on purpose.
func hasLengthAndCoding(raw []byte) bool {
	lower := bytes.ToLower(raw)
	return bytes.Contains(lower, []byte("content-length")) && bytes.Contains(lower, []byte("transfer-encoding"))
}
