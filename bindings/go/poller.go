package turnout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Start keeps the client's config up to date and, with WithEventsURL, uploads
// its events, in background goroutines, until ctx is done or Close is called.
// It returns at once; the first fetch happens immediately.
//
// The config is fetched with GET every interval, with If-None-Match (the
// ETag of the config in force), so an unchanged config costs a 304. A new
// config is installed atomically; a rejected one is reported to WithOnError
// (errors.Is(err, ErrConfig)) and the last good config stays in force. After
// a failure (network error, timeout, incomplete or too large body, HTTP
// status other than 200/304) the next attempt waits twice as long, up to
// WithMaxBackoff, with jitter; a success resets it.
//
// Each request (config GET or events POST) has one deadline, WithRequestTimeout
// (default 30 s), covering connect, headers and the whole body; when it
// passes the request is aborted and the error matches errors.Is(err,
// ErrTimeout). A config body is read up to WithMaxConfigBytes (default 16 MiB,
// the engine's limit; a larger Content-Length is refused before reading, and
// nothing beyond the limit is buffered): a larger one fails with
// ErrConfigTooLarge. A body shorter than its Content-Length fails with
// io.ErrUnexpectedEOF.
//
// The ETag is remembered only after the body was read completely and the
// engine accepted the config. A timed-out, truncated, too large or rejected
// body leaves it as it was, so the next poll fetches the config again instead
// of getting 304 for bytes that were never installed.
//
// Cancelling ctx, or Close, stops the poller at once, also during a request.
//
// Events are POSTed every WithFlushInterval (application/octet-stream, one
// batch per request). A 2xx answer acks the batch; anything else nacks it and
// the same bytes (same seq) are sent again later, so a collector that
// de-duplicates by (client id, seq) sees each batch once. When the poller
// stops, the events still queued are uploaded once more.
func (c *Client) Start(ctx context.Context, configURL string, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("turnout: Start: interval must be positive, got %v", interval)
	}
	if err := checkURL(configURL); err != nil {
		return err
	}
	if c.opts.eventsURL != "" {
		if err := checkURL(c.opts.eventsURL); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.ptr() == nil {
		return ErrClosed
	}
	if c.poller != nil {
		return ErrStarted
	}
	pctx, cancel := context.WithCancel(ctx)
	p := &poller{c: c, configURL: configURL, interval: interval, cancel: cancel}
	c.poller = p
	p.wg.Add(1)
	go p.configLoop(pctx)
	if c.opts.eventsURL != "" {
		p.wg.Add(1)
		go p.eventsLoop(pctx)
	}
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

// Flush uploads every queued event now (see Start), and returns the first
// failure (the failed batch is nacked and sent again by the next Flush).
func (c *Client) Flush(ctx context.Context) error {
	if c.opts.eventsURL == "" {
		return ErrNoEventsURL
	}
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	for {
		b, err := c.TakeBatch(c.opts.batchSize)
		if err != nil || b == nil {
			return err
		}
		if err := c.upload(ctx, b.Bytes); err != nil {
			c.Nack(b.Seq)
			return err
		}
		c.Ack(b.Seq)
	}
}

func (c *Client) upload(ctx context.Context, batch []byte) error {
	rctx, cancel := context.WithTimeout(ctx, c.opts.requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.opts.eventsURL, bytes.NewReader(batch))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.opts.httpClient.Do(req)
	if err != nil {
		return c.timeoutError(rctx, ctx, http.MethodPost, c.opts.eventsURL, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return &HTTPError{Method: http.MethodPost, URL: c.opts.eventsURL, StatusCode: resp.StatusCode}
	}
	return nil
}

// timeoutError turns err into a *TimeoutError when the request's own
// deadline (rctx, under parent) passed, or the http.Client's Timeout did.
// A cancelled parent (Close, the caller's context) is left as it is.
func (c *Client) timeoutError(rctx, parent context.Context, method, url string, err error) error {
	if err == nil || parent.Err() != nil {
		return err
	}
	after := c.opts.requestTimeout
	if t := c.opts.httpClient.Timeout; t > 0 && t < after {
		after = t
	}
	var ne net.Error
	if errors.Is(rctx.Err(), context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return &TimeoutError{Method: method, URL: url, After: after, Err: err}
	}
	return err
}

func (c *Client) reportError(err error) {
	if c.opts.onError != nil && err != nil {
		c.opts.onError(err)
	}
}

type poller struct {
	c         *Client
	configURL string
	interval  time.Duration
	etag      string
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

func (p *poller) stop() {
	p.cancel()
	p.wg.Wait()
}

// backoff is the wait after `failures` consecutive failures: base doubled per
// failure up to max, then jittered to [d/2, d].
func backoff(base, max time.Duration, failures int) time.Duration {
	d := base
	for i := 0; i < failures && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	if d < 2 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx is done; it says whether to go on.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (p *poller) maxBackoff() time.Duration {
	return max(p.c.opts.maxBackoff, p.interval)
}

func (p *poller) configLoop(ctx context.Context) {
	defer p.wg.Done()
	failures := 0
	for {
		err := p.fetch(ctx)
		if ctx.Err() != nil {
			return
		}
		wait := p.interval
		switch {
		case err == nil:
			failures = 0
		case errors.Is(err, ErrConfig):
			failures = 0 // the server works; its config does not
			p.c.reportError(err)
		default:
			failures++
			p.c.reportError(err)
			wait = backoff(p.interval, p.maxBackoff(), failures)
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// fetch makes one conditional GET, under one deadline, and installs a new
// config. The ETag is remembered only once the whole body was read and the
// engine accepted it.
func (p *poller) fetch(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, p.c.opts.requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, p.configURL, nil)
	if err != nil {
		return err
	}
	if p.etag != "" {
		req.Header.Set("If-None-Match", p.etag)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.c.opts.httpClient.Do(req)
	if err != nil {
		return p.c.timeoutError(rctx, ctx, http.MethodGet, p.configURL, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil
	case http.StatusOK:
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return &HTTPError{Method: http.MethodGet, URL: p.configURL, StatusCode: resp.StatusCode}
	}
	limit := p.c.opts.maxConfigBytes
	tooLarge := func(what string) error {
		return fmt.Errorf("turnout: config at %s is larger than %d bytes (%s): %w", p.configURL, limit, what, ErrConfigTooLarge)
	}
	// resp.ContentLength is -1 when undeclared (and when net/http decompresses).
	if resp.ContentLength > limit {
		return tooLarge(fmt.Sprintf("Content-Length %d", resp.ContentLength))
	}
	// net/http reports a body shorter than its Content-Length (or a chunked
	// body cut short) as io.ErrUnexpectedEOF.
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		err = fmt.Errorf("turnout: GET %s: reading the body: %w", p.configURL, err)
		return p.c.timeoutError(rctx, ctx, http.MethodGet, p.configURL, err)
	}
	if int64(len(body)) > limit {
		return tooLarge("while reading")
	}
	if resp.ContentLength >= 0 && int64(len(body)) != resp.ContentLength {
		return fmt.Errorf("turnout: GET %s: incomplete body, %d of %d bytes: %w", p.configURL, len(body), resp.ContentLength, io.ErrUnexpectedEOF)
	}
	report, err := p.c.UpdateConfig(body)
	if err != nil {
		// A rejected config keeps no ETag: the next poll fetches it again.
		return err
	}
	p.etag = resp.Header.Get("ETag")
	if p.c.opts.onUpdate != nil {
		p.c.opts.onUpdate(report)
	}
	return nil
}

func (p *poller) eventsLoop(ctx context.Context) {
	defer p.wg.Done()
	failures := 0
	wait := p.c.opts.flushInterval
	for sleep(ctx, wait) {
		if err := p.c.Flush(ctx); err != nil && ctx.Err() == nil {
			failures++
			p.c.reportError(err)
			wait = backoff(p.c.opts.flushInterval, max(p.c.opts.maxBackoff, p.c.opts.flushInterval), failures)
		} else {
			failures = 0
			wait = p.c.opts.flushInterval
		}
	}
	// Stopping: one last upload of what is queued, bounded in time.
	final, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.c.opts.flushTimeout)
	defer cancel()
	p.c.reportError(p.c.Flush(final))
}
