package config

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// onlyFields fails, naming the field, when m has a populated field that is
// not allowed. Security-relevant messages (TLS contexts, RBAC) are checked
// this way so that a field weft-proxy does not apply is rejected rather
// than silently ignored, including fields added to the API later.
func onlyFields(m proto.Message, allowed ...string) error {
	var unsupported []string
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		if !slices.Contains(allowed, string(fd.Name())) {
			unsupported = append(unsupported, string(fd.Name()))
		}
		return true
	})
	if len(unsupported) == 0 {
		return nil
	}
	slices.Sort(unsupported)
	return fmt.Errorf("%s is not supported", unsupported[0])
}

// oneofName names the populated field of a oneof, for error messages.
func oneofName(m proto.Message, oneof string) string {
	r := m.ProtoReflect()
	od := r.Descriptor().Oneofs().ByName(protoreflect.Name(oneof))
	if od == nil {
		return "<unknown>"
	}
	if fd := r.WhichOneof(od); fd != nil {
		return string(fd.Name())
	}
	return "<unset>"
}
