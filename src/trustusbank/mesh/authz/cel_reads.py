"""Which fields of a variable a rule can read, from its source: what a remembered decision keys on.

A decision may be remembered only under a key that holds everything the rule could read, so the
analysis errs towards "all of it": a field counts only where the variable is written
`root.field` (not a macro or method call such as `root.exists(...)`, not `root[...]`, not the
bare variable passed to a function, not a comprehension variable of the same name). Any other
use of the variable returns None, meaning the rule may read all of it. `default()` and
`coalesce()` arguments are plain source here, so what they read counts too. Headers are read by
name only where the name is a plain literal (`headers_read`); the waypoint's header maps have
lower-case names and the rules' literal names are lower-cased (`cel_functions.rewrite`).
"""

from __future__ import annotations

from collections.abc import Iterable

from trustusbank.mesh.authz.cel_functions import Token, tokens


def fields_read(expressions: Iterable[str], root: str) -> frozenset[str] | None:
    """The top-level fields of variable `root` the expressions read, or None if possibly all."""
    fields: set[str] = set()
    for expression in expressions:
        parsed = tokens(expression)
        for index, token in enumerate(parsed):
            if token.kind != "ident" or token.text != root:
                continue
            if index and parsed[index - 1].text == ".":
                continue  # a field of something else (`x.source`), not the variable
            rest = parsed[index + 1 : index + 4]
            if len(rest) < 2 or rest[0].text != "." or rest[1].kind != "ident":
                return None
            if len(rest) == 3 and rest[2].text == "(":
                return None  # `root.exists(...)`: a macro or method over the whole value
            fields.add(rest[1].text)
    return frozenset(fields)


def headers_read(expressions: Iterable[str], root: str = "request") -> frozenset[str] | None:
    """The header names (lower case) the expressions read from `root.headers`, or None if maybe all.

    Counted: `root.headers["name"]`, `root.headers.name` and `"name" in root.headers`, with a plain
    literal name; a computed name, an escape, or the map used whole (`size(...)`, a macro) is
    None, and so is any use of `root` that `fields_read` cannot name (`toJson(root)`).
    """
    expressions = list(expressions)
    if fields_read(expressions, root) is None:
        return None
    names: set[str] = set()
    for expression in expressions:
        parsed = tokens(expression)
        for index, token in enumerate(parsed):
            if token.kind != "ident" or token.text != root or (index and parsed[index - 1].text == "."):
                continue
            if [t.text for t in parsed[index + 1 : index + 3]] != [".", "headers"]:
                continue
            name = _literal_read(parsed, index)
            if name is None:
                return None
            names.add(name.lower())
    return frozenset(names)


def _literal_read(parsed: list[Token], index: int) -> str | None:
    """The name read at `root.headers` starting at `index`, if it is a plain literal."""
    after = parsed[index + 3 : index + 6]
    texts = [t.text for t in after]
    if len(after) >= 3 and texts[0] == "[" and texts[2] == "]" and after[1].kind == "string":
        return _plain(after[1].text)
    if len(after) >= 2 and texts[0] == "." and after[1].kind == "ident":
        return None if len(after) == 3 and texts[2] == "(" else after[1].text
    before = parsed[index - 2 : index] if index >= 2 else []
    used_whole = not after or texts[0] not in (".", "[")
    if len(before) == 2 and before[1].text == "in" and before[0].kind == "string" and used_whole:
        return _plain(before[0].text)
    return None


def _plain(literal: str) -> str | None:
    """A quoted string's text, if it is plainly quoted (no prefix, escape or triple quotes)."""
    if len(literal) >= 2 and literal[0] == literal[-1] and literal[0] in "\"'" and "\\" not in literal:
        inner = literal[1:-1]
        return None if literal[0] in inner or literal.startswith(('"""', "'''")) else inner
    return None
