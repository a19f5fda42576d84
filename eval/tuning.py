"""Grid search for the answer pipeline's policies, scored on labelled dev data.

`eval selection` and `eval verification` both try every combination of a few parameter values
and rank the policies by a score; this is that loop, once. Tune on one split and report on the
other (`--split`): a figure measured on the data it was tuned on says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
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
