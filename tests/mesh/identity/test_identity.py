"""SPIFFE IDs, the mesh CA and the node proxy's SecretManager, with real keys and certificates."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustusbank.mesh.identity import (
    CertificateAuthority,
    CsrError,
    SecretManager,
    SpiffeId,
    Svid,
    identity_from_cert,
    new_key_and_csr,
)

ALICE = SpiffeId("cluster.local", "bank", "transaction-mcp")
BOB = SpiffeId("cluster.local", "agents", "banking-agent")


@pytest.fixture
def ca(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority.load_or_create(tmp_path / "ca")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leaf(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def csr_for(key: object, sans: list[x509.GeneralName], subject: x509.Name | None = None) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject or x509.Name([]))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]


# SpiffeId


def test_spiffe_id_forms() -> None:
    assert ALICE.uri == "spiffe://cluster.local/ns/bank/sa/transaction-mcp"
    assert str(ALICE) == ALICE.uri
    assert ALICE.principal == "cluster.local/ns/bank/sa/transaction-mcp"
    assert SpiffeId.parse(ALICE.uri) == ALICE


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "spiffe://cluster.local/ns/bank/sa/",
        "spiffe://cluster.local/ns//sa/x",
        "spiffe:///ns/bank/sa/x",
        "spiffe://cluster.local/ns/bank/sa/x/extra",
        "spiffe://cluster.local/ns/bank/sa/x/",
        "spiffe://cluster.local/ns/bank",
        "spiffe://cluster.local/sa/x/ns/bank",
        "spiffe://cluster.local/ns/bank/serviceaccount/x",
        "spiffe://cluster.local:8080/ns/bank/sa/x",
        "spiffe://user@cluster.local/ns/bank/sa/x",
        "spiffe://cluster.local/ns/bank/sa/x?admin=1",
        "spiffe://cluster.local/ns/bank/sa/x#frag",
        "spiffe://cluster.local/ns/b%61nk/sa/x",
        "spiffe://cluster.local/ns/../sa/x",
        "spiffe://Cluster.Local/ns/bank/sa/x",
        "SPIFFE://cluster.local/ns/bank/sa/x",
        "https://cluster.local/ns/bank/sa/x",
        "cluster.local/ns/bank/sa/x",
        " spiffe://cluster.local/ns/bank/sa/x",
        "spiffe://cluster.local/ns/bank/sa/x\n",
    ],
)
def test_spiffe_parse_rejects(uri: str) -> None:
    with pytest.raises(ValueError, match="SPIFFE"):
        SpiffeId.parse(uri)


def test_spiffe_id_constructor_validates() -> None:
    with pytest.raises(ValueError, match="namespace"):
        SpiffeId("cluster.local", "a/b", "x")


# CertificateAuthority


def test_ca_persists_and_reloads_the_same_root(tmp_path: Path) -> None:
    first = CertificateAuthority.load_or_create(tmp_path / "ca")
    again = CertificateAuthority.load_or_create(tmp_path / "ca")
    assert again.trust_bundle_pem == first.trust_bundle_pem
    assert mode(tmp_path / "ca" / "root-key.pem") == 0o600
    root = x509.load_pem_x509_certificate(first.trust_bundle_pem)
    constraints = root.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca
    assert constraints.path_length == 0
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.not_valid_after_utc - root.not_valid_before_utc > timedelta(days=3649)
    # A leaf from the reloaded CA chains to the first root.
    svid = again.issue(ALICE, timedelta(hours=1))
    leaf(svid.cert_pem).verify_directly_issued_by(root)
    other = CertificateAuthority.load_or_create(tmp_path / "other")
    assert other.trust_bundle_pem != first.trust_bundle_pem


def test_issued_leaf_has_exactly_the_identity(ca: CertificateAuthority) -> None:
    key_pem, csr_pem = new_key_and_csr(ALICE)
    before = datetime.now(UTC)
    cert_pem = ca.sign_csr(csr_pem, ALICE, timedelta(hours=24))
    assert cert_pem.count(b"BEGIN CERTIFICATE") == 1
    cert = leaf(cert_pem)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.critical
    assert list(san.value) == [x509.UniformResourceIdentifier(ALICE.uri)]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_cert_sign
    assert abs(cert.not_valid_after_utc - (before + timedelta(hours=24))) < timedelta(seconds=5)
    assert timedelta(seconds=55) <= before - cert.not_valid_before_utc <= timedelta(seconds=62)
    cert.verify_directly_issued_by(ca.root_cert)
    assert identity_from_cert(cert_pem) == ALICE
    assert identity_from_cert(cert.public_bytes(serialization.Encoding.DER)) == ALICE
    again = leaf(ca.sign_csr(csr_pem, ALICE, timedelta(hours=24)))
    assert again.serial_number != cert.serial_number
    svid = Svid.from_pem(cert_pem, key_pem)
    assert svid.identity == ALICE
    assert svid.not_after == cert.not_valid_after_utc


def test_csr_asking_for_other_names_gets_only_the_granted_identity(ca: CertificateAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    greedy = csr_for(
        key,
        [
            x509.UniformResourceIdentifier("spiffe://cluster.local/ns/istio-system/sa/istiod"),
            x509.DNSName("bank.example.com"),
        ],
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "admin")]),
    )
    cert = leaf(ca.sign_csr(greedy, ALICE, timedelta(hours=1)))
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert list(san) == [x509.UniformResourceIdentifier(ALICE.uri)]
    assert cert.subject == x509.Name([])
    assert cert.public_key() == key.public_key()


def test_csr_with_bad_signature_is_refused(ca: CertificateAuthority) -> None:
    _, csr_pem = new_key_and_csr(ALICE)
    der = bytearray(x509.load_pem_x509_csr(csr_pem).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # last byte of the signature
    tampered = x509.load_der_x509_csr(bytes(der)).public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CsrError, match="signature"):
        ca.sign_csr(tampered, ALICE, timedelta(hours=1))
    with pytest.raises(CsrError, match="unreadable"):
        ca.sign_csr(b"not a csr", ALICE, timedelta(hours=1))


@pytest.mark.parametrize(
    ("key", "accepted"),
    [
        (ec.generate_private_key(ec.SECP256R1()), True),
        (rsa.generate_private_key(65537, 2048), True),
        (ec.generate_private_key(ec.SECP384R1()), False),
        (rsa.generate_private_key(65537, 1024), False),
        (ed25519.Ed25519PrivateKey.generate(), False),
    ],
    ids=["p256", "rsa2048", "p384", "rsa1024", "ed25519"],
)
def test_key_types(ca: CertificateAuthority, key: object, accepted: bool) -> None:
    csr = csr_for(key, [x509.UniformResourceIdentifier(ALICE.uri)])
    if accepted:
        assert identity_from_cert(ca.sign_csr(csr, ALICE, timedelta(hours=1))) == ALICE
    else:
        with pytest.raises(CsrError, match="refused"):
            ca.sign_csr(csr, ALICE, timedelta(hours=1))


def test_ca_signs_only_its_trust_domain(ca: CertificateAuthority) -> None:
    _, csr = new_key_and_csr(ALICE)
    with pytest.raises(CsrError, match="trust domain"):
        ca.sign_csr(csr, SpiffeId("evil.example", "bank", "transaction-mcp"), timedelta(hours=1))


def test_identity_from_cert_needs_exactly_one_spiffe_uri(ca: CertificateAuthority) -> None:
    key = ec.generate_private_key(ec.SECP256R1())

    def cert_with(sans: Sequence[x509.GeneralName]) -> bytes:
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(x509.Name([]))
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(now)
            .not_valid_after(now + timedelta(hours=1))
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=True)
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    assert identity_from_cert(cert_with([x509.UniformResourceIdentifier(ALICE.uri)])) == ALICE
    two = [x509.UniformResourceIdentifier(ALICE.uri), x509.UniformResourceIdentifier(BOB.uri)]
    assert identity_from_cert(cert_with(two)) is None
    assert identity_from_cert(cert_with([x509.UniformResourceIdentifier("https://bank.example")])) is None
    assert identity_from_cert(cert_with([x509.DNSName("bank.example")])) is None
    assert identity_from_cert(cert_with([])) is None
    assert identity_from_cert(b"garbage") is None


def test_svid_lifetime_arithmetic(ca: CertificateAuthority) -> None:
    svid = ca.issue(ALICE, timedelta(hours=10))
    assert "PRIVATE KEY" not in repr(svid)
    half = svid.not_before + svid.lifetime / 2
    assert not svid.should_rotate(half - timedelta(seconds=1))
    assert svid.should_rotate(half)
    assert svid.remaining(svid.not_after - timedelta(minutes=5)) == timedelta(minutes=5)
    assert svid.expired(svid.not_after)


# SecretManager


class CountingSigner:
    """A local stand-in for istiod: signs with the test CA, counts calls, can be held or broken."""

    def __init__(self, ca: CertificateAuthority, ttl: timedelta = timedelta(hours=1)) -> None:
        self.ca = ca
        self.ttl = ttl
        self.calls: list[SpiffeId] = []
        self.gate: asyncio.Event | None = None
        self.fail = False

    async def __call__(self, identity: SpiffeId, csr_pem: bytes) -> bytes:
        self.calls.append(identity)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise PermissionError("istiod unavailable")
        return self.ca.sign_csr(csr_pem, identity, self.ttl)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def manager(
    ca: CertificateAuthority, signer: CountingSigner, path: Path, clock: Clock | None = None
) -> SecretManager:
    return SecretManager(signer, ca.trust_bundle_pem, path, clock=clock or Clock())


async def test_secret_manager_caches(ca: CertificateAuthority, tmp_path: Path) -> None:
    signer = CountingSigner(ca)
    secrets = manager(ca, signer, tmp_path / "certs")
    first = await secrets.get(ALICE)
    assert await secrets.get(ALICE) is first
    assert signer.calls == [ALICE]
    assert first.identity == ALICE
    assert secrets.identities == [ALICE]
    assert secrets.ssl_server_context(ALICE) is secrets.ssl_server_context(ALICE)
    assert secrets.ssl_client_context(ALICE) is not secrets.ssl_server_context(ALICE)


async def test_concurrent_gets_share_one_signing_request(ca: CertificateAuthority, tmp_path: Path) -> None:
    signer = CountingSigner(ca)
    signer.gate = asyncio.Event()
    secrets = manager(ca, signer, tmp_path / "certs")
    waiting = [asyncio.create_task(secrets.get(ALICE)) for _ in range(5)]
    other = asyncio.create_task(secrets.get(BOB))
    await asyncio.sleep(0.01)
    signer.gate.set()
    results = await asyncio.gather(*waiting)
    assert all(svid is results[0] for svid in results)
    assert (await other).identity == BOB
    assert sorted(map(str, signer.calls)) == sorted([ALICE.uri, BOB.uri])


async def test_a_cancelled_caller_does_not_cancel_the_shared_request(
    ca: CertificateAuthority, tmp_path: Path
) -> None:
    signer = CountingSigner(ca)
    signer.gate = asyncio.Event()
    secrets = manager(ca, signer, tmp_path / "certs")
    impatient = asyncio.create_task(secrets.get(ALICE))
    patient = asyncio.create_task(secrets.get(ALICE))
    await asyncio.sleep(0.01)
    impatient.cancel()
    signer.gate.set()
    assert (await patient).identity == ALICE
    assert signer.calls == [ALICE]


async def test_rotation_after_half_life(ca: CertificateAuthority, tmp_path: Path) -> None:
    clock = Clock()
    signer = CountingSigner(ca, ttl=timedelta(seconds=2))
    secrets = manager(ca, signer, tmp_path / "certs", clock)
    first = await secrets.get(ALICE)
    context = secrets.ssl_server_context(ALICE)
    path = secrets.credential_file(ALICE)
    assert path.read_bytes() == first.key_pem + first.cert_pem

    clock.now = first.not_before + first.lifetime * 0.4
    assert await secrets.rotate_due() == []
    assert await secrets.get(ALICE) is first

    clock.now = first.not_before + first.lifetime * 0.6
    assert await secrets.rotate_due() == [ALICE]
    second = secrets.cached(ALICE)
    assert second is not None
    assert second is not first
    assert second.key_pem != first.key_pem
    assert second.cert_pem != first.cert_pem
    assert path.read_bytes() == second.key_pem + second.cert_pem
    assert secrets.ssl_server_context(ALICE) is not context
    assert mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp files left behind


async def test_get_refreshes_a_cert_past_half_life(ca: CertificateAuthority, tmp_path: Path) -> None:
    clock = Clock()
    signer = CountingSigner(ca, ttl=timedelta(seconds=2))
    secrets = manager(ca, signer, tmp_path / "certs", clock)
    first = await secrets.get(ALICE)
    clock.now = first.not_before + first.lifetime * 0.75
    assert await secrets.get(ALICE) is not first
    assert len(signer.calls) == 2


async def test_failed_rotation_keeps_the_valid_cert(ca: CertificateAuthority, tmp_path: Path) -> None:
    clock = Clock()
    signer = CountingSigner(ca, ttl=timedelta(seconds=2))
    secrets = manager(ca, signer, tmp_path / "certs", clock)
    first = await secrets.get(ALICE)
    signer.fail = True
    clock.now = first.not_before + first.lifetime * 0.75
    assert await secrets.rotate_due() == []
    assert await secrets.get(ALICE) is first
    clock.now = first.not_after + timedelta(seconds=1)
    with pytest.raises(PermissionError):
        await secrets.get(ALICE)


async def test_private_files_and_forget(ca: CertificateAuthority, tmp_path: Path) -> None:
    directory = tmp_path / "certs"
    secrets = manager(ca, CountingSigner(ca), directory)
    await secrets.get(ALICE)
    await secrets.get(BOB)
    assert mode(directory) == 0o700
    files = sorted(directory.iterdir())
    assert len(files) == 2
    assert all(mode(path) == 0o600 for path in files)
    secrets.forget(ALICE)
    assert not secrets.credential_file(ALICE).exists()
    assert secrets.cached(ALICE) is None
    with pytest.raises(LookupError):
        secrets.ssl_client_context(ALICE)
    assert secrets.ssl_client_context(BOB) is not None


async def test_forget_during_signing_does_not_resurrect(ca: CertificateAuthority, tmp_path: Path) -> None:
    signer = CountingSigner(ca)
    signer.gate = asyncio.Event()
    secrets = manager(ca, signer, tmp_path / "certs")
    pending = asyncio.create_task(secrets.get(ALICE))
    await asyncio.sleep(0.01)
    secrets.forget(ALICE)
    signer.gate.set()
    await pending
    assert secrets.cached(ALICE) is None
    assert not secrets.credential_file(ALICE).exists()


async def test_signer_answers_are_checked(ca: CertificateAuthority, tmp_path: Path) -> None:
    other_ca = CertificateAuthority.load_or_create(tmp_path / "other-ca")

    async def wrong_identity(identity: SpiffeId, csr_pem: bytes) -> bytes:
        return ca.sign_csr(csr_pem, BOB, timedelta(hours=1))

    async def foreign_ca(identity: SpiffeId, csr_pem: bytes) -> bytes:
        return other_ca.sign_csr(csr_pem, identity, timedelta(hours=1))

    async def other_key(identity: SpiffeId, csr_pem: bytes) -> bytes:
        return ca.issue(identity, timedelta(hours=1)).cert_pem

    for signer, message in [
        (wrong_identity, "asked for"),
        (foreign_ca, "trust bundle"),
        (other_key, "does not match"),
    ]:
        secrets = SecretManager(signer, ca.trust_bundle_pem, tmp_path / "certs")
        with pytest.raises(ValueError, match=message):
            await secrets.get(ALICE)
        assert secrets.cached(ALICE) is None
