"""`paperchat eval selection`: score (and calibrate) source selection against gold labels."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from paperchat.cli.options import JsonFlag, check_split, load_settings


def register(eval_app: typer.Typer) -> None:
    """Add `selection` to the `eval` group."""
    eval_app.command("selection")(selection)


def selection(
    split: Annotated[
        str,
        typer.Option(help="Split of the dataset: heldout (report) or tune (calibrate)."),
    ] = "heldout",
    dataset: Annotated[
        Path | None,
        typer.Option(help="Labelled JSONL with splits. Default: eval/datasets/dev_answers.jsonl."),
    ] = None,
    search: Annotated[
        bool,
        typer.Option("--grid", help="Also score every policy of the grid, best mean F1 first."),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Score which retrieved papers source selection passes to the model (no model runs).

    Compares the configured policy (PAPERCHAT_SELECT_*) with passing every retrieved paper
    and with passing only the best one: hit (a relevant paper is passed), precision, recall,
    F1 and sources per question. --grid searches the policy grid: use it on the tune split
    only; the chosen policy is then reported on heldout.

    Usage examples:

      paperchat eval selection --split tune --grid

      paperchat eval selection --split heldout --json
    """
    from eval.questions import default_dataset, load_questions
    from eval.selection import collect, grid, score
    from eval.tuning import SHOWN, heldout_warning, tuning_json
    from rag.answering.pipeline import AnswerPolicy
    from rag.answering.selection import SelectionPolicy
    from rag.factory import open_retriever

    check_split(split)
    settings = load_settings()
    path = dataset or default_dataset("dev_answers.jsonl")
    questions = load_questions(path, split=split)  # type: ignore[arg-type]
    rows = collect(open_retriever(settings), questions, k=settings.top_k)
    shipped = AnswerPolicy.from_settings(settings).selection
    k = settings.top_k
    rows_out = {
        "configured": score(rows, shipped),
        f"all {k} retrieved": score(rows, SelectionPolicy(k, 0.0, 0.0, 0.0)),
        "best one only": score(rows, SelectionPolicy(1, 1.01, 1.01, 1.01)),
    }
    searched = grid(rows)[:SHOWN] if search else []
    if as_json:
        body = {
            "dataset": str(path),
            "split": split,
            **tuning_json(shipped, rows_out, searched),
        }
        typer.echo(json.dumps(body, indent=2))
        return
    typer.echo(f"Source selection on {path.name}, split {split}: {len(rows)} answerable questions")
    typer.echo(f"configured policy: {asdict(shipped)}")
    header = f"  {'policy':<22}{'hit':>7}{'precision':>11}{'recall':>8}{'F1':>7}{'sources':>9}"
    typer.echo(header)
    for name, s in rows_out.items():
        typer.echo(
            f"  {name:<22}{s.hit:>7.3f}{s.precision:>11.3f}{s.recall:>8.3f}{s.f1:>7.3f}"
            f"{s.sources:>9.2f}"
        )
    if searched:
        if note := heldout_warning(split):
            typer.echo(note)
        typer.echo(f"\nbest {len(searched)} of the grid (mean F1):")
        for policy, s in searched:
            typer.echo(f"  {asdict(policy)} -> F1 {s.f1:.3f} hit {s.hit:.3f} sources {s.sources}")
