"""turnout from Python: load the example config, decide for a passenger,
track an event and send the recorded events to a collector.

    cargo xtask python                       # builds and installs the package
    target/py-venv-bindings/bin/python examples/python/example.py http://127.0.0.1:8080/events

The collector receives one POST per batch (application/octet-stream, the
wire format of docs/wire-format.md; `turnout decode FILE` prints it).
"""

import argparse
import pathlib
import sys
import urllib.request

import turnout

ROOT = pathlib.Path(__file__).resolve().parents[2]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("collector", help="URL the event batches are POSTed to")
    p.add_argument("--config", default=str(ROOT / "examples/configs/example.json"))
    args = p.parse_args()

    with turnout.Client.from_file(args.config, service="booking") as client:
        # One-shot: facets built per call (the builder or a plain dict).
        passenger = turnout.Facets().passenger(7).city(10)
        delay = client.get_variable("automatedMessageDelay", passenger)
        print(f"automatedMessageDelay for passenger 7 in Jakarta: {delay.int64(30)} "
              f"({delay.source}, {delay.reason}, rule {delay.rule})")

        # Prepared: a handle and a context once, then the hot call.
        color = client.variable("checkoutButtonColor")
        with client.context({"pax": 1003, "country": "SG"}) as ctx:
            print(f"checkoutButtonColor for passenger 1003: {ctx.string(color, 'blue')} ({ctx.decision(color)})")

        # A metric, recorded with its facets.
        client.track("pickupSeconds", 42.0, turnout.Facets().passenger(7).booking("ADR-123-2-001"))

        # Upload: take a batch, POST it, ack on success (nack keeps it for a retry).
        sent = 0
        while (batch := client.take_batch(1000)) is not None:
            req = urllib.request.Request(args.collector, data=batch.bytes, method="POST",
                                         headers={"Content-Type": "application/octet-stream"})
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    resp.read()
            except OSError as e:
                client.nack(batch.seq)
                print(f"upload failed, batch {batch.seq} kept for a retry: {e}", file=sys.stderr)
                return 1
            client.ack(batch.seq)
            sent += batch.events
            print(f"batch {batch.seq}: {batch.events} events, {len(batch.bytes)} bytes -> {args.collector}")
        print(f"{sent} events delivered; queue: {client.tracking_stats()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
