"""The console's agent pages (the write-up's kagent UI on 18007): agents, sessions, tool calls, traces.

- `/` every agent: its pod, the card it serves, the tools its spec gives it;
- `/agents/<ns>/<name>` its sessions, newest first, with their messages, and a form to send it
  one as the person signed in (POST `/agents/<ns>/<name>/messages`: `agent_chat`, with their
  ID token, which the agent's AccessPolicy judges);
- `/sessions/<id>` one session's turns: the tool-call tree with arguments and results,
  hand-offs to other agents nested in the call that made them;
- `/traces/<trace_id>` one trace as a waterfall across the components, denies marked.

Everything is read from the cluster's files on each request (the agents' and the mesh's
spans, the evidence store, the topology, the manifests in force) and from the agents' own
card endpoints, off the event loop. Nothing here can change the cluster (a message is the
person's own A2A call, which the agent admits or refuses); the trace page
first brings the evidence store up to date (`evidence.ingest`, as the evidence commands do),
so a deny logged a moment ago is marked.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from trustusbank.cluster.layout import ClusterFiles
from trustusbank.console.agent_chat import MAX_MESSAGE, send
from trustusbank.console.agents import cluster_agents, with_cards
from trustusbank.console.chat_pages import exchange_page, message_box
from trustusbank.console.conversations import Session, build_sessions, unresolved_parents
from trustusbank.console.session_pages import agent_page, index_page, session_page
from trustusbank.console.shell import Page, esc, not_found, path_part
from trustusbank.console.spanfiles import AGENT_FILES, read_spans, span_files
from trustusbank.console.trace_page import trace_page
from trustusbank.console.traces import gather
from trustusbank.evidence.sources import trace_id as normalize_trace_id


def read_sessions(files: ClusterFiles) -> dict[str, Session]:
    """Every session the agents' spans tell of; other components' spans are read only for the traces
    where a run's parent is not an agent's span (a hand-off that went through a waypoint)."""
    agent_paths = span_files(files, AGENT_FILES)
    spans = read_spans(agent_paths)
    missing = unresolved_parents(spans)
    if missing:
        others = [p for p in span_files(files) if p not in set(agent_paths)]
        spans += [s for s in read_spans(others, missing) if s.trace_id in missing]
    return {key: session for key, session in build_sessions(spans).items() if key}


MAX_FORM_BYTES = 64 * 1024
SAME_SITE = ("same-origin", "none")  # Sec-Fetch-Site values of a form this console served


def _cross_site(request: Request) -> bool:
    """A form posted from another origin (the session cookie is SameSite=Lax; this says it too)."""
    origin = request.headers.get("origin")
    own = f"{request.url.scheme}://{request.url.netloc}"
    fetched = request.headers.get("sec-fetch-site")
    return (origin is not None and origin != own) or (fetched is not None and fetched not in SAME_SITE)


def _problem(title: str, message: str, status: int) -> Response:
    page = Page(title)
    page.add(f'<section class="box"><p>{esc(message)}</p><p><a href="/">All agents</a></p></section>')
    return page.response(status)


def create_app(files: ClusterFiles) -> Starlette:
    async def index(_: Request) -> Response:
        agents = await run_in_threadpool(cluster_agents, files)
        sessions = await run_in_threadpool(read_sessions, files)
        return index_page(await with_cards(agents), sessions).response()

    async def agent(request: Request) -> Response:
        ref = f"{request.path_params['namespace']}/{request.path_params['name']}"
        sessions = await run_in_threadpool(read_sessions, files)
        known = {a.ref for a in await run_in_threadpool(cluster_agents, files)}
        theirs = sorted(
            (s for s in sessions.values() if ref in s.agents), key=lambda s: s.start, reverse=True
        )
        if ref not in known and not theirs:
            return not_found("No such agent", f"No agent {ref} runs or ran in this cluster.")
        return agent_page(ref, theirs, message_box(ref) if ref in known else "").response()

    async def message(request: Request) -> Response:
        ref = f"{request.path_params['namespace']}/{request.path_params['name']}"
        if _cross_site(request):
            return _problem("Not sent", "The form was not sent from this console.", 403)
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return _problem("Not sent", "The message is too long.", 413)
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        text, context = form.get("message", "").strip(), form.get("context", "")
        if not text or len(text) > MAX_MESSAGE:
            return _problem("Not sent", f"A message is 1 to {MAX_MESSAGE} characters.", 400)
        agent = next((a for a in await run_in_threadpool(cluster_agents, files) if a.ref == ref), None)
        if agent is None or agent.pod is None:
            return not_found("No such agent", f"No agent {ref} runs in this cluster: no pod to send it to.")
        user = request.scope.get("user")
        who = getattr(user, "email", "") or "nobody signed in (the sign-in is off)"
        exchange = await send(agent, text, request.headers.get("authorization"), context)
        status = 200 if exchange.answered else exchange.status or 502
        return exchange_page(ref, exchange, who).response(status)

    async def session(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        found = (await run_in_threadpool(read_sessions, files)).get(session_id)
        if found is None:
            return not_found("No such session", f"No agent recorded a session {session_id}.")
        return session_page(found).response()

    async def trace(request: Request) -> Response:
        raw = request.path_params["trace_id"]
        trace_id = normalize_trace_id(raw)
        if trace_id is None:
            return not_found("Not a trace id", f"{raw} is not a trace id (32 hex digits).")
        view = await run_in_threadpool(gather, files, trace_id)
        if not view.found:
            return not_found("No such trace", f"No span and no evidence record has the trace id {trace_id}.")
        return trace_page(view).response()

    async def open_trace(request: Request) -> Response:
        wanted = request.query_params.get("id", "").strip()
        trace_id = normalize_trace_id(wanted)
        if trace_id is None:
            return not_found("Not a trace id", f"{wanted} is not a trace id (32 hex digits).")
        return RedirectResponse(f"/traces/{path_part(trace_id)}", status_code=303)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/agents/{namespace}/{name}", agent, methods=["GET"]),
            Route("/agents/{namespace}/{name}/messages", message, methods=["POST"]),
            Route("/sessions/{session_id:path}", session, methods=["GET"]),
            Route("/traces", open_trace, methods=["GET"]),
            Route("/traces/{trace_id}", trace, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
