"""The `paperchat` command: one Typer app, one error handler, one module per command group.

    paperchat/cli/
      errors.py    the error handler: one `error: ` prefix, one exit-code table
      options.py   shared options (--llm, --k, --year-from/--year-to, --json) and settings
      ingest.py    ingest, remove, stats
      retrieve.py  retrieve
      ask.py       ask, chat
      ui.py        ui
      eval/        eval grounding | rescore | judge | compare | retrieval | selection |
                   verification

Command modules import heavy libraries (torch, chromadb, gradio) inside the command bodies,
so `paperchat --help` stays fast.
"""

from __future__ import annotations

import typer

from paperchat import __version__
from paperchat.cli.errors import EXIT_CODES_HELP, PaperchatGroup

app = typer.Typer(
    name="paperchat",
    cls=PaperchatGroup,
    help=(
        "Cited answers over scientific paper abstracts, offline by default.\n\n"
        "Start here:\n\n"
        "  paperchat ingest data/sample      # build the store from the sample corpus\n\n"
        "  paperchat retrieve 'What is SOUL?' # find papers\n\n"
        "  paperchat ask 'What is SOUL?'      # a cited answer\n\n"
        "  paperchat ui                       # chat in the browser at http://127.0.0.1:7860\n\n"
        "Configuration comes from PAPERCHAT_* environment variables or a .env file; "
        "see .env.example.\n\n"
        "Errors print one line starting with 'error: ' on stderr.\n\n" + EXIT_CODES_HELP
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"paperchat {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Cited answers over scientific paper abstracts."""
    from paperchat.offline import apply_offline_env

    apply_offline_env()


def _register_all() -> None:
    from paperchat.cli import ask, eval, ingest, retrieve, ui

    for module in (ingest, retrieve, ask, ui, eval):
        module.register(app)


_register_all()


def main() -> None:
    """Console entry point."""
    app()
