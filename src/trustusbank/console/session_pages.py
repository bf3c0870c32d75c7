"""The agents page, an agent's sessions, and one session's tool-call tree, as HTML.

Messages, arguments and results pass through the session's `Masker` before `esc`: masked
as the agents mask, then escaped. Hand-offs are drawn inside the tool call that made them,
to a bounded depth (a parent chain in hostile span files could otherwise loop).
"""

from __future__ import annotations

from typing import Any

from trustusbank.console.agents import Agent
from trustusbank.console.conversations import Session, ToolCall, Turn
from trustusbank.console.masking import Masker
from trustusbank.console.shell import Page, esc, path_part, short, tags, when

MAX_NESTING = 12


def agent_link(ref: str) -> str:
    namespace, _, name = ref.partition("/")
    return f'<a href="/agents/{path_part(namespace)}/{path_part(name)}">{esc(ref)}</a>'


def session_link(session_id: str, text: str | None = None) -> str:
    return f'<a href="/sessions/{path_part(session_id)}">{esc(text if text is not None else session_id)}</a>'


def trace_link(trace_id: str) -> str:
    return f'<a href="/traces/{path_part(trace_id)}">{esc(trace_id)}</a>'


# -- / ---------------------------------------------------------------------------------------------


def _card(card: dict[str, Any] | None, error: str | None) -> str:
    if card is None:
        return f'<p class="muted">Agent card not readable: {esc(error or "unknown")}</p>'
    interfaces = card.get("supportedInterfaces") or card.get("supported_interfaces") or []
    endpoints = "".join(
        f"<li>{esc(i.get('url', '?'))} <span class='muted'>{esc(i.get('protocolBinding', ''))} "
        f"{esc(i.get('protocolVersion', ''))}</span></li>"
        for i in interfaces
        if isinstance(i, dict)
    ) or (f"<li>{esc(card['url'])}</li>" if card.get("url") else "")
    skills = "".join(
        f"<tr><td>{esc(s.get('name', s.get('id', '?')))}</td><td>{esc(s.get('description', ''))}</td>"
        f"<td>{tags(s.get('tags') or [])}</td></tr>"
        for s in card.get("skills") or []
        if isinstance(s, dict)
    )
    return (
        f"<h3>Agent card</h3><p><strong>{esc(card.get('name', '?'))}</strong> "
        f"<span class='muted'>version {esc(card.get('version', '?'))}</span><br>"
        f"{esc(card.get('description', ''))}</p>"
        f"<ul>{endpoints}</ul>"
        + (
            f"<table><tr><th>Skill</th><th>Description</th><th>Tags</th></tr>{skills}</table>"
            if skills
            else ""
        )
    )


def _tools(agent: Agent) -> str:
    spec = agent.spec
    if spec is None:
        return f'<p class="muted">Spec not resolved: {esc(agent.spec_error or "no Agent in force")}</p>'
    rows = "".join(
        f"<tr><td>MCP server {esc(server.name)}</td>"
        f"<td>{tags(server.tool_names) or 'every tool it offers'}</td>"
        f"<td class='muted'>{esc(server.url)}</td></tr>"
        for server in spec.mcp_servers
    )
    rows += "".join(
        f"<tr><td>agent {agent_link(f'{sub.namespace}/{sub.name}')}</td><td>{tags([sub.tool_name])}</td>"
        f"<td class='muted'>{esc(sub.url)}</td></tr>"
        for sub in spec.sub_agents
    )
    model = f"{spec.model.provider} {spec.model.model} (ModelConfig {spec.model.config})"
    access = "AccessPolicies enforced" if spec.access_enforced else "no AccessPolicy targets it"
    return (
        f"<h3>Tools</h3><table><tr><th>From</th><th>Tools</th><th>Address</th></tr>{rows}</table>"
        f"<p class='muted'>Model: {esc(model)} · {esc(access)}</p>"
    )


def index_page(agents: list[Agent], sessions: dict[str, Session]) -> Page:
    page = Page("Agents")
    if not agents:
        page.add(
            '<section class="box"><p>No agents: is a cluster running from this state directory?</p></section>'
        )
    for agent in agents:
        count = sum(1 for s in sessions.values() if agent.ref in s.agents)
        pod = (
            f"pod {esc(agent.pod.name)} on {esc(agent.pod.node)}, app address {esc(agent.pod.app_ip)}"
            if agent.pod
            else "no pod"
        )
        page.add(
            f'<section class="box"><h2>{agent_link(agent.ref)}</h2>'
            f"<p class='muted'>{pod} · {count} session(s)</p>"
            f"{_card(agent.card, agent.card_error)}{_tools(agent)}</section>"
        )
    return page


# -- /agents/<ns>/<name> ---------------------------------------------------------------------------


def _message(who: str, text: str | None, masker: Masker, css: str) -> str:
    shown = masker.text(text) if text is not None else "(not on the agent's span: not recorded)"
    return f'<div class="msg {css}"><span class="who">{esc(who)}</span>{esc(shown)}</div>'


def agent_page(ref: str, sessions: list[Session], form: str = "") -> Page:
    """`form`: the message form (`chat_pages`), where the agent runs and can be sent one."""
    page = Page(f"Agent {ref}")
    count = f"<p class='muted'>{len(sessions)} session(s), newest first. <a href='/'>All agents</a></p>"
    page.add(count, form)
    for session in sessions:
        masker = Masker(session.revealed())
        own = sorted(
            (t for t in [*session.turns, *session.nested] if t.agent == ref), key=lambda t: t.span.start
        )
        calls = len(session.calls())
        page.add(
            f'<section class="box"><h2>Session {session_link(session.id)}</h2>'
            f"<p class='muted'>started {esc(when(session.start))} · {len(own)} turn(s) of this agent · "
            f"{calls} tool call(s) · agents {esc(', '.join(sorted(session.agents)))}</p>"
        )
        for turn in own:
            asked_by = "customer" if turn in session.turns else "another agent (hand-off)"
            page.add(
                _message(f"{asked_by}, {when(turn.span.start)}", turn.user, masker, "user"),
                _message(turn.agent, turn.answer, masker, "agent"),
            )
        page.add("</section>")
    return page


# -- /sessions/<id> --------------------------------------------------------------------------------


def _call(call: ToolCall, masker: Masker, depth: int) -> str:
    target = f"agent {call.server}" if call.is_agent else f"{call.server or 'no server'}"
    verb = "hand-off" if call.is_agent else "tool"
    failed = " failed" if call.is_error else ""
    badge = '<span class="badge error">error</span> ' if call.is_error else ""
    out = [
        f'<li class="call{failed}"><div class="head">{badge}{esc(verb)} {esc(call.name)} '
        f'<span class="muted">@ {esc(target)} · {call.span.duration_ms:.1f} ms</span></div>',
        f"<div class='muted'>arguments</div><pre>{esc(masker.json_text(call.arguments))}</pre>",
        f"<details open><summary>result</summary><pre>{esc(masker.json_text(call.result))}</pre></details>",
    ]
    for handoff in call.handoffs:
        out.append(f'<div class="handoff">{_turn(handoff, masker, depth + 1)}</div>')
    out.append("</li>")
    return "".join(out)


def _turn(turn: Turn, masker: Masker, depth: int = 0) -> str:
    if depth > MAX_NESTING:
        return "<p class='muted'>(nested deeper than the page draws)</p>"
    stop = f" · stopped: {esc(turn.stop_reason)}" if turn.stop_reason else ""
    parts = [
        f"<h3>{agent_link(turn.agent)} <span class='muted'>{esc(when(turn.span.start))} · "
        f"{turn.span.duration_ms:.0f} ms · {turn.model_calls} model call(s) · trace "
        f"{trace_link(turn.span.trace_id)}{stop}</span></h3>",
        _message("asked", turn.user, masker, "user"),
    ]
    if turn.calls:
        parts.append(f"<ol class='calls'>{''.join(_call(c, masker, depth) for c in turn.calls)}</ol>")
    parts.append(_message(f"{turn.agent} answered", turn.answer, masker, "agent"))
    return "".join(parts)


def session_page(session: Session) -> Page:
    page = Page(f"Session {short(session.id, 80)}")
    masker = Masker(session.revealed())
    page.add(
        f"<p class='muted'>started {esc(when(session.start))} · agents "
        f"{', '.join(agent_link(a) for a in sorted(session.agents))} · personal data masked as the agents "
        "mask it</p>"
    )
    for turn in session.turns:
        page.add(f'<section class="box">{_turn(turn, masker)}</section>')
    if not session.turns:
        page.add('<section class="box"><p>Only hand-offs in this session; their caller was not recorded.</p>')
        page.add("".join(_turn(t, masker) for t in session.nested), "</section>")
    return page
