package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// TestRunnerContract runs the runner on the cases of a conformance vector
// file (as a contexts file) and checks every output line: exactly the keys
// of `turnout eval`, and the expected decision.
func TestRunnerContract(t *testing.T) {
	root := filepath.Join("..", "..", "..", "..")
	var file struct {
		Config json.RawMessage `json:"config"`
		NowMs  int64           `json:"nowMs"`
		Cases  []struct {
			Variable string          `json:"variable"`
			Facets   json.RawMessage `json:"facets"`
			NowMs    *int64          `json:"nowMs"`
			Expected map[string]any  `json:"expected"`
		} `json:"cases"`
	}
	b, err := os.ReadFile(filepath.Join(root, "tests", "conformance", "experiments.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.json")
	contexts := filepath.Join(dir, "contexts.jsonl")
	out := filepath.Join(dir, "out.jsonl")
	timing := filepath.Join(dir, "timing.json")
	os.WriteFile(cfg, file.Config, 0o644)
	var in bytes.Buffer
	var want []map[string]any
	for _, c := range file.Cases {
		if c.NowMs != nil {
			continue // the runner has one clock
		}
		l, _ := json.Marshal(map[string]any{"variable": c.Variable, "facets": c.Facets})
		in.Write(append(l, '\n'))
		c.Expected["variable"] = c.Variable
		want = append(want, c.Expected)
	}
	os.WriteFile(contexts, in.Bytes(), 0o644)
	flag.CommandLine = flag.NewFlagSet("turnout-runner", flag.ContinueOnError)
	os.Args = []string{"turnout-runner", "--config", cfg, "--contexts", contexts, "--now-ms",
		strconv.FormatInt(file.NowMs, 10), "--out", out, "--timing", timing}
	if err := run(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	i := 0
	for ; sc.Scan(); i++ {
		var got map[string]any
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if i >= len(want) || !reflect.DeepEqual(got, want[i]) {
			t.Fatalf("line %d: got %s, want %v", i, sc.Bytes(), want[i])
		}
	}
	if i != len(want) || i < 100 {
		t.Fatalf("%d lines for %d contexts", i, len(want))
	}
	var tm struct {
		Platform  string  `json:"platform"`
		Decisions int     `json:"decisions"`
		Median    float64 `json:"nsPerDecisionMedian"`
	}
	b, _ = os.ReadFile(timing)
	if err := json.Unmarshal(b, &tm); err != nil || tm.Platform != "go" || tm.Decisions != len(want) || tm.Median <= 0 {
		t.Fatalf("timing %s", b)
	}
}
