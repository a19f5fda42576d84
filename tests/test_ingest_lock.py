"""One writer at a time per data dir: the second is told who writes, may wait, and a killed
writer never blocks the next one."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from ingest.lock import current_holder, lock_path, reader_window, writer_lock
from paperchat.cli import app
from paperchat.errors import StoreBusy
from paperchat.settings import Settings
from tests.conftest import REPO
from tests.fixtures.models import FakeEmbedding

GOOD = '{"id": "2401.00001", "title": "Good", "abstract": "Graph networks for molecules."}\n'
_HOLD = """
import sys
from pathlib import Path
from ingest.lock import writer_lock
from paperchat.settings import Settings

settings = Settings(_env_file=None, data_dir=Path(sys.argv[1]))
with writer_lock(settings, "holder for the test"):
    print("held", flush=True)
    sys.stdin.readline()
"""


class Holder:
    """Another process holding the data dir's writer lock until `release()` or `kill()`."""

    def __init__(self, data_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLD, str(data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "held\n"

    def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.wait(timeout=60) == 0

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("ingest.embedding.build_embedder", lambda _settings: FakeEmbedding())
    return settings


@pytest.fixture
def holder(cli: Settings) -> Iterator[Holder]:
    held = Holder(cli.data_dir)
    yield held
    held.close()


def _ingest(path: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["ingest", str(path), *args])


def test_a_second_writer_is_refused_and_told_who_writes(
    cli: Settings, holder: Holder, tmp_path: Path
) -> None:
    (tmp_path / "good.jsonl").write_text(GOOD, encoding="utf-8")
    result = _ingest(tmp_path / "good.jsonl")
    assert result.exit_code == 1
    message = result.stderr
    assert f"pid {holder.proc.pid}" in message
    assert '"holder for the test", since' in message
    assert "--wait SECONDS" in message
    removed = CliRunner().invoke(app, ["remove", "arxiv:2401.00001"])
    assert removed.exit_code == 1 and f"pid {holder.proc.pid}" in removed.stderr
    assert not cli.chroma_path.exists()  # the refused ingest wrote nothing at all


def test_wait_queues_behind_the_writer(cli: Settings, holder: Holder, tmp_path: Path) -> None:
    (tmp_path / "good.jsonl").write_text(GOOD, encoding="utf-8")
    releaser = threading.Timer(1.0, holder.release)
    releaser.start()
    try:
        result = _ingest(tmp_path / "good.jsonl", "--wait", "120", "--json")
    finally:
        releaser.join()
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 1


def test_a_killed_writer_does_not_block_the_next(
    cli: Settings, holder: Holder, tmp_path: Path
) -> None:
    holder.kill()
    assert current_holder(lock_path(cli)) is not None  # its record is still in the file
    (tmp_path / "good.jsonl").write_text(GOOD, encoding="utf-8")
    result = _ingest(tmp_path / "good.jsonl", "--json")
    assert result.exit_code == 0, result.output
    assert current_holder(lock_path(cli)) is None  # released cleanly this time


def test_an_upload_from_the_page_is_refused_while_a_cli_writer_runs(
    cli: Settings, holder: Holder, tmp_path: Path
) -> None:
    from ui.wiring import real_services

    (tmp_path / "good.jsonl").write_text(GOOD, encoding="utf-8")
    services = real_services(cli)
    assert services.corpus is not None
    with pytest.raises(StoreBusy, match=f"pid {holder.proc.pid}"):
        services.corpus.ingest(tmp_path / "good.jsonl", lambda fraction, text: None)
    holder.release()
    summary = services.corpus.ingest(tmp_path / "good.jsonl", lambda fraction, text: None)
    assert summary.added == 1


def test_the_page_says_only_busy_and_the_log_names_the_writer(
    cli: Settings, holder: Holder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ui.app import _ingest_upload
    from ui.wiring import real_services

    source = tmp_path / "good.jsonl"
    source.write_text(GOOD, encoding="utf-8")
    services = real_services(cli)
    with caplog.at_level(logging.WARNING, logger="ui.app"):
        text, rows, _ = _ingest_upload(services, str(source), lambda *a, **k: None)

    assert text.startswith("**Refused:**") and "busy" in text and rows == []
    for detail in (f"pid {holder.proc.pid}", str(cli.data_dir), "holder for the test"):
        assert detail not in text
    assert f"pid {holder.proc.pid}" in caplog.text  # the operator still learns who writes
    assert not source.exists()  # the refused upload is not kept


def test_readers_get_a_window_only_while_no_writer_writes(settings: Settings) -> None:
    path = lock_path(settings)
    with reader_window(path) as free:
        assert free  # no writer ever ran: nothing to wait for, nothing created
    assert not settings.data_dir.exists()
    with writer_lock(settings, "test"):
        holder = current_holder(path)
        assert holder is not None and holder.pid == os.getpid() and holder.command == "test"
        with reader_window(path) as free:
            assert not free
        with pytest.raises(StoreBusy):
            with writer_lock(settings, "second"):
                pass
    with reader_window(path) as free:
        assert free
