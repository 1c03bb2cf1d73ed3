package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/weft-mesh/weft/controlplane"
	"github.com/weft-mesh/weft/internal/poll"
)

// deltaProbe is a raw incremental ADS client of a proxyless node,
// subscribed to listeners by name. It ACKs and records every response.
type deltaProbe struct {
	subscribed time.Time // when it sent its subscription

	mu      sync.Mutex
	answers []deltaAnswer
	err     error // why the stream ended
}

// deltaAnswer is one response: the listeners it sent and those it removed.
type deltaAnswer struct {
	at                 time.Time
	resources, removed []string // sorted
}

func (a deltaAnswer) same(b deltaAnswer) bool {
	return slices.Equal(a.resources, b.resources) && slices.Equal(a.removed, b.removed)
}

// startDeltaProbe opens the stream and subscribes to names; it ends with
// the test.
func startDeltaProbe(t *testing.T, xdsAddr, nodeID string, names ...string) *deltaProbe {
	t.Helper()
	conn, err := grpc.NewClient(xdsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := discoveryv3.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: nodeID, Metadata: &structpb.Struct{Fields: map[string]*structpb.Value{
		controlplane.ProxylessMetadataKey: structpb.NewBoolValue(true)}}}
	p := &deltaProbe{subscribed: time.Now()}
	if err := st.Send(&discoveryv3.DeltaDiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResourceNamesSubscribe: names}); err != nil {
		t.Fatal(err)
	}
	go p.run(st)
	return p
}

func (p *deltaProbe) run(st discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient) {
	for {
		r, err := st.Recv()
		if err == nil {
			p.record(r)
			err = st.Send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType, ResponseNonce: r.GetNonce()})
		}
		if err != nil {
			p.mu.Lock()
			p.err = err
			p.mu.Unlock()
			return
		}
	}
}

func (p *deltaProbe) record(r *discoveryv3.DeltaDiscoveryResponse) {
	a := deltaAnswer{at: time.Now(), removed: slices.Sorted(slices.Values(r.GetRemovedResources()))}
	for _, res := range r.GetResources() {
		a.resources = append(a.resources, res.GetName())
	}
	slices.Sort(a.resources)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers = append(p.answers, a)
}

// waitAnswer waits for the i-th response (from 0).
func (p *deltaProbe) waitAnswer(t *testing.T, i int) deltaAnswer {
	t.Helper()
	var a deltaAnswer
	poll.Until(t, 10*time.Second, fmt.Sprintf("delta answer %d", i), func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if len(p.answers) <= i {
			return fmt.Errorf("%d answers (stream error: %v)", len(p.answers), p.err)
		}
		a = p.answers[i]
		return nil
	})
	return a
}

// waitHolds waits for a response that sends name and returns when it came.
func (p *deltaProbe) waitHolds(t *testing.T, name string) time.Time {
	t.Helper()
	var at time.Time
	poll.Until(t, 10*time.Second, "delta client sent "+name, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, a := range p.answers {
			if slices.Contains(a.resources, name) {
				at = a.at
				return nil
			}
		}
		return fmt.Errorf("answers %+v (stream error: %v)", p.answers, p.err)
	})
	return at
}
