// Package mtls builds the TLS configurations of weft-proxy's mesh
// connections: downstream (listeners) and upstream (clusters) mutual TLS
// with SPIFFE identities.
//
// The pieces that change while connections are made are read at handshake
// time through atomics, never captured: the local leaf certificate (a
// Leaf, the identity manager), the leaves of a terminating gateway's linked
// services (Leaves, by service name) and the trust bundles received over
// SDS (a Trust). So a renewed leaf or a rotated bundle applies to the very
// next handshake, including resumed TLS sessions (VerifyConnection runs on
// resumption too), while established connections are left alone.
//
// Two kinds of connection are not mesh mTLS: a Client marked External is
// TLS to a server outside the mesh (a terminating gateway originating TLS
// to a linked service), which presents no certificate and verifies the
// server's DNS name, as any TLS client does; and a Server with
// Certificates is TLS for clients outside the mesh (an API gateway's
// listener), which presents certificates received over SDS (a
// Certificates, read at handshake time as the rest), picked by the
// client's server name, and asks for no client certificate.
//
// What does not change between configurations — ALPN, SNI, SAN matchers,
// protocol versions — is compiled by proxy/config into Server and Client
// parameters; this package knows nothing of xDS.
package mtls
