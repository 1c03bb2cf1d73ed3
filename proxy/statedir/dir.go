// Package statedir is weft-proxy's state directory: where it keeps its
// last-known-good configuration so that a sidecar restarted while the
// control plane is unreachable serves at once instead of waiting for it.
//
// The directory holds two files, each replaced atomically (written to a
// temporary file in the same directory, synced, then renamed over the
// old one), so a crash leaves either the old or the new content, never a
// torn file:
//
//	xds.json  the last accepted (ACKed) xDS resources of every type, with versions
//	leaf.pem  the leaf certificate chain and its private key
//
// Both are created with mode 0600 in a directory of mode 0700: leaf.pem
// holds the sidecar's private key, and xds.json the private keys of the
// certificates received over SDS (an API gateway's, tls_certificate
// secrets), kept as received, unredacted, so that a restarted gateway
// serves TLS at once. Keys never leave the sidecar's own disk; they are
// never sent anywhere, and the admin API shows them redacted.
package statedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File names inside the directory.
const (
	XDSFile  = "xds.json"
	LeafFile = "leaf.pem"
)

// Dir is an open state directory.
type Dir struct {
	path string
}

// Open creates the directory (mode 0700) if needed and returns it.
func Open(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("state directory: empty path")
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	return &Dir{path: path}, nil
}

// Path returns the directory's path.
func (d *Dir) Path() string { return d.path }

// Read returns the content of file name, or an error wrapping
// fs.ErrNotExist when it was never written.
func (d *Dir) Read(name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(d.path, name))
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	return b, nil
}

// Write replaces file name with data atomically, mode 0600.
func (d *Dir) Write(name string, data []byte) error {
	tmp, err := os.CreateTemp(d.path, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write state %s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if err := writeSynced(tmp, data); err != nil {
		return fmt.Errorf("write state %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(d.path, name)); err != nil {
		return fmt.Errorf("write state %s: %w", name, err)
	}
	return nil
}

func writeSynced(f *os.File, data []byte) error {
	err := f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// NotSaved reports whether err means the file was never written.
func NotSaved(err error) bool { return errors.Is(err, fs.ErrNotExist) }
