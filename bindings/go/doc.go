// Package turnout is the Go client of turnout, a feature-flag and
// experimentation engine that decides locally, in well under a microsecond,
// which value of a variable a passenger, driver, booking or request gets, and
// decides it identically on every platform (the same Rust core, through its
// C ABI: include/turnout.h).
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
//	// Keep the config fresh and upload events, then wait for the first config:
//	client.Start(ctx, "https://config.example/bundle.json", 30*time.Second)
//	err = client.WaitReady(ctx)
//
// Start drives the engine's host protocol (docs/sync.md) with net/http; what
// happens is logged through log/slog (slog.Default() unless WithLogger) and
// passed to WithOnNotice, WithOnUpdate and WithOnError.
//
// Every decision is recorded as an event (repeats fold into counts); Start
// (with WithEventsURL) or Flush upload them as compact binary batches.
//
// Installing: go get github.com/turnout-dev/turnout-go@latest. The module
// carries the library prebuilt (lib/<GOOS>_<GOARCH>/libturnout_ffi.a, linked
// statically) for linux/amd64, linux/arm64, darwin/amd64 and darwin/arm64;
// builds need CGO_ENABLED=1 and a C compiler (CC set to the target's one when
// cross-compiling). Nothing else is needed at build or run time.
//
// Handles (Client, Context, Variable) are safe for concurrent use. Close each
// when done; a cleanup frees any that is garbage collected first. Close must
// not race with other calls on the same handle. Nothing in this package
// panics or calls log.Fatal: failures are errors wrapping a Status
// (errors.Is(err, turnout.ErrConfig), ...), and the typed getters return
// your default.
package turnout
