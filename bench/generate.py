"""Seeded generator of realistic-length synthetic abstracts (arXiv JSONL field names).

Usage: python bench/generate.py N OUT.jsonl [--seed S]

The text is nonsense built from ML vocabulary, but its length distribution (~120-260 words,
6-10 sentences) and token statistics resemble the sample corpus, which is what ingest and
retrieval cost depend on.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SUBJECTS = [
    "large language models",
    "diffusion models",
    "graph neural networks",
    "vision transformers",
    "reinforcement learning agents",
    "retrieval-augmented generation",
    "speech recognizers",
    "recommender systems",
    "parameter-efficient fine-tuning",
    "machine unlearning",
    "multi-agent systems",
    "code generation models",
    "3D pose estimators",
    "protein language models",
    "continual learning methods",
    "federated learning",
    "knowledge distillation",
    "model merging",
]
VERBS = [
    "improves",
    "degrades",
    "accelerates",
    "stabilizes",
    "regularizes",
    "compresses",
    "aligns",
    "calibrates",
    "generalizes",
    "outperforms",
    "explains",
    "scales",
]
OBJECTS = [
    "out-of-distribution robustness",
    "sample efficiency",
    "inference latency",
    "memory footprint",
    "downstream accuracy",
    "factual consistency",
    "long-context reasoning",
    "zero-shot transfer",
    "training stability",
    "privacy guarantees",
    "energy consumption",
    "token throughput",
]
OPENERS = [
    "Recent work has shown that {s} {v} {o}.",
    "We study how {s} affect {o}.",
    "Despite progress, {s} still struggle with {o}.",
    "In this paper, we propose {m}, a method for {o}.",
]
MIDDLES = [
    "Our key insight is that {s} {v} {o} when trained with {m}.",
    "We introduce a {adj} objective that {v} {o} without extra supervision.",
    "Experiments on {n} benchmarks show that {m} {v} {o} by {p}%.",
    "We further analyze the trade-off between {o} and {o2}.",
    "Ablations confirm that each component of {m} contributes to {o}.",
    "Theoretical analysis shows that {m} {v} {o} under mild assumptions.",
]
CLOSERS = [
    "Code and models are publicly available.",
    "We release our benchmark to foster research.",
    "These results suggest a promising direction for {s}.",
]
ADJ = ["simple", "scalable", "contrastive", "hierarchical", "sparse", "adaptive", "lightweight"]


def _method(rng: random.Random) -> str:
    letters = "".join(rng.choice("ABCDEFGHKLMNPRSTVXZ") for _ in range(rng.randint(3, 5)))
    return letters + rng.choice(["", "-Net", "Former", "GPT", "++"])


def make_abstract(rng: random.Random) -> dict[str, object]:
    """One synthetic paper record."""
    method = _method(rng)

    def fill(template: str) -> str:
        return template.format(
            s=rng.choice(SUBJECTS),
            v=rng.choice(VERBS),
            o=rng.choice(OBJECTS),
            o2=rng.choice(OBJECTS),
            m=method,
            adj=rng.choice(ADJ),
            n=rng.randint(2, 12),
            p=round(rng.uniform(0.5, 35.0), 1),
        )

    sentences = [fill(rng.choice(OPENERS))]
    sentences += [fill(rng.choice(MIDDLES)) for _ in range(rng.randint(12, 20))]
    sentences.append(fill(rng.choice(CLOSERS)))
    year = rng.randint(2015, 2025)
    return {
        "title": f"{method}: {fill('{adj}').title()} {rng.choice(SUBJECTS).title()} for "
        f"{rng.choice(OBJECTS).title()}",
        "abstract": " ".join(sentences),
        "authors": ", ".join(f"Author {rng.randint(1, 9999)}" for _ in range(rng.randint(1, 8))),
        "categories": rng.choice(["cs.LG", "cs.CL", "cs.CV", "stat.ML"]),
        "update_date": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
    }


def generate(n: int, out: Path, seed: int = 0) -> Path:
    """Write `n` records to `out` (JSONL); the same seed gives the same file."""
    rng = random.Random(seed)
    with out.open("w", encoding="utf-8") as fh:
        for _ in range(n):
            fh.write(json.dumps(make_abstract(rng)) + "\n")
    return out


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", type=int)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    generate(args.n, args.out, args.seed)
    print(f"wrote {args.n} abstracts to {args.out}")


if __name__ == "__main__":
    main()
