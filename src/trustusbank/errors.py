"""The exceptions trustusbank raises on purpose, as one tree.

Everything a user can cause or meet (a bad manifest, a cluster that is not running, a
request the mesh refused, a broken evidence chain) is a `TrustusbankError`, so the
command line catches one class and prints its message. The branches say what kind of
trouble it is; each concrete error also keeps the builtin base it always had
(`ValueError`, `RuntimeError`, ...), so existing `except` clauses keep working. An error
that is two kinds at once names both branches (`HboneRefused` is a broken tunnel and a
refusal; `ModelConfigError` is a model error and a configuration one).

This module is the bottom layer: it imports nothing from trustusbank, and every module
may import it.
"""

from __future__ import annotations


class TrustusbankError(Exception):
    """The root: the CLI prints the message and exits 1."""


class ConfigError(TrustusbankError):
    """What was written or passed in cannot be used: a manifest, a setting, an argument.

    That includes the expressions written in manifests and rule files (PromQL, CEL, alert
    templates): they are configuration, not bytes on the wire, whoever parses them.
    """


class ProtocolError(TrustusbankError):
    """Bytes on the wire that do not parse as the protocol says (SOCKS, JSON bodies, a model's
    wire format, the Prometheus text format, ...)."""


class RefusedError(TrustusbankError):
    """A request refused on purpose, by policy or because it could not be judged (fail closed)."""


class UnavailableError(TrustusbankError):
    """Something needed is not there or does not answer: no cluster, a pod that never got
    ready, a service, tunnel, model or mail server that cannot be reached, a port already
    taken, an image that cannot be pulled."""


class IntegrityError(TrustusbankError):
    """Stored evidence no longer matches what was recorded (the hash chain does not reach its head).

    An image whose bytes do not hash to the digest behind its tag is not one of these: the
    pull fails (`ImageStoreError`, unavailable), as a container runtime reports it.
    """


class OperationError(TrustusbankError):
    """An operation on the running system (a rollout, an act, a policy change, a question to
    the agent) did not complete."""
