package consulca

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Switching an existing Weft mesh to the shared CA changes every
// identity's trust domain. It runs as a root rotation from the legacy
// root, with both trust domains accepted throughout: after a restart
// with --ca-provider consul (moveAdding), the legacy root still signs in
// the legacy trust domain while every bundle gains Consul's roots and
// every identity check accepts Consul's trust domain too; `weft ca
// rotate` then makes the shared root sign in Consul's trust domain
// (moveSwitched) and, once every sidecar holds a new leaf, drops the
// legacy root and trust domain (done). The step is kept in moveFile.
const (
	moveFile     = "switch-from-legacy"
	moveAdding   = "adding"
	moveSwitched = "switched"
	moveDone     = "done"
)

func loadMove(cfg Config) (string, error) {
	if cfg.Legacy == nil {
		return "", nil
	}
	b, err := os.ReadFile(filepath.Join(cfg.Dir, moveFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.WriteFile(filepath.Join(cfg.Dir, moveFile), []byte(moveAdding), 0o644); err != nil {
			return "", fmt.Errorf("start the switch to the shared CA: %w", err)
		}
		return moveAdding, nil
	case err != nil:
		return "", fmt.Errorf("read the switch to the shared CA: %w", err)
	}
	switch step := strings.TrimSpace(string(b)); step {
	case moveAdding, moveSwitched:
		return step, nil
	case moveDone:
		return "", nil
	default:
		return "", fmt.Errorf("%s: unknown step %q", filepath.Join(cfg.Dir, moveFile), step)
	}
}

func (s *Shared) moveStep() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.move
}

func (s *Shared) setMove(step string) error {
	if err := os.WriteFile(filepath.Join(s.cfg.Dir, moveFile), []byte(step), 0o644); err != nil {
		return fmt.Errorf("record the switch to the shared CA: %w", err)
	}
	s.mu.Lock()
	if step == moveDone {
		s.move = ""
	} else {
		s.move = step
	}
	s.mu.Unlock()
	s.cfg.Logger.Info("switching the mesh to Consul's trust domain", "step", step)
	s.changed()
	return nil
}
