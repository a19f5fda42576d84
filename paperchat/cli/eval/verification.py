"""`paperchat eval verification`: score (and calibrate) the answer verifier against hand labels."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from paperchat.cli.options import JsonFlag, check_split, load_settings


def register(eval_app: typer.Typer) -> None:
    """Add `verification` to the `eval` group."""
    eval_app.command("verification")(verification)


def verification(
    split: Annotated[
        str, typer.Option(help="Split of the labels: heldout (report) or tune (calibrate).")
    ] = "heldout",
    labels: Annotated[
        Path | None,
        typer.Option(help="Labelled sentences. Default: eval/datasets/verify_labels.jsonl."),
    ] = None,
    search: Annotated[
        bool, typer.Option("--grid", help="Also score every policy of the grid, best first.")
    ] = False,
    export: Annotated[
        Path | None,
        typer.Option(
            help="Instead: write the unlabelled draft sentences of an eval run (its folder or "
            "report.json) to --out, for labelling."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Where --export writes (JSONL).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Replay the verifier on hand-labelled draft sentences (no model runs).

    Scores the configured thresholds (PAPERCHAT_VERIFY_*) and verification switched off:
    unsupported sentences shown (lower is better), supported sentences kept, accuracy.
    --grid searches the thresholds: use it on tune only; report heldout.

    Usage examples:

      paperchat eval verification --split tune --grid

      paperchat eval verification --export .paperchat/eval/RUN --out drafts.jsonl
    """
    from eval.questions import default_dataset
    from eval.report import load_report
    from eval.tuning import SHOWN, heldout_warning, tuning_json
    from eval.verification import export_drafts, grid, read_labels, score, write_rows
    from paperchat.errors import InputError
    from rag.answering.pipeline import AnswerPolicy
    from rag.answering.verify import VerifyPolicy

    if export is not None:
        if out is None:
            raise typer.BadParameter("--export needs --out FILE", param_hint="--out")
        report = load_report(export)
        answered = [(r.id, r.question.split, r.answer) for r in report.questions if r.answer]
        rows = export_drafts(answered)
        write_rows(rows, out)
        typer.echo(f"{len(rows)} draft sentences written to {out}")
        return
    check_split(split)
    path = labels or default_dataset("verify_labels.jsonl")
    rows = read_labels(path, split)
    if not rows:
        raise InputError(str(path), f"no labelled sentences of split {split}")
    configured = AnswerPolicy.from_settings(load_settings()).verify
    scores = {
        "configured": score(rows, configured),
        "off": score(rows, VerifyPolicy(enabled=False)),
    }
    searched = grid(rows)[:SHOWN] if search else []
    if as_json:
        body = {
            "labels": str(path),
            "split": split,
            **tuning_json(configured, scores, searched),
        }
        typer.echo(json.dumps(body, indent=2))
        return
    typer.echo(f"Verifier on {path.name}, split {split}: {len(rows)} labelled sentences")
    typer.echo(f"configured: {asdict(configured)}")
    typer.echo(f"  {'policy':<12}{'unsupported shown':>19}{'supported kept':>16}{'accuracy':>10}")
    for name, s in scores.items():
        typer.echo(
            f"  {name:<12}{s.shown_unsupported:>19.3f}{s.kept_supported:>16.3f}{s.accuracy:>10.3f}"
        )
    if searched:
        if note := heldout_warning(split):
            typer.echo(note)
        typer.echo(f"\nbest {len(searched)} of the grid (accuracy):")
        for policy, s in searched:
            typer.echo(f"  {asdict(policy)} -> {asdict(s)}")
