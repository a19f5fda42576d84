from __future__ import annotations

from paperchat.text import MARKER
from rag.answering.draft import parse_reply
from rag.answering.evidence import select_evidence
from rag.answering.extractive import extractive_answer
from tests.fixtures.answering import DEFT, SOUL


def test_extractive_answer_quotes_the_relevant_sentence_with_its_source_number():
    evidence = select_evidence("What is SOUL?", [DEFT, SOUL], budget=400)
    text = extractive_answer(evidence)
    assert "termed SOUL" in text
    assert "[2]" in text  # SOUL is the second source
    assert "DEFT" not in text


def test_every_extractive_sentence_is_cited():
    evidence = select_evidence("SOUL unlearning and DEFT activation density", [SOUL, DEFT], 400)
    sentences = parse_reply(extractive_answer(evidence))
    assert sentences
    assert all(sentence.cited for sentence in sentences)


def test_extractive_answer_is_limited_in_length_and_spread_over_papers():
    evidence = select_evidence("SOUL unlearning and DEFT activation density", [SOUL, DEFT], 400)
    text = extractive_answer(evidence, max_sentences=3)
    assert len(MARKER.findall(text)) <= 3
    assert sorted({n for s in parse_reply(text) for n in s.cited}) == [1, 2]


def test_extractive_answer_is_empty_when_no_sentence_mentions_the_question():
    evidence = select_evidence("Who won the 2018 World Cup?", [SOUL, DEFT], budget=400)
    assert extractive_answer(evidence) == ""
