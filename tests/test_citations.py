from __future__ import annotations

import pytest

from rag.citations import (
    MarkerRewriter,
    answer_sentences,
    attribute_uncited,
    build_citations,
    correct_miscitations,
    marker_numbers,
    rewrite_markers,
    trailing_markers,
    uncited_sentences,
)
from rag.evidence import select_evidence
from tests.answering_fakes import DEFT, SOUL


@pytest.mark.parametrize(
    ("marker", "numbers"),
    [
        ("[2]", [2]),
        ("[1, 3]", [1, 3]),
        ("[1,3]", [1, 3]),
        ("[1-3]", [1, 2, 3]),
        ("[1–2]", [1, 2]),
        ("[Source 2]", [2]),
        ("[2 and 4]", [2, 4]),
    ],
)
def test_marker_numbers_expand_lists_ranges_and_source_prefix(marker: str, numbers: list[int]):
    assert marker_numbers(marker) == numbers


def test_markers_are_renumbered_in_order_of_first_use():
    text, order, dropped = rewrite_markers("SOUL unlearns [3]. DEFT prunes [1]. Both [3][1].", 3)
    assert text == "SOUL unlearns [1]. DEFT prunes [2]. Both [1][2]."
    assert order == [3, 1]
    assert dropped == 0


def test_grouped_and_range_markers_are_renumbered_and_sorted():
    text, order, _ = rewrite_markers("A [2, 1]. B [1-3].", 3)
    assert text == "A [1, 2]. B [1, 2, 3]."
    assert order == [2, 1, 3]


def test_markers_pointing_to_no_source_are_removed_and_counted():
    text, order, dropped = rewrite_markers("Claim [7]. Other [0] claim [2].", 2)
    assert text == "Claim. Other claim [1]."
    assert order == [2]
    assert dropped == 2


def test_partly_valid_group_keeps_the_valid_numbers():
    text, order, dropped = rewrite_markers("Claim [1, 9].", 2)
    assert text == "Claim [1]."
    assert (order, dropped) == ([1], 1)


def test_brackets_that_are_not_markers_stay_as_written():
    text, order, dropped = rewrite_markers("An array a[i] and [sic] and [x", 2)
    assert text == "An array a[i] and [sic] and [x"
    assert (order, dropped) == ([], 0)


def test_streamed_deltas_split_inside_markers_give_the_same_text_as_one_shot():
    deltas = ["SOUL [", "2", ", 1", "] wins", " [5", "]. Done [1", "]."]
    rewriter = MarkerRewriter(2)
    streamed = "".join(rewriter.feed(d) for d in deltas) + rewriter.finish()
    assert streamed == rewrite_markers("".join(deltas), 2)[0]
    assert streamed == "SOUL [1, 2] wins. Done [2]."
    assert rewriter.dropped == 1


def test_rewriter_holds_back_an_unfinished_marker_until_it_closes():
    rewriter = MarkerRewriter(3)
    assert rewriter.feed("Fact [") == "Fact"
    assert rewriter.feed("3") == ""
    assert rewriter.feed("]") == " [1]"


def test_markers_after_a_full_stop_belong_to_the_sentence_before():
    assert answer_sentences("SOUL unlearns data. [1] It is fast [2].") == [
        "SOUL unlearns data. [1]",
        "It is fast [2].",
    ]


def test_sentences_without_any_marker_are_listed_as_uncited():
    text = "SOUL unlearns data [1]. It is the best method ever. DEFT prunes, e.g. MLPs [2]."
    assert uncited_sentences(text) == ["It is the best method ever."]


def test_build_citations_numbers_by_first_use_and_carries_the_shown_evidence():
    evidence = select_evidence("What is SOUL and DEFT?", [SOUL, DEFT], budget=400)
    citations = build_citations([2, 1], evidence)
    assert [c.number for c in citations] == [1, 2]
    assert [c.paper_id for c in citations] == [DEFT.paper_id, SOUL.paper_id]
    assert citations[0].snippet == evidence[1].text
    assert citations[1].title == SOUL.title
    assert citations[1].year == 2024
    assert citations[1].url == SOUL.url


def test_uncited_sentence_restating_one_source_gets_that_sources_marker():
    evidence = select_evidence("What is SOUL?", [DEFT, SOUL], budget=400)
    text = (
        "SOUL is a second-order unlearning framework built upon Sophia-based LLM training. "
        "It beats baselines [1]."
    )
    rewritten, order, count = attribute_uncited(text, [2], evidence)
    assert rewritten == (
        "SOUL is a second-order unlearning framework built upon Sophia-based LLM training [1]. "
        "It beats baselines [1]."
    )
    assert (order, count) == ([2], 1)


def test_attribution_appends_a_newly_cited_source_to_the_order():
    evidence = select_evidence("activation density DEFT", [SOUL, DEFT], budget=400)
    text = "DEFT reduces the activation density consistently."
    rewritten, order, count = attribute_uncited(text, [], evidence)
    assert rewritten == "DEFT reduces the activation density consistently [1]."
    assert (order, count) == ([2], 1)


def test_unsupported_or_short_uncited_sentences_stay_uncited():
    evidence = select_evidence("What is SOUL?", [SOUL], budget=400)
    text = "SOUL is great. Quantum gravity explains dark matter in galaxies."
    rewritten, order, count = attribute_uncited(text, [], evidence)
    assert rewritten == text
    assert (order, count) == ([], 0)
    assert uncited_sentences(rewritten) == [
        "SOUL is great.",
        "Quantum gravity explains dark matter in galaxies.",
    ]


def test_markers_opening_a_list_line_belong_to_that_line():
    text = "[1] Trans-LoRA uses LoRA.\n[2] Chain of LoRA uses LoRA."
    assert answer_sentences(text) == ["[1] Trans-LoRA uses LoRA.", "[2] Chain of LoRA uses LoRA."]
    assert uncited_sentences(text) == []


def test_marker_pointing_at_an_unrelated_source_is_repointed_to_the_restated_one():
    evidence = select_evidence("SOUL second-order unlearning DEFT density", [DEFT, SOUL], 400)
    raw = "SOUL is a second-order unlearning framework built upon Sophia-based training [1]."
    corrected, count = correct_miscitations(raw, evidence)
    assert corrected == (
        "SOUL is a second-order unlearning framework built upon Sophia-based training [2]."
    )
    assert count == 1


def test_plausible_or_grouped_markers_are_left_as_the_model_wrote_them():
    evidence = select_evidence("SOUL second-order unlearning DEFT density", [DEFT, SOUL], 400)
    for raw in (
        "SOUL is a second-order unlearning framework built upon Sophia-based training [2].",
        "SOUL is a second-order unlearning framework built upon Sophia-based training [1][2].",
        "Both methods help [1].",
    ):
        assert correct_miscitations(raw, evidence) == (raw, 0)


def test_markers_written_before_their_sentences_are_moved_after_them() -> None:
    leading = (
        "[1] PLANSEARCH reaches 77.0% pass@200. [2] BiFormer uses routing [2]. "
        "[1][3] Both run fast."
    )

    assert trailing_markers(leading) == (
        "PLANSEARCH reaches 77.0% pass@200 [1]. BiFormer uses routing [2]. Both run fast [1][3]."
    )
    assert uncited_sentences(trailing_markers(leading)) == []


def test_trailing_style_answers_are_left_as_written() -> None:
    trailing = "SOUL unlearns data. [1] It is fast [2]."

    assert trailing_markers(trailing) == trailing
