// Package darwin_amd64 holds no Go code: its directory holds libturnout_ffi.a for
// darwin/amd64, which native.go links. The turnout package imports it so
// that go mod vendor copies the library.
package darwin_amd64
