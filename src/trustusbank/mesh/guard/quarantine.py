"""Instruction-like text in tool results, and the placeholder that replaces it.

A tool result is data for the model, yet a compromised server can write text that reads
as orders to it (the rug pull's `<system>` block, AgentDojo's injection wordings). No
honest bank result (balances, transactions with merchant names, a profile, a conversion)
addresses the model, tags itself as a system message or asks to ignore instructions, so
such text is cut out before the model reads it; the original goes to the evidence log.
The patterns look for how injections are phrased, not for what they ask, so they do not
depend on the attack's goal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from trustusbank.mesh.guard.pins import sha256

# (name, pattern): every one is case-insensitive and searched anywhere in the text.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        # Tags that pretend to be the prompt's own structure.
        (
            "instruction-tag",
            r"<\s*/?\s*(system|information|important|instructions?|admin|assistant)\b[^>]{0,40}>",
        ),
        ("instruction-tag", r"\[/?INST\]|<<\s*/?SYS\s*>>|<\|im_(start|end)\|>"),
        ("system-message", r"#{2,}\s*\(?\s*system[\s_-]*(message|prompt)\s*\)?"),
        ("todo", r"\bTODO\s*:"),
        ("important-bang", r"\bIMPORTANT\s*!{2,}"),
        # Addresses to the model as someone with a task.
        ("address", r"\bbefore\s+you\s+(can\s+)?(solve|complete|finish|do|answer)\s+the\s+task\b"),
        ("address", r"\b(the\s+)?task\s+(that\s+)?i\s+(gave|have\s+given)\s+you\b"),
        ("address", r"\bthis\s+is\s+an?\s+(important|urgent)\s+message\s+from\b"),
        (
            "address",
            r"\bdo\s+not\s+(mention|tell|reveal|disclose)\s+(this|it|that)\s+to\s+the\s+(user|customer)\b",
        ),
    )
)

# "ignore ... previous instructions", tolerant of the typos injections carry on purpose.
_OVERRIDE_VERBS = ("ignore", "disregard", "forget", "override", "bypass")
_OVERRIDE_OBJECTS = (
    "instructions",
    "instruction",
    "directions",
    "directives",
    "prompt",
    "rules",
    "guidelines",
)
_WORD = re.compile(r"[a-z]+")
_OVERRIDE_SPAN = 6  # words from the verb to its object


@dataclass(frozen=True)
class Finding:
    """One quarantined string: where it was in the result, why, and its evidence."""

    where: str
    pattern: str
    sha256: str
    length: int
    text: str


def _near(word: str, target: str) -> bool:
    """Within two edits (insertions, deletions, substitutions) of `target`."""
    if abs(len(word) - len(target)) > 2:
        return False
    previous = list(range(len(target) + 1))
    for i, a in enumerate(word, 1):
        current = [i]
        for j, b in enumerate(target, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a != b)))
        previous = current
    return previous[-1] <= 2


def _override(text: str) -> bool:
    words = _WORD.findall(text.lower())
    for i, word in enumerate(words):
        if any(_near(word, verb) for verb in _OVERRIDE_VERBS if len(word) >= 5):
            following = words[i + 1 : i + 1 + _OVERRIDE_SPAN]
            if any(_near(w, target) for w in following for target in _OVERRIDE_OBJECTS if len(w) >= 5):
                return True
    return False


def instruction_like(text: str) -> str | None:
    """The name of the first pattern `text` matches, or None for plain data."""
    for name, pattern in _PATTERNS:
        if pattern.search(text):
            return name
    return "override" if _override(text) else None


def placeholder(backend: str, tool: str, text: str) -> str:
    return (
        f"[quarantined by mcp-guard: instruction-like text in {backend}/{tool} result, "
        f"sha256:{sha256(text)[:12]}]"
    )


def quarantine_result(result: Any, backend: str, tool: str) -> tuple[Any, list[Finding]]:
    """`result` with every instruction-like string replaced (a copy), and what was replaced.

    Looks at each content item's text (and an embedded resource's text) and every string in
    structuredContent, which a model may read just as well."""
    findings: list[Finding] = []

    def clean(value: Any, where: str) -> Any:
        if isinstance(value, str):
            pattern = instruction_like(value)
            if pattern is None:
                return value
            findings.append(Finding(where, pattern, sha256(value), len(value), value))
            return placeholder(backend, tool, value)
        if isinstance(value, dict):
            return {k: clean(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    if not isinstance(result, dict):
        return result, findings
    cleaned = dict(result)
    content = result.get("content")
    if isinstance(content, list):
        cleaned["content"] = [_clean_item(item, f"content[{i}]", clean) for i, item in enumerate(content)]
    if "structuredContent" in result:
        cleaned["structuredContent"] = clean(result["structuredContent"], "structuredContent")
    return cleaned, findings


def _clean_item(item: Any, where: str, clean: Any) -> Any:
    if not isinstance(item, dict):
        return item
    cleaned = dict(item)
    if isinstance(item.get("text"), str):
        cleaned["text"] = clean(item["text"], f"{where}.text")
    resource = item.get("resource")
    if isinstance(resource, dict) and isinstance(resource.get("text"), str):
        cleaned["resource"] = {**resource, "text": clean(resource["text"], f"{where}.resource.text")}
    return cleaned
