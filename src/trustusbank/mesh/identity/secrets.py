"""The node proxy's certificate cache: ztunnel's SecretManager role.

Keys are generated here and only CSRs leave the process; the signed leaf comes back
through an injected async `signer` (istiod over some transport). Because `ssl` can
only load credentials from files, each identity's key and certificate are written
to one PEM file in a private directory (0700, files 0600) and replaced atomically,
so a context being built never sees a key from one generation and a cert from another.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import ssl
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from trustusbank.mesh.identity import tls
from trustusbank.mesh.identity.spiffe import SpiffeId
from trustusbank.mesh.identity.svid import Svid, new_key_and_csr, utcnow

log = logging.getLogger(__name__)

Signer = Callable[[SpiffeId, bytes], Awaitable[bytes]]
Clock = Callable[[], datetime]


class SecretManager:
    """Issues, caches and rotates SVIDs for the identities a node proxy serves."""

    def __init__(
        self, signer: Signer, trust_bundle_pem: bytes, directory: Path, *, clock: Clock = utcnow
    ) -> None:
        self._signer = signer
        self.trust_bundle_pem = trust_bundle_pem
        self._roots = x509.load_pem_x509_certificates(trust_bundle_pem)
        self.directory = directory
        self._clock = clock
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(directory, 0o700)
        self._cache: dict[SpiffeId, Svid] = {}
        self._pending: dict[SpiffeId, asyncio.Task[Svid]] = {}
        self._contexts: dict[tuple[SpiffeId, bool], ssl.SSLContext] = {}
        # Bumped by forget() so that a request already in flight does not re-populate the cache.
        self._generation: dict[SpiffeId, int] = {}

    @property
    def identities(self) -> list[SpiffeId]:
        return list(self._cache)

    def cached(self, identity: SpiffeId) -> Svid | None:
        return self._cache.get(identity)

    def credential_file(self, identity: SpiffeId) -> Path:
        """The PEM file holding `identity`'s key followed by its certificate."""
        digest = hashlib.sha256(identity.uri.encode()).hexdigest()[:12]
        return self.directory / f"{identity.namespace}.{identity.service_account}.{digest}.pem"

    async def get(self, identity: SpiffeId) -> Svid:
        """The current SVID, fetching one if none is cached or the cached one is due for rotation.

        Concurrent callers for one identity share a single signing request. If a
        rotation fails while the old SVID is still valid, the old one is returned.
        """
        svid = self._cache.get(identity)
        now = self._clock()
        if svid is not None and not svid.should_rotate(now):
            return svid
        try:
            return await self._refresh(identity)
        except Exception as exc:
            if svid is not None and not svid.expired(now) and self._cache.get(identity) is svid:
                log.warning("rotating %s failed, keeping the current SVID: %s", identity, exc)
                return svid
            raise

    async def rotate_due(self, now: datetime | None = None) -> list[SpiffeId]:
        """Re-issue every cached SVID past its half-life; returns the identities rotated."""
        now = now or self._clock()
        due = [identity for identity, svid in self._cache.items() if svid.should_rotate(now)]
        results = await asyncio.gather(*(self._refresh(i) for i in due), return_exceptions=True)
        rotated = []
        for identity, result in zip(due, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("rotating %s failed: %s", identity, result)
            else:
                rotated.append(identity)
        return rotated

    def forget(self, identity: SpiffeId) -> None:
        """Drop `identity` (its pod left the node): cache, contexts and key file."""
        self._generation[identity] = self._generation.get(identity, 0) + 1
        self._cache.pop(identity, None)
        self._pending.pop(identity, None)
        self._drop_contexts(identity)
        self.credential_file(identity).unlink(missing_ok=True)

    def ssl_server_context(self, identity: SpiffeId) -> ssl.SSLContext:
        """HBONE server context for the cached SVID; a new object after each rotation."""
        return self._context(identity, server_side=True)

    def ssl_client_context(self, identity: SpiffeId) -> ssl.SSLContext:
        """HBONE client context for the cached SVID; a new object after each rotation."""
        return self._context(identity, server_side=False)

    def _context(self, identity: SpiffeId, *, server_side: bool) -> ssl.SSLContext:
        context = self._contexts.get((identity, server_side))
        if context is None:
            if identity not in self._cache:
                raise LookupError(f"no SVID cached for {identity}; await get() first")
            build = tls.server_context if server_side else tls.client_context
            context = build(self.credential_file(identity), None, self.trust_bundle_pem)
            self._contexts[(identity, server_side)] = context
        return context

    def _drop_contexts(self, identity: SpiffeId) -> None:
        self._contexts.pop((identity, True), None)
        self._contexts.pop((identity, False), None)

    def _refresh(self, identity: SpiffeId) -> Awaitable[Svid]:
        task = self._pending.get(identity)
        if task is None:
            task = asyncio.create_task(self._issue(identity, self._generation.get(identity, 0)))
            self._pending[identity] = task

            def done(finished: asyncio.Task[Svid]) -> None:
                if self._pending.get(identity) is finished:
                    del self._pending[identity]

            task.add_done_callback(done)
        # Shielded: one caller giving up must not cancel the request the others wait on.
        return asyncio.shield(task)

    async def _issue(self, identity: SpiffeId, generation: int) -> Svid:
        key_pem, csr_pem = new_key_and_csr(identity)
        cert_pem = await self._signer(identity, csr_pem)
        svid = Svid.from_pem(cert_pem, key_pem)
        if svid.identity != identity:
            raise ValueError(f"signer returned a certificate for {svid.identity}, asked for {identity}")
        self._check_chain(cert_pem)
        if self._generation.get(identity, 0) == generation:
            self._store(svid)
        return svid

    def _check_chain(self, cert_pem: bytes) -> None:
        cert = x509.load_pem_x509_certificate(cert_pem)
        for root in self._roots:
            with contextlib.suppress(InvalidSignature, TypeError, ValueError):
                cert.verify_directly_issued_by(root)
                return
        raise ValueError("signer returned a certificate not issued by the trust bundle")

    def _store(self, svid: Svid) -> None:
        path = self.credential_file(svid.identity)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(svid.key_pem + svid.cert_pem)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._cache[svid.identity] = svid
        self._drop_contexts(svid.identity)
