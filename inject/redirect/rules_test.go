package redirect

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRules(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"pod", Config{ProxyUID: "5678", OutboundPort: 15001, InboundPort: 20000,
			ExcludeOutboundPorts: []int{8500, 15010}, ExcludeInboundPorts: []int{19000, 20000}}, `*nat
:WEFT_INBOUND - [0:0]
:WEFT_IN_REDIRECT - [0:0]
:WEFT_OUTPUT - [0:0]
:WEFT_REDIRECT - [0:0]
-A WEFT_IN_REDIRECT -p tcp -j REDIRECT --to-ports 20000
-A WEFT_INBOUND -p tcp --dport 19000 -j RETURN
-A WEFT_INBOUND -p tcp --dport 20000 -j RETURN
-A WEFT_INBOUND -p tcp -j WEFT_IN_REDIRECT
-A PREROUTING -p tcp -j WEFT_INBOUND
-A WEFT_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A WEFT_OUTPUT -o lo -j RETURN
-A WEFT_OUTPUT -d 127.0.0.1/32 -j RETURN
-A WEFT_OUTPUT -m owner --uid-owner 5678 -j RETURN
-A WEFT_OUTPUT -p tcp --dport 8500 -j RETURN
-A WEFT_OUTPUT -p tcp --dport 15010 -j RETURN
-A WEFT_OUTPUT -j WEFT_REDIRECT
-A OUTPUT -p tcp -j WEFT_OUTPUT
COMMIT
`},
		{"VM: only the app's port inbound, the agent exempt", Config{ProxyUID: "weft", ExcludeUIDs: []string{"consul"},
			OutboundPort: 15001, InboundPort: 21000, InboundPorts: []int{8080}}, `*nat
:WEFT_INBOUND - [0:0]
:WEFT_IN_REDIRECT - [0:0]
:WEFT_OUTPUT - [0:0]
:WEFT_REDIRECT - [0:0]
-A WEFT_IN_REDIRECT -p tcp -j REDIRECT --to-ports 21000
-A WEFT_INBOUND -p tcp --dport 8080 -j WEFT_IN_REDIRECT
-A PREROUTING -p tcp -j WEFT_INBOUND
-A WEFT_REDIRECT -p tcp -j REDIRECT --to-ports 15001
-A WEFT_OUTPUT -o lo -j RETURN
-A WEFT_OUTPUT -d 127.0.0.1/32 -j RETURN
-A WEFT_OUTPUT -m owner --uid-owner weft -j RETURN
-A WEFT_OUTPUT -m owner --uid-owner consul -j RETURN
-A WEFT_OUTPUT -j WEFT_REDIRECT
-A OUTPUT -p tcp -j WEFT_OUTPUT
COMMIT
`},
		{"inbound only", Config{ProxyUID: "5678", InboundPort: 20000}, `*nat
:WEFT_INBOUND - [0:0]
:WEFT_IN_REDIRECT - [0:0]
:WEFT_OUTPUT - [0:0]
:WEFT_REDIRECT - [0:0]
-A WEFT_IN_REDIRECT -p tcp -j REDIRECT --to-ports 20000
-A WEFT_INBOUND -p tcp -j WEFT_IN_REDIRECT
-A PREROUTING -p tcp -j WEFT_INBOUND
COMMIT
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, tt.cfg.Rules()); diff != "" {
				t.Errorf("Rules() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{OutboundPort: 70000, ExcludeInboundPorts: []int{-1}}.Validate()
	want := []string{"proxy UID: empty", "outbound port 70000", "excluded inbound port -1"}
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate() = %v, want it to mention %q", err, w)
		}
	}
	if err := (Config{ProxyUID: "1"}).Validate(); err == nil || !strings.Contains(err.Error(), "nothing to redirect") {
		t.Errorf("no ports: %v", err)
	}
}
