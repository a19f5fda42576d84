from __future__ import annotations

import pytest
from pydantic import SecretStr

from paperchat.errors import ConfigError, PaperchatError
from paperchat.settings import Settings
from rag.answering.backends import (
    BackendInfo,
    ExtractiveBackend,
    backend_info,
    backends,
    build_backend,
    register,
)
from rag.answering.response import AnswerStream
from rag.answering.turn import Turn
from rag.types import Answer


def test_the_registry_lists_the_four_built_in_backends_with_what_to_offer_on_failure():
    infos = {info.name: info for info in backends()}
    assert list(infos) == ["local", "extractive", "tiny", "openai"]
    assert infos["local"].fallback == "extractive"
    assert infos["extractive"].fallback is None
    assert not infos["extractive"].needs_model


def test_openai_is_offered_only_with_a_key_or_a_base_url(settings: Settings):
    assert "openai" not in [i.name for i in backends(settings)]
    keyed = settings.model_copy(update={"openai_api_key": SecretStr("sk-test")})
    assert "openai" in [i.name for i in backends(keyed)]
    served = settings.model_copy(update={"llm_base_url": "http://127.0.0.1:9/v1"})
    assert "openai" in [i.name for i in backends(served)]


def test_an_unknown_backend_name_says_which_ones_exist():
    with pytest.raises(ConfigError) as caught:
        backend_info("gpt-17")
    assert "local, extractive, tiny, openai" in str(caught.value)


def test_build_backend_builds_by_name_and_a_registered_backend_is_found(settings: Settings):
    assert isinstance(build_backend(settings, "extractive"), ExtractiveBackend)

    class Echo(ExtractiveBackend):
        name = "echo"

    register(BackendInfo("echo", "test only", needs_model=False, build=lambda s: Echo()))
    try:
        assert build_backend(settings, "echo").name == "echo"
    finally:
        from rag.answering import backends as module

        module._REGISTRY.pop("echo")


def test_extractive_backend_marks_its_first_token_and_writes_nothing_without_evidence():
    turn = Turn(question="q", standalone="q", backend="extractive")
    assert list(ExtractiveBackend().write("q", [], turn)) == []
    assert turn.first_token_s is not None


def _answer(text: str, abstained: bool = False) -> Answer:
    return Answer(question="q", standalone_question="q", text=text, abstained=abstained)


def test_answer_stream_yields_text_then_holds_the_answer_and_calls_back_once():
    seen: list[Answer] = []
    response = AnswerStream(iter(["A [1].", " B [1].", _answer("A [1]. B [1].")]))
    response.on_answer(seen.append)
    assert list(response) == ["A [1].", " B [1]."]
    assert response.answer.text == "A [1]. B [1]."
    assert response.replaced is False
    assert len(seen) == 1


def test_reading_the_answer_first_drains_the_stream():
    response = AnswerStream(iter(["A.", _answer("A.")]))
    assert response.answer.text == "A."
    assert response.streamed == "A."


def test_an_abstention_after_streamed_text_is_reported_as_replaced():
    response = AnswerStream(iter(["A [1].", _answer("The corpus does not say.", True)]))
    assert response.replaced is True


def test_a_stream_without_an_answer_is_an_error():
    with pytest.raises(PaperchatError):
        list(AnswerStream(iter(["A."])))
