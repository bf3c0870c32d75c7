"""SPIFFE IDs in Istio's shape: `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.

Authorization policies name workloads by these IDs, so parsing is strict: anything
that is not exactly that shape (ports, queries, extra segments, percent-encoding,
upper-case trust domains) is refused rather than normalised, so that two spellings
can never name one principal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TRUST_DOMAIN = "cluster.local"

SCHEME = "spiffe://"

# SPIFFE spec: trust domains are lower-case letters, digits, '.', '-', '_';
# path segments additionally allow upper-case letters. Nothing else, no escapes.
_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_URI = re.compile(r"spiffe://([^/]*)/ns/([^/]*)/sa/([^/]*)")


def _check(kind: str, value: str, pattern: re.Pattern[str]) -> None:
    if not pattern.fullmatch(value) or value in {".", ".."}:
        raise ValueError(f"invalid SPIFFE {kind}: {value!r}")


@dataclass(frozen=True)
class SpiffeId:
    """A workload identity; `str()` is the URI that goes into the certificate's URI SAN."""

    trust_domain: str
    namespace: str
    service_account: str

    def __post_init__(self) -> None:
        _check("trust domain", self.trust_domain, _TRUST_DOMAIN)
        _check("namespace", self.namespace, _SEGMENT)
        _check("service account", self.service_account, _SEGMENT)

    @property
    def principal(self) -> str:
        """Istio's principal form, as written in AuthorizationPolicy `principals`."""
        return f"{self.trust_domain}/ns/{self.namespace}/sa/{self.service_account}"

    @property
    def uri(self) -> str:
        return SCHEME + self.principal

    def __str__(self) -> str:
        return self.uri

    @classmethod
    def parse(cls, uri: str) -> SpiffeId:
        """Parse exactly `spiffe://<td>/ns/<ns>/sa/<sa>`; raise ValueError on anything else."""
        match = _URI.fullmatch(uri)
        if match is None:
            raise ValueError(f"not an Istio SPIFFE ID: {uri!r}")
        return cls(*match.groups())
