package inject

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestManifestsGolden pins weft inject's output for each testdata/*.yaml in
// testdata/*.golden, and checks that injecting the output again changes
// nothing. Run with -update after an intended change.
func TestManifestsGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			got := runManifests(t, src)
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("weft inject < %s (-want +got):\n%s", in, diff)
			}
			if diff := cmp.Diff(string(got), string(runManifests(t, got))); diff != "" {
				t.Errorf("injecting twice changed the output (-once +twice):\n%s", diff)
			}
		})
	}
}

func runManifests(t *testing.T, src []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	if _, err := Manifests(bytes.NewReader(src), &out, DefaultConfig()); err != nil {
		t.Fatalf("Manifests: %v", err)
	}
	return out.Bytes()
}

func TestManifestsReport(t *testing.T) {
	src, err := os.ReadFile("testdata/multi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	results, err := Manifests(bytes.NewReader(src), &bytes.Buffer{}, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range results {
		got = append(got, r.Kind+"/"+r.Name+": "+r.String())
	}
	want := []string{
		"Deployment/api: injected",
		`Deployment/legacy: skipped: opted out (weft.io/inject: "false")`,
		"DaemonSet/node-agent: skipped: host network",
		"CronJob/cleanup: injected",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
}

func TestManifestsErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"unknown field", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containerz: []}\n", `document 1: Pod "p": error unmarshaling JSON`},
		{"bad annotation", "kind: Pod\nmetadata:\n  name: p\n  annotations: {weft.io/upstreams: api}\nspec: {containers: [{name: a, image: a}]}\n",
			`document 1: Pod "p": annotation weft.io/upstreams "api": upstream "api": want SERVICE:PORT`},
		{"no containers", "kind: Pod\nmetadata: {name: p}\nspec: {}\n", `document 1: Pod "p": pod has no containers`},
		{"not yaml", "kind: [", "document 1: error converting YAML to JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Manifests(strings.NewReader(tt.doc), &bytes.Buffer{}, DefaultConfig())
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %v, want prefix %q", err, tt.want)
			}
		})
	}
}
