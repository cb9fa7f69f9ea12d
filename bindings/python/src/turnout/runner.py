"""The demo runner of tests/bench/README.md::

    python -m turnout.runner --config CONFIG.json --contexts CONTEXTS.jsonl \\
        --now-ms MS --out DECISIONS.jsonl --timing TIMING.json

For every line of CONTEXTS.jsonl (``{"variable": ..., "facets": {...}}``)
it builds a prepared context, takes the full decision through the cached
variable handle, and writes the contract's JSON line to DECISIONS.jsonl.
Then it times the prepared typed getter over all contexts for about a
second and writes ``{"platform": "python", "decisions": N,
"nsPerDecisionMedian": X}`` to TIMING.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import typing

from . import Client


def _facets(raw: typing.Mapping[str, typing.Any]) -> typing.Dict[str, typing.Any]:
    """Vector facets: ``{"$int64": "..."}`` becomes a Python int."""
    return {k: int(v["$int64"]) if isinstance(v, dict) and "$int64" in v else v for k, v in raw.items()}


def main(argv: typing.Optional[typing.Sequence[str]] = None) -> int:
    """Runs the runner; returns the exit code."""
    p = argparse.ArgumentParser(prog="python -m turnout.runner", description=__doc__.split("::")[0])
    p.add_argument("--config", required=True)
    p.add_argument("--contexts", required=True)
    p.add_argument("--now-ms", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--timing", required=True)
    p.add_argument("--seconds", type=float, default=1.0, help="how long to time the prepared path")
    a = p.parse_args(argv)

    with open(a.config, "rb") as f:
        client = Client(f.read(), fixed_time_ms=a.now_ms, service="demo")
    with open(a.contexts, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]

    prepared = []
    with open(a.out, "w", encoding="utf-8") as out:
        for line in lines:
            var = client.variable(line["variable"])
            ctx = client.context(_facets(line.get("facets") or {}))
            d = ctx.decision(var)
            out.write(json.dumps(d.to_dict(), separators=(",", ":")) + "\n")
            typed = type(d.value) is int
            prepared.append((ctx, var, typed))

    # Timing: passes of the typed getter over every context, ~a.seconds in all.
    passes: typing.List[float] = []
    deadline = time.perf_counter() + a.seconds
    while not passes or time.perf_counter() < deadline:
        t0 = time.perf_counter_ns()
        for ctx, var, typed in prepared:
            if typed:
                ctx.int64(var, 0)
            else:
                ctx.string(var, "")
        passes.append((time.perf_counter_ns() - t0) / max(1, len(prepared)))
        while client.take_batch(10_000) is not None:  # drain the queue between passes, untimed
            pass
    timing = {"platform": "python", "decisions": len(prepared) * len(passes),
              "nsPerDecisionMedian": round(statistics.median(passes), 1)}
    with open(a.timing, "w", encoding="utf-8") as f:
        json.dump(timing, f)
    print(f"python runner: {len(prepared)} decisions written to {a.out}; "
          f"prepared path {timing['nsPerDecisionMedian']} ns/decision (median of {len(passes)} passes)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
