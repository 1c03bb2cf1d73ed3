// Package archtest holds tests of Weft's architecture rules: which packages
// may link which. It has no code of its own.
package archtest
