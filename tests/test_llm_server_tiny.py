"""The real server path: xllamacpp serving SmolLM2-135M on 127.0.0.1, called by the real `openai`
client through `build_llm(...).llm`, then stopped.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from llama_index.core.llms import ChatMessage

from paperchat.errors import ContextOverflow, LLMUnavailable
from paperchat.settings import Settings
from rag.models.llm import LLMHandle, build_llm, usage_of
from rag.models.server import LocalLLMServer

pytestmark = pytest.mark.slow

QUESTION = [ChatMessage(role="user", content="Name one primary colour.")]


def _tiny_settings(root: Path) -> Settings:
    return Settings(
        _env_file=None,  # module-scoped: no `settings` fixture, so keep a stray .env out
        data_dir=root / "data",
        model_dir=root / "models",
        llm="tiny",
        llm_base_url=None,
        llm_context=512,  # small window: quick to allocate, and easy to overflow on purpose
        llm_max_tokens=16,
        llm_threads=0,
    )


def _port_refuses(base_url: str) -> bool:
    parsed = urlparse(base_url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMHandle]:
    handle = build_llm(_tiny_settings(tmp_path_factory.mktemp("tiny")))
    yield handle
    handle.close()


def test_tiny_server_answers_a_chat_through_the_openai_client(tiny: LLMHandle) -> None:
    assert tiny.llm is not None and tiny.base_url is not None
    assert tiny.base_url.startswith("http://127.0.0.1:")

    reply = tiny.llm.chat(QUESTION)

    assert (reply.message.content or "").strip()
    assert usage_of(QUESTION, reply.message.content or "", reply).completion_tokens > 0
    assert reply.additional_kwargs["prompt_tokens"] > 0  # counted by the server


def test_tiny_server_streams_deltas_that_add_up_to_the_reply(tiny: LLMHandle) -> None:
    assert tiny.llm is not None

    chunks = list(tiny.llm.stream_chat(QUESTION))

    deltas = [chunk.delta for chunk in chunks if chunk.delta]
    assert len(deltas) > 1
    assert "".join(deltas) == chunks[-1].message.content
    assert chunks[-1].additional_kwargs.get("completion_tokens", 0) > 0  # usage on streams too


def test_prompt_longer_than_the_context_window_is_a_context_overflow(tiny: LLMHandle) -> None:
    assert tiny.llm is not None
    too_long = [ChatMessage(role="user", content="abstract " * 2000)]

    with pytest.raises(ContextOverflow) as caught:
        tiny.llm.chat(too_long)

    assert caught.value.context_tokens == 512
    assert tiny.llm.chat(QUESTION).message.content  # the server is still usable afterwards


def test_close_stops_the_server_and_frees_its_port(tmp_path: Path) -> None:
    handle = build_llm(_tiny_settings(tmp_path))
    assert handle.server is not None and handle.base_url is not None
    server, base_url = handle.server, handle.base_url
    assert server.healthy()

    handle.close()
    handle.close()  # a second close is harmless

    assert not server.running
    assert _port_refuses(base_url)


def test_a_file_that_is_not_a_gguf_fails_with_the_server_log(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a model at all" * 100)
    server = LocalLLMServer(bogus, alias="bogus", threads=1, context=512)

    with pytest.raises(LLMUnavailable, match="exited while starting") as caught:
        server.start()

    assert str(server.log_path) in str(caught.value)
    assert not server.running


def test_a_server_not_ready_in_time_is_stopped_and_reported(tmp_path: Path) -> None:
    from rag.models.files import tiny_model_path

    server = LocalLLMServer(tiny_model_path(), alias="tiny", startup_timeout_s=0.01)

    with pytest.raises(LLMUnavailable, match=r"did not finish loading the model within 0.01s"):
        server.start()

    assert not server.running
