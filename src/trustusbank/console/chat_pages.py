"""The console's message form for an agent, and the page with the agent's answer or refusal.

A plain form that posts to `/agents/<ns>/<name>/messages` (no script: the page works as it is
served). The answer page shows who sent the message, as the front door named them, the
agent's answer, or its refusal with the AccessPolicy the agent named; and the form again, to
continue the same conversation, whose session the sessions pages show once the agent's spans
are written.
"""

from __future__ import annotations

from trustusbank.console.agent_chat import MAX_MESSAGE, Exchange
from trustusbank.console.session_pages import agent_link, session_link
from trustusbank.console.shell import Page, esc, path_part


def message_form(ref: str, context_id: str = "") -> str:
    namespace, _, name = ref.partition("/")
    action = f"/agents/{path_part(namespace)}/{path_part(name)}/messages"
    keep = f'<input type="hidden" name="context" value="{esc(context_id)}">' if context_id else ""
    return (
        f'<form class="send" method="post" action="{esc(action)}">{keep}'
        f'<label for="message">Message to {esc(name)}</label><br>'
        f'<textarea id="message" name="message" rows="3" cols="80" maxlength="{MAX_MESSAGE}" required>'
        "</textarea><br><button>Send as yourself</button>"
        '<span class="muted"> sent with your sign-in (your ID token): the agent\'s AccessPolicy '
        "decides on your groups</span></form>"
    )


def message_box(ref: str, context_id: str = "") -> str:
    return f'<section class="box"><h2>Talk to {esc(ref)}</h2>{message_form(ref, context_id)}</section>'


def exchange_page(ref: str, exchange: Exchange, who: str) -> Page:
    page = Page(f"Message to {ref}")
    page.add(
        f"<p class='muted'>{agent_link(ref)} · <a href='/'>All agents</a></p>",
        '<section class="box">',
        f'<div class="msg user"><span class="who">{esc(who)}</span>{esc(exchange.asked)}</div>',
    )
    if exchange.answered:
        page.add(f'<div class="msg agent"><span class="who">{esc(ref)}</span>{esc(exchange.text)}</div>')
    else:
        status = f"HTTP {exchange.status}: " if exchange.status else ""
        named = f'<strong class="policy">{esc(exchange.policy)}</strong>'
        policy = f"<p>AccessPolicy {named}</p>" if exchange.policy else ""
        page.add(
            f'<div class="msg refused"><span class="who"><span class="badge deny">refused</span> {esc(ref)}'
            f"</span>{esc(status)}{esc(exchange.text)}</div>{policy}"
        )
    if exchange.context_id:
        page.add(f"<p class='muted'>Conversation {session_link(exchange.context_id)}</p>")
    page.add("</section>", message_box(ref, exchange.context_id))
    return page
