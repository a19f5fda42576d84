"""An ingest killed with SIGKILL half-way, then re-run, ends with exactly the right chunks."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PAPERCHAT_") and k != "OPENAI_API_KEY"}
    env.update(PAPERCHAT_DATA_DIR=str(data_dir), PAPERCHAT_EMBED_BATCH_SIZE="8")
    return env


def _kill_part_way(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, int]:
    """Run `paperchat ingest` with stderr on a terminal; SIGKILL it once some papers are stored.

    Returns the (done, total) progress the bar showed when the kill was sent.
    """
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=terminal, env=env, cwd=cwd)
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 400
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if not ready:
                continue
            try:
                seen += os.read(controller, 4096)
            except OSError:  # the child closed the terminal
                break
            done = [(int(a), int(b)) for a, b in _PROGRESS.findall(seen)]
            if done and 0 < done[-1][0] < done[-1][1]:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return done[-1]
        pytest.fail(f"ingest finished or stalled before it could be killed: {seen[-500:]!r}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)


def _paperchat_json(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, dict[str, Any]]:
    done = subprocess.run([str(PAPERCHAT), *args, "--json"], env=env, cwd=cwd,
                          capture_output=True, timeout=500, check=False)
    assert done.stdout, done.stderr.decode()[-2000:]
    return done.returncode, json.loads(done.stdout)


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
        c.chunk_id for p in papers
        for c in chunk_paper(p, 160, 32, window_tokens=MINILM_WINDOW_TOKENS)
    )

    done, total = _kill_part_way([str(PAPERCHAT), "ingest", str(corpus)], env, tmp_path)
    assert total == len(papers) == 41
    _, partial = _paperchat_json(["stats"], env, tmp_path)
    assert done <= partial["papers"] < len(papers)

    status, report = _paperchat_json(["ingest", str(corpus)], env, tmp_path)

    assert status == 0
    assert report["unchanged"] >= done
    assert report["added"] + report["updated"] + report["unchanged"] == len(papers)
    assert (report["papers"], report["chunks"]) == (len(papers), len(expected_ids))
    store = ChromaStore.from_settings(isolated_settings(data_dir), None, create=False)
    stored_ids = [row.chunk_id for row in store.all_chunks()]
    assert sorted(stored_ids) == expected_ids  # every chunk, none twice, nothing extra
    _, third = _paperchat_json(["ingest", str(corpus)], env, tmp_path)
    assert (third["added"], third["updated"], third["unchanged"]) == (0, 0, len(papers))
