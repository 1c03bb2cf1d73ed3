package memtrim

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCgroupMemoryLimit(t *testing.T) {
	tests := []struct {
		name    string
		cgroup  string            // /proc/self/cgroup; "" for none
		files   map[string]string // under the cgroup root
		want    int64
		wantOK  bool
		wantErr bool
	}{
		{name: "container: the namespace root holds the limit", cgroup: "0::/\n",
			files: map[string]string{"memory.max": "134217728\n"}, want: 128 << 20, wantOK: true},
		{name: "systemd service: the limit is at the process's path", cgroup: "0::/system.slice/weft-proxy.service\n",
			files: map[string]string{"system.slice/weft-proxy.service/memory.max": "67108864\n"}, want: 64 << 20, wantOK: true},
		{name: "no limit", cgroup: "0::/\n", files: map[string]string{"memory.max": "max\n"}},
		{name: "cgroup v1 only", cgroup: "4:memory:/docker/abc\n"},
		{name: "no cgroup file"},
		{name: "garbage limit", cgroup: "0::/\n", files: map[string]string{"memory.max": "lots\n"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "cgroup")
			for name, content := range tt.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			cgroupFile := filepath.Join(dir, "self-cgroup")
			if tt.cgroup != "" {
				if err := os.WriteFile(cgroupFile, []byte(tt.cgroup), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, ok, err := CgroupMemoryLimit(root, cgroupFile)
			if (err != nil) != tt.wantErr {
				t.Fatalf("error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("CgroupMemoryLimit = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
