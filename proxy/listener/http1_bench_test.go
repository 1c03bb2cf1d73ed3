package listener

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// BenchmarkHTTP1Server compares the lean server with net/http's on one
// keep-alive connection: a GET whose handler sets a header and writes a
// short body, as a proxied response does. allocs/op counts the client's
// too (http.ReadResponse), the same for both.
//
//	go test -run '^$' -bench HTTP1Server -benchmem ./proxy/listener
func BenchmarkHTTP1Server(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "ok\n")
	})
	for _, s := range []struct {
		name  string
		start func(b *testing.B) string
	}{
		{"lean", func(b *testing.B) string { return startLeanServer(b, testServerSettings(h)).addr }},
		{"net-http", func(b *testing.B) string { return startNetHTTPServer(b, testServerSettings(h)) }},
	} {
		b.Run(s.name, func(b *testing.B) {
			c, err := net.Dial("tcp", s.start(b))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Minute))
			br := bufio.NewReader(c)
			req := []byte("GET /bench HTTP/1.1\r\nHost: api\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
