"""Run as a script: what a fresh process reading the store finds, as one JSON object on stdout.

The data-safety cases look at the store the way a newly started reader would: in a process of
its own (Chroma's embedded client caches per process, so the test process could read a stale
copy), through `ingest.store.ChromaStore` as `PAPERCHAT_*` configure it. Only what the code
before issue 11 also has is used (`from_settings`, `all_chunks`, `count_papers`), so the
suite's "before" runs use this script too.

Printed: `papers`, the reader's paper count; `chunks`; `visible`, the ids that show (their
chunk 0 is stored); `whole`, per paper id the (title, abstract) of every version of it whose
chunks are all stored; `versions`, per paper id how many distinct versions have rows at all.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's code


def probe() -> dict[str, Any]:
    from ingest.store import ChromaStore
    from paperchat.errors import StoreError
    from paperchat.settings import Settings

    try:
        store = ChromaStore.from_settings(Settings(), None, create=False)
    except StoreError:
        return {"papers": 0, "chunks": 0, "visible": [], "whole": {}, "versions": {}}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in store.all_chunks():
        # Rows carry typed `meta` now; the code before issue 13 gave the stored dict.
        meta = row.meta.to_metadata() if hasattr(row, "meta") else row.metadata
        groups[(str(meta["paper_id"]), str(meta["content_hash"]))].append(meta)
    whole: dict[str, list[list[str]]] = defaultdict(list)
    versions: dict[str, int] = defaultdict(int)
    visible = set()
    for (paper_id, _), rows in groups.items():
        versions[paper_id] += 1
        indexes = sorted(int(m["chunk_index"]) for m in rows)
        sizes = {int(m["n_chunks"]) for m in rows}
        first = [m for m in rows if int(m["chunk_index"]) == 0]
        if first:
            visible.add(paper_id)
        if len(sizes) == 1 and indexes == list(range(sizes.pop())):
            whole[paper_id].append([str(first[0]["title"]), str(first[0].get("abstract", ""))])
    return {
        "papers": store.count_papers(),
        "chunks": store.count_chunks(),
        "visible": sorted(visible),
        "whole": dict(whole),
        "versions": dict(versions),
    }


if __name__ == "__main__":
    print(json.dumps(probe()))
