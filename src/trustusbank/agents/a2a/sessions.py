"""Conversation memory per A2A context: what the model is shown of earlier turns.

A follow-up ("and in euros?") only makes sense with the turns before it, so each
context_id keeps its exchanges, whole: a user message, the tool calls it caused and
the answer. Memory is bounded both ways (least recently used contexts are dropped,
and a context keeps only its latest turns) because a long-running agent must not
grow without limit; whole exchanges are dropped so a tool result never outlives the
call that asked for it. Each drop is reported (`dropped("conversation")` or
`dropped("turn")`), so a memory that is forgetting shows in the agent's metrics.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from trustusbank.agents.model.types import Message

MAX_SESSIONS = 256  # conversations remembered, the least recently used forgotten first
MAX_TURNS = 20  # exchanges remembered per conversation, the oldest forgotten first
CONVERSATION = "conversation"
TURN = "turn"


class SessionStore:
    def __init__(
        self,
        max_sessions: int = MAX_SESSIONS,
        max_turns: int = MAX_TURNS,
        dropped: Callable[[str], None] = lambda _: None,
    ) -> None:
        if max_sessions < 1 or max_turns < 1:
            raise ValueError("max_sessions and max_turns must be at least 1")
        self.max_sessions = max_sessions
        self.max_turns = max_turns
        self._dropped = dropped
        self._sessions: OrderedDict[str, list[tuple[Message, ...]]] = OrderedDict()
        self._lock = threading.Lock()

    def history(self, context_id: str) -> tuple[Message, ...]:
        """Every message of the context's kept turns, oldest first."""
        with self._lock:
            turns = self._sessions.get(context_id)
            if turns is None:
                return ()
            self._sessions.move_to_end(context_id)
            return tuple(message for turn in turns for message in turn)

    def record(self, context_id: str, turn: tuple[Message, ...]) -> None:
        """Keep one finished exchange (user message first)."""
        forgotten: list[str] = []
        with self._lock:
            turns = self._sessions.setdefault(context_id, [])
            self._sessions.move_to_end(context_id)
            turns.append(turn)
            forgotten += [TURN] * max(0, len(turns) - self.max_turns)
            del turns[: -self.max_turns]
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
                forgotten.append(CONVERSATION)
        for what in forgotten:  # outside the lock: the callback may take its own
            self._dropped(what)

    def __len__(self) -> int:
        return len(self._sessions)
