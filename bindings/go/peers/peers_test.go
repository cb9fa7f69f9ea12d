// Package peers runs the shared benchmark scenario (tests/bench/README.md) on
// turnout and on pure-Go peers in one process, and prints the ratios.
//
// A separate module, so that the turnout module itself has no dependencies.
// Peers: the GrowthBook Go SDK (github.com/growthbook/growthbook-golang),
// evaluated locally from a features payload, and the LaunchDarkly Go server
// SDK (github.com/launchdarkly/go-server-sdk/v7), evaluating locally from a
// flag file (ldfiledata, no network, analytics events off). go-feature-flag
// and the Unleash Go client are not served by the module proxy on this
// machine (403), so they are not compared.
//
//	cd bindings/go/peers && go test -run Ratios -v          # the table with ratios
//	cd bindings/go/peers && go test -run '^$' -bench . -benchmem
package peers

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	growthbook "github.com/growthbook/growthbook-golang"
	"github.com/launchdarkly/go-sdk-common/v3/ldcontext"
	ld "github.com/launchdarkly/go-server-sdk/v7"
	"github.com/launchdarkly/go-server-sdk/v7/ldcomponents"
	"github.com/launchdarkly/go-server-sdk/v7/ldfiledata"
	turnout "github.com/turnout-dev/turnout-go"
)

type unit struct {
	City int64 `json:"city"`
	Svc  int64 `json:"svc"`
	Pax  int64 `json:"pax"`
}

type scenario struct {
	Config      string `json:"config"`
	Variable    string `json:"variable"`
	ExpectedSum int64  `json:"expectedSum"`
	Contexts    []unit `json:"contexts"`
}

func load(tb testing.TB) (scenario, []byte) {
	tb.Helper()
	root := filepath.Join("..", "..", "..")
	b, err := os.ReadFile(filepath.Join(root, "tests", "bench", "scenario.json"))
	if err != nil {
		tb.Fatal(err)
	}
	var s scenario
	if err := json.Unmarshal(b, &s); err != nil {
		tb.Fatal(err)
	}
	cfg, err := os.ReadFile(filepath.Join(root, s.Config))
	if err != nil {
		tb.Fatal(err)
	}
	return s, cfg
}

// The seed rollout as GrowthBook features: city 6 and svc in [302, 11] -> 60;
// city 10 and 25% of passengers (hashed on pax) -> 90; else 30.
const growthbookFeatures = `{"automatedMessageDelay": {"defaultValue": 30, "rules": [
	{"id": "sg", "condition": {"city": 6, "svc": {"$in": [302, 11]}}, "force": 60},
	{"id": "jkt", "condition": {"city": 10}, "force": 90, "coverage": 0.25, "hashAttribute": "pax"}]}}`

func attrs(u unit) growthbook.Attributes {
	return growthbook.Attributes{"city": float64(u.City), "svc": float64(u.Svc), "pax": float64(u.Pax)}
}

func gbInt(r *growthbook.FeatureResult) int64 {
	if f, ok := r.Value.(float64); ok {
		return int64(f)
	}
	return 0
}

// The seed rollout as a LaunchDarkly flag: variations 30, 60, 90; rule "sg"
// (city 6 and svc in [302, 11]) -> 60; rule "jkt" (city 10) -> a 25/75
// rollout bucketed by pax between 90 and 30; fallthrough 30.
const launchdarklyFlags = `{"flags": {"automatedMessageDelay": {
	"key": "automatedMessageDelay", "version": 1, "on": true, "salt": "turnout-bench",
	"variations": [30, 60, 90], "offVariation": 0, "fallthrough": {"variation": 0},
	"rules": [
		{"id": "sg", "clauses": [
			{"attribute": "city", "op": "in", "values": [6]},
			{"attribute": "svc", "op": "in", "values": [302, 11]}], "variation": 1},
		{"id": "jkt", "clauses": [{"attribute": "city", "op": "in", "values": [10]}],
			"rollout": {"bucketBy": "pax", "variations": [
				{"variation": 2, "weight": 25000}, {"variation": 0, "weight": 75000}]}}]}}}`

// ldClient starts a LaunchDarkly client that reads launchdarklyFlags from a
// temporary file and sends nothing (no events, no diagnostics).
func ldClient(tb testing.TB) (*ld.LDClient, scenario) {
	s, _ := load(tb)
	path := filepath.Join(tb.TempDir(), "flags.json")
	if err := os.WriteFile(path, []byte(launchdarklyFlags), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg := ld.Config{
		DataSource:       ldfiledata.DataSource().FilePaths(path),
		Events:           ldcomponents.NoEvents(),
		DiagnosticOptOut: true,
		Logging:          ldcomponents.NoLogging(),
	}
	c, err := ld.MakeCustomClient("offline-bench", cfg, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	return c, s
}

func ldUnit(u unit) ldcontext.Context {
	return ldcontext.NewBuilder(strconv.FormatInt(u.Pax, 10)).
		SetInt("city", int(u.City)).SetInt("svc", int(u.Svc)).SetInt("pax", int(u.Pax)).Build()
}

// decider is one way of taking the scenario's decision for unit i.
type decider struct {
	name  string
	path  string // "prepared" or "one-shot": what the ratio compares with
	setup func(tb testing.TB) (decide func(i int) int64, drain func(), done func())
}

func deciders() []decider {
	ctx := context.Background()
	turnoutClient := func(tb testing.TB, opts ...turnout.Option) (*turnout.Client, scenario) {
		s, cfg := load(tb)
		c, err := turnout.New(cfg, opts...)
		if err != nil {
			tb.Fatal(err)
		}
		return c, s
	}
	drainOf := func(c *turnout.Client) func() {
		return func() {
			for b, _ := c.TakeBatch(10000); b != nil; b, _ = c.TakeBatch(10000) {
				c.Ack(b.Seq)
			}
		}
	}
	gbClient := func(tb testing.TB) (*growthbook.Client, scenario) {
		s, _ := load(tb)
		c, err := growthbook.NewClient(ctx, growthbook.WithJsonFeatures(growthbookFeatures))
		if err != nil {
			tb.Fatal(err)
		}
		return c, s
	}
	turnoutPrepared := func(opts ...turnout.Option) func(testing.TB) (func(int) int64, func(), func()) {
		return func(tb testing.TB) (func(int) int64, func(), func()) {
			c, s := turnoutClient(tb, opts...)
			v, _ := c.Variable(s.Variable)
			units := make([]*turnout.Context, len(s.Contexts))
			for i, u := range s.Contexts {
				units[i], _ = c.Context(turnout.NewFacets().City(u.City).Service(u.Svc).Passenger(u.Pax))
			}
			return func(i int) int64 { return units[i].Int64(v, 0) }, drainOf(c), func() { c.Close() }
		}
	}
	turnoutOneShot := func(opts ...turnout.Option) func(testing.TB) (func(int) int64, func(), func()) {
		return func(tb testing.TB) (func(int) int64, func(), func()) {
			c, s := turnoutClient(tb, opts...)
			return func(i int) int64 {
				u := s.Contexts[i]
				return c.GetVariable(ctx, s.Variable, turnout.NewFacets().City(u.City).Service(u.Svc).Passenger(u.Pax)).Int64(0)
			}, drainOf(c), func() { c.Close() }
		}
	}
	return []decider{
		{"turnout/prepared", "prepared", turnoutPrepared()},
		{"turnout/one-shot", "one-shot", turnoutOneShot()},
		{"turnout/prepared, no events", "prepared", turnoutPrepared(turnout.WithDecisionEvents(turnout.DecisionEventsOff))},
		{"turnout/one-shot, no events", "one-shot", turnoutOneShot(turnout.WithDecisionEvents(turnout.DecisionEventsOff))},
		{"growthbook/prepared", "prepared", func(tb testing.TB) (func(int) int64, func(), func()) {
			c, s := gbClient(tb)
			users := make([]*growthbook.Client, len(s.Contexts))
			for i, u := range s.Contexts {
				users[i], _ = c.WithAttributes(attrs(u))
			}
			return func(i int) int64 { return gbInt(users[i].EvalFeature(ctx, "automatedMessageDelay")) },
				func() {}, func() { c.Close() }
		}},
		{"growthbook/one-shot", "one-shot", func(tb testing.TB) (func(int) int64, func(), func()) {
			c, s := gbClient(tb)
			return func(i int) int64 {
				user, _ := c.WithAttributes(attrs(s.Contexts[i]))
				return gbInt(user.EvalFeature(ctx, "automatedMessageDelay"))
			}, func() {}, func() { c.Close() }
		}},
		{"launchdarkly/prepared", "prepared", func(tb testing.TB) (func(int) int64, func(), func()) {
			c, s := ldClient(tb)
			units := make([]ldcontext.Context, len(s.Contexts))
			for i, u := range s.Contexts {
				units[i] = ldUnit(u)
			}
			return func(i int) int64 {
				v, _ := c.IntVariation("automatedMessageDelay", units[i], 0)
				return int64(v)
			}, func() {}, func() { c.Close() }
		}},
		{"launchdarkly/one-shot", "one-shot", func(tb testing.TB) (func(int) int64, func(), func()) {
			c, s := ldClient(tb)
			return func(i int) int64 {
				v, _ := c.IntVariation("automatedMessageDelay", ldUnit(s.Contexts[i]), 0)
				return int64(v)
			}, func() {}, func() { c.Close() }
		}},
	}
}

// check verifies one pass: turnout must hit expectedSum exactly; the peers
// bucket with their own hashes, so only the deterministic rule (167 x 60) and
// a plausible 25% in city 10 are checked.
func check(tb testing.TB, name string, decide func(int) int64) {
	s, _ := load(tb)
	var sum int64
	counts := map[int64]int{}
	for i := range s.Contexts {
		v := decide(i)
		sum += v
		counts[v]++
	}
	if name[:7] == "turnout" {
		if sum != s.ExpectedSum {
			tb.Fatalf("%s: one pass sums to %d, want %d", name, sum, s.ExpectedSum)
		}
		return
	}
	if counts[60] != 167 || counts[90] < 80 || counts[90] > 170 || counts[60]+counts[90]+counts[30] != len(s.Contexts) {
		tb.Fatalf("%s: answers %v do not follow the scenario", name, counts)
	}
}

func bench(d decider) func(b *testing.B) {
	return func(b *testing.B) {
		decide, drain, done := d.setup(b)
		defer done()
		check(b, d.name, decide)
		drain()
		n := 1000
		b.ReportAllocs()
		b.ResetTimer()
		var sink int64
		for i := 0; i < b.N; i++ {
			k := i % n
			if k == 0 && i > 0 {
				b.StopTimer()
				drain()
				b.StartTimer()
			}
			sink += decide(k)
		}
		if sink == -1 {
			fmt.Println(sink)
		}
	}
}

func BenchmarkScenario(b *testing.B) {
	for _, d := range deciders() {
		b.Run(d.name, bench(d))
	}
}

// TestRatios measures every decider on the scenario and prints ns/op,
// allocations and the ratio to turnout's default client on the same path.
// turnout records a decision event per decision by default (GrowthBook here
// has no tracking callback), so the "no events" rows show evaluation alone.
func TestRatios(t *testing.T) {
	if testing.Short() {
		t.Skip("a benchmark")
	}
	ns := map[string]float64{}
	fmt.Printf("%-30s %12s %10s %10s\n", "scenario", "ns/decision", "allocs/op", "vs turnout")
	for _, d := range deciders() {
		r := testing.Benchmark(bench(d))
		if r.N == 0 {
			t.Fatalf("%s did not run", d.name)
		}
		ns[d.name] = float64(r.T.Nanoseconds()) / float64(r.N)
		ratio := ns[d.name] / ns["turnout/"+d.path]
		fmt.Printf("%-30s %12.1f %10d %9.2fx\n", d.name, ns[d.name], r.AllocsPerOp(), ratio)
	}
}
