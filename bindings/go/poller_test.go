package turnout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
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
	// The rejected config's ETag is remembered: it is not fetched again.
	eventually(t, "304 for the broken config", func() bool {
		_, nm := srv.stats()
		return nm >= 10
	})
	if _, e := rec.counts(); e != 1 {
		t.Fatalf("the same broken config was reported %d times", e)
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
