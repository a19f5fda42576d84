"""Run an assistant over a question set, score every answer, and collect a `RunReport`.

The harness only calls `.ask(question)` of a `rag.assistant.AssistantLike` and a `Judge`, so
tests drive it with fakes and the CLI with the real `rag.Assistant`.
"""

from __future__ import annotations

import platform
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from eval.grounding import Metrics, QuestionScore, aggregate, score_answer
from eval.judges import Judge
from eval.questions import EvalQuestion
from paperchat.errors import PaperchatError
from paperchat.text import ANSWER_MIN_WORDS
from rag.types import Answer

if TYPE_CHECKING:
    from rag.assistant import AssistantLike

DEFAULT_SEED = 0
_SECRET_FIELDS = {"openai_api_key", "api_token", "ui_auth"}
_VERSIONED = ("paperchat", "llama-index-core", "chromadb", "xllamacpp", "pydantic")


class QuestionResult(BaseModel):
    """One question, the answer it got, and its scores."""

    id: str
    question: EvalQuestion
    answer: Answer | None = Field(default=None, description="None when asking failed.")
    score: QuestionScore | None = None
    error: str | None = Field(default=None, description="Why asking failed, if it did.")


class RunMeta(BaseModel):
    """Everything needed to reproduce or explain a run."""

    created_at: str
    dataset: str
    split: str | None = Field(
        default=None, description="tune or heldout when the run used one split of the dataset."
    )
    dataset_sha256: str = ""
    seed: int = DEFAULT_SEED
    llm: str = Field(default="", description="Answering backend.")
    judge: dict[str, Any] = Field(default_factory=dict)
    min_words: int = ANSWER_MIN_WORDS
    settings: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    command: str = ""


class RunReport(BaseModel):
    """A whole run: metadata, the aggregate metrics, and every question."""

    meta: RunMeta
    metrics: Metrics
    questions: list[QuestionResult]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and (if already loaded) torch's generators."""
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy comes with chromadb
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def versions() -> dict[str, str]:
    """Versions of Python, the platform and the packages that shape the numbers."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def public_settings(settings: Any) -> dict[str, Any]:
    """Settings as JSON, secrets left out."""
    dumped: dict[str, Any] = settings.model_dump(mode="json", exclude=_SECRET_FIELDS)
    return dumped


def run_questions(
    assistant: AssistantLike,
    judge: Judge,
    questions: list[EvalQuestion],
    *,
    min_words: int = ANSWER_MIN_WORDS,
    on_done: Callable[[QuestionResult], None] | None = None,
) -> list[QuestionResult]:
    """Ask and score every question in order.

    A `PaperchatError` from one question is recorded on that question and the run goes on;
    anything else stops the run.
    """
    results = []
    for question in questions:
        try:
            answer = assistant.ask(question.question)
        except PaperchatError as err:
            result = QuestionResult(id=question.id, question=question, error=str(err))
        else:
            score = score_answer(answer, question, judge, min_words=min_words)
            result = QuestionResult(id=question.id, question=question, answer=answer, score=score)
        results.append(result)
        if on_done is not None:
            on_done(result)
    return results


def rescore_results(results: list[QuestionResult], judge: Judge) -> list[QuestionResult]:
    """The same answers scored again with `judge` (failed questions stay failed)."""
    out = []
    for result in results:
        if result.answer is None:
            out.append(result)
            continue
        score = score_answer(result.answer, result.question, judge)
        out.append(result.model_copy(update={"score": score}))
    return out


def build_report(results: list[QuestionResult], meta: RunMeta) -> RunReport:
    """Aggregate the scored questions (failed ones are left out of the metrics)."""
    scores = [r.score for r in results if r.score is not None]
    return RunReport(meta=meta, metrics=aggregate(scores), questions=results)


def now_stamp() -> str:
    """UTC timestamp for run folder names: 20260101-120000."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def now_iso() -> str:
    """UTC timestamp for the report."""
    return datetime.now(UTC).isoformat(timespec="seconds")
