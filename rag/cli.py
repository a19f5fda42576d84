"""`paperchat` subcommands of the rag area."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this area's subcommands to the root app."""
    from rag.cli_ask import register_ask
    from rag.cli_retrieve import register_retrieve

    register_retrieve(app)
    register_ask(app)
