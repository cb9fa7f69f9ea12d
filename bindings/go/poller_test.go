package turnout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
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
	// A broken config (complete JSON the engine rejects) is reported once and
	// the last good one stays.
	srv.set([]byte(`{"schema": 2, "rollouts": []}`), `"broken"`)
	eventually(t, "the config error", func() bool { return errors.Is(rec.lastError(), ErrConfig) })
	if delay() != 45 {
		t.Fatal("the last good config was not kept")
	}
	// The rejected config's ETag is sent until the server serves something
	// else (docs/sync.md, section 4), so the broken bytes are neither
	// downloaded nor compiled again: 304s, and no second error. (Before the
	// host protocol moved into the engine, the Go poller sent the good
	// config's ETag and fetched the broken bytes at every poll.)
	eventually(t, "304s to the rejected ETag", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		n := 0
		for _, inm := range srv.inm {
			if inm == `"broken"` {
				n++
			}
		}
		return n >= 3
	})
	if _, e := rec.counts(); e != 1 {
		t.Fatalf("%d errors for one rejected config", e)
	}
	srv.set(cfgA, `"a2"`)
	eventually(t, "the next good config", func() bool { return delay() == 30 })
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
	// Events only: no config URL; neither URL is an error of the options.
	if err := newClient(t, nil).Start(bg, "", time.Second); !errors.Is(err, ErrOptions) {
		t.Fatalf("a poller with nothing to do: %v", err)
	}
	if err := c.Start(bg, "", time.Second); err != nil {
		t.Fatal(err)
	}
}

// ---- one deadline, the body limit, the ETag rule (docs/sync.md sections 1 and 4) ----

// scriptServer answers config GETs from a script of raw answers first, then
// with its config (honouring If-None-Match); it records every If-None-Match.
type scriptServer struct {
	mu     sync.Mutex
	script []func(conn net.Conn, buf *bufio.ReadWriter)
	inm    []string
	raw    []bool // whether each request got a scripted answer
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

// set serves body (with etag) after the scripted answers, all at once.
func (s *scriptServer) set(body []byte, etag string, answers ...func(net.Conn, *bufio.ReadWriter)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, answers...)
	s.body, s.etag = body, etag
}

// after is the If-None-Match of the request after the last scripted one ("?" if none yet).
func (s *scriptServer) after() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.raw) - 2; i >= 0; i-- {
		if s.raw[i] {
			return s.inm[i+1]
		}
	}
	return "?"
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
	s.raw = append(s.raw, raw != nil)
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

// TestPollerStopIsNoNotice: a config request abandoned to stop is no notice
// at all (the driver stops the sync before it reports the request), and Flush
// checks its URL like Start.
func TestPollerStopIsNoNotice(t *testing.T) {
	cfgA, cfgB := twoConfigs(30, 45)
	srv, url := newScriptServer(t)
	srv.add(srv.rawAnswer(cfgB, `"b"`, -1, -1, 200*time.Millisecond))
	var notices noticeLog
	c := newClient(t, cfgA, quiet, WithOnNotice(notices.add))
	if err := c.Start(bg, url, time.Hour); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the request", func() bool { return len(srv.sent()) == 1 })
	c.Close()
	if n := notices.count(0, func(n Notice) bool { return n.Kind != NoticeReady }); n != 0 {
		t.Fatalf("stopping gave %d notices besides ready", n)
	}
	ftp := newClient(t, nil, WithEventsURL("ftp://collector.example/events"))
	if err := ftp.Flush(bg); err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Fatalf("Flush to an ftp URL: %v", err)
	}
}

// ---- notices, logs and the fault-injection tests (docs/sync.md section 7) ----

// noticeLog collects the notices of WithOnNotice.
type noticeLog struct {
	mu  sync.Mutex
	all []Notice
}

func (l *noticeLog) add(n Notice) { l.mu.Lock(); l.all = append(l.all, n); l.mu.Unlock() }

// count is how many notices since index from match.
func (l *noticeLog) count(from int, match func(Notice) bool) int {
	return countFrom(&l.mu, &l.all, from, match)
}

// countFrom is how many items of *all since index from match, under mu.
func countFrom[T any](mu *sync.Mutex, all *[]T, from int, match func(T) bool) int {
	mu.Lock()
	defer mu.Unlock()
	n := 0
	for _, x := range (*all)[min(from, len(*all)):] {
		if match(x) {
			n++
		}
	}
	return n
}

func (l *noticeLog) len() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.all) }

func isError(kind string) func(Notice) bool {
	return func(n Notice) bool { return n.Kind == NoticeError && n.ErrorKind == kind }
}

// logCapture is a slog.Handler that keeps every record.
type logCapture struct {
	mu      sync.Mutex
	records []logRecord
}

type logRecord struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCapture) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logCapture) WithGroup(string) slog.Handler            { return h }
func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	h.mu.Lock()
	h.records = append(h.records, logRecord{r.Level, r.Message, attrs})
	h.mu.Unlock()
	return nil
}

func (h *logCapture) len() int { h.mu.Lock(); defer h.mu.Unlock(); return len(h.records) }

// count is how many records since index from match.
func (h *logCapture) count(from int, match func(logRecord) bool) int {
	return countFrom(&h.mu, &h.records, from, match)
}

func logged(level slog.Level, notice string, attrs ...string) func(logRecord) bool {
	return func(r logRecord) bool {
		if r.level != level || r.attrs["notice"] != notice {
			return false
		}
		for i := 0; i+1 < len(attrs); i += 2 {
			if r.attrs[attrs[i]] != attrs[i+1] {
				return false
			}
		}
		return true
	}
}

// faultServer serves a config and collects event batches, misbehaving on
// purpose according to its mode: "ok", "500", "truncated" (a body shorter
// than its Content-Length), "large" (over the client's limit), "slow"
// (answers after the client's deadline; batches are taken, their answers
// lost), "stale304" (304 to any If-None-Match).
type faultServer struct {
	mu       sync.Mutex
	mode     string
	body     []byte
	etag     string
	hits     map[string]int      // config requests per mode
	inm      []string            // If-None-Match of every config request
	batches  map[uint64][][]byte // every body received per seq
	late     map[uint64]int      // answers the client no longer waited for, per seq
	accepted int64               // occurrences in the batches received (first copy of each seq)
}

func newFaultServer() *faultServer {
	return &faultServer{mode: "ok", hits: map[string]int{}, batches: map[uint64][][]byte{}, late: map[uint64]int{}}
}

func (s *faultServer) set(mode string, body []byte, etag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mode = mode
	if body != nil {
		s.body, s.etag = body, etag
	}
}

func (s *faultServer) hitsOf(mode string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.hits[mode] }

func (s *faultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		s.collect(w, r)
		return
	}
	s.mu.Lock()
	mode, body, etag, inm := s.mode, s.body, s.etag, r.Header.Get("If-None-Match")
	s.hits[mode]++
	s.inm = append(s.inm, inm)
	s.mu.Unlock()
	switch mode {
	case "500":
		w.WriteHeader(http.StatusInternalServerError)
		return
	case "truncated":
		conn, buf, _ := w.(http.Hijacker).Hijack()
		defer conn.Close()
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nETag: \"cut\"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
			len(body), body[:len(body)/2])
		buf.Flush()
		return
	case "large":
		w.Header().Set("ETag", `"large"`)
		w.Write(bytes.Repeat([]byte(" "), 5000))
		return
	case "slow":
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
			return
		}
	case "stale304":
		if inm != "" {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	if inm != "" && inm == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	w.Write(body)
}

func (s *faultServer) collect(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	mode := s.mode
	s.hits["POST "+mode]++
	s.mu.Unlock()
	if mode == "500" {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	js, err := DecodeBatchJSON(body)
	var b struct {
		Header struct {
			Seq uint64 `json:"seq"`
		} `json:"header"`
		Events []struct {
			Count int64 `json:"count"`
		} `json:"events"`
	}
	if err != nil || json.Unmarshal(js, &b) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	seq := b.Header.Seq
	if len(s.batches[seq]) == 0 {
		for _, e := range b.Events {
			s.accepted += e.Count
		}
	}
	s.batches[seq] = append(s.batches[seq], body)
	s.mu.Unlock()
	if mode == "slow" {
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
	}
	if r.Context().Err() != nil {
		s.mu.Lock()
		s.late[seq]++
		s.mu.Unlock()
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// TestPollerFaultInjection runs the poller against a real local server that
// misbehaves on purpose, one fault after another: 500s, a truncated body, a
// body over the size limit, a slow answer past the deadline, the server
// going away and coming back, a config that fails validation, 304s to a
// stale ETag. After each fault the client still answers from its last good
// config and recovers when the server does; each fault is logged once
// however many requests it fails; and every event is delivered (a batch
// twice only when the answer to its first copy was lost, with the same seq
// and bytes).
func TestPollerFaultInjection(t *testing.T) {
	cfgA, cfgB := twoConfigs(30, 45)
	_, cfgC := twoConfigs(50, 55)
	srv := newFaultServer()
	srv.set("ok", cfgA, `"a"`)
	hs := httptest.NewServer(srv)
	addr := hs.Listener.Addr().String()
	defer func() { hs.Close() }()

	logs := &logCapture{}
	var notices noticeLog
	c := newClient(t, nil, WithEventsURL(hs.URL+"/events"), WithFlushInterval(20*time.Millisecond),
		WithRequestTimeout(300*time.Millisecond), WithMaxBackoff(60*time.Millisecond), WithMaxConfigBytes(4096),
		WithStaleAfterPolls(1000), WithBatchSize(20), WithLogger(slog.New(logs)), WithOnNotice(notices.add))
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	if err := c.Start(bg, hs.URL+"/config", 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	delay := func() int64 { return c.GetVariable(bg, "delay", nil).Int64(-1) }
	if delay() != 30 {
		t.Fatalf("delay %d after ready", delay())
	}
	// Events all along: every occurrence recorded must reach the collector.
	stopTracking := make(chan struct{})
	tracking := make(chan struct{})
	go func() {
		defer close(tracking)
		for i := 0; ; i++ {
			select {
			case <-stopTracking:
				return
			case <-time.After(2 * time.Millisecond):
			}
			c.Track(bg, "tick", 1, NewFacets().Int64("i", int64(i)))
		}
	}()

	// fault runs one fault until at least 3 config requests failed with it,
	// then ends it with `end` and waits for `recovered`.
	fault := func(name, kind string, want int64, begin, end func(), attempts func() int, recovered func(from int) bool) {
		t.Helper()
		from, fromLog := notices.len(), logs.len()
		begin()
		eventually(t, name+": 3 failed attempts", func() bool { return attempts() >= 3 })
		if got := delay(); got != want {
			t.Fatalf("%s: the client answers %d, want %d from its last good config", name, got, want)
		}
		end()
		eventually(t, name+": recovery", func() bool { return recovered(from) })
		if kind == "" {
			return
		}
		failed := notices.count(from, func(n Notice) bool { return isError(kind)(n) && n.Channel == "config" })
		once := logs.count(fromLog, logged(slog.LevelWarn, "error", "channel", "config", "kind", kind))
		// A rejected config is downloaded once (then 304s to its ETag); a
		// transport failure repeats at every attempt.
		if once != 1 || (kind == "INVALID_CONFIG") != (failed == 1) {
			t.Fatalf("%s: %d failures logged %d times, want once", name, failed, once)
		}
		if kind == "INVALID_CONFIG" {
			// The notice carries the rejected config's problems (docs/sync.md section 7).
			ok := notices.count(from, func(n Notice) bool {
				return isError(kind)(n) && len(n.Problems) > 0 && n.Problems[0].Message != "" && errors.Is(n.Err, ErrConfig)
			})
			if ok != 1 {
				t.Fatalf("%s: no error notice with its problems", name)
			}
		}
		if kind == "TIMEOUT" || kind == "TOO_LARGE" || kind == "INCOMPLETE" {
			var n Notice
			notices.mu.Lock()
			for _, x := range notices.all[from:] {
				if x.Kind == NoticeError && x.ErrorKind == kind {
					n = x
				}
			}
			notices.mu.Unlock()
			sentinel := map[string]error{"TIMEOUT": ErrTimeout, "TOO_LARGE": ErrConfigTooLarge, "INCOMPLETE": io.ErrUnexpectedEOF}[kind]
			if !errors.Is(n.Err, sentinel) {
				t.Fatalf("%s: the error %v is not %v", name, n.Err, sentinel)
			}
		}
	}
	recoveredConfig := func(from int) bool {
		return notices.count(from, func(n Notice) bool { return n.Kind == NoticeRecovered && n.Channel == "config" }) > 0
	}
	mode := func(m string) func() { return func() { srv.set(m, nil, "") } }
	hits := func(m string) func() int { return func() int { return srv.hitsOf(m) } }

	fault("500s", "HTTP", 30, mode("500"), mode("ok"), hits("500"), recoveredConfig)
	fault("a truncated body", "INCOMPLETE", 30, mode("truncated"), mode("ok"), hits("truncated"), recoveredConfig)
	fault("a body over the limit", "TOO_LARGE", 30, mode("large"), mode("ok"), hits("large"), recoveredConfig)
	// Slow until an upload's answer was lost too (the batch goes again).
	fault("a slow answer", "TIMEOUT", 30, mode("slow"), mode("ok"), func() int {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		if len(srv.late) == 0 {
			return 0
		}
		return srv.hits["slow"]
	}, recoveredConfig)
	// The server goes away (connections refused) and comes back on the same address.
	down := notices.len()
	fault("the server down", "NETWORK", 30, func() { hs.Close() }, func() {
		l, err := net.Listen("tcp", addr)
		for i := 0; err != nil && i < 100; i++ {
			time.Sleep(10 * time.Millisecond)
			l, err = net.Listen("tcp", addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		hs = httptest.NewUnstartedServer(srv)
		hs.Listener.Close()
		hs.Listener = l
		hs.Start()
	}, func() int {
		return notices.count(down, func(n Notice) bool { return isError("NETWORK")(n) && n.Channel == "config" })
	}, recoveredConfig)
	// A config that fails validation: reported once, its ETag sent until the
	// server serves another (304s meanwhile), the good config kept.
	fault("an invalid config", "INVALID_CONFIG", 30, func() {
		srv.set("ok", []byte(`{"rollouts": [{"variable": 7}]}`), `"bad"`)
	}, func() { srv.set("ok", cfgB, `"b"`) }, func() int {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		n := 0
		for _, inm := range srv.inm {
			if inm == `"bad"` {
				n++
			}
		}
		return n + 1 // the first answer carried the bad body
	}, func(int) bool { return delay() == 45 })
	// 304s to a stale ETag (a cache that missed the update): nothing to
	// report, the client keeps its config, and takes the new one once the
	// cache is fixed.
	fromLog := logs.len()
	fault("304s to a stale ETag", "", 45, func() { srv.set("stale304", cfgC, `"c"`) }, mode("ok"), hits("stale304"),
		func(int) bool { return delay() == 55 })
	if n := logs.count(fromLog, func(r logRecord) bool { return r.level >= slog.LevelWarn }); n != 0 {
		t.Fatalf("%d warnings for 304s", n)
	}

	// No event lost: every occurrence recorded reached the collector, each
	// batch acknowledged; a batch came again only with the same seq and
	// bytes, and only after an upload whose answer the client did not get.
	close(stopTracking)
	<-tracking
	recorded := c.TrackingStats().Recorded
	eventually(t, "every event delivered", func() bool {
		s := c.TrackingStats()
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return s.Queued == 0 && s.InFlight == 0 && s.Retrying == 0 && srv.accepted == int64(recorded)
	})
	unanswered := notices.count(0, func(n Notice) bool {
		return n.Kind == NoticeError && n.Channel == "events" && n.ErrorKind != "HTTP"
	})
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.accepted == 0 || len(srv.batches) < 10 {
		t.Fatalf("%d occurrences in %d batches", srv.accepted, len(srv.batches))
	}
	again := 0
	for seq, copies := range srv.batches {
		again += len(copies) - 1
		for _, b := range copies[1:] {
			if !bytes.Equal(b, copies[0]) {
				t.Fatalf("batch %d sent again with other bytes", seq)
			}
		}
	}
	if again > unanswered {
		t.Fatalf("%d batches received again, but only %d uploads went unanswered", again, unanswered)
	}
	t.Logf("%d occurrences in %d batches; %d received again (%d answers lost by the server, %d uploads unanswered); requests %v",
		srv.accepted, len(srv.batches), again, len(srv.late), unanswered, srv.hits)
}

// TestPollerReadinessStalenessAndTheDefaultLogger: WaitReady times out
// (saying why) while the server fails, and returns once a config is in
// force; without WithLogger the notices go to slog.Default() at their
// levels; a client whose server keeps serving a rejected config turns stale
// (once), and fresh when a good config comes.
func TestPollerReadinessStalenessAndTheDefaultLogger(t *testing.T) {
	logs := &logCapture{}
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(logs))
	cfgA, _ := twoConfigs(30, 45)
	srv := &configServer{}
	srv.set(cfgA, `"a"`)
	srv.setDown(false, http.StatusInternalServerError)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	c := newClient(t, nil, WithStaleAfterPolls(3), WithMaxBackoff(40*time.Millisecond), WithJitter(0))
	if err := c.Start(bg, hs.URL, 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(bg, 150*time.Millisecond)
	defer cancel()
	if err := c.WaitReady(short); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("WaitReady: %v", err)
	}
	eventually(t, "stale while failing", func() bool { return logs.count(0, logged(slog.LevelWarn, "stale")) == 1 })
	srv.setDown(false, 0)
	if err := c.WaitReady(bg); err != nil {
		t.Fatal(err)
	}
	eventually(t, "fresh", func() bool { return logs.count(0, logged(slog.LevelInfo, "fresh")) == 1 })
	for _, want := range []func(logRecord) bool{
		logged(slog.LevelWarn, "error", "channel", "config", "kind", "HTTP", "status", "500"),
		logged(slog.LevelInfo, "applied", "etag", `"a"`, "version", "1"),
		logged(slog.LevelInfo, "ready"),
		logged(slog.LevelInfo, "recovered", "channel", "config"),
	} {
		if logs.count(0, want) != 1 {
			t.Fatalf("records: %+v", logs.records)
		}
	}
	// A rejected config is not a confirmation: stale again, the error logged once.
	srv.set([]byte(`{"rollouts": 1}`), `"bad"`)
	eventually(t, "stale again", func() bool { return logs.count(0, logged(slog.LevelWarn, "stale")) == 2 })
	if n := logs.count(0, logged(slog.LevelWarn, "error", "kind", "INVALID_CONFIG", "status", "200")); n != 1 {
		t.Fatalf("the rejected config logged %d times", n)
	}
	if got := c.GetVariable(bg, "delay", nil).Int64(-1); got != 30 {
		t.Fatalf("delay %d", got)
	}
}

// TestPoller304WithoutETagAndDroppedBatches: a 304 to a request that sent no
// ETag is a failure (logged once however often), the bootstrap config stays;
// a batch the collector refuses for good (400) is dropped, not retried, and
// reported as an *HTTPError.
func TestPoller304WithoutETagAndDroppedBatches(t *testing.T) {
	var posts atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNotModified)
	}))
	defer hs.Close()
	logs := &logCapture{}
	var rec recorder
	var notices noticeLog
	c := newClient(t, seedRollout(t), WithEventsURL(hs.URL+"/events"), WithFlushInterval(10*time.Millisecond),
		WithMaxBackoff(30*time.Millisecond), WithLogger(slog.New(logs)), WithOnError(rec.onError), WithOnNotice(notices.add))
	c.Track(bg, "m", 1, nil)
	if err := c.Start(bg, hs.URL, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReady(bg); err != nil { // the bootstrap counts
		t.Fatal(err)
	}
	eventually(t, "3 failed polls", func() bool { return notices.count(0, isError("HTTP")) >= 3 })
	if n := logs.count(0, logged(slog.LevelWarn, "error", "kind", "HTTP", "status", "304")); n != 1 {
		t.Fatalf("the 304 failure logged %d times", n)
	}
	if got := c.GetVariable(bg, "automatedMessageDelay", NewFacets().City(6).Service(302)).Int64(-1); got != 60 {
		t.Fatalf("bootstrap config lost: %d", got)
	}
	eventually(t, "the dropped batch", func() bool { return notices.count(0, func(n Notice) bool { return n.Kind == NoticeDropped }) == 1 })
	var dropped error
	status := 0
	rec.mu.Lock()
	for _, e := range rec.errs {
		if he := (*HTTPError)(nil); errors.As(e, &he) && he.Method == http.MethodPost {
			dropped, status = e, he.StatusCode
		}
	}
	rec.mu.Unlock()
	if dropped == nil || status != 400 || !strings.Contains(dropped.Error(), "dropped") {
		t.Fatalf("dropped batch reported as %v", dropped)
	}
	if logs.count(0, logged(slog.LevelError, "dropped", "status", "400")) != 1 {
		t.Fatal("the dropped batch was not logged at error level")
	}
	time.Sleep(50 * time.Millisecond)
	if s := c.TrackingStats(); s.InFlight != 0 || s.Retrying != 0 || posts.Load() < 1 {
		t.Fatalf("%+v after %d posts", s, posts.Load())
	}
}

// ---- one deadline, the body limit, the ETag rules (issues 13 and 14) ----

// waitNotice waits for a notice matching want, from index from of l.
func waitNotice(t *testing.T, l *noticeLog, from int, what string, want func(Notice) bool) Notice {
	t.Helper()
	var got Notice
	eventually(t, what, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, n := range l.all[min(from, len(l.all)):] {
			if want(n) {
				got = n
				return true
			}
		}
		return false
	})
	return got
}

var quiet = WithLogger(slog.New(slog.DiscardHandler))

func TestPollerTruncatedBodyChangesNoETag(t *testing.T) {
	cfgA, cfgB := twoConfigs(30, 45)
	_, cfgC := twoConfigs(50, 55)
	srv, url := newScriptServer(t)
	srv.serve(cfgA, `"a"`)
	var notices noticeLog
	c := newClient(t, nil, quiet, WithOnNotice(notices.add), WithMaxBackoff(20*time.Millisecond))
	if err := c.Start(bg, url, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	applied := func(etag string) func(Notice) bool {
		return func(n Notice) bool { return n.Kind == NoticeApplied && n.ETag == etag }
	}
	waitNotice(t, &notices, 0, "config a", applied(`"a"`))
	// Content-Length larger than what is sent, ETag "E": incomplete; the
	// next request still sends "a"; then the whole body with "E" is installed.
	from := notices.len()
	srv.set(cfgB, `"E"`, srv.rawAnswer(cfgB, `"E"`, len(cfgB), len(cfgB)/2, 0))
	n := waitNotice(t, &notices, from, "the incomplete body", isError("INCOMPLETE"))
	if !errors.Is(n.Err, io.ErrUnexpectedEOF) {
		t.Fatalf("want an incomplete body, got %v", n.Err)
	}
	waitNotice(t, &notices, from, "config E", applied(`"E"`))
	if got := c.GetVariable(bg, "delay", nil).Int64(-1); got != 45 || srv.after() != `"a"` {
		t.Fatalf("delay %d, If-None-Match after the cut body %q", got, srv.after())
	}
	// Close-delimited (no Content-Length) and cut short: net/http cannot
	// tell; the engine rejects the half as not JSON, and a body that is not
	// JSON keeps no ETag (docs/sync.md, section 4): the next poll sends the
	// ETag in force again and gets the whole config.
	from = notices.len()
	srv.set(cfgC, `"F"`, srv.rawAnswer(cfgC, `"F"`, -2, len(cfgC)/2, 0))
	n = waitNotice(t, &notices, from, "the half config rejected", isError("INVALID_CONFIG"))
	if !errors.Is(n.Err, ErrConfig) {
		t.Fatal(n.Err)
	}
	waitNotice(t, &notices, from, "config F", applied(`"F"`))
	if got := c.GetVariable(bg, "delay", nil).Int64(-1); got != 55 || srv.after() != `"E"` {
		t.Fatalf("delay %d, If-None-Match after the cut body %q", got, srv.after())
	}
}

func TestPollerBodyOverTheLimit(t *testing.T) {
	cfgA, cfgB := twoConfigs(30, 45)
	srv, url := newScriptServer(t)
	limit := int64(len(cfgB) - 1)
	var notices noticeLog
	c := newClient(t, cfgA, quiet, WithMaxConfigBytes(limit), WithOnNotice(notices.add), WithMaxBackoff(20*time.Millisecond))
	// Declared too large (refused from the Content-Length), then undeclared
	// (refused while reading).
	srv.set(cfgB, `"E"`, srv.rawAnswer(cfgB, `"E"`, -1, -1, 0), srv.rawAnswer(cfgB, `"E"`, -2, -1, 0))
	if err := c.Start(bg, url, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, "two failures", func() bool { return notices.count(0, isError("TOO_LARGE")) >= 2 })
	notices.mu.Lock()
	for i, n := range notices.all[1:3] { // after "ready" (the bootstrap)
		if !errors.Is(n.Err, ErrConfigTooLarge) || !strings.Contains(n.Err.Error(), fmt.Sprint(limit)) || n.Repeat != (i == 1) {
			t.Errorf("answer %d: want too large (a repeat the second time), got %+v", i, n)
		}
	}
	notices.mu.Unlock()
	if got := c.GetVariable(bg, "delay", nil).Int64(-1); got != 30 {
		t.Fatalf("delay %d", got)
	}
	if inm := srv.sent(); inm[0] != "" || inm[1] != "" {
		t.Fatalf("If-None-Match %q", inm)
	}
	// Exactly at the limit is fine.
	c2 := newClient(t, cfgA, quiet, WithMaxConfigBytes(int64(len(cfgB))))
	if err := c2.Start(bg, url, time.Hour); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the config at the limit", func() bool { return c2.GetVariable(bg, "delay", nil).Int64(-1) == 45 })
	if c.opts.maxConfigBytes != limit || newClient(t, nil).opts.maxConfigBytes != 16<<20 {
		t.Fatal("limits")
	}
}

func TestPollerRejectedThenValidWithANewETag(t *testing.T) {
	cfgA, cfgB := twoConfigs(30, 45)
	srv, url := newScriptServer(t)
	srv.serve([]byte(`{"schema": 1, "rollouts": [{"variable": 5}]}`), `"E"`)
	var rec recorder
	c := newClient(t, cfgA, quiet, WithOnError(rec.onError), WithOnUpdate(rec.onUpdate))
	if err := c.Start(bg, url, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the rejection", func() bool { return errors.Is(rec.lastError(), ErrConfig) })
	// The rejected ETag is sent (and answered 304) until the server has another.
	eventually(t, "the rejected ETag sent", func() bool { s := srv.sent(); return s[len(s)-1] == `"E"` })
	srv.serve(cfgB, `"F"`)
	eventually(t, "the valid config", func() bool { return c.GetVariable(bg, "delay", nil).Int64(-1) == 45 })
	if u, e := rec.counts(); u != 1 || e != 1 {
		t.Fatalf("%d updates, %d errors", u, e)
	}
}
