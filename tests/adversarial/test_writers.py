"""The real `paperchat ui` and the real CLI writing one data dir: nothing lost, nothing stale.

One server, behind a page password and an API token, serves a store that the CLI built; the
embeddings come from `FakeUpstream` (bag-of-words, no model). Cases: an upload that tries to
replace a stored arXiv paper; a CLI ingest while the page runs (the page and its API must
answer from the new papers without a restart); an upload while a CLI ingest holds the store
(the CLI's embedding request is held by `FakeUpstream` until the test lets it go).
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client

from tests.adversarial.conftest import (
    PAPERCHAT,
    PASSWORD,
    TOKEN,
    USER,
    RunningServer,
    open_signed_in,
    probe,
    run_cli,
    start_ui,
    store_env,
    write_jsonl,
)
from tests.adversarial.upstream import STALL, FakeUpstream

pytestmark = pytest.mark.browser

ORIGINAL = {
    "id": "2401.00001",
    "title": "Original sparse autoencoder study",
    "abstract": "Sparse autoencoders recover interpretable features from language models.",
}
OTHERS = [
    {
        "id": f"2401.0000{i}",
        "title": f"Background paper {i}",
        "abstract": f"Background paper {i} studies optimisation of neural networks.",
    }
    for i in range(2, 6)
]


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, embeddings: FakeUpstream
) -> Iterator[RunningServer]:
    """`paperchat ui` on a store of five papers (one of them arXiv 2401.00001)."""
    root = tmp_path_factory.mktemp("adv-writers")
    env = store_env(
        root / "data",
        embeddings,
        PAPERCHAT_API_TOKEN=TOKEN,
        PAPERCHAT_UI_AUTH=f"{USER}:{PASSWORD}",
    )
    corpus = write_jsonl(root / "corpus.jsonl", [ORIGINAL, *OTHERS])
    done = run_cli(["ingest", str(corpus)], env, root)
    assert done.returncode == 0, done.stderr
    server = start_ui(root, env)
    yield server
    server.stop()


def _upload(view: Any, path: Path) -> str:
    """Upload `path` on the Corpus tab; return the page's one-line outcome."""
    view.page.get_by_role("tab", name="Corpus").click()
    view.page.locator("#pc-upload input[type=file]").set_input_files(str(path))
    outcome = view.page.locator("#pc-ingest", has_text=re.compile("added|Refused|failed"))
    outcome.wait_for()
    return str(outcome.inner_text())


def _retrieve(server: RunningServer, question: str) -> list[str]:
    client = Client(server.url, auth=(USER, PASSWORD), verbose=False)
    hits = client.predict(question=question, k=3, api_name="/retrieve")
    return [str(h["title"]) for h in hits]


def test_an_upload_cannot_replace_a_stored_arxiv_paper(
    browser: Any, served: RunningServer, tmp_path: Path
) -> None:
    forged = write_jsonl(
        tmp_path / "forged.jsonl",
        [{"id": ORIGINAL["id"], "title": "Forged title", "abstract": "Forged abstract text."}],
    )
    view = open_signed_in(browser, served)
    try:
        outcome = _upload(view, forged)
        rejected = view.page.locator("#pc-rejected").inner_text()
    finally:
        view.close()

    stored = probe(served.env)["whole"].get("arxiv:2401.00001")
    assert stored == [[ORIGINAL["title"], ORIGINAL["abstract"]]]  # the original, whole, alone
    assert "0 added, 0 updated" in outcome and "1 rejected" in outcome
    assert "never replaces a stored paper" in rejected


def test_a_running_page_answers_from_papers_a_cli_ingest_added(
    browser: Any, served: RunningServer, tmp_path: Path
) -> None:
    question = "wombat burrow tunnels"
    assert not any("Wombat" in t for t in _retrieve(served, question))  # indexes warm
    papers_before = probe(served.env)["papers"]
    later = write_jsonl(
        tmp_path / "later.jsonl",
        [
            {"id": "2402.00001", "title": "Wombat burrows", "abstract": "Wombat burrow tunnels."},
            {"id": "2402.00002", "title": "Wombat diets", "abstract": "Wombat grass diets."},
        ],
    )

    done = run_cli(["ingest", str(later)], served.env, served.cwd)  # another process

    assert done.returncode == 0, done.stderr
    view = open_signed_in(browser, served)
    try:
        view.page.get_by_role("tab", name="Corpus").click()
        counted = view.page.locator("#pc-corpus", has_text=f"{papers_before + 2} papers")
        counted.wait_for(timeout=30_000)  # a page opened now counts them (before any question)
        view.page.get_by_role("tab", name="Chat").click()
        view.page.locator("#pc-question textarea").fill("How do wombats dig burrow tunnels?")
        view.page.locator("#pc-ask").click()
        view.page.locator("#pc-sources", has_text="Wombat burrows").wait_for(timeout=60_000)
    finally:
        view.close()
    assert _retrieve(served, question)[0] == "Wombat burrows"  # the page's API, no restart


def test_an_upload_while_a_cli_ingest_writes_is_refused_and_says_only_busy(
    browser: Any, served: RunningServer, embeddings: FakeUpstream, tmp_path: Path
) -> None:
    held = write_jsonl(
        tmp_path / "held.jsonl",
        [{"id": "2403.00001", "title": "Held paper", "abstract": f"Held {STALL} abstract."}],
    )
    upload = write_jsonl(
        tmp_path / "aardvark.jsonl",
        [{"id": "2403.00002", "title": "Aardvark digging", "abstract": "Aardvarks dig."}],
    )
    writer = subprocess.Popen(
        [str(PAPERCHAT), "ingest", str(held)],
        env=served.env,
        cwd=served.cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    view = open_signed_in(browser, served)
    try:
        assert embeddings.stalled.wait(120), "the CLI ingest never reached its embedding call"
        refused = _upload(view, upload)
        embeddings.release_stall()
        _, cli_err = writer.communicate(timeout=300)
        stored_after_refusal = probe(served.env)["whole"]
        view.page.reload()
        view.page.locator("#pc-question textarea").wait_for()
        retried = _upload(view, upload)
    finally:
        view.close()
        embeddings.release_stall()
        if writer.poll() is None:
            writer.kill()
            writer.communicate()

    assert writer.returncode == 0, cli_err
    assert "Refused" in refused and "busy" in refused
    host = socket.gethostname()
    for detail in (str(served.data_dir), f"on {host}", "pid ", "paperchat ingest", str(held)):
        assert detail not in refused, f"{detail!r} shown to the page: {refused}"
    assert "arxiv:2403.00002" not in stored_after_refusal  # nothing of the refused upload
    assert "arxiv:2403.00001" in stored_after_refusal  # the CLI's paper
    assert "1 added" in retried  # once the CLI is done, the same upload goes through
    logged = _log_line(served, "upload aardvark.jsonl refused")
    assert f"pid {writer.pid}" in logged  # the operator's log names the writer


def _log_line(server: RunningServer, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while text not in server.log_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    return next((line for line in server.log_text().splitlines() if text in line), "")
