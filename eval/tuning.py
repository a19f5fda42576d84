"""Grid search for the answer pipeline's policies, scored on labelled dev data.

`eval selection` and `eval verification` both try every combination of a few parameter values
and rank the policies by a score; this is that loop, once. Tune on one split and report on the
other (`--split`): a figure measured on the data it was tuned on says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, TypeVar

P = TypeVar("P")
S = TypeVar("S")


def grid_search(
    grid: Mapping[str, Sequence[Any]],
    build: Callable[..., P],
    score: Callable[[P], S],
    rank: Callable[[S], Any],
) -> list[tuple[P, S]]:
    """Every policy `build(**params)` over the product of `grid`, with its score, best first.

    Args:
        grid: Parameter name -> the values to try.
        build: Makes a policy from keyword arguments (a dataclass or model class).
        score: Scores one policy.
        rank: Sort key of a score; smallest first (negate what should be large).
    """
    results = []
    for values in itertools.product(*grid.values()):
        policy = build(**dict(zip(grid, values, strict=True)))
        results.append((policy, score(policy)))
    results.sort(key=lambda item: rank(item[1]))
    return results


SHOWN = 10
"""How many of the best grid policies a report lists."""


def tuning_json(
    policy: Any, scores: Mapping[str, Any], searched: Sequence[tuple[Any, Any]]
) -> dict[str, Any]:
    """The `--json` body shared by the policy reports: configured policy, scores, grid results.

    Policies and scores are dataclasses; each becomes a plain dict.
    """
    return {
        "policy": asdict(policy),
        "scores": {name: asdict(s) for name, s in scores.items()},
        "grid": [{"policy": asdict(p), "score": asdict(s)} for p, s in searched],
    }


def heldout_warning(split: str) -> str | None:
    """The note a grid searched on anything but the tune split must carry."""
    return None if split == "tune" else "Note: a grid searched on heldout is no longer held out."
