"""One writer at a time per data dir: a cross-process lock, and a quiet window for readers.

Chroma's embedded client is not process-safe, and even with a Chroma server two writers
would interleave their rebuilds and garbage collection. So every writer (`paperchat ingest`,
`paperchat remove`, the web page's upload) holds `writer_lock` for its whole run: an exclusive
`fcntl.flock` on `DATA_DIR/write.lock`. The kernel releases it when the holder exits or is
killed (even by SIGKILL), so a dead writer never blocks the next one and there is no lock file
to delete by hand. The holder writes its pid, host, command and start time into the file; a
second writer is refused at once with those details (`StoreBusy`), or waits up to `wait_s`.

Readers never wait: a process that serves questions reloads the store after another process
wrote to it only inside `reader_window`, a shared lock taken when no writer holds the file.

Limits: the lock is per data dir on one machine. Two machines (or two data dirs) writing to
one Chroma server are not serialised; nor is a data dir on a network file system whose
`flock` is not shared between hosts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from paperchat.errors import StoreBusy
from paperchat.settings import Settings

LOCK_FILE = "write.lock"
READER_GRACE_S = 30.0
"""How long a writer waits for readers that are reloading (they hold the lock for moments)."""


def lock_path(settings: Settings) -> Path:
    """The data dir's lock file."""
    return settings.data_dir / LOCK_FILE


@dataclass(frozen=True)
class LockHolder:
    """Who holds the writer lock, as the holder recorded it."""

    pid: int
    host: str
    command: str
    since: float  # Unix time

    def describe(self) -> str:
        """E.g. `pid 4242 on box, "paperchat ingest data/sample", since 12:00:03 (8 s ago)`."""
        started = dt.datetime.fromtimestamp(self.since).strftime("%Y-%m-%d %H:%M:%S")
        age = max(0, round(time.time() - self.since))
        return f'pid {self.pid} on {self.host}, "{self.command}", since {started} ({age} s ago)'


@contextlib.contextmanager
def writer_lock(
    settings: Settings, command: str, *, wait_s: float = 0.0, poll_s: float = 0.2
) -> Iterator[None]:
    """Hold the data dir's writer lock for the body of the `with`.

    Args:
        settings: Names the data dir.
        command: What this writer is, shown to a second writer (e.g. "paperchat ingest x.csv").
        wait_s: How long to wait for another writer to finish; 0 refuses at once.
        poll_s: How often to try again while waiting.

    Raises:
        StoreBusy: Another writer held the lock for longer than `wait_s`; the message names it.
    """
    path = lock_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, wait_s, poll_s)
        _record_holder(fd, command)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # the next reader of the file finds no stale holder
    finally:
        os.close(fd)  # closing releases the lock


@contextlib.contextmanager
def reader_window(path: Path | None) -> Iterator[bool]:
    """Yield True holding a shared lock when no writer holds `path`, else yield False at once."""
    if path is None or not path.exists():
        yield True  # no writer has ever run here
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def current_holder(path: Path) -> LockHolder | None:
    """The writer recorded in the lock file, or None when none is recorded (or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "null")
        return LockHolder(int(data["pid"]), str(data["host"]), str(data["command"]), data["since"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _acquire(fd: int, path: Path, wait_s: float, poll_s: float) -> None:
    start = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        waited = time.monotonic() - start
        writer = _writer_holds(path)
        if waited >= wait_s and (writer or waited >= READER_GRACE_S):
            raise StoreBusy(_busy_message(path, writer, wait_s))
        time.sleep(poll_s)


def _writer_holds(path: Path) -> bool:
    """True when a writer (exclusive) holds the lock; False when only readers do."""
    with reader_window(path) as free:
        return not free


def _record_holder(fd: int, command: str) -> None:
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "since": time.time(),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)


def _busy_message(path: Path, writer: bool, wait_s: float) -> str:
    where = f"The paper store in {path.parent} is being written by another process"
    if not writer:
        return f"{where} (readers kept it busy for {READER_GRACE_S:.0f} s); try again."
    holder = current_holder(path)
    who = holder.describe() if holder else "details not recorded yet"
    waited = f" (waited {wait_s:g} s)" if wait_s else ""
    return (
        f"{where}: {who}{waited}. Only one writer at a time: try again when it has finished "
        "(`paperchat ingest` and `remove` wait for it with --wait SECONDS). A killed writer "
        "releases the lock by itself; there is nothing to delete."
    )
