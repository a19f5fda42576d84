"""`paperchat eval grounding | judge | compare`: the grounding evaluation from the terminal.

Heavy imports (the assistant, models) happen inside the commands so `--help` stays fast.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from paperchat.cli.options import JsonFlag, JudgeLLMOption, LLMOption, check_split, load_settings
from paperchat.errors import ConfigError

if TYPE_CHECKING:
    from eval.judges import Judge
    from paperchat.settings import Settings

JUDGES = ("lexical", "llm")


def judge_backend(kind: str, judge_llm: str | None, settings: Settings) -> str | None:
    """Check the judge options; the LLM backend the judge needs, or None for `lexical`."""
    if kind == "lexical":
        return None
    if kind != "llm":
        raise ConfigError(f"--judge must be one of {', '.join(JUDGES)}, not {kind!r}")
    backend = judge_llm or (settings.llm if settings.llm != "extractive" else "local")
    if backend == "extractive":
        raise ConfigError("the llm judge needs a model: pass --judge-llm local, tiny or openai")
    return backend


def make_judge(
    kind: str,
    judge_llm: str | None,
    settings: Settings,
    shared: tuple[str, str, Any] | None = None,
) -> tuple[Judge, Any]:
    """Build a judge by name; returns (judge, LLM handle to close, or None).

    `shared` is (backend, model id, LlamaIndex LLM) of the answering assistant: a judge on the
    same backend reuses that model instead of starting a second model server.
    """
    from eval.judges import LexicalJudge, LLMJudge

    backend = judge_backend(kind, judge_llm, settings)
    if backend is None:
        return LexicalJudge(), None
    cache_dir = settings.data_dir / "eval" / "judge-cache"
    if shared is not None and shared[0] == backend and shared[2] is not None:
        _, model_id, llm = shared
        return LLMJudge(llm, model_id=model_id, cache_dir=cache_dir), None
    from rag.models.llm import build_llm

    handle = build_llm(load_settings(backend))
    return LLMJudge(handle.llm, model_id=handle.name, cache_dir=cache_dir), handle


def _out_dir(out: Path | None, settings: Settings) -> Path:
    from eval.harness import now_stamp

    if out is not None:
        return out
    base = settings.data_dir / "eval" / now_stamp()
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _emit(report: Any, out_dir: Path, as_json: bool) -> None:
    """Write a finished run's reports to `out_dir`; print its metrics as JSON or as a table."""
    from eval.report import write_reports

    paths = write_reports(report, out_dir)
    if as_json:
        body = {"out_dir": str(paths["json"].parent), "metrics": report.metrics.model_dump()}
        typer.echo(json.dumps(body, indent=2))
    else:
        _print_metrics(report, paths)


def _print_metrics(report: Any, paths: dict[str, Path]) -> None:
    from eval.grounding import RATE_METRICS
    from eval.report import METRIC_LABELS, breakdown, fmt, judge_notes

    metrics = report.metrics
    split = f", split {report.meta.split}" if report.meta.split else ""
    typer.echo(
        f"{metrics.n_questions} questions ({metrics.n_answerable} answerable, "
        f"{metrics.n_unanswerable} unanswerable{split})"
    )
    for name in RATE_METRICS:
        typer.echo(f"  {METRIC_LABELS[name]:34} {fmt(getattr(metrics, name))}")
    typer.echo(f"  {'Citations per answer':34} {fmt(metrics.citations_per_answer, 2)}")
    typer.echo(f"  {'Sentences removed by verification':34} {metrics.sentences_removed}")
    for line in breakdown(report):
        typer.echo(f"  {line}")
    for note in judge_notes(report.meta):
        typer.echo(f"Note: {note}")
    for kind, path in paths.items():
        typer.echo(f"{kind:4} {path}")


def grounding(
    dataset: Annotated[
        Path | None,
        typer.Option(
            help="JSONL of {question, relevant_ids?, answerable?, split?}. Default: the shipped "
            "answer dev set (eval/datasets/dev_answers.jsonl, every relevant paper labelled)."
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            help="Only this split of the dataset: tune (used to calibrate paperchat) or heldout "
            "(never tuned on; report this one). Default: every question."
        ),
    ] = None,
    llm: LLMOption = None,
    judge: Annotated[
        str, typer.Option(help="Support judge: lexical (instant, deterministic) or llm.")
    ] = "lexical",
    judge_llm: JudgeLLMOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for report.json/.md/.html. Default: DATA_DIR/eval/<timestamp>."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N questions.")] = None,
    seed: Annotated[
        int, typer.Option(help="Seed for Python/NumPy/torch, recorded in the report.")
    ] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Answer every question of a dataset and score the answers' grounding and relevance.

    Scores whether answers cite papers that answer the question (gold labels, no judge),
    citation recall and precision and claim faithfulness (judged), abstention, retrieval and
    what verification removed. Name the split you report: paperchat was calibrated on tune.

    Usage examples:

      paperchat eval grounding --llm extractive --split heldout

      paperchat eval grounding --llm local --judge llm --split heldout

    Writes report.json, report.md and report.html (see docs/grounding.md).
    """
    from tqdm import tqdm

    from eval.harness import (
        RunMeta,
        build_report,
        now_iso,
        public_settings,
        run_questions,
        seed_everything,
        versions,
    )
    from eval.questions import default_dataset, file_sha256, load_questions
    from rag.factory import build_assistant

    check_split(split)
    handle = None
    try:
        settings = load_settings(llm)
        path = dataset or default_dataset("dev_answers.jsonl")
        questions = load_questions(path, limit, split=split)  # type: ignore[arg-type]
        judge_backend(judge, judge_llm, settings)  # fail before loading anything
        seed_everything(seed)
        with build_assistant(settings) as assistant:
            shared = (settings.llm, assistant.backend, getattr(assistant.backend_impl, "llm", None))
            judge_obj, handle = make_judge(judge, judge_llm, settings, shared)
            with tqdm(total=len(questions), unit="q", disable=as_json, file=sys.stderr) as bar:
                results = run_questions(
                    assistant, judge_obj, questions, on_done=lambda _r: bar.update(1)
                )
        meta = RunMeta(
            created_at=now_iso(),
            dataset=str(path),
            split=split,
            dataset_sha256=file_sha256(path),
            seed=seed,
            llm=next(
                (r.answer.backend for r in results if r.answer and r.answer.backend), settings.llm
            ),
            judge=judge_obj.describe(),
            settings=public_settings(settings),
            versions=versions(),
            command=shlex.join(["paperchat", *sys.argv[1:]]),
        )
    finally:
        if handle is not None:
            handle.close()
    _emit(build_report(results, meta), _out_dir(out, settings), as_json)


def judge_calibration(
    dataset: Annotated[
        Path | None,
        typer.Option(help="Labelled pairs JSONL. Default: eval/datasets/judge_calibration.jsonl."),
    ] = None,
    judge: Annotated[str, typer.Option(help="lexical, llm, or all (both).")] = "lexical",
    judge_llm: JudgeLLMOption = None,
    corpus: Annotated[
        list[Path] | None,
        typer.Option(
            help="Corpus the abstracts of pairs without `evidence` are read from. "
            "Default: data/sample."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Measure each judge against the hand labels.

    Prints accuracy (with a 95% interval), precision and recall of "supported".

    Also the accuracy per kind of claim (number changed, negation, ...).
    """
    from eval.judge_calibration import calibrate, corpus_abstracts, load_pairs, render_calibration
    from eval.questions import default_dataset

    kinds = list(JUDGES) if judge == "all" else [judge]
    results = []
    settings = load_settings()
    path = dataset or default_dataset("judge_calibration.jsonl")
    pairs = load_pairs(path, corpus_abstracts(corpus or [Path("data/sample")]))
    for kind in kinds:
        judge_obj, handle = make_judge(kind, judge_llm, settings)
        try:
            results.append(calibrate(judge_obj, pairs))
        finally:
            if handle is not None:
                handle.close()
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in results], indent=2))
    else:
        typer.echo(f"{len(pairs)} labelled pairs from {path}")
        for result in results:
            typer.echo(render_calibration(result))


def compare(
    run_a: Annotated[Path, typer.Argument(help="Earlier run: its folder or report.json.")],
    run_b: Annotated[Path, typer.Argument(help="Later run: its folder or report.json.")],
    as_json: JsonFlag = False,
) -> None:
    """Show what got better or worse from RUN_A to RUN_B, overall and question by question."""
    from eval.compare import compare_runs, render_comparison
    from eval.report import load_report

    comparison = compare_runs(load_report(run_a), load_report(run_b), str(run_a), str(run_b))
    if as_json:
        typer.echo(comparison.model_dump_json(indent=2))
    else:
        typer.echo(render_comparison(comparison))


def rescore(
    run: Annotated[Path, typer.Argument(help="An eval run: its folder or report.json.")],
    judge: Annotated[str, typer.Option(help="Support judge: lexical or llm.")] = "lexical",
    judge_llm: JudgeLLMOption = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for the new reports. Default: DATA_DIR/eval/<timestamp>."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Score the answers of an earlier run again with another judge (no answer is rewritten).

    Usage example:

      paperchat eval rescore .paperchat/eval/20260101-120000 --judge lexical
    """
    from eval.harness import build_report, rescore_results
    from eval.report import load_report

    handle = None
    try:
        settings = load_settings()
        judge_backend(judge, judge_llm, settings)
        old = load_report(run)
        judge_obj, handle = make_judge(judge, judge_llm, settings)
        results = rescore_results(old.questions, judge_obj)
        meta = old.meta.model_copy(
            update={
                "judge": judge_obj.describe(),
                "command": shlex.join(["paperchat", *sys.argv[1:]]),
            }
        )
    finally:
        if handle is not None:
            handle.close()
    _emit(build_report(results, meta), _out_dir(out, settings), as_json)


def register(eval_app: typer.Typer) -> None:
    """Add `grounding`, `rescore`, `judge` and `compare` to the `paperchat eval` group."""
    eval_app.command("grounding")(grounding)
    eval_app.command("rescore")(rescore)
    eval_app.command("judge")(judge_calibration)
    eval_app.command("compare")(compare)
