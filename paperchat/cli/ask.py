"""`paperchat ask` and `paperchat chat`: cited answers in the terminal.

Heavy libraries (torch, chromadb, the model server) are loaded inside the command bodies so that
`paperchat --help` stays fast. Failures go through the one handler (`paperchat.cli.errors`).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from paperchat.cli import errors
from paperchat.cli.options import (
    JsonFlag,
    KOption,
    LLMOption,
    YearFrom,
    YearTo,
    check_years,
    load_settings,
)
from paperchat.errors import PaperchatError
from paperchat.limits import check_question

if TYPE_CHECKING:
    from rag.answering.response import AnswerStream
    from rag.assistant import Assistant
    from rag.types import Answer

NEAREST_SHOWN = 3
"""Nearest papers listed under an abstention."""


def register(app: typer.Typer) -> None:
    """Add `ask` and `chat` to the root app."""
    app.command("ask")(ask)
    app.command("chat")(chat)


def ask(
    question: Annotated[
        str,
        typer.Argument(
            help="The question, in quotes; - reads one question per line from stdin.",
            show_default=False,
        ),
    ],
    llm: LLMOption = None,
    k: KOption = None,
    year_from: YearFrom = None,
    year_to: YearTo = None,
    as_json: JsonFlag = False,
) -> None:
    r"""Answer a question from the stored abstracts, citing the papers each sentence comes from.

    When the corpus does not answer it, says so and lists the nearest papers. Every sentence is
    checked against the abstract it cites; sentences no abstract says are removed, and a note
    under the answer lists them.

    Usage examples:

      paperchat ask "What is SOUL?"

      paperchat ask "Which papers use LoRA?" --llm extractive --year-from 2023

      paperchat ask "What is SOUL?" --json

      printf 'What is SOUL?\nWhat is DEFT?\n' | paperchat ask - > answers.jsonl

    With `-` the model is loaded once and each line of stdin gets one JSON answer on one line
    of stdout (a failed question gets {"question": ..., "error": ...} and the batch goes on).

    --json prints the Answer (citations, usage, timings). A store that is missing or empty is
    an error that says how to fill it.

    Exit status: 0 answered or abstained, 1 failed (empty store, model unavailable), 2 usage
    error or bad setting (see `paperchat --help`).
    """
    check_years(year_from, year_to)
    with _assistant(llm) as assistant:
        if question == "-":
            _batch(assistant, sys.stdin, k=k, year_from=year_from, year_to=year_to)
            return
        question = check_question(question, assistant.settings)
        response = assistant.stream(question, k=k, year_from=year_from, year_to=year_to)
        if as_json:
            typer.echo(response.answer.model_dump_json(indent=2))
        else:
            _render(response, live=sys.stdout.isatty())


def _batch(assistant: Assistant, lines: TextIO, **options: int | None) -> None:
    """One JSON answer per question line (blank lines skipped), flushed as each is ready."""
    for line in lines:
        question = line.strip()
        if not question:
            continue
        try:
            question = check_question(question, assistant.settings)
            answer = assistant.ask(question, **options)  # type: ignore[arg-type]
        except PaperchatError as err:
            typer.echo(json.dumps({"question": question, "error": errors.message(err)}))
        else:
            typer.echo(answer.model_dump_json())
        sys.stdout.flush()


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
    check_years(year_from, year_to)
    with _assistant(llm) as assistant:
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
                errors.report(errors.message(err))


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
def _assistant(llm: str | None) -> Iterator[Assistant]:
    from rag.factory import build_assistant

    assistant = build_assistant(load_settings(llm))
    try:
        yield assistant
    finally:
        assistant.close()


def _render(response: AnswerStream, live: bool) -> None:
    """Print the answer (as it streams when `live`), then references or nearest papers.

    When the final text is not what streamed (an abstention replaced it), the final text is
    printed below the streamed one.
    """
    shown = False
    if live:
        for piece in response:
            typer.echo(piece, nl=False)
            shown = True
    answer = response.answer
    if not shown:
        typer.echo(answer.text, nl=False)
    elif response.replaced:
        typer.echo("\n")
        typer.echo(answer.text, nl=False)
    typer.echo("")
    _references(answer)


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
    _removed(answer)


def _removed(answer: Answer) -> None:
    removed = [e for e in answer.edits if e.kind in ("dropped", "replaced")]
    if not removed:
        return
    count = len(removed)
    typer.echo(
        f"\nVerification removed {count} sentence{'s' if count > 1 else ''} that the cited "
        "abstracts do not say:"
    )
    for edit in removed:
        typer.echo(f"  - {edit.original} ({edit.reason})")
    if answer.quoted:
        typer.echo("The answer above quotes the papers' own sentences instead.")


def _describe(title: str, year: int | None, url: str | None) -> str:
    text = f"{title} ({year})" if year else title
    return f"{text} {url}" if url else text
