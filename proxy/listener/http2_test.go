package listener

import (
	"io"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/weft-mesh/weft/proxy/config"
)

// TestHTTP2ServerSettings: the listener advertises the HCM's
// max_concurrent_streams (RELIABILITY #11).
func TestHTTP2ServerSettings(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  uint32
		want uint32
	}{{"configured", 7, 7}, {"default", 0, config.DefaultMaxConcurrentStreams}} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, time.Second)
			l := httpListener(t, "l", "127.0.0.1:0", prefixRoute("/", "api"))
			l.HTTP.HTTP2.MaxConcurrentStreams = tt.set
			e.mustApply(runtime(nil, l))
			c := dial(t, e.addr("l"))
			io.WriteString(c, http2.ClientPreface)
			fr := http2.NewFramer(c, c)
			if err := fr.WriteSettings(); err != nil {
				t.Fatal(err)
			}
			for {
				f, err := fr.ReadFrame()
				if err != nil {
					t.Fatalf("reading the server's SETTINGS: %v", err)
				}
				sf, ok := f.(*http2.SettingsFrame)
				if !ok || sf.IsAck() {
					continue
				}
				if got, ok := sf.Value(http2.SettingMaxConcurrentStreams); !ok || got != tt.want {
					t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d (%v), want %d", got, ok, tt.want)
				}
				return
			}
		})
	}
}
