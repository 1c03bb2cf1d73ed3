package xds

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// savedFormat is the version of the encoding written by MarshalState.
const savedFormat = 1

// saved is the on-disk form of an accepted State: per type its version and
// resources as serialized google.protobuf.Any, so that loading goes
// through the same decode and validation as a live response.
type saved struct {
	Format  int         `json:"format"`
	ProxyID string      `json:"proxy_id"`
	SavedAt time.Time   `json:"saved_at"`
	Types   []savedType `json:"types"`
}

type savedType struct {
	TypeURL   string   `json:"type_url"`
	Version   string   `json:"version"`
	Resources [][]byte `json:"resources"`
}

// MarshalState encodes the accepted resource types of s, with their
// versions, for proxyID. Types never received are left out. Secrets are
// kept whole, private keys of tls_certificate secrets included: the
// result is for the sidecar's own state directory (mode 0600, see
// proxy/statedir), never to be shown.
func MarshalState(proxyID string, s State, now time.Time) ([]byte, error) {
	out := saved{Format: savedFormat, ProxyID: proxyID, SavedAt: now.UTC()}
	for _, t := range resourceTypes {
		r := s.Get(t.url)
		if !r.Received {
			continue
		}
		st := savedType{TypeURL: t.url, Version: r.Version}
		for _, name := range slices.Sorted(maps.Keys(r.Items)) {
			a, err := anypb.New(r.Items[name])
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", t.kind, name, err)
			}
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(a)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", t.kind, name, err)
			}
			st.Resources = append(st.Resources, b)
		}
		out.Types = append(out.Types, st)
	}
	return json.Marshal(out)
}

// UnmarshalState decodes what MarshalState wrote for proxyID. Every
// resource is decoded and validated as a live response would be; an
// error names what is wrong (format, foreign proxy, bad resource), and
// the caller must then not use the file.
func UnmarshalState(proxyID string, b []byte) (State, time.Time, error) {
	var in saved
	if err := json.Unmarshal(b, &in); err != nil {
		return State{}, time.Time{}, fmt.Errorf("not a saved xDS state: %w", err)
	}
	if in.Format != savedFormat {
		return State{}, time.Time{}, fmt.Errorf("saved xDS state has format %d, want %d", in.Format, savedFormat)
	}
	if in.ProxyID != proxyID {
		return State{}, time.Time{}, fmt.Errorf("saved xDS state belongs to proxy %q, not %q", in.ProxyID, proxyID)
	}
	var s State
	for _, st := range in.Types {
		t := lookupType(st.TypeURL)
		if t == nil {
			return State{}, time.Time{}, fmt.Errorf("saved xDS state: unknown type %q", st.TypeURL)
		}
		if s.Get(t.url).Received {
			return State{}, time.Time{}, fmt.Errorf("saved xDS state: type %s saved twice", t.url)
		}
		anys := make([]*anypb.Any, len(st.Resources))
		for i, raw := range st.Resources {
			anys[i] = new(anypb.Any)
			if err := proto.Unmarshal(raw, anys[i]); err != nil {
				return State{}, time.Time{}, fmt.Errorf("saved %s resource %d: %w", t.kind, i, err)
			}
		}
		r, err := decode(t, anys, Resources{})
		if err != nil {
			return State{}, time.Time{}, fmt.Errorf("saved %s resources: %w", t.kind, err)
		}
		r.Version, r.Received = st.Version, true
		s = s.with(t.url, r)
	}
	if !s.Listeners.Received || !s.Clusters.Received {
		return State{}, time.Time{}, errors.New("saved xDS state has no listeners or no clusters")
	}
	return s, in.SavedAt, nil
}

// Restore seeds the client with a configuration accepted before a
// restart (already applied by the caller) and the names it subscribes
// to, so that the first stream resumes from it: its initial requests carry
// the restored versions, as after a reconnect. Call it before Run.
func (c *Client) Restore(s State, subs Subscriptions) {
	subs = subs.normalize()
	for _, url := range []string{RouteType, EndpointType, SecretType} {
		s = s.with(url, s.Get(url).keepOnly(subs.names(url)))
	}
	c.state.Store(&s)
	c.subs = subs
	for _, t := range resourceTypes {
		r := s.Get(t.url)
		if !r.Received {
			continue
		}
		c.status.update(t.url, func(ts *TypeStatus) {
			ts.Version = r.Version
			ts.Subscribed = subs.names(t.url)
		})
	}
}
