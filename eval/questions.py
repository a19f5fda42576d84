"""Evaluation questions: the JSONL dataset format and its loader.

One JSON object per line (blank lines and lines starting with `#` are skipped)::

    {"question": "What is SOUL?", "relevant_ids": ["p:d4ad722d7858ad37"], "answerable": true}
    {"question": "Which paper measures the boiling point of lava?", "answerable": false}

`relevant_ids` is optional (retrieval is scored only where it is given); `answerable` defaults to
true; `id` is optional and defaults to `q<line number>`. Unknown keys are kept but ignored,
so one file can serve the retrieval and the grounding evaluation.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from paperchat.errors import InputError


class EvalQuestion(BaseModel):
    """One question of an evaluation dataset."""

    model_config = ConfigDict(extra="allow", frozen=True)

    question: str = Field(min_length=1, description="The question as a user would ask it.")
    relevant_ids: list[str] | None = Field(
        default=None, description="Paper ids that answer it (scores retrieval when given)."
    )
    answerable: bool = Field(default=True, description="False: the corpus does not answer it.")
    id: str = Field(default="", description="Stable id; `q<line>` when the file gives none.")


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


def load_questions(path: Path, limit: int | None = None) -> list[EvalQuestion]:
    """Read a question dataset; errors name the file and line and say what is wrong."""
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
    return questions[:limit] if limit else questions


def file_sha256(path: Path) -> str:
    """Content hash of a file, recorded in reports so a run names the exact dataset."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
