package xds

import (
	"maps"

	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

// apply decodes a state-of-the-world response, merges it into the
// accepted state and installs the result.
func (c *Client) apply(t *resourceType, resp *discoveryv3.DiscoveryResponse) (Subscriptions, error) {
	prev := c.State().Get(t.url)
	got, err := decode(t, resp.GetResources(), prev)
	if err != nil {
		return Subscriptions{}, err
	}
	next := merge(t, prev, got, resp.GetVersionInfo(), c.subs.names(t.url))
	return c.install(t, next)
}

// install hands the accepted state with t's resources replaced by next to
// the Applier. On success the candidate becomes the accepted state.
func (c *Client) install(t *resourceType, next Resources) (Subscriptions, error) {
	candidate := c.State().with(t.url, next)
	subs, err := c.opts.Apply(candidate)
	if err != nil {
		return Subscriptions{}, err
	}
	c.state.Store(&candidate)
	return subs.normalize(), nil
}

// heldVersions returns the delta versions of the resources of typeURL the
// client holds, for a new delta stream's initial_resource_versions.
func (c *Client) heldVersions(typeURL string) map[string]string {
	items := c.State().Get(typeURL).Items
	out := make(map[string]string, len(items))
	for name, v := range c.versions[typeURL] {
		if _, ok := items[name]; ok {
			out[name] = v
		}
	}
	return out
}

// recordVersions notes the delta versions of resources just accepted and
// forgets those removed.
func (c *Client) recordVersions(typeURL string, set map[string]string, removed []string) {
	if c.versions == nil {
		c.versions = make(map[string]map[string]string)
	}
	v := c.versions[typeURL]
	if v == nil {
		v = make(map[string]string, len(set))
		c.versions[typeURL] = v
	}
	maps.Copy(v, set)
	for _, name := range removed {
		delete(v, name)
	}
}

// setSubscriptions records the names subscribed for a type and forgets
// accepted resources that are no longer subscribed.
func (c *Client) setSubscriptions(typeURL string, names []string) {
	switch typeURL {
	case RouteType:
		c.subs.Routes = names
	case EndpointType:
		c.subs.Endpoints = names
	case SecretType:
		c.subs.Secrets = names
	}
	cur := c.State()
	next := cur.with(typeURL, cur.Get(typeURL).keepOnly(names))
	c.state.Store(&next)
	c.status.subscribed(typeURL, names)
}
