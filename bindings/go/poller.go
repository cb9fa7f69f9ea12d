package turnout

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Start keeps the client's config up to date, and with WithEventsURL its
// events uploaded (configURL may then be empty), in a goroutine until ctx is
// done or Close is called; it returns at once and fetches at once. Every rule
// (when to fetch, upload or back off; 304s, rejected configs, refused batches)
// is the engine's host protocol (docs/sync.md); this package makes the
// requests, each under one deadline (WithRequestTimeout), and logs what
// happens once (WithLogger) besides WithOnNotice, WithOnUpdate, WithOnError.
// Stopping cuts a config request at once, then uploads the queue once more.
func (c *Client) Start(ctx context.Context, configURL string, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("turnout: Start: interval must be positive, got %v", interval)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.ptr() == nil {
		return ErrClosed
	}
	if c.stop != nil {
		return ErrStarted
	}
	s, err := c.newSync(configURL, interval)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	uploads, cancelUploads := context.WithCancel(context.WithoutCancel(ctx)) // the drain has flushTimeout more
	context.AfterFunc(ctx, func() { time.AfterFunc(c.opts.flushTimeout, cancelUploads) })
	done := make(chan struct{})
	c.stop = func() { cancel(); <-done }
	go func() {
		defer close(done)
		_ = c.drive(ctx, uploads, s, true)
	}()
	return nil
}

// Flush uploads every queued event now, one attempt per batch, and returns
// the first failure (that batch is nacked and goes first next time; one
// refused for good, 400/413/422, is dropped). It neither logs nor calls the callbacks.
func (c *Client) Flush(ctx context.Context) error {
	if c.opts.eventsURL == "" {
		return ErrNoEventsURL
	}
	s, err := c.newSync("", 0)
	if err != nil {
		return err
	}
	s.call(syncStop) // a drain: one attempt per queued batch, then Stop
	return c.drive(ctx, ctx, s, false)
}

// drive runs the sync until it says Stop, then closes it: fetches under ctx,
// uploads under uploads; once ctx is done the sync stops with a flush. It
// returns the first error of the notices (with callbacks: logged and given to them).
func (c *Client) drive(ctx, uploads context.Context, s *syncer, callbacks bool) (err error) {
	defer s.h.close()
	for a := s.next(nowMs()); a.kind != actionStop; a = s.next(nowMs()) {
		var o *outcome
		switch a.kind {
		case actionWait:
			select {
			case <-time.After(a.wait):
			case <-ctx.Done():
			}
		case actionFetch:
			o = c.request(ctx, &a)
		case actionUpload:
			o = c.request(uploads, &a)
		}
		if ctx.Err() != nil {
			s.call(syncStop) // first: a request abandoned to stop is no fault (docs/sync.md, section 9)
		}
		if o != nil {
			s.report(nowMs(), &a, o) // the time the request ended
		}
		err = cmp.Or(err, c.notices(s, callbacks))
	}
	return err
}

// request makes a fetch or an upload under one deadline (connect, headers and body): its outcome.
func (c *Client) request(ctx context.Context, a *syncAction) *outcome {
	rctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	method, body, fetch := http.MethodPost, io.Reader(bytes.NewReader(a.bytes)), a.kind == actionFetch
	if fetch {
		method, body = http.MethodGet, nil
	}
	req, err := http.NewRequestWithContext(rctx, method, a.url, body)
	if err != nil {
		return failed(ctx, rctx, err)
	}
	if !fetch {
		req.Header.Set("Content-Type", "application/octet-stream")
	} else if req.Header.Set("Accept", "application/json"); a.etag != "" {
		req.Header.Set("If-None-Match", a.etag)
	}
	resp, err := c.opts.httpClient.Do(req)
	if err != nil {
		return failed(ctx, rctx, err)
	}
	defer resp.Body.Close()
	o := &outcome{status: resp.StatusCode, etag: resp.Header.Get("ETag"), retryAfter: resp.Header.Get("Retry-After")}
	if !fetch || resp.StatusCode/100 != 2 { // only the status counts
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return o
	}
	if resp.ContentLength <= a.maxBytes { // else refused before reading; a body cut short is io.ErrUnexpectedEOF
		if o.body, err = io.ReadAll(io.LimitReader(resp.Body, a.maxBytes+1)); err != nil {
			return failed(ctx, rctx, fmt.Errorf("reading the body: %w", err))
		}
	}
	if size := max(resp.ContentLength, int64(len(o.body))); size > a.maxBytes {
		return &outcome{failure: "TOO_LARGE", message: fmt.Sprintf("config larger than %d bytes (%d at least)", a.maxBytes, size)}
	}
	return o
}

// failed tells a transport error's kind: stopping, the deadline, a cut body, or no response.
func failed(ctx, rctx context.Context, err error) *outcome {
	var ne net.Error
	o := &outcome{failure: "NETWORK", message: err.Error()}
	if ue := (*url.Error)(nil); errors.As(err, &ue) { // "Get URL: why": the notice names the request
		o.message = ue.Err.Error()
	}
	switch {
	case ctx.Err() != nil:
		o.failure = "ABORTED"
	case rctx.Err() != nil || errors.As(err, &ne) && ne.Timeout():
		o.failure = "TIMEOUT"
	case errors.Is(err, io.ErrUnexpectedEOF):
		o.failure = "INCOMPLETE"
	}
	return o
}
