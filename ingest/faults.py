"""Crash points for tests: SIGKILL this process at a named point of a write, deterministically.

Off unless the environment variable `PAPERCHAT_TEST_KILL_AT` names a point, optionally with
the pass on which to die: `PAPERCHAT_TEST_KILL_AT=batch-written:2` kills the process the second
time it reaches `batch-written`. It is a test hook, not a setting (so it is not in `Settings`
or `.env.example`); `tests/test_ingest_crash.py` uses it to prove that a kill at each point
loses nothing. The points:

* `store-upsert`: after each Chroma upsert call of `ChromaStore.upsert`; a batch is written
  in two (its papers' other chunks, then their chunks 0), so this can fall inside a batch;
* `batch-written`: after a batch's new chunks are written, before the replaced versions of
  its papers are deleted (inside an update);
* `before-swap`: a rebuild's or migration's new collection is complete, the pointer not moved;
* `after-swap`: the pointer names the new collection, the old one is not yet deleted.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

KILL_AT_ENV = "PAPERCHAT_TEST_KILL_AT"

_passes: Counter[str] = Counter()  # per process; only ever read when the variable is set


def crash_point(name: str) -> None:
    """SIGKILL this process if `PAPERCHAT_TEST_KILL_AT` names this point (and pass)."""
    spec = os.environ.get(KILL_AT_ENV)
    if not spec:
        return
    point, _, nth = spec.partition(":")
    if point != name:
        return
    _passes[name] += 1
    if _passes[name] >= int(nth or "1"):
        os.kill(os.getpid(), signal.SIGKILL)
