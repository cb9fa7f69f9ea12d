// Package include holds no Go code: its directory holds turnout.h, the C
// header native.go includes. The turnout package imports it so that go mod
// vendor copies the header.
package include
