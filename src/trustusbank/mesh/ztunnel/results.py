"""One connection's `istio_tcp_*` bookkeeping, at the moments ztunnel's `ConnectionResult` keeps it.

Opened (flag "-") when the connection is known, closed exactly once with the flag that says
why it ended (a failure flag also counts it as failed); the byte counters keep the labels it
opened with.
Keeping the two moments apart is what makes a refused connection show as opened *and* closed
with `DENY`, as on a real cluster, instead of not at all.
"""

from __future__ import annotations

import ssl
from enum import StrEnum

from trustusbank.mesh.hbone.h2 import HboneRefused
from trustusbank.mesh.ztunnel.metrics import ZtunnelMetrics


class ResponseFlag(StrEnum):
    """ztunnel's `ResponseFlags`, as the `response_flags` label writes them."""

    NONE = "-"
    DENY = "DENY"  # refused by AuthorizationPolicy, at connect time or after a policy change
    CONNECT = "CONNECT"  # no upstream connection: unreachable, or the peer answered the CONNECT non-200
    TLS_FAILURE = "TLS_FAILURE"


def flag_for(error: BaseException) -> ResponseFlag:
    """How ztunnel classifies a failed outbound connection: a refused CONNECT is a plain
    connection failure to the source (only the destination knows it was policy)."""
    if isinstance(error, HboneRefused):
        return ResponseFlag.CONNECT
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ssl.SSLError):
            return ResponseFlag.TLS_FAILURE
        cause = cause.__cause__
    return ResponseFlag.CONNECT


def copy_flag(error: Exception) -> ResponseFlag:
    """A connection that failed while its bytes were being copied: a peer's reset or broken
    pipe is an ordinary end to ztunnel ("-"), any other error a connection failure."""
    return ResponseFlag.NONE if isinstance(error, ConnectionError) else flag_for(error)


class ConnectionResult:
    """Use as a context manager: a connection left unrecorded (cancelled on the way) is closed
    as it stands on exit, as ztunnel's `Drop` does."""

    def __init__(self, metrics: ZtunnelMetrics, labels: dict[str, str]) -> None:
        self.metrics = metrics
        self.labels = labels
        self.recorded = False
        metrics.opened.labels(**labels).inc()
        # The byte series exist from the open on (ztunnel creates them then), at zero until the close.
        self._received = metrics.received.labels(**labels)
        self._sent = metrics.sent.labels(**labels)

    def __enter__(self) -> ConnectionResult:
        return self

    def __exit__(self, *_: object) -> None:
        self.record()

    def record(self, flag: ResponseFlag = ResponseFlag.NONE, *, received: int = 0, sent: int = 0) -> None:
        """The connection ended. `received` is what went from the connection's initiator towards
        its destination, `sent` the way back (Istio's request/response sense, for either reporter).
        A second call changes nothing: one connection closes once."""
        if self.recorded:
            return
        self.recorded = True
        self._received.inc(received)
        self._sent.inc(sent)
        closed = {**self.labels, "response_flags": flag.value}
        self.metrics.closed.labels(**closed).inc()
        if flag is not ResponseFlag.NONE:
            self.metrics.failed.labels(**closed).inc()
