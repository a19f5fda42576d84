"""Evidence selection: the sentences of the retrieved abstracts that matter for the question.

On a 2-core CPU the default local model reads about 40 prompt tokens per second, so whole
abstracts are too slow to send. Each abstract is split into sentences, every sentence is scored
by the question terms it contains (weighted by how rare each term is among the candidate
sentences) plus a bonus when it lies in the chunk retrieval matched, and sentences are taken
best-first until `evidence_token_budget` tokens (tiktoken cl100k, source headers included) are
spent. Every source keeps its title and at least its best sentence. Deterministic: ties break
on retrieval rank, then position in the abstract.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from paperchat.text import (
    clean_abstract,
    content_terms,
    count_tokens,
    split_sentences,
    truncate_tokens,
)
from rag.types import Hit

MAX_SENTENCE_TOKENS = 90
"""Longer sentences (or abstracts without full stops) are cut to this many tokens."""

SNIPPET_BONUS = 0.5
"""Added to a sentence's score when it lies inside the chunk that retrieval matched."""

LEAD_BONUS = 0.1
"""Added to an abstract's first sentence, which usually says what the paper is about."""


@dataclass(frozen=True)
class Sentence:
    """One sentence of an abstract with its relevance score and position."""

    text: str
    score: float
    position: int
    matched_terms: int


@dataclass(frozen=True)
class Evidence:
    """What the model is shown from one retrieved paper: its title and chosen sentences."""

    hit: Hit
    rank: int
    sentences: tuple[Sentence, ...]

    @property
    def title(self) -> str:
        """The paper's display title."""
        return self.hit.title

    @property
    def text(self) -> str:
        """The chosen sentences in abstract order, `…` marking skipped text."""
        parts: list[str] = []
        previous = -1
        for sentence in self.sentences:
            if parts and sentence.position != previous + 1:
                parts.append("…")
            parts.append(sentence.text)
            previous = sentence.position
        return " ".join(parts)


def header(number: int, hit: Hit) -> str:
    """The line that introduces source `number` in the prompt: `[n] Title (year)`.

    The title is cleaned like an abstract (`clean_abstract`), so it cannot close the data block.
    """
    year = f" ({hit.year})" if hit.year else ""
    return f"[{number}] {clean_abstract(hit.title)}{year}"


def score_sentences(question: str, hits: Sequence[Hit]) -> list[list[Sentence]]:
    """Split each hit's abstract (or snippet) into scored sentences, one list per hit."""
    question_terms = set(content_terms(question))
    split = [_sentences_of(hit) for hit in hits]
    term_sets = [[set(content_terms(text)) for text in texts] for texts in split]
    document_frequency: Counter[str] = Counter()
    for sets in term_sets:
        for terms in sets:
            document_frequency.update(terms & question_terms)
    total = sum(len(sets) for sets in term_sets) or 1
    idf = {term: math.log(1 + total / count) for term, count in document_frequency.items()}

    scored: list[list[Sentence]] = []
    for hit, texts, sets in zip(hits, split, term_sets, strict=True):
        snippet = clean_abstract(hit.snippet)
        sentences = []
        for position, (text, terms) in enumerate(zip(texts, sets, strict=True)):
            matched = terms & question_terms
            score = sum(idf[term] for term in matched)
            if text[:60] in snippet:
                score += SNIPPET_BONUS
            if position == 0:
                score += LEAD_BONUS
            sentences.append(Sentence(text, round(score, 6), position, len(matched)))
        scored.append(sentences)
    return scored


def _sentences_of(hit: Hit) -> list[str]:
    text = clean_abstract(hit.abstract or hit.snippet)
    return [truncate_tokens(s, MAX_SENTENCE_TOKENS) for s in split_sentences(text)]


def select_evidence(
    question: str, hits: Sequence[Hit], budget: int, min_similarity: float | None = None
) -> list[Evidence]:
    """Choose, under `budget` prompt tokens, the sentences of `hits` that matter for `question`.

    Hits keep their retrieval order. A hit whose header and best sentence no longer fit is left
    out; if not even the first fits, its best sentence is cut to fit. With `min_similarity`, a
    hit none of whose sentences mentions a question term is left out unless its dense
    similarity reaches `min_similarity` (it would only cost prompt time and invite stray
    citations). The returned list's position + 1 is the source number the prompt uses.
    """
    if not hits:
        return []
    scored = score_sentences(question, hits)
    chosen: dict[int, list[Sentence]] = {}
    spent = 0
    for rank, sentences in enumerate(scored):
        if not sentences or _off_topic(hits[rank], sentences, question, min_similarity):
            continue
        best = min(sentences, key=lambda s: (-s.score, s.position))
        cost = count_tokens(header(len(chosen) + 1, hits[rank])) + count_tokens(best.text)
        if spent + cost <= budget:
            chosen[rank] = [best]
            spent += cost
    if not chosen:
        return [_squeezed(hits[0], scored[0], budget)] if scored[0] else []

    extras = _extras(scored, chosen)
    for rank, sentence in extras:
        cost = count_tokens(sentence.text) + 1
        if spent + cost <= budget:
            chosen[rank].append(sentence)
            spent += cost
    return [
        Evidence(hits[rank], rank, tuple(sorted(chosen[rank], key=lambda s: s.position)))
        for rank in sorted(chosen)
    ]


def _off_topic(
    hit: Hit, sentences: list[Sentence], question: str, min_similarity: float | None
) -> bool:
    if min_similarity is None or any(s.matched_terms for s in sentences):
        return False
    if set(content_terms(hit.title)) & set(content_terms(question)):
        return False
    return hit.dense_similarity is None or hit.dense_similarity < min_similarity


def _extras(
    scored: list[list[Sentence]], chosen: dict[int, list[Sentence]]
) -> list[tuple[int, Sentence]]:
    """Sentences that mention a question term and are not yet chosen, best first."""
    extras = [
        (rank, sentence)
        for rank, sentences in enumerate(scored)
        if rank in chosen
        for sentence in sentences
        if sentence.matched_terms > 0 and sentence not in chosen[rank]
    ]
    extras.sort(key=lambda item: (-item[1].score, item[0], item[1].position))
    return extras


def _squeezed(hit: Hit, sentences: list[Sentence], budget: int) -> Evidence:
    best = min(sentences, key=lambda s: (-s.score, s.position))
    room = max(budget - count_tokens(header(1, hit)), 8)
    cut = Sentence(truncate_tokens(best.text, room), best.score, best.position, best.matched_terms)
    return Evidence(hit, 0, (cut,))
