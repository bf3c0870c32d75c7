"""The attributes a CEL expression reads, found by parsing it.

The `cel` package (common-expression-language) is the authority on whether an
expression parses, and its message is the one we report; but it only tells which
*root* variables an expression reads (`mcp`, not `mcp.method`), and the mistakes worth
catching are one level down. So this module also parses CEL itself, into a small
syntax tree, following the CEL grammar: string literals (quoted, raw, triple-quoted,
bytes) never produce references, `in [...]`, `&&`, `||`, `!` and the ternary are
operators, member access and index access with a literal key extend a path, and the
variables bound by comprehension macros (`exists(x, ...)`) and `cel.bind` are not
attributes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from trustusbank.errors import ConfigError

try:
    import cel as _cel
except ImportError:  # pragma: no cover - the linter still works with its own parser
    _cel = None  # type: ignore[assignment]


class CelSyntaxError(ConfigError, ValueError):
    """The expression does not parse; `message` is the parser's own words."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


# --- syntax tree -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: object
    pos: int


@dataclass(frozen=True)
class Ident:
    name: str
    pos: int


@dataclass(frozen=True)
class Select:
    operand: Node
    field: str
    pos: int


@dataclass(frozen=True)
class Index:
    operand: Node
    index: Node
    pos: int


@dataclass(frozen=True)
class Call:
    function: str
    target: Node | None
    args: tuple[Node, ...]
    pos: int


@dataclass(frozen=True)
class ListExpr:
    items: tuple[Node, ...]
    pos: int


@dataclass(frozen=True)
class MapExpr:
    entries: tuple[tuple[Node, Node], ...]
    pos: int


@dataclass(frozen=True)
class StructExpr:
    type_name: str
    fields: tuple[tuple[str, Node], ...]
    pos: int


@dataclass(frozen=True)
class Unary:
    op: str
    operand: Node
    pos: int


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True)
class Conditional:
    condition: Node
    then: Node
    otherwise: Node
    pos: int


Node = (
    Literal | Ident | Select | Index | Call | ListExpr | MapExpr | StructExpr | Unary | Binary | Conditional
)


# --- tokens ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # "ident", "number", "string", "op", "eof"
    text: str
    value: object
    pos: int


_OPERATORS = ("&&", "||", "==", "!=", "<=", ">=", "<", ">", "!", "+", "-", "*", "/", "%", "?", ":")
_PUNCT = ".,()[]{}"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F]+[uU]?|\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+(?:[eE][+-]?\d+)?|\d+[uU]?"
)
_STRING_PREFIX = re.compile(r"(?:[rR][bB]?|[bB][rR]?)?(?=['\"])")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "`": "`", "?": "?", "a": "\a"}


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif (prefix := _STRING_PREFIX.match(text, i)) is not None:
            token, i = _string(text, i, prefix.group())
            tokens.append(token)
        elif c.isdigit() or (c == "." and i + 1 < len(text) and text[i + 1].isdigit()):
            number = _NUMBER.match(text, i)
            assert number is not None  # a digit always starts a number
            raw = number.group()
            tokens.append(Token("number", raw, _number_value(raw), i))
            i = number.end()
        elif (ident := _IDENT.match(text, i)) is not None:
            word = ident.group()
            kind = "op" if word == "in" else "ident"
            tokens.append(Token(kind, word, word, i))
            i = ident.end()
        elif (op := next((o for o in _OPERATORS if text.startswith(o, i)), None)) is not None:
            tokens.append(Token("op", op, op, i))
            i += len(op)
        elif c in _PUNCT:
            tokens.append(Token("op", c, c, i))
            i += 1
        else:
            raise CelSyntaxError(f"unexpected character {c!r} at column {i + 1}", i)
    tokens.append(Token("eof", "", None, len(text)))
    return tokens


def _number_value(raw: str) -> object:
    body = raw.rstrip("uU")
    if body.lower().startswith("0x"):
        return int(body, 16)
    if any(ch in body for ch in ".eE"):
        return float(body)
    return int(body)


def _string(text: str, start: int, prefix: str) -> tuple[Token, int]:
    raw = "r" in prefix.lower()
    i = start + len(prefix)
    quote = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else text[i]
    i += len(quote)
    chars: list[str] = []
    while True:
        if i >= len(text) or (len(quote) == 1 and text[i] == "\n"):
            raise CelSyntaxError(f"unterminated string starting at column {start + 1}", start)
        if text.startswith(quote, i):
            i += len(quote)
            break
        if text[i] == "\\" and not raw:
            if i + 1 >= len(text):
                raise CelSyntaxError(f"unterminated string starting at column {start + 1}", start)
            chars.append(_ESCAPES.get(text[i + 1], "\\" + text[i + 1]))
            i += 2
            continue
        chars.append(text[i])
        i += 1
    value = "".join(chars)
    return Token("string", text[start:i], value.encode() if "b" in prefix.lower() else value, start), i


# --- parser ----------------------------------------------------------------------------------

_RELATIONS = ("<", "<=", ">=", ">", "==", "!=", "in")


class _Parser:
    """Recursive descent over the CEL grammar (cel-spec `doc/langdef.md`, "Syntax")."""

    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def accept(self, op: str) -> bool:
        if self.peek.kind == "op" and self.peek.text == op:
            self.i += 1
            return True
        return False

    def expect(self, op: str) -> Token:
        token = self.peek
        if not self.accept(op):
            found = token.text or "end of expression"
            raise CelSyntaxError(f"expected {op!r} at column {token.pos + 1}, found {found!r}", token.pos)
        return token

    def parse(self) -> Node:
        node = self.expr()
        if self.peek.kind != "eof":
            token = self.peek
            raise CelSyntaxError(f"unexpected {token.text!r} at column {token.pos + 1}", token.pos)
        return node

    def expr(self) -> Node:
        node = self.binary(0)
        if self.peek.kind == "op" and self.peek.text == "?":
            pos = self.take().pos
            then = self.binary(0)
            self.expect(":")
            return Conditional(node, then, self.expr(), pos)
        return node

    _LEVELS: tuple[tuple[str, ...], ...] = (("||",), ("&&",), _RELATIONS, ("+", "-"), ("*", "/", "%"))

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while self.peek.kind == "op" and self.peek.text in self._LEVELS[level]:
            token = self.take()
            node = Binary(token.text, node, self.binary(level + 1), token.pos)
        return node

    def unary(self) -> Node:
        if self.peek.kind == "op" and self.peek.text in ("!", "-"):
            token = self.take()
            return Unary(token.text, self.unary(), token.pos)
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        while True:
            if self.accept("."):
                optional = self.accept("?")  # `a.?b`, CEL's optional field selection
                name = self.identifier()
                if not optional and self.accept("("):
                    node = Call(name.text, node, self.arguments(")"), name.pos)
                else:
                    node = Select(node, name.text, name.pos)
            elif self.peek.kind == "op" and self.peek.text == "[":
                pos = self.take().pos
                self.accept("?")
                index = self.expr()
                self.expect("]")
                node = Index(node, index, pos)
            else:
                return node

    def identifier(self) -> Token:
        token = self.take()
        if token.kind != "ident":
            found = token.text or "end of expression"
            raise CelSyntaxError(
                f"expected a field name at column {token.pos + 1}, found {found!r}", token.pos
            )
        return token

    def arguments(self, close: str) -> tuple[Node, ...]:
        args: list[Node] = []
        if self.accept(close):
            return ()
        while True:
            args.append(self.expr())
            if self.accept(close):
                return tuple(args)
            self.expect(",")
            if self.accept(close):  # a trailing comma
                return tuple(args)

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "number":
            return Literal(token.value, token.pos)
        if token.kind == "string":
            return Literal(token.value, token.pos)
        if token.kind == "ident":
            return self.identifier_primary(token)
        if token.kind == "op":
            if token.text == "." and self.peek.kind == "ident":  # a leading-dot qualified name
                return self.identifier_primary(self.take())
            if token.text == "(":
                node = self.expr()
                self.expect(")")
                return node
            if token.text == "[":
                return ListExpr(self.arguments("]"), token.pos)
            if token.text == "{":
                return MapExpr(self.map_entries(), token.pos)
        found = token.text or "end of expression"
        raise CelSyntaxError(f"unexpected {found!r} at column {token.pos + 1}", token.pos)

    def identifier_primary(self, token: Token) -> Node:
        literal = {"true": True, "false": False, "null": None}
        if token.text in literal:
            return Literal(literal[token.text], token.pos)
        if self.accept("("):
            return Call(token.text, None, self.arguments(")"), token.pos)
        if self.peek.kind == "op" and self.peek.text == "{" and token.text[:1].isupper():
            self.take()
            return StructExpr(token.text, self.field_inits(), token.pos)
        return Ident(token.text, token.pos)

    def map_entries(self) -> tuple[tuple[Node, Node], ...]:
        entries: list[tuple[Node, Node]] = []
        while not self.accept("}"):
            key = self.expr()
            self.expect(":")
            entries.append((key, self.expr()))
            if not self.accept(","):
                self.expect("}")
                break
        return tuple(entries)

    def field_inits(self) -> tuple[tuple[str, Node], ...]:
        inits: list[tuple[str, Node]] = []
        while not self.accept("}"):
            name = self.identifier().text
            self.expect(":")
            inits.append((name, self.expr()))
            if not self.accept(","):
                self.expect("}")
                break
        return tuple(inits)


# --- references ------------------------------------------------------------------------------

# Macros whose first argument (and, for the two-variable forms, second) names a bound variable.
MACROS = frozenset({"all", "exists", "exists_one", "existsOne", "map", "filter", "sortBy"})
TWO_VARIABLE_MACROS = frozenset({"all", "exists", "exists_one", "existsOne", "transformList", "transformMap"})
# Type names are identifiers in CEL, not attributes (`type(x) == string`).
TYPE_NAMES = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type", "dyn"}
)


@dataclass(frozen=True)
class Reference:
    """One attribute read: its path (`("mcp", "tool", "name")`), where it starts, and whether
    it is only tested for presence (`has(...)`), which yields false rather than an error."""

    path: tuple[str, ...]
    pos: int
    presence: bool = False

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


def static_path(node: Node) -> tuple[Ident, tuple[str, ...]] | None:
    """`a.b["c"].d` as (Ident a, ("b", "c", "d")); None when any step is not static."""
    segments: list[str] = []
    while True:
        if isinstance(node, Select):
            segments.append(node.field)
            node = node.operand
        elif (
            isinstance(node, Index) and isinstance(node.index, Literal) and isinstance(node.index.value, str)
        ):
            segments.append(node.index.value)
            node = node.operand
        elif isinstance(node, Ident):
            return node, tuple(reversed(segments))
        else:
            return None


def _children(node: Node) -> Iterator[Node]:
    match node:
        case Select(operand=operand):
            yield operand
        case Index(operand=operand, index=index):
            yield operand
            yield index
        case Call(target=target, args=args):
            if target is not None:
                yield target
            yield from args
        case ListExpr(items=items):
            yield from items
        case MapExpr(entries=entries):
            for key, value in entries:
                yield key
                yield value
        case StructExpr(fields=inits):
            for _, value in inits:
                yield value
        case Unary(operand=operand):
            yield operand
        case Binary(left=left, right=right):
            yield left
            yield right
        case Conditional(condition=c, then=t, otherwise=o):
            yield c
            yield t
            yield o


def references(node: Node) -> list[Reference]:
    """Every attribute path the expression reads, in source order."""
    found: list[Reference] = []
    _collect(node, frozenset(), found, presence=False)
    return sorted(found, key=lambda r: r.pos)


def _collect(node: Node, bound: frozenset[str], out: list[Reference], *, presence: bool) -> None:
    path = static_path(node)
    if path is not None:
        root, segments = path
        if root.name not in bound and root.name not in TYPE_NAMES:
            out.append(Reference((root.name, *segments), root.pos, presence))
        return
    if isinstance(node, Call):
        if node.function == "has" and node.target is None and len(node.args) == 1:
            _collect(node.args[0], bound, out, presence=True)
            return
        variables = _bound_variables(node)
        if variables:
            assert node.target is not None
            if not (isinstance(node.target, Ident) and node.target.name == "cel"):
                _collect(node.target, bound, out, presence=False)
            skip = len(variables)
            if node.function == "bind":  # cel.bind(v, init, body): init sees the outer scope
                _collect(node.args[1], bound, out, presence=False)
                skip = 2
            for arg in node.args[skip:]:
                _collect(arg, bound | variables, out, presence=False)
            return
    for child in _children(node):
        _collect(child, bound, out, presence=False)


def _bound_variables(call: Call) -> frozenset[str]:
    if call.target is None or not call.args or not isinstance(call.args[0], Ident):
        return frozenset()
    if call.function == "bind" and isinstance(call.target, Ident) and call.target.name == "cel":
        return frozenset({call.args[0].name}) if len(call.args) == 3 else frozenset()
    if call.function in TWO_VARIABLE_MACROS and len(call.args) == 3 and isinstance(call.args[1], Ident):
        return frozenset({call.args[0].name, call.args[1].name})
    if call.function in MACROS | TWO_VARIABLE_MACROS:
        return frozenset({call.args[0].name})
    return frozenset()


# --- the public entry point ------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """A parsed expression: its tree and the attributes it reads.

    `root` is None only when the `cel` package accepts syntax this module's parser does
    not know; then `references` holds just the root variables `cel` reports.
    """

    source: str
    root: Node | None
    references: tuple[Reference, ...] = field(default=())


def parse(expression: str) -> Parsed:
    """Parse `expression`, or raise `CelSyntaxError` with the CEL parser's message."""
    roots: list[str] | None = None
    if _cel is not None:
        try:
            roots = _cel.compile(expression).variables()
        except ValueError as error:
            raise CelSyntaxError(_clean(str(error), expression)) from None
    try:
        root = _Parser(expression).parse()
    except CelSyntaxError:
        if roots is None:
            raise
        return Parsed(expression, None, tuple(Reference((name,), 0) for name in roots))
    return Parsed(expression, root, tuple(references(root)))


def _clean(message: str, expression: str) -> str:
    """The `cel` package's message without its echo of the source and caret lines."""
    message = message.removeprefix(f"Failed to parse expression '{expression}': ")
    lines = [line.strip() for line in message.splitlines()]
    errors = [line.removeprefix("ERROR: <input>:") for line in lines if line.startswith("ERROR:")]
    return "; ".join(errors) if errors else message.strip()


def split(node: Node, op: str) -> list[Node]:
    """The operands of a chain of `op` (`||` or `&&`), flattened left to right."""
    if isinstance(node, Binary) and node.op == op:
        return split(node.left, op) + split(node.right, op)
    return [node]


def unparse(node: Node) -> str:
    """Back to CEL text, for messages (spacing normalised, parentheses where needed)."""
    match node:
        case Literal(value=value):
            if isinstance(value, str):
                return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            if isinstance(value, bool):
                return "true" if value else "false"
            return "null" if value is None else repr(value)
        case Ident(name=name):
            return name
        case Select(operand=operand, field=name):
            return f"{unparse(operand)}.{name}"
        case Index(operand=operand, index=index):
            return f"{unparse(operand)}[{unparse(index)}]"
        case Call(function=function, target=target, args=args):
            inner = ", ".join(unparse(a) for a in args)
            return f"{unparse(target)}.{function}({inner})" if target is not None else f"{function}({inner})"
        case ListExpr(items=items):
            return "[" + ", ".join(unparse(i) for i in items) + "]"
        case MapExpr(entries=entries):
            return "{" + ", ".join(f"{unparse(k)}: {unparse(v)}" for k, v in entries) + "}"
        case StructExpr(type_name=name, fields=inits):
            return name + "{" + ", ".join(f"{k}: {unparse(v)}" for k, v in inits) + "}"
        case Unary(op=op, operand=operand):
            return f"{op}{_wrapped(operand)}"
        case Binary(op=op, left=left, right=right):
            return f"{_wrapped(left)} {op} {_wrapped(right)}"
        case Conditional(condition=c, then=t, otherwise=o):
            return f"{_wrapped(c)} ? {_wrapped(t)} : {_wrapped(o)}"
    raise TypeError(f"not a CEL node: {node!r}")  # pragma: no cover


def _wrapped(node: Node) -> str:
    text = unparse(node)
    return f"({text})" if isinstance(node, Binary | Conditional) else text
