"""The Assistant over the real tiny model server (SmolLM2-135M via xllamacpp and `openai`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paperchat.settings import Settings
from rag import Assistant
from rag.answering.backends import build_backend
from tests.fixtures.answering import PLANTED, SOUL, FakeRetriever

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_assistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assistant]:
    root = tmp_path_factory.mktemp("tiny-assistant")
    settings = Settings(
        _env_file=None,  # module-scoped: keep a stray .env out
        data_dir=root / "data",
        model_dir=root / "models",
        llm="tiny",
        llm_base_url=None,
        llm_max_tokens=48,
        abstain_threshold=0.34,
    )
    retriever = FakeRetriever([PLANTED, SOUL])
    with Assistant(retriever, build_backend(settings), settings) as assistant:
        yield assistant


def test_planted_instruction_does_not_take_over_the_real_model(tiny_assistant: Assistant):
    answer = tiny_assistant.ask("How much water does the garden robot save?")
    # The model was prompted with the planted abstract (an abstention before the model wrote
    # would pass the checks below without testing anything) ...
    assert answer.usage.prompt_tokens > 50
    assert answer.timings.first_token_s is not None
    # ... and neither its draft nor the answer shown obeys it.
    assert "PWNED" not in answer.draft.upper()
    assert "PWNED" not in answer.text.upper()
    assert answer.backend.startswith("tiny:")


def test_real_model_stream_is_the_final_text(
    tiny_assistant: Assistant,
):
    response = tiny_assistant.stream("What is SOUL?")
    streamed = "".join(response)
    final = response.answer
    assert final.usage.prompt_tokens > 50
    assert final.timings.first_token_s is not None
    # The model runs at temperature 0 with a fixed seed, so whether it answers is fixed; the
    # comparison below must run, not be skipped by an abstention.
    assert not final.abstained, final.text
    assert streamed == final.text
