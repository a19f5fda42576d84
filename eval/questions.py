"""Evaluation questions: the JSONL dataset format and its loader.

One JSON object per line (blank lines and lines starting with `#` are skipped)::

    {"question": "What is SOUL?", "relevant_ids": ["p:d4ad722d7858ad37"], "answerable": true}
    {"question": "Which paper measures the boiling point of lava?", "answerable": false}

`relevant_ids` is optional (retrieval is scored only where it is given); `answerable` defaults to
true; `id` is optional and defaults to `q<line number>`. Unknown keys are kept but ignored,
so one file can serve the retrieval and the grounding evaluation.

Labelled sets such as `dev_answers.jsonl` also say how each question is worded, what kind of
question it is and which split it belongs to (`wording`, `kind`, `split`; see
`eval/datasets/README.md`). Tuning reads only `split == "tune"` (`load_questions(path,
split="tune")`); the split of every row is fixed in the file by `assign_splits`, a rule that
looks only at the ids and labels, never at a system's output.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from paperchat.errors import InputError

Wording = Literal["lexical", "paraphrase"]
Split = Literal["tune", "heldout"]
OUT_OF_CORPUS_KINDS = ("off_topic", "near_miss", "missing_detail", "false_premise")
Kind = Literal["single", "multi", "off_topic", "near_miss", "missing_detail", "false_premise"]


class EvalQuestion(BaseModel):
    """One question of an evaluation dataset."""

    model_config = ConfigDict(extra="allow", frozen=True)

    question: str = Field(min_length=1, description="The question as a user would ask it.")
    relevant_ids: list[str] | None = Field(
        default=None, description="Paper ids that answer it (scores retrieval when given)."
    )
    answerable: bool = Field(default=True, description="False: the corpus does not answer it.")
    id: str = Field(default="", description="Stable id; `q<line>` when the file gives none.")
    wording: Wording | None = Field(
        default=None,
        description="lexical: uses the papers' own terms; paraphrase: avoids them.",
    )
    kind: Kind | None = Field(
        default=None,
        description="single/multi (one or several answering papers) when answerable; else "
        "off_topic, near_miss, missing_detail or false_premise.",
    )
    split: Split | None = Field(
        default=None, description="tune: may be used for tuning; heldout: only for reporting."
    )
    topic_ids: list[str] = Field(
        default_factory=list,
        description="Papers an out-of-corpus question is about that do not answer it.",
    )
    hard_negative_ids: list[str] = Field(
        default_factory=list,
        description="Papers on the question's topic checked and judged not to answer it "
        "(not exhaustive).",
    )

    @model_validator(mode="after")
    def _kind_matches_labels(self) -> EvalQuestion:
        """A `kind`, when given, agrees with `answerable` and the number of relevant ids."""
        relevant = self.relevant_ids or []
        if self.kind in OUT_OF_CORPUS_KINDS and (self.answerable or relevant):
            raise ValueError(f"kind {self.kind} needs answerable false and no relevant_ids")
        if self.kind == "single" and (not self.answerable or len(relevant) != 1):
            raise ValueError("kind single needs answerable true and exactly one relevant id")
        if self.kind == "multi" and (not self.answerable or len(relevant) < 2):
            raise ValueError("kind multi needs answerable true and at least two relevant ids")
        return self


def default_dataset(name: str) -> Path:
    """Path of a dataset shipped in `eval/datasets/` (e.g. `dev_grounding.jsonl`)."""
    return Path(str(resources.files("eval") / "datasets" / name))


def read_jsonl(path: Path) -> list[tuple[int, dict[str, object]]]:
    """(line number, object) for each data line; `InputError` with file:line on bad JSON."""
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise InputError(str(path), f"cannot read the dataset ({err.strerror})") from err
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"{path}:{number}", f"not valid JSON ({err.msg})") from err
        if not isinstance(obj, dict):
            raise InputError(f"{path}:{number}", "each line must be a JSON object")
        rows.append((number, obj))
    return rows


def load_questions(
    path: Path, limit: int | None = None, split: Split | None = None
) -> list[EvalQuestion]:
    """Read a question dataset; errors name the file and line and say what is wrong.

    Args:
        path: The JSONL file.
        limit: Keep only the first `limit` questions (after the split filter).
        split: Keep only the questions of this split; the file must label its rows with one.
    """
    questions = []
    for number, obj in read_jsonl(path):
        obj.setdefault("id", f"q{number}")
        try:
            questions.append(EvalQuestion.model_validate(obj))
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            raise InputError(
                f"{path}:{number}",
                f"{where}: {first['msg']} (expected keys: question, relevant_ids?, answerable?)",
            ) from err
    if not questions:
        raise InputError(str(path), "the dataset holds no questions")
    if split is not None:
        if not any(q.split for q in questions):
            raise InputError(str(path), "the dataset has no split labels (tune/heldout)")
        questions = [q for q in questions if q.split == split]
    return questions[:limit] if limit else questions


def _stratum(question: EvalQuestion) -> tuple[str, str, str]:
    if not question.answerable:
        return ("out_of_corpus", question.kind or "", "")
    return ("answerable", question.wording or "", question.kind or "")


def assign_splits(questions: Iterable[EvalQuestion]) -> dict[str, Split]:
    """The tune/heldout split of each question id: deterministic, stratified, blind to results.

    Questions are grouped into strata (answerable ones by wording and kind, out-of-corpus ones
    by kind), each stratum is ordered by the SHA-256 of the question ids, and the strata,
    in sorted order, are dealt alternately to tune and heldout. Every stratum is split evenly
    (one more on one side when it is odd) and the two splits differ by at most one question.
    Only ids and labels are read, so the split cannot depend on how any system answered.
    """
    strata: dict[tuple[str, str, str], list[str]] = {}
    for question in questions:
        strata.setdefault(_stratum(question), []).append(question.id)
    order = [
        qid
        for key in sorted(strata)
        for qid in sorted(strata[key], key=lambda i: hashlib.sha256(i.encode()).hexdigest())
    ]
    return {qid: ("tune" if n % 2 == 0 else "heldout") for n, qid in enumerate(order)}


def file_sha256(path: Path) -> str:
    """Content hash of a file, recorded in reports so a run names the exact dataset."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
