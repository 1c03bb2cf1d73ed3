package discovery

import (
	"maps"
	"time"
)

// entryAnswer is one answer of a config-entry watch, ready to apply to
// a state. During a Consul resync (resync.go) entries Consul no longer
// lists are kept like instances are: held applies the answer merged
// with what the state had when the resync began (before), and store
// applies it as it is once the resync is over. Entries that come back
// or change apply at once.
type entryAnswer struct {
	store func(s *state)
	held  func(s, before *state)
}

// mapAnswer is the answer v of a watch whose entries are kept by name in
// the state field field returns.
func mapAnswer[T any](v map[string]T, field func(*state) *map[string]T) entryAnswer {
	return entryAnswer{
		store: func(s *state) { *field(s) = v },
		held:  func(s, before *state) { *field(s) = unionMap(v, *field(before)) },
	}
}

// singleAnswer is the answer v of a watch of a single entry (nil when
// there is none), kept in the state field field returns; known marks the
// watch answered.
func singleAnswer[T any](v *T, field func(*state) **T, known func(*state) *bool) entryAnswer {
	store := func(s *state) { *field(s), *known(s) = v, true }
	return entryAnswer{
		store: store,
		held: func(s, before *state) {
			store(s)
			if v == nil {
				*field(s) = *field(before)
			}
		},
	}
}

// setEntries applies a config-entry watch's answer of kind; reset says
// Consul's index went backwards since its previous answer.
func (c *coordinator) setEntries(kind string, a entryAnswer, reset bool) {
	now := time.Now()
	if reset {
		c.startResync(now)
	}
	if c.resyncBefore == nil || !now.Before(c.resyncUntil) {
		a.store(c.state)
		return
	}
	a.held(c.state, c.resyncBefore)
	c.resyncEntries[kind] = a.store
}

// endEntryHold applies, once a resync is over, the config-entry answers
// it held as they are.
func (c *coordinator) endEntryHold(now time.Time) {
	if c.resyncBefore == nil || now.Before(c.resyncUntil) {
		return
	}
	for _, store := range c.resyncEntries {
		store(c.state)
	}
	c.resyncBefore, c.resyncEntries = nil, nil
}

// unionMap returns cur plus the entries of old whose key cur lacks; cur
// itself when there are none. cur must not be nil.
func unionMap[T any](cur, old map[string]T) map[string]T {
	var out map[string]T
	for k, v := range old {
		if _, ok := cur[k]; ok {
			continue
		}
		if out == nil {
			out = maps.Clone(cur)
		}
		out[k] = v
	}
	if out == nil {
		return cur
	}
	return out
}

// indexWatch tells, answer by answer, whether a watch's index went
// backwards: Consul lost its state.
type indexWatch struct{ prev uint64 }

// reset records an answer's index and reports whether it is lower than
// the previous answer's.
func (w *indexWatch) reset(last uint64) bool {
	r := last < w.prev
	w.prev = last
	return r
}
