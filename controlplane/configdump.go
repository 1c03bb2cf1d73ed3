package controlplane

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// ConfigDump is what the control plane serves to one proxy: the answer of
// GET /config_dump/{proxy}.
type ConfigDump struct {
	Proxy string `json:"proxy"`
	// Types holds each resource type's snapshot, keyed by its short name
	// ("Listener", "Cluster", "ClusterLoadAssignment",
	// "RouteConfiguration", "Secret"). Secrets hold trust bundles, and an
	// API gateway's certificates, whose private keys are redacted.
	Types map[string]TypeDump `json:"types"`
}

// TypeDump is the resources of one type the proxy is served.
type TypeDump struct {
	TypeURL string `json:"type_url"`
	Version string `json:"version"`
	// Resources maps names to resources in protojson.
	Resources map[string]json.RawMessage `json:"resources"`
}

// handleConfigDump serves GET /config_dump/{proxy}: the snapshot the
// control plane serves that proxy, from the xDS cache.
func (s *Server) handleConfigDump(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("proxy")
	snap, err := s.cache.GetSnapshot(id)
	if err != nil {
		http.Error(w, fmt.Sprintf("no configuration for proxy %q: it is not a registered connect-proxy (or the catalog is not loaded yet)", id), http.StatusNotFound)
		return
	}
	dump := ConfigDump{Proxy: id, Types: map[string]TypeDump{}}
	for _, typ := range publishedTypes {
		res := snap.GetResources(typ)
		d := TypeDump{TypeURL: typ, Version: snap.GetVersion(typ), Resources: make(map[string]json.RawMessage, len(res))}
		for _, name := range slices.Sorted(maps.Keys(res)) {
			d.Resources[name] = marshalResource(res[name])
		}
		dump.Types[typ[strings.LastIndexByte(typ, '.')+1:]] = d
	}
	writeJSON(w, dump)
}

// marshalResource renders a resource, a certificate's private key
// redacted; one that cannot be rendered shows the error instead.
func marshalResource(m proto.Message) json.RawMessage {
	if sec, ok := m.(*tlsv3.Secret); ok && sec.GetTlsCertificate().GetPrivateKey() != nil {
		sec = proto.Clone(sec).(*tlsv3.Secret)
		sec.GetTlsCertificate().PrivateKey = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: redacted}}
		m = sec
	}
	b, err := protojson.Marshal(m)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"marshal_error": err.Error()})
	}
	return b
}

// redacted stands for a private key in config dumps, as Envoy's admin
// API shows it.
const redacted = "[redacted]"
