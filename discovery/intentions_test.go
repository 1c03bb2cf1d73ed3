package discovery

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/internal/consultest"
)

func TestConsulIntentions(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a Consul agent")
	}
	srv := consultest.Start(t)
	client := srv.Client()
	w := startWatcher(t, fastConfig(Config{Client: client}))
	first := waitSnapshot(t, w, "first snapshot", func(*catalog.Snapshot) bool { return true })
	if first.ACLDefaultPolicy != catalog.ActionAllow {
		t.Fatalf("ACL default policy of a dev agent = %q, want allow (ACLs off)", first.ACLDefaultPolicy)
	}

	setEntry(t, client, &api.ServiceConfigEntry{Kind: api.ServiceDefaults, Name: "api", Protocol: "http"})
	setEntry(t, client, &api.ServiceIntentionsConfigEntry{Kind: api.ServiceIntentions, Name: "api", Sources: []*api.SourceIntention{
		{Name: "web", Permissions: []*api.IntentionPermission{
			{Action: api.IntentionActionDeny, HTTP: &api.IntentionHTTPPermission{PathPrefix: "/admin"}},
			{Action: api.IntentionActionAllow, HTTP: &api.IntentionHTTPPermission{PathPrefix: "/", Methods: []string{"GET"},
				Header: []api.IntentionHTTPHeaderPermission{{Name: "x-env", Exact: "prod"}}}},
		}},
		{Name: "*", Action: api.IntentionActionDeny},
	}})
	got := waitSnapshot(t, w, "intentions of api", func(s *catalog.Snapshot) bool { return len(s.Intentions["api"]) == 2 })
	want := []catalog.Intention{
		{Source: "web", Destination: "api", Precedence: 9, Permissions: []catalog.IntentionPermission{
			{Action: "deny", HTTP: &catalog.IntentionHTTPMatch{PathPrefix: "/admin"}},
			{Action: "allow", HTTP: &catalog.IntentionHTTPMatch{PathPrefix: "/", Methods: []string{"GET"},
				Headers: []catalog.IntentionHTTPHeader{{Name: "x-env", Exact: "prod"}}}},
		}},
		{Source: "*", Destination: "api", Action: "deny", Precedence: 8},
	}
	if diff := cmp.Diff(want, got.Intentions["api"]); diff != "" {
		t.Fatalf("intentions of api (-want +got):\n%s", diff)
	}

	if _, err := client.ConfigEntries().Delete(api.ServiceIntentions, "api", nil); err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, w, "intentions deleted", func(s *catalog.Snapshot) bool { return len(s.Intentions["api"]) == 0 })
}
