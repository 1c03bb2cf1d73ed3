package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
)

// BenchmarkServe forwards GETs through the router to a loopback backend
// over pooled HTTP/1.1 connections: the whole request path, the real
// transport included.
func BenchmarkServe(b *testing.B) {
	e := newEnv(b)
	backendSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer backendSrv.Close()
	e.setClusters(staticCluster("c", backendSrv.Listener.Addr().String()))
	e.routes(to("c"))
	rt := e.table.Load().Match(httptest.NewRequest("GET", "/", nil), "/")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			r := httptest.NewRequest("GET", "http://x/", nil)
			e.router.Serve(w, r, Request{Route: rt})
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}

// BenchmarkReverseProxyBaseline is the same exchange through a bare
// httputil.ReverseProxy, to tell the router's own cost from the
// standard library's.
func BenchmarkReverseProxyBaseline(b *testing.B) {
	backendSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer backendSrv.Close()
	u, _ := url.Parse(backendSrv.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 256}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := httptest.NewRecorder()
			rp.ServeHTTP(w, httptest.NewRequest("GET", "http://x/", nil))
		}
	})
}
