"""The split deployment on 127.0.0.1: a real `chroma run` server, a real OpenAI-compatible
embedding server (llama.cpp's, via xllamacpp) and an LLM server address that is never used for
embeddings. `paperchat ingest` runs through the CLI with only environment variables set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.chunking import chunk_paper
from ingest.embedding import build_embedder, embedder_id
from ingest.parsers import parse_file
from ingest.records import Paper
from ingest.store import ChromaStore
from paperchat.settings import Settings
from tests.fixtures.servers import free_port, run_json, stop
from tests.fixtures.store import SAMPLE_DIR

pytestmark = pytest.mark.slow

WORKER = Path(__file__).parent / "fixtures" / "xllamacpp_embeddings.py"
SERVER_KEY = "emb-key-42"


@pytest.fixture(scope="module")
def embedding_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from rag.models.files import tiny_model_path

    log = (tmp_path_factory.mktemp("emb") / "server.log").open("wb")
    env = {"PATH": os.environ.get("PATH", ""), "OMP_WAIT_POLICY": "PASSIVE"}
    server = subprocess.Popen(
        [sys.executable, str(WORKER), str(tiny_model_path()), SERVER_KEY],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            pytest.fail(f"the embedding server did not start; see {log.name}")
        yield json.loads(line)["address"] + "/v1"
    finally:
        if server.stdin is not None:
            server.stdin.close()
        stop(server)
        log.close()


def test_ingest_embeds_through_the_embedding_server_into_the_chroma_server(
    chroma_server: str,
    embedding_server: str,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    corpus = sorted(SAMPLE_DIR.glob("*.txt"))[0]  # six `Abstract:` lines: six papers
    papers = [r for r in parse_file(corpus) if isinstance(r, Paper)]
    for name, value in {
        "PAPERCHAT_DATA_DIR": str(settings.data_dir),
        "PAPERCHAT_CHROMA_URL": chroma_server,
        "PAPERCHAT_EMBED_BASE_URL": embedding_server,
        "PAPERCHAT_EMBED_API_KEY": SERVER_KEY,
        "PAPERCHAT_EMBED_OPENAI_MODEL": "smollm2-embed",
        # an LLM server that is not there and a key the embedding server refuses: neither is used
        "PAPERCHAT_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
        "OPENAI_API_KEY": "sk-for-the-llm-only",
    }.items():
        monkeypatch.setenv(name, value)

    report = run_json("ingest", str(corpus))

    assert (report["added"], report["papers"], report["store"]) == (6, 6, chroma_server)
    assert report["embedder"] == "openai:smollm2-embed"
    assert not settings.chroma_path.exists()  # nothing went to the embedded store
    # the vectors in Chroma are the server's: a chunk's own text finds that chunk, similarity 1
    configured = Settings()
    paper = papers[3]
    chunk = chunk_paper(paper, configured.chunk_tokens, configured.chunk_overlap)[0]
    vector = build_embedder(configured).get_query_embedding(chunk.embed_text)
    assert len(vector) == 576  # SmolLM2-135M's width, not MiniLM's 384
    store = ChromaStore.from_settings(configured, embedder_id(configured), create=False)
    best = store.query(vector, k=1)[0]
    assert best.meta.paper_id == paper.paper_id
    assert best.similarity > 0.9999


def test_the_llm_key_is_not_sent_to_a_separate_embedding_server(
    embedding_server: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paperchat.errors import EmbeddingUnavailable

    monkeypatch.setenv("OPENAI_API_KEY", SERVER_KEY)  # right key, wrong variable
    keyless = Settings(
        data_dir=settings.data_dir, embed_base_url=embedding_server, llm_max_retries=0
    )
    with pytest.raises(EmbeddingUnavailable, match="HTTP 401.*check PAPERCHAT_EMBED_API_KEY"):
        build_embedder(keyless).get_query_embedding("x")
