package turnout

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"time"
	"unsafe"
)

// NoticeKind names a Notice.
type NoticeKind string

// The kinds of notice (docs/sync.md, section 7).
const (
	NoticeReady     NoticeKind = "ready"     // the first config is in force (a bootstrap counts)
	NoticeApplied   NoticeKind = "applied"   // a fetched config was installed: Report, ETag
	NoticeError     NoticeKind = "error"     // a request or a config failed: Channel, ErrorKind, Status, Message, Err
	NoticeRecovered NoticeKind = "recovered" // a channel works again after Failures failures
	NoticeStale     NoticeKind = "stale"     // no config confirmed current for a while (since SinceMs)
	NoticeFresh     NoticeKind = "fresh"     // a stale client confirmed its config again
	NoticeDropped   NoticeKind = "dropped"   // the collector refused batch Seq for good (400, 413, 422): Err
)

// LimitInfo names a limit a rejected config exceeded (docs/spec.md section 17).
type LimitInfo struct {
	Limit string `json:"limit"` // the limit's name, e.g. config_bytes
	Max   uint64 `json:"max"`   // its maximum
	Found uint64 `json:"found"` // what the config had (at least)
}

// Notice is something the poller (Start) tells its user, decided by the
// engine's host protocol (docs/sync.md). Each is logged through the logger
// (WithLogger; slog.Default() otherwise), except a Repeat, so that a fault
// is logged once however long it lasts, and passed to WithOnNotice.
type Notice struct {
	Kind      NoticeKind    `json:"notice"`
	Channel   string        `json:"channel"` // "config" or "events" (error, recovered)
	ErrorKind string        `json:"kind"`    // the stable error kind code: NETWORK, HTTP, TIMEOUT, TOO_LARGE, INCOMPLETE, ABORTED, INVALID_CONFIG, LIMIT_EXCEEDED
	Status    int           `json:"status"`  // the HTTP status (error, dropped), or 0
	Message   string        `json:"message"`
	Repeat    bool          `json:"repeat"`   // the channel's previous failure was of the same kind: not logged again
	Problems  []Problem     `json:"problems"` // error INVALID_CONFIG: every problem of the rejected config
	Limit     *LimitInfo    `json:"limit"`    // error LIMIT_EXCEEDED: the limit exceeded
	Report    *UpdateReport `json:"report"`   // applied
	ETag      string        `json:"etag"`     // applied
	Failures  uint64        `json:"failures"`
	SinceMs   uint64        `json:"sinceMs"` // stale: when the config was last confirmed (poller time, ms)
	Seq       uint64        `json:"seq"`     // dropped
	Events    uint64        `json:"events"`  // dropped
	// Err is an error and a dropped batch as this package's errors, as
	// WithOnError receives them: *HTTPError, *TimeoutError (ErrTimeout),
	// ErrConfigTooLarge, io.ErrUnexpectedEOF (INCOMPLETE), ErrNetwork,
	// ErrConfig, ErrLimit, context.Canceled (ABORTED).
	Err error `json:"-"`
}

// syncer owns a TurnoutSync handle (the core's state machine); configURL
// names the config requests in errors.
type syncer struct {
	h         handle
	configURL string
}

// ms is a duration as the positive milliseconds of the sync options (nil: the default).
func ms(d time.Duration) *int64 {
	if d <= 0 {
		return nil
	}
	v := max(d.Milliseconds(), 1)
	return &v
}

// newSync makes the sync of the client's options, polling configURL every
// interval (none: events only).
func (c *Client) newSync(configURL string, interval time.Duration) (*syncer, error) {
	o := &c.opts
	for _, u := range []string{configURL, o.eventsURL} {
		if err := checkURL(u); err != nil {
			return nil, err
		}
	}
	opts, _ := json.Marshal(map[string]any{
		"configUrl": nilIfEmpty(configURL), "eventsUrl": nilIfEmpty(o.eventsURL), "pollIntervalMs": ms(interval),
		"flushIntervalMs": ms(o.flushInterval), "maxBackoffMs": ms(o.maxBackoff), "timeoutMs": ms(o.requestTimeout),
		"jitter": o.jitter, "seed": rand.Uint64(), "maxBatchEvents": max(o.batchSize, 1),
		"staleAfterPolls": o.staleAfterPolls,
	})
	s, err := c.newSyncJSON(opts)
	if s != nil {
		s.configURL = configURL
	}
	return s, err
}

// newSyncJSON makes a sync from its options as JSON (docs/sync.md, section 2).
func (c *Client) newSyncJSON(options []byte) (*syncer, error) {
	p := c.ptr()
	if p == nil {
		return nil, ErrClosed
	}
	sp, err := nativeSyncNew(p, options)
	c.used(p)
	if err != nil {
		return nil, err
	}
	s := &syncer{}
	bind(s, &s.h, unsafe.Pointer(sp), "sync", func(p unsafe.Pointer) { nativeSyncFree((*cSync)(p)) })
	return s, nil
}

// checkURL accepts an http or https URL, or none.
func checkURL(s string) error {
	if u, err := url.Parse(s); err != nil {
		return fmt.Errorf("turnout: invalid URL %q: %w", s, err)
	} else if s != "" && u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("turnout: URL %q: scheme must be http or https", s)
	}
	return nil
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// epoch is the origin of the monotonic milliseconds the sync runs on.
var epoch = time.Now()

func nowMs() uint64 { return uint64(time.Since(epoch).Milliseconds()) }

// do runs f on the live handle (nothing once it is closed), keeping s alive.
func (s *syncer) do(f func(p *cSync)) {
	if p := (*cSync)(s.h.get()); p != nil {
		f(p)
		debugUse(unsafe.Pointer(p))
		runtime.KeepAlive(s)
	}
}

// next is the action due at now (Stop once the handle is closed).
func (s *syncer) next(now uint64) (a syncAction) {
	a.kind = actionStop
	s.do(func(p *cSync) { a, _ = nativeSyncNext(p, now) })
	return a
}

// report says what came of a (a fetch or an upload) at now.
func (s *syncer) report(now uint64, a *syncAction, o *outcome) {
	s.do(func(p *cSync) { _ = nativeSyncReport(p, now, a.kind == actionUpload, a.seq, o) })
}

func (s *syncer) call(call int) { s.do(func(p *cSync) { _ = nativeSyncCall(p, call) }) }

// json is the notices since the last call (state false) or the state.
func (s *syncer) json(state bool) (b []byte) {
	s.do(func(p *cSync) { b, _ = nativeSyncJSON(p, state) })
	return b
}

// notices handles what the sync has to say and returns the first error:
// each notice's error (the last is WaitReady's), readiness, then, with
// callbacks, its log record (unless a repeat) and the callbacks. A request
// abandoned to stop is no notice: the driver stops the sync before it
// reports one (docs/sync.md, section 9).
func (c *Client) notices(s *syncer, callbacks bool) (first error) {
	var ns []Notice
	_ = json.Unmarshal(s.json(false), &ns)
	for i := range ns {
		n := &ns[i]
		if n.Err = c.noticeError(n, s.configURL); n.Err != nil {
			c.lastErr.Store(&n.Err)
			first = cmp.Or(first, n.Err)
		}
		if n.Kind == NoticeReady {
			c.readyOnce.Do(func() { close(c.ready) })
		}
		if !callbacks {
			continue
		}
		c.log(n)
		if f := c.opts.onNotice; f != nil {
			f(*n)
		}
		if f := c.opts.onUpdate; f != nil && n.Kind == NoticeApplied && n.Report != nil {
			f(*n.Report)
		}
		if f := c.opts.onError; f != nil && n.Err != nil {
			f(n.Err)
		}
	}
	return first
}

// noticeError maps an error or a dropped batch onto the package's errors.
func (c *Client) noticeError(n *Notice, configURL string) error {
	method, url := http.MethodGet, configURL
	if n.Channel == "events" || n.Kind == NoticeDropped {
		method, url = http.MethodPost, c.opts.eventsURL
	}
	wrap := func(sentinel error) error {
		return fmt.Errorf("turnout: %s %s: %s: %w", method, url, n.Message, sentinel)
	}
	switch {
	case n.Kind == NoticeDropped:
		return fmt.Errorf("turnout: batch %d (%d events) refused for good and dropped: %w", n.Seq, n.Events,
			&HTTPError{Method: method, URL: url, StatusCode: n.Status})
	case n.Kind != NoticeError:
		return nil
	case n.ErrorKind == "HTTP":
		return &HTTPError{Method: method, URL: url, StatusCode: n.Status}
	case n.ErrorKind == "TIMEOUT":
		after := c.opts.requestTimeout
		if t := c.opts.httpClient.Timeout; t > 0 && t < after {
			after = t
		}
		return &TimeoutError{Method: method, URL: url, After: after, Err: errors.New(n.Message)}
	case n.ErrorKind == "INVALID_CONFIG":
		return &Error{Status: StatusConfig, Kind: n.ErrorKind, Message: n.Message}
	case n.ErrorKind == "LIMIT_EXCEEDED":
		return &Error{Status: StatusLimit, Kind: n.ErrorKind, Message: n.Message}
	case n.ErrorKind == "TOO_LARGE":
		return wrap(ErrConfigTooLarge)
	case n.ErrorKind == "INCOMPLETE":
		return wrap(io.ErrUnexpectedEOF)
	case n.ErrorKind == "ABORTED":
		return wrap(context.Canceled)
	}
	return wrap(ErrNetwork)
}

// noticeLevels are the levels of docs/sync.md, section 7.
var noticeLevels = map[NoticeKind]slog.Level{
	NoticeReady: slog.LevelInfo, NoticeApplied: slog.LevelInfo, NoticeError: slog.LevelWarn,
	NoticeRecovered: slog.LevelInfo, NoticeStale: slog.LevelWarn, NoticeFresh: slog.LevelInfo,
	NoticeDropped: slog.LevelError,
}

func (c *Client) log(n *Notice) {
	if n.Repeat {
		return
	}
	level := noticeLevels[n.Kind]
	attrs := []slog.Attr{slog.String("notice", string(n.Kind))}
	switch n.Kind {
	case NoticeApplied:
		r := cmp.Or(n.Report, &UpdateReport{})
		if !r.HasChanges() {
			level = slog.LevelDebug
		}
		if r.Version != nil {
			attrs = append(attrs, slog.Int64("version", *r.Version))
		}
		attrs = append(attrs, slog.String("etag", n.ETag), slog.Any("changed", r.Changed), slog.Any("added", r.Added),
			slog.Any("removed", r.Removed))
	case NoticeError:
		attrs = append(attrs, slog.String("channel", n.Channel), slog.String("kind", n.ErrorKind),
			slog.Int("status", n.Status), slog.String("error", n.Err.Error()))
	case NoticeRecovered:
		attrs = append(attrs, slog.String("channel", n.Channel), slog.Uint64("failures", n.Failures))
	case NoticeStale:
		now := nowMs()
		attrs = append(attrs, slog.Duration("since", time.Duration(now-min(n.SinceMs, now))*time.Millisecond))
	case NoticeDropped:
		attrs = append(attrs, slog.Uint64("seq", n.Seq), slog.Uint64("events", n.Events), slog.Int("status", n.Status))
	}
	c.opts.logger().LogAttrs(context.Background(), level, "turnout: "+string(n.Kind), attrs...)
}

// WaitReady waits until a config is in force: at once after Start when New
// was given a config, else once the poller installed its first one. It
// returns nil then, or ctx's error (with the poller's last failure, if any)
// when ctx is done first.
func (c *Client) WaitReady(ctx context.Context) error {
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		if err := c.lastErr.Load(); err != nil {
			return fmt.Errorf("turnout: not ready (last failure: %v): %w", *err, ctx.Err())
		}
		return fmt.Errorf("turnout: not ready: %w", ctx.Err())
	}
}
