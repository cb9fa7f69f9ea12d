"""turnout: feature flags and experiments decided locally, in microseconds,
identically on every platform (the Rust engine through UniFFI).

::

    import turnout

    client = turnout.Client(open("config.json", "rb").read(), service="booking")
    delay = client.get_variable("automatedMessageDelay",
                                turnout.Facets().passenger(7).city(10)).int64(30)

    var = client.variable("automatedMessageDelay")      # prepared: the hot path
    with client.context({"pax": 7, "city": 10}) as ctx:
        delay = ctx.int64(var, 30)

    client.track("pickupSeconds", 42.0, {"pax": 7})
    while (batch := client.take_batch()) is not None:
        ...  # POST batch.bytes, then client.ack(batch.seq) (or nack)

See :class:`Client`, :class:`Facets`, :class:`Poller`.
"""

from ._client import (
    Batch,
    Client,
    ConfigSource,
    Context,
    Decision,
    Explanation,
    TrackingStats,
    UpdateReport,
    Variable,
    __version__,
    decode_batch,
    encode_batch,
    library_version,
    spec_version,
)
from ._errors import (
    BatchError,
    ClosedError,
    ConfigError,
    FacetsError,
    HttpError,
    LimitError,
    OptionsError,
    Problem,
    StateError,
    TurnoutError,
    TurnoutTypeError,
)
from ._records import Rejected
from ._facets import Facets, FacetsLike, FacetValue
from .poller import Poller

__all__ = [
    "Client",
    "Context",
    "Variable",
    "Decision",
    "Explanation",
    "UpdateReport",
    "Rejected",
    "Problem",
    "Batch",
    "TrackingStats",
    "ConfigSource",
    "Facets",
    "FacetsLike",
    "FacetValue",
    "Poller",
    "HttpError",
    "TurnoutError",
    "ConfigError",
    "FacetsError",
    "OptionsError",
    "LimitError",
    "BatchError",
    "StateError",
    "ClosedError",
    "TurnoutTypeError",
    "encode_batch",
    "decode_batch",
    "spec_version",
    "library_version",
    "__version__",
]
