// Command example is turnout from Go in one page: load the example config,
// decide for a passenger (one-shot and prepared), track an event, and flush
// the recorded events as a batch to a collector.
//
//	cargo xtask go        # the native library, placed in bindings/go/lib (and the tests)
//	cd examples/go && go run . http://127.0.0.1:8080/events
//
// go.mod replaces the module with ../../bindings/go; outside this repository
// drop the replace and `go get github.com/turnout-dev/turnout-go@latest`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	turnout "github.com/turnout-dev/turnout-go"
)

func main() {
	config := flag.String("config", "../configs/example.json", "config bundle")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: example [-config FILE] COLLECTOR_URL")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*config, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "example:", err)
		os.Exit(1)
	}
}

func run(configPath, collectorURL string) error {
	cfg, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	client, err := turnout.New(cfg, turnout.WithService("booking"), turnout.WithEventsURL(collectorURL))
	if err != nil {
		return err
	}
	defer client.Close()
	ctx := context.Background()

	// One-shot: a Jakarta passenger.
	pax := turnout.NewFacets().Passenger(7).City(10)
	delay := client.GetVariable(ctx, "automatedMessageDelay", pax).Int64(30)
	fmt.Printf("automatedMessageDelay for passenger 7 in city 10: %d s\n", delay)

	// Prepared: one context per unit, one handle per variable, many decisions.
	color, err := client.Variable("checkoutButtonColor")
	if err != nil {
		return err
	}
	defer color.Close()
	shopper, err := client.Context(turnout.NewFacets().Passenger(1009).Country("SG"))
	if err != nil {
		return err
	}
	defer shopper.Close()
	d, err := shopper.Decision(color)
	if err != nil {
		return err
	}
	fmt.Printf("checkoutButtonColor for passenger 1009 in SG: %s (source %s, reason %s, experiment %q)\n",
		d.Value, d.Source, d.Reason, d.Experiment)

	// A metric.
	if err := client.Track(ctx, "pickupSeconds", 42, pax.Clone().Booking("ADR-123-2-001")); err != nil {
		return err
	}

	// Upload what was recorded (the poller started by client.Start does this
	// in the background; here we flush once).
	recorded := client.TrackingStats()
	flushCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.Flush(flushCtx); err != nil {
		return fmt.Errorf("flush to %s: %w", collectorURL, err)
	}
	after := client.TrackingStats()
	fmt.Printf("flushed %d events (%d occurrences) to %s; %d still queued\n",
		recorded.Queued, recorded.Recorded, collectorURL, after.Queued)
	return nil
}
