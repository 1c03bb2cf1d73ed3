package controlplane

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/weft-mesh/weft/catalog"
	"github.com/weft-mesh/weft/controlplane/translate"
)

// publishedState is what the admin API reads of the publish loop.
type publishedState struct {
	catalog  atomic.Pointer[catalog.Snapshot]
	problems atomic.Pointer[map[string][]string]
	at       atomic.Pointer[time.Time]
}

// publishLoop translates and publishes every snapshot from src, one at a
// time; src is latest-wins, so a burst of changes that arrives while a
// snapshot is being published is coalesced into the next one.
// A change of the trust bundle, or of the connected proxyless clients,
// republishes the last catalog.
func (s *Server) publishLoop(ctx context.Context, src CatalogSource) error {
	ch := src.Snapshots()
	var caChanges <-chan struct{}
	if s.cfg.Authority != nil {
		caChanges = s.cfg.Authority.Changes()
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case snap, ok := <-ch:
			if !ok {
				return errors.New("catalog source stopped")
			}
			s.publishSnapshot(ctx, snap)
		case <-caChanges:
			s.republish(ctx)
		case <-s.proxyless.changed:
			s.republish(ctx)
		}
	}
}

func (s *Server) republish(ctx context.Context) {
	if snap := s.state.catalog.Load(); snap != nil {
		s.publishSnapshot(ctx, snap)
	}
}

func (s *Server) publishSnapshot(ctx context.Context, snap *catalog.Snapshot) {
	start := time.Now()
	mesh := s.mesh()
	res := s.translator.Translate(snap, mesh)
	s.addProxyless(res, snap, mesh)
	changed, err := s.publisher.publish(ctx, res, start)
	s.metrics.translate.Observe(time.Since(start).Seconds())
	s.metrics.proxies.Set(float64(len(res.Proxies)))
	s.metrics.catalogVer.Set(float64(snap.Version))
	s.recordProblems(res.Problems)
	s.notApplied.log(s.logger, snap.NotApplied())
	s.state.catalog.Store(snap)
	now := time.Now()
	s.state.at.Store(&now)
	s.logger.Info("catalog published", "catalog_version", snap.Version, "proxies", len(res.Proxies),
		"changed", changed, "took", time.Since(start).Round(time.Microsecond), "failed", err != nil)
}

// cacheLogger adapts slog to go-control-plane's logger.
type cacheLogger struct{ l *slog.Logger }

func (c cacheLogger) Debugf(format string, args ...any) { c.l.Debug(fmt.Sprintf(format, args...)) }
func (c cacheLogger) Infof(format string, args ...any)  { c.l.Debug(fmt.Sprintf(format, args...)) }
func (c cacheLogger) Warnf(format string, args ...any)  { c.l.Warn(fmt.Sprintf(format, args...)) }
func (c cacheLogger) Errorf(format string, args ...any) { c.l.Error(fmt.Sprintf(format, args...)) }

// addProxyless gives every connected proxyless client the shared proxyless
// resources. A node ID that is also a registered sidecar stays a sidecar.
// A partial res lists every proxyless client as changed (the publisher
// skips those whose shared resources it published already), and those
// that left since the last publish.
func (s *Server) addProxyless(res *translate.Result, snap *catalog.Snapshot, mesh translate.Mesh) {
	ids := s.proxyless.ids()
	last := s.proxylessPublished
	s.proxylessPublished = nil
	if len(ids) > 0 {
		shared := s.translator.Proxyless(snap, mesh)
		s.proxylessPublished = make(map[string]bool, len(ids))
		for _, id := range ids {
			if _, sidecar := res.Proxies[id]; sidecar {
				s.logger.Warn("a proxyless client uses a sidecar's ID; serving it as the sidecar", "node", id)
				continue
			}
			res.Proxies[id] = shared
			s.proxylessPublished[id] = true
			res.Changed = append(res.Changed, id)
		}
	}
	for id := range last {
		if !s.proxylessPublished[id] {
			res.Changed = append(res.Changed, id)
		}
	}
}
