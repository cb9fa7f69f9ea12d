// Package linux_amd64 holds no Go code: its directory holds libturnout_ffi.a for
// linux/amd64, which native.go links. The turnout package imports it so
// that go mod vendor copies the library.
package linux_amd64
