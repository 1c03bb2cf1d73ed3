package catalog

import (
	"cmp"
	"slices"
)

// Config-entry kinds, as Consul names them.
const (
	KindServiceDefaults    = "service-defaults"
	KindProxyDefaults      = "proxy-defaults"
	KindServiceResolver    = "service-resolver"
	KindServiceSplitter    = "service-splitter"
	KindServiceRouter      = "service-router"
	KindServiceIntentions  = "service-intentions"
	KindMesh               = "mesh"
	KindExportedServices   = "exported-services"
	ProxyDefaultsEntryName = "global"
	MeshEntryName          = "mesh"
)

// EntryNote names what one config entry sets that Weft does not apply.
type EntryNote struct {
	Kind        string // Consul's kind of the entry, e.g. KindServiceDefaults
	Name        string
	ModifyIndex uint64   // Consul's version of the entry
	Fields      []string // each naming the field, e.g. `MaxInboundConnections = "100"`
}

// NotApplied lists every config entry of the snapshot that sets something
// Weft does not apply, sorted by kind, then name. It is the one place that
// knows where each kind keeps its notes.
func (s *Snapshot) NotApplied() []EntryNote {
	var out []EntryNote
	add := func(kind, name string, index uint64, fields []string) {
		if len(fields) > 0 {
			out = append(out, EntryNote{Kind: kind, Name: name, ModifyIndex: index, Fields: fields})
		}
	}
	for name, e := range s.ServiceDefaults {
		add(KindServiceDefaults, name, e.ModifyIndex, e.Unsupported)
	}
	if e := s.ProxyDefaults; e != nil {
		add(KindProxyDefaults, ProxyDefaultsEntryName, e.ModifyIndex, e.Unsupported)
	}
	for name, e := range s.ServiceResolvers {
		add(KindServiceResolver, name, e.ModifyIndex, e.Unsupported)
	}
	for name, e := range s.ServiceSplitters {
		add(KindServiceSplitter, name, e.ModifyIndex, e.Unsupported)
	}
	for name, e := range s.ServiceRouters {
		add(KindServiceRouter, name, e.ModifyIndex, e.Unsupported)
	}
	for _, e := range s.IntentionsNotApplied {
		add(e.Kind, e.Name, e.ModifyIndex, e.Fields)
	}
	if e := s.Mesh; e != nil {
		add(KindMesh, MeshEntryName, e.ModifyIndex, e.Unsupported)
	}
	if e := s.ExportedServices; e != nil {
		add(e.Kind, e.Name, e.ModifyIndex, e.Fields)
	}
	slices.SortFunc(out, func(a, b EntryNote) int { return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name)) })
	return out
}
