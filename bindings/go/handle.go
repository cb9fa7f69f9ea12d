package turnout

import (
	"runtime"
	"sync/atomic"
	"unsafe"
)

// opaque stands for the C handle types (cgo's incomplete types cannot be
// type arguments), so one handle implementation serves all three.
type opaque struct{}

// handle owns one C handle: Close frees it once; a cleanup (runtime.AddCleanup,
// the finalizer pattern of wasmtime-go) frees it if its owner is garbage
// collected without Close. Every method reading the pointer calls
// runtime.KeepAlive(owner) after its C call, so the cleanup cannot run while
// the handle is in use.
type handle struct {
	p       atomic.Pointer[opaque]
	cleanup runtime.Cleanup
	kind    string
	free    func(unsafe.Pointer)
}

// bind takes ownership of p for owner.
func bind[O any](owner *O, h *handle, p unsafe.Pointer, kind string, free func(unsafe.Pointer)) {
	h.p.Store((*opaque)(p))
	h.kind = kind
	h.free = free
	debugCreated(p, kind)
	h.cleanup = runtime.AddCleanup(owner, func(p unsafe.Pointer) {
		if debugReleased(p, kind, true) {
			free(p)
		}
	}, p)
}

// get is the live pointer, or nil after close.
func (h *handle) get() unsafe.Pointer { return unsafe.Pointer(h.p.Load()) }

// close frees the handle once; later calls do nothing.
func (h *handle) close() {
	p := unsafe.Pointer(h.p.Swap(nil))
	if p == nil {
		return
	}
	h.cleanup.Stop()
	if debugReleased(p, h.kind, false) {
		h.free(p)
	}
}
