"""LLM fault handling against a real HTTP server on 127.0.0.1 that misbehaves on cue.

The server is the standard library's `http.server`; paperchat reaches it through `build_llm`
and the real `openai` client, exactly as it would reach a real OpenAI-compatible server.
Backoff waits go to a recorder instead of `time.sleep`, so the tests check the schedule
without waiting for it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from llama_index.core.llms import ChatMessage

from paperchat.errors import ContextOverflow, LLMUnavailable, PaperchatError
from paperchat.settings import Settings
from rag.models.faults import RetryPolicy
from rag.models.llm import GuardedOpenAILike, build_llm

MESSAGES = [ChatMessage(role="user", content="What is SOUL?")]


@dataclass
class Reply:
    """One scripted answer: a status with a JSON body, a completion, a stream, or a hang."""

    kind: str  # "status" | "ok" | "stream" | "broken_stream" | "hang"
    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""


class FakeOpenAI:
    """Answers POST /v1/chat/completions from a script, one Reply per request; records bodies."""

    def __init__(self) -> None:
        self.script: deque[Reply] = deque()
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                fake.requests.append(json.loads(self.rfile.read(length) or b"{}"))
                reply = fake.script.popleft() if fake.script else Reply("ok", text="default")
                getattr(self, f"_{reply.kind}")(reply)

            def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def _status(self, reply: Reply) -> None:
                self._send(reply.status, json.dumps(reply.body).encode(), reply.headers)

            def _ok(self, reply: Reply) -> None:
                self._send(200, json.dumps(_completion(reply.text)).encode(), {})

            def _stream(self, reply: Reply) -> None:
                payload = (
                    b"".join(_sse(chunk) for chunk in _chunks(reply.text)) + b"data: [DONE]\n\n"
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _broken_stream(self, reply: Reply) -> None:
                first = _sse(_chunks(reply.text)[0])
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(first) + 10_000))  # promises more
                self.end_headers()
                self.wfile.write(first)
                self.wfile.flush()
                self.close_connection = True  # ...and hangs up before sending it

            def _hang(self, reply: Reply) -> None:
                fake.release.wait(timeout=30)
                self.close_connection = True

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": "cmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13},
    }


def _chunks(text: str) -> list[dict[str, Any]]:
    return [
        {
            "id": "cmpl-1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "fake",
            "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
        }
        for word in text.split(" ")
    ]


def _sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _error(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, **extra}}


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.thread.start()
    yield fake
    fake.close()


@pytest.fixture
def delays() -> list[float]:
    return []


def _llm(
    settings: Settings, base_url: str, delays: list[float], retries: int = 2, timeout: float = 5.0
) -> GuardedOpenAILike:
    configured = settings.model_copy(
        update={"llm": "openai", "llm_base_url": base_url, "llm_timeout_s": timeout}
    )
    llm = build_llm(configured, retry=RetryPolicy(max_retries=retries, sleep=delays.append)).llm
    assert llm is not None
    return llm


def test_429_then_200_is_retried_after_the_wait_the_server_asked_for(
    settings: Settings, fake_server: FakeOpenAI, delays: list[float]
) -> None:
    fake_server.script.extend(
        [
            Reply("status", 429, _error("slow down"), {"retry-after-ms": "20"}),
            Reply("ok", text="SOUL is a benchmark."),
        ]
    )
    llm = _llm(settings, fake_server.base_url, delays)

    reply = llm.chat(MESSAGES)

    assert reply.message.content == "SOUL is a benchmark."
    assert len(fake_server.requests) == 2
    assert delays == [pytest.approx(0.02)]


def test_persistent_500_is_retried_with_exponential_backoff_then_reported(
    settings: Settings, fake_server: FakeOpenAI, delays: list[float]
) -> None:
    fake_server.script.extend([Reply("status", 500, _error("model crashed"))] * 5)
    llm = _llm(settings, fake_server.base_url, delays, retries=3)

    with pytest.raises(LLMUnavailable) as caught:
        llm.chat(MESSAGES)

    assert len(fake_server.requests) == 4
    assert delays == [0.5, 1.0, 2.0]
    message = str(caught.value)
    assert "HTTP 500" in message and "after 4 attempts" in message
    assert "model crashed" in message and "--llm extractive" in message


def test_rate_limit_that_persists_says_so_and_caps_a_long_retry_after(
    settings: Settings, fake_server: FakeOpenAI, delays: list[float]
) -> None:
    fake_server.script.extend([Reply("status", 429, _error("quota"), {"retry-after": "120"})] * 2)
    llm = _llm(settings, fake_server.base_url, delays, retries=1)

    with pytest.raises(LLMUnavailable, match="rate-limiting"):
        llm.chat(MESSAGES)

    assert len(fake_server.requests) == 2
    assert delays == [RetryPolicy().max_backoff_s]


def test_llama_cpp_context_overflow_is_not_retried_and_says_what_to_lower(
    settings: Settings, fake_server: FakeOpenAI, delays: list[float]
) -> None:
    body = _error(
        "request (3031 tokens) exceeds the available context size (2048 tokens), try increasing it",
        type="exceed_context_size_error",
        n_prompt_tokens=3031,
        n_ctx=2048,
    )
    fake_server.script.append(Reply("status", 400, body))
    llm = _llm(settings, fake_server.base_url, delays)

    with pytest.raises(ContextOverflow) as caught:
        llm.chat(MESSAGES)

    assert len(fake_server.requests) == 1
    assert delays == []
    assert (caught.value.prompt_tokens, caught.value.context_tokens) == (3031, 2048)
    assert "PAPERCHAT_EVIDENCE_TOKEN_BUDGET" in str(caught.value)


def test_openai_style_context_length_error_is_a_context_overflow(
    settings: Settings, fake_server: FakeOpenAI, delays: list[float]
) -> None:
    body = _error(
        "This model's maximum context length is 8192 tokens. However, your messages resulted "
        "in 9000 tokens.",
        type="invalid_request_error",
        code="context_length_exceeded",
    )
    fake_server.script.append(Reply("status", 400, body))
    llm = _llm(settings, fake_server.base_url, delays)

    with pytest.raises(ContextOverflow):
        llm.chat(MESSAGES)
    assert len(fake_server.requests) == 1


def test_other_400_is_reported_once_without_retry(
    settings: Settings, fake_server: FakeOpenAI, delays: list[float]
) -> None:
    fake_server.script.append(Reply("status", 400, _error("temperature must be <= 2")))
    llm = _llm(settings, fake_server.base_url, delays)

    with pytest.raises(LLMUnavailable) as caught:
        llm.chat(MESSAGES)

    assert not isinstance(caught.value, ContextOverflow)
    assert "HTTP 400" in str(caught.value) and "temperature must be <= 2" in str(caught.value)
    assert len(fake_server.requests) == 1


def test_hanging_server_times_out_is_retried_and_reported(
    settings: Settings, fake_server: FakeOpenAI, delays: list[float]
) -> None:
    fake_server.script.extend([Reply("hang"), Reply("hang")])
    llm = _llm(settings, fake_server.base_url, delays, retries=1, timeout=0.3)

    with pytest.raises(LLMUnavailable, match="did not answer in time \\(after 2 attempts\\)"):
        llm.chat(MESSAGES)

    assert len(fake_server.requests) == 2
    assert delays == [0.5]


def test_unreachable_port_fails_at_once_without_retries(
    settings: Settings, delays: list[float]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    llm = _llm(settings, f"http://127.0.0.1:{port}/v1", delays, retries=3)

    with pytest.raises(LLMUnavailable) as caught:
        llm.chat(MESSAGES)

    assert delays == []  # refused connections are not waited on
    assert "Could not reach" in str(caught.value) and str(port) in str(caught.value)


def test_stream_is_retried_when_it_fails_before_the_first_chunk(
    settings: Settings, fake_server: FakeOpenAI, delays: list[float]
) -> None:
    fake_server.script.extend(
        [Reply("status", 503, _error("loading")), Reply("stream", text="a b c")]
    )
    llm = _llm(settings, fake_server.base_url, delays)

    deltas = [chunk.delta for chunk in llm.stream_chat(MESSAGES)]

    assert "".join(d or "" for d in deltas) == "abc"
    assert len(fake_server.requests) == 2
    assert fake_server.requests[1]["stream_options"] == {"include_usage": True}


def test_stream_broken_after_the_first_chunk_is_reported_not_retried(
    settings: Settings, fake_server: FakeOpenAI, delays: list[float]
) -> None:
    fake_server.script.append(Reply("broken_stream", text="partial answer"))
    llm = _llm(settings, fake_server.base_url, delays)
    received: list[str] = []

    with pytest.raises(LLMUnavailable, match="broke while the answer was streaming"):
        for chunk in llm.stream_chat(MESSAGES):
            received.append(chunk.delta or "")

    assert received == ["partial"]
    assert len(fake_server.requests) == 1


def test_the_client_works_again_after_a_failure(
    settings: Settings, fake_server: FakeOpenAI, delays: list[float]
) -> None:
    fake_server.script.extend(
        [Reply("status", 500, _error("boom"))] * 2 + [Reply("ok", text="recovered")]
    )
    llm = _llm(settings, fake_server.base_url, delays, retries=1)

    with pytest.raises(PaperchatError):
        llm.complete("first")
    reply = llm.complete("second")

    assert reply.text == "recovered"
    assert len(fake_server.requests) == 3
