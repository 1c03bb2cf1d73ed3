package k8s

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/weft-mesh/weft/internal/pkitest"
	"github.com/weft-mesh/weft/internal/poll"
	"github.com/weft-mesh/weft/internal/testproc"
)

// cluster is a control plane of one etcd and one kube-apiserver on
// loopback, with no controllers, scheduler or kubelet: objects are stored
// and admitted, never run. The test authenticates as a system:masters
// user with a static token.
type cluster struct {
	client  kubernetes.Interface
	dynamic dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	dir := t.TempDir()
	etcd := startEtcd(t, dir)
	ca := pkitest.NewCA(t, "kube-apiserver CA")
	serving := ca.IssueFiles(t, dir, "apiserver", pkitest.LeafSpec{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}})
	token := randomToken(t)
	writeFile(t, filepath.Join(dir, "tokens.csv"), token+`,admin,admin,"system:masters"`+"\n")
	saKey := pkitest.NewKey(t)
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sa.key"), string(pkitest.KeyPEM(t, saKey)))
	writeFile(t, filepath.Join(dir, "sa.pub"), string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})))

	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	apiserver := startDaemon(t, "kube-apiserver", tool(t, "WEFT_KUBE_APISERVER_BIN", "kube-apiserver"),
		"--etcd-servers=http://"+etcd,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+port,
		"--tls-cert-file="+serving.CertFile, "--tls-private-key-file="+serving.KeyFile,
		"--token-auth-file="+filepath.Join(dir, "tokens.csv"), "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+filepath.Join(dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(dir, "sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		// No controller manager creates the default ServiceAccount pods need.
		"--disable-admission-plugins=ServiceAccount",
		"--enable-priority-and-fairness=false", "--endpoint-reconciler-type=none",
		"--cert-dir="+filepath.Join(dir, "apiserver-certs"), "--profiling=false", "--v=1")

	cfg := &rest.Config{Host: "https://" + addr, BearerToken: token,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca.PEM()}, QPS: 100, Burst: 200}
	waitReady(t, cfg, apiserver)
	c := &cluster{}
	c.client = kubernetes.NewForConfigOrDie(cfg)
	c.dynamic = dynamic.NewForConfigOrDie(cfg)
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(cfg)))
	return c
}

// startEtcd runs bin/etcd and returns its client address once healthy.
func startEtcd(t *testing.T, dir string) string {
	t.Helper()
	client, peer := freeAddr(t), freeAddr(t)
	d := startDaemon(t, "etcd", tool(t, "WEFT_ETCD_BIN", "etcd"), "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-url", "http://"+client, "--listen-peer-url", "http://"+peer)
	poll.Until(t, 60*time.Second, "etcd healthy", func() error {
		if d.Exited() {
			t.Fatal("etcd exited")
		}
		return httpOK(http.DefaultClient, "http://"+client+"/health")
	})
	return client
}

// waitReady waits for the API server's /readyz.
func waitReady(t *testing.T, cfg *rest.Config, d *testproc.Process) {
	t.Helper()
	transport, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	poll.Until(t, 120*time.Second, "kube-apiserver ready", func() error {
		if d.Exited() {
			t.Fatal("kube-apiserver exited")
		}
		return httpOK(c, cfg.Host+"/readyz")
	})
}

func httpOK(c *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func randomToken(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
