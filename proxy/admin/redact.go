package admin

import (
	annotations "github.com/cncf/xds/go/udpa/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// redacted stands for a secret value in /config_dump, as Envoy's admin
// API shows it.
const redacted = "[redacted]"

// redact returns m, or, when m holds a field the Envoy API marks
// sensitive (udpa.annotations.sensitive: a certificate's private_key and
// password, a generic secret, session ticket keys), a copy of m in which
// every string and bytes value under such a field is "[redacted]", as
// Envoy's admin redacts; messages packed in an Any are redacted too. m,
// shared with the xDS client's state, is never modified.
func redact(m proto.Message) proto.Message {
	c := proto.Clone(m)
	if !redactMessage(c.ProtoReflect(), false) {
		return m
	}
	return c
}

// redactMessage redacts m in place, every string and bytes under it when
// sensitive; it reports whether it changed anything.
func redactMessage(m protoreflect.Message, sensitive bool) bool {
	if m.Descriptor().FullName() == "google.protobuf.Any" {
		return redactAny(m, sensitive)
	}
	type field struct {
		fd protoreflect.FieldDescriptor
		v  protoreflect.Value
	}
	var fields []field // set after Range, which must not see m change
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		fields = append(fields, field{fd, v})
		return true
	})
	changed := false
	for _, f := range fields {
		s := sensitive || proto.GetExtension(f.fd.Options(), annotations.E_Sensitive).(bool)
		switch {
		case f.fd.IsList():
			l := f.v.List()
			for i := range l.Len() {
				if v, ok := redactValue(f.fd, l.Get(i), s); ok {
					l.Set(i, v)
					changed = true
				}
			}
		case f.fd.IsMap():
			mv := f.v.Map()
			mv.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
				if nv, ok := redactValue(f.fd.MapValue(), v, s); ok {
					mv.Set(k, nv)
					changed = true
				}
				return true
			})
		default:
			if v, ok := redactValue(f.fd, f.v, s); ok {
				m.Set(f.fd, v)
				changed = true
			}
		}
	}
	return changed
}

// redactValue redacts one value of field fd: a string or bytes when
// sensitive, a message in place. It returns the value to set, and false
// when nothing changed.
func redactValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, sensitive bool) (protoreflect.Value, bool) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return v, redactMessage(v.Message(), sensitive)
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(redacted), sensitive
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte(redacted)), sensitive
	}
	return v, false
}

// redactAny redacts the message packed in an Any; one that cannot be
// unpacked is redacted whole when sensitive.
func redactAny(m protoreflect.Message, sensitive bool) bool {
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		return false
	}
	inner, err := a.UnmarshalNew()
	if err != nil {
		if sensitive {
			a.Value = []byte(redacted)
		}
		return sensitive
	}
	if !redactMessage(inner.ProtoReflect(), sensitive) {
		return false
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(inner)
	if err != nil {
		a.Value = []byte(redacted)
		return true
	}
	a.Value = b
	return true
}
