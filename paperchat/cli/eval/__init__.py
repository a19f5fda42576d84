"""`paperchat eval ...`: the eval group; one module per evaluation registers its commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `eval` group and its subcommands to the root app."""
    from paperchat.cli.eval import grounding, retrieval, selection, verification

    eval_app = typer.Typer(
        name="eval",
        help="Measure answer grounding and retrieval on question sets; compare runs.",
        no_args_is_help=True,
    )
    for module in (grounding, retrieval, selection, verification):
        module.register(eval_app)
    app.add_typer(eval_app, name="eval")
