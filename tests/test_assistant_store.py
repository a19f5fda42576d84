"""The real Assistant over the real sample store (embedded by all-MiniLM-L6-v2), extractive."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paperchat.settings import Settings
from rag import Answer, Assistant, build_assistant

SOUL_ID = "p:d4ad722d7858ad37"


@pytest.fixture(scope="module")
def assistant(sample_store_settings: Settings) -> Iterator[Assistant]:
    with build_assistant(sample_store_settings) as built:
        yield built


def test_build_assistant_answers_what_is_soul_citing_the_soul_abstract(assistant: Assistant):
    answer = assistant.ask("What is SOUL?")
    assert answer.abstained is False
    assert answer.backend == "extractive"
    assert answer.citations[0].paper_id == SOUL_ID
    assert "SOUL" in answer.citations[0].snippet
    assert answer.uncited_sentences == []
    assert answer.timings.retrieve_s > 0
    assert SOUL_ID in [hit.paper_id for hit in answer.sources]


def test_out_of_corpus_question_abstains_with_nearest_papers(assistant: Assistant):
    answer = assistant.ask("Who won the 2018 World Cup?")
    assert answer.abstained is True
    assert answer.citations == []
    assert answer.nearest


def test_stream_over_the_real_store_is_the_final_answer_text(assistant: Assistant):
    response = assistant.stream("Which papers use LoRA for parameter-efficient fine-tuning?")
    streamed = "".join(response)
    final = response.answer
    assert isinstance(final, Answer)
    assert not final.abstained
    assert streamed == final.text


def test_chat_follow_up_retrieves_with_the_earlier_topic(assistant: Assistant):
    session = assistant.chat()
    session.ask("What is SOUL?")
    follow_up = session.ask("and how does it compare with first-order methods?")
    assert "SOUL" in follow_up.standalone_question
    assert any(c.paper_id == SOUL_ID for c in follow_up.citations)
