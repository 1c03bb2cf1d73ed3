package config

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/weft-mesh/weft/proxy/internal/xdstest"
	"github.com/weft-mesh/weft/proxy/route"
)

// directRoutes is a route configuration whose one route answers with dr.
func directRoutes(dr *routev3.DirectResponseAction, maxBody *wrapperspb.UInt32Value) *routev3.RouteConfiguration {
	rc := xdstest.Routes("api", &routev3.Route{Match: xdstest.Prefix("/"), Action: &routev3.Route_DirectResponse{DirectResponse: dr}})
	rc.MaxDirectResponseBodySizeBytes = maxBody
	return rc
}

func inlineString(s string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: s}}
}

func TestCompileDirectResponse(t *testing.T) {
	jwt := "refused: this route requires a JWT, which Weft's API gateway cannot verify\n"
	tests := []struct {
		name    string
		dr      *routev3.DirectResponseAction
		maxBody *wrapperspb.UInt32Value
		want    *route.DirectResponse
	}{
		{"status and inline_string body, as the control plane refuses a JWT route", &routev3.DirectResponseAction{Status: 403, Body: inlineString(jwt)}, nil,
			&route.DirectResponse{Status: 403, Body: []byte(jwt)}},
		{"inline_bytes body", &routev3.DirectResponseAction{Status: 200, Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: []byte("ok")}}}, nil,
			&route.DirectResponse{Status: 200, Body: []byte("ok")}},
		{"no body", &routev3.DirectResponseAction{Status: 503}, nil, &route.DirectResponse{Status: 503}},
		{"empty body", &routev3.DirectResponseAction{Status: 204, Body: inlineString("")}, nil, &route.DirectResponse{Status: 204}},
		{"the default bound, 4096 bytes", &routev3.DirectResponseAction{Status: 200, Body: inlineString(strings.Repeat("x", 4096))}, nil,
			&route.DirectResponse{Status: 200, Body: []byte(strings.Repeat("x", 4096))}},
		{"a raised bound", &routev3.DirectResponseAction{Status: 599, Body: inlineString(strings.Repeat("x", 5000))}, wrapperspb.UInt32(5000),
			&route.DirectResponse{Status: 599, Body: []byte(strings.Repeat("x", 5000))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tbl, err := compileRouteConfig(directRoutes(tt.dr, tt.maxBody))
			if err != nil {
				t.Fatal(err)
			}
			a := tbl.VirtualHosts()[0].Routes[0].Action
			if diff := cmp.Diff(tt.want, a.Direct, cmp.Comparer(func(a, b []byte) bool { return string(a) == string(b) })); diff != "" {
				t.Errorf("direct response (-want +got):\n%s", diff)
			}
			if len(a.Clusters) != 0 {
				t.Errorf("clusters = %v, want none", a.Clusters)
			}
		})
	}
}

func TestCompileRejectsDirectResponse(t *testing.T) {
	const where = `route configuration "api": virtual host "api": route 0 (""): `
	tests := []struct {
		name    string
		dr      *routev3.DirectResponseAction
		maxBody *wrapperspb.UInt32Value
		wantErr string
	}{
		{"informational status", &routev3.DirectResponseAction{Status: 101}, nil, `direct_response: status 101 is not supported; want 200 to 599`},
		{"status beyond 599", &routev3.DirectResponseAction{Status: 600}, nil, `direct_response: status 600 is not supported; want 200 to 599`},
		{"body over the default bound", &routev3.DirectResponseAction{Status: 200, Body: inlineString(strings.Repeat("x", 4097))}, nil,
			`direct_response: body is 4097 bytes; the maximum is 4096 (max_direct_response_body_size_bytes)`},
		{"body over a lowered bound", &routev3.DirectResponseAction{Status: 403, Body: inlineString("forbidden")}, wrapperspb.UInt32(8),
			`direct_response: body is 9 bytes; the maximum is 8 (max_direct_response_body_size_bytes)`},
		{"body from a file", &routev3.DirectResponseAction{Status: 200, Body: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/etc/motd"}}}, nil,
			`direct_response: body: only inline_bytes and inline_string are supported`},
		{"body_format", &routev3.DirectResponseAction{Status: 200, BodyFormat: &corev3.SubstitutionFormatString{}}, nil,
			`direct_response: body_format is not supported`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(state(directRoutes(tt.dr, tt.maxBody)))
			if err == nil || err.Error() != where+tt.wantErr {
				t.Errorf("Compile error:\n  %v\nwant:\n  %s", err, where+tt.wantErr)
			}
		})
	}
}
