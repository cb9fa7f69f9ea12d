//go:build !cgo

package turnout

// The package calls the turnout library through cgo: build with
// CGO_ENABLED=1 and a C toolchain (gcc or clang; when cross-compiling, CC
// set to the target's compiler, e.g. CC=aarch64-linux-gnu-gcc).
var _ = turnout_needs_CGO_ENABLED_1_and_a_C_compiler
