"""`paperchat ask` and `paperchat chat`: cited answers in the terminal.

Heavy libraries (torch, chromadb, the model server) are loaded inside the command bodies so that
`paperchat --help` stays fast. Errors print one line and exit 1; never a stack trace.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from paperchat.errors import LLMUnavailable, PaperchatError
from paperchat.limits import check_question

if TYPE_CHECKING:
    from rag.assistant import Assistant
    from rag.types import Answer

NEAREST_SHOWN = 3
"""Nearest papers listed under an abstention."""

_EXTRACTIVE_HINT = "Run with --llm extractive for an answer that needs no model."


class Backend(StrEnum):
    """Answering backends the --llm option accepts."""

    local = "local"
    tiny = "tiny"
    openai = "openai"
    extractive = "extractive"


LLMOption = Annotated[
    Backend | None,
    typer.Option(
        "--llm",
        help="Answering backend (default PAPERCHAT_LLM, else local): local (Qwen2.5-Coder-1.5B, "
        "offline), tiny (SmolLM2-135M, fast but weak), openai (OPENAI_API_KEY or "
        "PAPERCHAT_LLM_BASE_URL), extractive (no model: quotes the best sentences).",
        show_default=False,
    ),
]
KOption = Annotated[
    int | None,
    typer.Option("--k", "-k", min=1, max=50, help="Papers to retrieve (default PAPERCHAT_TOP_K).")
]  # fmt: skip
YearFrom = Annotated[int | None, typer.Option("--year-from", help="Only papers from this year.")]
YearTo = Annotated[int | None, typer.Option("--year-to", help="Only papers up to this year.")]


def register_ask(app: typer.Typer) -> None:
    """Add `ask` and `chat` to the root app."""
    app.command("ask")(ask)
    app.command("chat")(chat)


def ask(
    question: Annotated[str, typer.Argument(help="The question, in quotes.", show_default=False)],
    llm: LLMOption = None,
    k: KOption = None,
    year_from: YearFrom = None,
    year_to: YearTo = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the Answer as JSON (citations, usage, timings).")
    ] = False,
) -> None:
    """Answer a question from the stored abstracts, citing the papers each sentence comes from.

    When the corpus does not answer it, says so and lists the nearest papers.

    Usage examples:

      paperchat ask "What is SOUL?"

      paperchat ask "Which papers use LoRA?" --llm extractive --year-from 2023

      paperchat ask "What is SOUL?" --json

    Exit status: 0 answered or abstained, 1 error (message on stderr), 2 usage.
    """
    with _errors_exit(), _assistant(llm) as assistant:
        question = check_question(question, assistant.settings)
        stream = assistant.stream(question, k=k, year_from=year_from, year_to=year_to)
        if as_json:
            typer.echo(_final(stream).model_dump_json(indent=2))
        else:
            _render(stream, live=sys.stdout.isatty())


def chat(
    llm: LLMOption = None,
    k: KOption = None,
    year_from: YearFrom = None,
    year_to: YearTo = None,
) -> None:
    """Talk about the papers in the terminal; follow-up questions use the conversation so far.

    Type a question and press Enter. `/new` starts a new conversation, `/quit` (or Ctrl-D)
    exits. If the model fails, the error is shown and the conversation goes on.

    Usage example:

      paperchat chat --llm extractive
    """
    with _errors_exit(), _assistant(llm) as assistant:
        session = assistant.chat(k=k, year_from=year_from, year_to=year_to)
        typer.echo("Ask about the papers. /new starts over, /quit exits.")
        for line in _lines():
            if line in {"/quit", "/exit"}:
                break
            if line == "/new":
                session.reset()
                typer.echo("(new conversation)")
                continue
            try:
                line = check_question(line, assistant.settings)
                _render(session.stream(line), live=sys.stdout.isatty())
            except PaperchatError as err:
                typer.echo(f"error: {_message(err)}", err=True)


def _lines() -> Iterator[str]:
    while True:
        try:
            line = input("\n> ").strip()
        except EOFError:
            typer.echo("")
            return
        if line:
            yield line


@contextlib.contextmanager
def _errors_exit() -> Iterator[None]:
    """Turn paperchat errors and bad settings into one line on stderr and exit status 1."""
    from pydantic import ValidationError

    try:
        yield
    except PaperchatError as err:
        typer.echo(f"error: {_message(err)}", err=True)
        raise typer.Exit(1) from None
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        typer.echo(f"error: invalid setting ({problems}); see .env.example", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        typer.echo("", err=True)
        raise typer.Exit(130) from None


def _message(err: PaperchatError) -> str:
    message = str(err).strip()
    if isinstance(err, LLMUnavailable) and "extractive" not in message:
        message = f"{message} {_EXTRACTIVE_HINT}"
    return message


@contextlib.contextmanager
def _assistant(llm: Backend | None) -> Iterator[Assistant]:
    from paperchat.settings import Settings
    from rag.assistant import Assistant

    settings = Settings(llm=llm.value) if llm is not None else Settings()
    assistant = Assistant.from_settings(settings)
    try:
        yield assistant
    finally:
        assistant.close()


def _final(stream: Iterable[str | Answer]) -> Answer:
    from rag.assistant import last_answer

    return last_answer(stream)


def _render(stream: Iterable[str | Answer], live: bool) -> None:
    """Print the answer (as it streams when `live`), then references or nearest papers.

    When the final text differs from what streamed (an abstention, or citations added to
    sentences that restate a source), the final text is printed below the streamed one.
    """
    from rag.types import Answer

    streamed = ""
    for item in stream:
        if isinstance(item, Answer):
            if streamed and item.text != streamed.strip():
                typer.echo("\n")
                typer.echo(item.text, nl=False)
            elif not streamed:
                typer.echo(item.text, nl=False)
            typer.echo("")
            _references(item)
        elif live:
            typer.echo(item, nl=False)
            streamed += item


def _references(answer: Answer) -> None:
    if answer.abstained:
        if answer.nearest:
            typer.echo("\nNearest papers:")
            for hit in answer.nearest[:NEAREST_SHOWN]:
                typer.echo(f"  - {_describe(hit.title, hit.year, hit.url)}")
        return
    if answer.citations:
        typer.echo("\nReferences:")
        for citation in answer.citations:
            title = _describe(citation.title, citation.year, citation.url)
            typer.echo(f"  [{citation.number}] {title}")
    if answer.uncited_sentences:
        count = len(answer.uncited_sentences)
        typer.echo(f"\nNote: {count} sentence{'s' if count > 1 else ''} of this answer cite "
                   "no source.")  # fmt: skip


def _describe(title: str, year: int | None, url: str | None) -> str:
    text = f"{title} ({year})" if year else title
    return f"{text} {url}" if url else text
