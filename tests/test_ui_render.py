"""HTML of answers and source cards (pure functions; no browser)."""

from __future__ import annotations

import re
from html import unescape

import pytest

from rag.types import Answer, Edit, Hit
from tests.fixtures.ui import ANSWER_TEXT, HITS, citation_of, cited_answer
from ui.render import (
    answer_markdown,
    best_sentence,
    citation_card,
    highlight,
    inert,
    link_markers,
    people,
    references_block,
    safe_answer,
    safe_url,
    sources_panel,
    turn_sources,
)


def test_markers_with_a_citation_become_links_to_their_card_of_that_turn() -> None:
    citations = [citation_of(HITS[0], 1)]

    html = link_markers("Erased by fine-tuning [1]. Unknown [7].", citations, turn=3)

    assert '<a class="pc-cite" href="#src-3-1"' in html
    assert 'title="Erasing Concepts from Diffusion Models">[1]</a>' in html
    assert "Unknown [7]." in unescape(html)  # no card to point at: left as (inert) text
    assert "Unknown [7]" not in html  # ... whose brackets Markdown cannot read as a link


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
    assert "<s>It is used in the !&#91;Milgram&#93;(http&#58;//evil.example/x)" in page
    assert "](http" not in page


def test_answer_without_removals_has_no_verification_note() -> None:
    assert "Checked against the abstracts" not in answer_markdown(cited_answer("q"), 1)


def test_a_quoted_answer_says_the_papers_own_sentences_are_shown() -> None:
    dropped = Edit(
        kind="dropped", original="Yes it can.", reason="its cited abstract does not say it"
    )
    answer = cited_answer("q").model_copy(update={"edits": [dropped], "quoted": True})
    assert "Shown instead: the papers' own sentences." in answer_markdown(answer, 1)


# -- nothing from a paper or a model becomes live markup -----------------------------------------

PLANTED = (
    "Erasure ![x](http://evil.example/?q=1) works [1]. See [here](javascript:alert(1)), "
    "<img src=http://evil.example/i.png>, https://evil.example/a, www.evil.example, "
    "me@evil.example and $$\\href{javascript:x}{y}$$.\n\n[1]: http://evil.example/ref"
)


def test_planted_markdown_in_an_answer_renders_no_image_link_or_autolink() -> None:
    rendered = link_markers(PLANTED, [citation_of(HITS[0], 1)], turn=1)

    assert "![" not in rendered and "](" not in rendered and "<img" not in rendered
    assert "http://" not in rendered.replace('href="#src-1-1"', "")
    assert "https://" not in rendered and "www." not in rendered and "@" not in rendered
    assert "$$" not in rendered and "[1]:" not in rendered
    links = re.findall(r"<a [^>]*>\[1\]</a>", rendered)
    assert rendered.count("<a ") == len(links) == 2  # only the app's own [1] markers
    assert all(link.startswith('<a class="pc-cite" href="#src-1-1"') for link in links)
    plain = re.sub(r"<a [^>]*>(\[1\])</a>", r"\1", rendered)
    assert unescape(plain) == PLANTED  # the reader sees the same text


def test_inert_text_reads_the_same_once_the_browser_decodes_it() -> None:
    text = "a [b](c:d) @e $f$ \\g www.h <i>"

    assert unescape(inert(text)) == text


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:x",
        "http://",
        "https://exa mple.org/",
        "//evil.example/x",
        "",
        None,
    ],
)
def test_only_http_urls_with_a_host_are_safe(url: str | None) -> None:
    assert safe_url(url) is None


def test_http_urls_are_safe() -> None:
    assert safe_url("https://arxiv.org/abs/2303.00001") == "https://arxiv.org/abs/2303.00001"
    assert safe_url("HTTP://example.org/x") == "HTTP://example.org/x"


def test_safe_answer_drops_script_urls_from_citations_sources_and_nearest() -> None:
    bad = HITS[0].model_copy(update={"url": "javascript:alert(1)"})
    answer = cited_answer("q").model_copy(
        update={"citations": [citation_of(bad, 1)], "sources": [bad], "nearest": [bad]}
    )

    cleaned = safe_answer(answer)

    urls = [c.url for c in cleaned.citations] + [h.url for h in cleaned.sources + cleaned.nearest]
    assert urls == [None, None, None]
    assert answer.citations[0].url == "javascript:alert(1)"  # the input is not changed
    assert "javascript:" not in references_block(answer.citations)
