package translate

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/catalog"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenCase is a catalog whose translation is pinned in
// testdata/<name>.golden.json.
type goldenCase struct {
	name string
	snap *catalog.Snapshot
	mesh Mesh
}

func allGoldenCases() []goldenCase {
	return slices.Concat(baseCases(), l7Cases(), transparentCases(), peeringCases(), ingressCases(), terminatingCases(), apiGatewayCases())
}

func TestTranslateGolden(t *testing.T) {
	for _, tt := range allGoldenCases() {
		t.Run(tt.name, func(t *testing.T) {
			got := render(t, Translate(tt.snap, tt.mesh))
			path := filepath.Join("testdata", tt.name+".golden.json")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("translation of %s differs from %s (-want +got):\n%s", tt.name, path, diff)
			}
		})
	}
}

// render prints a result as stable, indented JSON: protojson's own output
// is deliberately unstable, so it is re-encoded through encoding/json.
func render(t *testing.T, res *Result) string {
	t.Helper()
	out := map[string]any{}
	for id, r := range res.Proxies {
		out[id] = map[string]any{
			"listeners": protosJSON(t, r.Listeners),
			"clusters":  protosJSON(t, r.Clusters),
			"endpoints": protosJSON(t, r.Endpoints),
			"routes":    protosJSON(t, r.Routes),
			"secrets":   protosJSON(t, r.Secrets),
		}
	}
	problems := map[string][]string{}
	for id, errs := range res.Problems {
		for _, e := range errs {
			problems[id] = append(problems[id], e.Error())
		}
	}
	out["problems"] = problems
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

func protosJSON[T proto.Message](t *testing.T, ms []T) []any {
	t.Helper()
	out := []any{}
	for _, m := range ms {
		b, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func allResources(r *Resources) []proto.Message {
	var out []proto.Message
	for _, m := range r.Listeners {
		out = append(out, m)
	}
	for _, m := range r.Clusters {
		out = append(out, m)
	}
	for _, m := range r.Endpoints {
		out = append(out, m)
	}
	for _, m := range r.Routes {
		out = append(out, m)
	}
	for _, m := range r.Secrets {
		out = append(out, m)
	}
	return out
}
