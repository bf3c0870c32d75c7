"""The exceptions trustusbank raises on purpose, as one tree.

Everything a user can cause or meet (a bad manifest, a cluster that is not running, a
request the mesh refused, a broken evidence chain) is a `TrustusbankError`, so the
command line catches one class and prints its message. The branches say what kind of
trouble it is; each concrete error also keeps the builtin base it always had
(`ValueError`, `RuntimeError`, ...), so existing `except` clauses keep working.
"""

from __future__ import annotations


class TrustusbankError(Exception):
    """The root: the CLI prints the message and exits 1."""


class ConfigError(TrustusbankError):
    """What was written or passed in cannot be used: a manifest, a setting, an argument."""


class ProtocolError(TrustusbankError):
    """Bytes on the wire that do not parse as the protocol says (HTTP/2, SOCKS, JSON, CEL, ...)."""


class RefusedError(TrustusbankError):
    """A request refused on purpose, by policy or because it could not be judged (fail closed)."""


class UnavailableError(TrustusbankError):
    """Something needed is not there: no cluster, a pod that never got ready, a service down."""


class IntegrityError(TrustusbankError):
    """Stored evidence or image bytes do not match what was recorded."""


class OperationError(TrustusbankError):
    """An operation on the running system (a rollout, an act, a policy change) did not complete."""
