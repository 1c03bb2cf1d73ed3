package translate

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/catalog"
)

// TestEntryNotesAreProxyProblems checks that what a config entry sets but
// Weft does not apply is a problem of every proxy it concerns, and of no
// other, marked as an EntryNotApplied; and that the incremental
// translator follows a change of the notes alone.
func TestEntryNotesAreProxyProblems(t *testing.T) {
	api := webProxy()
	api.ID, api.Name, api.DestinationName, api.DestinationID, api.Port = "api-1-sidecar-proxy", "api-sidecar-proxy", "api", "api-1", 21001
	snap := &catalog.Snapshot{
		Datacenter: "dc1",
		Proxies:    map[string]*catalog.Proxy{"web-1-sidecar-proxy": webProxy(), "api-1-sidecar-proxy": api},
		ServiceDefaults: map[string]*catalog.ServiceDefaults{"api": {Name: "api",
			Unsupported: []string{`MaxInboundConnections = "10"`}, ModifyIndex: 7}},
		ProxyDefaults: &catalog.ProxyDefaults{Unsupported: []string{`Config.envoy_tracing_json = "{}" (an Envoy escape hatch; weft-proxy is not Envoy)`}},
		Mesh:          &catalog.Mesh{Unsupported: []string{`HTTP.SanitizeXForwardedClientCert = "true"`}},
		IntentionsNotApplied: map[string]*catalog.EntryNote{"api": {Kind: catalog.KindServiceIntentions, Name: "api",
			Fields: []string{`Sources[0] ("web") is outside this mesh's trust domain and not enforced: Peer = "dc2"`}}},
		ExportedServices: &catalog.EntryNote{Kind: catalog.KindExportedServices, Name: "default", Fields: []string{`Services[0] = "api to peer dc2"`}},
	}
	shared := []string{
		`proxy-defaults: not supported and left out: Config.envoy_tracing_json = "{}" (an Envoy escape hatch; weft-proxy is not Envoy)`,
		`mesh: not supported and left out: HTTP.SanitizeXForwardedClientCert = "true"`,
	}
	want := map[string][]string{
		"web-1-sidecar-proxy": prefixed("web-1-sidecar-proxy", shared...),
		"api-1-sidecar-proxy": prefixed("api-1-sidecar-proxy", append([]string{
			`service-defaults "api": not supported and left out: MaxInboundConnections = "10"`}, append(shared,
			`service-intentions "api": not supported and left out: Sources[0] ("web") is outside this mesh's trust domain and not enforced: Peer = "dc2"`)...)...),
	}
	x := NewTranslator()
	check := func(res *Result, want map[string][]string) {
		t.Helper()
		got := map[string][]string{}
		for id, errs := range res.Problems {
			for _, err := range errs {
				var na *EntryNotApplied
				if !errors.As(err, &na) {
					t.Errorf("proxy %s: problem %q is not an EntryNotApplied", id, err)
				}
				got[id] = append(got[id], err.Error())
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("problems (-want +got):\n%s", diff)
		}
	}
	check(x.Translate(snap, Mesh{}), want)

	next := *snap
	next.Version = 2
	next.IntentionsNotApplied = nil
	want["api-1-sidecar-proxy"] = want["api-1-sidecar-proxy"][:3]
	check(x.Translate(&next, Mesh{}), want)
}

func prefixed(id string, msgs ...string) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = `proxy "` + id + `": ` + m
	}
	return out
}
