"""Run as a script: the real `paperchat` CLI, SIGKILLed right after its Nth Chroma write of a kind.

`python kill_cli.py delete:1 ingest FILE` runs `paperchat ingest FILE` and kills it with
SIGKILL the moment its first `Collection.delete` call has returned (`upsert:2`: after the
second upsert). It counts calls to chromadb's own `Collection` methods, not paperchat's
crash points (`PAPERCHAT_TEST_KILL_AT`, which the code before issue 11 lacks), so one case
can kill both the old and the current code at the same place in the store's life: e.g.
right after the first delete of an update, which the old code made before writing the new
version.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's code

WRITES = ("add", "upsert", "update", "delete")


def arm(method: str, nth: int) -> None:
    """Make the `nth` call of `Collection.<method>` kill this process once it returns."""
    from chromadb.api.models.Collection import Collection

    real: Callable[..., Any] = getattr(Collection, method)
    calls = [0]

    @functools.wraps(real)
    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(self, *args, **kwargs)
        calls[0] += 1
        if calls[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(Collection, method, counted)


def main(argv: list[str]) -> None:
    method, _, nth = argv[0].partition(":")
    if method not in WRITES:
        raise SystemExit(f"kill_cli.py: {method!r} is not one of {', '.join(WRITES)}")
    arm(method, int(nth or "1"))
    from paperchat.cli import main as paperchat

    sys.argv = ["paperchat", *argv[1:]]
    paperchat()


if __name__ == "__main__":
    main(sys.argv[1:])
