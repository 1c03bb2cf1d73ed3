package certs

import "testing"

// FuzzParseServiceID checks that parsing a SPIFFE ID in Consul's service
// form never panics, and that an ID it accepts is exactly the ID its
// identity renders back: no two spellings name the same service.
func FuzzParseServiceID(f *testing.F) {
	for _, seed := range []string{
		"spiffe://weft.local/ns/default/dc/dc1/svc/api",
		"spiffe://11111111-2222-3333-4444-555555555555.consul/ns/default/dc/dc1/svc/web",
		"spiffe://weft.local/ns/default/dc/dc1/svc/api/extra",
		"spiffe://weft.local/ns//dc/dc1/svc/api",
		"spiffe://WEFT.local/ns/default/dc/dc1/svc/api",
		"spiffe://weft.local/ns/default/dc/dc1/svc/a%2Fb",
		"spiffe://weft.local/ns/default/dc/dc1/svc/api?x#y",
		"https://weft.local/ns/default/dc/dc1/svc/api",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		id, err := ParseServiceID(uri)
		if err != nil {
			return
		}
		rendered, err := id.ID()
		if err != nil {
			t.Fatalf("ParseServiceID(%q) = %+v, which does not render: %v", uri, id, err)
		}
		if rendered.String() != uri {
			t.Fatalf("ParseServiceID(%q) = %+v, which renders as %q", uri, id, rendered)
		}
	})
}
