package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func execute(ctx context.Context, args ...string) (string, error) {
	cmd := newCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), err
}

func TestHelpExplainsEveryFlag(t *testing.T) {
	out, err := execute(context.Background(), "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"--proxy-id", "--xds-addr", "--admin-addr", "--log-level", "--log-format", "--drain-timeout", "--token", "--token-file", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE", "/certs", "127.0.0.1:19000", "10s", "--access-log", "--access-log-path", "/metrics", "--state-dir", "--http1-server"} {
		if !strings.Contains(out, flag) {
			t.Errorf("--help does not mention %s:\n%s", flag, out)
		}
	}
}

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no proxy id", []string{"--xds-addr", "127.0.0.1:18000"}, `at least one of the flags in the group [proxy-id sidecar-for] is required`},
		{"proxy id and sidecar-for", []string{"--xds-addr", "127.0.0.1:18000", "--proxy-id", "web-1-sidecar-proxy", "--sidecar-for", "web-1"},
			`[proxy-id sidecar-for] were all set`},
		{"no xds address", []string{"--proxy-id", "web"}, `required flag(s) "xds-addr" not set`},
		{"bad log level", []string{"--proxy-id", "web", "--xds-addr", "127.0.0.1:18000", "--log-level", "loud"}, `--log-level "loud"`},
		{"bad log format", []string{"--proxy-id", "web", "--xds-addr", "127.0.0.1:18000", "--log-format", "xml"}, `--log-format "xml"`},
		{"bad xds address", []string{"--proxy-id", "web", "--xds-addr", "nowhere"}, `XDSAddrs[0] "nowhere"`},
		{"stray argument", []string{"--proxy-id", "web", "--xds-addr", "127.0.0.1:18000", "extra"}, `unknown command "extra"`},
		{"token and token file", []string{"--proxy-id", "web", "--xds-addr", "127.0.0.1:18000", "--token", "t", "--token-file", "/f"}, `--token and --token-file: give at most one`},
		{"access log path with the access log off", []string{"--proxy-id", "web", "--xds-addr", "127.0.0.1:18000", "--access-log=false", "--access-log-path", "/tmp/a.log"}, `--access-log-path "/tmp/a.log": the access log is off`},
		{"unknown HTTP/1 server", []string{"--proxy-id", "web", "--xds-addr", "127.0.0.1:18000", "--http1-server", "nginx"}, `HTTP1Server "nginx"`},
		{"unknown socket I/O", []string{"--proxy-id", "web", "--xds-addr", "127.0.0.1:18000", "--socket-io", "io_uring"}, `SocketIO "io_uring"`},
		{"access log path not writable", []string{"--proxy-id", "web", "--xds-addr", "127.0.0.1:18000", "--access-log-path", "/nonexistent/dir/a.log"}, `--access-log-path: open /nonexistent/dir/a.log`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := execute(context.Background(), tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestRunsAndStopsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the proxy starts, sees the cancellation and shuts down cleanly
	if _, err := execute(ctx, "--proxy-id", "web", "--xds-addr", "127.0.0.1:1,127.0.0.1:2", "--admin-addr", "127.0.0.1:0", "--log-level", "debug"); err != nil {
		t.Errorf("run: %v", err)
	}
}

func TestResolveToken(t *testing.T) {
	tests := []struct {
		name                string
		args                []string
		envToken, envFile   string
		wantToken, wantFile string
	}{
		{"nothing", nil, "", "", "", ""},
		{"env token", nil, "env-tok", "", "env-tok", ""},
		{"env file wins over env token", nil, "env-tok", "/env/file", "", "/env/file"},
		{"flag token wins over env file", []string{"--token", "flag-tok"}, "", "/env/file", "flag-tok", ""},
		{"flag file wins over env token", []string{"--token-file", "/flag/file"}, "env-tok", "", "", "/flag/file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(envToken, tt.envToken)
			t.Setenv(envTokenFile, tt.envFile)
			cmd := newCommand()
			if err := cmd.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			var f flags
			f.token, _ = cmd.Flags().GetString("token")
			f.tokenFile, _ = cmd.Flags().GetString("token-file")
			token, file, err := resolveToken(cmd, f)
			if err != nil || token != tt.wantToken || file != tt.wantFile {
				t.Errorf("resolveToken = %q, %q, %v; want %q, %q", token, file, err, tt.wantToken, tt.wantFile)
			}
		})
	}
}

// TestAdminServesMetrics runs the sidecar (its control plane unreachable)
// and scrapes its admin API: the weft_proxy_* metrics with their scrape-time
// values, and the Go and process collectors.
func TestAdminServesMetrics(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	admin := ln.Addr().String()
	ln.Close()
	logPath := filepath.Join(t.TempDir(), "access.log")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var runErr error
	go func() {
		defer close(done)
		_, runErr = execute(ctx, "--proxy-id", "web", "--xds-addr", "127.0.0.1:1", "--admin-addr", admin, "--access-log-path", logPath, "--log-level", "error")
	}()
	defer func() {
		cancel()
		<-done
		if runErr != nil {
			t.Errorf("run: %v", runErr)
		}
	}()

	body := scrape(t, "http://"+admin+"/metrics", done)
	for _, want := range []string{
		"weft_proxy_xds_connected 0",
		"weft_proxy_access_log_dropped_total 0",
		`weft_proxy_xds_acks_total{type="Listener"} 0`,
		"go_goroutines",
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(body, "weft_proxy_cert_expiry_seconds ") {
		t.Error("/metrics reports a certificate expiry before there is a leaf")
	}
	if _, err := os.Stat(logPath); err != nil {
		t.Errorf("access log file: %v", err)
	}
}

// scrape probes url until the admin API answers (or run ends).
func scrape(t *testing.T, url string, done <-chan struct{}) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
			}
			return string(b)
		}
		select {
		case <-done:
			t.Fatal("run ended before its admin API answered")
		case <-deadline:
			t.Fatalf("GET %s: %v", url, err)
		case <-time.After(20 * time.Millisecond): // probe again: the admin listener is not bound yet
		}
	}
}
