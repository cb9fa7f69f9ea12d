package turnout

// The shared benchmark scenario (tests/bench/README.md): the seed rollout
// over 1,000 pre-generated contexts, every op one decision, in order over the
// contexts; one pass must sum to expectedSum. The queue is drained (take +
// ack) between passes outside the timing. Peers are compared in
// bindings/go/peers (a separate module, so this one has no dependencies).
//
//	go test -run '^$' -bench . -benchmem

import (
	"fmt"
	"os"
	"testing"
)

type scenario struct {
	Config      string  `json:"config"`
	Variable    string  `json:"variable"`
	Default     int64   `json:"default"`
	ExpectedSum int64   `json:"expectedSum"`
	Contexts    []facet `json:"contexts"`
}

type facet struct {
	City int64 `json:"city"`
	Svc  int64 `json:"svc"`
	Pax  int64 `json:"pax"`
}

func loadScenario(tb testing.TB) (scenario, *Client) {
	tb.Helper()
	var s scenario
	readJSON(tb, repoPath("tests", "bench", "scenario.json"), &s)
	cfg, err := os.ReadFile(repoPath(s.Config))
	if err != nil {
		tb.Fatal(err)
	}
	c, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return s, c
}

func (f facet) facets() *Facets { return NewFacets().City(f.City).Service(f.Svc).Passenger(f.Pax) }

func drain(c *Client) {
	for {
		b, _ := c.TakeBatch(10000)
		if b == nil {
			return
		}
		c.Ack(b.Seq)
	}
}

// checkSum verifies one pass before anything is timed.
func checkSum(b *testing.B, s scenario, decide func(i int) int64) {
	var sum int64
	for i := range s.Contexts {
		sum += decide(i)
	}
	if sum != s.ExpectedSum {
		b.Fatalf("one pass sums to %d, want %d", sum, s.ExpectedSum)
	}
}

// run times decide over b.N decisions, draining the queue between passes.
func run(b *testing.B, c *Client, n int, decide func(i int) int64) {
	b.ReportAllocs()
	b.ResetTimer()
	var sink int64
	for i := 0; i < b.N; i++ {
		k := i % n
		if k == 0 && i > 0 {
			b.StopTimer()
			drain(c)
			b.StartTimer()
		}
		sink += decide(k)
	}
	b.StopTimer()
	if sink == -1 {
		fmt.Println(sink)
	}
}

// BenchmarkPrepared: a Context per unit and a Variable built once, then
// ctx.Int64(v, 0). Target: <= 250 ns/op, 0 allocs/op.
func BenchmarkPrepared(b *testing.B) {
	s, c := loadScenario(b)
	v, err := c.Variable(s.Variable)
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	units := make([]*Context, len(s.Contexts))
	for i, f := range s.Contexts {
		if units[i], err = c.Context(f.facets()); err != nil {
			b.Fatal(err)
		}
		defer units[i].Close()
	}
	decide := func(i int) int64 { return units[i].Int64(v, s.Default) }
	checkSum(b, s, decide)
	drain(c)
	run(b, c, len(units), decide)
}

// BenchmarkOneShotBuilder: GetVariable with the facets builder run on every
// call. Target: <= 1 us/op.
func BenchmarkOneShotBuilder(b *testing.B) {
	s, c := loadScenario(b)
	decide := func(i int) int64 {
		f := s.Contexts[i]
		return c.GetVariable(bg, s.Variable, NewFacets().City(f.City).Service(f.Svc).Passenger(f.Pax)).Int64(s.Default)
	}
	checkSum(b, s, decide)
	drain(c)
	run(b, c, len(s.Contexts), decide)
}

// BenchmarkOneShotPrebuiltFacets: GetVariable with facets built once per unit
// (the cost of the call alone).
func BenchmarkOneShotPrebuiltFacets(b *testing.B) {
	s, c := loadScenario(b)
	facets := make([]*Facets, len(s.Contexts))
	for i, f := range s.Contexts {
		facets[i] = f.facets()
	}
	decide := func(i int) int64 { return c.GetVariable(bg, s.Variable, facets[i]).Int64(s.Default) }
	checkSum(b, s, decide)
	drain(c)
	run(b, c, len(s.Contexts), decide)
}

// BenchmarkOneShotJSONFacets: GetVariable with facets as JSON text built on
// every call (what the binary builder saves).
func BenchmarkOneShotJSONFacets(b *testing.B) {
	s, c := loadScenario(b)
	decide := func(i int) int64 {
		f := s.Contexts[i]
		js := fmt.Appendf(nil, `{"city":%d,"svc":%d,"pax":%d}`, f.City, f.Svc, f.Pax)
		return c.GetVariable(bg, s.Variable, FacetsFromJSON(js)).Int64(s.Default)
	}
	checkSum(b, s, decide)
	drain(c)
	run(b, c, len(s.Contexts), decide)
}

// BenchmarkContextCreate: building a prepared Context from the builder.
func BenchmarkContextCreate(b *testing.B) {
	s, c := loadScenario(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		x, err := c.Context(s.Contexts[i%len(s.Contexts)].facets())
		if err != nil {
			b.Fatal(err)
		}
		x.Close()
	}
}

// TestPreparedPathAllocatesNothing checks the 0-allocation claim on the Go side.
func TestPreparedPathAllocatesNothing(t *testing.T) {
	s, c := loadScenario(t)
	v, _ := c.Variable(s.Variable)
	defer v.Close()
	x, _ := c.Context(s.Contexts[0].facets())
	defer x.Close()
	x.Int64(v, 0)
	if n := testing.AllocsPerRun(1000, func() { x.Int64(v, 0); x.Float64(v, 0); x.Bool(v, false) }); n != 0 {
		t.Fatalf("prepared path: %v allocations per run", n)
	}
}
