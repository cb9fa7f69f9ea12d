//go:build !debug

package turnout

import "unsafe"

// Without the debug build tag the handle checks compile to nothing.

func debugCreated(unsafe.Pointer, string) {}

// debugReleased says whether the handle should really be freed (always, here).
func debugReleased(unsafe.Pointer, string, bool) bool { return true }

// debugUse checks, after a C call, that the handles it used were still live.
func debugUse(unsafe.Pointer) {}

// debugBeforeCall runs between loading a handle and calling C.
func debugBeforeCall() {}
