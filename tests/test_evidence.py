from __future__ import annotations

from paperchat.text import clean_abstract, count_tokens, split_sentences
from rag.answering.evidence import header, select_evidence
from tests.fixtures.answering import DEFT, SOUL, make_hit


def _prompt_tokens(evidence) -> int:
    return sum(
        count_tokens(header(n, e.hit)) + count_tokens(e.text) for n, e in enumerate(evidence, 1)
    )


def test_sentence_splitter_keeps_abbreviations_initials_and_decimals_inside_sentences():
    text = "We use LoRA, e.g. in Fig. 2 by A. Smith with 50.72% gains. It works! Does it? Yes."
    assert split_sentences(text) == [
        "We use LoRA, e.g. in Fig. 2 by A. Smith with 50.72% gains.",
        "It works!",
        "Does it?",
        "Yes.",
    ]


def test_clean_abstract_unwraps_latex_and_removes_inline_references_and_delimiters():
    raw = r"up to $\boldsymbol{50.72\%}$ with LoRA [23] or Adapter [22, 24]. </sources> \it{A}"
    assert clean_abstract(raw) == "up to 50.72% with LoRA or Adapter. A"


def test_the_sentence_naming_the_asked_method_is_selected():
    evidence = select_evidence("What is SOUL?", [SOUL], budget=60)
    assert len(evidence) == 1
    assert "termed SOUL" in evidence[0].text


def test_selection_stays_within_the_token_budget():
    hits = [SOUL, DEFT, make_hit("p:3", "Third", SOUL.abstract + " " + DEFT.abstract)]
    for budget in (60, 120, 250):
        evidence = select_evidence("SOUL unlearning DEFT activation density", hits, budget)
        assert evidence
        assert _prompt_tokens(evidence) <= budget


def test_larger_budget_shows_more_sentences():
    small = select_evidence("SOUL unlearning", [SOUL], budget=60)
    large = select_evidence("SOUL unlearning", [SOUL], budget=400)
    assert len(large[0].sentences) > len(small[0].sentences)


def test_every_selected_source_keeps_its_title_and_retrieval_order():
    evidence = select_evidence("SOUL and DEFT", [DEFT, SOUL], budget=300)
    assert [e.hit.paper_id for e in evidence] == [DEFT.paper_id, SOUL.paper_id]
    assert header(1, evidence[0].hit).startswith("[1] From PEFT to DEFT")
    assert header(2, evidence[1].hit).endswith("(2024)")


def test_sentences_are_shown_in_abstract_order_with_gaps_marked():
    # The question names the first and the third sentence; the second, between them, says
    # nothing of it, so the shown sentences skip it and the gap is marked.
    hit = make_hit(
        "p:gap",
        "Gaps",
        "Quantum annealing solves scheduling problems. "
        "The weather in the laboratory was mild that winter and nobody minded it. "
        "Quantum annealing beats simulated annealing on scheduling benchmarks.",
    )
    evidence = select_evidence("quantum annealing scheduling", [hit], budget=400)
    positions = [s.position for s in evidence[0].sentences]
    assert positions == [0, 2]
    assert evidence[0].text.index("Quantum annealing solves") < evidence[0].text.index("beats")
    assert "…" in evidence[0].text


def test_a_tiny_budget_still_gives_the_first_source_a_cut_sentence():
    long = make_hit("p:long", "T", " ".join(["word"] * 300) + ".")
    evidence = select_evidence("word", [long], budget=50)
    assert len(evidence) == 1
    assert _prompt_tokens(evidence) <= 50


def test_selection_is_deterministic():
    first = select_evidence("activation density LoRA", [SOUL, DEFT], budget=150)
    second = select_evidence("activation density LoRA", [SOUL, DEFT], budget=150)
    assert first == second


def test_no_hits_give_no_evidence():
    assert select_evidence("anything", [], budget=400) == []


def test_papers_that_neither_mention_the_question_nor_are_close_are_left_out():
    unrelated = make_hit("p:far", "Watering robots", "Robots water tomatoes.", similarity=0.1)
    close = make_hit("p:close", "Gardening", "Robots water tomatoes.", similarity=0.6)
    evidence = select_evidence("What is SOUL?", [unrelated, SOUL, close], 400, min_similarity=0.3)
    assert [e.hit.paper_id for e in evidence] == [SOUL.paper_id, "p:close"]


def test_a_paper_whose_title_names_the_question_term_is_kept():
    titled = make_hit("p:t", "SOUL revisited", "We revisit the method.", similarity=0.1)
    evidence = select_evidence("What is SOUL?", [titled], 400, min_similarity=0.3)
    assert [e.hit.paper_id for e in evidence] == ["p:t"]
