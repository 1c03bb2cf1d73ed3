package controlplane

import (
	"errors"
	"log/slog"
	"slices"
	"strings"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/controlplane/translate"
)

// recordProblems keeps every proxy's translation problems for the admin
// API and logs those that are new since the last snapshot, so a bad
// registration is reported once, not on every change. Problems that
// restate a config entry's notes (translate.EntryNotApplied) are not
// logged per proxy: notAppliedLog logs the entry once per version.
func (s *Server) recordProblems(problems map[string][]error) {
	next := make(map[string][]string, len(problems))
	var prev map[string][]string
	if p := s.state.problems.Load(); p != nil {
		prev = *p
	}
	for id, errs := range problems {
		for _, e := range errs {
			msg := e.Error()
			next[id] = append(next[id], msg)
			var entry *translate.EntryNotApplied
			if !errors.As(e, &entry) && !slices.Contains(prev[id], msg) {
				s.logger.Warn("registration only partly translated", "proxy", id, "problem", msg)
			}
		}
	}
	s.state.problems.Store(&next)
}

// notAppliedLog logs what each config entry sets that Weft does not apply,
// once per entry and version: an entry is logged when it first has notes
// and again each time Consul stores a new version of it that still has
// some, not on every catalog change. It belongs to the publish loop.
type notAppliedLog struct {
	logged map[string]catalog.EntryNote // by kind and name
}

func (l *notAppliedLog) log(logger *slog.Logger, notes []catalog.EntryNote) {
	next := make(map[string]catalog.EntryNote, len(notes))
	for _, n := range notes {
		key := n.Kind + "/" + n.Name
		next[key] = n
		if prev, ok := l.logged[key]; ok && prev.ModifyIndex == n.ModifyIndex && slices.Equal(prev.Fields, n.Fields) {
			continue
		}
		logger.Warn("config entry sets fields Weft does not apply (docs/consul.md)", "kind", n.Kind, "name", n.Name,
			"modify_index", n.ModifyIndex, "fields", strings.Join(n.Fields, "; "))
	}
	l.logged = next
}
