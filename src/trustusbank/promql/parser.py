"""Parse the PromQL subset of `ast.py`; anything outside it is a loud error, never a guess.

An expression that Prometheus would accept but this parser refuses (arithmetic on series
— between numbers it is accepted, as Grafana's `1+1` health check needs —, `bool`,
`group_left`, `on(...)` outside and/or/unless, `@`, other functions) names the
construct, so a rule that the embedded evaluator cannot honour fails `manifests check`
instead of never firing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from trustusbank.errors import ConfigError
from trustusbank.promql.ast import (
    AGGREGATIONS,
    ARITHMETIC,
    COMPARISONS,
    FUNCTIONS,
    NAME_LABEL,
    Aggregate,
    Binary,
    Call,
    Expr,
    Matcher,
    Matching,
    MatrixSelector,
    NumberLiteral,
    StringLiteral,
    VectorSelector,
    anchored,
)
from trustusbank.promql.durations import PATTERN as DURATION_PATTERN
from trustusbank.promql.durations import parse_duration


class PromQLError(ConfigError, ValueError):
    """An expression outside the supported subset, or not PromQL at all."""


@dataclass(frozen=True)
class Token:
    kind: str  # ident, string, number, duration, op, eof
    text: str
    pos: int
    value: str = ""


_TOKENS = re.compile(
    rf"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<duration>{DURATION_PATTERN})(?![A-Za-z0-9_.])
  | (?P<number>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))(?![A-Za-z0-9_:])
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`[^`]*`)
  | (?P<op>=~|!~|!=|==|>=|<=|[=<>(){{}}\[\],+\-*/%^@])
    """,
    re.VERBOSE,
)
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
# Arithmetic levels, loosest first: `^` binds tightest and to the right, as in PromQL.
_ARITHMETIC_LEVELS = (("+", "-"), ("*", "/", "%"), ("^",))
_MODIFIERS = {"on", "ignoring", "group_left", "group_right", "bool"}


def _unquote(text: str, pos: int) -> str:
    if text[0] == "`":
        return text[1:-1]
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out.append(char)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "\"'":
            out.append(nxt)
            i += 2
        elif nxt in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise PromQLError(f"bad escape in string at {pos}")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        else:
            raise PromQLError(f"unknown escape \\{nxt} in string at {pos}")
    return "".join(out)


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKENS.match(text, pos)
        if match is None:
            raise PromQLError(f"unexpected character {text[pos]!r} at {pos}")
        kind = match.lastgroup or ""
        value = match.group()
        if kind != "space":
            tokens.append(
                Token(kind, value, pos, _unquote(value, pos) if kind == "string" else value),
            )
        pos = match.end()
    tokens.append(Token("eof", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # -- token helpers -------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def _next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _is(self, kind: str, text: str | None = None) -> bool:
        return self.tok.kind == kind and (text is None or self.tok.text == text)

    def _expect(self, kind: str, text: str | None = None) -> Token:
        if not self._is(kind, text):
            wanted = repr(text) if text else kind
            raise self.error(f"expected {wanted}")
        return self._next()

    def error(self, message: str) -> PromQLError:
        tok = self.tok
        found = "end of expression" if tok.kind == "eof" else repr(tok.text)
        return PromQLError(f"{message} at position {tok.pos} (found {found})")

    # -- grammar -------------------------------------------------------------
    def parse(self) -> Expr:
        expr = self._or()
        if not self._is("eof"):
            raise self.error("unexpected token")
        return expr

    def _modifiers(self) -> None:
        if self.tok.kind == "ident" and self.tok.text in _MODIFIERS:
            raise self.error(f"vector matching modifier {self.tok.text!r} is not supported")

    def _set_matching(self) -> Matching | None:
        """`on(...)` or `ignoring(...)` after and/or/unless (the only matching they take)."""
        if not (self.tok.kind == "ident" and self.tok.text in ("on", "ignoring")):
            self._modifiers()
            return None
        on = self._next().text == "on"
        labels = self._label_list()
        self._modifiers()
        return Matching(on, labels)

    def _or(self) -> Expr:
        lhs = self._and()
        while self._is("ident", "or"):
            self._next()
            matching = self._set_matching()
            lhs = Binary("or", lhs, self._and(), matching)
        return lhs

    def _and(self) -> Expr:
        lhs = self._comparison()
        while self.tok.kind == "ident" and self.tok.text in ("and", "unless"):
            op = self._next().text
            matching = self._set_matching()
            lhs = Binary(op, lhs, self._comparison(), matching)
        return lhs

    def _comparison(self) -> Expr:
        lhs = self._unary()
        while self.tok.kind == "op" and self.tok.text in COMPARISONS:
            op = self._next().text
            self._modifiers()
            lhs = Binary(op, lhs, self._unary())
        return lhs

    def _unary(self) -> Expr:
        """A comparison's operand: arithmetic, which `check_types` admits between numbers only."""
        return self._arithmetic(0)

    def _arithmetic(self, level: int) -> Expr:
        if level == len(_ARITHMETIC_LEVELS):
            return self._signed()
        lhs = self._arithmetic(level + 1)
        while self.tok.kind == "op" and self.tok.text in _ARITHMETIC_LEVELS[level]:
            op = self._next().text
            self._modifiers()
            rhs = self._arithmetic(level if op == "^" else level + 1)
            lhs = Binary(op, lhs, rhs)
        return lhs

    def _signed(self) -> Expr:
        """A unary sign binds looser than `^` (`-2 ^ 2` is -4), tighter than `*`."""
        if not (self.tok.kind == "op" and self.tok.text in ("-", "+")):
            return self._postfix(self._primary())
        sign = self._next().text
        operand = self._arithmetic(len(_ARITHMETIC_LEVELS) - 1)
        if value_type(operand) != "scalar":
            raise PromQLError(f"arithmetic operator {sign!r} is not supported on a {value_type(operand)}")
        if sign == "+":
            return operand
        if isinstance(operand, NumberLiteral):
            return NumberLiteral(-operand.value)
        return Binary("*", NumberLiteral(-1.0), operand)

    def _primary(self) -> Expr:
        tok = self.tok
        if tok.kind == "number":
            self._next()
            return NumberLiteral(_number(tok.text))
        if tok.kind == "duration":
            raise self.error("a duration is only allowed in [range] or after offset")
        if tok.kind == "string":
            self._next()
            return StringLiteral(tok.value)
        if self._is("op", "("):
            self._next()
            inner = self._or()
            self._expect("op", ")")
            return inner
        if self._is("op", "{"):
            return VectorSelector(self._matchers(None))
        if tok.kind == "ident":
            return self._identifier()
        raise self.error("expected an expression")

    def _identifier(self) -> Expr:
        name = self._next().text
        following = self.tok
        if name in AGGREGATIONS and (self._is("op", "(") or following.text in ("by", "without")):
            return self._aggregate(name)
        if self._is("op", "("):
            if name not in FUNCTIONS:
                raise PromQLError(f"function {name!r} is not supported (supported: {', '.join(FUNCTIONS)})")
            return self._call(name)
        if name in ("and", "or", "unless", "offset", "by", "without"):
            raise PromQLError(f"unexpected keyword {name!r} where an expression was expected")
        matchers = self._matchers(name) if self._is("op", "{") else (Matcher(NAME_LABEL, "=", name),)
        return VectorSelector(matchers)

    def _matchers(self, metric: str | None) -> tuple[Matcher, ...]:
        found = [Matcher(NAME_LABEL, "=", metric)] if metric else []
        self._expect("op", "{")
        while not self._is("op", "}"):
            label = self._expect("ident").text
            if self.tok.kind != "op" or self.tok.text not in ("=", "!=", "=~", "!~"):
                raise self.error("expected a label matcher operator (=, !=, =~, !~)")
            op = self._next().text
            value = self._expect("string").value
            if op in ("=~", "!~"):
                try:
                    anchored(value)
                except re.error as exc:
                    raise PromQLError(f"invalid regex {value!r}: {exc}") from None
            found.append(Matcher(label, op, value))
            if not self._is("op", ","):
                break
            self._next()
        self._expect("op", "}")
        if all(m.matches("") for m in found):
            raise PromQLError(
                "a vector selector needs at least one matcher that does not match the empty value"
            )
        return tuple(found)

    def _postfix(self, expr: Expr) -> Expr:
        if self._is("op", "["):
            if not isinstance(expr, VectorSelector):
                raise self.error("a range [..] is only allowed after a vector selector (no subqueries)")
            self._next()
            span = parse_duration(self._expect("duration").text)
            self._expect("op", "]")
            expr = MatrixSelector(expr, span)
        if self._is("ident", "offset"):
            self._next()
            negative = self._is("op", "-")
            if negative:
                self._next()
            seconds = parse_duration(self._expect("duration").text)
            offset = -seconds if negative else seconds
            if isinstance(expr, VectorSelector):
                expr = VectorSelector(expr.matchers, offset)
            elif isinstance(expr, MatrixSelector):
                expr = MatrixSelector(VectorSelector(expr.vector.matchers, offset), expr.range)
            else:
                raise self.error("offset is only allowed after a selector")
        if self._is("op", "@"):
            raise self.error("the @ modifier is not supported")
        return expr

    def _grouping(self) -> tuple[bool, tuple[str, ...]]:
        without = self._next().text == "without"
        return without, self._label_list()

    def _label_list(self) -> tuple[str, ...]:
        self._expect("op", "(")
        labels: list[str] = []
        while not self._is("op", ")"):
            labels.append(self._expect("ident").text)
            if not self._is("op", ","):
                break
            self._next()
        self._expect("op", ")")
        return tuple(labels)

    def _aggregate(self, op: str) -> Expr:
        without = False
        grouping: tuple[str, ...] = ()
        if self.tok.kind == "ident" and self.tok.text in ("by", "without"):
            without, grouping = self._grouping()
        self._expect("op", "(")
        inner = self._or()
        if self._is("op", ","):
            raise self.error(f"{op} takes one argument")
        self._expect("op", ")")
        if self.tok.kind == "ident" and self.tok.text in ("by", "without"):
            if grouping or without:
                raise self.error("grouping given twice")
            without, grouping = self._grouping()
        return Aggregate(op, inner, grouping, without)

    def _call(self, name: str) -> Expr:
        self._expect("op", "(")
        args: list[Expr] = []
        while not self._is("op", ")"):
            args.append(self._or())
            if not self._is("op", ","):
                break
            self._next()
        self._expect("op", ")")
        return Call(name, tuple(args))


def _number(text: str) -> float:
    return float(int(text, 16)) if text.lower().startswith("0x") else float(text)


def parse(text: str) -> Expr:
    """Parse and type-check one expression of the subset."""
    expr = _Parser(text).parse()
    check_types(expr)
    return expr


def value_type(expr: Expr) -> str:
    if isinstance(expr, NumberLiteral):
        return "scalar"
    if isinstance(expr, StringLiteral):
        return "string"
    if isinstance(expr, MatrixSelector):
        return "matrix"
    if isinstance(expr, Binary) and expr.op in ARITHMETIC:
        both = (value_type(expr.lhs), value_type(expr.rhs))
        return "scalar" if both == ("scalar", "scalar") else "vector"
    return "vector"


_SIGNATURES = {
    "increase": ("matrix",),
    "rate": ("matrix",),
    "last_over_time": ("matrix",),
    "label_replace": ("vector", "string", "string", "string", "string"),
}


def check_types(expr: Expr) -> None:
    if isinstance(expr, Call):
        wanted = _SIGNATURES[expr.func]
        got = tuple(value_type(a) for a in expr.args)
        if got != wanted:
            raise PromQLError(f"{expr.func}() takes ({', '.join(wanted)}), got ({', '.join(got)})")
        for arg in expr.args:
            check_types(arg)
        if expr.func == "label_replace":
            _check_label_replace(expr)
    elif isinstance(expr, Aggregate):
        if value_type(expr.expr) != "vector":
            raise PromQLError(f"{expr.op}() aggregates an instant vector, got {value_type(expr.expr)}")
        check_types(expr.expr)
    elif isinstance(expr, Binary):
        left, right = value_type(expr.lhs), value_type(expr.rhs)
        if expr.op in ARITHMETIC:
            if (left, right) != ("scalar", "scalar"):
                raise PromQLError(
                    f"arithmetic operator {expr.op!r} is not supported between {left} and {right} "
                    "(only between numbers)"
                )
        elif expr.op in ("and", "or", "unless"):
            if (left, right) != ("vector", "vector"):
                raise PromQLError(f"{expr.op!r} needs instant vectors on both sides, got {left} and {right}")
        elif left == right == "vector":
            raise PromQLError(f"{expr.op!r} between two vectors is not supported; compare with a number")
        elif left == right == "scalar":
            raise PromQLError(f"{expr.op!r} between two numbers needs the bool modifier (not supported)")
        elif not {left, right} <= {"vector", "scalar"}:
            raise PromQLError(f"{expr.op!r} cannot compare {left} and {right}")
        check_types(expr.lhs)
        check_types(expr.rhs)


_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_label_replace(expr: Call) -> None:
    _, dst, _, src, regex = (a.value if isinstance(a, StringLiteral) else "" for a in expr.args)
    for label in (dst, src):
        if not _LABEL_NAME.fullmatch(label):
            raise PromQLError(f"label_replace(): invalid label name {label!r}")
    try:
        anchored(regex)
    except re.error as exc:
        raise PromQLError(f"label_replace(): invalid regex {regex!r}: {exc}") from None
