"""An ingest killed with SIGKILL half-way, then re-run, ends with exactly the right chunks."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.chunking import MINILM_WINDOW_TOKENS, chunk_paper
from ingest.parsers import parse_file
from ingest.records import Paper
from ingest.store import ChromaStore
from tests.fixtures.store import SAMPLE_DIR, isolated_settings

PAPERCHAT = Path(sys.executable).parent / "paperchat"
SOURCE = SAMPLE_DIR / "003_bb6973012ad82d3d.txt"  # 41 papers, ~100 chunks
_PROGRESS = re.compile(rb"(\d+)/(\d+) \[")


def _env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PAPERCHAT_") and k != "OPENAI_API_KEY"
    }
    env.update(PAPERCHAT_DATA_DIR=str(data_dir), PAPERCHAT_EMBED_BATCH_SIZE="8")
    return env


@dataclass
class _Run:
    status: int
    stdout: bytes
    terminal: bytes  # what the command drew on its stderr terminal

    def progress(self) -> list[tuple[int, int]]:
        return [(int(a), int(b)) for a, b in _PROGRESS.findall(self.terminal)]


def _on_terminal(args: list[str], env: dict[str, str], cwd: Path, *, kill_part_way: bool) -> _Run:
    """Run `paperchat ARGS` with stderr on a terminal, as a person would.

    With `kill_part_way`, send SIGKILL as soon as the progress bar shows some papers stored
    (0 < done < total); fail if the run ends first.
    """
    controller, terminal = pty.openpty()
    # A fresh pty is 0 columns wide and tqdm would draw nothing: size it like a terminal.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [str(PAPERCHAT), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
        env=env,
        cwd=cwd,
    )
    os.close(terminal)
    run = _Run(-1, b"", b"")
    try:
        deadline = time.monotonic() + 500
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if ready:
                try:
                    run.terminal += os.read(controller, 4096)
                except OSError:  # the command closed the terminal: it has ended
                    break
            bar = run.progress()
            if kill_part_way and bar and 0 < bar[-1][0] < bar[-1][1]:
                os.kill(proc.pid, signal.SIGKILL)
                break
            if not ready and proc.poll() is not None:
                break
        assert proc.stdout is not None
        run.stdout = proc.stdout.read()
        proc.stdout.close()
        run.status = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)
    if kill_part_way:
        assert run.status == -signal.SIGKILL, f"ended before the kill: {run.terminal[-500:]!r}"
    return run


@pytest.mark.slow
def test_ingest_killed_with_sigkill_then_rerun_ends_with_exact_papers_and_chunks(
    tmp_path: Path,
) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SOURCE, corpus / SOURCE.name)
    data_dir = tmp_path / "data"
    env = _env(data_dir)
    papers = [p for p in parse_file(corpus / SOURCE.name) if isinstance(p, Paper)]
    expected_ids = sorted(
        c.chunk_id
        for p in papers
        for c in chunk_paper(p, 160, 32, window_tokens=MINILM_WINDOW_TOKENS)
    )

    killed = _on_terminal(["ingest", str(corpus)], env, tmp_path, kill_part_way=True)
    done, total = killed.progress()[-1]
    assert total == len(papers) == 41
    stats = _on_terminal(["stats", "--json"], env, tmp_path, kill_part_way=False)
    assert done <= json.loads(stats.stdout)["papers"] < len(papers)

    rerun = _on_terminal(["ingest", str(corpus), "--json"], env, tmp_path, kill_part_way=False)

    assert rerun.status == 0, rerun.terminal[-2000:]
    assert not _PROGRESS.search(rerun.terminal)  # --json: no progress bar, even on a terminal
    report = json.loads(rerun.stdout)
    assert report["unchanged"] >= done
    assert report["added"] + report["updated"] + report["unchanged"] == len(papers)
    assert (report["papers"], report["chunks"]) == (len(papers), len(expected_ids))
    store = ChromaStore.from_settings(isolated_settings(data_dir), None, create=False)
    stored_ids = [row.chunk_id for row in store.all_chunks()]
    assert sorted(stored_ids) == expected_ids  # every chunk, none twice, nothing extra
    third = _on_terminal(["ingest", str(corpus), "--json"], env, tmp_path, kill_part_way=False)
    report = json.loads(third.stdout)
    assert (report["added"], report["updated"], report["unchanged"]) == (0, 0, len(papers))
