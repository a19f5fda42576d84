"""Grounding metrics for one answer, and their aggregate over a run.

Pure functions of (answer, gold question, judge).

* Citation recall and precision follow ScholarQABench (Asai et al., 2024), which takes them
  from ALCE (Gao et al., 2023): a sentence is supported when its cited abstracts, taken
  together, support it; a citation is precise when the sentence is supported and the citation
  either supports it alone or is needed (without it the other citations no longer do).
* Faithfulness follows RAGChecker (Ru et al., 2024): the share of the answer's atomic claims
  that the retrieved context supports. Claims are clauses split deterministically (no model).
* Abstention and retrieval hit/recall are read off the `Answer` directly.
* Answer relevance needs no judge: the dataset labels every paper that answers a question
  (`relevant_ids`), so for each answer we count which cited papers are relevant
  (`citation_relevance`: of all papers cited, the share that answer the question) and whether
  it cites one at all (`answer_hit`: share of answerable questions whose answer cites a
  relevant paper; an abstention counts as a miss). `source_precision`/`source_recall` score
  the papers source selection passed to the model the same way, and `sentences_removed`
  counts what verification kept from the user.

docs/grounding.md gives the definitions with a worked example.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import BaseModel, Field

from eval.judges import Judge, strip_markers
from eval.questions import EvalQuestion
from paperchat.text import ANSWER_MIN_WORDS, CITATION_MARKER, split_answer_sentences, word_count
from rag.types import Answer

_CLAUSE = re.compile(
    r"\s*;\s*|,\s+(?:and|but|while|whereas|although|though|yet)\s+|\s+(?:whereas|while)\s+"
)


# -- splitting -------------------------------------------------------------------------------


def cited_numbers(sentence: str) -> list[int]:
    """The [n] numbers in a sentence, in order of first appearance, without repeats."""
    numbers: list[int] = []
    for marker in CITATION_MARKER.findall(sentence):
        for part in marker.strip("[]").split(","):
            number = int(part)
            if number not in numbers:
                numbers.append(number)
    return numbers


def split_claims(sentence: str, min_words: int = 3) -> list[str]:
    """Split a sentence into atomic claims: clauses cut at `;`, `, and`/`, but`/`, while`...

    Deterministic, no model. A piece shorter than `min_words` words is glued back onto its
    neighbour, so "X improves A, and B" stays whole when "B" alone says nothing.
    """
    parts = [p.strip(" ,.;") for p in _CLAUSE.split(strip_markers(sentence))]
    claims: list[str] = []
    for part in parts:
        if not part:
            continue
        if claims and word_count(part) < min_words:
            claims[-1] = f"{claims[-1]}, {part}"
        elif claims and word_count(claims[-1]) < min_words:
            claims[-1] = f"{claims[-1]}, {part}"
        else:
            claims.append(part)
    return claims


# -- verdicts --------------------------------------------------------------------------------


class CitationVerdict(BaseModel):
    """One [n] on one sentence."""

    number: int = Field(description="The marker number.")
    paper_id: str | None = Field(description="Cited paper; None when [n] matches no citation.")
    supports: bool = Field(description="The cited abstract alone supports the sentence.")
    precise: bool = Field(description="Counts towards citation precision (see module doc).")


class SentenceVerdict(BaseModel):
    """One answer sentence and what its citations do for it."""

    sentence: str
    citations: list[CitationVerdict] = Field(default_factory=list)
    supported: bool = Field(description="The cited abstracts together support the sentence.")


class ClaimVerdict(BaseModel):
    """One atomic claim and the retrieved abstract that supports it, if any."""

    claim: str
    supported: bool
    supported_by: str | None = Field(default=None, description="First supporting paper id.")


class QuestionScore(BaseModel):
    """Every metric of one answer, with the verdicts behind them. None: not applicable."""

    answerable: bool
    abstained: bool
    citation_recall: float | None = None
    citation_precision: float | None = None
    faithfulness: float | None = None
    retrieval_hit: bool | None = None
    retrieval_recall: float | None = None
    cited_ids: list[str] = Field(default_factory=list, description="Papers the answer cites.")
    cited_relevant: int = Field(default=0, description="How many of them are relevant.")
    answer_hit: bool | None = Field(
        default=None, description="Answerable: the answer cites a relevant paper (abstained: no)."
    )
    source_precision: float | None = None
    source_recall: float | None = None
    sentences_removed: int = Field(
        default=0, description="Draft sentences verification dropped or replaced."
    )
    sentences: list[SentenceVerdict] = Field(default_factory=list)
    claims: list[ClaimVerdict] = Field(default_factory=list)


class Metrics(BaseModel):
    """Aggregate of a run: macro averages over questions where each metric applies."""

    n_questions: int = 0
    n_answerable: int = 0
    n_unanswerable: int = 0
    n_answered: int = Field(default=0, description="Questions not abstained on.")
    citation_recall: float | None = None
    citation_precision: float | None = None
    faithfulness: float | None = None
    abstention_accuracy: float | None = Field(
        default=None, description="Unanswerable questions: share correctly refused."
    )
    false_abstention: float | None = Field(
        default=None, description="Answerable questions: share wrongly refused (lower is better)."
    )
    retrieval_hit: float | None = None
    retrieval_recall: float | None = None
    answer_hit: float | None = Field(
        default=None,
        description="Answerable questions: share whose answer cites a relevant paper.",
    )
    citation_relevance: float | None = Field(
        default=None,
        description="Of every paper cited (pooled over answers), the share that is relevant.",
    )
    source_precision: float | None = Field(
        default=None, description="Answered questions: share of sources shown that are relevant."
    )
    source_recall: float | None = Field(
        default=None, description="Answered questions: share of relevant papers shown as sources."
    )
    citations_per_answer: float | None = Field(
        default=None, description="Papers cited per answered question."
    )
    sentences_removed: int = Field(
        default=0, description="Draft sentences verification dropped or replaced, all answers."
    )
    answers_with_removals: int = Field(
        default=0, description="Answers from which verification removed a sentence."
    )
    n_sentences: int = 0
    n_citations: int = 0
    n_claims: int = 0


# Which way is better, for comparisons and plots.
LOWER_IS_BETTER = frozenset({"false_abstention"})
RATE_METRICS = (
    "answer_hit",
    "citation_relevance",
    "source_precision",
    "source_recall",
    "citation_recall",
    "citation_precision",
    "faithfulness",
    "abstention_accuracy",
    "false_abstention",
    "retrieval_hit",
    "retrieval_recall",
)


# -- scoring ---------------------------------------------------------------------------------


def _evidence_by_paper(answer: Answer) -> dict[str, str]:
    """Abstract of every source (snippet when the abstract is missing)."""
    evidence = {hit.paper_id: hit.abstract or hit.snippet for hit in answer.sources}
    for citation in answer.citations:
        evidence.setdefault(citation.paper_id, citation.snippet)
    return evidence


def _score_sentence(
    sentence: str, answer: Answer, evidence: dict[str, str], judge: Judge
) -> SentenceVerdict:
    by_number = {c.number: c.paper_id for c in answer.citations}
    numbers = cited_numbers(sentence)
    claim = strip_markers(sentence)
    ids = [by_number.get(n) for n in numbers]
    texts = [evidence.get(pid, "") if pid else "" for pid in ids]
    asked = [i for i, t in enumerate(texts) if t]
    replies = judge.supports_many([(claim, texts[i]) for i in asked]) if asked else []
    alone = [False] * len(texts)
    for i, reply in zip(asked, replies, strict=True):
        alone[i] = reply
    if any(alone):
        joint = True
    elif len([t for t in texts if t]) > 1:
        joint = judge.supports(claim, "\n\n".join(t for t in texts if t))
    else:
        joint = False
    verdicts = []
    for i, (number, pid) in enumerate(zip(numbers, ids, strict=True)):
        precise = alone[i]
        if joint and not precise and pid is not None:
            rest = [t for j, t in enumerate(texts) if j != i and t]
            precise = not rest or not judge.supports(claim, "\n\n".join(rest))
        verdicts.append(
            CitationVerdict(number=number, paper_id=pid, supports=alone[i], precise=precise)
        )
    return SentenceVerdict(sentence=sentence, citations=verdicts, supported=joint)


def _score_claims(sentences: Iterable[str], answer: Answer, judge: Judge) -> list[ClaimVerdict]:
    sources = [(h.paper_id, h.abstract or h.snippet) for h in answer.sources]
    out = []
    for sentence in sentences:
        for claim in split_claims(sentence):
            supporter = next(
                (pid for pid, text in sources if text and judge.supports(claim, text)), None
            )
            out.append(
                ClaimVerdict(claim=claim, supported=supporter is not None, supported_by=supporter)
            )
    return out


def _retrieved_ids(answer: Answer) -> list[str]:
    hits = answer.retrieved or answer.sources or (answer.nearest if answer.abstained else [])
    return [h.paper_id for h in hits]


def score_answer(
    answer: Answer, question: EvalQuestion, judge: Judge, *, min_words: int = ANSWER_MIN_WORDS
) -> QuestionScore:
    """Score one answer against its gold question with `judge`.

    An abstention gets no grounding metrics (nothing was claimed). An answer with no sentence
    above `min_words` words gets none either. Retrieval is scored whenever `relevant_ids` is
    given, on the sources the model saw (on an abstention: the nearest papers it named).
    """
    score = QuestionScore(answerable=question.answerable, abstained=answer.abstained)
    score.sentences_removed = sum(e.kind in ("dropped", "replaced") for e in answer.edits)
    if question.relevant_ids:
        relevant = set(question.relevant_ids)
        found = set(_retrieved_ids(answer)) & relevant
        score.retrieval_hit = bool(found)
        score.retrieval_recall = len(found) / len(relevant)
        _score_relevance(score, answer, relevant)
    elif question.answerable is False and not answer.abstained:
        score.cited_ids = [c.paper_id for c in answer.citations]
    if answer.abstained:
        return score
    sentences = split_answer_sentences(answer.text, min_words)
    if not sentences:
        return score
    evidence = _evidence_by_paper(answer)
    score.sentences = [_score_sentence(s, answer, evidence, judge) for s in sentences]
    score.citation_recall = sum(v.supported for v in score.sentences) / len(score.sentences)
    cites = [c for v in score.sentences for c in v.citations]
    score.citation_precision = sum(c.precise for c in cites) / len(cites) if cites else None
    score.claims = _score_claims(sentences, answer, judge)
    if score.claims:
        score.faithfulness = sum(c.supported for c in score.claims) / len(score.claims)
    return score


def _score_relevance(score: QuestionScore, answer: Answer, relevant: set[str]) -> None:
    """Relevance of what the answer cites and of the sources it was written from."""
    score.answer_hit = False
    if answer.abstained:
        return
    score.cited_ids = [c.paper_id for c in answer.citations]
    score.cited_relevant = sum(pid in relevant for pid in score.cited_ids)
    score.answer_hit = score.cited_relevant > 0
    shown = {hit.paper_id for hit in answer.sources}
    if shown:
        score.source_precision = len(shown & relevant) / len(shown)
        score.source_recall = len(shown & relevant) / len(relevant)


def _mean(values: Iterable[float | bool | None]) -> float | None:
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def aggregate(scores: list[QuestionScore]) -> Metrics:
    """Macro averages: each question weighs the same.

    A metric skips questions it does not apply to (None), and is None itself when it applies
    to none.
    """
    answerable = [s for s in scores if s.answerable]
    unanswerable = [s for s in scores if not s.answerable]
    labelled = [s for s in answerable if s.answer_hit is not None and not s.abstained]
    cited = sum(len(s.cited_ids) for s in labelled)
    return Metrics(
        n_questions=len(scores),
        n_answerable=len(answerable),
        n_unanswerable=len(unanswerable),
        n_answered=sum(not s.abstained for s in scores),
        citation_recall=_mean(s.citation_recall for s in scores),
        citation_precision=_mean(s.citation_precision for s in scores),
        faithfulness=_mean(s.faithfulness for s in scores),
        abstention_accuracy=_mean(s.abstained for s in unanswerable),
        false_abstention=_mean(s.abstained for s in answerable),
        retrieval_hit=_mean(s.retrieval_hit for s in scores),
        retrieval_recall=_mean(s.retrieval_recall for s in scores),
        answer_hit=_mean(s.answer_hit for s in answerable),
        citation_relevance=sum(s.cited_relevant for s in labelled) / cited if cited else None,
        source_precision=_mean(s.source_precision for s in labelled),
        source_recall=_mean(s.source_recall for s in labelled),
        citations_per_answer=_mean(len(s.cited_ids) for s in scores if not s.abstained),
        sentences_removed=sum(s.sentences_removed for s in scores),
        answers_with_removals=sum(s.sentences_removed > 0 for s in scores),
        n_sentences=sum(len(s.sentences) for s in scores),
        n_citations=sum(len(v.citations) for s in scores for v in s.sentences),
        n_claims=sum(len(s.claims) for s in scores),
    )
