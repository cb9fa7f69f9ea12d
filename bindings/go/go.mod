module github.com/turnout-dev/turnout-go

go 1.24
