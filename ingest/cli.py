"""`paperchat ingest`, `paperchat remove` and `paperchat stats`.

Heavy libraries (chromadb, torch) are imported inside the command bodies so `--help` is fast.
Exit status: 0 clean, 1 when a record was rejected or the store refused, 2 for usage errors.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paperchat.errors import PaperchatError

if TYPE_CHECKING:
    from ingest.store import ChromaStore
    from paperchat.settings import Settings

# Help texts: one paragraph per line; Typer keeps the line breaks it is given.
INGEST_HELP = (
    "Add paper abstracts to the store; re-running skips papers already stored.\n\n"
    "Reads the sample corpus layouts (.txt), and JSONL or CSV with arXiv field names (id, "
    "title, abstract, authors, categories, update_date or published, url, doi). A folder means "
    "every supported file in it. A changed abstract replaces that paper's old chunks. Records "
    "that cannot be read are listed as file:line: reason; the others are still stored.\n\n"
    "Examples:\n\n"
    "  paperchat ingest data/sample\n\n"
    "  paperchat ingest papers.jsonl more.csv --json\n\n"
    "  PAPERCHAT_EMBED=openai paperchat ingest --rebuild data/sample\n\n"
    "Exit status: 0 everything stored, 1 some records rejected (the rest are stored) or the "
    "store refused, 2 usage error."
)
REMOVE_HELP = (
    "Delete papers and all their chunks from the store.\n\n"
    "Example:\n\n"
    "  paperchat remove arxiv:2407.15734 p:0123456789abcdef\n\n"
    "Exit status: 0 all removed, 1 some id was not in the store, 2 usage error."
)
STATS_HELP = (
    "Show how many papers and chunks the store holds, where it is and which embedding model "
    "built it.\n\n"
    "Example:\n\n"
    "  paperchat stats --json"
)

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print one JSON object instead of text (no progress bar).")
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
            "--rebuild", help="Empty the store first, e.g. after changing PAPERCHAT_EMBED."
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Add paper abstracts to the store (see `INGEST_HELP`)."""
    from ingest.embedding import build_embedder, embedder_id
    from ingest.pipeline import ingest_paths
    from paperchat.settings import Settings

    settings = Settings()
    with _errors_exit():
        model = embedder_id(settings)
        store = _open_store(settings, None if rebuild else model)
        report = ingest_paths(
            paths,
            settings,
            store=store,
            embedder=lambda: build_embedder(settings),
            embedder_id=model,
            rebuild=rebuild,
            progress=not as_json and sys.stderr.isatty(),
        )
    if as_json:
        _print_json(report.to_dict())
    else:
        for rejection in report.rejected:
            typer.echo(str(rejection), err=True)
        typer.echo(
            f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
            f"{len(report.rejected)} rejected, {report.duplicates} duplicates skipped "
            f"({len(report.files)} files)."
        )
        typer.echo(f"Store: {report.papers} papers, {report.chunks} chunks at {report.store}")
    if report.rejected:
        raise typer.Exit(1)


def remove(
    paper_ids: Annotated[
        list[str],
        typer.Argument(
            metavar="ID...",
            show_default=False,
            help="Paper ids as `paperchat retrieve` shows them (arxiv:... or p:...).",
        ),
    ],
    as_json: JsonFlag = False,
) -> None:
    """Delete papers and their chunks (see `REMOVE_HELP`)."""
    from paperchat.settings import Settings

    settings = Settings()
    with _errors_exit():
        store = _open_store(settings, None, create=False)
        deleted = store.delete_papers(paper_ids)
        missing = [pid for pid in dict.fromkeys(paper_ids) if pid not in deleted]
        result = {
            "removed": list(deleted),
            "not_found": missing,
            "chunks_deleted": sum(deleted.values()),
            "papers": store.count_papers(),
            "chunks": store.count_chunks(),
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
        raise typer.Exit(1)


def stats(as_json: JsonFlag = False) -> None:
    """Report the store's size, location and model (see `STATS_HELP`)."""
    from ingest.embedding import embedder_id
    from paperchat.settings import Settings

    settings = Settings()
    configured = embedder_id(settings)
    result: dict[str, Any] = {"papers": 0, "chunks": 0, "embedding_model": None}
    with _errors_exit():
        if settings.chroma_url or settings.chroma_path.exists():
            store = _open_store(settings, None)
            result = {
                "papers": store.count_papers(),
                "chunks": store.count_chunks(),
                "embedding_model": store.embedder_id,
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
    if not result["papers"]:
        typer.echo("The store is empty: paperchat ingest data/sample")


def _open_store(settings: Settings, model: str | None, *, create: bool = True) -> ChromaStore:
    from ingest.store import ChromaStore

    return ChromaStore.from_settings(settings, model, create=create)


@contextlib.contextmanager
def _errors_exit() -> Iterator[None]:
    """Turn a `PaperchatError` into its message on stderr and exit status 1."""
    try:
        yield
    except PaperchatError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1) from err


def _print_json(data: dict[str, Any]) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
