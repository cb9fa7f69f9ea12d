package turnout

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// configServer serves a config with an ETag, honours If-None-Match, and can
// be switched down (connections dropped) or to an error status.
type configServer struct {
	mu          sync.Mutex
	body        []byte
	etag        string
	down        bool
	status      int // when non-zero, answered instead of the config
	requests    int
	conditional int // requests that carried the current ETag
	notModified int
	inm         []string // If-None-Match of every request
}

func (s *configServer) set(body []byte, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.etag = body, etag
}

func (s *configServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	s.inm = append(s.inm, r.Header.Get("If-None-Match"))
	if s.down {
		// Drop the connection without an answer, like a dead server.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if s.status != 0 {
		w.WriteHeader(s.status)
		return
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == s.etag {
		s.conditional++
		s.notModified++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", s.etag)
	w.Write(s.body)
}

func (s *configServer) stats() (requests, notModified int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests, s.notModified
}

func (s *configServer) setDown(down bool, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down, s.status = down, status
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type recorder struct {
	mu      sync.Mutex
	updates []UpdateReport
	errs    []error
}

func (r *recorder) onUpdate(u UpdateReport) {
	r.mu.Lock()
	r.updates = append(r.updates, u)
	r.mu.Unlock()
}
func (r *recorder) onError(e error) { r.mu.Lock(); r.errs = append(r.errs, e); r.mu.Unlock() }
func (r *recorder) counts() (int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.updates), len(r.errs)
}
func (r *recorder) lastError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) == 0 {
		return nil
	}
	return r.errs[len(r.errs)-1]
}

func TestPollerPicksUpChangesAndHonours304(t *testing.T) {
	cfgA, cfgB := twoConfigs(30, 45)
	srv := &configServer{}
	srv.set(cfgA, `"a"`)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	var rec recorder
	c := newClient(t, nil, WithOnUpdate(rec.onUpdate), WithOnError(rec.onError))
	if err := c.Start(bg, hs.URL+"/config.json", 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(bg, hs.URL, time.Second); !errors.Is(err, ErrStarted) {
		t.Fatal(err)
	}
	delay := func() int64 { return c.GetVariable(bg, "delay", nil).Int64(-1) }
	eventually(t, "the first config", func() bool { return delay() == 30 })
	// Unchanged config: conditional requests answered 304, no more updates.
	eventually(t, "304s", func() bool { _, nm := srv.stats(); return nm >= 5 })
	if u, _ := rec.counts(); u != 1 {
		t.Fatalf("%d updates for one config", u)
	}
	// A change is picked up and reported.
	srv.set(cfgB, `"b"`)
	eventually(t, "the second config", func() bool { return delay() == 45 })
	eventually(t, "the update callback", func() bool { u, _ := rec.counts(); return u == 2 })
	rec.mu.Lock()
	changed := rec.updates[1].Changed
	rec.mu.Unlock()
	if len(changed) != 2 {
		t.Fatalf("changed %v", changed)
	}
	// A broken config is reported and the last good one stays.
	srv.set([]byte(`{"schema": 1, "rollouts": [{"variable": "delay", "default": []`), `"broken"`)
	eventually(t, "the config error", func() bool { return errors.Is(rec.lastError(), ErrConfig) })
	if delay() != 45 {
		t.Fatal("the last good config was not kept")
	}
	// The rejected config's ETag is not remembered: each poll asks with the
	// ETag of the config in force ("b") and gets the broken bytes again.
	eventually(t, "the broken config fetched again", func() bool { _, e := rec.counts(); return e >= 3 })
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for _, inm := range srv.inm {
		if inm == `"broken"` {
			t.Fatal("the rejected config's ETag was sent")
		}
	}
	if last := srv.inm[len(srv.inm)-1]; last != `"b"` {
		t.Fatalf("If-None-Match %q, want the good config's", last)
	}
}

func TestPollerServerDownThenUp(t *testing.T) {
	cfgA, cfgB := twoConfigs(30, 45)
	srv := &configServer{}
	srv.set(cfgA, `"a"`)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	var rec recorder
	c := newClient(t, cfgB, WithOnError(rec.onError), WithMaxBackoff(40*time.Millisecond))
	srv.setDown(true, 0)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	if err := c.Start(ctx, hs.URL, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, "errors while down", func() bool { _, e := rec.counts(); return e >= 3 })
	if got := c.GetVariable(bg, "delay", nil).Int64(-1); got != 45 {
		t.Fatalf("the bootstrap config must stay while the server is down, got %d", got)
	}
	// Backoff: with a 5 ms interval, far fewer than one request per 5 ms.
	before, _ := srv.stats()
	time.Sleep(200 * time.Millisecond)
	after, _ := srv.stats()
	if n := after - before; n > 20 {
		t.Fatalf("%d requests in 200 ms while down: no backoff", n)
	}
	// An HTTP error status is a failure too.
	srv.setDown(false, http.StatusInternalServerError)
	eventually(t, "an HTTP error", func() bool {
		var he *HTTPError
		return errors.As(rec.lastError(), &he) && he.StatusCode == 500
	})
	srv.setDown(false, 0)
	eventually(t, "the config after recovery", func() bool { return c.GetVariable(bg, "delay", nil).Int64(-1) == 30 })
	// Cancelling the context stops the poller.
	cancel()
	time.Sleep(50 * time.Millisecond)
	n1, _ := srv.stats()
	time.Sleep(100 * time.Millisecond)
	if n2, _ := srv.stats(); n2 != n1 {
		t.Fatalf("poller still running after cancel: %d -> %d requests", n1, n2)
	}
}

// collector receives batches, fails the first `failFirst` requests with 500,
// and records how often each (client id, seq) was accepted.
type collector struct {
	mu        sync.Mutex
	failFirst int
	requests  int
	accepted  map[string]int
	events    int64 // occurrences (sum of counts) in accepted batches
	badType   int
}

func (col *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	col.mu.Lock()
	defer col.mu.Unlock()
	col.requests++
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/octet-stream" {
		col.badType++
	}
	if col.requests <= col.failFirst {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	js, err := DecodeBatchJSON(body)
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var b struct {
		Header struct {
			ClientID string `json:"clientId"`
			Seq      uint64 `json:"seq"`
		} `json:"header"`
		Events []struct {
			Count int64 `json:"count"`
		} `json:"events"`
	}
	if err := json.Unmarshal(js, &b); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	key := fmt.Sprintf("%s/%d", b.Header.ClientID, b.Header.Seq)
	col.accepted[key]++
	if col.accepted[key] == 1 {
		for _, e := range b.Events {
			col.events += e.Count
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

func TestEventsDeliveredOncePerAck(t *testing.T) {
	col := &collector{failFirst: 2, accepted: map[string]int{}}
	hs := httptest.NewServer(col)
	defer hs.Close()
	cfgSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotModified)
	}))
	defer cfgSrv.Close()
	var rec recorder
	c, err := New(exampleConfig(t), WithEventsURL(hs.URL+"/events"), WithFlushInterval(5*time.Millisecond),
		WithBatchSize(7), WithClientID("poller-test"), WithOnError(rec.onError), WithMaxBackoff(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	// 50 distinct units, each decided 3 times (folded) and tracked once.
	for i := 0; i < 50; i++ {
		f := NewFacets().Passenger(int64(i)).City(10)
		for j := 0; j < 3; j++ {
			c.GetVariable(bg, "automatedMessageDelay", f).Int64(0)
		}
		c.Track(bg, "pickupSeconds", float64(i), f)
	}
	recorded := c.TrackingStats().Recorded
	if err := c.Start(bg, cfgSrv.URL, time.Hour); err != nil {
		t.Fatal(err)
	}
	eventually(t, "all events delivered", func() bool {
		s := c.TrackingStats()
		return s.Queued == 0 && s.InFlight == 0 && s.Retrying == 0 && col.total() == int64(recorded)
	})
	// Events recorded while running are delivered too, and Close flushes the rest.
	c.Track(bg, "late", 1, nil)
	c.Close()
	col.mu.Lock()
	defer col.mu.Unlock()
	if col.events != int64(recorded)+1 {
		t.Fatalf("collector got %d occurrences, %d recorded", col.events, recorded+1)
	}
	for key, n := range col.accepted {
		if n != 1 {
			t.Errorf("batch %s accepted %d times", key, n)
		}
	}
	if col.badType != 0 {
		t.Fatalf("%d requests without POST application/octet-stream", col.badType)
	}
	if _, e := rec.counts(); e < 1 {
		t.Fatal("the 500s were not reported")
	}
}

func (col *collector) total() int64 {
	col.mu.Lock()
	defer col.mu.Unlock()
	return col.events
}

func TestFlushFailureNacks(t *testing.T) {
	// A port with nothing listening: the upload fails, the batch is nacked
	// and the same bytes go out on the next Flush.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c := newClient(t, seedRollout(t), WithEventsURL("http://"+addr+"/events"))
	c.GetVariable(bg, "automatedMessageDelay", NewFacets().City(3)).Int64(0)
	if err := c.Flush(bg); err == nil {
		t.Fatal("flush to a closed port succeeded")
	}
	if s := c.TrackingStats(); s.Retrying != 1 || s.InFlight != 0 {
		t.Fatalf("%+v", s)
	}
	b, _ := c.TakeBatch(100)
	if b == nil || b.Events != 1 {
		t.Fatalf("the nacked batch should come back: %+v", b)
	}
	if err := c.Start(bg, "ftp://x", time.Second); err == nil {
		t.Fatal("bad scheme accepted")
	}
	if err := c.Start(bg, "http://127.0.0.1:1/", 0); err == nil {
		t.Fatal("zero interval accepted")
	}
}

// ---- one deadline, the body limit, the ETag rule (issue 13) ----

// scriptServer answers config GETs from a script of raw answers first, then
// with its config (honouring If-None-Match); it records every If-None-Match.
type scriptServer struct {
	mu     sync.Mutex
	script []func(conn net.Conn, buf *bufio.ReadWriter)
	inm    []string
	body   []byte
	etag   string
	done   chan struct{} // closed at the end of the test: slow writers stop
}

func newScriptServer(t *testing.T) (*scriptServer, string) {
	s := &scriptServer{done: make(chan struct{})}
	hs := httptest.NewServer(s)
	t.Cleanup(func() { close(s.done); hs.Close() })
	return s, hs.URL + "/config"
}

func (s *scriptServer) serve(body []byte, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.etag = body, etag
}

func (s *scriptServer) add(answers ...func(net.Conn, *bufio.ReadWriter)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, answers...)
}

func (s *scriptServer) sent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.inm...)
}

func (s *scriptServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.inm = append(s.inm, r.Header.Get("If-None-Match"))
	var raw func(net.Conn, *bufio.ReadWriter)
	if len(s.script) > 0 {
		raw, s.script = s.script[0], s.script[1:]
	}
	body, etag := s.body, s.etag
	s.mu.Unlock()
	if raw != nil {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		raw(conn, buf)
		return
	}
	if etag != "" && r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	w.Write(body)
}

// rawAnswer writes a 200 by hand: contentLength -1 declares len(body), -2
// declares nothing (the body ends when the connection closes); only the first
// `send` bytes are written (send < 0: all); every > 0 writes one byte at a
// time with that pause, until the client goes away or the test ends.
func (s *scriptServer) rawAnswer(body []byte, etag string, contentLength, send int, every time.Duration) func(net.Conn, *bufio.ReadWriter) {
	return func(conn net.Conn, buf *bufio.ReadWriter) {
		var h strings.Builder
		h.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n")
		if etag != "" {
			fmt.Fprintf(&h, "ETag: %s\r\n", etag)
		}
		switch {
		case contentLength == -1:
			fmt.Fprintf(&h, "Content-Length: %d\r\n", len(body))
		case contentLength >= 0:
			fmt.Fprintf(&h, "Content-Length: %d\r\n", contentLength)
		}
		h.WriteString("\r\n")
		buf.WriteString(h.String())
		buf.Flush()
		data := body
		if send >= 0 {
			data = body[:send]
		}
		if every <= 0 {
			buf.Write(data)
			buf.Flush()
			return
		}
		for i := range data {
			select {
			case <-s.done:
				return
			case <-time.After(every):
			}
			if _, err := conn.Write(data[i : i+1]); err != nil {
				return
			}
		}
	}
}

func TestPollerSlowBodyTimesOutThenPollsAgain(t *testing.T) {
	cfgA, cfgB := twoConfigs(30, 45)
	srv, url := newScriptServer(t)
	srv.serve(cfgB, `"b"`)
	// One byte every 0.5 s: each read is quick, the whole body would take a minute.
	srv.add(srv.rawAnswer(cfgB, `"b"`, -1, -1, 500*time.Millisecond))
	errs := make(chan error, 10)
	c := newClient(t, cfgA, WithRequestTimeout(time.Second), WithMaxBackoff(50*time.Millisecond),
		WithOnError(func(err error) { errs <- err }))
	start := time.Now()
	if err := c.Start(bg, url, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		elapsed := time.Since(start)
		var te *TimeoutError
		if !errors.Is(err, ErrTimeout) || !errors.As(err, &te) || te.After != time.Second {
			t.Fatalf("want a timeout, got %v", err)
		}
		if elapsed < 900*time.Millisecond || elapsed > 2*time.Second {
			t.Fatalf("the timeout came after %v (deadline 1 s)", elapsed)
		}
		if !strings.Contains(err.Error(), "timed out") {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no error within 5 s: the deadline does not cover the body")
	}
	if got := c.GetVariable(bg, "delay", nil).Int64(-1); got != 30 {
		t.Fatalf("a timed-out body was installed: %d", got)
	}
	// The next poll is scheduled as usual and gets the config; the slow
	// answer's ETag was never sent.
	eventually(t, "the config after the timeout", func() bool { return c.GetVariable(bg, "delay", nil).Int64(-1) == 45 })
	if inm := srv.sent(); inm[0] != "" || inm[1] != "" {
		t.Fatalf("If-None-Match %q", inm)
	}
}

func TestPollerCloseIsPromptDuringASlowBody(t *testing.T) {
	cfgA, cfgB := twoConfigs(30, 45)
	srv, url := newScriptServer(t)
	srv.add(srv.rawAnswer(cfgB, `"b"`, -1, -1, 500*time.Millisecond))
	var rec recorder
	c := newClient(t, cfgA, WithRequestTimeout(10*time.Second), WithOnError(rec.onError))
	if err := c.Start(bg, url, time.Hour); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the request", func() bool { return len(srv.sent()) == 1 })
	time.Sleep(300 * time.Millisecond) // the body is trickling in
	start := time.Now()
	c.Close()
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("Close took %v during a request", d)
	}
	if _, e := rec.counts(); e != 0 {
		t.Fatalf("stopping was reported as a failure: %v", rec.lastError())
	}
}

// pollOnce runs one fetch of a started-and-stopped-free poller (the loop's
// step, synchronously).
func pollOnce(c *Client, url string) error {
	p := &poller{c: c, configURL: url, interval: time.Hour}
	return p.fetch(bg)
}

func TestPollerTruncatedBodyKeepsNoETag(t *testing.T) {
	cfgA, cfgB := twoConfigs(30, 45)
	srv, url := newScriptServer(t)
	srv.serve(cfgA, `"a"`)
	c := newClient(t, nil)
	p := &poller{c: c, configURL: url, interval: time.Hour}
	if err := p.fetch(bg); err != nil {
		t.Fatal(err)
	}
	// Content-Length larger than what is sent, ETag "E"; then the full body with "E".
	srv.add(srv.rawAnswer(cfgB, `"E"`, len(cfgB), len(cfgB)/2, 0))
	err := p.fetch(bg)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("want an incomplete body, got %v", err)
	}
	if p.etag != `"a"` {
		t.Fatalf("ETag %q after a truncated body", p.etag)
	}
	srv.serve(cfgB, `"E"`)
	if err := p.fetch(bg); err != nil {
		t.Fatal(err)
	}
	if got := c.GetVariable(bg, "delay", nil).Int64(-1); got != 45 || p.etag != `"E"` {
		t.Fatalf("delay %d, ETag %q", got, p.etag)
	}
	// Close-delimited (no Content-Length) and cut short: net/http cannot tell;
	// the engine rejects the half, whose ETag is not kept either.
	_, cfgC := twoConfigs(50, 55)
	srv.add(srv.rawAnswer(cfgC, `"F"`, -2, len(cfgC)/2, 0))
	if err := p.fetch(bg); !errors.Is(err, ErrConfig) {
		t.Fatalf("want the half config rejected, got %v", err)
	}
	if p.etag != `"E"` {
		t.Fatalf("ETag %q after a rejected half body", p.etag)
	}
	srv.serve(cfgC, `"F"`)
	if err := p.fetch(bg); err != nil {
		t.Fatal(err)
	}
	if got := c.GetVariable(bg, "delay", nil).Int64(-1); got != 55 {
		t.Fatalf("delay %d", got)
	}
	want := []string{"", `"a"`, `"a"`, `"E"`, `"E"`}
	if got := srv.sent(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("If-None-Match %q, want %q", got, want)
	}
}

func TestPollerBodyOverTheLimit(t *testing.T) {
	cfgA, cfgB := twoConfigs(30, 45)
	srv, url := newScriptServer(t)
	limit := int64(len(cfgB) - 1)
	c := newClient(t, cfgA, WithMaxConfigBytes(limit))
	p := &poller{c: c, configURL: url, interval: time.Hour}
	// Declared too large (refused from the Content-Length), then undeclared
	// (refused while reading).
	srv.add(srv.rawAnswer(cfgB, `"E"`, -1, -1, 0), srv.rawAnswer(cfgB, `"E"`, -2, -1, 0))
	for i := 0; i < 2; i++ {
		err := p.fetch(bg)
		if !errors.Is(err, ErrConfigTooLarge) || !strings.Contains(err.Error(), fmt.Sprint(limit)) {
			t.Fatalf("answer %d: want too large, got %v", i, err)
		}
		if p.etag != "" {
			t.Fatalf("ETag %q kept for a body over the limit", p.etag)
		}
	}
	if got := c.GetVariable(bg, "delay", nil).Int64(-1); got != 30 {
		t.Fatalf("delay %d", got)
	}
	// Exactly at the limit is fine.
	srv.serve(cfgB, `"E"`)
	c2 := newClient(t, cfgA, WithMaxConfigBytes(int64(len(cfgB))))
	if err := pollOnce(c2, url); err != nil {
		t.Fatal(err)
	}
	if c.opts.maxConfigBytes != limit || newClient(t, nil).opts.maxConfigBytes != 16<<20 {
		t.Fatal("limits")
	}
	if inm := srv.sent(); inm[0] != "" || inm[1] != "" {
		t.Fatalf("If-None-Match %q", inm)
	}
}

func TestPollerRejectedThenValidWithTheSameETag(t *testing.T) {
	cfgA, cfgB := twoConfigs(30, 45)
	srv, url := newScriptServer(t)
	srv.serve([]byte(`{"schema": 1, "rollouts": [{"variable": 5}]}`), `"E"`)
	var rec recorder
	c := newClient(t, cfgA, WithOnError(rec.onError), WithOnUpdate(rec.onUpdate))
	if err := c.Start(bg, url, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rejection", func() bool { return errors.Is(rec.lastError(), ErrConfig) })
	srv.serve(cfgB, `"E"`)
	eventually(t, "the valid config", func() bool { return c.GetVariable(bg, "delay", nil).Int64(-1) == 45 })
	if u, _ := rec.counts(); u != 1 {
		t.Fatalf("%d updates", u)
	}
}
