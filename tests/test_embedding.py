from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ingest.embedding import OpenAICompatibleEmbedding, build_embedder, embedder_id, window_tokens
from paperchat.errors import ConfigError
from paperchat.settings import Settings


class _EmbeddingsServer(BaseHTTPRequestHandler):
    """A tiny OpenAI-compatible `/v1/embeddings` endpoint: vector = [len(text), index, 1]."""

    requests: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        data = [
            {"object": "embedding", "index": i, "embedding": [float(len(text)), float(i), 1.0]}
            for i, text in enumerate(body["input"])
        ]
        reply = json.dumps(
            {
                "object": "list",
                "model": body["model"],
                "data": list(reversed(data)),
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def embeddings_server() -> Iterator[str]:
    _EmbeddingsServer.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmbeddingsServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_embedder_talks_to_an_openai_compatible_server(
    settings: Settings, embeddings_server: str
) -> None:
    openai_settings = settings.model_copy(
        update={
            "embed": "openai",
            "llm_base_url": embeddings_server,
            "embed_openai_model": "emb-test",
            "embed_batch_size": 2,
        }
    )
    embedder = build_embedder(openai_settings)
    assert isinstance(embedder, OpenAICompatibleEmbedding)
    vectors = embedder.get_text_embedding_batch(["a", "bb", "ccc"])
    assert vectors == [[1.0, 0.0, 1.0], [2.0, 1.0, 1.0], [3.0, 0.0, 1.0]]  # order by index
    assert embedder.get_query_embedding("four") == [4.0, 0.0, 1.0]
    sent = _EmbeddingsServer.requests
    assert [r["body"]["input"] for r in sent] == [["a", "bb"], ["ccc"], ["four"]]
    assert {r["path"] for r in sent} == {"/v1/embeddings"}
    assert {r["body"]["model"] for r in sent} == {"emb-test"}


def test_openai_embedder_sends_the_api_key(
    settings: Settings, embeddings_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    keyed = Settings(data_dir=settings.data_dir, embed="openai", llm_base_url=embeddings_server)
    build_embedder(keyed).get_query_embedding("x")
    assert _EmbeddingsServer.requests[0]["auth"] == "Bearer sk-test-123"


def test_openai_embedder_without_key_or_server_says_what_to_set(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        build_embedder(settings.model_copy(update={"embed": "openai"}))


def test_embedder_ids_name_backend_and_model(settings: Settings) -> None:
    assert embedder_id(settings) == "local:all-MiniLM-L6-v2"
    openai_settings = settings.model_copy(update={"embed": "openai"})
    assert embedder_id(openai_settings) == "openai:text-embedding-3-small"
    assert window_tokens(settings) == 200
    assert window_tokens(openai_settings) is None


@pytest.mark.slow
def test_local_embedder_is_minilm_loaded_once_per_process(settings: Settings) -> None:
    embedder = build_embedder(settings)
    assert build_embedder(settings) is embedder
    vectors = embedder.get_text_embedding_batch(
        [
            "Graph neural networks for molecules.",
            "Message passing networks predict molecular properties.",
            "A recipe for sourdough bread.",
        ]
    )
    assert [len(v) for v in vectors] == [384, 384, 384]
    assert math.isclose(math.fsum(x * x for x in vectors[0]), 1.0, abs_tol=1e-4)

    def cos(a: list[float], b: list[float]) -> float:
        return math.fsum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])
