"""`paperchat ingest`, `paperchat remove` and `paperchat stats`.

Heavy libraries (chromadb, torch) are imported inside the command bodies so `--help` is fast.
`ingest` and `remove` hold the data dir's writer lock (`ingest.lock`) while they run.
Failures go through the one handler (`paperchat.cli.errors`); a run that stored the good
records but rejected some exits `EXIT_FAILED`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paperchat.cli.errors import EXIT_FAILED
from paperchat.cli.options import JsonFlag, load_settings

if TYPE_CHECKING:
    from ingest.pipeline import IngestReport
    from ingest.selection import Selection

# Help texts: one paragraph per line; Typer keeps the line breaks it is given.
INGEST_HELP = (
    "Add paper abstracts to the store; re-running skips papers already stored.\n\n"
    "Reads the sample corpus layouts (.txt), JSONL or CSV with arXiv field names (id, "
    "title, abstract, authors, categories, update_date or published, url, doi), and the arXiv "
    "metadata snapshot (arxiv-metadata-oai-snapshot.json, JSON lines, recognised by its fields "
    "whatever its name; read in batches, so memory stays flat). A folder means "
    "every supported file in it. Records that cannot be read are listed as file:line: reason; "
    "the others are still stored. Links that are not http(s) are dropped with a warning.\n\n"
    "Ids: arxiv:<id> for real arXiv ids (2301.01234, hep-th/9901001, arXiv: prefixes and "
    "arxiv.org links; versions folded), src:<hash> for other ids (namespaced by file, so row "
    "numbers of two files never collide), p:<hash> of title and abstract for records without "
    "one. A paper already stored under another id with the same title and abstract is skipped "
    "as a duplicate. A changed abstract replaces that paper's chunks: the new ones are written "
    "before the old ones are deleted.\n\n"
    "--category, --since, --until and --limit choose records as they are read: a category "
    "matches any of a record's categories (cs.CL; an archive such as cs matches cs.*; repeat "
    "the flag for several); dates are the first version's submission date (else update_date), "
    "inclusive; --limit stops after that many matching records.\n\n"
    "--rebuild builds a new store from the given files and swaps it in only if it holds at "
    "least one paper; otherwise the current store stays and the command says why.\n\n"
    "Examples:\n\n"
    "  paperchat ingest data/sample\n\n"
    "  paperchat ingest papers.jsonl more.csv --json\n\n"
    "  paperchat ingest arxiv-metadata-oai-snapshot.json --category cs.CL --since 2023-01-01\n\n"
    "  paperchat ingest arxiv-metadata-oai-snapshot.json --category cs --limit 5000\n\n"
    "  PAPERCHAT_EMBED=openai paperchat ingest --rebuild data/sample\n\n"
    "  paperchat ingest new.jsonl --wait 600   # queue behind a running ingest\n\n"
    "Exit status: 0 everything stored, 1 some records rejected (the rest are stored) or the "
    "store refused (another embedding model, a rebuild that stored nothing, another writer "
    "busy), 2 usage error or bad setting (see paperchat --help)."
)
REMOVE_HELP = (
    "Delete papers and all their chunks from the store.\n\n"
    "Example:\n\n"
    "  paperchat remove arxiv:2407.15734 p:0123456789abcdef\n\n"
    "Exit status: 0 all removed, 1 some id was not in the store or another writer was busy, "
    "2 usage error or bad setting (see paperchat --help)."
)
STATS_HELP = (
    "Show how many papers and chunks the store holds, where it is and which embedding model "
    "built it.\n\n"
    "Example:\n\n"
    "  paperchat stats --json"
)

WaitOption = Annotated[
    float,
    typer.Option(
        "--wait",
        min=0,
        metavar="SECONDS",
        help="If another paperchat process is writing to this data dir, wait up to this long "
        "for it to finish (default: refuse at once, naming it).",
    ),
]


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to the root app."""
    app.command("ingest", help=INGEST_HELP)(ingest)
    app.command("remove", help=REMOVE_HELP)(remove)
    app.command("stats", help=STATS_HELP)(stats)


def ingest(
    paths: Annotated[
        list[Path],
        typer.Argument(
            metavar="PATH...",
            exists=True,
            readable=True,
            show_default=False,
            help="Files or folders to read (a folder means every supported file in it).",
        ),
    ],
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Build a new store from PATH... alone (e.g. after changing PAPERCHAT_EMBED) "
            "and swap it in only if it holds at least one paper; the current store stays "
            "until then.",
        ),
    ] = False,
    category: Annotated[
        list[str] | None,
        typer.Option(
            "--category",
            metavar="CAT",
            show_default=False,
            help="Keep records with this arXiv category (cs.CL) or archive (cs); repeatable.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="YYYY-MM-DD",
            help="Keep records first submitted on or after this day (else by update_date).",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="YYYY-MM-DD",
            help="Keep records first submitted on or before this day (else by update_date).",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=1, metavar="N", help="Stop after N records that pass the filters."
        ),
    ] = None,
    wait: WaitOption = 0.0,
    as_json: JsonFlag = False,
) -> None:
    """Add paper abstracts to the store (see `INGEST_HELP`)."""
    from ingest.embedding import build_embedder, embedder_id
    from ingest.lock import writer_lock
    from ingest.pipeline import RebuildRefused, ingest_paths
    from rag.factory import open_store

    selection = _selection(category or [], since, until, limit)
    settings = load_settings()
    command = " ".join(["paperchat ingest", *(["--rebuild"] if rebuild else []), *map(str, paths)])
    with writer_lock(settings, command[:200], wait_s=wait):
        model = embedder_id(settings)
        store = open_store(settings, create=True, any_model=rebuild)
        try:
            report = ingest_paths(
                paths,
                settings,
                store=store,
                embedder=lambda: build_embedder(settings),
                embedder_id=model,
                rebuild=rebuild,
                progress=not as_json and sys.stderr.isatty(),
                selection=selection,
            )
        except RebuildRefused as err:
            _echo_problems(err.report)
            raise
    if as_json:
        _print_json(report.to_dict())
    else:
        _echo_problems(report)
        if report.migration:
            typer.echo(report.migration, err=True)
        filtered = f", {report.filtered} filtered out" if selection.active else ""
        typer.echo(
            f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
            f"{len(report.rejected)} rejected, {report.duplicates} duplicates skipped"
            f"{filtered} ({len(report.files)} files)."
        )
        rebuilt = "Rebuilt store" if report.rebuilt else "Store"
        typer.echo(f"{rebuilt}: {report.papers} papers, {report.chunks} chunks at {report.store}")
    if report.rejected:
        raise typer.Exit(EXIT_FAILED)


def _selection(
    categories: list[str], since: str | None, until: str | None, limit: int | None
) -> Selection:
    """The record filters the flags ask for; a bad value is a usage error (exit status 2)."""
    from ingest.selection import Selection, parse_category, parse_day

    try:
        return Selection(
            categories=tuple(parse_category(c) for c in categories),
            since=parse_day(since, "--since") if since is not None else None,
            until=parse_day(until, "--until") if until is not None else None,
            limit=limit,
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err


def _echo_problems(report: IngestReport) -> None:
    """Rejected records and warnings, one `file:line: ...` line each, on stderr."""
    for problem in [*report.rejected, *report.warnings]:
        typer.echo(str(problem), err=True)


def remove(
    paper_ids: Annotated[
        list[str],
        typer.Argument(
            metavar="ID...",
            show_default=False,
            help="Paper ids as `paperchat retrieve` shows them (arxiv:... or p:...).",
        ),
    ],
    wait: WaitOption = 0.0,
    as_json: JsonFlag = False,
) -> None:
    """Delete papers and their chunks (see `REMOVE_HELP`)."""
    from ingest.lock import writer_lock
    from rag.factory import open_store

    settings = load_settings()
    command = " ".join(["paperchat remove", *paper_ids])[:200]
    with writer_lock(settings, command, wait_s=wait):
        store = open_store(settings, create=False, any_model=True)
        deleted = store.delete_papers(paper_ids)
        missing = [pid for pid in dict.fromkeys(paper_ids) if pid not in deleted]
        papers, chunks = store.sizes()
        result = {
            "removed": list(deleted),
            "not_found": missing,
            "chunks_deleted": sum(deleted.values()),
            "papers": papers,
            "chunks": chunks,
        }
    if as_json:
        _print_json(result)
    else:
        for pid in missing:
            typer.echo(f"{pid}: not in the store (see `paperchat retrieve` for ids)", err=True)
        typer.echo(
            f"Removed {len(deleted)} papers ({result['chunks_deleted']} chunks); "
            f"{result['papers']} papers, {result['chunks']} chunks left."
        )
    if missing:
        raise typer.Exit(EXIT_FAILED)


def stats(as_json: JsonFlag = False) -> None:
    """Report the store's size, location and model (see `STATS_HELP`)."""
    from ingest.embedding import embedder_id
    from ingest.store import SCHEMA
    from rag.factory import open_store

    settings = load_settings()
    configured = embedder_id(settings)
    result: dict[str, Any] = {"papers": 0, "chunks": 0, "embedding_model": None}
    if settings.chroma_url or settings.chroma_path.exists():
        store = open_store(settings, create=True, any_model=True)
        papers, chunks = store.sizes()
        result = {
            "papers": papers,
            "chunks": chunks,
            "embedding_model": store.embedder_id,
            "id_scheme": store.schema,
        }
    result["store"] = settings.chroma_url or str(settings.chroma_path)
    result["configured_embedding_model"] = configured
    if as_json:
        _print_json(result)
        return
    typer.echo(f"Papers:          {result['papers']}")
    typer.echo(f"Chunks:          {result['chunks']}")
    typer.echo(f"Store:           {result['store']}")
    typer.echo(f"Embedding model: {result['embedding_model'] or 'none yet'}")
    if result["embedding_model"] not in (None, configured):
        typer.echo(f"Warning: {configured} is configured; run `paperchat ingest --rebuild PATH`.")
    if result["papers"] and result.get("id_scheme", SCHEMA) < SCHEMA:
        typer.echo(
            f"Note: this store uses id scheme {result['id_scheme']}; the next `paperchat "
            f"ingest` copies it to scheme {SCHEMA} (nothing re-embedded, nothing lost)."
        )
    if not result["papers"]:
        typer.echo("The store is empty: paperchat ingest data/sample")


def _print_json(data: dict[str, Any]) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
