module github.com/turnout-dev/turnout-go/examples/go

go 1.24

replace github.com/turnout-dev/turnout-go => ../../bindings/go

require github.com/turnout-dev/turnout-go v0.0.0-00010101000000-000000000000
