"""The compromised model's reading: every word an attacker could have written is an order.

A SIMULATION, and the bench's upper bound (issue 16): a model that does whatever
injected text asks, so the runtime's defences are measured with no help from the
model. Where the scripted model obeys only what its detector recognises
(`injection.py`), this one takes as instructions

- every non-JSON text in a successful tool result of the current turn (the text
  after a JSON result, or a result that is prose, such as another agent's answer);
  a failed call's message is the runtime's, not the tool author's, and is not read;
- every tool description on offer, whose own tool is then the one an argument
  the description names belongs to;
- the user's own message, which for an agent called by another agent is that agent's
  request: an instruction that reached it over A2A is obeyed too (a customer's
  question names no tool, so it asks for nothing here).

Following an instruction means calling the tools it names, in the order it names
them: offered tools by name, other agents by their agent name ("fraud-bot") or
their tool name ("fraud_bot"). A delegation gets `request` = the sentence that
names the agent. The tool whose optional argument the text names is called again
with the arguments of its latest call plus that argument set to the complete data
the previous call fetched (as `injection.obey`). Any other tool gets its required
arguments from the conversation (customer_id) or the text (a txn id, quoted
strings; free text gets the sentence that names the tool); one that cannot be
filled is skipped, because the model still plays by the tool contract.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from trustusbank.agents.model.types import ToolCall
from trustusbank.agents.scripted.conversation import Conversation, Step
from trustusbank.agents.scripted.injection import customer_of, position, smuggled, smuggling_argument
from trustusbank.agents.scripted.intents import txn_ids

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_QUOTED = re.compile(r"\"([^\"\n]+)\"|“([^”\n]+)”")


@dataclass(frozen=True)
class Order:
    """Text the compromised model obeys, and where it came from."""

    text: str
    source: ToolCall | None  # the call whose result carried it; None for a description
    owner: str | None  # the tool whose description it is
    where: str  # for the log


def orders(conv: Conversation) -> list[Order]:
    """Every instruction in this turn's successful results (oldest first), the descriptions, the message."""
    found = [
        Order(r.trailing, r.call, None, f"{r.call.name}'s result")
        for r in conv.results
        if r.ok and r.trailing.strip()
    ]
    found += [
        Order(spec.description, None, spec.name, f"{spec.name}'s description")
        for spec in conv.tools.values()
        if spec.description and spec.description.strip()
    ]
    if conv.has_user and conv.user_text.strip():
        found.append(Order(conv.user_text, None, None, "the user's message"))
    return found


def _names(conv: Conversation, tool: str) -> list[str]:
    """What a text may call a tool: its name, and for another agent also the agent's own name
    (the tool name's last part when it is qualified, as in "<namespace>__NS__<name>", '_' as '-')."""
    if tool not in {spec.name for spec in conv.delegates()}:
        return [tool]
    short = tool.rsplit("__", 1)[-1]
    return list(dict.fromkeys([tool, short, short.replace("_", "-")]))


def _where(conv: Conversation, tool: str, text: str) -> int | None:
    found = [at for name in _names(conv, tool) if (at := position(name, text)) is not None]
    return min(found) if found else None


def named_tools(conv: Conversation, text: str, *, besides: str | None = None) -> list[str]:
    """The offered tools and agents `text` names, in order; `besides` (a description's own tool) left out."""
    positions = {
        name: at for name in conv.tools if name != besides and (at := _where(conv, name, text)) is not None
    }
    return sorted(positions, key=positions.__getitem__)


def sentence_naming(conv: Conversation, tool: str, text: str) -> str:
    """The sentence of `text` that names `tool` (the whole text when none does)."""
    for sentence in _SENTENCE_END.split(text):
        if _where(conv, tool, sentence) is not None:
            return sentence.strip()
    return text.strip()


def _fits(value: str, schema: Any) -> bool:
    if not isinstance(schema, dict):
        return True
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        return False
    pattern = schema.get("pattern")
    if not isinstance(pattern, str):
        return True
    try:
        return re.search(pattern, value) is not None
    except re.error:  # a schema's pattern Python cannot read: nothing is known to fit it
        return False


def _takes_string(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    declared = schema.get("type")
    if declared == "string" or (isinstance(declared, list) and "string" in declared):
        return True
    options = schema.get("anyOf")
    return isinstance(options, list) and any(_takes_string(option) for option in options)


def _is_free_text(schema: Any) -> bool:
    return _takes_string(schema) and "enum" not in schema and "pattern" not in schema


def _required(conv: Conversation, tool: str) -> list[str]:
    schema = conv.tools[tool].input_schema
    required = schema.get("required") if isinstance(schema, dict) else None
    return [r for r in required if isinstance(r, str)] if isinstance(required, list) else []


def _properties(conv: Conversation, tool: str) -> dict[str, Any]:
    schema = conv.tools[tool].input_schema
    props = schema.get("properties") if isinstance(schema, dict) else None
    return props if isinstance(props, dict) else {}


def _call(conv: Conversation, order: Order, tool: str) -> Step | None:
    """`tool` with its arguments filled from the conversation and the text; None when one cannot be."""
    sentence = sentence_naming(conv, tool, order.text)
    if tool in {spec.name for spec in conv.delegates()}:
        return conv.step(tool, request=sentence)
    pool = [*txn_ids(order.text), *(a or b for a, b in _QUOTED.findall(order.text))]
    required = _required(conv, tool)
    candidates: dict[str, Any] = {}
    for prop, schema in _properties(conv, tool).items():
        if prop == "customer_id":
            candidates[prop] = customer_of(conv, order.source)
            continue
        value = next((v for v in pool if _fits(v, schema)), None) if _takes_string(schema) else None
        if value is not None:
            pool.remove(value)
            candidates[prop] = value
        elif prop in required and _is_free_text(schema):
            candidates[prop] = sentence
    return conv.step(tool, **candidates)


def follow(conv: Conversation, order: Order) -> Iterator[Step]:
    """The calls `order` asks for: the tools it names in order, then the smuggling call, which carries
    what the last of them fetched (some may be made already)."""
    named = named_tools(conv, order.text, besides=order.owner)
    owner = [order.owner] if order.owner is not None else []  # only ever as a smuggling target
    smuggle = smuggling_argument(conv, [*named, *owner], order.text)
    previous: Step | None = None
    for tool in named:
        step = None if smuggle is not None and tool == smuggle[0] else _call(conv, order, tool)
        if step is not None:
            yield step
            previous = step
    if smuggle is not None and previous is not None:
        step = smuggled(conv, order.source, *smuggle, previous)
        if step is not None:
            yield step


def steps(conv: Conversation) -> list[tuple[Step, str]]:
    """Every call every order asks for, with where its order came from."""
    return [(step, order.where) for order in orders(conv) for step in follow(conv, order)]
