"""The inbox's SMTP side: aiosmtpd, storing each message before it says 250.

It runs on the web app's event loop (started by the app's lifespan), so one process
serves both ports, like a MailHog container. The sender's address is mapped to its
SPIFFE identity from the cluster's topology: over the mesh, the node proxy delivers
a connection from the verified caller's own pod address, so the inbox can say which
workload's certificate the mail arrived under.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from trustusbank.workloads.soc_inbox.store import MailStore

log = logging.getLogger(__name__)

MAX_MESSAGE = 1024 * 1024
HOSTNAME = "soc-inbox"


class InboxHandler:
    def __init__(self, store: MailStore, identify: Callable[[str], str | None]) -> None:
        self.store = store
        self.identify = identify

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        peer = session.peer if isinstance(session.peer, tuple) else ("unknown", 0)
        raw = envelope.original_content or b""
        try:
            message_id = await asyncio.to_thread(
                self.store.record,
                raw=raw,
                mail_from=str(envelope.mail_from or ""),
                rcpt_to=[str(r) for r in envelope.rcpt_tos],
                peer=f"{peer[0]}:{peer[1]}",
                peer_identity=self.identify(str(peer[0])),
            )
        except Exception:  # not stored means not accepted: the sender keeps it and retries
            log.exception("could not store a message from %s", peer)
            return "451 Requested action aborted: local error in processing"
        log.warning("SOC MAIL id=%d from=%s bytes=%d", message_id, envelope.mail_from, len(raw))
        return "250 Message accepted for delivery"


async def start_smtp(handler: InboxHandler, host: str, port: int) -> asyncio.Server:
    loop = asyncio.get_running_loop()

    def protocol() -> Any:
        return SMTP(handler, hostname=HOSTNAME, data_size_limit=MAX_MESSAGE, decode_data=False, loop=loop)

    return await loop.create_server(protocol, host=host, port=port, reuse_address=True)
