package turnout

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

var bg = context.Background()

func exampleConfig(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath("examples", "configs", "example.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func seedRollout(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath("examples", "configs", "seed-rollout.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newClient(t testing.TB, config []byte, opts ...Option) *Client {
	t.Helper()
	c, err := New(config, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestGrabStyleAPI(t *testing.T) {
	c := newClient(t, seedRollout(t), WithService("booking"))
	// Singapore, service 302: rule 0.
	if got := c.GetVariable(bg, "automatedMessageDelay", NewFacets().City(6).Service(302)).Int64(10); got != 60 {
		t.Fatalf("got %d", got)
	}
	if got := c.GetVariable(bg, "automatedMessageDelay", NewFacets().City(3)).Int64(10); got != 30 {
		t.Fatalf("got %d", got)
	}
	if got := c.GetVariable(bg, "noSuchVariable", NewFacets().City(3)).Int64(10); got != 10 {
		t.Fatalf("fallback: got %d", got)
	}
	if got := c.GetVariable(bg, "automatedMessageDelay", nil).Float64(1); got != 30 {
		t.Fatalf("nil facets: got %v", got)
	}
	if got := c.GetVariable(bg, "automatedMessageDelay", nil).String("x"); got != "x" {
		t.Fatalf("not a string: got %q", got)
	}
	if got := c.GetVariable(bg, "automatedMessageDelay", nil).Bool(true); !got {
		t.Fatalf("not a bool: got %v", got)
	}
	if err := c.Track(bg, "pickupSeconds", 42, NewFacets().Passenger(7).Booking("ADR-123-2-001")); err != nil {
		t.Fatal(err)
	}
	d, err := c.GetVariable(bg, "automatedMessageDelay", NewFacets().City(6).Service(11)).Decision()
	if err != nil {
		t.Fatal(err)
	}
	if d.Source != SourceRollout || d.Rule == nil || *d.Rule != 0 || string(d.Value) != "60" ||
		d.Reason != ReasonTargetingMatch || d.Label != "60s delay" || d.Variable != "automatedMessageDelay" {
		t.Fatalf("decision %+v", d)
	}
	d, _ = c.GetVariable(bg, "nope", nil).Decision()
	if d.Source != SourceFallback || d.Value != nil || d.ErrorCode != ErrorCodeFlagNotFound {
		t.Fatalf("fallback decision %+v", d)
	}
	if c.GetVariable(bg, "nope", nil).JSON() != nil {
		t.Fatal("fallback JSON should be nil")
	}
	if string(c.GetVariable(bg, "automatedMessageDelay", nil).JSON()) != "30" {
		t.Fatal("JSON")
	}
	ex, err := c.Explain("automatedMessageDelay", NewFacets().City(6).Service(302))
	if err != nil || len(ex.Steps) == 0 || ex.Decision.Rule == nil {
		t.Fatalf("explain %+v %v", ex, err)
	}
	if v, ok := c.ConfigVersion(); ok {
		t.Fatalf("a seed document has no version, got %d", v)
	}
	if names := c.VariableNames(); len(names) != 1 || names[0] != "automatedMessageDelay" {
		t.Fatalf("names %v", names)
	}
}

func TestPreparedPath(t *testing.T) {
	c := newClient(t, exampleConfig(t))
	v, err := c.Variable("automatedMessageDelay")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.Name() != "automatedMessageDelay" {
		t.Fatal(v.Name())
	}
	sg, err := c.Context(NewFacets().City(6).Service(302).Passenger(1001))
	if err != nil {
		t.Fatal(err)
	}
	defer sg.Close()
	for i := 0; i < 3; i++ {
		if got := sg.Int64(v, 0); got != 60 {
			t.Fatalf("got %d", got)
		}
	}
	if got := sg.Float64(v, 0); got != 60 {
		t.Fatalf("got %v", got)
	}
	color, _ := c.Variable("checkoutButtonColor")
	defer color.Close()
	if got := sg.String(color, "none"); got == "none" || got == "" {
		t.Fatalf("color %q", got)
	}
	if got := sg.Int64(color, -1); got != -1 {
		t.Fatalf("a string read as int64 gives the default, got %d", got)
	}
	d, err := sg.Decision(v)
	if err != nil || d.Variable != "automatedMessageDelay" || string(d.Value) != "60" {
		t.Fatalf("%+v %v", d, err)
	}
	if string(sg.JSON(v)) != "60" {
		t.Fatal(string(sg.JSON(v)))
	}
	if err := sg.Track("pickupSeconds", 12); err != nil {
		t.Fatal(err)
	}
	// The handles keep working after their client is closed.
	c.Close()
	if got := sg.Int64(v, 0); got != 60 {
		t.Fatalf("after client Close: got %d", got)
	}
	// Closed handles give the default; Close twice is fine.
	sg.Close()
	sg.Close()
	if got := sg.Int64(v, -5); got != -5 {
		t.Fatalf("closed context: got %d", got)
	}
	if _, err := sg.Decision(v); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if err := sg.Track("x", 1); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	var nilCtx *Context
	if got := nilCtx.Int64(v, -6); got != -6 {
		t.Fatal(got)
	}
}

func TestBigIDsBucketExactly(t *testing.T) {
	c := newClient(t, exampleConfig(t))
	// 2^53 + 1 and 2^53 are different units; a float64 would merge them.
	a := c.GetVariable(bg, "x", NewFacets().Passenger(9007199254740993))
	b := c.GetVariable(bg, "x", FacetsFromJSON([]byte(`{"pax": {"$int64": "9007199254740993"}}`)))
	// Same unit through the builder and through JSON: same decision.
	da, _ := a.Decision()
	db, _ := b.Decision()
	if da.Source != db.Source {
		t.Fatal(da, db)
	}
	xa, _ := c.Context(NewFacets().Passenger(9007199254740993).Country("SG"))
	xb, _ := c.Context(FacetsFromJSON([]byte(`{"pax": {"$int64": "9007199254740993"}, "country": "SG"}`)))
	defer xa.Close()
	defer xb.Close()
	v, _ := c.Variable("checkoutButtonColor")
	defer v.Close()
	if xa.String(v, "?") != xb.String(v, "?") {
		t.Fatal("builder and JSON disagree")
	}
}

func TestFacetsBuilder(t *testing.T) {
	f := NewFacets().Passenger(1).Driver(2).Service(3).City(4).Time(time.Unix(1700000000, 0)).
		Country("SG").Booking("B").Location("w21z").Session("s").Request("r").Device("d").Tag("t").
		Float64("score", 0.5).Bool("vip", true).String("name", strings.Repeat("é", 300)).
		JSON([]byte(`{"extra": 1}`))
	c := newClient(t, exampleConfig(t))
	x, err := c.Context(f)
	if err != nil {
		t.Fatal(err)
	}
	x.Close()
	// Clone is independent.
	g := f.Clone().City(6)
	if len(g.encoded()) == len(f.encoded()) {
		t.Fatal("clone shares")
	}
	var zero Facets
	zero.City(6)
	if got := c.GetVariable(bg, "automatedMessageDelay", zero.Service(302)).Int64(0); got != 60 {
		t.Fatalf("zero-value Facets: %d", got)
	}
	if (*Facets)(nil).encoded() != nil || NewFacets().encoded() != nil {
		t.Fatal("empty facets are nil")
	}
}

func TestErrors(t *testing.T) {
	_, err := New([]byte(`{not json`))
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "not valid JSON") {
		t.Fatalf("%v", err)
	}
	var te *Error
	if !errors.As(err, &te) || te.Status != StatusConfig || te.Status.String() != "config rejected" {
		t.Fatalf("%#v", err)
	}
	if _, err := New(nil, WithMaxQueue(0)); !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "maxQueue") {
		t.Fatalf("%v", err)
	}
	if _, err := New(nil, WithDecisionEvents("some")); !errors.Is(err, ErrOptions) {
		t.Fatalf("%v", err)
	}
	c := newClient(t, seedRollout(t))
	// A rejected update keeps the old config.
	if _, err := c.UpdateConfig([]byte(`{"variable": "automatedMessageDelay", "rollouts": 3}`)); !errors.Is(err, ErrConfig) {
		t.Fatal(err)
	}
	if got := c.GetVariable(bg, "automatedMessageDelay", NewFacets().City(6).Service(302)).Int64(0); got != 60 {
		t.Fatal(got)
	}
	// Invalid UTF-8 and bad facets: an error, or the default from typed getters.
	if _, err := c.Variable("bad\xff"); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatal(err)
	}
	if _, err := c.Context(FacetsFromJSON([]byte(`{"city": [6]}`))); !errors.Is(err, ErrFacets) ||
		!strings.Contains(err.Error(), "city") {
		t.Fatal(err)
	}
	if _, err := c.Context(NewFacets().String("n\xff", "x")); !errors.Is(err, ErrFacets) {
		t.Fatal(err)
	}
	if got := c.GetVariable(bg, "automatedMessageDelay", FacetsFromJSON([]byte(`[1]`))).Int64(-1); got != -1 {
		t.Fatal(got)
	}
	if _, err := c.GetVariable(bg, "automatedMessageDelay", FacetsFromJSON([]byte(`{`))).Decision(); !errors.Is(err, ErrFacets) {
		t.Fatal(err)
	}
	if err := c.Track(bg, "m\xff", 1, nil); !errors.Is(err, ErrInvalidUTF8) {
		t.Fatal(err)
	}
	if err := c.SetTime(time.Now()); !errors.Is(err, ErrNoFixedClock) {
		t.Fatal(err)
	}
	if _, err := DecodeBatchJSON([]byte("nope")); !errors.Is(err, ErrNotABatch) {
		t.Fatal(err)
	}
	if _, err := EncodeBatchJSON([]byte(`{"header": {}}`)); !errors.Is(err, ErrBatchJSON) {
		t.Fatal(err)
	}
	// A panic inside the library is an error, not a crash.
	if err := nativeSelftestPanic(); !errors.Is(err, ErrPanic) || !strings.Contains(err.Error(), "panic") {
		t.Fatal(err)
	}
	if err := c.Flush(bg); !errors.Is(err, ErrNoEventsURL) {
		t.Fatal(err)
	}
	// Everything after Close: ErrClosed or the default, never a crash.
	c.Close()
	c.Close()
	if _, err := c.UpdateConfig(seedRollout(t)); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if got := c.GetVariable(bg, "automatedMessageDelay", nil).Int64(-3); got != -3 {
		t.Fatal(got)
	}
	if _, err := c.Context(nil); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if _, err := c.Variable("x"); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if err := c.Track(bg, "m", 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
	if c.Ack(1) || c.Nack(1) || c.TrackingStats() != (TrackingStats{}) || c.VariableNames() != nil {
		t.Fatal("closed client answered")
	}
	if err := c.Start(bg, "http://127.0.0.1:1/", time.Second); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

func TestUpdateReportAndValidate(t *testing.T) {
	c := newClient(t, nil)
	if got := c.GetVariable(bg, "automatedMessageDelay", nil).Int64(-1); got != -1 {
		t.Fatal("an empty client falls back")
	}
	r, err := c.Validate(exampleConfig(t))
	if err != nil || len(r.Added) == 0 {
		t.Fatal(r, err)
	}
	if c.VariableNames() != nil && len(c.VariableNames()) != 0 {
		t.Fatal("validate installed")
	}
	r, err = c.UpdateConfig(exampleConfig(t))
	if err != nil || !r.HasChanges() || r.Version == nil || len(r.Added) < 6 {
		t.Fatalf("%+v %v", r, err)
	}
	r, err = c.UpdateConfig(exampleConfig(t))
	if err != nil || r.HasChanges() {
		t.Fatalf("same config again: %+v %v", r, err)
	}
	v, ok := c.ConfigVersion()
	if !ok || v != *r.Version {
		t.Fatal(v, ok)
	}
}

func TestTrackingBatches(t *testing.T) {
	c := newClient(t, exampleConfig(t), WithService("booking"), WithClientID("go-test"),
		WithFixedTime(time.UnixMilli(1763800000000)))
	f := NewFacets().City(6).Service(302).Passenger(1001)
	for i := 0; i < 5; i++ {
		c.GetVariable(bg, "automatedMessageDelay", f).Int64(0) // folds into one event
	}
	c.Track(bg, "pickupSeconds", 42, f)
	s := c.TrackingStats()
	if s.Recorded != 6 || s.Folded != 4 || s.Queued != 2 {
		t.Fatalf("%+v", s)
	}
	b, err := c.TakeBatch(1)
	if err != nil || b == nil || b.Events != 1 {
		t.Fatal(b, err)
	}
	js, err := DecodeBatchJSON(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var decoded struct {
		Header map[string]any   `json:"header"`
		Events []map[string]any `json:"events"`
	}
	if err := json.Unmarshal(js, &decoded); err != nil {
		t.Fatal(err)
	}
	if decoded.Header["clientId"] != "go-test" || decoded.Header["sdk"] != "turnout-go" ||
		decoded.Events[0]["count"] != float64(5) || decoded.Events[0]["name"] != "automatedMessageDelay" {
		t.Fatalf("%s", js)
	}
	if !c.Nack(b.Seq) || c.Nack(b.Seq) {
		t.Fatal("nack")
	}
	again, _ := c.TakeBatch(10)
	if again.Seq != b.Seq || string(again.Bytes) != string(b.Bytes) {
		t.Fatal("a nacked batch comes back first, unchanged")
	}
	if !c.Ack(again.Seq) || c.Ack(again.Seq) {
		t.Fatal("ack")
	}
	rest, _ := c.TakeBatch(10)
	if rest == nil || rest.Events != 1 || !c.Ack(rest.Seq) {
		t.Fatal(rest)
	}
	if none, err := c.TakeBatch(10); none != nil || err != nil {
		t.Fatal(none, err)
	}
	if s := c.TrackingStats(); s.Queued != 0 || s.InFlight != 0 {
		t.Fatalf("%+v", s)
	}
}

func TestVersions(t *testing.T) {
	if LibraryVersion() == "" || SpecVersion() != 1 {
		t.Fatal(LibraryVersion(), SpecVersion())
	}
}
