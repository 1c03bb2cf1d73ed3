package catalog

// Intention actions.
const (
	ActionAllow = "allow"
	ActionDeny  = "deny"
)

// Wildcard matches any service name in an intention.
const Wildcard = "*"

// Intention is one source of a service-intentions config entry: whether
// Source may call Destination. Either Action is set (an L4 intention) or
// Permissions are (an L7 intention, evaluated per request in order, the
// first match deciding; a request matching none is denied).
type Intention struct {
	Source string // service name or "*"
	// SourcePeer is the peer Source is a service of (Consul's
	// SourceIntention.Peer); empty for this mesh's services.
	SourcePeer  string
	Destination string // service name or "*"
	Action      string // ActionAllow or ActionDeny; empty for L7 intentions
	Permissions []IntentionPermission
	// Precedence is Consul's: higher wins. Exact names beat wildcards.
	Precedence int
}

// IntentionPermission is one L7 rule of an intention.
type IntentionPermission struct {
	Action string // ActionAllow or ActionDeny
	HTTP   *IntentionHTTPMatch
}

// IntentionHTTPMatch matches HTTP requests. At most one path field is set;
// every set field must match.
type IntentionHTTPMatch struct {
	PathExact  string
	PathPrefix string
	PathRegex  string
	Methods    []string
	Headers    []IntentionHTTPHeader
}

// IntentionHTTPHeader matches one request header. At most one of Exact,
// Prefix, Suffix, Contains or Regex is set; none means "present". Invert
// negates the match; IgnoreCase makes string matches case-insensitive.
type IntentionHTTPHeader struct {
	Name       string
	Present    bool
	Exact      string
	Prefix     string
	Suffix     string
	Contains   string
	Regex      string
	Invert     bool
	IgnoreCase bool
}
