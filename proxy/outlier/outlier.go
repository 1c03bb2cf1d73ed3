package outlier

import (
	"errors"

	"github.com/sony/gobreaker/v2"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Result is what one request (or connection) to a host says about it.
type Result uint8

const (
	// Success: a response below 500.
	Success Result = iota
	// Failure: a 5xx response that is not a gateway failure (500, 501, …).
	Failure
	// GatewayFailure: 502, 503 or 504, or no response at all (connect
	// failure, reset, timeout).
	GatewayFailure
	// Ignored: not the host's doing (the client went away, a local limit).
	Ignored
)

var (
	errFailure = errors.New("upstream failure")
	errIgnored = errors.New("ignored")
)

func (r Result) err() error {
	switch r {
	case Success:
		return nil
	case Ignored:
		return errIgnored
	}
	return errFailure
}

// Options configure a Detector.
type Options struct {
	// Name prefixes the breakers' names ("<cluster>/<host>").
	Name string
	// OnChange is called after a host's availability changed, never with
	// a breaker's lock held; the cluster rebuilds its picker. It may be
	// called from any goroutine, concurrently.
	OnChange func()
	// OnBreaker, when set, is told every state change of the host at
	// addr as outlier detection applies it (see Host.Breaker): open on
	// each ejection, half-open when readmitted for its probe, closed when
	// restored. It may be called with the breaker's lock held, from any
	// goroutine; it must be quick and must not call into the detector.
	OnBreaker func(addr string, to gobreaker.State)
	// Clock defaults to SystemClock.
	Clock Clock
	// Percent draws an integer in [0, 100) for the enforcing
	// percentages; default math/rand.
	Percent func() uint32
}

// Detector runs outlier detection for the hosts of one cluster.
type Detector struct {
	s       Settings
	opts    Options
	hosts   atomic.Int32 // hosts in the cluster
	ejected atomic.Int32 // hosts whose breaker is not closed
	changed atomic.Bool  // a breaker changed state; OnChange is due
	closed  atomic.Bool
	mu      sync.Mutex // guards timers; taken after a breaker's lock, never before
	timers  map[*Host]func() bool
}

// New returns a Detector with settings s.
func New(s Settings, opts Options) *Detector {
	if opts.Clock == nil {
		opts.Clock = SystemClock{}
	}
	if opts.Percent == nil {
		opts.Percent = func() uint32 { return rand.Uint32N(100) }
	}
	if opts.OnChange == nil {
		opts.OnChange = func() {}
	}
	return &Detector{s: s, opts: opts, timers: make(map[*Host]func() bool)}
}

// Settings returns the detector's settings.
func (d *Detector) Settings() Settings { return d.s }

// Ejected returns the number of hosts out of service (ejected or
// awaiting their probe's result).
func (d *Detector) Ejected() int { return int(d.ejected.Load()) }

// Close stops every pending readmission. Hosts stay as they are.
func (d *Detector) Close() {
	d.closed.Store(true)
	d.mu.Lock()
	defer d.mu.Unlock()
	for h, stop := range d.timers {
		stop()
		delete(d.timers, h)
	}
}

// reserve takes an ejection slot if max_ejection_percent allows one
// more: never more than that share of the cluster's hosts, except that
// the first ejection is always allowed (when the percentage is not 0, or
// with always_eject_one_host), so that small clusters can eject too.
// That is Envoy's documented behavior up to 1.28 ("defaults to 10% but
// will eject at least one host regardless of the value") and Weft's
// contract (docs/xds.md); later Envoy versions need
// always_eject_one_host for it.
func (d *Detector) reserve() bool {
	for {
		n, hosts := d.ejected.Load(), d.hosts.Load()
		pct := int64(d.s.MaxEjectionPercent)
		allowed := 100*int64(n+1) <= pct*int64(hosts) || n == 0 && (pct > 0 || d.s.AlwaysEjectOneHost)
		if !allowed {
			return false
		}
		if d.ejected.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (d *Detector) enforce(percent uint32) bool { return percent > 0 && d.opts.Percent() < percent }

// flush calls OnChange if a breaker changed state since the last flush.
func (d *Detector) flush() {
	if d.changed.Swap(false) {
		d.opts.OnChange()
	}
}

func (d *Detector) schedule(h *Host, after time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed.Load() {
		return
	}
	d.timers[h] = d.opts.Clock.AfterFunc(after, func() {
		d.mu.Lock()
		delete(d.timers, h)
		d.mu.Unlock()
		h.readmit()
	})
}

func (d *Detector) unschedule(h *Host) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if stop, ok := d.timers[h]; ok {
		stop()
		delete(d.timers, h)
	}
}
