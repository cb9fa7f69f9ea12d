package turnout

import (
	"encoding/json"
	"net/http"
	"runtime"
	"time"
)

// Option configures a Client (see New).
type Option func(*options)

// DecisionEvents says which decisions are recorded as events.
type DecisionEvents string

const (
	// DecisionEventsAll records every decision taken through an experiment or
	// a rollout (including its default). The default.
	DecisionEventsAll DecisionEvents = "all"
	// DecisionEventsExperiments records only decisions taken by experiments.
	DecisionEventsExperiments DecisionEvents = "experiments"
	// DecisionEventsOff records no decisions (Track still records).
	DecisionEventsOff DecisionEvents = "off"
)

// hostOptions is the JSON the library reads (turnout_core::host::HostOptions).
type hostOptions struct {
	Service           string         `json:"service,omitempty"`
	Isolation         string         `json:"isolation,omitempty"`
	DecisionEvents    DecisionEvents `json:"decisionEvents,omitempty"`
	ExcludeFacets     []string       `json:"excludeFacets,omitempty"`
	MaxQueue          *int64         `json:"maxQueue,omitempty"`
	MaxFoldKeys       *int64         `json:"maxFoldKeys,omitempty"`
	MaxUnackedBatches *int64         `json:"maxUnackedBatches,omitempty"`
	ClientID          string         `json:"clientId,omitempty"`
	SDK               string         `json:"sdk"`
	SDKVersion        string         `json:"sdkVersion"`
	Platform          string         `json:"platform"`
	MaxConfigBytes    *int64         `json:"maxConfigBytes,omitempty"`
	FixedTimeMs       *int64         `json:"fixedTimeMs,omitempty"`
}

type options struct {
	host hostOptions

	// Poller and upload (Start, Flush).
	httpClient     *http.Client
	eventsURL      string
	flushInterval  time.Duration
	flushTimeout   time.Duration
	batchSize      int
	maxBackoff     time.Duration
	maxConfigBytes int64
	requestTimeout time.Duration
	onUpdate       func(UpdateReport)
	onError        func(error)
}

func defaultOptions() options {
	return options{
		host: hostOptions{
			SDK:        "turnout-go",
			SDKVersion: Version,
			Platform:   "go-" + runtime.GOOS + "-" + runtime.GOARCH,
		},
		httpClient:     &http.Client{Timeout: 30 * time.Second},
		flushInterval:  10 * time.Second,
		flushTimeout:   5 * time.Second,
		batchSize:      1000,
		maxBackoff:     5 * time.Minute,
		maxConfigBytes: DefaultMaxConfigBytes,
		requestTimeout: 30 * time.Second,
	}
}

func (o *options) json() []byte {
	b, err := json.Marshal(&o.host)
	if err != nil { // cannot happen for these field types
		return nil
	}
	return b
}

// WithService names the service this client runs in; tracked metrics are
// named "service.name".
func WithService(name string) Option { return func(o *options) { o.host.Service = name } }

// WithStrictIsolation makes any problem in a config reject the whole update
// (by default a broken document inside a good bundle keeps its last good
// version and the rest is applied).
func WithStrictIsolation() Option { return func(o *options) { o.host.Isolation = "strict" } }

// WithDecisionEvents chooses which decisions are recorded (default DecisionEventsAll).
func WithDecisionEvents(mode DecisionEvents) Option {
	return func(o *options) { o.host.DecisionEvents = mode }
}

// WithExcludeFacets names facets never recorded in events (PII).
func WithExcludeFacets(names ...string) Option {
	return func(o *options) { o.host.ExcludeFacets = append(o.host.ExcludeFacets, names...) }
}

// WithMaxQueue bounds the events waiting for a batch (default 10,000; the
// oldest are dropped, and counted, beyond it).
func WithMaxQueue(events int) Option {
	return func(o *options) { v := int64(events); o.host.MaxQueue = &v }
}

// WithMaxFoldKeys bounds the table that folds repeated events (default 10,000).
func WithMaxFoldKeys(keys int) Option {
	return func(o *options) { v := int64(keys); o.host.MaxFoldKeys = &v }
}

// WithMaxUnackedBatches bounds the batches taken and not yet acked (default 64).
func WithMaxUnackedBatches(batches int) Option {
	return func(o *options) { v := int64(batches); o.host.MaxUnackedBatches = &v }
}

// WithClientID sets the id written in batch headers (the collector
// de-duplicates by client id and seq). Default: a random id per client.
func WithClientID(id string) Option { return func(o *options) { o.host.ClientID = id } }

// WithFixedTime pins the client's clock (tests, conformance runs); move it
// with Client.SetTime. Without it the system clock is used.
func WithFixedTime(t time.Time) Option {
	return func(o *options) { ms := t.UnixMilli(); o.host.FixedTimeMs = &ms }
}

// WithHTTPClient sets the HTTP client of the poller and the event upload
// (default: http.Client with a 30 s timeout). Each request is also bounded by
// WithRequestTimeout.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithEventsURL sets the collector that Flush, and the poller started by
// Start, POST event batches to (application/octet-stream).
func WithEventsURL(url string) Option { return func(o *options) { o.eventsURL = url } }

// WithFlushInterval sets how often the poller uploads events (default 10 s).
func WithFlushInterval(d time.Duration) Option { return func(o *options) { o.flushInterval = d } }

// WithBatchSize sets the most events per uploaded batch (default 1,000).
func WithBatchSize(events int) Option { return func(o *options) { o.batchSize = events } }

// DefaultMaxConfigBytes is the largest config the client accepts and the
// poller reads by default: 16 MiB, the engine's limit.
const DefaultMaxConfigBytes = 16 << 20

// WithMaxConfigBytes sets the largest config, in bytes (default
// DefaultMaxConfigBytes): New, UpdateConfig and Validate fail with ErrLimit
// for a larger one (the previous config stays in force), and the poller reads
// no more of a config body than this: a larger Content-Length is refused
// before reading, an undeclared body is read up to the limit and no further;
// either way the poll fails with ErrConfigTooLarge and the ETag is not
// remembered. A value <= 0 is ignored.
func WithMaxConfigBytes(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.maxConfigBytes = n
			o.host.MaxConfigBytes = &n
		}
	}
}

// WithRequestTimeout sets the one deadline of each poller request (the config
// GET, each events POST): connect, headers and the whole body together
// (default 30 s). When it passes the request is aborted, the attempt fails
// with a *TimeoutError (errors.Is(err, ErrTimeout)) and the next one is
// scheduled with the usual backoff. A Timeout of the http.Client
// (WithHTTPClient) applies as well; the shorter one wins.
// A value <= 0 is ignored.
func WithRequestTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.requestTimeout = d
		}
	}
}

// WithMaxBackoff caps the wait between attempts after failures (default 5 min).
func WithMaxBackoff(d time.Duration) Option { return func(o *options) { o.maxBackoff = d } }

// WithOnUpdate registers a function called (from the poller's goroutine)
// after each config the poller installs, with what changed.
func WithOnUpdate(f func(UpdateReport)) Option { return func(o *options) { o.onUpdate = f } }

// WithOnError registers a function called (from the poller's goroutines) with
// each failure: a fetch or upload error, an HTTP status, a rejected config
// (errors.Is(err, ErrConfig); the previous config stays in force).
func WithOnError(f func(error)) Option { return func(o *options) { o.onError = f } }
