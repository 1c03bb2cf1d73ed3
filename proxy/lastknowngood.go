package proxy

import (
	"fmt"
	"time"

	"github.com/weft-mesh/weft/proxy/identity"
	"github.com/weft-mesh/weft/proxy/statedir"
	"github.com/weft-mesh/weft/proxy/xds"
)

// lastKnownGood persists the accepted configuration and the leaf
// certificate to Options.StateDir, and restores them at start. See package
// statedir for the files and their permissions.
type lastKnownGood struct {
	dir       *statedir.Dir
	xds, leaf *statedir.Writer
}

// openStateDir opens the state directory, if one is configured. It runs at
// the start of Run, before anything is applied or issued.
func (p *Proxy) openStateDir() error {
	if p.opts.StateDir == "" {
		return nil
	}
	dir, err := statedir.Open(p.opts.StateDir)
	if err != nil {
		return err
	}
	log := p.opts.Logger.With("component", "state")
	p.lkg = &lastKnownGood{
		dir:  dir,
		xds:  statedir.NewWriter(dir, statedir.XDSFile, log),
		leaf: statedir.NewWriter(dir, statedir.LeafFile, log),
	}
	return nil
}

// closeStateDir writes what is pending. Called once nothing applies or
// issues any more.
func (p *Proxy) closeStateDir() {
	if p.lkg != nil {
		p.lkg.xds.Close()
		p.lkg.leaf.Close()
	}
}

// restoreLastKnownGood installs the saved leaf and applies the saved
// configuration through the same validation and compile step as a live
// xDS update, then seeds the xDS client with it so that its first
// requests carry the saved versions. It runs before the xDS client and
// the identity manager start. A missing file is normal (first start); an
// unreadable, corrupt or foreign one, or an expired leaf, is logged and
// ignored: the proxy then waits for the control plane as without a state
// directory.
func (p *Proxy) restoreLastKnownGood() {
	if p.lkg == nil {
		return
	}
	log := p.log.With("state_dir", p.lkg.dir.Path())
	if b, err := p.lkg.dir.Read(statedir.LeafFile); err == nil {
		if l, err := p.identity.Restore(b); err != nil {
			log.Error("ignoring the saved leaf certificate", "error", err)
		} else {
			log.Info("restored the saved leaf certificate", "spiffe_id", l.ID.String(), "not_after", l.Cert.Leaf.NotAfter)
		}
	} else if !statedir.NotSaved(err) {
		log.Error("ignoring the saved leaf certificate", "error", err)
	}
	b, err := p.lkg.dir.Read(statedir.XDSFile)
	if statedir.NotSaved(err) {
		log.Info("no saved configuration; waiting for the control plane")
		return
	}
	if err := p.applySaved(b); err != nil {
		log.Error("ignoring the saved configuration; waiting for the control plane", "error", err)
	}
}

func (p *Proxy) applySaved(b []byte) error {
	s, savedAt, err := xds.UnmarshalState(p.opts.ProxyID, b)
	if err != nil {
		return err
	}
	subs, err := p.apply(s)
	if err != nil {
		return fmt.Errorf("saved configuration rejected: %w", err)
	}
	p.xds.Restore(s, subs)
	p.log.Info("serving the last-known-good configuration until the control plane answers",
		"saved_at", savedAt, "listeners", len(s.Listeners.Items), "clusters", len(s.Clusters.Items),
		"listener_version", s.Listeners.Version, "cluster_version", s.Clusters.Version)
	return nil
}

// saveConfig persists an accepted configuration. Called from apply.
func (p *Proxy) saveConfig(s xds.State) {
	if p.lkg == nil {
		return
	}
	id := p.opts.ProxyID
	p.lkg.xds.Save(func() ([]byte, error) { return xds.MarshalState(id, s, time.Now()) })
}

// onLeaf is the identity manager's OnIssue: it persists a newly issued
// leaf and re-evaluates readiness, which may have been waiting for it.
func (p *Proxy) onLeaf(l *identity.Leaf) {
	p.changes.Add(1)
	p.saveLeaf(l)
	if p.Ready() == nil {
		p.log.Debug("ready: leaf certificate obtained")
	}
}

// saveLeaf persists a newly issued leaf.
func (p *Proxy) saveLeaf(l *identity.Leaf) {
	if p.lkg == nil {
		return
	}
	p.lkg.leaf.Save(func() ([]byte, error) { return identity.MarshalLeaf(l) })
}
