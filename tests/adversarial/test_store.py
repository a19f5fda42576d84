"""No command loses a paper: the real `paperchat` CLI against stores that hold papers.

Every case builds a store with the real CLI (embedding through `FakeUpstream`'s bag-of-words
`/v1/embeddings`, so no model is loaded), attacks it as a user might (a rebuild from an empty
or unreadable file, a rebuild with a bad key or an unreachable embedding server, on an
embedded store and on a `chroma run` server; a second writer while one writes; two files
numbering rows from 1; a SIGKILL inside an update or a batch), then counts what a fresh
reader finds (`store_probe.py`).
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.adversarial.conftest import (
    PAPERCHAT,
    free_port,
    probe,
    run_cli,
    store_env,
    write_jsonl,
)
from tests.adversarial.upstream import BAD_KEY, STALL, FakeUpstream

HERE = Path(__file__).resolve().parent
CHROMA = Path(sys.executable).parent / "chroma"
KILL_AT_ENV = "PAPERCHAT_TEST_KILL_AT"  # ingest.faults' hook (absent before issue 11)


def titles(found: dict[str, Any]) -> set[str]:
    """Titles of every whole paper version in a probe."""
    return {title for versions in found["whole"].values() for title, _ in versions}


def arxiv_rows(prefix: str, n: int, month: str = "2401") -> list[dict[str, Any]]:
    return [
        {
            "id": f"{month}.{i:05d}",
            "title": f"{prefix} paper {i}",
            "abstract": f"The {prefix.lower()} paper number {i} measures retention of papers.",
        }
        for i in range(n)
    ]


def ingest(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(["ingest", *args], env, cwd)


@pytest.fixture
def populated(tmp_path: Path, embeddings: FakeUpstream) -> tuple[dict[str, str], set[str]]:
    """A store of six papers written by the real CLI; returns its env and the titles."""
    env = store_env(tmp_path / "data", embeddings)
    corpus = write_jsonl(tmp_path / "corpus.jsonl", arxiv_rows("Stored", 6))
    done = ingest(env, tmp_path, str(corpus))
    assert done.returncode == 0, done.stderr
    stored = titles(probe(env))
    assert len(stored) == 6
    return env, stored


# -- rebuilds that would have emptied the store ------------------------------------------------


@pytest.mark.parametrize("bad_input", ["empty", "binary"])
def test_rebuild_from_an_empty_or_unreadable_file_keeps_every_paper(
    populated: tuple[dict[str, str], set[str]], tmp_path: Path, bad_input: str
) -> None:
    env, stored = populated
    if bad_input == "empty":
        path = tmp_path / "empty.txt"
        path.write_text("", encoding="utf-8")
    else:
        path = tmp_path / "export.jsonl"
        path.write_bytes(bytes(range(256)) * 64)  # not text at all

    result = ingest(env, tmp_path, "--rebuild", str(path))

    found = probe(env)
    assert (found["papers"], titles(found)) == (6, stored)  # nothing lost
    assert result.returncode == 1
    assert "stored no paper" in result.stderr and "6 papers" in result.stderr  # says why
    assert str(path) in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("failure", ["bad-key-after-model-hint", "unreachable-server"])
def test_rebuild_whose_embedding_fails_keeps_every_paper(
    populated: tuple[dict[str, str], set[str]], tmp_path: Path, failure: str
) -> None:
    env, stored = populated
    corpus = tmp_path / "corpus.jsonl"
    if failure == "bad-key-after-model-hint":
        # Another embedding model is configured: ingest refuses and suggests --rebuild; the
        # user follows the hint with a wrong key.
        other = {**env, "PAPERCHAT_EMBED_OPENAI_MODEL": "adv-bow-2", "OPENAI_API_KEY": BAD_KEY}
        hinted = ingest(other, tmp_path, str(corpus))
        assert hinted.returncode == 1 and "--rebuild" in hinted.stderr
        reason = "HTTP 401"
    else:
        other = {**env, "PAPERCHAT_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"}
        reason = "could not be reached"

    result = ingest(other, tmp_path, "--rebuild", str(corpus))

    found = probe(env)
    assert (found["papers"], titles(found)) == (6, stored)
    assert result.returncode == 1
    assert reason in result.stderr and "Traceback" not in result.stderr


def _heartbeat(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v2/heartbeat", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `chroma run` on a free 127.0.0.1 port (a store shared by several users)."""
    root = tmp_path_factory.mktemp("adv-chroma")
    url = f"http://127.0.0.1:{free_port()}"
    port = url.rsplit(":", 1)[1]
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    with (root / "chroma.log").open("wb") as log:
        server = subprocess.Popen(
            [str(CHROMA), "run", "--host", "127.0.0.1", "--port", port, "--path", str(root / "db")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    try:
        deadline = time.monotonic() + 90
        while not _heartbeat(url) and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _heartbeat(url), (root / "chroma.log").read_text()[-3000:]
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_rebuild_from_an_empty_file_keeps_a_shared_chroma_server_collection(
    chroma_server: str, embeddings: FakeUpstream, tmp_path: Path
) -> None:
    env = store_env(tmp_path / "data", embeddings, PAPERCHAT_CHROMA_URL=chroma_server)
    corpus = write_jsonl(tmp_path / "corpus.jsonl", arxiv_rows("Shared", 5))
    assert ingest(env, tmp_path, str(corpus)).returncode == 0
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")

    result = ingest(env, tmp_path, "--rebuild", str(empty))

    found = probe(env)
    assert found["papers"] == 5 and len(titles(found)) == 5
    assert result.returncode == 1 and "stored no paper" in result.stderr


# -- one writer at a time ---------------------------------------------------------------------


def test_a_second_cli_writer_is_refused_and_told_who_writes(
    tmp_path: Path, embeddings: FakeUpstream
) -> None:
    env = store_env(tmp_path / "data", embeddings)
    held = write_jsonl(
        tmp_path / "held.jsonl",
        [{"id": "2405.00001", "title": "Held paper", "abstract": f"Held {STALL} abstract."}],
    )
    other = write_jsonl(tmp_path / "other.jsonl", arxiv_rows("Other", 2, month="2406"))
    first = subprocess.Popen(
        [str(PAPERCHAT), "ingest", str(held)],
        env=env,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert embeddings.stalled.wait(120), "the first ingest never reached its embedding call"
        second = ingest(env, tmp_path, str(other))
        removing = run_cli(["remove", "arxiv:2405.00001"], env, tmp_path)
        embeddings.release_stall()
        _, first_err = first.communicate(timeout=300)
    finally:
        embeddings.release_stall()
        if first.poll() is None:
            first.kill()
            first.communicate()

    assert second.returncode == 1 and removing.returncode == 1
    for refused in (second.stderr, removing.stderr):
        assert f"pid {first.pid}" in refused and "--wait SECONDS" in refused
    assert first.returncode == 0, first_err
    assert titles(probe(env)) == {"Held paper"}  # the refused writers wrote nothing


# -- identity -----------------------------------------------------------------------------------


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "title", "abstract"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_two_files_numbering_rows_from_1_keep_both_sets_of_papers(
    tmp_path: Path, embeddings: FakeUpstream
) -> None:
    env = store_env(tmp_path / "data", embeddings)
    first = _csv(
        tmp_path / "export-2023.csv",
        [
            {"id": str(i), "title": f"Graph export {i}", "abstract": f"Graph networks row {i}."}
            for i in (1, 2, 3)
        ],
    )
    second = _csv(
        tmp_path / "export-2024.csv",
        [
            {"id": str(i), "title": f"Vision export {i}", "abstract": f"Vision models row {i}."}
            for i in (1, 2, 3)
        ],
    )
    assert ingest(env, tmp_path, str(first)).returncode == 0

    result = ingest(env, tmp_path, str(second))

    found = probe(env)
    expected = {f"{kind} export {i}" for kind in ("Graph", "Vision") for i in (1, 2, 3)}
    assert titles(found) == expected
    assert found["papers"] == 6
    assert result.returncode == 0 and "3 added, 0 updated" in result.stdout
    assert not any(pid.startswith("arxiv:") for pid in found["whole"])  # row numbers aren't arXiv


# -- kills inside a write -----------------------------------------------------------------------


def _abstract(i: int, edition: str) -> str:
    return " ".join(f"In the {edition} edition, paper {i} reports result {j}." for j in range(6))


def _edition(ids: list[str], edition: str) -> list[dict[str, Any]]:
    return [
        {"id": pid, "title": f"T{n}", "abstract": _abstract(n, edition)}
        for n, pid in enumerate(ids)
    ]


def _killed(env: dict[str, str], cwd: Path, kill: str, path: Path) -> subprocess.CompletedProcess:
    """Run `paperchat ingest PATH` and kill it at `kill`: `hook:<point>:<pass>` (paperchat's
    own crash point) or `chroma:<method>:<n>` (after chromadb's nth such call; kill_cli.py)."""
    kind, _, spec = kill.partition(":")
    if kind == "hook":
        args = [str(PAPERCHAT), "ingest", str(path)]
        env = {**env, KILL_AT_ENV: spec}
    else:
        args = [sys.executable, str(HERE / "kill_cli.py"), spec, "ingest", str(path)]
    return subprocess.run(
        args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


KILLS = [
    # (what is being written, where the kill falls)
    ("update", "chroma:delete:1"),  # right after the first delete of an update
    ("update", "hook:batch-written:2"),  # batch 2's new chunks written, its old ones not deleted
    ("add", "chroma:upsert:1"),  # right after the first Chroma write of new papers
    ("add", "hook:store-upsert:3"),  # inside batch 2: its chunks 1.. written, its chunks 0 not
]


@pytest.mark.parametrize(("writing", "kill"), KILLS)
def test_a_kill_inside_a_write_loses_no_paper_and_a_rerun_ends_whole(
    tmp_path: Path, embeddings: FakeUpstream, writing: str, kill: str
) -> None:
    env = store_env(
        tmp_path / "data",
        embeddings,
        PAPERCHAT_EMBED_BATCH_SIZE="6",  # several chunks per paper, several papers per batch
        PAPERCHAT_CHUNK_TOKENS="32",
        PAPERCHAT_CHUNK_OVERLAP="0",
    )
    ids = [f"2401.{i:05d}" for i in range(12)]
    path = tmp_path / "papers.jsonl"
    if writing == "update":
        write_jsonl(path, _edition(ids, "first"))
        assert ingest(env, tmp_path, str(path)).returncode == 0
        assert probe(env)["chunks"] > 2 * len(ids)
    write_jsonl(path, _edition(ids, "second"))

    killed = _killed(env, tmp_path, kill, path)

    assert killed.returncode == -signal.SIGKILL, f"not killed at {kill}: {killed.stderr[-1500:]}"
    after_kill = probe(env)
    assert set(after_kill["visible"]) <= set(after_kill["whole"])  # nothing shows half-written
    assert after_kill["papers"] == len(after_kill["whole"])
    if writing == "update":
        assert sorted(after_kill["whole"]) == [f"arxiv:{i}" for i in ids]  # no paper lost

    rerun = ingest(env, tmp_path, str(path), "--json")

    assert rerun.returncode == 0, rerun.stderr[-2000:]
    final = probe(env)
    assert sorted(final["whole"]) == [f"arxiv:{i}" for i in ids]
    assert all(len(v) == 1 and "second" in v[0][1] for v in final["whole"].values())
    assert set(final["versions"].values()) == {1}  # no stale or half version left behind
    assert final["papers"] == len(ids)
