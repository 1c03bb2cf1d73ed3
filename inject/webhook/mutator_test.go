package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/weft-mesh/weft/inject"
)

func podJSON(t *testing.T, annotations map[string]string) []byte {
	t.Helper()
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Namespace: "shop", Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
	}
	b, err := json.Marshal(&pod)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func review(t *testing.T, m *Mutator, req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	t.Helper()
	body, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req})
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, "/mutate", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	m.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Kind != "AdmissionReview" || out.APIVersion != "admission.k8s.io/v1" || out.Response.UID != req.UID {
		t.Fatalf("response review %+v", out)
	}
	return out.Response
}

func podRequest(op admissionv1.Operation, raw []byte) *admissionv1.AdmissionRequest {
	return &admissionv1.AdmissionRequest{
		UID: "42", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespace: "shop",
		Operation: op, Object: runtime.RawExtension{Raw: raw},
	}
}

func TestMutatorInjectsWithAJSONPatch(t *testing.T) {
	m := &Mutator{Config: inject.DefaultConfig()}
	raw := podJSON(t, map[string]string{inject.Upstreams: "api:9191"})
	resp := review(t, m, podRequest(admissionv1.Create, raw))
	if !resp.Allowed || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("response %+v", resp)
	}
	patch, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := patch.Apply(raw)
	if err != nil {
		t.Fatal(err)
	}
	var got corev1.Pod
	if err := json.Unmarshal(patched, &got); err != nil {
		t.Fatal(err)
	}
	var want corev1.Pod
	json.Unmarshal(raw, &want)
	if _, err := inject.Pod(&want.ObjectMeta, &want.Spec, m.Config); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("patched pod differs from inject.Pod's (-want +got):\n%s", diff)
	}
}

func TestMutatorLeavesOthersAlone(t *testing.T) {
	m := &Mutator{Config: inject.DefaultConfig()}
	tests := []struct {
		name string
		req  *admissionv1.AdmissionRequest
	}{
		{"update", podRequest(admissionv1.Update, podJSON(t, nil))},
		{"opted out", podRequest(admissionv1.Create, podJSON(t, map[string]string{inject.Inject: "false"}))},
		{"not a pod", &admissionv1.AdmissionRequest{UID: "42", Kind: metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, Operation: admissionv1.Create}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := review(t, m, tt.req)
			if !resp.Allowed || resp.Patch != nil {
				t.Errorf("response %+v, want allowed without patch", resp)
			}
		})
	}
}

func TestMutatorDeniesInvalidAnnotations(t *testing.T) {
	m := &Mutator{Config: inject.DefaultConfig()}
	resp := review(t, m, podRequest(admissionv1.Create, podJSON(t, map[string]string{inject.Upstreams: "api"})))
	if resp.Allowed || resp.Result == nil || resp.Result.Code != http.StatusBadRequest ||
		!strings.Contains(resp.Result.Message, `annotation weft.io/upstreams "api"`) {
		t.Errorf("response %+v, want denied naming the annotation", resp)
	}
}

func TestMutatorRejectsBadRequests(t *testing.T) {
	tests := []struct {
		name, method, contentType, body string
		want                            int
	}{
		{"GET", http.MethodGet, "application/json", "", http.StatusMethodNotAllowed},
		{"not JSON", http.MethodPost, "text/plain", "{}", http.StatusUnsupportedMediaType},
		{"garbage", http.MethodPost, "application/json", "{", http.StatusBadRequest},
		{"no request", http.MethodPost, "application/json", "{}", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(tt.method, "/mutate", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", tt.contentType)
			(&Mutator{Config: inject.DefaultConfig()}).ServeHTTP(rec, r)
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d", rec.Code, tt.want)
			}
		})
	}
}

// TestMutatorPatchKeepsUnknownFields checks the patch never touches fields
// this build's Kubernetes types do not know, as a newer API server's pods
// may hold.
func TestMutatorPatchKeepsUnknownFields(t *testing.T) {
	m := &Mutator{Config: inject.DefaultConfig()}
	var obj map[string]any
	json.Unmarshal(podJSON(t, nil), &obj)
	obj["spec"].(map[string]any)["futureField"] = map[string]any{"enabled": true}
	raw, _ := json.Marshal(obj)
	resp := review(t, m, podRequest(admissionv1.Create, raw))
	patch, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatal(err)
	}
	patched, err := patch.Apply(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(patched), `"futureField":{"enabled":true}`) || strings.Contains(string(resp.Patch), "futureField") {
		t.Errorf("patch touched an unknown field: %s", resp.Patch)
	}
}
