package turnout

// The one file that touches C. Every call into libturnout_ffi goes through a
// wrapper here; the rest of the package is plain Go. The callers own the
// handles and call runtime.KeepAlive on their owner after each wrapper, so a
// finalizer (runtime.AddCleanup) can never free a handle during a call.
//
// Strings and byte slices are passed as (pointer, length) straight from Go
// memory (no copies, no C strings): cgo pins them for the call and the
// library never keeps them. Everything the library returns is copied into Go
// memory and freed at once with its matching turnout_*_free.
//
// The library is linked statically: lib/<GOOS>_<GOARCH>/libturnout_ffi.a
// (prebuilt in the published module; placed by `cargo xtask go` in this
// repository) with the header include/turnout.h. platform_unsupported.go and
// cgo_required.go turn any other build into a clear compile error.
//
// debugBeforeCall (a no-op without the debug build tag) sits between loading
// a handle and calling C: with -tags debug it forces garbage collection
// there now and then, so a missing KeepAlive is caught by the GC test.

/*
#cgo CFLAGS: -I${SRCDIR}/include
#cgo linux,amd64 LDFLAGS: ${SRCDIR}/lib/linux_amd64/libturnout_ffi.a -lm -ldl -lpthread
#cgo linux,arm64 LDFLAGS: ${SRCDIR}/lib/linux_arm64/libturnout_ffi.a -lm -ldl -lpthread
#cgo darwin,amd64 LDFLAGS: ${SRCDIR}/lib/darwin_amd64/libturnout_ffi.a
#cgo darwin,arm64 LDFLAGS: ${SRCDIR}/lib/darwin_arm64/libturnout_ffi.a
#cgo noescape turnout_context_int64
#cgo nocallback turnout_context_int64
#cgo noescape turnout_context_float64
#cgo nocallback turnout_context_float64
#cgo noescape turnout_context_bool
#cgo nocallback turnout_context_bool
#cgo noescape turnout_client_get_int64
#cgo nocallback turnout_client_get_int64
#cgo noescape turnout_client_get_float64
#cgo nocallback turnout_client_get_float64
#cgo noescape turnout_client_get_bool
#cgo nocallback turnout_client_get_bool
#cgo noescape turnout_client_get_string
#cgo nocallback turnout_client_get_string
#cgo noescape turnout_client_get_json
#cgo nocallback turnout_client_get_json
#cgo noescape turnout_client_get_decision
#cgo nocallback turnout_client_get_decision
#cgo noescape turnout_client_track
#cgo nocallback turnout_client_track
#cgo noescape turnout_context_string
#cgo nocallback turnout_context_string
#cgo noescape turnout_context_json
#cgo nocallback turnout_context_json
#cgo noescape turnout_context_decision
#cgo nocallback turnout_context_decision
#cgo noescape turnout_context_track
#cgo nocallback turnout_context_track
#cgo noescape turnout_client_context
#cgo nocallback turnout_client_context
#cgo noescape turnout_client_variable
#cgo nocallback turnout_client_variable
#cgo noescape turnout_client_ack
#cgo nocallback turnout_client_ack
#cgo noescape turnout_client_nack
#cgo nocallback turnout_client_nack
#cgo noescape turnout_client_take_batch
#cgo nocallback turnout_client_take_batch
#cgo noescape turnout_client_tracking_stats
#cgo nocallback turnout_client_tracking_stats
#cgo noescape turnout_sync_on_fetch
#cgo nocallback turnout_sync_on_fetch
#cgo noescape turnout_sync_on_upload
#cgo nocallback turnout_sync_on_upload
#include "turnout.h"
*/
import "C"

import (
	"time"
	"unsafe"
)

// The C handle types, for the other files of the package.
type (
	cClient   = C.TurnoutClient
	cContext  = C.TurnoutContext
	cVariable = C.TurnoutVariable
	cSync     = C.TurnoutSync
)

// ---- conversions ---------------------------------------------------------------

func cBytes(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b))), C.size_t(len(b))
}

func cString(s string) (*C.uint8_t, C.size_t) {
	if len(s) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s))
}

// takeString copies library-owned bytes into a Go string and frees them.
func takeString(b C.TurnoutBytes) string {
	if b.ptr == nil {
		return ""
	}
	s := C.GoStringN((*C.char)(unsafe.Pointer(b.ptr)), C.int(b.len))
	C.turnout_bytes_free(b)
	return s
}

// takeBytes copies library-owned bytes into a Go slice and frees them (nil when empty).
func takeBytes(b C.TurnoutBytes) []byte {
	if b.ptr == nil {
		return nil
	}
	out := C.GoBytes(unsafe.Pointer(b.ptr), C.int(b.len))
	C.turnout_bytes_free(b)
	return out
}

// result turns a status and its error object into a Go error, freeing the object.
func result(st C.TurnoutStatus, e *C.TurnoutError) error {
	if st == C.TURNOUT_STATUS_OK {
		return nil
	}
	err := &Error{Status: Status(st)}
	if e != nil {
		m, k := C.turnout_error_message(e), C.turnout_error_kind(e)
		err.Message = C.GoStringN((*C.char)(unsafe.Pointer(m.ptr)), C.int(m.len))
		err.Kind = C.GoStringN((*C.char)(unsafe.Pointer(k.ptr)), C.int(k.len))
		C.turnout_error_free(e)
	}
	return err
}

// ---- library -------------------------------------------------------------------

func nativeVersion() string {
	v := C.turnout_version()
	return C.GoStringN((*C.char)(unsafe.Pointer(v.ptr)), C.int(v.len))
}

func nativeSpecVersion() int { return int(C.turnout_spec_version()) }

func nativeSelftestPanic() error {
	var e *C.TurnoutError
	return result(C.turnout_selftest_panic(&e), e)
}

// ---- client --------------------------------------------------------------------

func nativeClientNew(config, options []byte) (*cClient, []byte, error) {
	cp, cl := cBytes(config)
	op, ol := cBytes(options)
	var c *C.TurnoutClient
	var report C.TurnoutBytes
	var e *C.TurnoutError
	st := C.turnout_client_new(cp, cl, op, ol, &c, &report, &e)
	return c, takeBytes(report), result(st, e)
}

func nativeClientFree(p *cClient) { C.turnout_client_free(p) }

func nativeUpdateConfig(p *cClient, config []byte, validateOnly bool) ([]byte, error) {
	debugBeforeCall()
	cp, cl := cBytes(config)
	var report C.TurnoutBytes
	var e *C.TurnoutError
	var st C.TurnoutStatus
	if validateOnly {
		st = C.turnout_client_validate(p, cp, cl, &report, &e)
	} else {
		st = C.turnout_client_update_config(p, cp, cl, &report, &e)
	}
	return takeBytes(report), result(st, e)
}

func nativeConfigVersion(p *cClient) (int64, bool) {
	debugBeforeCall()
	var v C.int64_t
	ok := C.turnout_client_config_version(p, &v)
	return int64(v), bool(ok)
}

func nativeVariableNames(p *cClient) ([]byte, error) {
	debugBeforeCall()
	var out C.TurnoutBytes
	var e *C.TurnoutError
	st := C.turnout_client_variable_names(p, &out, &e)
	return takeBytes(out), result(st, e)
}

func nativeSetTimeMs(p *cClient, ms int64) error {
	debugBeforeCall()
	var e *C.TurnoutError
	return result(C.turnout_client_set_time_ms(p, C.int64_t(ms), &e), e)
}

// ---- one-shot ------------------------------------------------------------------

func nativeGetInt64(p *cClient, name string, facets []byte, def int64) int64 {
	debugBeforeCall()
	np, nl := cString(name)
	fp, fl := cBytes(facets)
	return int64(C.turnout_client_get_int64(p, np, nl, fp, fl, C.int64_t(def)))
}

func nativeGetFloat64(p *cClient, name string, facets []byte, def float64) float64 {
	debugBeforeCall()
	np, nl := cString(name)
	fp, fl := cBytes(facets)
	return float64(C.turnout_client_get_float64(p, np, nl, fp, fl, C.double(def)))
}

func nativeGetBool(p *cClient, name string, facets []byte, def bool) bool {
	debugBeforeCall()
	np, nl := cString(name)
	fp, fl := cBytes(facets)
	return bool(C.turnout_client_get_bool(p, np, nl, fp, fl, C.bool(def)))
}

func nativeGetString(p *cClient, name string, facets []byte, def string) (string, error) {
	debugBeforeCall()
	np, nl := cString(name)
	fp, fl := cBytes(facets)
	dp, dl := cString(def)
	var out C.TurnoutBytes
	var e *C.TurnoutError
	st := C.turnout_client_get_string(p, np, nl, fp, fl, dp, dl, &out, &e)
	return takeString(out), result(st, e)
}

// nativeOneShotJSON runs the one-shot calls that answer JSON.
type oneShotJSON int

const (
	oneShotValue oneShotJSON = iota
	oneShotDecision
	oneShotVariables
	oneShotExplain
)

func nativeGetJSON(p *cClient, kind oneShotJSON, name string, facets []byte) ([]byte, error) {
	debugBeforeCall()
	np, nl := cString(name)
	fp, fl := cBytes(facets)
	var out C.TurnoutBytes
	var e *C.TurnoutError
	var st C.TurnoutStatus
	switch kind {
	case oneShotValue:
		st = C.turnout_client_get_json(p, np, nl, fp, fl, &out, &e)
	case oneShotDecision:
		st = C.turnout_client_get_decision(p, np, nl, fp, fl, &out, &e)
	case oneShotVariables:
		st = C.turnout_client_get_variables(p, np, nl, fp, fl, &out, &e)
	default:
		st = C.turnout_client_explain(p, np, nl, fp, fl, &out, &e)
	}
	return takeBytes(out), result(st, e)
}

func nativeTrack(p *cClient, name string, value float64, facets []byte) error {
	debugBeforeCall()
	np, nl := cString(name)
	fp, fl := cBytes(facets)
	var e *C.TurnoutError
	return result(C.turnout_client_track(p, np, nl, C.double(value), fp, fl, &e), e)
}

// ---- prepared ------------------------------------------------------------------

func nativeVariable(p *cClient, name string) (*cVariable, error) {
	debugBeforeCall()
	np, nl := cString(name)
	var v *C.TurnoutVariable
	var e *C.TurnoutError
	st := C.turnout_client_variable(p, np, nl, &v, &e)
	return v, result(st, e)
}

func nativeVariableFree(v *cVariable) { C.turnout_variable_free(v) }

func nativeContext(p *cClient, facets []byte) (*cContext, error) {
	debugBeforeCall()
	fp, fl := cBytes(facets)
	var x *C.TurnoutContext
	var e *C.TurnoutError
	st := C.turnout_client_context(p, fp, fl, &x, &e)
	return x, result(st, e)
}

func nativeContextFree(x *cContext) { C.turnout_context_free(x) }

func nativeContextInt64(x *cContext, v *cVariable, def int64) int64 {
	debugBeforeCall()
	return int64(C.turnout_context_int64(x, v, C.int64_t(def)))
}

func nativeContextFloat64(x *cContext, v *cVariable, def float64) float64 {
	debugBeforeCall()
	return float64(C.turnout_context_float64(x, v, C.double(def)))
}

func nativeContextBool(x *cContext, v *cVariable, def bool) bool {
	debugBeforeCall()
	return bool(C.turnout_context_bool(x, v, C.bool(def)))
}

func nativeContextString(x *cContext, v *cVariable, def string) (string, error) {
	debugBeforeCall()
	dp, dl := cString(def)
	var out C.TurnoutBytes
	var e *C.TurnoutError
	st := C.turnout_context_string(x, v, dp, dl, &out, &e)
	return takeString(out), result(st, e)
}

func nativeContextJSON(x *cContext, v *cVariable, decision bool) ([]byte, error) {
	debugBeforeCall()
	var out C.TurnoutBytes
	var e *C.TurnoutError
	var st C.TurnoutStatus
	if decision {
		st = C.turnout_context_decision(x, v, &out, &e)
	} else {
		st = C.turnout_context_json(x, v, &out, &e)
	}
	return takeBytes(out), result(st, e)
}

func nativeContextTrack(x *cContext, name string, value float64) error {
	debugBeforeCall()
	np, nl := cString(name)
	var e *C.TurnoutError
	return result(C.turnout_context_track(x, np, nl, C.double(value), &e), e)
}

// ---- tracking ------------------------------------------------------------------

func nativeTakeBatch(p *cClient, maxEvents int) (*Batch, error) {
	debugBeforeCall()
	var b C.TurnoutBatch
	var e *C.TurnoutError
	st := C.turnout_client_take_batch(p, C.size_t(maxEvents), &b, &e)
	if err := result(st, e); err != nil {
		return nil, err
	}
	if b.bytes.ptr == nil {
		return nil, nil
	}
	out := &Batch{Seq: uint64(b.seq), Events: int(b.events), Bytes: C.GoBytes(unsafe.Pointer(b.bytes.ptr), C.int(b.bytes.len))}
	C.turnout_batch_free(b)
	return out, nil
}

func nativeAck(p *cClient, seq uint64, ok bool) bool {
	debugBeforeCall()
	if ok {
		return bool(C.turnout_client_ack(p, C.uint64_t(seq)))
	}
	return bool(C.turnout_client_nack(p, C.uint64_t(seq)))
}

func nativeTrackingStats(p *cClient) (TrackingStats, error) {
	debugBeforeCall()
	var s C.TurnoutTrackingStats
	var e *C.TurnoutError
	if err := result(C.turnout_client_tracking_stats(p, &s, &e), e); err != nil {
		return TrackingStats{}, err
	}
	return TrackingStats{
		Recorded:     uint64(s.recorded),
		Folded:       uint64(s.folded),
		Dropped:      uint64(s.dropped),
		FoldOverflow: uint64(s.fold_overflow),
		Queued:       int(s.queued),
		InFlight:     int(s.in_flight),
		Retrying:     int(s.retrying),
	}, nil
}

func nativeEncodeBatchJSON(json []byte) ([]byte, error) {
	jp, jl := cBytes(json)
	var out C.TurnoutBytes
	var e *C.TurnoutError
	st := C.turnout_encode_batch_json(jp, jl, &out, &e)
	return takeBytes(out), result(st, e)
}

func nativeDecodeBatchJSON(bytes []byte) ([]byte, error) {
	bp, bl := cBytes(bytes)
	var out C.TurnoutBytes
	var e *C.TurnoutError
	st := C.turnout_decode_batch_json(bp, bl, &out, &e)
	return takeBytes(out), result(st, e)
}

// ---- host protocol (turnout_sync_*, docs/sync.md) ------------------------------

// The kinds of a syncAction.
const (
	actionStop   = C.TURNOUT_SYNC_ACTION_KIND_STOP
	actionWait   = C.TURNOUT_SYNC_ACTION_KIND_WAIT
	actionFetch  = C.TURNOUT_SYNC_ACTION_KIND_FETCH
	actionUpload = C.TURNOUT_SYNC_ACTION_KIND_UPLOAD
)

// syncAction is a TurnoutSyncAction copied into Go memory.
type syncAction struct {
	kind          int
	url, etag     string
	timeout, wait time.Duration
	maxBytes      int64
	seq, events   uint64
	bytes         []byte
}

// outcome is what a request gave: a response, or a failure (an error kind code).
type outcome struct {
	status           int
	etag, retryAfter string
	body             []byte
	failure, message string
}

func nativeSyncNew(p *cClient, options []byte) (*cSync, error) {
	debugBeforeCall()
	op, ol := cBytes(options)
	var s *C.TurnoutSync
	var e *C.TurnoutError
	st := C.turnout_sync_new(p, op, ol, &s, &e)
	return s, result(st, e)
}

func nativeSyncFree(s *cSync) { C.turnout_sync_free(s) }

func nativeSyncNext(s *cSync, nowMs uint64) (syncAction, error) {
	debugBeforeCall()
	var a C.TurnoutSyncAction
	var e *C.TurnoutError
	if err := result(C.turnout_sync_next(s, C.uint64_t(nowMs), &a, &e), e); err != nil {
		return syncAction{kind: actionStop}, err
	}
	out := syncAction{
		kind: int(a.kind), timeout: time.Duration(a.timeout_ms) * time.Millisecond,
		wait: time.Duration(a.wait_ms) * time.Millisecond, maxBytes: int64(a.max_bytes),
		seq: uint64(a.seq), events: uint64(a.events),
	}
	if a.url.ptr != nil {
		out.url = C.GoStringN((*C.char)(unsafe.Pointer(a.url.ptr)), C.int(a.url.len))
	}
	if a.etag.ptr != nil {
		out.etag = C.GoStringN((*C.char)(unsafe.Pointer(a.etag.ptr)), C.int(a.etag.len))
	}
	if a.bytes.ptr != nil {
		out.bytes = C.GoBytes(unsafe.Pointer(a.bytes.ptr), C.int(a.bytes.len))
	}
	C.turnout_sync_action_free(a)
	return out, nil
}

// nativeSyncReport reports a fetch (upload false) or the upload of batch seq.
func nativeSyncReport(s *cSync, nowMs uint64, upload bool, seq uint64, o *outcome) error {
	debugBeforeCall()
	ep, el := cString(o.etag)
	rp, rl := cString(o.retryAfter)
	bp, bl := cBytes(o.body)
	fp, fl := cString(o.failure)
	mp, ml := cString(o.message)
	var e *C.TurnoutError
	var st C.TurnoutStatus
	if upload {
		st = C.turnout_sync_on_upload(s, C.uint64_t(nowMs), C.uint64_t(seq), C.uint16_t(o.status), rp, rl, fp, fl, mp, ml, &e)
	} else {
		st = C.turnout_sync_on_fetch(s, C.uint64_t(nowMs), C.uint16_t(o.status), ep, el, rp, rl, bp, bl, fp, fl, mp, ml, &e)
	}
	return result(st, e)
}

// The calls of nativeSyncCall.
const (
	syncPollNow = iota
	syncFlushNow
	syncStop
	syncStopNoFlush
)

func nativeSyncCall(s *cSync, call int) error {
	debugBeforeCall()
	var e *C.TurnoutError
	var st C.TurnoutStatus
	switch call {
	case syncPollNow:
		st = C.turnout_sync_poll_now(s, &e)
	case syncFlushNow:
		st = C.turnout_sync_flush_now(s, &e)
	default:
		st = C.turnout_sync_stop(s, C.bool(call == syncStop), &e)
	}
	return result(st, e)
}

// nativeSyncJSON is the notices since the last call (state false) or the state, as JSON.
func nativeSyncJSON(s *cSync, state bool) ([]byte, error) {
	debugBeforeCall()
	var out C.TurnoutBytes
	var e *C.TurnoutError
	var st C.TurnoutStatus
	if state {
		st = C.turnout_sync_state(s, &out, &e)
	} else {
		st = C.turnout_sync_take_notices(s, &out, &e)
	}
	return takeBytes(out), result(st, e)
}
