package turnout

// The limits on hostile input (docs/spec.md, section 17), through the C ABI:
// each is the ErrLimit kind with a message naming the limit, the previous
// config stays in force, and nothing costs more than its input's size.

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// blowUpBundle is a bundle of one segment of 1,000 constraints referenced
// 10,000 times by one rule: 10,000,000 constraints once expanded, from ~80 KB.
func blowUpBundle() []byte {
	var b strings.Builder
	b.WriteString(`{"schema": 1, "version": 2, "segments": {"s": {"constraints": [`)
	for i := 0; i < 1000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"target":"city","op":"=","value":%d}`, i)
	}
	b.WriteString(`]}}, "rollouts": [{"variable": "blowUp", "rollouts": [{"value": 1, "segments": [`)
	for i := 0; i < 10000; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"s"`)
	}
	b.WriteString(`]}], "default": 0}]}`)
	return []byte(b.String())
}

// bigFacetsJSON is a JSON object of n integer facets f0..f(n-1).
func bigFacetsJSON(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"f%d":%d`, i, i)
	}
	b.WriteByte('}')
	return b.String()
}

// wantLimit checks that err is ErrLimit naming limit.
func wantLimit(t *testing.T, err error, limit string) {
	t.Helper()
	var te *Error
	if !errors.Is(err, ErrLimit) || !errors.As(err, &te) || te.Status != StatusLimit || te.Kind != "LIMIT_EXCEEDED" ||
		!strings.Contains(err.Error(), "limit `"+limit+"` exceeded") {
		t.Fatalf("want ErrLimit (%s), got %v", limit, err)
	}
}

// stillSeedRollout checks that seed-rollout.json is the config in force.
func stillSeedRollout(t *testing.T, c *Client) {
	t.Helper()
	if got := c.GetVariable(bg, "automatedMessageDelay", NewFacets().City(6).Service(302)).Int64(0); got != 60 {
		t.Fatalf("the previous config is not in force: got %d", got)
	}
}

func TestLimitConfigBytes(t *testing.T) {
	big := exampleConfig(t) // 3,870 bytes
	if _, err := New(big, WithMaxConfigBytes(1000)); err != nil {
		wantLimit(t, err, "config_bytes")
	} else {
		t.Fatal("a config over WithMaxConfigBytes was accepted")
	}
	c := newClient(t, seedRollout(t), WithMaxConfigBytes(1000))
	_, err := c.UpdateConfig(big)
	wantLimit(t, err, "config_bytes")
	if !strings.Contains(err.Error(), fmt.Sprintf("found %d, the maximum is 1000", len(big))) {
		t.Fatal(err)
	}
	_, err = c.Validate(big)
	wantLimit(t, err, "config_bytes")
	stillSeedRollout(t, c)
	if StatusLimit.String() != "limit exceeded" {
		t.Fatal(StatusLimit.String())
	}
}

func TestLimitExpandedConstraints(t *testing.T) {
	c := newClient(t, seedRollout(t))
	bundle := blowUpBundle()
	_, err := c.UpdateConfig(bundle)
	wantLimit(t, err, "expanded_constraints")
	_, err = c.Validate(bundle)
	wantLimit(t, err, "expanded_constraints")
	_, err = New(bundle)
	wantLimit(t, err, "expanded_constraints")
	stillSeedRollout(t, c)
	if got := c.GetVariable(bg, "blowUp", nil).Int64(-1); got != -1 {
		t.Fatal(got)
	}
}

func TestLimitJSONDepth(t *testing.T) {
	c := newClient(t, seedRollout(t))
	_, err := c.UpdateConfig([]byte(strings.Repeat("[", 100) + strings.Repeat("]", 100)))
	wantLimit(t, err, "json_depth")
	stillSeedRollout(t, c)
}

// Facets over a limit through the C ABI: the call that takes them fails with
// ErrLimit, and the typed getters return the caller's default.
func TestLimitFacets(t *testing.T) {
	c := newClient(t, seedRollout(t))
	many := NewFacets().City(6).Service(302)
	for i := 0; i < 2000; i++ {
		many.Int64(fmt.Sprintf("f%d", i), int64(i))
	}
	long := NewFacets().City(6).Service(302).String("note", strings.Repeat("x", 10000))
	manyJSON := FacetsFromJSON([]byte(bigFacetsJSON(2000)))
	longJSON := FacetsFromJSON([]byte(`{"city": 6, "svc": 302, "note": "` + strings.Repeat("x", 10000) + `"}`))
	for _, tc := range []struct {
		name   string
		facets *Facets
		limit  string
	}{
		{"2000 facets", many, "facets"},
		{"a 10,000-byte value", long, "facet_value_bytes"},
		{"2000 facets (JSON)", manyJSON, "facets"},
		{"a 10,000-byte value (JSON)", longJSON, "facet_value_bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.GetVariable(bg, "automatedMessageDelay", tc.facets).Int64(-7); got != -7 {
				t.Fatalf("typed getter: got %d, want the default", got)
			}
			if got := c.GetVariable(bg, "automatedMessageDelay", tc.facets).String("d"); got != "d" {
				t.Fatalf("string getter: got %q, want the default", got)
			}
			_, err := c.GetVariable(bg, "automatedMessageDelay", tc.facets).Decision()
			wantLimit(t, err, tc.limit)
			_, err = c.Context(tc.facets)
			wantLimit(t, err, tc.limit)
			_, err = c.GetVariables(bg, "automatedMessageDelay", tc.facets)
			wantLimit(t, err, tc.limit)
			_, err = c.Explain("automatedMessageDelay", tc.facets)
			wantLimit(t, err, tc.limit)
			wantLimit(t, c.Track(bg, "m", 1, tc.facets), tc.limit)
		})
	}
	// At the limits: accepted.
	ok := NewFacets().City(6).Service(302).String("note", strings.Repeat("x", 8<<10))
	for i := 0; i < 1024-3; i++ {
		ok.Int64(fmt.Sprintf("f%d", i), int64(i))
	}
	if d, err := c.GetVariable(bg, "automatedMessageDelay", ok).Decision(); err != nil || d.Reason == ReasonError {
		t.Fatal(d, err)
	}
}

// A batch whose one 1,000-facet set is shared by 200 events: ~10 KB on the
// wire, ~3 MB once every event's copy of the set is counted (the budget is
// 128 times the size plus 64 KiB, ~1.4 MB). (The encoder's JSON input repeats
// the set in every event, so more events only make the test slower.)
func TestLimitDecodeExpansion(t *testing.T) {
	facets := bigFacetsJSON(1000)
	var b strings.Builder
	b.WriteString(`{"header": {"clientId": "limits", "seq": 1, "createdAtMs": 1700000000000, "sdk": "go-test", ` +
		`"sdkVersion": "1", "platform": "go", "dropped": 0, "foldOverflow": 0}, "events": [`)
	for i := 0; i < 200; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"kind": "track", "name": "m", "service": "s", "time": %d, "count": 1, "value": 1, "facets": %s}`,
			1700000000000+i, facets)
	}
	b.WriteString(`]}`)
	batch, err := EncodeBatchJSON([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(batch) > 100<<10 {
		t.Fatalf("the encoded batch is %d bytes", len(batch))
	}
	_, err = DecodeBatchJSON(batch)
	wantLimit(t, err, "decode_expansion")
}
