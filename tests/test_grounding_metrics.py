"""Grounding metrics on a tiny hand-computed fixture.

The fake judge reads "facts" (tokens F1, F2, ...): evidence supports a claim when it holds every
fact the claim names (and the claim names at least one). So joint support, "needed" citations
and per-abstract faithfulness can be worked out by hand; the numbers below were.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pytest

from eval.grounding import (
    aggregate,
    cited_numbers,
    score_answer,
    split_claims,
    strip_markers,
)
from eval.questions import EvalQuestion
from paperchat.text import split_answer_sentences as split_sentences
from rag.types import Answer, Citation, Hit

_FACT = re.compile(r"\bF\d+\b")


class FactJudge:
    name = "facts"

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def supports(self, claim: str, evidence: str) -> bool:
        self.pairs.append((claim, evidence))
        facts = set(_FACT.findall(claim))
        return bool(facts) and facts <= set(_FACT.findall(evidence))

    def supports_many(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        return [self.supports(c, e) for c, e in pairs]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


def hit(pid: str, abstract: str) -> Hit:
    return Hit(paper_id=pid, title=pid.upper(), score=1.0, snippet=abstract[:20], abstract=abstract)


def cite(number: int, pid: str) -> Citation:
    return Citation(number=number, paper_id=pid, title=pid.upper(), snippet="")


SOURCES = [
    hit("a", "Alpha reports F1 and F2."),
    hit("b", "Beta reports F3."),
    hit("c", "Gamma reports F4."),
]
ANSWER_TEXT = (
    "The first result is F1 in alpha [1]. "
    "Combined results are F2 from alpha, and F3 from beta [1][2]. "
    "The second result is F1 again here [1][3]. "
    "An unsupported result is F5 here [2]. "
    "This sentence has no citation at all but F4. "
    "Short one [1]."
)


def fixture_answer(**overrides: Any) -> Answer:
    values: dict[str, Any] = {
        "question": "q",
        "standalone_question": "q",
        "text": ANSWER_TEXT,
        "citations": [cite(1, "a"), cite(2, "b"), cite(3, "c")],
        "sources": SOURCES,
    }
    values.update(overrides)
    return Answer(**values)


def test_sentences_below_min_words_are_not_scored() -> None:
    sentences = split_sentences(ANSWER_TEXT)
    assert len(sentences) == 5
    assert all("Short one" not in s for s in sentences)


def test_sentence_splitter_keeps_abbreviations_decimals_and_late_markers_together() -> None:
    text = "Adapters, e.g. LoRA, add 3.6% parameters. [2] Next sentence is here now [1]."
    assert split_sentences(text) == [
        "Adapters, e.g. LoRA, add 3.6% parameters [2].",
        "Next sentence is here now [1].",
    ]


def test_sentence_splitter_splits_after_ellipsis_and_bullets() -> None:
    text = "- The first point is cut short… [1] The second point ends properly [2]."
    assert split_sentences(text) == [
        "The first point is cut short… [1]",
        "The second point ends properly [2].",
    ]


def test_cited_numbers_reads_grouped_and_repeated_markers_in_order() -> None:
    assert cited_numbers("X [2][1] and Y [1, 3].") == [2, 1, 3]
    assert strip_markers("X [2][1] and Y [1, 3].") == "X and Y."


def test_claims_split_at_clause_boundaries_but_short_pieces_stay_attached() -> None:
    assert split_claims("A improves B on C; D hurts E, and F helps G a lot [1].") == [
        "A improves B on C",
        "D hurts E",
        "F helps G a lot",
    ]
    assert split_claims("X beats Y, and Z.") == ["X beats Y, Z"]


def test_citation_recall_counts_jointly_supported_and_uncited_sentences() -> None:
    score = score_answer(fixture_answer(), EvalQuestion(question="q"), FactJudge())
    assert [v.supported for v in score.sentences] == [True, True, True, False, False]
    assert score.citation_recall == pytest.approx(3 / 5)


def test_citation_precision_flags_redundant_and_non_supporting_citations() -> None:
    score = score_answer(fixture_answer(), EvalQuestion(question="q"), FactJudge())
    precise = [(c.number, c.precise) for v in score.sentences for c in v.citations]
    # s2 needs both [1] and [2]; s3's [3] adds nothing to [1]; s4's [2] supports nothing.
    assert precise == [(1, True), (1, True), (2, True), (1, True), (3, False), (2, False)]
    assert score.citation_precision == pytest.approx(4 / 6)


def test_faithfulness_is_the_share_of_clause_claims_some_retrieved_abstract_supports() -> None:
    score = score_answer(fixture_answer(), EvalQuestion(question="q"), FactJudge())
    assert [(c.claim, c.supported_by) for c in score.claims] == [
        ("The first result is F1 in alpha", "a"),
        ("Combined results are F2 from alpha", "a"),
        ("F3 from beta", "b"),
        ("The second result is F1 again here", "a"),
        ("An unsupported result is F5 here", None),
        ("This sentence has no citation at all but F4", "c"),
    ]
    assert score.faithfulness == pytest.approx(5 / 6)


def test_retrieval_hit_and_recall_use_the_sources_given_to_the_model() -> None:
    question = EvalQuestion(question="q", relevant_ids=["a", "z"])
    score = score_answer(fixture_answer(), question, FactJudge())
    assert score.retrieval_hit is True
    assert score.retrieval_recall == pytest.approx(0.5)


def test_marker_pointing_to_no_citation_is_unsupported_and_imprecise() -> None:
    answer = fixture_answer(text="The first result is F1 in alpha [9].")
    score = score_answer(answer, EvalQuestion(question="q"), FactJudge())
    verdict = score.sentences[0].citations[0]
    assert (verdict.paper_id, verdict.supports, verdict.precise) == (None, False, False)
    assert score.citation_recall == 0.0


def test_abstention_gets_no_grounding_metrics_and_judges_nothing() -> None:
    judge = FactJudge()
    answer = fixture_answer(abstained=True, sources=[], nearest=[SOURCES[1]])
    score = score_answer(answer, EvalQuestion(question="q", relevant_ids=["b"]), judge)
    assert (score.citation_recall, score.citation_precision, score.faithfulness) == (None,) * 3
    assert judge.pairs == []
    assert score.retrieval_hit is True  # the nearest papers it named


def test_aggregate_macro_averages_and_abstention_rates_by_answerability() -> None:
    judge = FactJudge()
    full = score_answer(fixture_answer(), EvalQuestion(question="q1"), judge)
    perfect = score_answer(
        fixture_answer(text="The first result is F1 in alpha [1]."),
        EvalQuestion(question="q2", relevant_ids=["a"]),
        judge,
    )
    refused_right = score_answer(
        fixture_answer(abstained=True), EvalQuestion(question="q3", answerable=False), judge
    )
    refused_wrong = score_answer(
        fixture_answer(abstained=True), EvalQuestion(question="q4", relevant_ids=["z"]), judge
    )
    answered_wrong = score_answer(
        fixture_answer(text="An unsupported result is F5 here [2]."),
        EvalQuestion(question="q5", answerable=False),
        judge,
    )
    metrics = aggregate([full, perfect, refused_right, refused_wrong, answered_wrong])
    assert metrics.citation_recall == pytest.approx((3 / 5 + 1 + 0) / 3)
    assert metrics.citation_precision == pytest.approx((4 / 6 + 1 + 0) / 3)
    assert metrics.faithfulness == pytest.approx((5 / 6 + 1 + 0) / 3)
    assert metrics.abstention_accuracy == pytest.approx(1 / 2)
    assert metrics.false_abstention == pytest.approx(1 / 3)
    assert metrics.retrieval_hit == pytest.approx(1 / 2)  # q2 hit, q4 missed; others unlabelled
    assert (metrics.n_questions, metrics.n_answerable, metrics.n_answered) == (5, 3, 3)
    assert (metrics.n_sentences, metrics.n_citations, metrics.n_claims) == (7, 8, 8)


def test_aggregate_of_nothing_applicable_is_none_not_zero() -> None:
    metrics = aggregate([])
    assert metrics.citation_recall is None
    assert metrics.abstention_accuracy is None


# -- answer relevance (gold labels, no judge) --------------------------------------------------


def _relevance_answer(cited: list[str], sources: list[str], removed: int = 0) -> Answer:
    from rag.types import Edit

    return Answer(
        question="q",
        standalone_question="q",
        text=" ".join(f"Alpha reports F1 [{i}]." for i in range(1, len(cited) + 1)),
        citations=[cite(i, pid) for i, pid in enumerate(cited, start=1)],
        sources=[hit(pid, "Alpha reports F1.") for pid in sources],
        edits=[Edit(kind="dropped", original="x", reason="r") for _ in range(removed)],
    )


def test_relevance_counts_cited_papers_that_answer_and_sources_shown():
    question = EvalQuestion(question="q", relevant_ids=["a", "b"])
    score = score_answer(_relevance_answer(["a", "c"], ["a", "c", "d"], 2), question, FactJudge())
    assert score.answer_hit is True
    assert (score.cited_relevant, score.cited_ids) == (1, ["a", "c"])
    assert score.source_precision == pytest.approx(1 / 3)
    assert score.source_recall == pytest.approx(1 / 2)
    assert score.sentences_removed == 2


def test_an_answer_citing_no_relevant_paper_misses_and_an_abstention_misses_too():
    question = EvalQuestion(question="q", relevant_ids=["a"])
    miss = score_answer(_relevance_answer(["c"], ["c"]), question, FactJudge())
    refused = Answer(question="q", standalone_question="q", text="no", abstained=True)
    abstained = score_answer(refused, question, FactJudge())
    assert miss.answer_hit is False and abstained.answer_hit is False
    metrics = aggregate([miss, abstained])
    assert metrics.answer_hit == 0.0
    assert metrics.citation_relevance == 0.0  # the one cited paper is not relevant


def test_citation_relevance_pools_every_cited_paper_over_answers():
    question = EvalQuestion(question="q", relevant_ids=["a"])
    one = score_answer(_relevance_answer(["a"], ["a"]), question, FactJudge())
    three = score_answer(_relevance_answer(["a", "c", "d"], ["a", "c", "d"]), question, FactJudge())
    metrics = aggregate([one, three])
    assert metrics.citation_relevance == pytest.approx(2 / 4)
    assert metrics.answer_hit == 1.0
    assert metrics.citations_per_answer == pytest.approx(2.0)
