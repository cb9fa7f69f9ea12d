package turnout

import (
	"bytes"
	"encoding/json"
)

// Version is the version of this Go package (written in batch headers).
const Version = "0.2.0"

// LibraryVersion is the version of the linked native library.
func LibraryVersion() string { return nativeVersion() }

// SpecVersion is the version of the evaluation contract (docs/spec.md) the
// native library implements.
func SpecVersion() int { return nativeSpecVersion() }

// Source says where a decision's value came from.
type Source string

// The sources of a decision.
const (
	SourceExperiment Source = "experiment" // an experiment assigned it
	SourceRollout    Source = "rollout"    // a rollout rule matched
	SourceDefault    Source = "default"    // the rollout document's default
	SourceFallback   Source = "fallback"   // nothing decided: the caller's default applies
)

// Reason says why a decision was taken (OpenFeature-style).
type Reason string

// The reasons of a decision.
const (
	ReasonTargetingMatch Reason = "TARGETING_MATCH"
	ReasonSplit          Reason = "SPLIT"
	ReasonDefault        Reason = "DEFAULT"
	ReasonDisabled       Reason = "DISABLED"
	ReasonError          Reason = "ERROR"
)

// ErrorCode accompanies ReasonError.
type ErrorCode string

// The error codes of a decision.
const (
	ErrorCodeFlagNotFound ErrorCode = "FLAG_NOT_FOUND"
	ErrorCodeTypeMismatch ErrorCode = "TYPE_MISMATCH"
	ErrorCodeParseError   ErrorCode = "PARSE_ERROR"
	// ErrorCodeInvalidContext: the facets were over a limit (docs/spec.md,
	// section 17; the value is the caller's default). The engine's code for
	// the platforms whose facet builders cannot fail; decisions taken through
	// this package never carry it, since the C ABI reports such facets as
	// ErrLimit (and the typed getters return the default).
	ErrorCodeInvalidContext ErrorCode = "INVALID_CONTEXT"
)

// Decision is the full answer for one variable and one set of facets.
type Decision struct {
	// Variable is the variable's name.
	Variable string `json:"variable"`
	// Value is the value as JSON; nil when Source is SourceFallback.
	Value json.RawMessage `json:"value"`
	// Label is the matched rule's "string" label, if it has one.
	Label string `json:"label"`
	// Source says where the value came from.
	Source Source `json:"source"`
	// Experiment is the experiment that assigned it ("" unless SourceExperiment).
	Experiment string `json:"experiment"`
	// Rule is the matched rule's index (SourceRollout), else nil.
	Rule *int `json:"rule"`
	// Choice is the assigned choice's index (SourceExperiment), else nil.
	Choice *int `json:"choice"`
	// Reason says why.
	Reason Reason `json:"reason"`
	// ErrorCode is set when Reason is ReasonError.
	ErrorCode ErrorCode `json:"errorCode"`
}

func parseDecision(b []byte) (Decision, error) {
	var d Decision
	if err := json.Unmarshal(b, &d); err != nil {
		return Decision{}, err
	}
	if bytes.Equal(d.Value, []byte("null")) {
		d.Value = nil
	}
	return d, nil
}

// Explanation is a decision with the steps that led to it.
type Explanation struct {
	Decision Decision `json:"decision"`
	// Steps are human-readable, in evaluation order.
	Steps []string `json:"steps"`
}

// Problem is one problem found in a config.
type Problem struct {
	// Document, e.g. `rollout "automatedMessageDelay"`, `experiments[2]` or `bundle`.
	Document string `json:"document"`
	// Field is a JSON path inside the document, e.g. `rollouts[0].constraints[1].op`.
	Field string `json:"field"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// Rejected is a document rejected inside an accepted bundle.
type Rejected struct {
	Problems []Problem `json:"problems"`
	// KeptLastGood is true when the document's last good version stays in force.
	KeptLastGood bool `json:"kept_last_good"`
	// KillSwitch is true when the document's "enabled": false took effect anyway.
	KillSwitch bool `json:"kill_switch"`
}

// UpdateReport says what a config update changed.
type UpdateReport struct {
	// Version is the bundle's "version", if it has one.
	Version *int64 `json:"version"`
	// Added, Removed and Changed list variable names, sorted.
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
	Changed []string `json:"changed"`
	// Rejected lists documents rejected inside the accepted bundle.
	Rejected []Rejected `json:"rejected"`
	// Warnings are things that load but are almost certainly mistakes.
	Warnings []Problem `json:"warnings"`
}

// HasChanges reports whether any variable was added, removed or changed.
func (r UpdateReport) HasChanges() bool {
	return len(r.Added)+len(r.Removed)+len(r.Changed) > 0
}

func parseReport(b []byte) (UpdateReport, error) {
	var r UpdateReport
	if len(b) == 0 {
		return r, nil
	}
	err := json.Unmarshal(b, &r)
	return r, err
}

// Batch is a batch of events to upload: POST Bytes
// (application/octet-stream), then Ack(Seq) or Nack(Seq).
type Batch struct {
	// Seq is unique per client; with the client id, the collector's de-duplication key.
	Seq uint64
	// Events is how many events (folded records) it holds.
	Events int
	// Bytes is the encoded batch (docs/wire-format.md).
	Bytes []byte
}

// TrackingStats are the queue's counters; every loss is counted.
type TrackingStats struct {
	Recorded     uint64 // occurrences recorded (decisions and tracks, folded repeats included)
	Folded       uint64 // occurrences folded into an earlier identical event
	Dropped      uint64 // occurrences dropped (queue full, unacked batches evicted)
	FoldOverflow uint64 // occurrences queued unfolded because the fold table was full
	Queued       int    // events waiting for a batch
	InFlight     int    // batches taken, not yet acked or nacked
	Retrying     int    // nacked batches waiting to be taken again
}

// EncodeBatchJSON encodes a batch from its JSON form {"header": {...},
// "events": [...]} (the form of the conformance vectors and of
// DecodeBatchJSON) into wire bytes.
func EncodeBatchJSON(batchJSON []byte) ([]byte, error) { return nativeEncodeBatchJSON(batchJSON) }

// DecodeBatchJSON decodes wire bytes into their JSON form. A corrupted batch
// is rejected whole (ErrBatchChecksum, ErrNotABatch, ErrBatchVersion,
// ErrBatchMalformed), never mis-decoded.
func DecodeBatchJSON(batch []byte) ([]byte, error) { return nativeDecodeBatchJSON(batch) }
