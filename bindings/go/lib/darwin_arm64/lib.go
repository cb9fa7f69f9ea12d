// Package darwin_arm64 holds no Go code: its directory holds libturnout_ffi.a for
// darwin/arm64, which native.go links. The turnout package imports it so
// that go mod vendor copies the library.
package darwin_arm64
