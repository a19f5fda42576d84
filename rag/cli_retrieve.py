"""`paperchat retrieve`: find the papers for a question (no LLM involved)."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, cast

import typer

from paperchat.limits import check_question

if TYPE_CHECKING:
    from paperchat.settings import Settings
    from rag.retrieval import HybridRetriever, Mode
    from rag.types import Hit

_MODE_HELP = (
    "hybrid: dense and keyword search fused (the default and the best on the dev set); "
    "dense: embeddings only; bm25: keywords only."
)
_SNIPPET_CHARS = 240


def register_retrieve(app: typer.Typer) -> None:
    """Add `retrieve` to the root app."""
    app.command("retrieve")(retrieve)


def retrieve(
    question: str = typer.Argument(
        ...,
        help="The question, in quotes. Give '-' to read one question per line from stdin "
        "and write one JSON line per question (models load once).",
    ),
    k: int = typer.Option(5, "--k", min=1, max=50, help="Number of papers to return."),
    year_from: int = typer.Option(
        None, "--year-from", help="Only papers from this year on (papers without a year drop out)."
    ),
    year_to: int = typer.Option(
        None, "--year-to", help="Only papers up to this year (papers without a year drop out)."
    ),
    mode: str = typer.Option("hybrid", "--mode", help=_MODE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a ranked list."),
) -> None:
    """Find the papers that best match QUESTION, best first.

    Example: paperchat retrieve "What is SOUL?" --k 3
    """
    from paperchat.errors import PaperchatError

    if mode not in ("hybrid", "dense", "bm25"):
        raise typer.BadParameter("choose hybrid, dense or bm25", param_hint="--mode")
    if year_from is not None and year_to is not None and year_from > year_to:
        raise typer.BadParameter(
            f"--year-from {year_from} is after --year-to {year_to}", param_hint="--year-from"
        )
    try:
        settings = _settings()
        if question != "-":
            question = check_question(question, settings)
        retriever = open_retriever(settings, cast("Mode", mode))
        if question == "-":
            _answer_stream(retriever, settings, k, year_from, year_to)
            return
        hits = retriever.retrieve(question, k=k, year_from=year_from, year_to=year_to)
    except PaperchatError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1) from err
    if as_json:
        typer.echo(json.dumps(result_record(question, hits), ensure_ascii=False))
    else:
        typer.echo(format_hits(question, hits))


def _settings() -> Settings:
    from paperchat.settings import Settings

    return Settings()


def open_retriever(settings: Settings, mode: Mode) -> HybridRetriever:
    """Open the store and the embedder; refuse an empty store with the command that fills it.

    Raises:
        StoreError: The store is missing or holds no papers.
    """
    from ingest.embedding import build_embedder, embedder_id
    from ingest.store import ChromaStore
    from paperchat.errors import StoreError
    from rag.retrieval import HybridRetriever

    store = ChromaStore.from_settings(settings, embedder_id(settings), create=False)
    if store.count_chunks() == 0:
        raise StoreError(
            f"The paper store at {store.location} is empty: run paperchat ingest data/sample first."
        )
    return HybridRetriever(
        store, build_embedder(settings), candidate_k=settings.candidate_k, mode=mode
    )


def _answer_stream(
    retriever: HybridRetriever,
    settings: Settings,
    k: int,
    year_from: int | None,
    year_to: int | None,
) -> None:
    for line in sys.stdin:
        question = check_question(line, settings)
        if not question:
            continue
        hits = retriever.retrieve(question, k=k, year_from=year_from, year_to=year_to)
        typer.echo(json.dumps(result_record(question, hits), ensure_ascii=False))


def result_record(question: str, hits: list[Hit]) -> dict[str, Any]:
    """The JSON shape of one answered question."""
    return {
        "question": question,
        "results": [
            {
                "paper_id": h.paper_id,
                "title": h.title,
                "score": round(h.score, 6),
                "year": h.year,
                "url": h.url,
                "snippet": h.snippet,
            }
            for h in hits
        ],
    }


def format_hits(question: str, hits: list[Hit]) -> str:
    """A ranked list for the terminal."""
    if not hits:
        return f"No papers found for: {question}"
    lines = [f"Papers for: {question}", ""]
    for rank, hit in enumerate(hits, start=1):
        year = f" ({hit.year})" if hit.year else ""
        lines.append(f"{rank:>2}. {hit.title}{year}")
        detail = f"    score {hit.score:.4f} · {hit.paper_id}"
        lines.append(detail + (f" · {hit.url}" if hit.url else ""))
        snippet = " ".join(hit.snippet.split())
        if len(snippet) > _SNIPPET_CHARS:
            snippet = snippet[: _SNIPPET_CHARS - 3].rstrip() + "..."
        lines.append(f"    {snippet}")
        lines.append("")
    return "\n".join(lines).rstrip()
