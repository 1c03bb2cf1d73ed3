package catalog

import (
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDiffCoversEverySnapshotField fails when Snapshot gains a field that
// Diff does not name, or Compare does not compare: for every field, two
// snapshots that differ only in it must differ only in the Diff field of
// the same name.
func TestDiffCoversEverySnapshotField(t *testing.T) {
	snapType, diffType := reflect.TypeFor[Snapshot](), reflect.TypeFor[Diff]()
	var snapFields, diffFields []string
	for f := range snapType.Fields() {
		snapFields = append(snapFields, f.Name)
	}
	for f := range diffType.Fields() {
		diffFields = append(diffFields, f.Name)
	}
	if !slices.Equal(snapFields, diffFields) {
		t.Fatalf("Diff's fields %v are not Snapshot's %v: give Diff a field per Snapshot field and compare it in Compare", diffFields, snapFields)
	}
	for f := range snapType.Fields() {
		t.Run(f.Name, func(t *testing.T) {
			a, b := &Snapshot{}, &Snapshot{}
			setNonZero(t, reflect.ValueOf(b).Elem().FieldByIndex(f.Index))
			d := Compare(a, b)
			for g := range diffType.Fields() {
				v := reflect.ValueOf(d).FieldByIndex(g.Index)
				if differs := !v.IsZero(); differs != (g.Name == f.Name) {
					t.Errorf("snapshots differing only in %s: Diff.%s = %+v", f.Name, g.Name, v)
				}
			}
			if d.SameMesh() != (f.Name == "Version") {
				t.Errorf("snapshots differing only in %s: SameMesh() = %v", f.Name, d.SameMesh())
			}
			if d := Compare(b, b); !reflect.ValueOf(d).IsZero() {
				t.Errorf("a snapshot compared with itself differs: %+v", d)
			}
		})
	}
}

// setNonZero sets v, a zero Snapshot field, to a value that is not zero.
func setNonZero(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint64:
		v.SetUint(1)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("k"), reflect.Zero(v.Type().Elem()))
		v.Set(m)
	default:
		t.Fatalf("setNonZero: teach the test to set a %s", v.Type())
	}
}

func TestCompare(t *testing.T) {
	proxy := &Proxy{ID: "api-1", Port: 21000}
	eps := []Endpoint{{ProxyID: "api-1", Health: HealthPassing}}
	base := func() *Snapshot {
		return &Snapshot{
			Version:    1,
			Datacenter: "dc1",
			Proxies:    map[string]*Proxy{"api-1": proxy},
			Endpoints:  map[string][]Endpoint{"api": eps},
		}
	}
	tests := []struct {
		name   string
		modify func(*Snapshot)
		want   Diff
	}{
		{"identical", func(*Snapshot) {}, Diff{}},
		{"an equal proxy re-registered", func(s *Snapshot) {
			p := *proxy
			s.Proxies["api-1"] = &p
		}, Diff{}},
		{"an equal instance list re-read", func(s *Snapshot) {
			s.Endpoints["api"] = slices.Clone(eps)
		}, Diff{}},
		{"a proxy moved", func(s *Snapshot) {
			p := *proxy
			p.Port++
			s.Proxies["api-1"] = &p
		}, Diff{Proxies: KeyDiff{Changed: []string{"api-1"}}}},
		{"health changed", func(s *Snapshot) {
			s.Endpoints["api"] = []Endpoint{{ProxyID: "api-1", Health: HealthCritical}}
		}, Diff{Endpoints: KeyDiff{Changed: []string{"api"}}}},
		{"a service without instances listed", func(s *Snapshot) {
			s.Endpoints["web"] = nil
		}, Diff{Endpoints: KeyDiff{Changed: []string{"web"}, KeysChanged: true}}},
		{"a service gone", func(s *Snapshot) {
			delete(s.Endpoints, "api")
		}, Diff{Endpoints: KeyDiff{Changed: []string{"api"}, KeysChanged: true}}},
		{"only the version", func(s *Snapshot) { s.Version++ }, Diff{Version: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := base()
			tt.modify(b)
			if diff := cmp.Diff(tt.want, Compare(base(), b)); diff != "" {
				t.Errorf("Compare (-want +got):\n%s", diff)
			}
		})
	}
}
