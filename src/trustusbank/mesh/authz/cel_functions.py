"""agentgateway's CEL dialect on top of the `cel` package: its functions, and what the package lacks.

agentgateway (v1.4.1) registers, besides the CEL standard library (`crates/celx/src/lib.rs`):
the cel-go strings and math extensions (`crates/celx/src/strings.rs`, `math.rs`), the
Kubernetes IP and CIDR libraries (`crates/celx/src/cidr.rs`) and its own functions
(`crates/celx/src/general.rs`: `json`, `toJson`, `default`, `base64.encode`, `fail`, ...).
The `cel` package ships the strings and math extensions as Python callbacks (`cel.stdlib`);
this module adds the rest that can be implemented, and refuses every other function when a
rule is loaded (`unsupported`), so that no rule meets an undefined function at evaluation
time, where the error would be "no match" and a `Deny` rule would fail open.

Three things cannot be plain callbacks, because a callback receives evaluated arguments; they
are rewritten in the source before it is compiled (`rewrite`):

- `default(x, fallback)` and `coalesce(a, b, ...)` evaluate their arguments lazily: an
  argument that does not resolve (missing key, undeclared variable, a field of `null`) or is
  `null` falls through to the next. Each argument becomes a CEL string holding its (rewritten)
  source, which the callback compiles and evaluates against the rule's own context.
- `has(jwt.sub)` with no JWT: agentgateway's `jwt` is then `null` and `has` is false; the `cel`
  package errors on a field of `null`, so `has(R.x)` on a variable that may be unset reads
  `(R != null && has(R.x))`.
- header names are case-insensitive: the waypoint's header maps have lower-case keys, and a
  literal key in `request.headers["X-Tenant"]` (or `.X_...`, or `"X-Tenant" in request.headers`)
  is lower-cased; a computed key (`request.headers[name]`) is lower-cased when evaluated. Only
  a computed left operand of `in` (`name in request.headers`) is left as it is.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import random
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cel
from cel import stdlib

from trustusbank.mesh.authz.cel_attributes import UNSET_ROOTS

# --- which functions exist -----------------------------------------------------------------

NATIVE = frozenset(
    {
        # the CEL standard library, as the `cel` package implements it natively
        "size",
        "int",
        "uint",
        "double",
        "string",
        "bytes",
        "bool",
        "timestamp",
        "duration",
        "type",
        "dyn",
        "matches",
        "contains",
        "startsWith",
        "endsWith",
        "has",
        "all",
        "exists",
        "exists_one",
        "map",
        "filter",
        "getFullYear",
        "getMonth",
        "getDayOfYear",
        "getDayOfMonth",
        "getDate",
        "getDayOfWeek",
        "getHours",
        "getMinutes",
        "getSeconds",
        "getMilliseconds",
        "bind",  # cel.bind
    }
)
STRINGS = (
    "charAt",
    "indexOf",
    "lastIndexOf",
    "substring",
    "replace",
    "split",
    "join",
    "lowerAscii",
    "upperAscii",
    "trim",
)
"""cel-go's strings extension, as agentgateway registers it (`crates/celx/src/strings.rs`; it has
no `reverse` or `strings.quote`, and adds `stripPrefix`/`stripSuffix`, below)."""
MATH = tuple(name for name in stdlib.STDLIB_FUNCTIONS if name.startswith("math."))
"""cel-go's math extension (`crates/celx/src/math.rs`)."""

DEFAULT = "default"
COALESCE = "coalesce"
_LAZY_CALLBACK = {DEFAULT: "agwDefault__", COALESCE: "agwCoalesce__"}

NOT_IMPLEMENTED = {
    "with": "it binds a name to a value, which needs a macro",
    "mapValues": "it evaluates an expression per entry, which needs a macro",
    "filterKeys": "it evaluates an expression per key, which needs a macro",
    "removeKeys": "it evaluates an expression per key, which needs a macro",
    "regexReplace": "Rust and Python regular expressions differ",
    "variables": "the embedded waypoint does not expose every variable",
    "unredacted": "the embedded waypoint has no redacted values",
    "jsonField": "not implemented by the embedded waypoint",
    "format": "strings.format is not implemented by the `cel` package",
}
"""agentgateway functions the embedded waypoint does not implement: refused at load."""


def _tag(kind: str) -> Callable[[Any], str]:
    def get(value: Any) -> str:
        if isinstance(value, Mapping) and isinstance(value.get(kind), str):
            return str(value[kind])
        raise TypeError(f"expected {kind[1:]}, got {type(value).__name__}")

    return get


_cidr_text, _ip_text = _tag("@cidr"), _tag("@ip")


def _cidr(value: str) -> dict[str, str]:
    """`cidr("10.0.0.0/8")`: agentgateway's opaque CIDR, here a tagged map (host bits kept)."""
    interface = ipaddress.ip_interface(value)
    if "/" not in value:
        raise ValueError(f"invalid CIDR {value!r}")
    return {"@cidr": str(interface)}


def _ip(value: Any) -> dict[str, str]:
    """`ip("10.0.0.1")`, or `cidr(...).ip()`: the address."""
    if isinstance(value, Mapping):
        return {"@ip": str(ipaddress.ip_interface(_cidr_text(value)).ip)}
    return {"@ip": str(ipaddress.ip_address(value))}


def _address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(value if isinstance(value, str) else _ip_text(value))


def _network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_interface(_cidr_text(value)).network


def _contains_ip(cidr_value: Any, ip_value: Any) -> bool:
    address = _address(ip_value)
    network = _network(cidr_value)
    return address.version == network.version and address in network


def _contains_cidr(cidr_value: Any, other: Any) -> bool:
    inner, outer = _network(other), _network(cidr_value)
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _is_global_unicast(value: Any) -> bool:
    a = _address(value)
    common = not (a.is_loopback or a.is_multicast or a.is_unspecified or a.is_link_local)
    if isinstance(a, ipaddress.IPv4Address):
        return common and a != ipaddress.IPv4Address("255.255.255.255")
    return common and a not in ipaddress.ip_network("fc00::/7")


def _link_local_multicast(value: Any) -> bool:
    a = _address(value)
    if isinstance(a, ipaddress.IPv4Address):
        return a in ipaddress.ip_network("224.0.0.0/24")
    return (int(a) >> 112) & 0xFF0F == 0xFF02


def _prefix_length(value: Any) -> int:
    return _network(value).prefixlen


def _masked(value: Any) -> dict[str, str]:
    return {"@cidr": str(_network(value))}


def _family(value: Any) -> int:
    return _address(value).version


def _strip_prefix(value: str, prefix: str) -> str:
    return value.removeprefix(prefix)


def _strip_suffix(value: str, suffix: str) -> str:
    return value.removesuffix(suffix)


def _json(value: str | bytes) -> Any:
    return json.loads(value)


def _to_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _fail(message: str) -> Any:
    raise RuntimeError(f"fail() called: {message}")


def _merge(left: Mapping[Any, Any], right: Mapping[Any, Any]) -> dict[Any, Any]:
    if not isinstance(left, Mapping) or not isinstance(right, Mapping):
        raise TypeError("merge() expects two maps")
    return {**left, **right}


def _b64encode(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


def _b64decode(value: str | bytes) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as error:
        raise ValueError(f"base64 decode: {error}") from None


def _random() -> float:
    return random.random()  # as agentgateway's random(): not for secrets


def _uuid() -> str:
    return str(uuid.uuid4())


FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    **{name: stdlib.STDLIB_FUNCTIONS[name] for name in (*STRINGS, *MATH)},
    "stripPrefix": _strip_prefix,
    "stripSuffix": _strip_suffix,
    "base64.encode": _b64encode,
    "base64.decode": _b64decode,
    "base64Encode": _b64encode,
    "base64Decode": _b64decode,
    "cidr": _cidr,
    "ip": _ip,
    "isIP": _is_ip,
    "containsIP": _contains_ip,
    "containsCIDR": _contains_cidr,
    "prefixLength": _prefix_length,
    "masked": _masked,
    "family": _family,
    "isUnspecified": lambda v: _address(v).is_unspecified,
    "isLoopback": lambda v: _address(v).is_loopback,
    "isLinkLocalUnicast": lambda v: _address(v).is_link_local,
    "isLinkLocalMulticast": _link_local_multicast,
    "isGlobalUnicast": _is_global_unicast,
    "json": _json,
    "toJson": _to_json,
    "to_json": _to_json,
    "fail": _fail,
    "merge": _merge,
    "random": _random,
    "uuid": _uuid,
}
"""agentgateway functions implemented here, by the name a rule calls them with."""

VOLATILE = frozenset({"random", "uuid"})
"""Functions whose result differs between two calls with the same arguments: a rule calling one
cannot have its decision remembered."""

KNOWN = NATIVE | {name.rsplit(".", 1)[-1] for name in FUNCTIONS} | set(_LAZY_CALLBACK.values())
"""Function names a compiled program may reference (`Program.functions()` drops namespaces)."""


def unsupported(functions: Iterable[str]) -> list[str]:
    """The functions, of those a program references, that the embedded waypoint cannot run."""
    return sorted(
        name for name in set(functions) if name not in KNOWN and not name.startswith(("_", "@", "!", "-"))
    )


_QUALIFIED = {
    bare: namespace
    for namespace, bare in (name.rsplit(".", 1) for name in FUNCTIONS if "." in name)
    if bare not in FUNCTIONS and bare not in NATIVE
}
"""Functions registered only under a namespace (`math.greatest`): `Program.functions()` reports
them bare, so a call without the namespace (`x.greatest()`) is caught from the source."""


def misqualified(source: str) -> list[str]:
    """Namespaced functions called without their namespace, which would be undefined when run."""
    parsed = tokens(source)
    found = set()
    for index, token in enumerate(parsed[:-1]):
        if token.kind != "ident" or token.text not in _QUALIFIED or parsed[index + 1].text != "(":
            continue
        qualified = (
            index >= 2
            and parsed[index - 1].text == "."
            and parsed[index - 2].text == _QUALIFIED[token.text]
            and (index < 3 or parsed[index - 3].text != ".")
        )
        if not qualified:
            found.add(token.text)
    return sorted(found)


def why_unsupported(name: str) -> str:
    if name in _QUALIFIED:
        return f"`{name}()` is defined only as `{_QUALIFIED[name]}.{name}()`"
    reason = NOT_IMPLEMENTED.get(name)
    if reason is not None:
        return f"`{name}()` is an agentgateway function the embedded waypoint does not implement ({reason})"
    return f"`{name}()` is not a CEL function agentgateway defines"


# --- evaluation of default() and coalesce() ---------------------------------------------------


@lru_cache(maxsize=1024)
def compile_fragment(source: str) -> cel.Program:
    return cel.compile(source)


def _absent(error: Exception, program: cel.Program, values: Mapping[str, Any]) -> bool:
    """Whether an error means "does not resolve": a missing key, an undeclared name, a field of null."""
    if isinstance(error, KeyError):
        return True
    text = str(error)
    if isinstance(error, RuntimeError) and text.startswith("Undefined variable"):
        return True
    return isinstance(error, TypeError) and any(
        name in values and values[name] is None for name in program.variables()
    )


def lazy_functions(context: cel.Context, values: Mapping[str, Any]) -> dict[str, Callable[..., Any]]:
    """`default` and `coalesce` for rules evaluated on `context`, whose variables are `values`."""

    def resolve(source: str) -> tuple[bool, Any]:
        program = compile_fragment(source)
        try:
            value = program.execute(context)
        except Exception as error:
            if _absent(error, program, values):
                return False, None
            raise
        return value is not None, value

    def default(expression: str, fallback: str) -> Any:
        found, value = resolve(expression)
        return value if found else compile_fragment(fallback).execute(context)

    def coalesce(*expressions: str) -> Any:
        for expression in expressions:
            found, value = resolve(expression)
            if found:
                return value
        return None

    return {_LAZY_CALLBACK[DEFAULT]: default, _LAZY_CALLBACK[COALESCE]: coalesce}


def register(context: cel.Context, values: Mapping[str, Any]) -> None:
    for name, function in FUNCTIONS.items():
        context.add_function(name, function)
    for name, function in lazy_functions(context, values).items():
        context.add_function(name, function)


# --- rewriting the source ---------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<raw>(?:[rR][bB]?|[bB][rR])(?:\"\"\".*?\"\"\"|'''.*?'''|"[^"\n]*"|'[^'\n]*'))
  | (?P<string>[bB]?
        (?:\"\"\"(?:\\.|.)*?\"\"\"|'''(?:\\.|.)*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>(?:0[xX][0-9a-fA-F]+|\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)[uU]?)
  | (?P<op>&&|\|\||==|!=|<=|>=|\?\.|.)
    """,
    re.VERBOSE | re.DOTALL,
)
_HEADER_MAPS = (("request", "headers"), ("response", "headers"), ("source", "connectHeaders"))


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


@dataclass(frozen=True)
class Rewritten:
    source: str
    """The expression as compiled: lazy calls as callbacks, null-safe `has`, lower-case header keys."""
    fragments: tuple[str, ...]
    """The sources of the lazy arguments, compiled and evaluated by the callbacks."""


def tokens(source: str) -> list[Token]:
    """`source` as CEL tokens, without blanks and comments (string literals are single tokens)."""
    found = []
    for match in _TOKEN.finditer(source):
        kind = match.lastgroup or "op"
        kind = "string" if kind == "raw" else kind
        if kind != "space":
            found.append(Token(kind, match.group()))
    return found


def _text(tokens: Iterable[Token]) -> str:
    return " ".join(token.text for token in tokens)


def _closing(tokens: list[Token], start: int) -> int:
    """The index of the bracket closing the one at `start`; ValueError if unbalanced."""
    depth = 0
    for index in range(start, len(tokens)):
        text = tokens[index].text if tokens[index].kind == "op" else ""
        if text in ("(", "[", "{"):
            depth += 1
        elif text in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                return index
    raise ValueError("unbalanced brackets")


def _arguments(tokens: list[Token]) -> list[list[Token]]:
    args: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        text = token.text if token.kind == "op" else ""
        if text in ("(", "[", "{"):
            depth += 1
        elif text in (")", "]", "}"):
            depth -= 1
        if text == "," and depth == 0:
            args.append([])
        else:
            args[-1].append(token)
    return args


def _is_header_map(tokens: list[Token], index: int) -> bool:
    if index < 3:
        return False
    root, dot, field = tokens[index - 3 : index]
    if dot.text != "." or (root.text, field.text) not in _HEADER_MAPS:
        return False
    return index < 4 or tokens[index - 4].text != "."


def _lower_literal(token: Token) -> Token:
    if "\\" in token.text:
        return token  # an escape might change meaning when lower-cased; leave it
    return Token(token.kind, token.text.lower())


def _rewrite(tokens: list[Token], fragments: list[str]) -> list[Token]:
    out: list[Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        after = tokens[index + 1] if index + 1 < len(tokens) else None
        previous = tokens[index - 1] if index else None
        free = previous is None or previous.text != "."
        if token.kind == "ident" and token.text in _LAZY_CALLBACK and free and after and after.text == "(":
            end = _closing(tokens, index + 1)
            args = _arguments(tokens[index + 2 : end])
            if token.text == DEFAULT and len(args) != 2:
                raise ValueError("default() takes two arguments")
            if not all(args):
                raise ValueError(f"{token.text}() has an empty argument")
            literals = []
            for arg in args:
                fragment = _text(_rewrite(arg, fragments))
                fragments.append(fragment)
                literals.append(Token("string", json.dumps(fragment)))
            call = [Token("ident", _LAZY_CALLBACK[token.text]), Token("op", "(")]
            for position, literal in enumerate(literals):
                call += [Token("op", ",")] if position else []
                call.append(literal)
            out += [*call, Token("op", ")")]
            index = end + 1
            continue
        if token.text == "has" and free and after and after.text == "(" and index + 2 < len(tokens):
            root = tokens[index + 2]
            if root.kind == "ident" and root.text in UNSET_ROOTS:
                end = _closing(tokens, index + 1)
                inner = _rewrite(tokens[index + 2 : end], fragments)
                guard = [Token("op", "("), root, Token("op", "!="), Token("ident", "null"), Token("op", "&&")]
                out += [*guard, token, Token("op", "("), *inner, Token("op", ")"), Token("op", ")")]
                index = end + 1
                continue
        if token.text in ("[", ".") and _is_header_map(tokens, index) and after is not None:
            closes = index + 2 < len(tokens) and tokens[index + 2].text == "]"
            if token.text == "[" and after.kind == "string" and closes and "\\" not in after.text:
                out += [token, _lower_literal(after)]
                index += 2
                continue
            if token.text == "[":  # a computed key: lower-cased when evaluated
                end = _closing(tokens, index)
                inner = _rewrite(tokens[index + 1 : end], fragments)
                lower = [Token("op", "."), Token("ident", "lowerAscii"), Token("op", "("), Token("op", ")")]
                out += [token, Token("op", "("), *inner, Token("op", ")"), *lower, Token("op", "]")]
                index = end + 1
                continue
            if token.text == "." and after.kind == "ident":
                out += [token, Token("ident", after.text.lower())]
                index += 2
                continue
        if token.kind == "string" and after is not None and after.text == "in":
            rest = tokens[index + 2 : index + 5]
            beyond = tokens[index + 5] if index + 5 < len(tokens) else None
            if (
                len(rest) == 3
                and rest[1].text == "."
                and (rest[0].text, rest[2].text) in _HEADER_MAPS
                and (beyond is None or beyond.text not in (".", "["))
            ):
                out.append(_lower_literal(token))
                index += 1
                continue
        out.append(token)
        index += 1
    return out


def rewrite(source: str) -> Rewritten:
    """`source` as the `cel` package can run it with agentgateway's meaning; ValueError if it cannot."""
    parsed = tokens(source)
    fragments: list[str] = []
    rewritten = _rewrite(parsed, fragments)
    if rewritten == parsed:
        return Rewritten(source, ())
    return Rewritten(_text(rewritten), tuple(fragments))
