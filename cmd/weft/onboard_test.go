package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/weft-mesh/weft/inject/membership"
)

// run executes the weft command line args with stdin and returns stdout,
// stderr and the error.
func run(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestInjectCommand(t *testing.T) {
	pod := "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec: {containers: [{name: web, image: web}]}\n"
	out, report, err := run(t, pod, "inject", "--proxy-image", "registry.example/weft:1.2", "--sidecar-mode", "classic")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "image: registry.example/weft:1.2") || strings.Contains(out, "restartPolicy: Always") {
		t.Errorf("flags not applied:\n%s", out)
	}
	if report != "Pod/web: injected\n" {
		t.Errorf("report %q", report)
	}
	if _, _, err := run(t, pod, "inject", "--sidecar-mode", "sideways"); err == nil || !strings.Contains(err.Error(), `sidecar mode "sideways"`) {
		t.Errorf("bad flag: %v", err)
	}
}

func TestRedirectDryRun(t *testing.T) {
	out, _, err := run(t, "", "redirect", "--dry-run", "--proxy-uid", "5678", "--inbound-port", "20000", "--exclude-outbound-ports", "8500")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-A WEFT_OUTPUT -p tcp --dport 8500 -j RETURN", "--to-ports 15001", "--to-ports 20000"} {
		if !strings.Contains(out, want) {
			t.Errorf("rules lack %q:\n%s", want, out)
		}
	}
	if _, _, err := run(t, "", "redirect", "--dry-run", "--proxy-uid", "5678", "--exclude-inbound-ports", "ssh"); err == nil {
		t.Error("--exclude-inbound-ports ssh: no error")
	}
}

func TestRegisterFlags(t *testing.T) {
	tests := []struct {
		name       string
		f          registerFlags
		wantChecks []membership.Check
		wantApp    string
		wantErr    string
	}{
		{name: "default TCP check on the app", f: registerFlags{reg: membership.Registration{Name: "web", Port: 8080}},
			wantChecks: []membership.Check{{TCP: "127.0.0.1:8080", Interval: 10 * time.Second}}},
		{name: "HTTP check", f: registerFlags{reg: membership.Registration{Name: "web", Address: "10.0.0.5", Port: 8080}, checkHTTP: "http://10.0.0.5:8080/healthz"},
			wantChecks: []membership.Check{{HTTP: "http://10.0.0.5:8080/healthz", Interval: 10 * time.Second}}},
		{name: "no check", f: registerFlags{reg: membership.Registration{Name: "web", Port: 8080}, noCheck: true}},
		{name: "wait checks the app itself", f: registerFlags{reg: membership.Registration{Name: "web", Port: 8080}, wait: true}, wantApp: "127.0.0.1:8080"},
		{name: "bad meta", f: registerFlags{reg: membership.Registration{Name: "web"}, meta: []string{"novalue"}}, wantErr: `--meta "novalue"`},
		{name: "bad upstreams", f: registerFlags{reg: membership.Registration{Name: "web"}, upstreams: "api"}, wantErr: "--upstreams"},
		{name: "mesh gateway: a TCP check of its port", f: registerFlags{reg: membership.Registration{Name: "mesh-gateway", Gateway: "mesh", Port: 8443}},
			wantChecks: []membership.Check{{TCP: "127.0.0.1:8443", Interval: 10 * time.Second}}},
		{name: "mesh gateway with upstreams", f: registerFlags{reg: membership.Registration{Name: "mesh-gateway", Gateway: "mesh", Port: 8443}, upstreams: "api:9191"},
			wantErr: "gateway: a gateway has no sidecar, upstreams"},
		{name: "mesh gateway without port", f: registerFlags{reg: membership.Registration{Name: "mesh-gateway", Gateway: "mesh"}}, wantErr: "gateway: needs --port"},
		{name: "unknown gateway kind", f: registerFlags{reg: membership.Registration{Name: "gw", Gateway: "edge", Port: 80}}, wantErr: `gateway "edge": want "mesh", "ingress", "terminating" or "api"`},
		{name: "API gateway: no check, its ports are the entry's", f: registerFlags{reg: membership.Registration{Name: "my-gateway", Gateway: "api", Port: 8443}}},
		{name: "terminating gateway: a TCP check of its port", f: registerFlags{reg: membership.Registration{Name: "tgw", Gateway: "terminating", Port: 8443}},
			wantChecks: []membership.Check{{TCP: "127.0.0.1:8443", Interval: 10 * time.Second}}},
		{name: "terminating gateway without port", f: registerFlags{reg: membership.Registration{Name: "tgw", Gateway: "terminating"}}, wantErr: "gateway: needs --port"},
		{name: "terminating gateway with a WAN address", f: registerFlags{reg: membership.Registration{Name: "tgw", Gateway: "terminating", Port: 80, WANAddress: "10.0.0.1:443"}},
			wantErr: "only a mesh gateway has a WAN address, not a terminating gateway"},
		{name: "ingress gateway: no check, its ports are the entry's", f: registerFlags{reg: membership.Registration{Name: "ingress", Gateway: "ingress", Port: 8080}}},
		{name: "bad WAN address", f: registerFlags{reg: membership.Registration{Name: "gw", Gateway: "mesh", Port: 80, WANAddress: "10.0.0.1"}}, wantErr: `wan address "10.0.0.1": want HOST:PORT`},
		{name: "short reap", f: registerFlags{reg: membership.Registration{Name: "web"}, wait: true, keeper: membership.Keeper{DeregisterAfter: time.Second}}, wantErr: "--deregister-after 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			f.checkInterval = 10 * time.Second
			if f.keeper.DeregisterAfter == 0 {
				f.keeper.DeregisterAfter = time.Minute
			}
			err := f.complete()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantChecks, f.reg.Checks); diff != "" {
				t.Errorf("checks (-want +got):\n%s", diff)
			}
			if f.keeper.AppAddr != tt.wantApp {
				t.Errorf("app addr %q, want %q", f.keeper.AppAddr, tt.wantApp)
			}
		})
	}
}
