// Package http1client is Weft's HTTP/1.1 client: an http.RoundTripper
// that runs each exchange on the caller's goroutine, with net/http's
// wire format. The sidecar's clusters send their HTTP/1.1 requests
// through it, and the control plane its Consul queries (each blocking
// query then holds one goroutine, the caller's, where http.Transport
// adds a read and a write loop per connection).
package http1client
