"""Read the Prometheus text exposition format, keeping only the metrics the rules use.

A full parse of every scrape is the evaluator's main cost (a node proxy exposes
hundreds of series, a waypoint's histograms more), so lines are filtered by
metric name before their labels are read.
"""

from __future__ import annotations

from collections.abc import Iterator

from trustusbank.errors import ProtocolError

_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class ExpositionError(ProtocolError, ValueError):
    """A sample line that is not in the text format."""


def samples(text: str, wanted: set[str]) -> Iterator[tuple[str, dict[str, str], float]]:
    """(metric name, labels, value) for each sample line whose name is in `wanted`."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        end = 0
        while end < len(line) and line[end] not in "{ \t":
            end += 1
        name = line[:end]
        if name not in wanted:
            continue
        try:
            labels, rest = _labels(line, end)
            value = float(rest.split()[0])
        except (ExpositionError, IndexError, ValueError) as exc:
            raise ExpositionError(f"line {number}: {exc}: {line[:120]!r}") from None
        yield name, labels, value


def _labels(line: str, i: int) -> tuple[dict[str, str], str]:
    labels: dict[str, str] = {}
    if i >= len(line) or line[i] != "{":
        return labels, line[i:]
    i += 1
    while True:
        while i < len(line) and line[i] in " \t,":
            i += 1
        if i < len(line) and line[i] == "}":
            return labels, line[i + 1 :]
        eq = line.find("=", i)
        if eq < 0 or eq + 1 >= len(line) or line[eq + 1] != '"':
            raise ExpositionError("malformed label")
        name = line[i:eq].strip()
        i, value = eq + 2, []
        while True:
            if i >= len(line):
                raise ExpositionError("unterminated label value")
            char = line[i]
            if char == "\\":
                if i + 1 >= len(line) or line[i + 1] not in _ESCAPES:
                    raise ExpositionError("bad escape in label value")
                value.append(_ESCAPES[line[i + 1]])
                i += 2
            elif char == '"':
                i += 1
                break
            else:
                value.append(char)
                i += 1
        labels[name] = "".join(value)
