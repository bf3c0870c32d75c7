"""Which values a caller read from which backend: the memory behind the data-flow rule.

The rug pull's goal is to move the profile read from account-mcp into an argument of the
converter. The guard remembers, per caller and MCP session, the strings each backend's
tool results gave it, and refuses a call to a *different* backend whose arguments carry one
(equal or contained, compared without case and whitespace). A value the caller sent before
it read it (the customer ID it asked about) is its own and never tainted; sending a value
later does not clear its taint, or one call to the same backend would launder it. Numbers
and short strings are too common to mean anything and are ignored.

Memory is bounded, since callers and sessions are unbounded: an LRU of parties, an LRU of
values per party, and a TTL. What is dropped is counted (`on_drop`), so an operator sees
when the bounds are too tight for the traffic.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

MIN_LENGTH = 6

Party = tuple[str, str]


def strings(value: Any, expand_json: bool = False) -> Iterator[str]:
    """Every string value in a JSON value (not the keys), depth first.

    With `expand_json`, a string that is itself a JSON object or array (a tool result's text
    content is usually its structured output, serialised) yields the strings inside it too."""
    if isinstance(value, str):
        yield value
        if expand_json and value.lstrip()[:1] in ("{", "["):
            try:
                inner = json.loads(value)
            except ValueError:
                return
            yield from strings(inner, expand_json)
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v, expand_json)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v, expand_json)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def normal(text: str) -> str:
    return "".join(text.split()).casefold()


def meaningful(text: str) -> str | None:
    """The normalised form of a value worth remembering, or None for numbers and short strings."""
    if _is_number(text.strip()):
        return None
    norm = normal(text)
    return norm if len(norm) >= MIN_LENGTH else None


@dataclass
class _Read:
    backend: str
    expires: float


@dataclass
class _Memory:
    reads: OrderedDict[str, _Read] = field(default_factory=OrderedDict)
    sent: OrderedDict[str, float] = field(default_factory=OrderedDict)


@dataclass(frozen=True)
class Leak:
    value: str
    """The argument string that carries it."""
    source: str
    """The backend the value was read from."""


class TaintMemory:
    def __init__(
        self,
        max_parties: int = 1024,
        max_values: int = 512,
        ttl: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        on_drop: Callable[[str, int], None] = lambda reason, n: None,
    ) -> None:
        self.max_parties, self.max_values, self.ttl = max_parties, max_values, ttl
        self._clock, self._on_drop = clock, on_drop
        self._parties: OrderedDict[Party, _Memory] = OrderedDict()
        self._lock = threading.Lock()

    def sent(self, party: Party, arguments: Any) -> None:
        """Values `party` sent itself: they are its own if it reads them back later."""
        now = self._clock()
        with self._lock:
            memory = self._memory(party)
            for text in strings(arguments):
                norm = meaningful(text)
                if norm is not None:
                    memory.sent[norm] = now + self.ttl
                    memory.sent.move_to_end(norm)
            self._trim(memory.sent, "sent_evicted")

    def read(self, party: Party, backend: str, result: Any) -> None:
        """Values `party` was given by `backend`: tainted for every other backend."""
        now = self._clock()
        with self._lock:
            memory = self._memory(party)
            self._expire(memory, now)
            for text in strings(result, expand_json=True):
                norm = meaningful(text)
                if norm is None or norm in memory.sent:
                    continue
                memory.reads[norm] = _Read(backend, now + self.ttl)
                memory.reads.move_to_end(norm)
            self._trim(memory.reads, "value_evicted")

    def leak(self, party: Party, backend: str, arguments: Any) -> Leak | None:
        """The first argument string carrying a value this party read from another backend."""
        now = self._clock()
        with self._lock:
            memory = self._parties.get(party)
            if memory is None:
                return None
            self._parties.move_to_end(party)
            self._expire(memory, now)
            foreign = [(v, r.backend) for v, r in memory.reads.items() if r.backend != backend]
            for text in strings(arguments):
                norm = normal(text)
                for value, source in foreign:
                    if value in norm:
                        return Leak(text, source)
        return None

    def _memory(self, party: Party) -> _Memory:
        memory = self._parties.get(party)
        if memory is None:
            memory = self._parties[party] = _Memory()
            if len(self._parties) > self.max_parties:
                self._parties.popitem(last=False)
                self._on_drop("party_evicted", 1)
        self._parties.move_to_end(party)
        return memory

    def _trim(self, values: OrderedDict[str, Any], reason: str) -> None:
        dropped = 0
        while len(values) > self.max_values:
            values.popitem(last=False)
            dropped += 1
        if dropped:
            self._on_drop(reason, dropped)

    def _expire(self, memory: _Memory, now: float) -> None:
        stale = [v for v, r in memory.reads.items() if r.expires <= now]
        for value in stale:
            del memory.reads[value]
        old = [v for v, expires in memory.sent.items() if expires <= now]
        for value in old:
            del memory.sent[value]
        if stale:
            self._on_drop("expired", len(stale))
