module github.com/turnout-dev/turnout-go/peers

go 1.24

replace github.com/turnout-dev/turnout-go => ../

require (
	github.com/growthbook/growthbook-golang v0.7.0
	github.com/turnout-dev/turnout-go v0.0.0-00010101000000-000000000000
)

require github.com/tmaxmax/go-sse v0.10.0 // indirect
