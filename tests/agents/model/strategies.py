"""Hypothesis strategies for neutral requests and replies that a provider wire can carry."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

from trustusbank.agents.model.types import Message, ModelReply, ModelRequest, ToolCall, ToolSpec, Usage
from trustusbank.agents.model.wire.openai import TOOL_ERROR_PREFIX

texts = st.text(max_size=40)
# A successful tool result that happens to start with the error marker would read back as an error.
tool_texts = texts.filter(lambda t: not t.startswith(TOOL_ERROR_PREFIX))
names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,15}", fullmatch=True)
suffixes = st.text(alphabet=string.ascii_letters + string.digits, max_size=8)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)


@st.composite
def tool_calls(draw: st.DrawFn, prefix: str, n: int) -> tuple[ToolCall, ...]:
    """`n` calls whose ids are unique (`prefix` keeps them apart from other turns' calls)."""
    return tuple(
        ToolCall(id=f"{prefix}_{i}_{draw(suffixes)}", name=draw(names), arguments=draw(json_objects))
        for i in range(n)
    )


@st.composite
def conversations(draw: st.DrawFn) -> tuple[Message, ...]:
    """User, assistant (with 0-3 tool calls) and runs of tool results, in any order."""
    messages: list[Message] = []
    for turn in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["user", "assistant", "tools"]))
        if kind == "user":
            messages.append(Message(role="user", text=draw(texts)))
        elif kind == "assistant":
            calls = draw(tool_calls(f"call{turn}", draw(st.integers(0, 3))))
            messages.append(Message(role="assistant", text=draw(texts), tool_calls=calls))
        else:
            earlier = [c for m in messages for c in m.tool_calls]
            for i in range(draw(st.integers(1, 3))):
                answered: ToolCall | None = None
                answers_a_call = draw(st.booleans())
                if earlier and answers_a_call:
                    answered = draw(st.sampled_from(earlier))
                messages.append(
                    Message(
                        role="tool",
                        text=draw(tool_texts),
                        # a result for a call we never saw keeps its id and has no name to recover
                        tool_call_id=answered.id if answered else f"orphan{turn}_{i}",
                        tool_name=answered.name if answered else None,
                        is_error=draw(st.booleans()),
                    )
                )
    return tuple(messages)


tool_specs = st.builds(ToolSpec, name=names, description=texts, input_schema=json_objects)

requests = st.builds(
    ModelRequest,
    model=st.text(min_size=1, max_size=20),
    system=texts,
    messages=conversations(),
    tools=st.lists(tool_specs, max_size=3).map(tuple),
    max_tokens=st.integers(1, 200_000),
    temperature=st.none() | st.floats(0, 2),
)


@st.composite
def replies(draw: st.DrawFn) -> ModelReply:
    calls = draw(tool_calls("toolu", draw(st.integers(0, 3))))
    stop: Any = draw(st.sampled_from(["tool_use", "max_tokens"] if calls else ["end_turn", "max_tokens"]))
    return ModelReply(
        text=draw(texts),
        tool_calls=calls,
        model=draw(st.text(max_size=20)),
        stop_reason=stop,
        usage=Usage(input_tokens=draw(st.integers(0, 10**6)), output_tokens=draw(st.integers(0, 10**6))),
        response_id=draw(st.text(max_size=20)),
    )
