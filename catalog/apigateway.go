package catalog

// KindAPIGateway is the kind of an API gateway's registration (Consul
// 1.15 on).
const KindAPIGateway = "api-gateway"

// APIGateway is an api-gateway config entry joined with what it serves:
// the http-route and tcp-route entries bound to each of its listeners and
// the inline-certificate entries its listeners name. Discovery joins them
// (discovery/apigateway.go); Consul 1.14 stores none of these kinds.
type APIGateway struct {
	Name      string
	Listeners []APIGatewayListener
	// Unsupported names what the gateway and its routes set that Weft
	// does not apply; Problems what could not be joined (a route naming
	// a listener the gateway lacks, a certificate that does not exist).
	Unsupported []string
	Problems    []string
}

// APIGatewayListener is one port of an API gateway.
type APIGatewayListener struct {
	Name     string
	Hostname string // "" or "*": any; else the hosts its routes may serve
	Port     int
	Protocol string // http (default), http2, grpc or tcp
	TLS      *GatewayTLS
	// RequiresJWT: the listener's Default or Override asks for a JWT,
	// which Weft cannot verify: every request it gets is refused (403).
	RequiresJWT bool
	// HTTPRoutes and TCPRoutes are the routes bound to the listener, by
	// name.
	HTTPRoutes []*HTTPRoute
	TCPRoutes  []*TCPRoute
}

// GatewayTLS is the TLS a gateway listener terminates for outside
// clients, with the certificates of its inline-certificate entries.
type GatewayTLS struct {
	Certificates []*InlineCertificate
	MinVersion   string // TLSv1_0 … TLSv1_3; "" is Envoy's default
	MaxVersion   string
	CipherSuites []string
}

// InlineCertificate is an inline-certificate entry: a certificate chain
// and its private key, in PEM.
type InlineCertificate struct {
	Name        string
	Certificate string
	PrivateKey  string
}

// HTTPRoute is an http-route entry bound to a gateway listener.
type HTTPRoute struct {
	Name      string
	Hostnames []string
	Rules     []HTTPRouteRule
}

// HTTPRouteRule sends requests matching any of Matches (every request
// when there are none) to Services, split by weight, applying
// Destination's rewrites, timeouts, retries and header changes (its
// Service is unused).
type HTTPRouteRule struct {
	Matches     []RouteHTTPMatch
	Destination RouteDestination
	Services    []WeightedService
	// RequiresJWT: the rule (or one of its services) asks for a JWT,
	// which Weft cannot verify: its requests are refused (403), as an
	// intention needing one is a deny.
	RequiresJWT bool
}

// WeightedService is one service of a rule, with its share and its own
// header changes.
type WeightedService struct {
	Name            string
	Weight          int
	RequestHeaders  *HeaderModifiers
	ResponseHeaders *HeaderModifiers
}

// TCPRoute is a tcp-route entry bound to a gateway listener.
type TCPRoute struct {
	Name     string
	Services []string
}
