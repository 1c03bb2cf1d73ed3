package catalog

// KindIngressGateway is the kind of an ingress gateway's registration.
const KindIngressGateway = "ingress-gateway"

// IngressGateway is an ingress-gateway config entry: the listeners of the
// gateway service of its Name, each routing outside traffic to services of
// the mesh.
type IngressGateway struct {
	Name      string
	Listeners []IngressListener
	// Unsupported names what the entry sets that Weft does not apply.
	Unsupported []string
	ModifyIndex uint64
}

// IngressListener is one port of an ingress gateway.
type IngressListener struct {
	Port     int
	Protocol string // tcp (default), http, http2 or grpc
	Services []IngressService
}

// IngressService is a service an ingress listener routes to: by Host for
// HTTP listeners (default "<service>.ingress.*"), the one service of a TCP
// listener.
type IngressService struct {
	Name  string
	Hosts []string
}
