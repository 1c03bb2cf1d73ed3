package identity

import (
	"context"
	"sync"
)

// group runs managers under the context of its owner's Run: a manager
// started before Run waits for it, and none starts after Run returns. It
// is guarded by its owner's mutex, which the caller of every method but
// run holds. Linked (a terminating gateway's per-service leaves) and
// Ingress (an ingress gateway's leaf) each run their managers in one.
type group struct {
	ctx context.Context // Run's while it runs, else nil: managers wait
	wg  sync.WaitGroup
}

// groupManager is a Manager a group runs.
type groupManager struct {
	*Manager
	stop context.CancelFunc // nil until started
}

// start runs m until it is halted or Run's context ends; before Run, it
// does nothing (run starts m then).
func (g *group) start(m *groupManager) {
	if g.ctx == nil {
		return
	}
	ctx, stop := context.WithCancel(g.ctx)
	m.stop = stop
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer stop()
		m.Run(ctx)
	}()
}

// halt stops m, if any and started.
func (m *groupManager) halt() {
	if m != nil && m.stop != nil {
		m.stop()
	}
}

// run is the owner's Run: it starts the managers the owner has (listed
// by managers, called with mu held), those started later until ctx ends,
// then waits for every one to return.
func (g *group) run(ctx context.Context, mu *sync.Mutex, managers func() []*groupManager) {
	mu.Lock()
	g.ctx = ctx
	for _, m := range managers() {
		g.start(m)
	}
	mu.Unlock()
	<-ctx.Done()
	mu.Lock()
	g.ctx = nil // no more managers start
	mu.Unlock()
	g.wg.Wait()
}
