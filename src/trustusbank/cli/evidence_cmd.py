"""`trustusbank evidence ingest|verify|query|trace|report`: the auditor's view of what the cluster did.

Every command but `ingest` ingests first, so an answer includes what happened a
moment ago; `--no-ingest` reads the store as it is. A store that no longer
reaches its recorded head is not extended (that would hide a cut tail), nor is
one on a full disk: the command says so and answers from the store as it is. A
damaged database file is an error naming it (exit 1), whichever command meets it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from trustusbank.cli.k8s_options import K8s, K8sContext

# The store, its readers and the report load in the commands below, when one runs, so `--help`
# stays light.
if TYPE_CHECKING:
    from trustusbank.cluster.layout import ClusterFiles
    from trustusbank.evidence import EvidenceStore, Record, TraceView

app = typer.Typer(
    help="The evidence store: ingest the cluster's logs and spans, verify the chain, query, trace, report.",
    no_args_is_help=True,
)
err = Console(stderr=True, soft_wrap=True, highlight=False)

NoIngest = Annotated[bool, typer.Option("--no-ingest", help="Read the store as it is; do not ingest first.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code)


class _Where:
    """Which evidence chain the subcommands read: the embedded cluster's, or (--k8s) the one built
    from a Kubernetes cluster's logs under `<state>/k8s`."""

    k8s = False
    context: str | None = None


@app.callback()
def where(k8s: K8s = False, context: K8sContext = None) -> None:
    _Where.k8s, _Where.context = k8s, context


def _files() -> ClusterFiles:
    from trustusbank.cluster.layout import ClusterFiles
    from trustusbank.paths import state_dir

    if not _Where.k8s:
        return ClusterFiles(state_dir())
    from trustusbank.cli import k8s_story  # Kubernetes mode is imported only when asked for

    return ClusterFiles(k8s_story.options(_Where.context).workdir)


def _collect() -> None:
    """With --k8s: mirror what the cluster logged since last time into the chain's inputs first."""
    if _Where.k8s:
        from trustusbank.cli import k8s_story
        from trustusbank.k8s.collect import Collector

        driver = k8s_story.driver(_Where.context, lambda line: err.print(line, markup=False))
        collected = Collector(driver.kubectl, driver.files, driver.endpoints).collect()
        err.print(f"collected from {driver.where}: {collected.summary()}", markup=False)
        for problem in collected.problems:
            err.print(f"warning: {problem}", markup=False)


def _store(no_ingest: bool = False) -> tuple[ClusterFiles, EvidenceStore]:
    from trustusbank.evidence import EvidenceStore, has_cluster_state, ingest
    from trustusbank.evidence.store import ChainBroken, HeadNotWritten
    from trustusbank.sqlite_file import DatabaseFull

    files = _files()
    if not no_ingest:
        _collect()
    if not has_cluster_state(files):
        raise _fail(
            f"no cluster state under {files.root}: run `trustusbank up` first (or set TRUSTUSBANK_STATE_DIR)"
        )
    store = EvidenceStore.of(files)
    if not no_ingest:
        try:
            ingest(files, store)
        except ChainBroken as exc:
            err.print(f"warning: not ingesting, the evidence chain is broken: {exc}", markup=False)
        except (DatabaseFull, HeadNotWritten) as exc:  # answer from what is stored; nothing was lost
            err.print(f"warning: could not ingest: {exc}", markup=False)
    return files, store


def _line(record: Record) -> str:
    from trustusbank.evidence.render import short

    parts = [f"#{record.seq}", record.time, record.kind]
    if record.src_identity or record.dst_identity:
        parts.append(f"{record.src_identity or '?'} → {record.dst_identity or '?'}")
    if record.tool:
        parts.append(f"tool={record.tool}")
    if record.policy:
        parts.append(f"policy={record.policy}")
    if record.image:
        parts.append(f"image={record.image}" + (f"@{short(record.digest)}" if record.digest else ""))
    if record.trace_id:
        parts.append(f"trace={record.trace_id}")
    return "  ".join(parts) + f"\n      {record.summary}"


@app.command("ingest")
def ingest_command() -> None:
    """Append the cluster's new log lines and spans to the evidence chain."""
    from trustusbank.evidence import EvidenceStore, held_back, ingest

    _collect()
    files = _files()
    added = ingest(files)
    store = EvidenceStore.of(files)
    head = store.recorded_head()
    typer.echo(f"{added} new record(s); chain head seq {head.seq if head else 0}")
    for name, size in held_back(files, store).items():
        err.print(
            f"held back: {name} ends in an unfinished line ({size} bytes); it is taken once its writer "
            "ends it (a writer that died mid-line: its next write does)",
            markup=False,
        )


@app.command("verify")
def verify_command(
    anchor: Annotated[
        str | None,
        typer.Option(help="SEQ:HASH of a head kept elsewhere (the report prints it); it must still hold."),
    ] = None,
    no_ingest: NoIngest = False,
    as_json: AsJson = False,
) -> None:
    """Walk the hash chain; exit 1 naming the first record that does not check out."""
    from trustusbank.evidence import Head

    expected = None
    if anchor is not None:
        seq, _, digest = anchor.partition(":")
        if not seq.isdigit() or not digest:
            raise _fail(f"--anchor {anchor!r}: expected SEQ:HASH", 2)
        expected = Head(int(seq), digest)
    _, store = _store(no_ingest)
    result = store.verify(expected)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        (typer.echo if result.ok else err.print)(result.describe())
    if not result.ok:
        raise typer.Exit(1)


@app.command("query")
def query_command(
    since: Annotated[str | None, typer.Option(help="From: ISO 8601, or relative (10m, 2h, 1d).")] = None,
    until: Annotated[str | None, typer.Option(help="Until: ISO 8601, or relative.")] = None,
    identity: Annotated[
        str | None, typer.Option(help="spiffe://<td>/ns/<ns>/sa/<sa> or <ns>/<sa>, as source or destination.")
    ] = None,
    image: Annotated[str | None, typer.Option(help="Image reference, or part of one.")] = None,
    digest: Annotated[str | None, typer.Option(help="Digest, or its prefix (sha256: optional).")] = None,
    kind: Annotated[
        list[str] | None, typer.Option(help="Record kind (l4-deny, tool-call...); repeatable.")
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option(help="ztunnel, waypoint, agent, agent-span, runtime...")
    ] = None,
    denies: Annotated[
        bool, typer.Option("--denies", help="Only denies (every kind ending in -deny).")
    ] = False,
    trace_id: Annotated[str | None, typer.Option("--trace", help="Only records of this trace id.")] = None,
    workload: Annotated[str | None, typer.Option(help="The acting workload (a Deployment name).")] = None,
    limit: Annotated[int, typer.Option(help="Show the latest N matches; 0 for all.")] = 200,
    no_ingest: NoIngest = False,
    as_json: AsJson = False,
) -> None:
    """Records matching every filter given, in time order."""
    from trustusbank.evidence import Query, QueryError, query

    q = Query(
        since=since,
        until=until,
        identity=identity,
        image=image,
        digest=digest,
        kinds=tuple(kind or ()),
        sources=tuple(source or ()),
        denies=denies,
        trace_id=trace_id,
        workload=workload,
    )
    _, store = _store(no_ingest)
    try:
        records = query(store, q)
    except QueryError as exc:
        raise _fail(str(exc), 2) from None
    shown = records[-limit:] if limit > 0 else records
    if as_json:
        payload: dict[str, Any] = {"count": len(records), "records": [r.to_dict() for r in shown]}
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
        return
    for record in shown:
        typer.echo(_line(record))
    more = f" (the latest {len(shown)} shown; --limit 0 for all)" if len(shown) < len(records) else ""
    err.print(f"{len(records)} record(s){more}", markup=False)


def _print_view(view: TraceView, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(view.to_dict(), indent=2, ensure_ascii=False))
        return
    typer.echo(f"{view.subject}: {len(view.records)} record(s), traces {', '.join(view.trace_ids) or '-'}")
    for linked in view.records:
        typer.echo(_line(linked.record) + f"\n      [{linked.link}]")


@app.command("trace")
def trace_command(
    trace_id: Annotated[
        str | None, typer.Argument(help="A trace id (32 hex digits).", show_default=False)
    ] = None,
    record: Annotated[
        int | None, typer.Option("--record", help="Instead: the records behind record #SEQ (e.g. a deny).")
    ] = None,
    no_ingest: NoIngest = False,
    as_json: AsJson = False,
) -> None:
    """Every record of one trace, with the connections and denies joined to it, in time order."""
    from trustusbank.evidence import explain, trace

    if (trace_id is None) == (record is None):
        raise _fail("give a trace id or --record SEQ (one of them)", 2)
    _, store = _store(no_ingest)
    view = trace(store, trace_id) if trace_id is not None else explain(store, int(record or 0))
    if not view.records:
        raise _fail(f"no records of {view.subject}", 1)
    _print_view(view, as_json)


@app.command("report")
def report_command(
    dora: Annotated[
        bool,
        typer.Option(
            "--dora/--no-dora", help="The DORA report: Art. 17 incident evidence, Art. 28 register."
        ),
    ] = True,
    out: Annotated[
        Path | None, typer.Option(help="Directory to write into (default <state>/reports/<UTC time>/).")
    ] = None,
    registry: Annotated[
        str | None, typer.Option(help="Read the Art. 28 register from this agentregistry URL instead.")
    ] = None,
    suspect_namespace: Annotated[
        list[str] | None,
        typer.Option(help="Connections into this namespace count as leaks even if never denied; repeatable."),
    ] = None,
    no_ingest: NoIngest = False,
) -> None:
    """Write the DORA report as Markdown, HTML and JSON; print where."""
    from trustusbank.evidence import write_dora_report

    if not dora:
        raise _fail("the DORA report is the only report there is; drop --no-dora", 2)
    files, store = _store(no_ingest)
    paths = write_dora_report(files, out, registry, tuple(suspect_namespace or ()), store)
    for path in (paths.markdown, paths.html, paths.json):
        typer.echo(str(path))
