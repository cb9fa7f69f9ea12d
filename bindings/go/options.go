package turnout

import (
	"encoding/json"
	"log/slog"
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

	// Poller and upload (Start, Flush): the sync options of docs/sync.md.
	httpClient      *http.Client
	eventsURL       string
	flushInterval   time.Duration
	flushTimeout    time.Duration
	batchSize       int
	maxBackoff      time.Duration
	maxConfigBytes  int64
	requestTimeout  time.Duration
	jitter          *float64
	staleAfterPolls *int
	log             *slog.Logger
	onUpdate        func(UpdateReport)
	onError         func(error)
	onNotice        func(Notice)
}

// logger is WithLogger's logger, else slog.Default() (read at each notice).
func (o *options) logger() *slog.Logger {
	if o.log != nil {
		return o.log
	}
	return slog.Default()
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
// either way the poll fails with ErrConfigTooLarge and no ETag changes. A
// value <= 0 is ignored.
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
// (default 30 s; rounded to milliseconds). When it passes the request is
// aborted, the attempt fails with a *TimeoutError (errors.Is(err,
// ErrTimeout)) and the next one is scheduled with the usual backoff. A Timeout of the http.Client
// (WithHTTPClient) applies as well; the shorter one wins.
// A value <= 0 is ignored.
func WithRequestTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.requestTimeout = d
		}
	}
}

// WithMaxBackoff caps the wait between attempts after failures (default 5
// min; never below the interval itself). A value <= 0 is ignored.
func WithMaxBackoff(d time.Duration) Option { return func(o *options) { o.maxBackoff = d } }

// WithJitter spreads every wait of the poller over +-fraction of itself
// (default 0.1; in [0, 1): Start fails with ErrOptions otherwise), so that
// many clients do not poll in step.
func WithJitter(fraction float64) Option { return func(o *options) { o.jitter = &fraction } }

// WithStaleAfterPolls sets after how many poll intervals without a
// confirmed config (an accepted or identical body, or a 304 to its ETag) the
// poller reports NoticeStale (default 5).
func WithStaleAfterPolls(polls int) Option { return func(o *options) { o.staleAfterPolls = &polls } }

// WithLogger sets the logger of the poller's notices (default: slog.Default()
// at the time of each notice): info for ready, applied (debug when nothing
// changed), recovered and fresh; warn for errors and stale; error for a
// dropped batch. A fault is logged once however long it lasts (see Notice.Repeat).
// Use slog.New(slog.DiscardHandler) to silence it.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithOnNotice registers a function called (from the poller's goroutine)
// with every notice of the poller, repeats included (see Notice).
func WithOnNotice(f func(Notice)) Option { return func(o *options) { o.onNotice = f } }

// WithOnUpdate registers a function called (from the poller's goroutine)
// after each config the poller installs, with what changed.
func WithOnUpdate(f func(UpdateReport)) Option { return func(o *options) { o.onUpdate = f } }

// WithOnError registers a function called (from the poller's goroutine) with
// each failure, repeats included: an HTTP status (*HTTPError), a timeout
// (*TimeoutError, ErrTimeout), a body over the limit (ErrConfigTooLarge) or
// cut short (io.ErrUnexpectedEOF), no response (ErrNetwork), a rejected
// config (ErrConfig or ErrLimit; the previous config stays in force), a batch
// the collector refused for good (*HTTPError inside). Stopping is not a failure.
func WithOnError(f func(error)) Option { return func(o *options) { o.onError = f } }
