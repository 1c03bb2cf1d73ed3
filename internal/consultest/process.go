package consultest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/weft-mesh/weft/internal/testproc"
)

// waitReady polls until the agent has a leader and its node is in the
// catalog, the process exits, or the timeout passes.
func waitReady(client *api.Client, node string, p *testproc.Process, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		if lastErr = checkReady(client, node); lastErr == nil {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("consul exited before it was ready: %v", p.Wait())
		case <-deadline.C:
			return fmt.Errorf("consul not ready after %v: %w", timeout, lastErr)
		case <-tick.C:
		}
	}
}

func checkReady(client *api.Client, node string) error {
	leader, err := client.Status().Leader()
	if err != nil {
		return fmt.Errorf("leader: %w", err)
	}
	if leader == "" {
		return errors.New("no leader yet")
	}
	n, _, err := client.Catalog().Node(node, nil)
	if err != nil {
		return fmt.Errorf("catalog node %q: %w", node, err)
	}
	if n == nil || n.Node == nil {
		return fmt.Errorf("node %q not in the catalog yet", node)
	}
	return nil
}

// errPortCollision marks a start that failed because a port was taken
// between choosing it and the agent binding it.
var errPortCollision = errors.New("port collision")

func isPortCollision(err error) bool { return errors.Is(err, errPortCollision) }

// withLog adds the tail of the agent's log to err, marking port collisions.
func withLog(err error, logPath string) error {
	out, _ := os.ReadFile(logPath)
	if strings.Contains(string(out), "address already in use") {
		err = fmt.Errorf("%w: %w", errPortCollision, err)
	}
	const tail = 4000
	if len(out) > tail {
		out = out[len(out)-tail:]
	}
	return fmt.Errorf("%w\n--- %s (tail) ---\n%s", err, logPath, out)
}

// ports are the agent's listening ports.
type ports struct {
	http, serfLAN, serfWAN, server int
	// grpcTLS is the gRPC TLS port, which cluster peering uses; 0 (the
	// port turned off) unless WithPeering.
	grpcTLS int
}

// freePorts picks free loopback ports. They are free when chosen; the agent
// may still lose a race for one, which Start handles by retrying.
func freePorts() (ports, error) {
	got, err := pickPorts(5)
	if err != nil {
		return ports{}, err
	}
	return ports{http: got[0], serfLAN: got[1], serfWAN: got[2], server: got[3], grpcTLS: got[4]}, nil
}

// pickPorts returns n distinct ports free for both TCP and UDP (serf and
// DNS use both) on 127.0.0.1.
func pickPorts(n int) ([]int, error) {
	var listeners []net.Listener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	var out []int
	for attempts := 0; len(out) < n; attempts++ {
		if attempts > 100*n {
			return nil, errors.New("no free loopback ports")
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("pick free port: %w", err)
		}
		listeners = append(listeners, l)
		port := l.Addr().(*net.TCPAddr).Port
		udp, err := net.ListenPacket("udp", hostPort(port))
		if err != nil {
			continue // taken for UDP; keep the TCP listener so it is not picked again
		}
		udp.Close()
		out = append(out, port)
	}
	return out, nil
}

func uniqueNodeName() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "consultest-" + hex.EncodeToString(b)
}
