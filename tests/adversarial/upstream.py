"""A fake OpenAI-compatible server on 127.0.0.1: an LLM that records every prompt, and embeddings.

It answers `POST /v1/chat/completions` (plain or streamed) with a one-sentence cited answer,
unless the prompt contains `BOOM`: then it fails with HTTP 500 and an error body that must
never reach a web or API client verbatim. The model is not the point of the adversarial
suite; what reaches the model (the prompt) and what comes back from a failure are.

`POST /v1/embeddings` gives deterministic bag-of-words vectors (hashed words, normalised), so
the real CLI and the real server embed in milliseconds with `PAPERCHAT_EMBED=openai`; the key
`BAD_KEY` gets HTTP 401, as OpenAI answers a wrong key. A text holding `STALL` holds its
request until `release_stall()` (at most `STALL_MAX_S`): a CLI ingest of such a file keeps
the data dir's writer lock for as long as a test needs (`stalled` is set once it waits).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

UPSTREAM_LEAK = "UPSTREAM-BODY-LEAK stack trace at /srv/llm/secret_module.py line 42"
REPLY = "Sparse probing finds features inside transformer circuits [1]."
BAD_KEY = "sk-adversarial-wrong-key-000"
DIMENSIONS = 64
STALL = "STALL"
STALL_MAX_S = 240.0
_WORD = re.compile(r"[a-z0-9]+")


class FakeUpstream:
    """Serves on a free 127.0.0.1 port in a daemon thread; `prompts` holds every request."""

    def __init__(self) -> None:
        self.prompts: list[list[dict[str, Any]]] = []
        self.stalled = threading.Event()
        self._release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.endswith("/embeddings"):
                    self._embeddings(body)
                    return
                messages = body.get("messages", [])
                owner.prompts.append(messages)
                if "BOOM" in json.dumps(messages):
                    self._json(500, {"error": {"message": UPSTREAM_LEAK, "type": "server"}})
                elif body.get("stream"):
                    self._stream()
                else:
                    self._json(200, _completion(REPLY))

            def _embeddings(self, body: dict[str, Any]) -> None:
                if self.headers.get("Authorization") == f"Bearer {BAD_KEY}":
                    error = {"message": "Incorrect API key provided", "code": "invalid_api_key"}
                    self._json(401, {"error": error})
                    return
                texts = body.get("input", [])
                texts = [texts] if isinstance(texts, str) else texts
                if any(STALL in t for t in texts):
                    owner.stalled.set()
                    owner._release.wait(STALL_MAX_S)
                data = [
                    {"object": "embedding", "index": i, "embedding": embed(t)}
                    for i, t in enumerate(texts)
                ]
                self._json(200, {"object": "list", "model": body.get("model"), "data": data})

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for word in REPLY.split(" "):
                    chunk = _chunk({"content": word + " "})
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(f"data: {json.dumps(_chunk({}, 'stop'))}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> FakeUpstream:
        self._thread.start()
        return self

    def release_stall(self) -> None:
        """Let every held (and every later) `STALL` embedding request through."""
        self._release.set()

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


def embed(text: str) -> list[float]:
    """A unit vector of hashed word counts: texts sharing words are near."""
    vector = [0.0] * DIMENSIONS
    vector[0] = 0.01  # never the zero vector (its cosine distance is undefined)
    for word in _WORD.findall(text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % DIMENSIONS] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": "fake",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
