"""Thread safety: 8 threads evaluating while another updates the config
1,000 times; no crash, and every answer comes from the old or the new config."""

from __future__ import annotations

import json
import threading
import typing

import turnout


def _config(value: int, version: int) -> bytes:
    return json.dumps({
        "schema": 1,
        "version": version,
        "rollouts": [{
            "variable": "delay",
            "rollouts": [{"value": value * 10, "constraints": [{"target": "city", "op": "=", "value": 6}]}],
            "default": value,
        }],
    }).encode()


def test_eight_readers_and_one_writer_updating_1000_times() -> None:
    configs = [_config(1, 1), _config(2, 2)]
    allowed_default, allowed_city6 = {1, 2}, {10, 20}
    client = turnout.Client(configs[0], max_queue=100_000)
    var = client.variable("delay")
    done = threading.Event()
    errors: typing.List[str] = []
    counts = [0] * 8

    def reader(i: int) -> None:
        ctx_city6 = client.context(turnout.Facets().city(6).passenger(i))
        ctx_other = client.context({"city": 10, "pax": i})
        try:
            while not done.is_set():
                a = ctx_other.int64(var, -1)
                b = ctx_city6.int64(var, -1)
                c = client.get_variable("delay", {"city": 6, "pax": i}).int64(-1)
                d = ctx_other.decision(var)
                if a not in allowed_default or b not in allowed_city6 or c not in allowed_city6:
                    errors.append(f"reader {i}: {a} {b} {c}")
                if d.value not in allowed_default or d.source != "default":
                    errors.append(f"reader {i}: {d}")
                counts[i] += 1
                if counts[i] % 200 == 0:
                    while client.take_batch(10_000) is not None:
                        pass
        except BaseException as e:  # pragma: no cover - a failure is reported below
            errors.append(f"reader {i} raised {e!r}")

    readers = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    for t in readers:
        t.start()
    try:
        for n in range(1000):
            report = client.update_config(configs[n % 2 ^ 1])
            assert report.changed == ["delay"]
    finally:
        done.set()
        for t in readers:
            t.join(30)
    assert not errors, errors[:5]
    assert all(c > 0 for c in counts), counts
    # The last update installed configs[0] (n = 999 -> index 0): value 1.
    assert client.get_variable("delay", {"city": 5}).int64(-1) == 1
    assert client.config_version == 1
