from __future__ import annotations

from rag.answering.selection import SelectionPolicy, candidates, select
from tests.fixtures.answering import DEFT, SOUL, make_hit

ERASE_A = make_hit(
    "p:erase-a",
    "Erasing Concepts from Diffusion Models",
    "We erase a concept from a text-to-image diffusion model by fine-tuning its weights.",
    similarity=0.70,
)
ERASE_B = make_hit(
    "p:erase-b",
    "Concept Erasure with Adapters",
    "A one-dimensional adapter erases concepts from diffusion models without retraining.",
    similarity=0.66,
)
STYLE = make_hit(
    "p:style",
    "Neural Style Transfer",
    "We render photographs in the style of famous paintings.",
    similarity=0.52,
)
QUESTION = "Which papers erase concepts from diffusion models?"


def test_candidates_describe_similarity_relative_to_the_best_and_question_coverage():
    described = candidates(QUESTION, [ERASE_A, ERASE_B, STYLE])
    assert [c.rank for c in described] == [0, 1, 2]
    assert described[0].relative_similarity == 1.0
    assert described[1].relative_similarity == round(0.66 / 0.70, 4)
    assert described[2].coverage < 0.2 < described[1].coverage


def test_papers_on_the_question_are_kept_and_a_merely_similar_one_is_not():
    chosen = select(QUESTION, [ERASE_A, STYLE, ERASE_B], SelectionPolicy())
    assert [h.paper_id for h in chosen] == ["p:erase-a", "p:erase-b"]


def test_the_best_ranked_paper_is_always_kept():
    chosen = select("What is SOUL?", [DEFT, SOUL], SelectionPolicy())
    assert chosen[0] is DEFT
    assert SOUL in chosen  # holds every question word


def test_similarity_alone_keeps_a_close_paper_only_if_it_covers_some_of_the_question():
    near = make_hit("p:near", "Unrelated title", "Nothing in common here at all.", 0.69)
    policy = SelectionPolicy(min_relative_similarity=0.9, min_coverage_with_similarity=0.3)
    assert [h.paper_id for h in select(QUESTION, [ERASE_A, near], policy)] == ["p:erase-a"]
    loose = SelectionPolicy(min_relative_similarity=0.9, min_coverage_with_similarity=0.0)
    assert len(select(QUESTION, [ERASE_A, near], loose)) == 2


def test_no_more_sources_than_the_policy_allows():
    more = [
        make_hit(f"p:{i}", "Erasing concepts", "Diffusion concepts erased.", 0.6) for i in range(5)
    ]
    many = [ERASE_A, ERASE_B, *more]
    assert len(select(QUESTION, many, SelectionPolicy(max_sources=3))) == 3
