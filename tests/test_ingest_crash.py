"""An ingest killed with SIGKILL at any point, then re-run, ends with exactly the right chunks.

The first test kills a real ingest (real model) when its progress bar shows some papers stored.
The others kill the real CLI at named points (`ingest.faults`, `PAPERCHAT_TEST_KILL_AT`):
inside a batch, inside an update, around a rebuild's and a migration's swap; they check what a
reader sees right after the kill (every paper whole, old or new), then that a re-run repairs
everything. They embed through a local bag-of-words server (`embedding_server`), not a model.
"""

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
from typing import Any

import pytest

from ingest.chunking import MINILM_WINDOW_TOKENS, chunk_paper
from ingest.faults import KILL_AT_ENV
from ingest.parsers import parse_file
from ingest.records import Paper
from ingest.store import ChromaStore
from paperchat.settings import Settings
from tests.fixtures.store import (
    SAMPLE_DIR,
    SERVED_EMBEDDER_ID,
    SERVED_MODEL,
    cli_env,
    isolated_settings,
    write_scheme_1_store,
)

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
    stored_ids = [row.chunk_id.split("@")[0] for row in store.all_chunks()]  # version dropped
    assert sorted(stored_ids) == expected_ids  # every chunk, none twice, nothing extra
    third = _on_terminal(["ingest", str(corpus), "--json"], env, tmp_path, kill_part_way=False)
    report = json.loads(third.stdout)
    assert (report["added"], report["updated"], report["unchanged"]) == (0, 0, len(papers))


# -- named kill points ----------------------------------------------------------------------------


def _run_cli(env: dict[str, str], cwd: Path, *args: str, kill_at: str | None = None) -> Any:
    if kill_at:
        env = {**env, KILL_AT_ENV: kill_at}
    result = subprocess.run(
        [str(PAPERCHAT), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )
    if kill_at:
        assert result.returncode == -signal.SIGKILL, (kill_at, result.stderr[-2000:])
    return result


def _write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _abstract(i: int, edition: str, sentences: int = 5) -> str:
    return " ".join(
        f"In the {edition} edition, paper {i} reports result {j} on benchmark {j}."
        for j in range(sentences)
    )


def _complete_versions(settings: Settings) -> dict[str, list[str]]:
    """Each stored paper's whole versions, as their chunk-0 texts (what a reader can show)."""
    store = ChromaStore.from_settings(settings, None, create=False)
    texts = {row.chunk_id: row.meta.abstract for row in store.all_chunks()}
    whole: dict[str, list[str]] = {}
    for pid, paper in store.stored_papers().items():
        for version in paper.versions.values():
            if len(version.n_chunks) == 1 and version.indexes == set(range(*version.n_chunks)):
                first = next(r for r in version.row_ids if r.split("@")[0].endswith("#0"))
                whole.setdefault(pid, []).append(str(texts[first]))
    return whole


@pytest.mark.slow
def test_kill_inside_an_update_leaves_every_paper_whole_then_rerun_finishes(
    tmp_path: Path, embedding_server: str
) -> None:
    data = tmp_path / "data"
    env = cli_env(
        data,
        embedding_server,
        PAPERCHAT_EMBED_BATCH_SIZE="6",
        PAPERCHAT_CHUNK_TOKENS="32",
        PAPERCHAT_CHUNK_OVERLAP="0",
    )
    ids = [f"2401.{i:05d}" for i in range(12)]
    path = _write(
        tmp_path / "p.jsonl",
        [{"id": i, "title": "T", "abstract": _abstract(n, "first")} for n, i in enumerate(ids)],
    )
    assert _run_cli(env, tmp_path, "ingest", str(path)).returncode == 0
    settings = isolated_settings(data)
    n_chunks = ChromaStore.from_settings(settings, None).count_chunks()
    assert n_chunks > len(ids)  # several chunks per paper, several papers per batch

    _write(
        path,
        [{"id": i, "title": "T", "abstract": _abstract(n, "second")} for n, i in enumerate(ids)],
    )
    _run_cli(env, tmp_path, "ingest", str(path), kill_at="batch-written:2")

    whole = _complete_versions(settings)
    assert set(whole) == {f"arxiv:{i}" for i in ids}  # no paper lost, none half-visible
    editions = [sorted("second" in t for t in texts) for texts in whole.values()]
    assert [False, True] in editions  # the killed batch: old and new both whole
    assert [True] in editions and [False] in editions  # batch 1 done, the rest not yet
    reader = ChromaStore.from_settings(settings, None, create=False)
    assert reader.count_papers() == len(ids)
    assert set(reader.get_papers([f"arxiv:{i}" for i in ids])) == {f"arxiv:{i}" for i in ids}

    rerun = json.loads(_run_cli(env, tmp_path, "ingest", str(path), "--json").stdout)
    assert (rerun["added"], rerun["updated"] + rerun["unchanged"]) == (0, len(ids))
    assert rerun["chunks"] == n_chunks
    assert all(
        ["second" in t for t in texts] == [True] for texts in _complete_versions(settings).values()
    )


@pytest.mark.slow
def test_kill_inside_a_batch_shows_no_half_paper_then_rerun_stores_every_chunk_once(
    tmp_path: Path, embedding_server: str
) -> None:
    data = tmp_path / "data"
    env = cli_env(
        data,
        embedding_server,
        PAPERCHAT_EMBED_BATCH_SIZE="6",
        PAPERCHAT_CHUNK_TOKENS="32",
        PAPERCHAT_CHUNK_OVERLAP="0",
    )
    path = _write(
        tmp_path / "p.jsonl",
        [{"id": str(n), "title": "", "abstract": _abstract(n, "only", 3)} for n in range(8)],
    )
    papers = [p for p in parse_file(path) if isinstance(p, Paper)]
    expected = sorted(c.chunk_id for p in papers for c in chunk_paper(p, 32, 0))
    assert len(expected) == 3 * len(papers)  # batch 1: papers 0-1, batch 2: papers 2-3, ...

    # Pass 1: batch 1's chunks 1-2; pass 2: its chunks 0; pass 3: batch 2's chunks 1-2.
    _run_cli(env, tmp_path, "ingest", str(path), kill_at="store-upsert:3")

    settings = isolated_settings(data)
    reader = ChromaStore.from_settings(settings, None, create=False)
    assert reader.count_chunks() == 3 * 2 + 2 * 2  # batch 1 whole, batch 2 without chunks 0
    assert reader.count_papers() == 2  # a paper shows only once it is whole
    reader.keyword_search(["only"], 5)  # a reader rebuilds the index: half papers included
    assert reader.sizes() == (2, 10)  # read from that index, counted as the store counts
    assert set(reader.get_papers([p.paper_id for p in papers])) == {p.paper_id for p in papers[:2]}

    rerun = json.loads(_run_cli(env, tmp_path, "ingest", str(path), "--json").stdout)
    assert (rerun["added"], rerun["updated"], rerun["unchanged"]) == (4, 2, 2)
    store = ChromaStore.from_settings(settings, None, create=False)
    assert sorted(r.chunk_id.split("@")[0] for r in store.all_chunks()) == expected


@pytest.mark.slow
@pytest.mark.parametrize(
    ("point", "live_after_kill"), [("before-swap", "old"), ("after-swap", "new")]
)
def test_kill_around_a_rebuilds_swap_leaves_the_old_or_the_new_store(
    tmp_path: Path, embedding_server: str, point: str, live_after_kill: str
) -> None:
    data = tmp_path / "data"
    env = cli_env(data, embedding_server)
    old = _write(
        tmp_path / "old.jsonl",
        [{"id": f"2401.0000{i}", "title": "Old", "abstract": f"Old {i}."} for i in range(5)],
    )
    new = _write(
        tmp_path / "new.jsonl",
        [{"id": f"2402.0000{i}", "title": "New", "abstract": f"New {i}."} for i in range(3)],
    )
    assert _run_cli(env, tmp_path, "ingest", str(old)).returncode == 0

    _run_cli(env, tmp_path, "ingest", "--rebuild", str(new), kill_at=point)

    settings = isolated_settings(data)
    reader = ChromaStore.from_settings(settings, None, create=False)
    titles = {r.meta.title for r in reader.all_chunks() if r.meta.chunk_index == 0}
    assert titles == {"Old" if live_after_kill == "old" else "New"}
    assert reader.count_papers() == (5 if live_after_kill == "old" else 3)

    after = json.loads(_run_cli(env, tmp_path, "ingest", str(new), "--json").stdout)
    assert after["papers"] == (8 if live_after_kill == "old" else 3)
    client = ChromaStore.from_settings(settings, None)._client
    assert len(client.list_collections()) == 2  # the live collection and its pointer


@pytest.mark.slow
@pytest.mark.parametrize(("point", "scheme_after_kill"), [("before-swap", 1), ("after-swap", 2)])
def test_kill_during_a_migration_leaves_the_old_or_the_new_store(
    tmp_path: Path, embedding_server: str, point: str, scheme_after_kill: int
) -> None:
    data = tmp_path / "data"
    settings = isolated_settings(data, embed="openai", embed_openai_model=SERVED_MODEL)
    source = _write(
        tmp_path / "legacy.jsonl",
        [
            {"id": "1", "title": "Row one", "abstract": "A row numbered one."},
            {"id": "2401.00001v1", "title": "V", "abstract": "Version one."},
            {"id": "2401.00001v2", "title": "V", "abstract": "Version two."},
            {"title": "Plain", "abstract": "No id at all."},
        ],
    )
    write_scheme_1_store(settings, source, SERVED_EMBEDDER_ID)
    env = cli_env(data, embedding_server)
    extra = _write(
        tmp_path / "extra.jsonl", [{"id": "2403.00001", "title": "X", "abstract": "Extra."}]
    )

    _run_cli(env, tmp_path, "ingest", str(extra), kill_at=point)

    reader = ChromaStore.from_settings(settings, None, create=False)
    assert reader.schema == scheme_after_kill
    assert reader.count_papers() == (4 if scheme_after_kill == 1 else 3)

    done = _run_cli(env, tmp_path, "ingest", str(extra), "--json")
    report = json.loads(done.stdout)
    assert (report["added"], report["papers"]) == (1, 4)
    assert (report["migration"] is None) == (scheme_after_kill == 2)
    store = ChromaStore.from_settings(settings, None, create=False)
    assert store.schema == 2 and len(store._client.list_collections()) == 2
