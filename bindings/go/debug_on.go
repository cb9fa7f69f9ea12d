//go:build debug

package turnout

// With `-tags debug`, handles are checked: a freed handle is quarantined
// (never really freed, so its address is never reused) and every C call
// checks afterwards that the handles it used had not been freed before or
// during the call. A missing runtime.KeepAlive shows up as a use-after-free
// report instead of silent memory corruption; a Close followed by a cleanup
// shows up as a double free. Tests read the reports with debugSnapshot.

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

var debugState struct {
	sync.Mutex
	live       map[unsafe.Pointer]string
	freed      map[unsafe.Pointer]string
	byCleanup  map[string]int
	byClose    map[string]int
	violations []string
}

func init() {
	debugState.live = map[unsafe.Pointer]string{}
	debugState.freed = map[unsafe.Pointer]string{}
	debugState.byCleanup = map[string]int{}
	debugState.byClose = map[string]int{}
}

func debugCreated(p unsafe.Pointer, kind string) {
	debugState.Lock()
	defer debugState.Unlock()
	if k, ok := debugState.live[p]; ok {
		debugState.violations = append(debugState.violations, fmt.Sprintf("%s %p created while %s %p is live", kind, p, k, p))
	}
	debugState.live[p] = kind
}

func debugReleased(p unsafe.Pointer, kind string, cleanup bool) bool {
	debugState.Lock()
	defer debugState.Unlock()
	if k, ok := debugState.freed[p]; ok {
		debugState.violations = append(debugState.violations, fmt.Sprintf("double free of %s %p", k, p))
		return false
	}
	delete(debugState.live, p)
	debugState.freed[p] = kind
	if cleanup {
		debugState.byCleanup[kind]++
	} else {
		debugState.byClose[kind]++
	}
	return false // quarantined
}

func debugUse(p unsafe.Pointer) {
	if p == nil {
		return
	}
	debugState.Lock()
	defer debugState.Unlock()
	if k, ok := debugState.freed[p]; ok {
		debugState.violations = append(debugState.violations, fmt.Sprintf("use after free of %s %p", k, p))
	}
}

// debugReport is what the debug checks saw.
type debugReport struct {
	Live       int
	ByCleanup  map[string]int
	ByClose    map[string]int
	Violations []string
}

func debugSnapshot() debugReport {
	debugState.Lock()
	defer debugState.Unlock()
	r := debugReport{Live: len(debugState.live), ByCleanup: map[string]int{}, ByClose: map[string]int{}}
	for k, v := range debugState.byCleanup {
		r.ByCleanup[k] = v
	}
	for k, v := range debugState.byClose {
		r.ByClose[k] = v
	}
	r.Violations = append(r.Violations, debugState.violations...)
	return r
}

var debugCalls atomic.Uint64

// debugBeforeCall forces a collection (and gives cleanups time to run) on
// every 4th call, between loading a handle and calling C: if the handle's owner is
// not kept alive past the call, its cleanup frees the handle here and
// debugUse reports it after the call.
func debugBeforeCall() {
	if debugCalls.Add(1)%4 == 0 {
		runtime.GC()
		time.Sleep(200 * time.Microsecond)
	}
}
