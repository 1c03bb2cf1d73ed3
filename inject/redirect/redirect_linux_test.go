package redirect

import (
	"context"
	"strings"
	"testing"
)

// TestRedirectInNetworkNamespaces installs the rules, for real, in a
// "pod" network namespace joined to a "peer" namespace by a veth pair, and
// checks where plain connections land: redirected ones at the proxy's
// listeners, which recover the original destination with SO_ORIGINAL_DST;
// exempt ones (the proxy's user, excluded ports, loopback) where they were
// headed. It needs root, ip and iptables; it skips only without root or
// network-namespace support.
func TestRedirectInNetworkNamespaces(t *testing.T) {
	n := newNetPair(t)
	cfg := Config{ProxyUID: "5678", OutboundPort: 15001, InboundPort: 15006,
		ExcludeOutboundPorts: []int{8500}, ExcludeInboundPorts: []int{19000}}
	ipt := Iptables{Prefix: []string{"ip", "netns", "exec", n.pod}}
	ctx := context.Background()

	// The pod's proxy listeners and a loopback-only and an excluded service.
	listen(t, n.pod, "0.0.0.0:15001", "proxy-outbound")
	listen(t, n.pod, "0.0.0.0:15006", "proxy-inbound")
	listen(t, n.pod, "0.0.0.0:19000", "pod-admin")
	listen(t, n.pod, "127.0.0.1:7000", "pod-local")
	// The peer's services.
	listen(t, n.peer, n.peerIP+":9000", "peer-app")
	listen(t, n.peer, n.peerIP+":8500", "peer-consul")

	if err := ipt.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := ipt.Apply(ctx, cfg); err != nil { // an init container run twice
		t.Fatal(err)
	}
	installed, err := ipt.Installed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(installed, "-A PREROUTING"); got != 1 {
		t.Errorf("after applying twice, %d PREROUTING jumps, want 1:\n%s", got, installed)
	}

	peer := func(port string) string { return n.peerIP + ":" + port }
	pod := func(port string) string { return n.podIP + ":" + port }
	tests := []struct {
		name, from string
		uid        int
		to, want   string
	}{
		{"outbound TCP goes to the proxy", n.pod, 0, peer("9000"), "proxy-outbound " + peer("9000")},
		{"the proxy's own traffic goes out", n.pod, 5678, peer("9000"), "peer-app " + peer("9000")},
		{"other users are redirected", n.pod, 1000, peer("9000"), "proxy-outbound " + peer("9000")},
		{"excluded outbound port goes out", n.pod, 0, peer("8500"), "peer-consul " + peer("8500")},
		{"loopback stays local", n.pod, 0, "127.0.0.1:7000", "pod-local 127.0.0.1:7000"},
		{"inbound TCP goes to the proxy", n.peer, 0, pod("8080"), "proxy-inbound " + pod("8080")},
		{"excluded inbound port reaches the app", n.peer, 0, pod("19000"), "pod-admin " + pod("19000")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dial(tt.from, tt.uid, tt.to)
			if err != nil {
				t.Fatalf("dial %s from %s as %d: %v", tt.to, tt.from, tt.uid, err)
			}
			if got != tt.want {
				t.Errorf("dial %s from %s as uid %d: answered %q, want %q", tt.to, tt.from, tt.uid, got, tt.want)
			}
		})
	}

	if err := ipt.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := dial(n.pod, 0, peer("9000")); err != nil || got != "peer-app "+peer("9000") {
		t.Errorf("after Remove: answered %q, %v; want the peer's app", got, err)
	}
}
