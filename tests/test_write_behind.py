"""`WriteBehind`: the store write of one batch runs while the next batch is embedded."""

import threading
import time

import pytest

from ingest.streaming import WriteBehind


def test_a_write_runs_while_the_caller_goes_on():
    next_embedded = threading.Event()
    seen: list[bool] = []

    def write() -> int:
        seen.append(next_embedded.wait(timeout=10))  # False if the caller is blocked in submit
        return 3

    with WriteBehind() as writer:
        writer.submit(write)
        next_embedded.set()  # "embedding the next batch" happens during the write
    assert seen == [True]
    assert writer.total == 3


def test_writes_run_one_at_a_time_in_order():
    log: list[str] = []

    def write(name: str) -> int:
        log.append(f"start {name}")
        time.sleep(0.05)
        log.append(f"end {name}")
        return 1

    with WriteBehind() as writer:
        for name in "abc":
            writer.submit(lambda name=name: write(name))
    assert log == ["start a", "end a", "start b", "end b", "start c", "end c"]
    assert writer.total == 3


def test_a_failed_write_is_raised_at_the_next_submit():
    def bad() -> int:
        raise OSError("disk full")

    later: list[str] = []
    with pytest.raises(OSError, match="disk full"), WriteBehind() as writer:
        writer.submit(bad)
        writer.submit(lambda: later.append("ran") or 1)
    assert later == []  # nothing is written after a failed write


def test_a_failed_last_write_is_raised_on_leaving():
    def bad() -> int:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"), WriteBehind() as writer:
        writer.submit(bad)


def test_the_write_in_flight_lands_when_the_caller_fails():
    landed: list[str] = []

    def slow() -> int:
        time.sleep(0.2)
        landed.append("whole")
        return 1

    with pytest.raises(RuntimeError, match="embedder died"), WriteBehind() as writer:
        writer.submit(slow)
        raise RuntimeError("embedder died")
    assert landed == ["whole"]
