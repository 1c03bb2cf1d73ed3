package consultest

import "testing"

func TestUsageHasFlag(t *testing.T) {
	for _, tc := range []struct {
		name, usage, flag string
		want              bool
	}{
		{"1.14 form", "Usage:\n  -grpc-port=<value>\n  -grpc-tls-port=<value>\n     Sets it.\n", "grpc-tls-port", true},
		{"1.13 form", "Usage:\n  -grpc-port value\n    \tSets the gRPC API port.\n", "grpc-port", true},
		{"absent in 1.13", "Usage:\n  -grpc-port value\n    \tSets the gRPC API port.\n", "grpc-tls-port", false},
		{"a prefix is not the flag", "Usage:\n  -grpc-tls-port-extra=<value>\n", "grpc-tls-port", false},
		{"mentioned in help text only", "Usage:\n  -grpc-port=<value>\n     see -grpc-tls-port=\n", "grpc-tls-port", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := usageHasFlag(tc.usage, tc.flag); got != tc.want {
				t.Errorf("usageHasFlag(%q) = %v, want %v", tc.flag, got, tc.want)
			}
		})
	}
}
