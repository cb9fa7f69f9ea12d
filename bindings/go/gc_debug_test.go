//go:build debug

package turnout

// Run with `go test -race -tags debug -run GC ./...` (cargo xtask go does).
// Handles are used only through temporaries while other goroutines force
// garbage collection, so a cleanup that ran while a handle was still in a C
// call (a missing runtime.KeepAlive) is reported by the debug checks of
// debug_on.go, as is a double free (Close followed by the cleanup).

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGCNeverFreesAHandleInUse(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(1))
	cfg := seedRollout(t)
	before := debugSnapshot()

	var stop atomic.Bool
	var gcWG sync.WaitGroup
	gcWG.Add(1)
	go func() {
		defer gcWG.Done()
		for !stop.Load() {
			runtime.GC()
			time.Sleep(50 * time.Microsecond)
		}
	}()

	client := newClient(t, cfg)
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 400; i++ {
				f := NewFacets().City(6).Service(302).Passenger(int64(w*1000 + i))
				// Temporaries only: nothing but the call itself keeps them alive.
				if got := mustContext(t, client, f).Int64(mustVariable(t, client, "automatedMessageDelay"), 0); got != 60 {
					wrong.Add(1)
				}
				if got := mustContext(t, client, f).String(mustVariable(t, client, "automatedMessageDelay"), "s"); got != "s" {
					wrong.Add(1)
				}
				if _, err := mustContext(t, client, f).Decision(mustVariable(t, client, "automatedMessageDelay")); err != nil {
					wrong.Add(1)
				}
				if i%20 == 0 {
					// A client that is only a temporary, too.
					c, err := New(cfg)
					if err != nil {
						t.Error(err)
						return
					}
					if got := c.GetVariable(bg, "automatedMessageDelay", f).Int64(0); got != 60 {
						wrong.Add(1)
					}
				}
				if i%50 == 0 {
					// Closed explicitly: the cleanup must not free it again.
					x := mustContext(t, client, f)
					x.Close()
				}
			}
		}(w)
	}
	wg.Wait()
	stop.Store(true)
	gcWG.Wait()
	after := settled(t, before)
	if wrong.Load() != 0 {
		t.Fatalf("%d wrong answers", wrong.Load())
	}
	for _, kind := range []string{"client", "context", "variable"} {
		if after.ByCleanup[kind] <= before.ByCleanup[kind] {
			t.Errorf("no %s was freed by its cleanup (%d before, %d after)", kind, before.ByCleanup[kind], after.ByCleanup[kind])
		}
	}
	if after.ByClose["context"] <= before.ByClose["context"] {
		t.Error("no context was freed by Close")
	}
	t.Logf("freed by cleanup: %v, by Close: %v, live: %d", after.ByCleanup, after.ByClose, after.Live)
}

// settled lets the cleanups run, then fails on any new violation of the debug checks.
func settled(t *testing.T, before debugReport) debugReport {
	t.Helper()
	for i := 0; i < 5; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	after := debugSnapshot()
	if len(after.Violations) > len(before.Violations) {
		t.Fatalf("debug checks: %v", after.Violations[len(before.Violations):])
	}
	return after
}

func mustContext(t *testing.T, c *Client, f *Facets) *Context {
	x, err := c.Context(f)
	if err != nil {
		t.Error(err)
	}
	return x
}

func mustVariable(t *testing.T, c *Client, name string) *Variable {
	v, err := c.Variable(name)
	if err != nil {
		t.Error(err)
	}
	return v
}

// TestGCNeverFreesASyncInUse drives the sync handle (Flush, the poller)
// under forced garbage collection: no use after free, no double free; a sync
// dropped without Close is freed by its cleanup.
func TestGCNeverFreesASyncInUse(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(1))
	before := debugSnapshot()
	var stop atomic.Bool
	go func() {
		for !stop.Load() {
			runtime.GC()
			time.Sleep(50 * time.Microsecond)
		}
	}()
	defer stop.Store(true)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Write(seedRollout(t))
		}
	}))
	defer hs.Close()
	for i := 0; i < 20; i++ {
		c := newClient(t, nil, WithEventsURL(hs.URL), WithFlushInterval(time.Millisecond), quiet)
		c.Track(bg, "m", 1, nil)
		if err := c.Flush(bg); err != nil {
			t.Fatal(err)
		}
		if err := c.Start(bg, hs.URL, time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := c.WaitReady(bg); err != nil {
			t.Fatal(err)
		}
		c.Track(bg, "m", 1, nil)
		c.Close()
		c2 := newClient(t, nil, WithEventsURL(hs.URL))
		if _, err := c2.newSync("", 0); err != nil { // dropped: its cleanup frees it
			t.Fatal(err)
		}
	}
	after := settled(t, before)
	if after.ByClose["sync"] < before.ByClose["sync"]+40 || after.ByCleanup["sync"] <= before.ByCleanup["sync"] {
		t.Fatalf("syncs freed by Close: %d, by cleanup: %d", after.ByClose["sync"]-before.ByClose["sync"],
			after.ByCleanup["sync"]-before.ByCleanup["sync"])
	}
}
