// Command turnout-runner is the Go runner of the cross-language demo
// (tests/bench/README.md, "The runner contract"):
//
//	turnout-runner --config CONFIG.json --contexts CONTEXTS.jsonl --now-ms MS \
//	    --out DECISIONS.jsonl --timing TIMING.json
//
// For every context line it builds a prepared Context, takes the full
// decision with a cached Variable handle and writes the line `turnout eval`
// would write; then it times the prepared path over all contexts for about a
// second and writes the median ns per decision.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	turnout "github.com/turnout-dev/turnout-go"
)

type input struct {
	Variable string          `json:"variable"`
	Facets   json.RawMessage `json:"facets"`
}

// line has exactly the keys of `turnout eval`, in its order.
type line struct {
	Variable   string          `json:"variable"`
	Value      json.RawMessage `json:"value"`
	Source     string          `json:"source"`
	Experiment *string         `json:"experiment"`
	Rule       *int            `json:"rule"`
	Choice     *int            `json:"choice"`
	Reason     string          `json:"reason"`
	ErrorCode  *string         `json:"errorCode"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// prepared is one context line ready for the timing loop.
type prepared struct {
	ctx     *turnout.Context
	v       *turnout.Variable
	integer bool // the typed getter: Int64 for integer values, else String
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "turnout-runner:", err)
		os.Exit(1)
	}
}

func run() error {
	configPath := flag.String("config", "", "config bundle (JSON)")
	contextsPath := flag.String("contexts", "", "JSON Lines of {\"variable\", \"facets\"}")
	nowMs := flag.Int64("now-ms", 0, "fixed clock, unix ms")
	outPath := flag.String("out", "", "decisions, JSON Lines")
	timingPath := flag.String("timing", "", "timing JSON")
	flag.Parse()
	if *configPath == "" || *contextsPath == "" || *outPath == "" || *timingPath == "" {
		flag.Usage()
		return errors.New("--config, --contexts, --out and --timing are required")
	}
	cfg, err := os.ReadFile(*configPath)
	if err != nil {
		return err
	}
	client, err := turnout.New(cfg, turnout.WithFixedTime(time.UnixMilli(*nowMs)))
	if err != nil {
		return err
	}
	defer client.Close()

	in, err := os.Open(*contextsPath)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(*outPath)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(out)
	vars := map[string]*turnout.Variable{}
	var units []prepared
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for n := 1; sc.Scan(); n++ {
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		var c input
		if err := json.Unmarshal(text, &c); err != nil {
			return fmt.Errorf("%s:%d: %w", *contextsPath, n, err)
		}
		v := vars[c.Variable]
		if v == nil {
			if v, err = client.Variable(c.Variable); err != nil {
				return err
			}
			vars[c.Variable] = v
		}
		ctx, err := client.Context(turnout.FacetsFromJSON(c.Facets))
		if err != nil {
			return fmt.Errorf("%s:%d: %w", *contextsPath, n, err)
		}
		d, err := ctx.Decision(v)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", *contextsPath, n, err)
		}
		value := d.Value
		if value == nil {
			value = json.RawMessage("null")
		}
		l := line{d.Variable, value, string(d.Source), optional(d.Experiment), d.Rule, d.Choice, string(d.Reason),
			optional(string(d.ErrorCode))}
		b, _ := json.Marshal(l)
		w.Write(append(b, '\n'))
		var i int64
		units = append(units, prepared{ctx: ctx, v: v, integer: json.Unmarshal(value, &i) == nil && d.Value != nil})
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	median := timePrepared(client, units)
	timing, _ := json.Marshal(map[string]any{"platform": "go", "decisions": len(units), "nsPerDecisionMedian": median})
	return os.WriteFile(*timingPath, append(timing, '\n'), 0o644)
}

// timePrepared repeats passes of the typed getter over all contexts for about
// a second and returns the median ns per decision over the passes (the event
// queue is drained between passes, outside the timing).
func timePrepared(client *turnout.Client, units []prepared) float64 {
	if len(units) == 0 {
		return 0
	}
	var perPass []float64
	var sink int64
	start := time.Now()
	for len(perPass) < 3 || time.Since(start) < time.Second {
		t0 := time.Now()
		for _, u := range units {
			if u.integer {
				sink += u.ctx.Int64(u.v, 0)
			} else {
				sink += int64(len(u.ctx.String(u.v, "")))
			}
		}
		perPass = append(perPass, float64(time.Since(t0).Nanoseconds())/float64(len(units)))
		for b, _ := client.TakeBatch(100000); b != nil; b, _ = client.TakeBatch(100000) {
			client.Ack(b.Seq)
		}
	}
	if sink == -1 {
		fmt.Fprintln(os.Stderr, sink)
	}
	sort.Float64s(perPass)
	return perPass[len(perPass)/2]
}
