package membership

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/consul/api"
)

// Keeper holds a registration in the local agent for as long as Run runs:
// it is the membership sidecar of an injected pod (weft register --wait).
//
// Besides the registration's own checks it owns two TTL checks on the
// service, refreshed every Interval:
//
//   - "<id>:alive" passes while Run runs. It carries Consul's
//     DeregisterCriticalServiceAfter, so when the keeper dies without
//     deregistering (the pod crashed or was killed) the check expires and
//     the agent removes the service and its sidecar after DeregisterAfter.
//   - "<id>:app" passes while AppAddr accepts TCP connections. It never
//     deregisters: an app that is down is critical (no traffic), not gone.
//
// If the agent loses the registration (reaped, agent rebuilt), the next
// refresh fails and Run registers again. When ctx ends, Run deregisters.
type Keeper struct {
	Agent        Agent
	Registration Registration
	// AppAddr is dialled from the keeper for the app check; empty: no app
	// check (a client-only instance).
	AppAddr string
	// Interval between refreshes; default 5s. Each TTL is three intervals.
	Interval time.Duration
	// DeregisterAfter is how long "<id>:alive" may be critical before the
	// agent removes the service; default 1m (Consul's minimum).
	DeregisterAfter time.Duration
	Logger          *slog.Logger
}

// Check IDs owned by a Keeper.
func aliveCheckID(serviceID string) string { return serviceID + ":alive" }
func appCheckID(serviceID string) string   { return serviceID + ":app" }

// Run registers, keeps the registration alive and deregisters when ctx
// ends. It returns an error only if the registration is invalid, or the
// agent rejects it as such (400): while the agent is unreachable or
// failing it logs and retries every Interval.
func (k *Keeper) Run(ctx context.Context) error {
	if err := k.Registration.Validate(); err != nil {
		return err
	}
	logger := cmp.Or(k.Logger, slog.Default()).With("component", "membership", "service_id", k.Registration.ServiceID())
	interval := cmp.Or(k.Interval, 5*time.Second)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	registered := false
	for {
		var err error
		if registered, err = k.refresh(ctx, logger, registered, interval); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return k.deregister(logger, interval)
		case <-ticker.C:
		}
	}
}

// refresh registers if needed and sets the TTL checks; it reports whether
// the registration is in place, or an error the agent will never accept.
func (k *Keeper) refresh(ctx context.Context, logger *slog.Logger, registered bool, interval time.Duration) (bool, error) {
	id := k.Registration.ServiceID()
	if !registered {
		err := register(ctx, k.Agent, k.Registration.agentService(k.ownedChecks(interval)...))
		if isInvalid(err) {
			return false, err
		}
		if err != nil {
			logger.Warn("register; retrying", "error", err)
			return false, nil
		}
		logger.Info("registered", "sidecar_id", SidecarID(id))
	}
	q := (&api.QueryOptions{}).WithContext(ctx)
	if k.AppAddr != "" {
		status, output := appHealth(ctx, k.AppAddr, interval)
		if err := k.Agent.UpdateTTLOpts(appCheckID(id), output, status, q); err != nil {
			logger.Warn("update app check; registering again", "error", err)
			return false, nil
		}
	}
	if err := k.Agent.UpdateTTLOpts(aliveCheckID(id), "weft register --wait is running", api.HealthPassing, q); err != nil {
		logger.Warn("update alive check; registering again", "error", err)
		return false, nil
	}
	return true, nil
}

func (k *Keeper) ownedChecks(interval time.Duration) []*api.AgentServiceCheck {
	id, ttl := k.Registration.ServiceID(), (3 * interval).String()
	checks := []*api.AgentServiceCheck{{
		CheckID: aliveCheckID(id), Name: "weft membership", TTL: ttl, Status: api.HealthPassing,
		DeregisterCriticalServiceAfter: cmp.Or(k.DeregisterAfter, time.Minute).String(),
	}}
	if k.AppAddr != "" {
		checks = append(checks, &api.AgentServiceCheck{
			CheckID: appCheckID(id), Name: "app accepts connections on " + k.AppAddr, TTL: ttl, Status: api.HealthCritical,
		})
	}
	return checks
}

// deregister removes the registration, with its own deadline since the
// run's context is over.
func (k *Keeper) deregister(logger *slog.Logger, interval time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), max(interval, 5*time.Second))
	defer cancel()
	err := Deregister(ctx, k.Agent, k.Registration.ServiceID())
	if err != nil && !IsUnknown(err) {
		logger.Warn("deregister; the alive check will expire and the agent remove it", "error", err)
		return nil
	}
	logger.Info("deregistered")
	return nil
}

// appHealth dials addr and returns the TTL status and output.
func appHealth(ctx context.Context, addr string, timeout time.Duration) (status, output string) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return api.HealthCritical, err.Error()
	}
	conn.Close()
	return api.HealthPassing, "accepts connections on " + addr
}
