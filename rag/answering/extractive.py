"""The no-LLM answer: the most relevant evidence sentences, quoted and each cited.

Instant and always grounded: every sentence is copied from an abstract and carries the number of
the source it came from. It is also what the user is offered when the LLM is unreachable.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.answering.evidence import Evidence, Sentence

MAX_SENTENCES = 3
"""Sentences in an extractive answer."""

MAX_PER_PAPER = 2
"""At most this many of them from one paper, so that several papers get a say."""


def extractive_answer(evidence: Sequence[Evidence], max_sentences: int = MAX_SENTENCES) -> str:
    """Answer from the best-scoring evidence sentences that mention a question term.

    Sentences are chosen by score (ties: retrieval rank, then position), then written in
    retrieval order, each ending with `[n]` where n is the source's number in `evidence`
    (1-based). Returns "" when no sentence mentions any question term.
    """
    candidates: list[tuple[int, Sentence]] = [
        (number, sentence)
        for number, item in enumerate(evidence, start=1)
        for sentence in item.sentences
        if sentence.matched_terms > 0
    ]
    candidates.sort(key=lambda c: (-c[1].matched_terms, -c[1].score, c[0], c[1].position))
    picked: list[tuple[int, Sentence]] = []
    per_paper: dict[int, int] = {}
    for number, sentence in candidates:
        if len(picked) == max_sentences:
            break
        if per_paper.get(number, 0) < MAX_PER_PAPER:
            picked.append((number, sentence))
            per_paper[number] = per_paper.get(number, 0) + 1
    picked.sort(key=lambda c: (c[0], c[1].position))
    return " ".join(_cited(sentence.text, number) for number, sentence in picked)


def _cited(text: str, number: int) -> str:
    """`Foo bar.` -> `Foo bar [n].` (the marker goes before the closing punctuation)."""
    body = text.rstrip()
    end = ""
    if body and body[-1] in ".!?":
        body, end = body[:-1].rstrip(), body[-1]
    if body.endswith("…"):
        end = ""
    return f"{body} [{number}]{end or '.'}"
