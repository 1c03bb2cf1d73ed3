package translate

import (
	"encoding/json"
	"testing"

	"github.com/weft-mesh/weft/catalog"
)

// FuzzTranslate feeds catalog snapshots, decoded from JSON, to Translate.
// Whatever Consul holds, translation must not panic, and every resource it
// returns must pass ValidateAll: a part it cannot translate is left out
// and reported in Problems, never published broken. The seeds are the
// golden cases, so `go test` runs them as regression tests.
func FuzzTranslate(f *testing.F) {
	for _, tt := range allGoldenCases() {
		seed, err := json.Marshal(tt.snap)
		if err != nil {
			f.Fatalf("%s: %v", tt.name, err)
		}
		f.Add(seed, tt.mesh.DefaultPolicy == "deny")
	}
	f.Fuzz(func(t *testing.T, data []byte, deny bool) {
		var snap catalog.Snapshot
		if err := json.Unmarshal(data, &snap); err != nil {
			t.Skip()
		}
		mesh := testMesh
		if deny {
			mesh.DefaultPolicy = "deny"
		}
		for id, res := range Translate(&snap, mesh).Proxies {
			for _, r := range resourcesOf(res) {
				if err := r.ValidateAll(); err != nil {
					t.Fatalf("proxy %s: invalid resource published: %v", id, err)
				}
			}
		}
	})
}

type validator interface{ ValidateAll() error }

func resourcesOf(r *Resources) []validator {
	var all []validator
	for _, l := range r.Listeners {
		all = append(all, l)
	}
	for _, c := range r.Clusters {
		all = append(all, c)
	}
	for _, e := range r.Endpoints {
		all = append(all, e)
	}
	for _, rc := range r.Routes {
		all = append(all, rc)
	}
	for _, s := range r.Secrets {
		all = append(all, s)
	}
	return all
}

// FuzzTranslator feeds a Translator two catalog snapshots, decoded from
// JSON, one after the other: its translation of the second must equal a
// full translation of it, whatever changed in between. The seeds are
// consecutive golden cases.
func FuzzTranslator(f *testing.F) {
	cases := allGoldenCases()
	for i := range cases {
		from, err := json.Marshal(cases[i].snap)
		if err != nil {
			f.Fatal(err)
		}
		to, err := json.Marshal(cases[(i+1)%len(cases)].snap)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(from, to)
	}
	f.Fuzz(func(t *testing.T, from, to []byte) {
		var a, b catalog.Snapshot
		if json.Unmarshal(from, &a) != nil || json.Unmarshal(to, &b) != nil {
			t.Skip()
		}
		x := newCheckedTranslator(t)
		x.Translate(&a, testMesh)
		assertSameTranslation(t, "second snapshot", x.Translate(&b, testMesh), &b, testMesh)
	})
}
