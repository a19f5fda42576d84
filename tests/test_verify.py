from __future__ import annotations

from paperchat.text import third_person
from rag.answering.draft import DraftSentence
from rag.answering.evidence import select_evidence
from rag.answering.render import Numbering, with_markers
from rag.answering.support import support
from rag.answering.verify import Verified, Verifier, VerifyPolicy
from tests.fixtures.answering import DEFT, SOUL


def _verifier(policy: VerifyPolicy | None = None) -> Verifier:
    evidence = select_evidence("What is SOUL? What is DEFT?", [SOUL, DEFT], 400)
    assert [e.hit.paper_id for e in evidence] == [SOUL.paper_id, DEFT.paper_id]
    return Verifier(evidence, policy or VerifyPolicy())


# -- support ---------------------------------------------------------------------------------


def test_a_paraphrase_of_the_abstract_is_supported():
    check = support(
        "SOUL unlearns with second-order optimization and outperforms first-order methods.",
        SOUL.abstract,
        SOUL.title,
    )
    assert check.passes(0.6, 0.0)
    assert not check.contradicted
    assert "second-order unlearning framework" in check.best_sentence


def test_a_name_the_abstract_lacks_fails_support_whatever_the_overlap():
    check = support(
        "SOUL is a second-order unlearning method used in the Milgram experiment.", SOUL.abstract
    )
    assert check.missing_names == ("milgram",)
    assert not check.passes(0.0, 0.0)


def test_a_number_the_abstract_lacks_fails_support():
    check = support("SOUL beats first-order methods by 12 points.", SOUL.abstract, SOUL.title)
    assert check.missing_numbers == ("12",)
    assert not check.passes(0.0, 0.0)


def test_an_added_negation_fails_support():
    check = support("SOUL does not outperform first-order methods.", SOUL.abstract, SOUL.title)
    assert check.negation_mismatch
    assert not check.passes(0.0, 0.0)


def test_first_person_is_reported_in_the_third():
    assert third_person("We propose a loss; our models help us.") == (
        "The authors propose a loss; their models help them."
    )
    assert third_person("Data from the US.") == "Data from the US."


# -- verification outcomes -------------------------------------------------------------------


def test_a_supported_sentence_is_kept_with_only_the_citations_that_support_it():
    outcome = _verifier().check(
        DraftSentence("SOUL uses second-order optimization for LLM unlearning.", (1, 2))
    )
    assert outcome.shown is not None
    assert outcome.shown.sources == (1,)
    assert outcome.edit is not None and outcome.edit.kind == "uncited_source"
    assert outcome.edit.cited == [SOUL.paper_id, DEFT.paper_id]
    assert outcome.edit.now_cited == [SOUL.paper_id]


def test_a_sentence_citing_the_wrong_source_is_recited_to_the_one_that_says_it():
    outcome = _verifier().check(
        DraftSentence("DEFT reduces the activation density of RoBERTa.", (1,))
    )
    assert outcome.shown is not None and outcome.shown.sources == (2,)
    assert outcome.edit is not None and outcome.edit.kind == "recited"


def test_an_uncited_sentence_one_source_says_is_attributed_to_it():
    outcome = _verifier().check(DraftSentence("DEFT reduces the activation density.", ()))
    assert outcome.shown is not None and outcome.shown.sources == (2,)
    assert outcome.edit is not None and outcome.edit.kind == "attributed"


def test_a_stretched_claim_is_replaced_by_the_sources_own_sentence_in_the_third_person():
    outcome = _verifier().check(
        DraftSentence("SOUL reaches 99% accuracy on second-order unlearning tasks.", (1,))
    )
    assert outcome.shown is not None
    assert outcome.shown.sources == (1,)
    assert "99%" not in outcome.shown.text
    assert outcome.shown.text in third_person(SOUL.abstract)
    assert outcome.edit is not None and outcome.edit.kind == "replaced"
    assert outcome.edit.original.startswith("SOUL reaches 99%")


def test_a_sentence_no_source_says_is_dropped_and_recorded():
    outcome = _verifier().check(
        DraftSentence("It is a common method used in the Milgram experiment.", (1,))
    )
    assert outcome.shown is None
    assert outcome.edit is not None
    assert outcome.edit.kind == "dropped"
    assert outcome.edit.original == "It is a common method used in the Milgram experiment."
    assert outcome.edit.cited == [SOUL.paper_id]


def test_markers_naming_no_source_are_counted_and_removed():
    outcome = _verifier().check(DraftSentence("SOUL is an unlearning framework.", (1, 9)))
    assert outcome.bad_markers == 1
    assert outcome.shown is not None and outcome.shown.sources == (1,)


def test_disabled_verification_passes_sentences_through_as_written():
    outcome = _verifier(VerifyPolicy(enabled=False)).check(
        DraftSentence("It is used in the Milgram experiment.", (2,))
    )
    assert outcome.shown == Verified("It is used in the Milgram experiment.", (2,), "")
    assert outcome.edit is None


# -- rendering -------------------------------------------------------------------------------


def test_markers_go_before_the_closing_punctuation():
    assert with_markers("SOUL works.", [1, 2]) == "SOUL works [1, 2]."
    assert with_markers("Open question …", [3]) == "Open question … [3]"


def test_sources_are_numbered_in_order_of_first_citation_and_only_cited_ones_listed():
    evidence = select_evidence("What is SOUL? What is DEFT?", [SOUL, DEFT], 400)
    numbering = Numbering(evidence)
    first = numbering.render(Verified("DEFT prunes.", (2,), "", ("DEFT sentence.",)), first=True)
    second = numbering.render(Verified("Both help.", (1, 2), " ", ("a", "b")), first=False)
    assert first + second == "DEFT prunes [1]. Both help [1, 2]."
    citations = numbering.citations()
    assert [(c.number, c.paper_id) for c in citations] == [(1, DEFT.paper_id), (2, SOUL.paper_id)]
    assert citations[0].supporting == ["DEFT sentence.", "b"]
