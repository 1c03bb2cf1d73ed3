package route

import "net/http"

// AppendAction says how a header addition treats existing values
// (Envoy's HeaderValueOption.append_action).
type AppendAction uint8

const (
	// AppendIfExistsOrAdd adds a value, keeping existing ones.
	AppendIfExistsOrAdd AppendAction = iota
	// AddIfAbsent adds the header only when it is absent.
	AddIfAbsent
	// OverwriteIfExistsOrAdd replaces every value.
	OverwriteIfExistsOrAdd
	// OverwriteIfExists replaces every value only when the header exists.
	OverwriteIfExists
)

// HeaderValue is one header addition.
type HeaderValue struct {
	// Key is in canonical form (http.CanonicalHeaderKey).
	Key    string
	Value  string
	Action AppendAction
	// KeepEmpty adds the header even when Value is empty.
	KeepEmpty bool
}

// Mutation is one level's header changes: removals run first, then
// additions, in order.
type Mutation struct {
	// Remove holds canonical header names.
	Remove []string
	Add    []HeaderValue
}

// Empty reports whether m changes nothing.
func (m *Mutation) Empty() bool { return m == nil || len(m.Remove) == 0 && len(m.Add) == 0 }

// Apply changes h in place.
func (m *Mutation) Apply(h http.Header) {
	if m.Empty() {
		return
	}
	for _, k := range m.Remove {
		delete(h, k)
	}
	for _, a := range m.Add {
		if a.Value == "" && !a.KeepEmpty {
			continue
		}
		_, exists := h[a.Key]
		switch a.Action {
		case AppendIfExistsOrAdd:
			h[a.Key] = append(h[a.Key], a.Value)
		case AddIfAbsent:
			if !exists {
				h[a.Key] = []string{a.Value}
			}
		case OverwriteIfExistsOrAdd:
			h[a.Key] = []string{a.Value}
		case OverwriteIfExists:
			if exists {
				h[a.Key] = []string{a.Value}
			}
		}
	}
}

// Mutations are the header changes that apply to one request, in the
// order they run.
type Mutations [4]*Mutation

// Apply runs every level on h.
func (ms *Mutations) Apply(h http.Header) {
	for _, m := range ms {
		m.Apply(h)
	}
}
