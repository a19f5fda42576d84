"""`paperchat eval retrieval`: hit@k, MRR, nDCG and recall of hybrid, BM25-only and dense-only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from paperchat.cli.options import JsonFlag, load_settings

if TYPE_CHECKING:
    from eval.retrieval_eval import RetrievalReport

_COLUMNS = ("hit@1", "hit@5", "mrr@10", "ndcg@10", "recall@10")


def register(eval_app: typer.Typer) -> None:
    """Add `retrieval` to the `eval` group."""
    eval_app.command("retrieval")(retrieval)


def retrieval(
    dataset: Annotated[
        Path | None,
        typer.Option(
            "--dataset",
            help="JSONL question set (see eval/datasets/README.md). Default: the shipped dev "
            "set, eval/datasets/dev_retrieval.jsonl, written over data/sample.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    k: int = typer.Option(
        10, "--k", min=10, max=50, help="Papers retrieved per question (metrics look at 10)."
    ),
    as_json: JsonFlag = False,
) -> None:
    """Score retrieval on a question set: hybrid, BM25-only and dense-only in one run.

    Needs the store built from the corpus the questions were written on:
    paperchat ingest data/sample

    --json prints the full report, per-question ranks included.
    """
    from eval.retrieval_eval import DEFAULT_DATASET, run_retrieval_eval
    from rag.factory import open_retriever

    retriever = open_retriever(load_settings())
    report = run_retrieval_eval(retriever, dataset or DEFAULT_DATASET, k=k)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        typer.echo(format_report(report))


def format_report(report: RetrievalReport) -> str:
    """A table per subset: one row per mode, one column per metric."""
    sizes = ", ".join(f"{n} {name}" for name, n in sorted(report.subset_sizes.items()))
    lines = [
        f"Retrieval on {report.dataset}",
        f"{report.n_questions} questions ({sizes}); {report.n_skipped} unanswerable skipped",
    ]
    subsets = [("all questions", None), *[(name, name) for name in sorted(report.subset_sizes)]]
    for label, key in subsets:
        lines += ["", f"{label}:", f"  {'mode':<8}" + "".join(f"{c:>11}" for c in _COLUMNS)]
        for mode in report.modes:
            values = mode.overall if key is None else mode.by_wording.get(key, {})
            lines.append(
                f"  {mode.mode:<8}" + "".join(f"{values.get(c, 0.0):>11.3f}" for c in _COLUMNS)
            )
    return "\n".join(lines)
