package traces

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// maxOTLPBody bounds one OTLP/HTTP export.
const maxOTLPBody = 8 << 20

// Receiver accepts OTLP trace exports over gRPC and HTTP into a Store.
type Receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	Store *Store
}

// Export implements OTLP/gRPC's TraceService.
func (r *Receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.Store.Add(FromOTLP(req))
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// ServeHTTP implements OTLP/HTTP's POST /v1/traces, protobuf or JSON.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "OTLP/HTTP: POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxOTLPBody))
	if err != nil {
		http.Error(w, "OTLP/HTTP: read body: "+err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	msg := &collectortrace.ExportTraceServiceRequest{}
	ct := req.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/json"):
		err = protojson.Unmarshal(body, msg)
	case strings.HasPrefix(ct, "application/x-protobuf"), ct == "":
		err = proto.Unmarshal(body, msg)
	default:
		http.Error(w, fmt.Sprintf("OTLP/HTTP: content type %q: want application/x-protobuf or application/json", ct), http.StatusUnsupportedMediaType)
		return
	}
	if err != nil {
		http.Error(w, "OTLP/HTTP: decode: "+err.Error(), http.StatusBadRequest)
		return
	}
	r.Store.Add(FromOTLP(msg))
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// FromOTLP converts an OTLP export into spans. Spans without a valid trace
// or span ID are skipped.
func FromOTLP(req *collectortrace.ExportTraceServiceRequest) []Span {
	var out []Span
	for _, rs := range req.GetResourceSpans() {
		service := attr(rs.GetResource().GetAttributes(), "service.name")
		if service == "" {
			service = "unknown"
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				if len(sp.GetTraceId()) != 16 || len(sp.GetSpanId()) != 8 {
					continue
				}
				out = append(out, convertSpan(service, sp))
			}
		}
	}
	return out
}

func convertSpan(service string, sp *tracev1.Span) Span {
	s := Span{
		TraceID: hex.EncodeToString(sp.GetTraceId()),
		SpanID:  hex.EncodeToString(sp.GetSpanId()),
		Service: service,
		Name:    sp.GetName(),
		Kind:    strings.TrimPrefix(sp.GetKind().String(), "SPAN_KIND_"),
		Start:   time.Unix(0, int64(sp.GetStartTimeUnixNano())),
		End:     time.Unix(0, int64(sp.GetEndTimeUnixNano())),
		Error:   sp.GetStatus().GetCode() == tracev1.Status_STATUS_CODE_ERROR,

		StatusMessage: sp.GetStatus().GetMessage(),
	}
	if len(sp.GetParentSpanId()) == 8 {
		s.ParentSpanID = hex.EncodeToString(sp.GetParentSpanId())
	}
	s.Attributes = attrs(sp.GetAttributes())
	for _, e := range sp.GetEvents() {
		s.Events = append(s.Events, Event{Time: time.Unix(0, int64(e.GetTimeUnixNano())), Name: e.GetName(), Attributes: attrs(e.GetAttributes())})
	}
	return s
}

// attrs converts OTLP attributes; nil for none.
func attrs(kvs []*commonv1.KeyValue) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = valueString(kv.GetValue())
	}
	return m
}

func attr(kvs []*commonv1.KeyValue, key string) string {
	for _, kv := range kvs {
		if kv.GetKey() == key {
			return valueString(kv.GetValue())
		}
	}
	return ""
}

func valueString(v *commonv1.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonv1.AnyValue_StringValue:
		return x.StringValue
	case *commonv1.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonv1.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonv1.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case nil:
		return ""
	default:
		b, _ := protojson.Marshal(v)
		return string(b)
	}
}
