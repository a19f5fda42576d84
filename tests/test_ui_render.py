"""HTML of answers and source cards (pure functions; no browser)."""

from __future__ import annotations

from rag.types import Answer, Edit, Hit
from tests.fixtures.ui import ANSWER_TEXT, HITS, citation_of, cited_answer
from ui.render import (
    answer_markdown,
    best_sentence,
    citation_card,
    highlight,
    link_markers,
    people,
    references_block,
    sources_panel,
    turn_sources,
)


def test_markers_with_a_citation_become_links_to_their_card_of_that_turn() -> None:
    citations = [citation_of(HITS[0], 1)]

    html = link_markers("Erased by fine-tuning [1]. Unknown [7].", citations, turn=3)

    assert '<a class="pc-cite" href="#src-3-1"' in html
    assert 'title="Erasing Concepts from Diffusion Models">[1]</a>' in html
    assert "Unknown [7]." in html  # no card to point at: left as text


def test_answer_text_is_escaped_before_markers_are_linked() -> None:
    html = link_markers("<script>x</script> [1]", [citation_of(HITS[0], 1)], turn=1)

    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_card_highlights_the_snippet_sentence_that_supports_the_citing_sentence() -> None:
    card = citation_card(citation_of(HITS[0], 1), 1, ANSWER_TEXT, "How are concepts erased?")

    assert 'id="src-1-1"' in card
    assert (
        "<mark>We fine-tune the cross-attention layers to erase a concept from the model "
        "weights.</mark>"
    ) in card
    assert 'href="https://arxiv.org/abs/2303.00001"' in card
    assert "2023 · Ada Lovelace, Alan Turing, Grace Hopper et al." in card


def test_card_without_authors_or_link_shows_author_count_and_plain_title() -> None:
    card = citation_card(citation_of(HITS[1], 2), 1, ANSWER_TEXT, "q")

    assert "5 authors" in card
    assert "<a " not in card.split('class="pc-card-title"')[1].split("</div>")[0]


def test_card_drops_links_that_are_not_http() -> None:
    hit = HITS[0].model_copy(update={"url": "javascript:alert(1)"})

    assert "javascript:" not in citation_card(citation_of(hit, 1), 1, ANSWER_TEXT, "q")


def test_best_sentence_is_none_when_no_words_are_shared() -> None:
    assert best_sentence("Cats purr. Dogs bark.", ["quantum chromodynamics"]) is None
    assert highlight("Cats & dogs.", None) == "Cats &amp; dogs."


def test_people_prefers_names_then_count() -> None:
    assert people(["A", "B"], 2) == "A, B"
    assert people([], 1) == "1 author"
    assert people([], None) is None


def test_abstention_says_why_and_lists_the_nearest_papers() -> None:
    answer = Answer(
        question="Who won the 1998 World Cup?",
        standalone_question="Who won the 1998 World Cup?",
        text="",
        abstained=True,
        abstain_reason="no paper is close to the question",
        nearest=[HITS[1]],
    )

    assert "no paper is close to the question" in answer_markdown(answer, 1)
    section = turn_sources(answer, 1)
    assert "nearest" in section
    assert "One-dimensional Adapter to Rule Them All" in section


def test_sources_panel_shows_newest_question_first() -> None:
    first = turn_sources(cited_answer("first question"), 1)
    second = turn_sources(cited_answer("second question"), 2)

    panel = sources_panel([first, second])

    assert panel.index("Q2: second question") < panel.index("Q1: first question")


def test_references_block_lists_numbered_titles_years_and_links() -> None:
    block = references_block(cited_answer("q").citations)

    assert block.splitlines() == [
        "References:",
        "[1] Erasing Concepts from Diffusion Models (2023). https://arxiv.org/abs/2303.00001 "
        "<arxiv:2303.00001>",
        "[2] One-dimensional Adapter to Rule Them All (2024). <p:00000000000000aa>",
    ]


def test_hit_without_year_says_year_unknown() -> None:
    hit = Hit(paper_id="p:1", title="T", score=1.0, snippet="S.")
    card = citation_card(citation_of(hit, 1), 1, "S [1].", "S")

    assert "year unknown" in card


def test_snippet_pieces_joined_by_an_ellipsis_are_separate_sentences() -> None:
    snippet = "Models are big. … Given that retraining is costly, we fine-tune. The end."

    sentence = best_sentence(snippet, ["retraining is costly so we fine-tune [1]."])

    assert sentence == "Given that retraining is costly, we fine-tune."
    assert highlight(snippet, sentence).count("<mark>") == 1


def test_card_highlights_the_sentence_verification_found_supporting_the_answer() -> None:
    supported = "The method keeps other concepts intact."
    citation = citation_of(HITS[0], 1).model_copy(update={"supporting": [supported]})

    card = citation_card(citation, 1, ANSWER_TEXT, "How are concepts erased?")

    assert f"<mark>{supported}</mark>" in card


def test_answer_lists_the_draft_sentences_verification_removed_as_inert_text() -> None:
    removed = Edit(
        kind="dropped",
        original="It is used in the ![Milgram](http://evil.example/x) experiment.",
        cited=[HITS[0].paper_id],
        reason="its cited abstract does not say it",
    )
    answer = cited_answer("How are concepts erased?").model_copy(update={"edits": [removed]})

    page = answer_markdown(answer, 1)

    assert "1 sentence of the model's draft was not shown" in page
    assert "<s>It is used in the &#33;&#91;Milgram&#93;&#40;http://evil.example/x&#41;" in page
    assert "](http" not in page


def test_answer_without_removals_has_no_verification_note() -> None:
    assert "Checked against the abstracts" not in answer_markdown(cited_answer("q"), 1)


def test_a_quoted_answer_says_the_papers_own_sentences_are_shown() -> None:
    dropped = Edit(
        kind="dropped", original="Yes it can.", reason="its cited abstract does not say it"
    )
    answer = cited_answer("q").model_copy(update={"edits": [dropped], "quoted": True})
    assert "Shown instead: the papers' own sentences." in answer_markdown(answer, 1)
