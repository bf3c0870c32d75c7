"""18007, the kagent UI's role: agents and their cards, sessions, tool-call trees and trace waterfalls.

The pages are served on 127.0.0.1 over what real agents wrote (tests/console/sessions_world.py):
support-bot and fraud-bot running from the agent code, the bank's MCP servers behind a front
that writes the waypoint's and ztunnel's spans and the waypoint's log, and the evidence store
that `ingest` builds from those files. Every assertion reads the served HTML.
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from tests.console.sessions_world import (
    DENY_RULE,
    DETAILS_PROMPT,
    EMAIL,
    FRAUD_PROMPT,
    HOSTILE,
    HOSTILE_CARD,
    NI_NUMBER,
    SEED_PROMPT,
    World,
    running_world,
)
from tests.serving import serving
from trustusbank import __version__
from trustusbank.cluster.layout import ClusterFiles
from trustusbank.console.sessions import create_app, read_sessions
from trustusbank.telemetry.tracing import read_spans, setup_tracing

AGENTS = "trustusbank-bank-agents"
RAW_PII = (EMAIL, NI_NUMBER, "QQ123456C", "+44 7700 900100", "42 King Street")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("sessions")
    with running_world(ClusterFiles(data / "state"), data) as written:
        yield written


async def get(world: World, *paths: str) -> list[httpx.Response]:
    async with serving(create_app(world.files)) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        return [await http.get(path) for path in paths]


def text_of(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def assert_safe(page: httpx.Response) -> None:
    """No script anywhere, none allowed, and no unmasked personal data."""
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy
    assert "<script" not in page.text.lower()
    for raw in RAW_PII:
        assert raw not in page.text


@dataclass
class WaterfallRow:
    n: int
    component: str
    depth: int
    mark: str  # "deny", "error" or ""
    label: str
    note: str
    bar: str  # the bar's classes
    left: float
    width: float


def waterfall(page: str) -> list[WaterfallRow]:
    geometry = {
        int(n): (float(left), float(width))
        for n, left, width in re.findall(r"#b(\d+) \{ margin-left: ([\d.]+)%; width: ([\d.]+)%; \}", page)
    }
    rows = re.findall(
        r'<div class="cmp[^"]*" data-row="(\d+)">(.*?)</div><div class="lbl d(\d+)[^"]*">'
        r'(?:<span class="badge (\w+)">\w+</span> )?(.*?)<span class="note">(.*?)</span></div>'
        r'<div class="track[^"]*"><div class="([^"]*)" id="b\d+">',
        page,
    )
    return [
        WaterfallRow(int(n), text_of(c), int(d), mark, text_of(label), text_of(note), bar, *geometry[int(n)])
        for n, c, d, mark, label, note, bar in rows
    ]


async def test_agents_page_shows_each_agents_live_card_and_its_tools(world: World) -> None:
    (page,) = await get(world, "/")

    assert page.status_code == 200
    assert_safe(page)
    for name in ("fraud-bot", "support-bot", "triage-bot"):
        assert f'<a href="/agents/{AGENTS}/{name}">{AGENTS}/{name}</a>' in page.text
    sections = {name: page.text.index(f">{AGENTS}/{name}</a></h2>") for name in ("support-bot", "triage-bot")}
    support = page.text[sections["support-bot"] : sections["triage-bot"]]
    # The card the running agent serves: its version, its skills from the tools it was given.
    assert f"version {__version__}" in support
    assert "Uses the MCP server account-mcp: get_balance, get_profile." in support
    assert "Investigates payments customers do not recognise." in support
    # The tools its Agent spec in deploy/ gives it, as kagent resolves them.
    for tool in ("get_balance", "get_profile", "list_recent", "convert_currency", "fraud_bot"):
        assert f'<span class="tag">{tool}</span>' in support
    assert "2 session(s)" in support
    # A pod names itself in its card: shown as text.
    assert HOSTILE_CARD not in page.text
    assert html.escape(HOSTILE_CARD) in support
    triage = page.text[sections["triage-bot"] :]
    assert "Agent card not readable: http://127.0.0.1:" in triage
    assert "create_ticket" in triage


async def test_agent_page_lists_its_sessions_newest_first_with_their_messages(world: World) -> None:
    support, fraud, missing = await get(
        world, f"/agents/{AGENTS}/support-bot", f"/agents/{AGENTS}/fraud-bot", f"/agents/{AGENTS}/nobody"
    )

    assert support.status_code == 200
    assert_safe(support)
    b, a = (support.text.index(f'href="/sessions/{c}"') for c in (world.conversation_b, world.conversation_a))
    assert b < a
    messages = text_of(support.text)
    assert messages.index(SEED_PROMPT) < messages.index("You have £4,287.55, which is $5,445.19.")
    assert messages.index(DETAILS_PROMPT) < messages.index(
        "We hold a***@example.com and NI number QQ ** ** ** C."
    )
    assert FRAUD_PROMPT in messages
    assert "fraud-bot is looking into it: I have reviewed" in messages

    # fraud-bot was only ever asked by support-bot's hand-off: its session is B.
    assert fraud.status_code == 200
    assert f'href="/sessions/{world.conversation_b}"' in fraud.text
    assert f'href="/sessions/{world.conversation_a}"' not in fraud.text
    assert "another agent (hand-off)" in fraud.text
    assert "customer 12345 does not recognise a payment" in fraud.text
    assert missing.status_code == 404


async def test_session_tree_nests_the_handoff_and_masks_personal_data(world: World) -> None:
    b, a = await get(world, f"/sessions/{world.conversation_b}", f"/sessions/{world.conversation_a}")

    assert b.status_code == 200
    assert_safe(b)
    page = b.text
    handoff = page.index("hand-off fraud_bot <span")
    convert = page.index('<span class="badge error">error</span> tool convert_currency <span')
    assert handoff < convert
    inside = page[handoff:convert]  # the hand-off's call: fraud-bot's whole run is drawn inside it
    assert f"@ agent {AGENTS}/fraud-bot" in inside
    assert 'class="handoff"' in inside
    assert "customer 12345 does not recognise a payment" in inside
    assert "tool list_recent <span" in inside
    assert "I have reviewed" in inside
    # The profile handed to the vendor's tool is masked as the agents mask it; the hostile currency is text.
    arguments = text_of(page[convert:])
    assert '"email": "a***@example.com"' in arguments
    assert '"ni_number": "QQ ** ** ** C"' in arguments
    assert HOSTILE not in page
    assert html.escape(HOSTILE) in page
    assert "tools/call convert_currency is not allowed" in text_of(page[convert:])
    assert f'href="/traces/{world.trace_b}"' in page

    assert a.status_code == 200
    assert_safe(a)
    steps = re.findall(r"(?:tool|hand-off) (\w+) <span", a.text)
    assert steps == ["get_balance", "list_recent", "convert_currency", "get_profile"]
    profile = text_of(a.text[a.text.index("tool get_profile <span") :])
    assert '"phone": "+44 *** *** 100"' in profile
    assert '"address": "Manchester, United Kingdom"' in profile
    for trace_id in world.traces_a:
        assert f'href="/traces/{trace_id}"' in a.text
    assert len(world.traces_a) == 2


async def test_trace_waterfall_runs_across_the_components_in_order_with_the_deny_marked(world: World) -> None:
    (page,) = await get(world, f"/traces/{world.trace_b}")

    assert page.status_code == 200
    assert_safe(page)
    rows = waterfall(page.text)
    assert {r.component for r in rows} >= {
        "support-bot",
        "fraud-bot",
        "model",
        "waypoint",
        "MCP server",
        "ztunnel",
    }
    root = rows[0]
    assert (root.component, root.label, root.depth) == ("support-bot", "invoke_agent support-bot", 0)
    assert root.left == 0.0  # the trace starts with it; a pooled connection's span may end after it
    assert max(r.left + r.width for r in rows) == pytest.approx(100.0, abs=0.01)

    handoff = next(r for r in rows if r.label.startswith("hand-off fraud_bot"))
    fraud_run = next(r for r in rows if r.label == "invoke_agent fraud-bot")
    convert = next(r for r in rows if r.label.startswith("tool convert_currency"))
    assert handoff.n < fraud_run.n < convert.n
    assert fraud_run.depth > handoff.depth == convert.depth == 1
    assert handoff.left < fraud_run.left < convert.left  # the bars start where their spans did
    assert convert.mark == "error"
    assert "error" in convert.bar.split()

    # Each tool call's request through the waypoint, to the MCP server, into its ztunnel: nested in order.
    listed = next(r for r in rows if r.label == "tool list_recent @ transaction-mcp")
    call = next(r for r in rows if r.n > listed.n and r.label.endswith("tools/call list_recent → allow"))
    upstream = rows[call.n + 1]
    inbound = rows[call.n + 2]
    assert (call.component, upstream.component, inbound.component) == ("waypoint", "MCP server", "ztunnel")
    assert listed.depth < call.depth < upstream.depth < inbound.depth
    assert "transaction-mcp" in inbound.label

    (denied,) = [r for r in rows if r.mark == "deny"]
    assert denied.component == "waypoint"
    assert denied.label.endswith("tools/call convert_currency → deny")
    assert denied.n > convert.n
    assert denied.depth > convert.depth
    assert DENY_RULE in denied.note
    assert "deny" in denied.bar.split()
    evidence = page.text[page.text.index("<h2>Evidence records</h2>") :]
    assert "<tr class=row-deny>" in evidence
    assert f"[{DENY_RULE}]" in text_of(evidence)
    assert f'href="/sessions/{world.conversation_b}"' in page.text


async def test_lookups_that_find_nothing_say_so_and_echo_only_text(world: World) -> None:
    hostile = "<img src=x onerror=alert(1)>"
    bad, zero, unknown, session, form = await get(
        world,
        "/traces/not-a-trace",
        "/traces/" + "0" * 32,
        "/traces/" + "ab" * 16,
        f"/sessions/{hostile}",
        f"/traces?id=0x{world.trace_b.upper()}",
    )
    assert [r.status_code for r in (bad, zero, unknown, session)] == [404, 404, 404, 404]
    assert "No such trace" in unknown.text
    assert hostile not in session.text
    assert html.escape(hostile) in session.text
    assert form.status_code == 303
    assert form.headers["location"] == f"/traces/{world.trace_b}"


def test_a_half_written_or_broken_span_line_hides_nothing(world: World, tmp_path: Path) -> None:
    files = ClusterFiles(tmp_path / "state")
    files.traces.mkdir(parents=True)
    for source in world.files.outputs("traces", "agent-*.jsonl"):
        copy = files.traces / source.name
        shutil.copyfile(source, copy)
        with copy.open("a", encoding="utf-8") as out:
            out.write('not json\n{"context": {}}\n{"name": "invoke_agent support-bot", "context": {"tra')

    sessions = read_sessions(files)

    assert set(sessions) == {world.conversation_a, world.conversation_b}
    assert [t.user for t in sessions[world.conversation_a].turns] == [SEED_PROMPT, DETAILS_PROMPT]
    (turn,) = sessions[world.conversation_b].turns
    assert [c.name for c in turn.calls] == ["fraud_bot", "convert_currency"]
    assert [c.name for c in turn.calls[0].handoffs[0].calls] == ["list_recent"]


async def test_the_callers_connection_is_correlated_by_identity_and_time(
    world: World, tmp_path: Path
) -> None:
    """The chatbot records no span and ztunnel starts a trace per connection: the connection that
    carried the request is found by the agent's identity and the run's start, and drawn first."""
    files = ClusterFiles(tmp_path / "state")
    shutil.copytree(world.files.root, files.root)
    (run,) = [
        s
        for path in files.outputs("traces", "agent-*.jsonl")
        for s in read_spans(path)
        if s["name"] == "invoke_agent support-bot" and s["context"]["trace_id"] == f"0x{world.traces_a[0]}"
    ]
    started = datetime.fromisoformat(run["start_time"].replace("Z", "+00:00")).timestamp()
    opened = int((started - 0.05) * 1e9)
    chatbot, support = (
        "spiffe://cluster.local/ns/trustusbank-bank-frontend/sa/chatbot",
        "spiffe://cluster.local/ns/trustusbank-bank-agents/sa/support-bot",
    )
    # What both ztunnels write when the pooled connection closes: its own trace, begun before the run.
    provider = setup_tracing("ztunnel", files.traces / "ztunnel-trustusbank-worker2.jsonl")
    tracer = provider.get_tracer("ztunnel")
    attributes = {"src.identity": chatbot, "dst.identity": support}
    outbound = tracer.start_span(
        "ztunnel outbound", kind=SpanKind.CLIENT, attributes=attributes, start_time=opened
    )
    inbound = tracer.start_span(
        "ztunnel inbound",
        context=trace.set_span_in_context(outbound),
        kind=SpanKind.SERVER,
        attributes=attributes,
        start_time=opened + 1000,
    )
    inbound.end()
    outbound.end()
    provider.shutdown()

    async with serving(create_app(files)) as url, httpx.AsyncClient(base_url=url) as http:
        page = await http.get(f"/traces/{world.traces_a[0]}")

    rows = waterfall(page.text)
    group, out, into, root = rows[:4]
    assert group.component == "chatbot"
    assert group.label.startswith(
        "trustusbank-bank-frontend/chatbot → support-bot: the connection that carried"
    )
    assert "correlated" in group.note
    assert [(r.label.split(" on ")[0], r.depth) for r in (out, into)] == [
        ("ztunnel outbound", 1),
        ("ztunnel inbound", 2),
    ]
    assert "began" in out.note
    assert "lasted" in out.note  # the connection outlives the run: its bar is clipped to the trace
    assert (root.label, root.depth) == ("invoke_agent support-bot", 0)
