"""The `paperchat` command: one Typer app; each area registers its own subcommands.

Subcommand modules import heavy libraries (torch, chromadb, gradio) inside the command
bodies, so `paperchat --help` stays fast.
"""

from __future__ import annotations

import typer

from paperchat import __version__

app = typer.Typer(
    name="paperchat",
    help=(
        "Cited answers over scientific paper abstracts, offline by default.\n\n"
        "Start here:\n\n"
        "  paperchat ingest data/sample      # build the store from the sample corpus\n\n"
        "  paperchat retrieve 'What is SOUL?' # find papers\n\n"
        "  paperchat ask 'What is SOUL?'      # a cited answer\n\n"
        "  paperchat ui                       # chat in the browser at http://127.0.0.1:7860\n\n"
        "Configuration comes from PAPERCHAT_* environment variables or a .env file; "
        "see .env.example."
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
    from eval.cli import register as register_eval
    from ingest.cli import register as register_ingest
    from rag.cli import register as register_rag
    from ui.cli import register as register_ui

    for register in (register_ingest, register_rag, register_ui, register_eval):
        register(app)


_register_all()


def main() -> None:
    """Console entry point."""
    app()
