package membership

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/hashicorp/consul/api"
)

// Agent is the part of Consul's agent API that membership uses.
type Agent interface {
	ServiceRegisterOpts(reg *api.AgentServiceRegistration, opts api.ServiceRegisterOpts) error
	ServiceDeregisterOpts(serviceID string, q *api.QueryOptions) error
	UpdateTTLOpts(checkID, output, status string, q *api.QueryOptions) error
}

var _ Agent = (*api.Agent)(nil)

// Register registers r and its sidecar with the agent, replacing a previous
// registration of the same ID and its checks.
func Register(ctx context.Context, agent Agent, r Registration) error {
	if err := r.Validate(); err != nil {
		return err
	}
	return register(ctx, agent, r.agentService())
}

func register(ctx context.Context, agent Agent, reg *api.AgentServiceRegistration) error {
	opts := api.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx)
	if err := agent.ServiceRegisterOpts(reg, opts); err != nil {
		return fmt.Errorf("register service %q: %w", reg.ID, err)
	}
	return nil
}

// Deregister removes the service serviceID and its sidecar from the agent.
// It fails if the agent has no such service.
func Deregister(ctx context.Context, agent Agent, serviceID string) error {
	q := (&api.QueryOptions{}).WithContext(ctx)
	if err := agent.ServiceDeregisterOpts(serviceID, q); err != nil {
		return fmt.Errorf("deregister service %q: %w", serviceID, err)
	}
	return nil
}

// IsUnknown reports whether err is the agent's 404 for a service or check
// it does not hold.
func IsUnknown(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// isInvalid reports whether err is the agent's 400: a registration it will
// never accept.
func isInvalid(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == http.StatusBadRequest
}
