// Package translate turns a catalog snapshot into Envoy v3 xDS resources.
//
// Translate is a pure function: it reads nothing but its argument and has no
// side effects, so the same catalog always yields the same resources. The
// resources that depend only on a destination service (its cluster, load
// assignment and route configuration) are built once per call and shared by
// pointer between every proxy that needs them. Callers must treat every
// returned proto as immutable.
//
// Resource names and shapes are documented in docs/xds.md.
package translate
