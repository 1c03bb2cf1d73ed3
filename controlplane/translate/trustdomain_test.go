package translate

import (
	"maps"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/catalog"
)

// TestTrustDomainAliases: while a mesh moves to another trust domain,
// every place that checks a peer's identity accepts both: the public
// listener's client SAN prefixes, an upstream's server SANs and the
// intention principals. Without aliases only the mesh's own is accepted.
func TestTrustDomainAliases(t *testing.T) {
	tc := transparentCases()[1] // intentions, default deny
	snap := *tc.snap
	snap.Intentions = maps.Clone(snap.Intentions)
	snap.Intentions["web"] = []catalog.Intention{{Source: "api", Destination: "web", Action: catalog.ActionAllow}}
	tests := []struct {
		name    string
		aliases []string
		want    []string
		notWant []string
	}{
		{name: "none", want: []string{`"prefix":"spiffe://weft.local/"`, `"exact":"spiffe://weft.local/ns/default/dc/dc1/svc/api"`,
			`"regex":"^spiffe://weft\\.local/ns/default/dc/[^/]+/svc/api$"`}, notWant: []string{"other.consul"}},
		{name: "one alias", aliases: []string{"other.consul"}, want: []string{
			`"prefix":"spiffe://weft.local/"`, `"prefix":"spiffe://other.consul/"`,
			`"exact":"spiffe://weft.local/ns/default/dc/dc1/svc/api"`, `"exact":"spiffe://other.consul/ns/default/dc/dc1/svc/api"`,
			`"regex":"^spiffe://(?:weft\\.local|other\\.consul)/ns/default/dc/[^/]+/svc/api$"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mesh := tc.mesh
			mesh.TrustDomainAliases = tt.aliases
			res := Translate(&snap, mesh)
			var all strings.Builder
			for _, r := range res.Proxies {
				for _, group := range [][]proto.Message{asMessages(r.Listeners), asMessages(r.Clusters)} {
					for _, m := range group {
						b, err := protojson.MarshalOptions{Indent: ""}.Marshal(m)
						if err != nil {
							t.Fatal(err)
						}
						all.Write(b)
					}
				}
			}
			got := strings.ReplaceAll(all.String(), " ", "")
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("no %s in the resources", w)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("%s in the resources", w)
				}
			}
		})
	}
}

func asMessages[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}
