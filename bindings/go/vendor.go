package turnout

// Directories of the module that hold no Go code but files native.go needs
// (the header, the prebuilt libraries), imported so that `go mod vendor`
// copies them with the package.
import (
	_ "github.com/turnout-dev/turnout-go/include"
	_ "github.com/turnout-dev/turnout-go/lib/darwin_amd64"
	_ "github.com/turnout-dev/turnout-go/lib/darwin_arm64"
	_ "github.com/turnout-dev/turnout-go/lib/linux_amd64"
	_ "github.com/turnout-dev/turnout-go/lib/linux_arm64"
)
