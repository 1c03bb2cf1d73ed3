// Command loadgen simulates many xDS clients for the control-plane scale
// benchmark (bench/cp): one ADS stream per node ID, each on its own
// connection as a real sidecar has, subscribing to every resource type and
// ACKing every response at once. It records when each client ACKed what,
// and serves that over HTTP for the harness:
//
//	GET /status          clients, synced clients, responses, bytes, stream errors
//	GET /acks?since=NS   per client, the ACKs sent after Unix time NS (nanoseconds)
//	GET /versions?node=ID  the versions a client last ACKed, by type URL
//
// It prints "loadgen listening on HOST:PORT" once the HTTP API is up.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
)

type options struct {
	xdsAddr   string
	nodesFile string
	mode      string
	listen    string
	dialers   int
}

func main() {
	var o options
	flag.StringVar(&o.xdsAddr, "xds-addr", "127.0.0.1:15010", "control plane xDS address")
	flag.StringVar(&o.nodesFile, "nodes", "", "file with one node ID per line; one client each (required)")
	flag.StringVar(&o.mode, "mode", "delta", "ADS protocol variant: delta or sotw")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:0", "address of the HTTP API")
	flag.IntVar(&o.dialers, "dialers", 64, "streams opened concurrently while starting")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.mode != "delta" && o.mode != "sotw" {
		return fmt.Errorf("-mode %q: want delta or sotw", o.mode)
	}
	if o.dialers < 1 {
		return fmt.Errorf("-dialers %d: want at least 1", o.dialers)
	}
	ids, err := readNodes(o.nodesFile)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	lg := &loadgen{opts: o, logger: slog.New(slog.NewTextHandler(os.Stderr, nil)), clients: make([]*client, len(ids))}
	for i, id := range ids {
		lg.clients[i] = newClient(id)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.listen, err)
	}
	srv := &http.Server{Handler: lg.api(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Printf("loadgen listening on %s\n", ln.Addr())
	lg.runAll(ctx)
	return nil
}

func readNodes(path string) ([]string, error) {
	if path == "" {
		return nil, errors.New("-nodes is required")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("-nodes: %w", err)
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if id := strings.TrimSpace(sc.Text()); id != "" {
			ids = append(ids, id)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("-nodes %s: %w", path, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("-nodes %s: no node IDs", path)
	}
	return ids, nil
}

type loadgen struct {
	opts    options
	logger  *slog.Logger
	clients []*client
	totals  totals
}

// runAll runs every client's stream until ctx is done, opening them
// opts.dialers at a time.
func (lg *loadgen) runAll(ctx context.Context) {
	var wg sync.WaitGroup
	gate := make(chan struct{}, lg.opts.dialers)
	for _, c := range lg.clients {
		wg.Go(func() { lg.runClient(ctx, c, gate) })
	}
	wg.Wait()
}

// runClient keeps c's stream open, reopening it a second after a failure.
func (lg *loadgen) runClient(ctx context.Context, c *client, gate chan struct{}) {
	run := runDelta
	if lg.opts.mode == "sotw" {
		run = runSotW
	}
	for ctx.Err() == nil {
		select {
		case gate <- struct{}{}:
		case <-ctx.Done():
			return
		}
		cc, err := grpc.NewClient(lg.opts.xdsAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithStatsHandler(byteCounter{&lg.totals}), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
		if err != nil {
			<-gate
			lg.logger.Error("dial", "node", c.id, "error", err)
			return
		}
		cc.Connect()
		<-gate
		err = run(ctx, cc, c, &lg.totals)
		cc.Close()
		if ctx.Err() != nil {
			return
		}
		lg.totals.streamErrs.Add(1)
		lg.logger.Warn("stream failed; reopening", "node", c.id, "error", err)
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// byteCounter counts the wire bytes of every message received.
type byteCounter struct{ t *totals }

func (b byteCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }
func (b byteCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (b byteCounter) HandleConn(context.Context, stats.ConnStats)                       {}
func (b byteCounter) HandleRPC(_ context.Context, s stats.RPCStats) {
	if in, ok := s.(*stats.InPayload); ok {
		b.t.bytes.Add(int64(in.WireLength))
	}
}

// Status is the answer of GET /status.
type Status struct {
	Clients      int   `json:"clients"`
	Synced       int   `json:"synced"`
	Responses    int64 `json:"responses"`
	Bytes        int64 `json:"bytes"`
	StreamErrors int64 `json:"stream_errors"`
}

// ACK is one ACK in the answer of GET /acks.
type ACK struct {
	At      int64  `json:"at"` // Unix nanoseconds
	Type    string `json:"type"`
	Version string `json:"version"`
}

func (lg *loadgen) api() http.Handler {
	mux := http.NewServeMux()
	byID := make(map[string]*client, len(lg.clients))
	for _, c := range lg.clients {
		byID[c.id] = c
	}
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		s := Status{Clients: len(lg.clients), Responses: lg.totals.responses.Load(), Bytes: lg.totals.bytes.Load(),
			StreamErrors: lg.totals.streamErrs.Load()}
		for _, c := range lg.clients {
			if c.synced() {
				s.Synced++
			}
		}
		writeJSON(w, s)
	})
	mux.HandleFunc("GET /acks", func(w http.ResponseWriter, r *http.Request) {
		ns, err := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
		if err != nil {
			http.Error(w, fmt.Sprintf("since %q: want Unix nanoseconds", r.URL.Query().Get("since")), http.StatusBadRequest)
			return
		}
		since := time.Unix(0, ns)
		out := map[string][]ACK{}
		for _, c := range lg.clients {
			for _, e := range c.since(since) {
				out[c.id] = append(out[c.id], ACK{At: e.at.UnixNano(), Type: e.typeURL, Version: e.version})
			}
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("GET /versions", func(w http.ResponseWriter, r *http.Request) {
		c := byID[r.URL.Query().Get("node")]
		if c == nil {
			http.Error(w, fmt.Sprintf("node %q: not simulated", r.URL.Query().Get("node")), http.StatusNotFound)
			return
		}
		writeJSON(w, c.versions())
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}
