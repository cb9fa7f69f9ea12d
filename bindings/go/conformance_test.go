package turnout

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// repoPath is a path relative to the repository root (tests run in bindings/go).
func repoPath(parts ...string) string {
	return filepath.Join(append([]string{"..", ".."}, parts...)...)
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

type vectorIndex struct {
	Files []struct {
		Path  string `json:"path"`
		Kind  string `json:"kind"`
		Cases int    `json:"cases"`
	} `json:"files"`
	SpecVersion int `json:"specVersion"`
}

type decisionFile struct {
	Config json.RawMessage `json:"config"`
	NowMs  int64           `json:"nowMs"`
	Cases  []struct {
		Variable string                     `json:"variable"`
		Facets   map[string]json.RawMessage `json:"facets"`
		NowMs    *int64                     `json:"nowMs"`
		Expected map[string]any             `json:"expected"`
	} `json:"cases"`
}

// builderFacets turns a vector's facets into builder calls (the typical Go
// path), following the vector encoding: integers stay int64 ({"$int64"} for
// those beyond 2^53), other numbers are float64, null is absent, and an
// integer beyond int64 is its decimal string (as the core reads JSON).
func builderFacets(t testing.TB, m map[string]json.RawMessage) *Facets {
	t.Helper()
	f := NewFacets()
	for k, raw := range m {
		var v any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if err := d.Decode(&v); err != nil {
			t.Fatal(err)
		}
		switch x := v.(type) {
		case nil:
		case string:
			f.String(k, x)
		case bool:
			f.Bool(k, x)
		case json.Number:
			if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
				f.Int64(k, i)
			} else if !strings.ContainsAny(string(x), ".eE") {
				f.String(k, string(x))
			} else {
				fl, err := x.Float64()
				if err != nil {
					t.Fatal(err)
				}
				f.Float64(k, fl)
			}
		case map[string]any:
			s, ok := x["$int64"].(string)
			i, err := strconv.ParseInt(s, 10, 64)
			if !ok || err != nil || len(x) != 1 {
				t.Fatalf("facet %s: unexpected object %s", k, raw)
			}
			f.Int64(k, i)
		default:
			t.Fatalf("facet %s: unexpected %s", k, raw)
		}
	}
	return f
}

// normal decodes JSON into comparable values (numbers by value: 1.0 == 1).
func normal(t testing.TB, raw []byte) any {
	t.Helper()
	if len(raw) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return v
}

func decisionMap(t testing.TB, d Decision) map[string]any {
	t.Helper()
	m := map[string]any{
		"value": normal(t, d.Value), "source": string(d.Source), "experiment": nil, "rule": nil,
		"choice": nil, "reason": string(d.Reason), "errorCode": nil,
	}
	if d.Experiment != "" {
		m["experiment"] = d.Experiment
	}
	if d.Rule != nil {
		m["rule"] = float64(*d.Rule)
	}
	if d.Choice != nil {
		m["choice"] = float64(*d.Choice)
	}
	if d.ErrorCode != "" {
		m["errorCode"] = string(d.ErrorCode)
	}
	return m
}

func expectedMap(t testing.TB, e map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return normal(t, b).(map[string]any)
}

type fileResult struct {
	Passed int `json:"passed"`
	Failed int `json:"failed"`
}

// TestConformance runs every vector file listed in tests/conformance/index.json
// through the one-shot path (facets as JSON, read by the library) and the
// prepared path (facets from the builder), plus the typed getters, the
// batch vectors through EncodeBatchJSON / DecodeBatchJSON, and the sync
// scripts through the poller's sync (runSyncFile). It writes
// target/conformance/go.json.
func TestConformance(t *testing.T) {
	var index vectorIndex
	readJSON(t, repoPath("tests", "conformance", "index.json"), &index)
	if index.SpecVersion != SpecVersion() {
		t.Fatalf("vectors are spec %d, library is spec %d", index.SpecVersion, SpecVersion())
	}
	if len(index.Files) == 0 {
		t.Fatal("no vector files")
	}
	results := map[string]fileResult{}
	total := 0
	for _, entry := range index.Files {
		path := repoPath("tests", "conformance", entry.Path)
		var r fileResult
		switch entry.Kind {
		case "decisions":
			r = runDecisionFile(t, path, entry.Cases)
		case "batches":
			r = runBatchFile(t, path, entry.Cases)
		case "sync":
			r = runSyncFile(t, path, entry.Cases)
		default:
			t.Errorf("%s: unknown kind %q", entry.Path, entry.Kind)
			continue
		}
		results[entry.Path] = r
		total += r.Passed
		t.Logf("%s: %d passed, %d failed", entry.Path, r.Passed, r.Failed)
	}
	if total < 2000 {
		t.Errorf("only %d cases ran", total)
	}
	out, _ := json.MarshalIndent(map[string]any{"platform": "go", "files": results}, "", "  ")
	if err := os.MkdirAll(repoPath("target", "conformance"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(repoPath("target", "conformance", "go.json"), append(out, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func runDecisionFile(t *testing.T, path string, want int) fileResult {
	var file decisionFile
	readJSON(t, path, &file)
	if len(file.Cases) != want {
		t.Errorf("%s: %d cases, index says %d", path, len(file.Cases), want)
	}
	client, err := New(file.Config, WithFixedTime(time.UnixMilli(file.NowMs)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer client.Close()
	vars := map[string]*Variable{}
	defer func() {
		for _, v := range vars {
			v.Close()
		}
	}()
	ctx := context.Background()
	var r fileResult
	for i, c := range file.Cases {
		now := file.NowMs
		if c.NowMs != nil {
			now = *c.NowMs
		}
		if err := client.SetTime(time.UnixMilli(now)); err != nil {
			t.Fatal(err)
		}
		facetsJSON, _ := json.Marshal(c.Facets)
		want := expectedMap(t, c.Expected)
		fail := func(format string, args ...any) {
			r.Failed++
			if r.Failed <= 10 {
				t.Errorf("%s#%d %s %s: %s", filepath.Base(path), i, c.Variable, facetsJSON, fmt.Sprintf(format, args...))
			}
		}
		// One-shot, facets as JSON.
		oneShot, err := client.GetVariable(ctx, c.Variable, FacetsFromJSON(facetsJSON)).Decision()
		if err != nil {
			fail("one-shot: %v", err)
			continue
		}
		if got := decisionMap(t, oneShot); !reflect.DeepEqual(got, want) {
			fail("one-shot: expected %v, got %v", want, got)
			continue
		}
		// Prepared, facets from the builder.
		v := vars[c.Variable]
		if v == nil {
			if v, err = client.Variable(c.Variable); err != nil {
				t.Fatal(err)
			}
			vars[c.Variable] = v
		}
		unit, err := client.Context(builderFacets(t, c.Facets))
		if err != nil {
			fail("context: %v", err)
			continue
		}
		prepared, err := unit.Decision(v)
		if err != nil {
			fail("prepared: %v", err)
		} else if got := decisionMap(t, prepared); !reflect.DeepEqual(got, want) {
			fail("prepared: expected %v, got %v", want, got)
		} else if msg := typedMismatch(client, unit, v, c.Variable, builderFacets(t, c.Facets), want["value"]); msg != "" {
			fail("typed getters: %s", msg)
		} else {
			r.Passed++
		}
		unit.Close()
	}
	return r
}

// typedMismatch checks the typed getters of both paths against the expected value.
func typedMismatch(client *Client, unit *Context, v *Variable, name string, f *Facets, want any) string {
	one := client.GetVariable(context.Background(), name, f)
	switch w := want.(type) {
	case float64:
		if w == float64(int64(w)) {
			if a, b := one.Int64(-424242), unit.Int64(v, -424242); a != int64(w) || b != int64(w) {
				return fmt.Sprintf("Int64: want %v, got %d / %d", w, a, b)
			}
		}
		if a, b := one.Float64(-4.5), unit.Float64(v, -4.5); a != w || b != w {
			return fmt.Sprintf("Float64: want %v, got %v / %v", w, a, b)
		}
	case string:
		if a, b := one.String("\x00none"), unit.String(v, "\x00none"); a != w || b != w {
			return fmt.Sprintf("String: want %q, got %q / %q", w, a, b)
		}
	case bool:
		if a, b := one.Bool(!w), unit.Bool(v, !w); a != w || b != w {
			return fmt.Sprintf("Bool: want %v, got %v / %v", w, a, b)
		}
	case nil:
		if a, b := one.Int64(-7), unit.Int64(v, -7); a != -7 || b != -7 {
			return fmt.Sprintf("fallback: want the default, got %d / %d", a, b)
		}
		if one.JSON() != nil || unit.JSON(v) != nil {
			return "fallback: JSON should be nil"
		}
	default:
		wantJSON, _ := json.Marshal(w)
		if !jsonEqual(one.JSON(), wantJSON) || !jsonEqual(unit.JSON(v), wantJSON) {
			return fmt.Sprintf("JSON: want %s, got %s / %s", wantJSON, one.JSON(), unit.JSON(v))
		}
	}
	return ""
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && reflect.DeepEqual(x, y)
}

type batchFile struct {
	Cases []struct {
		Name   string          `json:"name"`
		Header json.RawMessage `json:"header"`
		Events json.RawMessage `json:"events"`
		Hex    string          `json:"hex"`
	} `json:"cases"`
	Invalid []struct {
		Name  string `json:"name"`
		Hex   string `json:"hex"`
		Error string `json:"error"`
	} `json:"invalid"`
}

// exact reads batch JSON for an exact comparison: numbers as exact
// rationals (no float64 rounding), {"$int64": "..."} as the integer it
// stands for, and the vectors' "valueText" (the wire text of "value") left out.
func exact(t testing.TB, raw []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatal(err)
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case json.Number:
			r, ok := new(big.Rat).SetString(string(x))
			if !ok {
				t.Fatalf("number %s", x)
			}
			return "n:" + r.RatString()
		case map[string]any:
			if s, ok := x["$int64"].(string); ok && len(x) == 1 {
				return walk(json.Number(s))
			}
			out := map[string]any{}
			for k, e := range x {
				if k != "valueText" {
					out[k] = walk(e)
				}
			}
			return out
		case []any:
			for i := range x {
				x[i] = walk(x[i])
			}
			return x
		}
		return v
	}
	return walk(v)
}

var decodeErrors = map[string]error{
	"checksum":    ErrBatchChecksum,
	"not-a-batch": ErrNotABatch,
	"version":     ErrBatchVersion,
	"malformed":   ErrBatchMalformed,
}

func runBatchFile(t *testing.T, path string, want int) fileResult {
	var file batchFile
	readJSON(t, path, &file)
	var r fileResult
	check := func(ok bool, format string, args ...any) {
		if ok {
			r.Passed++
		} else {
			r.Failed++
			t.Errorf("%s: %s", filepath.Base(path), fmt.Sprintf(format, args...))
		}
	}
	for _, c := range file.Cases {
		bytesWant, err := hex.DecodeString(c.Hex)
		if err != nil {
			t.Fatal(err)
		}
		in, _ := json.Marshal(map[string]json.RawMessage{"header": c.Header, "events": c.Events})
		enc, err := EncodeBatchJSON(in)
		encOK := err == nil && bytes.Equal(enc, bytesWant)
		dec, err := DecodeBatchJSON(bytesWant)
		decOK := err == nil && reflect.DeepEqual(exact(t, dec), exact(t, in))
		// The decoded form re-encodes to the same bytes.
		again, err2 := EncodeBatchJSON(dec)
		roundOK := err2 == nil && bytes.Equal(again, bytesWant)
		check(encOK && decOK && roundOK, "%s: encode ok %v, decode ok %v, round trip ok %v (%v, %v)", c.Name, encOK,
			decOK, roundOK, err, err2)
	}
	for _, c := range file.Invalid {
		b, err := hex.DecodeString(c.Hex)
		if err != nil {
			t.Fatal(err)
		}
		_, err = DecodeBatchJSON(b)
		check(errors.Is(err, decodeErrors[c.Error]), "%s: want %s, got %v", c.Name, c.Error, err)
	}
	if r.Passed+r.Failed != want {
		t.Errorf("%s: %d cases, index says %d", path, r.Passed+r.Failed, want)
	}
	return r
}

type syncFile struct {
	Scripts []struct {
		Name          string            `json:"name"`
		ClientOptions json.RawMessage   `json:"clientOptions"`
		Options       json.RawMessage   `json:"options"`
		Bootstrap     json.RawMessage   `json:"bootstrap"`
		Steps         []json.RawMessage `json:"steps"`
	} `json:"scripts"`
}

// runSyncFile runs the host protocol scripts (docs/sync.md, section 10)
// through the sync the poller drives, one case per script.
func runSyncFile(t *testing.T, path string, want int) fileResult {
	var file syncFile
	readJSON(t, path, &file)
	if len(file.Scripts) != want {
		t.Errorf("%s: %d scripts, index says %d", path, len(file.Scripts), want)
	}
	var r fileResult
	for _, script := range file.Scripts {
		if err := runSyncScript(script.ClientOptions, script.Options, script.Bootstrap, script.Steps); err != nil {
			r.Failed++
			t.Errorf("%s: %s: %v", filepath.Base(path), script.Name, err)
		} else {
			r.Passed++
		}
	}
	return r
}

func runSyncScript(clientOptions, syncOptions, bootstrap json.RawMessage, steps []json.RawMessage) error {
	// The client options are the library's JSON options, as New sends them.
	var fixed struct {
		FixedTimeMs *int64 `json:"fixedTimeMs"`
	}
	if err := json.Unmarshal(clientOptions, &fixed); err != nil {
		return err
	}
	var bad error
	c, err := New(nil, func(o *options) {
		d := json.NewDecoder(bytes.NewReader(clientOptions))
		d.DisallowUnknownFields()
		bad = d.Decode(&o.host)
	})
	if err != nil || bad != nil {
		return fmt.Errorf("clientOptions: %v %v", err, bad)
	}
	defer c.Close()
	if string(bootstrap) != "null" && len(bootstrap) > 0 {
		var compact bytes.Buffer // loaded as its compact text, as a fetched body
		if err := json.Compact(&compact, bootstrap); err != nil {
			return err
		}
		if _, err := c.UpdateConfig(compact.Bytes()); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	s, err := c.newSyncJSON(syncOptions)
	if err != nil {
		return err
	}
	defer s.h.close()
	for i, raw := range steps {
		var step map[string]json.RawMessage
		if err := json.Unmarshal(raw, &step); err != nil {
			return err
		}
		var at uint64
		if err := json.Unmarshal(step["at"], &at); err != nil {
			return fmt.Errorf("step %d: at: %w", i, err)
		}
		delete(step, "at")
		if fixed.FixedTimeMs != nil {
			if err := c.SetTime(time.UnixMilli(*fixed.FixedTimeMs + int64(at))); err != nil {
				return err
			}
		}
		for op, arg := range step {
			if err := syncStep(c, s, at, op, arg); err != nil {
				return fmt.Errorf("step %d (%s at %d): %w", i, op, at, err)
			}
		}
	}
	return nil
}

// syncStep runs one step; the steps that expect something compare it as JSON.
func syncStep(c *Client, s *syncer, at uint64, op string, arg json.RawMessage) error {
	var got any
	switch op {
	case "next":
		got = actionJSON(s.next(at))
	case "notices":
		raw := s.json(false)
		var typed []Notice // the notices must read into the Go type too
		if err := json.Unmarshal(raw, &typed); err != nil {
			return err
		}
		got = json.RawMessage(raw)
	case "state":
		var full, want map[string]any
		if err := json.Unmarshal(s.json(true), &full); err != nil {
			return err
		}
		_ = json.Unmarshal(arg, &want)
		picked := map[string]any{}
		for k := range want {
			picked[k] = full[k]
		}
		got = picked
	case "fetched", "uploaded":
		var o struct {
			Status     int             `json:"status"`
			ETag       string          `json:"etag"`
			RetryAfter string          `json:"retryAfter"`
			Body       json.RawMessage `json:"body"`
			BodyText   *string         `json:"bodyText"`
			Failure    string          `json:"failure"`
			Message    string          `json:"message"`
			Seq        uint64          `json:"seq"`
		}
		if err := json.Unmarshal(arg, &o); err != nil {
			return err
		}
		out := &outcome{status: o.Status, etag: o.ETag, retryAfter: o.RetryAfter, failure: o.Failure, message: o.Message}
		if o.BodyText != nil {
			out.body = []byte(*o.BodyText)
		} else if len(o.Body) > 0 && string(o.Body) != "null" {
			var compact bytes.Buffer
			if err := json.Compact(&compact, o.Body); err != nil {
				return err
			}
			out.body = compact.Bytes()
		}
		kind := actionFetch
		if op == "uploaded" {
			kind = actionUpload
		}
		s.report(at, &syncAction{kind: kind, seq: o.Seq}, out)
		return nil
	case "track":
		var e struct {
			Name  string   `json:"name"`
			Value *float64 `json:"value"`
		}
		_ = json.Unmarshal(arg, &e)
		if e.Value == nil {
			e.Value = new(float64)
			*e.Value = 1
		}
		return c.Track(context.Background(), e.Name, *e.Value, nil)
	case "pollNow":
		s.call(syncPollNow)
		return nil
	case "flushNow":
		s.call(syncFlushNow)
		return nil
	case "stop":
		var f struct {
			Flush *bool `json:"flush"`
		}
		_ = json.Unmarshal(arg, &f)
		if f.Flush != nil && !*f.Flush {
			s.call(syncStopNoFlush)
		} else {
			s.call(syncStop)
		}
		return nil
	default:
		return fmt.Errorf("unknown operation %q", op)
	}
	g, _ := json.Marshal(got)
	if !jsonEqual(g, arg) {
		return fmt.Errorf("expected %s, got %s", arg, g)
	}
	return nil
}

// actionJSON is an action in the vectors' form (upload bytes left out).
func actionJSON(a syncAction) any {
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	switch a.kind {
	case actionFetch:
		var etag any
		if a.etag != "" {
			etag = a.etag
		}
		return map[string]any{"action": "fetch", "url": a.url, "etag": etag, "timeoutMs": ms(a.timeout), "maxBytes": a.maxBytes}
	case actionUpload:
		return map[string]any{"action": "upload", "url": a.url, "seq": a.seq, "events": a.events, "timeoutMs": ms(a.timeout)}
	case actionWait:
		return map[string]any{"action": "wait", "ms": ms(a.wait)}
	}
	return map[string]any{"action": "stop"}
}
