"""The chain as the console serves it: one provider, a door before each page, one session for all."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import httpx

from tests.console.signin.world import echo_app, location, serve_on, sign_in, url_of
from trustusbank.console.signin.chain import CLIENT_ID, sign_in_chain
from trustusbank.console.signin.frontdoor import SIGN_OUT
from trustusbank.workloads.serving import bind


async def test_signing_in_on_one_page_signs_in_on_all_and_out_of_one_out_of_all(tmp_path: Path) -> None:
    dashboard, sessions, provider = bind("127.0.0.1", 0), bind("127.0.0.1", 0), bind("127.0.0.1", 0)
    issuer = url_of(provider)
    pages = [(echo_app(), url_of(dashboard)), (echo_app(), url_of(sessions))]
    chain = sign_in_chain(tmp_path / "state", issuer, pages)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serve_on(provider, chain.provider))
        await stack.enter_async_context(serve_on(dashboard, chain.pages[0]))
        await stack.enter_async_context(serve_on(sessions, chain.pages[1]))
        http = await stack.enter_async_context(httpx.AsyncClient(trust_env=False, timeout=30))
        asked = await http.get(f"{url_of(sessions)}/")
        first = await sign_in(http, f"{url_of(dashboard)}/d/dora-evidence")
        other = await http.get(f"{url_of(sessions)}/traces")
        await http.get(f"{url_of(sessions)}{SIGN_OUT}")
        after = await http.get(f"{url_of(dashboard)}/d/dora-evidence")
    assert f"client_id={CLIENT_ID}" in location(asked)
    assert first.json()["user"] == "admin@kagent.local"
    assert other.status_code == 200
    assert other.json()["forwarded"]["x-forwarded-groups"] == "admins"
    assert after.status_code == 302
    assert location(after).startswith(f"{issuer}/auth?")
