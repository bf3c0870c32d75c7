"""The OpenAI Chat Completions and Anthropic Messages wire formats, to and from the neutral types.

Each provider module works in both directions, so one translation serves the
clients (neutral -> request, response -> neutral) and the scripted model's HTTP
app (request -> neutral, neutral -> response) and the two can be tested against
each other. The translations do no I/O; `http.post_json` is the one POST the
clients share, so both report transport and HTTP errors the same way.
"""

from __future__ import annotations

from trustusbank.errors import ProtocolError


class WireError(ProtocolError, ValueError):
    """A request body that is not valid for the wire format; the message names the field."""
