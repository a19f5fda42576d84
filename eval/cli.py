"""`paperchat eval ...`: the eval area's Typer group. Each evaluation registers its commands."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `eval` group and its subcommands to the root app."""
    from eval.cli_grounding import register_grounding
    from eval.cli_retrieval import register_retrieval
    from eval.cli_selection import register_selection
    from eval.cli_verification import register_verification

    eval_app = typer.Typer(
        name="eval",
        help="Measure answer grounding and retrieval on question sets; compare runs.",
        no_args_is_help=True,
    )
    register_grounding(eval_app)
    register_retrieval(eval_app)
    register_selection(eval_app)
    register_verification(eval_app)
    app.add_typer(eval_app, name="eval")
