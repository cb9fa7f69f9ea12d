package turnout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Start keeps the client's config up to date and, with WithEventsURL, uploads
// its events, in a background goroutine, until ctx is done or Close is called.
// It returns at once; the first fetch happens immediately. configURL may be
// empty with WithEventsURL (events only). When to fetch, upload, back off
// (WithMaxBackoff, Retry-After, WithJitter), what a 304, a rejected config
// (kept out, its ETag sent until the server has another) or a refused batch
// does, is the engine's host protocol (docs/sync.md), the same on every
// platform; this package makes the requests: a GET with If-None-Match every
// interval, a POST of each batch every WithFlushInterval, each under one
// deadline (WithRequestTimeout: connect, headers and body), a config body
// read up to WithMaxConfigBytes. What happens is logged once through
// WithLogger (slog.Default() otherwise) and passed to WithOnNotice,
// WithOnUpdate and WithOnError. Cancelling ctx, or Close, stops it at once,
// also during a config request; the queued events are uploaded once more
// (bounded by a few seconds).
func (c *Client) Start(ctx context.Context, configURL string, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("turnout: Start: interval must be positive, got %v", interval)
	}
	for _, u := range []string{configURL, c.opts.eventsURL} {
		if err := checkURL(u); err != nil && u != "" {
			return err
		}
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
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	c.stop = func() { cancel(); <-done }
	go c.run(pctx, s, configURL, done)
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("turnout: invalid URL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("turnout: URL %q: scheme must be http or https", s)
	}
	return nil
}

// run drives the sync until it says Stop. Once ctx is done the sync stops
// with a flush: a config request is cut at once, uploads flushTimeout later.
func (c *Client) run(ctx context.Context, s *syncer, configURL string, done chan struct{}) {
	defer close(done)
	defer s.h.close()
	uploads, cancelUploads := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelUploads()
	stopping := false
	for {
		if !stopping && ctx.Err() != nil {
			stopping = true
			s.call(syncStop)
			defer time.AfterFunc(c.opts.flushTimeout, cancelUploads).Stop()
		}
		switch a := s.next(nowMs()); a.kind {
		case actionStop:
			return
		case actionWait:
			t := time.NewTimer(a.wait)
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		case actionFetch, actionUpload:
			rctx := ctx
			if a.kind == actionUpload {
				rctx = uploads
			}
			o := c.request(rctx, &a)
			s.report(nowMs(), &a, o) // the time the request ended
		}
		c.notices(s, configURL, true)
	}
}

// Flush uploads every queued event now, one attempt per batch, and returns
// the first failure: the failed batch is nacked and sent again first by the
// next Flush or upload round (a batch refused for good, 400/413/422, is
// dropped and reported). It neither logs nor calls the callbacks.
func (c *Client) Flush(ctx context.Context) error {
	if c.opts.eventsURL == "" {
		return ErrNoEventsURL
	}
	s, err := c.newSync("", 0)
	if err != nil {
		return err
	}
	defer s.h.close()
	s.call(syncStop)
	for a := s.next(nowMs()); a.kind == actionUpload; a = s.next(nowMs()) {
		o := c.request(ctx, &a)
		s.report(nowMs(), &a, o)
		for _, n := range c.notices(s, "", false) {
			if err == nil {
				err = n.Err
			}
		}
	}
	return err
}

// request makes a fetch or an upload under one deadline (connect, headers
// and body) and says what came of it.
func (c *Client) request(ctx context.Context, a *syncAction) *outcome {
	rctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	method, body, fetch := http.MethodPost, io.Reader(bytes.NewReader(a.bytes)), a.kind == actionFetch
	if fetch {
		method, body = http.MethodGet, nil
	}
	req, err := http.NewRequestWithContext(rctx, method, a.url, body)
	if err != nil {
		return &outcome{failure: "NETWORK", message: err.Error()}
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
	tooLarge := &outcome{failure: "TOO_LARGE", message: fmt.Sprintf("config larger than %d bytes", a.maxBytes)}
	switch {
	case !fetch || resp.StatusCode/100 != 2: // only the status counts
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	case resp.ContentLength > a.maxBytes: // refused before reading
		tooLarge.message += fmt.Sprintf(" (Content-Length %d)", resp.ContentLength)
		return tooLarge
	default: // a body cut short is io.ErrUnexpectedEOF
		if o.body, err = io.ReadAll(io.LimitReader(resp.Body, a.maxBytes+1)); err != nil {
			return failed(ctx, rctx, fmt.Errorf("reading the body: %w", err))
		}
		if int64(len(o.body)) > a.maxBytes {
			return tooLarge
		}
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
