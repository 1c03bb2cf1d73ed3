package route

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"

	"github.com/weft-mesh/weft/proxy/retry"
)

// DefaultTimeout is the route timeout when a route sets none, as Envoy's.
const DefaultTimeout = 15 * time.Second

// Action is a compiled RouteAction: where a matching request goes and how
// it is forwarded. It is immutable.
type Action struct {
	// Direct, when not nil, answers matching requests itself (a
	// direct_response action): nothing else of the Action applies and
	// Clusters is empty.
	Direct *DirectResponse

	// Clusters are the targets with their weights; a single `cluster` is
	// one entry. Build weighted actions with NewWeighted (or call
	// Finish) so that draws know the total.
	Clusters []WeightedCluster
	total    uint64

	// PrefixRewrite replaces the matched prefix (or, after a Path match,
	// the whole path) when HasPrefixRewrite.
	PrefixRewrite    string
	HasPrefixRewrite bool
	// RegexRewrite, when not nil, replaces every match in the path with
	// RegexSubstitution.
	RegexRewrite      *regexp.Regexp
	RegexSubstitution string
	// HostRewrite, when not empty, replaces the Host header.
	HostRewrite string

	// Timeout bounds the whole exchange, retries included; 0: none.
	Timeout time.Duration
	// IdleTimeout, when HasIdleTimeout, overrides the listener's stream
	// idle timeout (0 disables it).
	IdleTimeout    time.Duration
	HasIdleTimeout bool
	// MaxGRPCTimeout, when HasMaxGRPCTimeout, makes a gRPC request's
	// grpc-timeout the timeout, capped by MaxGRPCTimeout (0: no cap) and
	// reduced by GRPCTimeoutOffset. Without it a grpc-timeout shorter
	// than Timeout still caps it.
	MaxGRPCTimeout    time.Duration
	HasMaxGRPCTimeout bool
	GRPCTimeoutOffset time.Duration
	// MaxStreamDuration bounds the stream from its start; 0: none.
	MaxStreamDuration time.Duration

	Retry *retry.Policy
	// BufferLimit is how much of a request body is kept to replay it on
	// a retry (per_request_buffer_limit_bytes); larger bodies are not
	// retried.
	BufferLimit int64
	Hash        []HashPolicy
	// AttemptCount adds x-envoy-attempt-count to upstream requests, and
	// AttemptCountInResponse to downstream responses.
	AttemptCount, AttemptCountInResponse bool
}

// DirectResponse is a compiled DirectResponseAction: the response a
// route sends without forwarding the request. It is immutable.
type DirectResponse struct {
	// Status is the HTTP status, 200 to 599.
	Status int
	// Body is sent as text/plain; nil or empty sends no body.
	Body []byte
}

// DefaultBufferLimit is the retry buffer when the route sets none.
const DefaultBufferLimit = 64 << 10

// WeightedCluster is one target of an Action.
type WeightedCluster struct {
	Name   string
	Weight uint32
	// RequestHeaders and ResponseHeaders run before the route's.
	RequestHeaders, ResponseHeaders Mutation
	// HostRewrite, when not empty, replaces the Host header.
	HostRewrite string
}

// Finish computes the total weight; compile calls it once.
func (a *Action) Finish() {
	a.total = 0
	for _, c := range a.Clusters {
		a.total += uint64(c.Weight)
	}
}

// PickCluster returns the target for one request: a weighted random draw.
func (a *Action) PickCluster() *WeightedCluster {
	if len(a.Clusters) == 1 || a.total == 0 {
		return &a.Clusters[0]
	}
	r := rand.Uint64N(a.total)
	for i := range a.Clusters {
		if w := uint64(a.Clusters[i].Weight); r < w {
			return &a.Clusters[i]
		} else {
			r -= w
		}
	}
	return &a.Clusters[len(a.Clusters)-1]
}

// RewritePath applies the path rewrites to a path the route matched; it
// returns the path unchanged when the action rewrites nothing.
func (a *Action) RewritePath(m *PathMatch, path string) string {
	if a.HasPrefixRewrite {
		switch m.Kind {
		case Prefix, SeparatedPrefix:
			path = a.PrefixRewrite + path[len(m.Value):]
		case Path:
			path = a.PrefixRewrite
		}
	}
	if a.RegexRewrite != nil {
		path = a.RegexRewrite.ReplaceAllString(path, a.RegexSubstitution)
	}
	return path
}

// SetRegexRewrite compiles an Envoy regex_rewrite: every match of pattern
// (RE2, unanchored) in the path is replaced by substitution, where \0 to
// \9 are capture groups as in RE2's GlobalReplace.
func (a *Action) SetRegexRewrite(pattern, substitution string) error {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return fmt.Errorf("regex_rewrite pattern %q: %w", pattern, err)
	}
	var b strings.Builder
	for i := 0; i < len(substitution); i++ {
		c := substitution[i]
		switch {
		case c == '\\' && i+1 < len(substitution) && substitution[i+1] >= '0' && substitution[i+1] <= '9':
			b.WriteString("${" + substitution[i+1:i+2] + "}")
			i++
		case c == '\\' && i+1 < len(substitution) && substitution[i+1] == '\\':
			b.WriteByte('\\')
			i++
		case c == '\\':
			return fmt.Errorf("regex_rewrite substitution %q: invalid escape at %d", substitution, i)
		case c == '$':
			b.WriteString("$$")
		default:
			b.WriteByte(c)
		}
	}
	a.RegexRewrite, a.RegexSubstitution = re, b.String()
	return nil
}
