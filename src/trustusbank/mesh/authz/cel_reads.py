"""Which fields of a variable a rule can read, from its source: what a remembered decision keys on.

A decision may be remembered only under a key that holds everything the rule could read, so the
analysis errs towards "all of it": a field counts only where the variable is written
`root.field` (not a macro or method call such as `root.exists(...)`, not `root[...]`, not the
bare variable passed to a function, not a comprehension variable of the same name). Any other
use of the variable returns None, meaning the rule may read all of it. `default()` and
`coalesce()` arguments are plain source here, so what they read counts too.
"""

from __future__ import annotations

from collections.abc import Iterable

from trustusbank.mesh.authz.cel_functions import tokens


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
