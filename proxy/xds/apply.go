package xds

import (
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

// apply decodes a response, merges it into the accepted state and hands
// the candidate to the Applier. On success the candidate becomes the
// accepted state.
func (c *Client) apply(t *resourceType, resp *discoveryv3.DiscoveryResponse) (Subscriptions, error) {
	got, err := decode(t, resp.GetResources())
	if err != nil {
		return Subscriptions{}, err
	}
	cur := c.State()
	next := merge(t, cur.Get(t.url), got, resp.GetVersionInfo(), c.subs.names(t.url))
	candidate := cur.with(t.url, next)
	subs, err := c.opts.Apply(candidate)
	if err != nil {
		return Subscriptions{}, err
	}
	c.state.Store(&candidate)
	return subs.normalize(), nil
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
	r := cur.Get(typeURL)
	r.Items = keepOnly(r.Items, names)
	next := cur.with(typeURL, r)
	c.state.Store(&next)
	c.status.subscribed(typeURL, names)
}
