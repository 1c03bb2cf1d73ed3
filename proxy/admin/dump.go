package admin

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/weft-mesh/weft/proxy/listener"
	"github.com/weft-mesh/weft/proxy/xds"
)

// ConfigDump is the JSON document served at /config_dump.
type ConfigDump struct {
	// XDS is the connection status and the last ACK/NACK per type URL.
	XDS xds.Status `json:"xds"`
	// Resources are the accepted resources, keyed "listeners",
	// "clusters", "routes", "endpoints" and "secrets", with every value
	// Envoy's API marks sensitive (a certificate's private_key) shown as
	// "[redacted]" (redact.go).
	Resources map[string]ResourceDump `json:"resources"`
	// Listeners are the running listeners.
	Listeners []listener.Info `json:"listeners"`
	// Certs are the leaf certificate and trust bundles, as /certs.
	Certs Certs `json:"certs"`
}

// ResourceDump is the accepted state of one resource type.
type ResourceDump struct {
	TypeURL string `json:"type_url"`
	Version string `json:"version"`
	// Items maps resource names to the resources in protojson.
	Items map[string]json.RawMessage `json:"items"`
}

func dumpResources(s xds.State) map[string]ResourceDump {
	return map[string]ResourceDump{
		"listeners": dumpType(xds.ListenerType, s.Listeners),
		"clusters":  dumpType(xds.ClusterType, s.Clusters),
		"routes":    dumpType(xds.RouteType, s.Routes),
		"endpoints": dumpType(xds.EndpointType, s.Endpoints),
		"secrets":   dumpType(xds.SecretType, s.Secrets),
	}
}

func dumpType(typeURL string, r xds.Resources) ResourceDump {
	d := ResourceDump{TypeURL: typeURL, Version: r.Version, Items: make(map[string]json.RawMessage, len(r.Items))}
	for _, name := range slices.Sorted(maps.Keys(r.Items)) {
		d.Items[name] = marshal(redact(r.Items[name]))
	}
	return d
}

// marshal renders a resource; one that cannot be rendered (an Any of an
// unknown type inside an optional filter, say) shows the error instead.
func marshal(m proto.Message) json.RawMessage {
	b, err := protojson.Marshal(m)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"marshal_error": fmt.Sprint(err)})
	}
	return b
}
