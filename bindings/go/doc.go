// Package turnout is the Go client of turnout, a feature-flag and
// experimentation engine that decides locally, in well under a microsecond,
// which value of a variable a passenger, driver, booking or request gets, and
// decides it identically on every platform (the same Rust core, through its
// C ABI: ffi/include/turnout.h).
//
//	client, err := turnout.New(configJSON, turnout.WithService("booking"))
//	if err != nil { ... }
//	defer client.Close()
//
//	// One-shot, in the style of Grab's SDK:
//	delay := client.GetVariable(ctx, "automatedMessageDelay",
//		turnout.NewFacets().Passenger(7).City(10)).Int64(30)
//	client.Track(ctx, "pickupSeconds", 42, turnout.NewFacets().Passenger(7))
//
//	// Prepared (the hot path: no allocation, no strings cross):
//	v, _ := client.Variable("automatedMessageDelay")
//	unit, _ := client.Context(turnout.NewFacets().Passenger(7).City(10))
//	delay = unit.Int64(v, 30)
//
//	// Keep the config fresh and upload events:
//	client.Start(ctx, "https://config.example/bundle.json", 30*time.Second)
//
// Every decision is recorded as an event (repeats fold into counts); Start
// (with WithEventsURL) or Flush upload them as compact binary batches.
//
// Building: the package links the static library target/release/libturnout_ffi.a
// of this repository (`cargo build --release -p turnout-ffi`, or
// `cargo xtask go`, which also runs the tests).
//
// Handles (Client, Context, Variable) are safe for concurrent use. Close each
// when done; a cleanup frees any that is garbage collected first. Close must
// not race with other calls on the same handle. Nothing in this package
// panics or calls log.Fatal: failures are errors wrapping a Status
// (errors.Is(err, turnout.ErrConfig), ...), and the typed getters return
// your default.
package turnout
