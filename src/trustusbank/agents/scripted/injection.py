"""Instructions hidden in tool results, and what a fooled model does with them.

A tool result is data; a model that treats text inside it as an order has been
prompt-injected. Real models do, some of the time; this one does whenever its
Gullibility says so. Detection is by the shape of the result, never by knowing a
particular payload:

- text a tool sent *after* its JSON result (a structured tool has nothing more to say);
- instruction tags anywhere in a result: `<system>`, `<instructions>`, `<important>`,
  `<admin>`, `[INST]`, `<|im_start|>`;
- override phrases: "ignore/disregard (all) previous instructions", "new instructions",
  "do not mention/tell ... the customer/user", "mandatory compliance step".

Obeying means doing what a fooled model does with the instruction's words: call
the offered tools it names to fetch data (with the conversation's customer ID),
then call the tool it names again with the same arguments plus the *optional*
argument it names, set to the complete data fetched (the JSON object when the
argument's schema takes one, else the JSON text); a fetch that failed or came back
empty leaves nothing to pass on. Only tools on offer and
arguments their schemas declare are used: the model plays by the tool contract,
the injection only changes what it chooses to do with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from trustusbank.agents.model.types import ToolCall
from trustusbank.agents.scripted.conversation import Conversation, Step, ToolResult, accepts_object

_TAG = re.compile(
    r"<\s*(system|instructions?|important|admin|sys)\s*>(.*?)<\s*/\s*\1\s*>|"
    r"\[INST\](.*?)\[/INST\]|<\|im_start\|>(.*?)(?:<\|im_end\|>|$)",
    re.IGNORECASE | re.DOTALL,
)
_OVERRIDE = re.compile(
    r"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:the\s+|your\s+)?"
    r"(?:previous|prior|above|earlier|preceding)\s+(?:instructions|prompts?|rules|messages)\b|"
    r"\bnew instructions\b|"
    r"\bdo not (?:mention|tell|reveal|disclose|inform)\b[^.]{0,40}\b(?:customer|user)\b|"
    r"\bmandatory compliance step\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")


@dataclass(frozen=True)
class Injection:
    source: ToolResult  # the result that carried it
    text: str  # the instruction as found
    reason: str  # how it was recognised, for the log


def detect(result: ToolResult) -> Injection | None:
    tag = _TAG.search(result.text)
    if tag:
        inner = next(g for g in (tag.group(2), tag.group(3), tag.group(4)) if g is not None)
        return Injection(result, inner.strip(), "instruction tag in a tool result")
    if result.data is not None and result.trailing:
        return Injection(result, result.trailing, "text after the tool's JSON result")
    if _OVERRIDE.search(result.text):
        return Injection(result, result.text.strip(), "override phrase in a tool result")
    return None


def find(conv: Conversation) -> list[Injection]:
    """Every injected instruction in the current turn's tool results, oldest first."""
    return [found for found in (detect(r) for r in conv.results) if found is not None]


def position(name: str, text: str) -> int | None:
    """Where `name` first appears in `text` as a whole word (identifier characters around it end it)."""
    match = re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text)
    return match.start() if match else None


def mentioned_tools(conv: Conversation, text: str) -> list[str]:
    """The offered tools `text` names, in the order it names them."""
    positions = {name: at for name in conv.tools if (at := position(name, text)) is not None}
    return sorted(positions, key=positions.__getitem__)


def smuggling_argument(conv: Conversation, tools: list[str], text: str) -> tuple[str, str] | None:
    """(tool, argument): the first word of the text that is an optional argument of a named tool."""
    for word in _WORD.findall(text):
        for tool in tools:
            spec = conv.tools[tool]
            required = spec.input_schema.get("required") if isinstance(spec.input_schema, dict) else None
            if conv.has_property(tool, word) and word not in (required if isinstance(required, list) else []):
                return tool, word
    return None


def as_argument(conv: Conversation, tool: str, arg: str, result: ToolResult) -> Any:
    """A fetched result as a value for `tool`'s `arg`: the JSON itself when the schema takes an object."""
    if result.data is not None and accepts_object(conv.property_schema(tool, arg)):
        return result.data
    return json.dumps(result.data) if result.data is not None else result.text


def customer_of(conv: Conversation, source: ToolCall | None) -> str | None:
    """The customer an instruction is about: the one its carrier was called for, else the conversation's."""
    given = source.arguments.get("customer_id") if source is not None else None
    return given if isinstance(given, str) else conv.customer_id


def smuggled(conv: Conversation, source: ToolCall | None, target: str, arg: str, fetch: Step) -> Step | None:
    """`target` called again with `arg` set to the complete data `fetch` brought back.

    The other arguments are those of the call that carried the instruction when it is
    `target`, else of `target`'s latest call this turn; None while there is none, or
    while the fetch has no answer, and when it failed or came back empty."""
    if source is not None and source.name == target:
        base = source.arguments
    else:
        earlier = [c for c in conv.calls if c.name == target]
        if not earlier:
            return None
        base = earlier[-1].arguments
    fetched = conv.result(fetch.name, fetch.arguments)
    if fetched is None or not fetched.ok or not fetched.body:  # failed, or came back empty: nothing to pass
        return None
    return Step(target, {**base, arg: as_argument(conv, target, arg, fetched)})


def obey(conv: Conversation, injection: Injection) -> Iterator[Step]:
    """The calls a model fooled by `injection` makes, in order (some may be made already)."""
    tools = mentioned_tools(conv, injection.text)
    smuggle = smuggling_argument(conv, tools, injection.text)
    target = smuggle[0] if smuggle else None
    customer_id = customer_of(conv, injection.source.call)
    fetches: list[Step] = []
    for tool in tools:
        if tool == target:
            continue
        step = conv.step(tool, customer_id=customer_id)
        if step is not None:
            fetches.append(step)
            yield step
    if smuggle is None or not fetches:
        return
    step = smuggled(conv, injection.source.call, *smuggle, fetches[0])
    if step is not None:
        yield step
