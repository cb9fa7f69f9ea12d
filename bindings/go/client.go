package turnout

import (
	"context"
	"encoding/json"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Client is a feature-flag and experimentation client: it holds a compiled
// config and decides locally (no network on any decision).
//
// A Client is safe for concurrent use by many goroutines. Close it when done
// (a cleanup frees it if it is garbage collected first); Close must not race
// with other calls on the same client.
type Client struct {
	h    handle
	opts options

	mu     sync.Mutex // guards stop and closed
	stop   func()     // stops the poller started by Start and waits for it
	closed bool

	ready     chan struct{} // closed by the first "ready" notice (WaitReady)
	readyOnce sync.Once
	lastErr   atomic.Pointer[error] // the poller's last failure (WaitReady's error)
}

// New creates a client from a config bundle (or a single rollout or
// experiment document) in the JSON format of Grab's experimentation SDK, so
// the first decision never waits for the network. A nil config starts empty
// (every variable falls back to the caller's default until UpdateConfig or
// Start). An invalid config gives an error wrapping ErrConfig that lists
// every problem.
func New(config []byte, opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	p, _, err := nativeClientNew(config, o.json())
	if err != nil {
		return nil, err
	}
	c := &Client{opts: o, ready: make(chan struct{})}
	bind(c, &c.h, unsafe.Pointer(p), "client", func(p unsafe.Pointer) { nativeClientFree((*cClient)(p)) })
	return c, nil
}

// Close stops the poller started by Start (uploading the events still queued
// once, bounded by a few seconds, when event upload was running) and frees
// the client. Contexts and variables made from it keep working. Calling
// Close again does nothing.
func (c *Client) Close() error {
	c.mu.Lock()
	stop := c.stop
	c.stop = nil
	c.closed = true
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	c.h.close()
	return nil
}

// ptr is the live handle or nil after Close.
func (c *Client) ptr() *cClient {
	if c == nil {
		return nil
	}
	return (*cClient)(c.h.get())
}

func (c *Client) used(p *cClient) {
	debugUse(unsafe.Pointer(p))
	runtime.KeepAlive(c)
}

// UpdateConfig validates, compiles and atomically installs a config, and
// reports what changed. On error (wrapping ErrConfig) the previous config
// stays in force, untouched. Decisions running concurrently see the old or
// the new config, never a mix.
func (c *Client) UpdateConfig(config []byte) (UpdateReport, error) {
	return c.update(config, false)
}

// Validate checks a config without installing it (strictly: any problem is
// an error) and reports what an update would change.
func (c *Client) Validate(config []byte) (UpdateReport, error) {
	return c.update(config, true)
}

func (c *Client) update(config []byte, validateOnly bool) (UpdateReport, error) {
	p := c.ptr()
	if p == nil {
		return UpdateReport{}, ErrClosed
	}
	report, err := nativeUpdateConfig(p, config, validateOnly)
	c.used(p)
	if err != nil {
		return UpdateReport{}, err
	}
	return parseReport(report)
}

// ConfigVersion is the "version" of the config in force, if it has one.
func (c *Client) ConfigVersion() (int64, bool) {
	p := c.ptr()
	if p == nil {
		return 0, false
	}
	v, ok := nativeConfigVersion(p)
	c.used(p)
	return v, ok
}

// VariableNames lists every variable the config defines, sorted.
func (c *Client) VariableNames() []string {
	p := c.ptr()
	if p == nil {
		return nil
	}
	b, err := nativeVariableNames(p)
	c.used(p)
	var names []string
	if err == nil {
		_ = json.Unmarshal(b, &names)
	}
	return names
}

// SetTime moves the clock of a client created WithFixedTime (the time used
// when facets have no "ts", and for event times). Otherwise it returns
// ErrNoFixedClock.
func (c *Client) SetTime(t time.Time) error {
	p := c.ptr()
	if p == nil {
		return ErrClosed
	}
	err := nativeSetTimeMs(p, t.UnixMilli())
	c.used(p)
	return err
}

// GetVariable is the one-shot call: the decision for the variable name and
// these facets, read with a typed getter that takes your default:
//
//	delay := client.GetVariable(ctx, "automatedMessageDelay",
//		turnout.NewFacets().Passenger(7).City(10)).Int64(30)
//
// The decision is taken (and recorded as an event) when the getter runs.
// Nothing blocks and nothing goes to the network; ctx is accepted for the
// Grab SDK's signature and future tracing, and is not used.
func (c *Client) GetVariable(ctx context.Context, name string, facets *Facets) Value {
	return Value{client: c, name: name, facets: facets}
}

// GetVariables returns every variable assigned by the experiments named
// name, or of domain name, that apply to these facets (first experiment wins
// per variable), and records their decision events.
func (c *Client) GetVariables(ctx context.Context, name string, facets *Facets) ([]Decision, error) {
	b, err := c.oneShotJSON(oneShotVariables, name, facets)
	if err != nil {
		return nil, err
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make([]Decision, 0, len(raw))
	for _, r := range raw {
		d, err := parseDecision(r)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Explain returns the decision with a step-by-step account of how it was
// reached. It records nothing.
func (c *Client) Explain(name string, facets *Facets) (Explanation, error) {
	b, err := c.oneShotJSON(oneShotExplain, name, facets)
	if err != nil {
		return Explanation{}, err
	}
	var e struct {
		Decision json.RawMessage `json:"decision"`
		Steps    []string        `json:"steps"`
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return Explanation{}, err
	}
	d, err := parseDecision(e.Decision)
	return Explanation{Decision: d, Steps: e.Steps}, err
}

func (c *Client) oneShotJSON(kind oneShotJSON, name string, facets *Facets) ([]byte, error) {
	p := c.ptr()
	if p == nil {
		return nil, ErrClosed
	}
	b, err := nativeGetJSON(p, kind, name, facets.encoded())
	c.used(p)
	return b, err
}

// Track records a metric: name (prefixed with the service as "service.name"),
// a value and the facets it concerns. Identical repeats fold into one event
// with a count. Like GetVariable it never blocks; ctx is not used.
func (c *Client) Track(ctx context.Context, name string, value float64, facets *Facets) error {
	p := c.ptr()
	if p == nil {
		return ErrClosed
	}
	err := nativeTrack(p, name, value, facets.encoded())
	c.used(p)
	return err
}

// TakeBatch returns the next batch of at most maxEvents events to upload (a
// nacked batch comes back first, with the same seq and bytes), or nil when
// nothing is waiting. Start and Flush do this for you.
func (c *Client) TakeBatch(maxEvents int) (*Batch, error) {
	p := c.ptr()
	if p == nil {
		return nil, ErrClosed
	}
	if maxEvents < 1 {
		maxEvents = 1
	}
	b, err := nativeTakeBatch(p, maxEvents)
	c.used(p)
	return b, err
}

// Ack says batch seq was delivered; it is forgotten. False for an unknown seq.
func (c *Client) Ack(seq uint64) bool { return c.ackOrNack(seq, true) }

// Nack says batch seq was not delivered; the next TakeBatch returns it again.
// False for an unknown seq.
func (c *Client) Nack(seq uint64) bool { return c.ackOrNack(seq, false) }

func (c *Client) ackOrNack(seq uint64, ok bool) bool {
	p := c.ptr()
	if p == nil {
		return false
	}
	r := nativeAck(p, seq, ok)
	c.used(p)
	return r
}

// TrackingStats returns the event queue's counters.
func (c *Client) TrackingStats() TrackingStats {
	p := c.ptr()
	if p == nil {
		return TrackingStats{}
	}
	s, _ := nativeTrackingStats(p)
	c.used(p)
	return s
}

// Variable returns a handle for a variable, for the prepared path
// (Context.Int64 and friends). The name need not exist yet: the handle
// resolves again after every config update. Close it when done.
func (c *Client) Variable(name string) (*Variable, error) {
	p := c.ptr()
	if p == nil {
		return nil, ErrClosed
	}
	vp, err := nativeVariable(p, name)
	c.used(p)
	if err != nil {
		return nil, err
	}
	v := &Variable{name: name}
	bind(v, &v.h, unsafe.Pointer(vp), "variable", func(p unsafe.Pointer) { nativeVariableFree((*cVariable)(p)) })
	return v, nil
}

// Context prepares these facets once (canonicalised in the library) for many
// decisions: the prepared path, with no allocation and no string crossing
// per decision. Close it when done; it outlives the client if need be.
func (c *Client) Context(facets *Facets) (*Context, error) {
	p := c.ptr()
	if p == nil {
		return nil, ErrClosed
	}
	xp, err := nativeContext(p, facets.encoded())
	c.used(p)
	if err != nil {
		return nil, err
	}
	x := &Context{}
	bind(x, &x.h, unsafe.Pointer(xp), "context", func(p unsafe.Pointer) { nativeContextFree((*cContext)(p)) })
	return x, nil
}

// Value is the one-shot decision returned by Client.GetVariable; read it
// with a typed getter. Each getter takes the decision (and records it) anew.
type Value struct {
	client *Client
	name   string
	facets *Facets
}

// Int64 returns the value as an int64, or def when it is not an integer,
// nothing decided, the facets are invalid or the client is closed.
func (v Value) Int64(def int64) int64 {
	p := v.client.ptr()
	if p == nil {
		return def
	}
	r := nativeGetInt64(p, v.name, v.facets.encoded(), def)
	v.client.used(p)
	return r
}

// Float64 returns the value as a float64 (any number), or def.
func (v Value) Float64(def float64) float64 {
	p := v.client.ptr()
	if p == nil {
		return def
	}
	r := nativeGetFloat64(p, v.name, v.facets.encoded(), def)
	v.client.used(p)
	return r
}

// Bool returns the value as a bool, or def.
func (v Value) Bool(def bool) bool {
	p := v.client.ptr()
	if p == nil {
		return def
	}
	r := nativeGetBool(p, v.name, v.facets.encoded(), def)
	v.client.used(p)
	return r
}

// String returns the value as a string, or def.
func (v Value) String(def string) string {
	p := v.client.ptr()
	if p == nil {
		return def
	}
	r, err := nativeGetString(p, v.name, v.facets.encoded(), def)
	v.client.used(p)
	if err != nil {
		return def
	}
	return r
}

// JSON returns the value as JSON, or nil when nothing decided (fallback) or
// the call failed.
func (v Value) JSON() json.RawMessage {
	b, err := v.client.oneShotJSON(oneShotValue, v.name, v.facets)
	if err != nil || len(b) == 0 {
		return nil
	}
	return b
}

// Decision returns the full decision (value, source, reason, experiment,
// rule, choice), or an error for invalid facets or a closed client.
func (v Value) Decision() (Decision, error) {
	b, err := v.client.oneShotJSON(oneShotDecision, v.name, v.facets)
	if err != nil {
		return Decision{}, err
	}
	return parseDecision(b)
}
