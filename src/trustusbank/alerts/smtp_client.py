"""Send one message by SMTP, through the pod's node proxy when the pod is in the mesh.

Inside an embedded pod, `ALL_PROXY=socks5h://<pod-ip>:15001` is the capture point:
the connection to `soc-inbox.trustusbank-observability.svc.cluster.local:2525` is
handed to ztunnel by name, carried over HBONE with the evaluator's SVID, and
admitted (or not) by AuthorizationPolicy at the inbox's node, like any other
traffic. smtplib ignores proxy settings, so the SOCKS5 CONNECT (RFC 1928, no
authentication, name resolved by the proxy) is done here and the connected
socket handed to it. Without a SOCKS proxy it connects directly.
"""

from __future__ import annotations

import smtplib
import socket
import struct
from email.message import EmailMessage
from urllib.parse import urlsplit

from trustusbank.errors import UnavailableError

PROXY_ENV = ("ALL_PROXY", "all_proxy")
EHLO_NAME = "alert-evaluator"


class DeliveryError(UnavailableError, RuntimeError):
    """The message could not be handed to the SMTP server."""


def socks_proxy(environ: dict[str, str]) -> tuple[str, int] | None:
    """The SOCKS5 proxy from ALL_PROXY, if it is one (socks5:// or socks5h://)."""
    for name in PROXY_ENV:
        raw = environ.get(name)
        if raw:
            url = urlsplit(raw)
            if url.scheme in ("socks5", "socks5h") and url.hostname and url.port:
                return url.hostname, url.port
    return None


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise DeliveryError("the SOCKS proxy closed the connection")
        data += chunk
    return data


def socks_connect(proxy: tuple[str, int], host: str, port: int, timeout: float) -> socket.socket:
    """A socket connected to host:port through a SOCKS5 proxy; reads no byte past the proxy's reply."""
    sock = socket.create_connection(proxy, timeout=timeout)
    try:
        sock.sendall(b"\x05\x01\x00")
        if _recv_exactly(sock, 2) != b"\x05\x00":
            raise DeliveryError("the SOCKS proxy refused no-authentication")
        name = host.encode("idna")
        sock.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", port))
        version, code, _, address_type = _recv_exactly(sock, 4)
        if version != 5:
            raise DeliveryError("not a SOCKS5 reply")
        length = {1: 4, 4: 16}.get(address_type)
        if length is None:
            length = _recv_exactly(sock, 1)[0] if address_type == 3 else 0
        _recv_exactly(sock, length + 2)
        if code != 0:
            raise DeliveryError(
                f"the node proxy refused the connection to {host}:{port} (SOCKS reply {code})"
            )
        return sock
    except BaseException:
        sock.close()
        raise


class _ProxiedSMTP(smtplib.SMTP):
    def __init__(self, proxy: tuple[str, int], host: str, port: int, timeout: float) -> None:
        self._proxy = proxy
        super().__init__(host, port, local_hostname=EHLO_NAME, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socks_connect(self._proxy, host, port, timeout)


def send(
    message: EmailMessage, host: str, port: int, proxy: tuple[str, int] | None, timeout: float = 10
) -> None:
    """Deliver `message`; raises DeliveryError (with the reason) when the server did not accept it."""
    try:
        if proxy is not None:
            client: smtplib.SMTP = _ProxiedSMTP(proxy, host, port, timeout)
        else:
            client = smtplib.SMTP(host, port, local_hostname=EHLO_NAME, timeout=timeout)
        with client:
            refused = client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"SMTP to {host}:{port}: {exc}") from exc
    if refused:
        raise DeliveryError(f"SMTP to {host}:{port}: recipients refused: {refused}")
