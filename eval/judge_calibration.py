"""Judge calibration: how often does a judge agree with hand labels?

The labelled set (`eval/datasets/judge_calibration.jsonl`) holds one pair per line::

    {"claim": "...", "paper_id": "p:...", "evidence": "..."?, "supported": true, "kind": "..."}

`evidence` defaults to the abstract of `paper_id` in the corpus. `kind` says how the claim was
written (`verbatim`, `paraphrase`, `number_changed`, `entity_swap`, `negation`, `same_topic`,
...), so the report can say which kinds of error a judge makes. "Positive" below means
"supported": precision is the share of the judge's "supported" verdicts that are right, recall
the share of truly supported claims it accepts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from eval.judges import Judge
from eval.questions import read_jsonl
from paperchat.errors import InputError


class LabelledPair(BaseModel):
    """One hand-labelled (claim, evidence) pair."""

    claim: str = Field(min_length=1)
    paper_id: str
    evidence: str = ""
    supported: bool
    kind: str = "unspecified"


class Calibration(BaseModel):
    """A judge's agreement with the labels."""

    judge: dict[str, object]
    n: int
    tp: int
    fp: int
    tn: int
    fn: int
    accuracy: float
    accuracy_ci95: tuple[float, float] = Field(description="Wilson score interval.")
    precision: float | None
    recall: float | None
    by_kind: dict[str, dict[str, float | int]] = Field(
        default_factory=dict, description="kind -> {n, accuracy}"
    )
    mistakes: list[dict[str, object]] = Field(default_factory=list)


def load_pairs(path: Path, abstracts: dict[str, str] | None = None) -> list[LabelledPair]:
    """Read labelled pairs, filling missing `evidence` from `abstracts` (paper_id -> text)."""
    pairs = []
    for number, obj in read_jsonl(path):
        try:
            pair = LabelledPair.model_validate(obj)
        except ValidationError as err:
            raise InputError(
                f"{path}:{number}",
                f"bad labelled pair: {err.errors()[0]['msg']}"
                " (keys: claim, paper_id, evidence?, supported, kind)",
            ) from err
        if not pair.evidence:
            text = (abstracts or {}).get(pair.paper_id)
            if not text:
                raise InputError(
                    f"{path}:{number}",
                    f"no evidence given and paper "
                    f"{pair.paper_id} is not in the corpus; pass --corpus",
                )
            pair = pair.model_copy(update={"evidence": text})
        pairs.append(pair)
    return pairs


def corpus_abstracts(paths: Iterable[Path]) -> dict[str, str]:
    """paper_id -> abstract for every paper parsed from `paths` (first occurrence wins)."""
    from ingest.parsers import iter_input_files, parse_file
    from ingest.records import Paper

    found: dict[str, str] = {}
    for file in iter_input_files(paths):
        for item in parse_file(file):
            if isinstance(item, Paper):
                found.setdefault(item.paper_id, item.abstract)
    return found


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval for a proportion (sane at 0 and n, unlike the normal one)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def calibrate(judge: Judge, pairs: list[LabelledPair]) -> Calibration:
    """Run `judge` on every pair and count agreements."""
    verdicts = judge.supports_many([(p.claim, p.evidence) for p in pairs])
    tp = sum(v and p.supported for v, p in zip(verdicts, pairs, strict=True))
    fp = sum(v and not p.supported for v, p in zip(verdicts, pairs, strict=True))
    fn = sum(not v and p.supported for v, p in zip(verdicts, pairs, strict=True))
    tn = len(pairs) - tp - fp - fn
    kinds: dict[str, list[bool]] = defaultdict(list)
    mistakes = []
    for verdict, pair in zip(verdicts, pairs, strict=True):
        kinds[pair.kind].append(verdict == pair.supported)
        if verdict != pair.supported:
            mistakes.append(
                {
                    "claim": pair.claim,
                    "paper_id": pair.paper_id,
                    "kind": pair.kind,
                    "label": pair.supported,
                    "judge": verdict,
                }
            )
    n = len(pairs)
    return Calibration(
        judge=judge.describe(),
        n=n,
        tp=tp,
        fp=fp,
        tn=tn,
        fn=fn,
        accuracy=(tp + tn) / n if n else 0.0,
        accuracy_ci95=wilson_interval(tp + tn, n),
        precision=tp / (tp + fp) if tp + fp else None,
        recall=tp / (tp + fn) if tp + fn else None,
        by_kind={k: {"n": len(v), "accuracy": sum(v) / len(v)} for k, v in sorted(kinds.items())},
        mistakes=mistakes,
    )


def render_calibration(cal: Calibration) -> str:
    """Plain text for the terminal."""

    def pct(v: float | None) -> str:
        return "–" if v is None else f"{v:.3f}"

    lo, hi = cal.accuracy_ci95
    lines = [
        f"judge {cal.judge}",
        f"  pairs {cal.n}: TP {cal.tp}  FP {cal.fp}  TN {cal.tn}  FN {cal.fn}",
        f"  accuracy {pct(cal.accuracy)} (95% CI {lo:.3f}-{hi:.3f})  "
        f"precision {pct(cal.precision)}  recall {pct(cal.recall)}",
        "  by kind: "
        + ", ".join(f"{k} {v['accuracy']:.2f} (n={v['n']})" for k, v in cal.by_kind.items()),
    ]
    return "\n".join(lines)
