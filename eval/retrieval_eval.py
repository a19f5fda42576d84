"""Score the retriever on a question set: hybrid, BM25-only and dense-only in one run.

A dataset is JSONL, one question per line (see `eval/datasets/README.md`):
`{"question", "relevant_ids": [...], "wording": "paraphrase"|"lexical", "answerable": true}`.
Unanswerable rows (no relevant ids) are skipped: retrieval metrics need a right answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, ValidationError

from eval.metrics_retrieval import all_metrics, mean_metrics
from paperchat.errors import InputError

if TYPE_CHECKING:
    from rag.retrieval.hybrid import HybridRetriever, Mode

DEFAULT_DATASET = Path(__file__).resolve().parent / "datasets" / "dev_retrieval.jsonl"
EVAL_MODES: tuple[Mode, ...] = ("hybrid", "bm25", "dense")


class RetrievalQuestion(BaseModel):
    """One row of a retrieval dataset."""

    question: str = Field(min_length=1, description="The question as a user would ask it.")
    relevant_ids: list[str] = Field(
        default_factory=list, description="Paper ids that answer it (any one counts as a hit)."
    )
    wording: Literal["paraphrase", "lexical"] = Field(
        description="paraphrase: avoids the paper's distinctive terms; lexical: uses them."
    )
    answerable: bool = Field(default=True, description="False when no paper answers it.")


class QuestionResult(BaseModel):
    """Metrics of one mode on one question."""

    question: str
    wording: str
    ranked_ids: list[str]
    metrics: dict[str, float]


class ModeReport(BaseModel):
    """Averages of one retrieval mode, overall and per wording subset."""

    mode: str
    overall: dict[str, float]
    by_wording: dict[str, dict[str, float]]
    questions: list[QuestionResult] = Field(default_factory=list)


class RetrievalReport(BaseModel):
    """Result of one eval run: every mode over the same questions."""

    dataset: str
    n_questions: int = Field(description="Questions scored (answerable, with relevant ids).")
    n_skipped: int = Field(description="Rows skipped as unanswerable.")
    subset_sizes: dict[str, int]
    k: int = Field(description="Papers retrieved per question.")
    modes: list[ModeReport]


def load_dataset(path: Path) -> list[RetrievalQuestion]:
    """Read a JSONL question set.

    Raises:
        InputError: A line is not JSON or lacks a required field (message has file:line).
    """
    rows: list[RetrievalQuestion] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise InputError(str(path), f"cannot read dataset: {err.strerror or err}") from err
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(RetrievalQuestion.model_validate(json.loads(line)))
        except json.JSONDecodeError as err:
            raise InputError(f"{path}:{number}", f"malformed JSON: {err.msg}") from err
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg']}" for e in err.errors()
            )
            raise InputError(f"{path}:{number}", problems) from err
    return rows


def score_mode(
    questions: Sequence[RetrievalQuestion],
    rank: Callable[[str], list[str]],
    mode: str,
) -> ModeReport:
    """Score one ranking function (question -> ranked paper ids) on answerable questions."""
    results = [
        QuestionResult(
            question=q.question,
            wording=q.wording,
            ranked_ids=(ranked := rank(q.question)),
            metrics=all_metrics(ranked, set(q.relevant_ids)),
        )
        for q in questions
    ]
    wordings = sorted({r.wording for r in results})
    return ModeReport(
        mode=mode,
        overall=mean_metrics([r.metrics for r in results]),
        by_wording={
            w: mean_metrics([r.metrics for r in results if r.wording == w]) for w in wordings
        },
        questions=results,
    )


def run_retrieval_eval(
    retriever: HybridRetriever,
    dataset: Path = DEFAULT_DATASET,
    *,
    k: int = 10,
    modes: Sequence[Mode] = EVAL_MODES,
) -> RetrievalReport:
    """Run every mode in `modes` over the dataset with one store, embedder and BM25 index."""
    rows = load_dataset(dataset)
    scored = [q for q in rows if q.answerable and q.relevant_ids]
    reports = []
    for mode in modes:
        variant = retriever.with_mode(mode)

        def rank(question: str, r: HybridRetriever = variant) -> list[str]:
            return [hit.paper_id for hit in r.retrieve(question, k=k)]

        reports.append(score_mode(scored, rank, mode))
    sizes: dict[str, int] = {}
    for q in scored:
        sizes[q.wording] = sizes.get(q.wording, 0) + 1
    return RetrievalReport(
        dataset=str(dataset),
        n_questions=len(scored),
        n_skipped=len(rows) - len(scored),
        subset_sizes=sizes,
        k=k,
        modes=reports,
    )
