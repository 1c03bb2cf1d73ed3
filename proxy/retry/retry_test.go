package retry

import (
	"strings"
	"testing"
	"time"
)

func TestParseConditions(t *testing.T) {
	tests := []struct {
		in      string
		want    Conditions
		wantErr string
	}{
		{"5xx", On5xx, ""},
		{"gateway-error, connect-failure,refused-stream", OnGatewayError | OnConnectFailure | OnRefusedStream, ""},
		{"cancelled,deadline-exceeded,internal,resource-exhausted,unavailable",
			OnGRPCCancelled | OnGRPCDeadlineExceeded | OnGRPCInternal | OnGRPCResourceExhausted | OnGRPCUnavailable, ""},
		{"envoy-ratelimited", 0, ""},
		{"", 0, ""},
		{"5xx,retriable-headers", 0, `retry_on condition "retriable-headers" is not supported`},
		{"bogus", 0, `"bogus"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseConditions(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseConditions(%q) = %b, %v; want %b", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestRetriable(t *testing.T) {
	resp := func(status, grpc int) Outcome { return Outcome{Status: status, GRPCStatus: grpc} }
	fail := func(f Failure) Outcome { return Outcome{Failure: f, GRPCStatus: -1} }
	tests := []struct {
		name string
		on   Conditions
		out  Outcome
		want bool
	}{
		{"5xx retries 500", On5xx, resp(500, -1), true},
		{"5xx retries 503", On5xx, resp(503, -1), true},
		{"5xx skips 404", On5xx, resp(404, -1), false},
		{"5xx retries resets", On5xx, fail(Reset), true},
		{"5xx retries connect failures", On5xx, fail(ConnectFailure), true},
		{"5xx retries per-try timeouts", On5xx, fail(Timeout), true},
		{"gateway-error retries 502", OnGatewayError, resp(502, -1), true},
		{"gateway-error retries 504", OnGatewayError, resp(504, -1), true},
		{"gateway-error skips 500", OnGatewayError, resp(500, -1), false},
		{"gateway-error retries per-try timeouts", OnGatewayError, fail(Timeout), true},
		{"reset retries resets", OnReset, fail(Reset), true},
		{"reset skips 503", OnReset, resp(503, -1), false},
		{"connect-failure retries connect failures", OnConnectFailure, fail(ConnectFailure), true},
		{"connect-failure skips resets", OnConnectFailure, fail(Reset), false},
		{"connect-failure skips timeouts", OnConnectFailure, fail(Timeout), false},
		{"refused-stream retries refused streams", OnRefusedStream, fail(RefusedStream), true},
		{"refused-stream skips resets", OnRefusedStream, fail(Reset), false},
		{"retriable-4xx retries 409", OnRetriable4xx, resp(409, -1), true},
		{"retriable-4xx skips 429", OnRetriable4xx, resp(429, -1), false},
		{"gRPC unavailable", OnGRPCUnavailable, resp(200, 14), true},
		{"gRPC cancelled", OnGRPCCancelled, resp(200, 1), true},
		{"gRPC deadline-exceeded", OnGRPCDeadlineExceeded, resp(200, 4), true},
		{"gRPC internal", OnGRPCInternal, resp(200, 13), true},
		{"gRPC resource-exhausted", OnGRPCResourceExhausted, resp(200, 8), true},
		{"gRPC unavailable skips internal", OnGRPCUnavailable, resp(200, 13), false},
		{"gRPC OK is never retried", OnGRPCUnavailable | OnGRPCInternal, resp(200, 0), false},
		{"no conditions", 0, resp(503, -1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Policy{On: tt.on, NumRetries: 1}
			if got := p.Retriable(tt.out); got != tt.want {
				t.Errorf("Retriable(%+v) = %v, want %v", tt.out, got, tt.want)
			}
		})
	}
	codes := &Policy{On: OnRetriableStatusCodes, StatusCodes: []int{418, 503}}
	if !codes.Retriable(resp(418, -1)) || codes.Retriable(resp(500, -1)) {
		t.Error("retriable-status-codes: want 418 retried and 500 not")
	}
	var none *Policy
	if none.Retriable(resp(503, -1)) {
		t.Error("nil policy retried")
	}
}

func TestBackoff(t *testing.T) {
	p := &Policy{BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
	for n, limit := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 30 * time.Millisecond, 3: 50 * time.Millisecond, 40: 50 * time.Millisecond} {
		var seenHigh bool
		for range 1000 {
			d := p.Backoff(n)
			if d < 0 || d > limit {
				t.Fatalf("Backoff(%d) = %s, want within [0, %s]", n, d, limit)
			}
			seenHigh = seenHigh || d > limit/2
		}
		if !seenHigh {
			t.Errorf("Backoff(%d) never above half its limit: no jitter over the whole range", n)
		}
	}
	if d := (&Policy{}).Backoff(1); d > DefaultBackoffBase {
		t.Errorf("default Backoff(1) = %s, want at most %s", d, DefaultBackoffBase)
	}
}
