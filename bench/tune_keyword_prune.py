"""Retrieval quality of the keyword index's common-word pruning (`MAX_DF`), on two dev splits.

Usage (a store built by `paperchat ingest data/sample`):
  PAPERCHAT_DATA_DIR=/tmp/sample python bench/tune_keyword_prune.py --max-df 1 0.5 0.2 0.1 0.05

The dev retrieval set (`eval/datasets/dev_retrieval.jsonl`) has no split of its own, so it is
cut in two here, deterministically: a question goes to `tune` when the first byte of the
SHA-256 of its text is even, else to `report`. Choose `MAX_DF` on `tune`, quote `report`.
`MIN_DF` is set to 0 for these runs (the sample store has only 1,101 chunks, below the
default `MIN_DF`, so with it nothing would be pruned and every row would read the same).
Prints hybrid and keyword-only hit@1, MRR@10 and recall@10 per split and value, and how many
question words were searched on average. Dense-only does not depend on the value.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, cast

from paperchat.offline import apply_offline_env

if TYPE_CHECKING:
    from ingest.store import ChromaStore

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "eval" / "datasets" / "dev_retrieval.jsonl"
METRICS = ("hit@1", "mrr@10", "recall@10")


def split_dev(folder: Path) -> dict[str, Path]:
    """Write the `tune` and `report` halves of the dev set into `folder`."""
    halves: dict[str, list[str]] = {"tune": [], "report": []}
    for line in DEV.read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest = hashlib.sha256(json.loads(line)["question"].encode()).digest()
            halves["tune" if digest[0] % 2 == 0 else "report"].append(line)
    paths = {}
    for name, lines in halves.items():
        paths[name] = folder / f"dev_retrieval-{name}.jsonl"
        paths[name].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def main() -> None:
    """CLI entry."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-df", type=float, nargs="+", default=[1.0, 0.5, 0.2, 0.1, 0.05])
    args = parser.parse_args()
    apply_offline_env()

    from rag.cli_retrieve import open_retriever

    from eval.retrieval_eval import load_dataset, run_retrieval_eval
    from ingest.keyword_index import terms
    from paperchat.settings import Settings

    retriever = open_retriever(Settings(), "hybrid")
    store = cast("ChromaStore", retriever.store)
    index = store._keywords  # the bench tunes the store's own index object
    folder = Path(tempfile.mkdtemp(prefix="dev-splits-"))
    splits = split_dev(folder)
    print(
        f"splits in {folder}: "
        + ", ".join(f"{k} {len(load_dataset(p))}" for k, p in splits.items())
    )
    rows = []
    for max_df in args.max_df:
        index.max_df, index.min_df = max_df, 0
        for name, path in splits.items():
            questions = [q.question for q in load_dataset(path)]
            searched = [len(index.selective(store.name, terms(q))) for q in questions]
            asked = [len(terms(q)) for q in questions]
            report = run_retrieval_eval(retriever, path, modes=("hybrid", "bm25"))
            row = {
                "max_df": max_df,
                "split": name,
                "words_searched": round(sum(searched) / len(searched), 2),
                "words_asked": round(sum(asked) / len(asked), 2),
            }
            for mode in report.modes:
                for metric in METRICS:
                    row[f"{mode.mode} {metric}"] = round(mode.overall[metric], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
