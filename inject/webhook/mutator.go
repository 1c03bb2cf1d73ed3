// Package webhook is weft injector: a Kubernetes mutating admission webhook
// that injects Weft's sidecar into pods as they are created. Mutator
// answers admission.k8s.io/v1 AdmissionReviews with a JSONPatch made by
// inject.Pod; Server serves it over TLS with a certificate it reloads when
// its files change.
//
// Which pods reach the webhook is decided by the API server, from the
// MutatingWebhookConfiguration's selectors (namespaces labelled
// weft.io/inject=true, and pods labelled weft.io/inject=true elsewhere);
// the webhook injects every pod it is sent unless the pod opts out, so it
// needs no access to the Kubernetes API.
package webhook

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net/http"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weft-mesh/weft/inject"
)

// maxReviewBytes bounds a request body; the API server's own limit on an
// object is 3 MiB.
const maxReviewBytes = 4 << 20

// Mutator is the /mutate handler. Its fields must not change once it
// serves; it is safe for concurrent use.
type Mutator struct {
	Config inject.Config
	Logger *slog.Logger
}

var _ http.Handler = (*Mutator)(nil)

func (m *Mutator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST an AdmissionReview", http.StatusMethodNotAllowed)
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		http.Error(w, "Content-Type must be application/json", http.StatusUnsupportedMediaType)
		return
	}
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxReviewBytes)).Decode(&review); err != nil {
		http.Error(w, "decode AdmissionReview: "+err.Error(), http.StatusBadRequest)
		return
	}
	if review.Request == nil {
		http.Error(w, "AdmissionReview has no request", http.StatusBadRequest)
		return
	}
	resp := m.admit(review.Request)
	resp.UID = review.Request.UID
	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(&out)
}

// admit decides one request: pods being created are injected; everything
// else is allowed unchanged.
func (m *Mutator) admit(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	logger := cmp.Or(m.Logger, slog.Default()).With("namespace", req.Namespace, "uid", req.UID)
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create || req.SubResource != "" {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		return deny(fmt.Errorf("decode pod: %w", err))
	}
	logger = logger.With("pod", cmp.Or(pod.Name, pod.GenerateName+"*"))
	original := pod.DeepCopy()
	res, err := inject.Pod(&pod.ObjectMeta, &pod.Spec, m.Config)
	if err != nil {
		logger.Warn("refusing pod", "error", err)
		return deny(fmt.Errorf("weft injector: %w", err))
	}
	if !res.Injected {
		logger.Debug("not injected", "reason", res.Skipped)
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	patch, err := podPatch(original, &pod)
	if err != nil {
		logger.Error("build patch", "error", err)
		return deny(err)
	}
	logger.Info("injected")
	pt := admissionv1.PatchTypeJSONPatch
	return &admissionv1.AdmissionResponse{Allowed: true, Patch: patch, PatchType: &pt}
}

// podPatch is the JSONPatch from the pod as decoded to the pod injected.
// Both sides are encoded from the same Go types, so a field those types do
// not know (an API server newer than this build) is in neither and no
// operation touches it.
func podPatch(original, injected *corev1.Pod) ([]byte, error) {
	before, err := json.Marshal(original)
	if err != nil {
		return nil, fmt.Errorf("encode pod: %w", err)
	}
	after, err := json.Marshal(injected)
	if err != nil {
		return nil, fmt.Errorf("encode injected pod: %w", err)
	}
	ops, err := jsonpatch.CreatePatch(before, after)
	if err != nil {
		return nil, fmt.Errorf("patch: %w", err)
	}
	return json.Marshal(ops)
}

func deny(err error) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusBadRequest,
		Reason: metav1.StatusReasonBadRequest, Message: err.Error(),
	}}
}
