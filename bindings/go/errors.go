package turnout

import (
	"errors"
	"fmt"
	"time"
)

// Status is the library's status code for a failed call (TurnoutStatus in
// ffi/include/turnout.h). The numbers are stable.
type Status int32

// The status codes of the C ABI.
const (
	StatusOK             Status = 0
	StatusNullArgument   Status = 1
	StatusInvalidUTF8    Status = 2
	StatusConfig         Status = 3
	StatusFacets         Status = 4
	StatusOptions        Status = 5
	StatusBatchJSON      Status = 6
	StatusNotABatch      Status = 7
	StatusBatchVersion   Status = 8
	StatusBatchChecksum  Status = 9
	StatusBatchMalformed Status = 10
	StatusNoFixedClock   Status = 11
	StatusPanic          Status = 12
	StatusLimit          Status = 13
)

var statusNames = map[Status]string{
	StatusOK:             "ok",
	StatusNullArgument:   "null argument",
	StatusInvalidUTF8:    "invalid UTF-8",
	StatusConfig:         "config rejected",
	StatusFacets:         "invalid facets",
	StatusOptions:        "invalid options",
	StatusBatchJSON:      "invalid batch JSON",
	StatusNotABatch:      "not a batch",
	StatusBatchVersion:   "unsupported batch version",
	StatusBatchChecksum:  "batch checksum mismatch",
	StatusBatchMalformed: "malformed batch",
	StatusNoFixedClock:   "no fixed clock",
	StatusPanic:          "internal error",
	StatusLimit:          "limit exceeded",
}

// String names the status.
func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("status %d", int32(s))
}

// Error is the error of every failed library call: its status and the
// library's message. Match a kind with errors.Is(err, turnout.ErrConfig) (and
// the other Err* values), or read the status with errors.As.
type Error struct {
	// Status says what kind of failure it was.
	Status Status
	// Kind is the engine's stable error kind (INVALID_CONFIG, BATCH_CHECKSUM,
	// LIMIT_EXCEEDED, ...: the same code on every platform, docs/sync.md
	// section 8); several kinds can share a Status.
	Kind string
	// Message is the library's explanation (for a rejected config: every problem).
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	if e.Message == "" {
		return "turnout: " + e.Status.String()
	}
	return "turnout: " + e.Message
}

// Is reports whether target is an *Error of the same status (the Err* values).
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Status == e.Status
}

// Errors to match with errors.Is.
var (
	// ErrConfig: a config was rejected (not JSON, or invalid); the previous config stays in force.
	ErrConfig error = &Error{Status: StatusConfig}
	// ErrFacets: facets could not be read.
	ErrFacets error = &Error{Status: StatusFacets}
	// ErrOptions: client options were invalid.
	ErrOptions error = &Error{Status: StatusOptions}
	// ErrInvalidUTF8: a name or string was not valid UTF-8.
	ErrInvalidUTF8 error = &Error{Status: StatusInvalidUTF8}
	// ErrBatchJSON: EncodeBatchJSON was given JSON that is not a batch.
	ErrBatchJSON error = &Error{Status: StatusBatchJSON}
	// ErrNotABatch: bytes that are not a turnout batch.
	ErrNotABatch error = &Error{Status: StatusNotABatch}
	// ErrBatchVersion: a batch of a wire version this library does not read.
	ErrBatchVersion error = &Error{Status: StatusBatchVersion}
	// ErrBatchChecksum: a corrupted batch (CRC-32C mismatch).
	ErrBatchChecksum error = &Error{Status: StatusBatchChecksum}
	// ErrBatchMalformed: a structurally inconsistent batch.
	ErrBatchMalformed error = &Error{Status: StatusBatchMalformed}
	// ErrNoFixedClock: SetTime on a client created without WithFixedTime.
	ErrNoFixedClock error = &Error{Status: StatusNoFixedClock}
	// ErrPanic: the library caught an internal panic (please report it).
	ErrPanic error = &Error{Status: StatusPanic}
	// ErrLimit: a limit on hostile input was exceeded (docs/spec.md, section
	// 16): a config over WithMaxConfigBytes, nested too deep or expanding to
	// too many constraints (the previous config stays in force), facets over
	// a limit (more than 1,024, a name over 1 KiB, a value over 8 KiB), or a
	// batch that would decode to more than its expansion limit. The message
	// names the limit: "limit `config_bytes` exceeded: found N, the maximum is M".
	ErrLimit error = &Error{Status: StatusLimit}

	// ErrClosed: the client (or handle) was closed.
	ErrClosed = errors.New("turnout: closed")
	// ErrNoEventsURL: Flush needs WithEventsURL.
	ErrNoEventsURL = errors.New("turnout: no events URL (use WithEventsURL)")
	// ErrStarted: Start was called twice.
	ErrStarted = errors.New("turnout: poller already started")
	// ErrTimeout: a request of the poller or Flush did not finish (connect,
	// headers and the whole body) within WithRequestTimeout. The error is a
	// *TimeoutError.
	ErrTimeout = errors.New("turnout: request timed out")
	// ErrConfigTooLarge: the config body is larger than WithMaxConfigBytes.
	ErrConfigTooLarge = errors.New("turnout: config body too large")
	// ErrNetwork: a request of the poller or Flush got no HTTP response
	// (connection refused or reset, DNS, TLS).
	ErrNetwork = errors.New("turnout: no response")
)

// HTTPError is a non-success answer of the config server or the events
// collector, as seen by the poller and Flush.
type HTTPError struct {
	// Method and URL of the request.
	Method, URL string
	// StatusCode of the response.
	StatusCode int
}

// Error implements error.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("turnout: %s %s: HTTP %d", e.Method, e.URL, e.StatusCode)
}

// TimeoutError is a request of the poller (or Flush) that did not finish
// within its one deadline, WithRequestTimeout (or the http.Client's Timeout):
// connect, headers and the whole body together. It matches
// errors.Is(err, ErrTimeout) and wraps the transport's error.
type TimeoutError struct {
	// Method and URL of the request.
	Method, URL string
	// After is the deadline that passed (WithRequestTimeout).
	After time.Duration
	// Err is what net/http reported.
	Err error
}

// Error implements error.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("turnout: %s %s: timed out: no complete response within %v (connect, headers and body together)",
		e.Method, e.URL, e.After)
}

// Is makes errors.Is(err, ErrTimeout) hold.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// Unwrap returns the transport's error.
func (e *TimeoutError) Unwrap() error { return e.Err }

// Timeout says it is a timeout (like net.Error).
func (e *TimeoutError) Timeout() bool { return true }
