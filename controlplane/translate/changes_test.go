package translate

import (
	"reflect"
	"testing"

	"github.com/weft-mesh/weft/catalog"
)

// TestChangedInputsCoverEveryDiffField fails when catalog.Diff gains a
// field (catalog's tests make it follow Snapshot) that neither
// changedInputs nor Translate handles: every field but those Translate
// handles itself must change some input.
func TestChangedInputsCoverEveryDiffField(t *testing.T) {
	handledByTranslate := map[string]string{
		"Version":    "ignored: it orders snapshots, resources do not depend on it",
		"Datacenter": "another datacenter is a full translation",
		"DNSDomains": "other DNS domains are a full translation",
		"Proxies":    "a changed registration's proxy is translated again",
		// The control plane logs it (catalog.Snapshot.NotApplied).
		"ExportedServices": "ignored: Weft does not peer, no proxy's resources depend on it",
	}
	for f := range reflect.TypeFor[catalog.Diff]().Fields() {
		var d catalog.Diff
		switch v := reflect.ValueOf(&d).Elem().FieldByIndex(f.Index); v.Interface().(type) {
		case bool:
			v.SetBool(true)
		case catalog.KeyDiff:
			v.Set(reflect.ValueOf(catalog.KeyDiff{Changed: []string{"x"}, KeysChanged: true}))
		default:
			t.Fatalf("catalog.Diff.%s is a %s: teach this test to set it", f.Name, f.Type)
		}
		got := changedInputs(d)
		_, elsewhere := handledByTranslate[f.Name]
		switch {
		case elsewhere && len(got) > 0:
			t.Errorf("catalog.Diff.%s changed inputs %v, want none (Translate handles it)", f.Name, got)
		case !elsewhere && len(got) == 0:
			t.Errorf("catalog.Diff.%s changed no input: make changedInputs or Translate handle it", f.Name)
		}
	}
}
