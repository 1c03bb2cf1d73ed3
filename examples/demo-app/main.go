// Command demo-app is the toy service of `make demo`: it answers HTTP with
// its instance name and, when given an upstream, first calls that upstream
// (through its sidecar) and reports who answered.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	name := flag.String("name", "", "instance name reported in every answer, e.g. api-1")
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve HTTP on")
	upstream := flag.String("upstream", "", "URL of an upstream to call on each request (e.g. the sidecar's local bind port)")
	flag.Parse()
	if *name == "" {
		log.Fatal("demo-app: --name is required")
	}
	client := &http.Client{Timeout: 5 * time.Second}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if *upstream == "" {
			fmt.Fprintf(w, "%s\n", *name)
			return
		}
		req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, *upstream+r.URL.Path, nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		forwardTraceContext(r.Header, req.Header)
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, fmt.Sprintf("%s → upstream error: %v", *name, err), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		w.WriteHeader(resp.StatusCode)
		fmt.Fprintf(w, "%s → %s\n", *name, strings.TrimSpace(string(body)))
	})
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shutdown)
	}()
	log.Printf("demo-app %s listening on %s", *name, *listen)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// traceHeaders are what an app forwards from the request it serves to the
// calls it makes so that the sidecars' spans join one trace: W3C trace
// context, and B3 for meshes that use it.
var traceHeaders = []string{"Traceparent", "Tracestate", "B3", "X-B3-Traceid", "X-B3-Spanid", "X-B3-Parentspanid", "X-B3-Sampled", "X-B3-Flags"}

func forwardTraceContext(from, to http.Header) {
	for _, h := range traceHeaders {
		if v := from.Values(h); len(v) > 0 {
			to[h] = v
		}
	}
}
