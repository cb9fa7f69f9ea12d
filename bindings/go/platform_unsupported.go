//go:build cgo && !(linux && (amd64 || arm64)) && !(darwin && (amd64 || arm64))

package turnout

// The module carries the native library for linux/amd64, linux/arm64,
// darwin/amd64 and darwin/arm64 only (lib/<GOOS>_<GOARCH>/).
var _ = turnout_supports_only_linux_and_darwin_on_amd64_and_arm64
