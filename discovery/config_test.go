package discovery

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
)

func TestConfigValidate(t *testing.T) {
	client, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; empty means valid
	}{
		{name: "defaults", cfg: Config{Client: client}},
		{name: "no client", cfg: Config{}, wantErr: "Client is required"},
		{name: "negative wait", cfg: Config{Client: client, QueryWait: -time.Second}, wantErr: "QueryWait is negative"},
		{name: "debounce above its max", cfg: Config{Client: client, Debounce: time.Second, DebounceMax: time.Millisecond},
			wantErr: "DebounceMax (1ms) is less than Debounce (1s)"},
		{name: "large debounce raises the default max", cfg: Config{Client: client, Debounce: time.Second}},
		{name: "backoff base above its max", cfg: Config{Client: client, BackoffBase: time.Minute, BackoffMax: time.Second},
			wantErr: "BackoffMax (1s) is less than BackoffBase (1m0s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}
