package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
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
	for _, flag := range []string{"--proxy-id", "--xds-addr", "--admin-addr", "--log-level", "--log-format", "--drain-timeout", "--token", "--token-file", "CONSUL_HTTP_TOKEN", "CONSUL_HTTP_TOKEN_FILE", "/certs", "127.0.0.1:19000", "10s"} {
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
		{"no proxy id", []string{"--xds-addr", "127.0.0.1:18000"}, `required flag(s) "proxy-id" not set`},
		{"no xds address", []string{"--proxy-id", "web"}, `required flag(s) "xds-addr" not set`},
		{"bad log level", []string{"--proxy-id", "web", "--xds-addr", "127.0.0.1:18000", "--log-level", "loud"}, `--log-level "loud"`},
		{"bad log format", []string{"--proxy-id", "web", "--xds-addr", "127.0.0.1:18000", "--log-format", "xml"}, `--log-format "xml"`},
		{"bad xds address", []string{"--proxy-id", "web", "--xds-addr", "nowhere"}, `XDSAddrs[0] "nowhere"`},
		{"stray argument", []string{"--proxy-id", "web", "--xds-addr", "127.0.0.1:18000", "extra"}, `unknown command "extra"`},
		{"token and token file", []string{"--proxy-id", "web", "--xds-addr", "127.0.0.1:18000", "--token", "t", "--token-file", "/f"}, `--token and --token-file: give at most one`},
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
