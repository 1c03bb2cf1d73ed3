package controlplane

import (
	"crypto/x509"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/certs"
)

// rotationServer is a Server with what a rotation step reads: proxies'
// ACKed and published trust-bundle versions and the roots of their leaves.
func rotationServer(t *testing.T, acked, published, leafRoots map[string]string) *Server {
	t.Helper()
	s := &Server{
		status:    newStatusTracker(slog.New(slog.DiscardHandler), nil, nil),
		publisher: newPublisher(nil, slog.New(slog.DiscardHandler), nil),
		certs:     &certService{issued: leafRoots},
	}
	for id, v := range acked {
		s.status.proxies[id] = &ProxyStatus{Types: map[string]*TypeSync{resource.SecretType: {AckedVersion: v}}}
	}
	for id, v := range published {
		s.publisher.setSecretVersion(id, v)
	}
	return s
}

func TestRotationLaggards(t *testing.T) {
	root := &x509.Certificate{Raw: []byte("new root")}
	newRoot, oldRoot := certs.Fingerprint(root), "old-root-fingerprint"
	before := map[string]string{"a": "v1", "b": "v1", "c": "v1", "d": "v1"}
	s := rotationServer(t,
		map[string]string{"a": "v2", "b": "v1", "c": "v2", "d": ""},   // ACKed
		map[string]string{"a": "v2", "b": "v2", "c": "v2", "d": "v2"}, // published
		map[string]string{"a": newRoot, "b": newRoot, "c": oldRoot})
	for _, tc := range []struct {
		name  string
		got   func() []string
		limit int
		want  []string
	}{
		{"bundles, all", func() []string { return s.bundlesLagging(before, -1) }, -1, []string{"b (trust bundle)", "d (trust bundle)"}},
		{"bundles, the first", func() []string { return s.bundlesLagging(before, 1) }, 1, nil},
		{"leaves, all", func() []string { return s.leavesLagging(root, -1) }, -1, []string{"c (leaf)", "d (leaf)"}},
		{"leaves, none asked", func() []string { return s.leavesLagging(root, 0) }, 0, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.got()
			if tc.limit == 1 {
				// Any one laggard, whichever the walk meets first.
				if len(got) != 1 || !slices.Contains([]string{"b (trust bundle)", "d (trust bundle)"}, got[0]) {
					t.Errorf("got %q, want one of b's and d's bundles", got)
				}
				return
			}
			slices.Sort(got)
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b []string) bool { return slices.Equal(a, b) })); diff != "" {
				t.Errorf("laggards (-want +got):\n%s", diff)
			}
		})
	}

	up := rotationServer(t, map[string]string{"a": "v2"}, map[string]string{"a": "v2"}, nil)
	if lag := up.bundlesLagging(map[string]string{"a": "v1"}, 1); len(lag) != 0 {
		t.Errorf("a proxy that ACKed the new bundle lags: %q", lag)
	}
}

func TestLaggardsNamesAFewSorted(t *testing.T) {
	var lag []string
	for i := range 25 {
		lag = append(lag, fmt.Sprintf("p%02d (leaf)", 24-i))
	}
	got := laggards(lag)
	if !strings.HasPrefix(got, "[p00 (leaf) p01 (leaf)") || !strings.HasSuffix(got, "p19 (leaf)] and 5 more") {
		t.Errorf("laggards = %q, want the first 20 sorted and a count of the rest", got)
	}
	if got := laggards([]string{"b (leaf)", "a (leaf)"}); got != "[a (leaf) b (leaf)]" {
		t.Errorf("laggards = %q", got)
	}
}
