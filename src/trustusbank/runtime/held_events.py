"""Runtime events the disk will not take yet: held in order, written once it has room.

The supervisor records a crash, a restart, a readiness as it happens. On a full state disk
the write fails; raising would end the task that restarts the pod, and dropping would leave
a gap in the evidence. So the event is held, in order, and the next event or the status tick
writes what is held first. Held events are bounded: past the limit the oldest is forgotten
and counted, and the count is itself written as an event once there is room.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

from trustusbank.cluster.layout import ClusterFiles

log = logging.getLogger("trustusbank.runtime")

HELD_LIMIT = 10_000


class HeldEvents:
    def __init__(self, files: ClusterFiles, limit: int = HELD_LIMIT) -> None:
        self.files = files
        self.limit = limit
        self.held: deque[dict[str, Any]] = deque()
        self.dropped = 0  # forgotten since the last write that succeeded
        self.last_error: OSError | None = None

    def record(self, kind: str, fields: dict[str, object]) -> dict[str, Any]:
        """The event as it happened; written now, or held (and said in the log) if the disk refuses."""
        entry = {"time": time.time(), "event": kind, **fields}
        if len(self.held) >= self.limit:
            self.held.popleft()
            self.dropped += 1
        self.held.append(entry)
        self.flush()
        return entry

    def flush(self) -> bool:
        """Write what is held, oldest first (a count of any forgotten before them); True once done."""
        try:
            if self.dropped:
                self.files.write_event(
                    {"time": time.time(), "event": "events-dropped", "count": self.dropped}
                )
                self.dropped = 0
            while self.held:
                self.files.write_event(self.held[0])
                self.held.popleft()
        except OSError as exc:
            if self.last_error is None:  # said once per outage, not once per event
                log.error("runtime events held in memory, not written: %s", exc)
            self.last_error = exc
            return False
        if self.last_error is not None:
            log.warning("runtime events written again")
            self.last_error = None
        return True
