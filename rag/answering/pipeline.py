"""The one answer pipeline: retrieved papers in, verified and cited `Answer` out.

Steps, each a function or small object of this package, for every backend alike:

1. **abstain early** (`abstain_reason`): nothing retrieved, or nothing close enough
   (docs/abstention.md);
2. **select sources** (`rag.answering.selection`): only the retrieved papers that bear on the
   question, then their best sentences under the token budget (`rag.answering.evidence`);
3. **write** (`Backend.write`): the model's (or the extractive) draft, streamed;
4. **parse** (`rag.answering.draft.ReplyParser`): the draft becomes sentences with the source
   numbers they cite, each as soon as it is complete;
5. **verify** (`rag.answering.verify.Verifier`): keep, re-cite, replace or drop each sentence;
6. **render** (`rag.answering.render.Numbering`): number the cited sources in order of first
   use and write the sentence; it streams to the user now, so what streamed is what the final
   `Answer.text` says (unless the reply turns into a refusal, which replaces it);
7. **finish**: the `Answer` with citations for exactly the sources shown sentences cite, the
   verifier's `edits`, usage and timings; or an abstention when no sentence survived.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from paperchat.settings import Settings
from paperchat.text import clean_abstract, content_terms
from rag.answering import prompts
from rag.answering.backends import Backend, ExtractiveBackend
from rag.answering.draft import DraftSentence, ReplyParser, parse_reply
from rag.answering.evidence import Evidence, select_evidence
from rag.answering.render import Numbering
from rag.answering.selection import SelectionPolicy, select
from rag.answering.turn import Turn
from rag.answering.verify import Verified, Verifier, VerifyPolicy
from rag.types import Answer, Edit, Hit


@dataclass(frozen=True)
class AnswerPolicy:
    """Every knob of the pipeline, read once from the settings."""

    abstain_threshold: float = 0.34
    evidence_token_budget: int = 250
    evidence_tokens_per_source: int = 100
    selection: SelectionPolicy = field(default_factory=SelectionPolicy)
    verify: VerifyPolicy = field(default_factory=VerifyPolicy)

    @classmethod
    def from_settings(cls, settings: Settings) -> AnswerPolicy:
        """The policy the settings describe."""
        return cls(
            abstain_threshold=settings.abstain_threshold,
            evidence_token_budget=settings.evidence_token_budget,
            evidence_tokens_per_source=settings.evidence_tokens_per_source,
            selection=SelectionPolicy(
                max_sources=settings.select_max_sources,
                min_relative_similarity=settings.select_min_relative_similarity,
                min_coverage=settings.select_min_coverage,
                min_coverage_with_similarity=settings.select_min_coverage_with_similarity,
            ),
            verify=VerifyPolicy(
                min_token_recall=settings.verify_min_token_recall,
                min_bigram_recall=settings.verify_min_bigram_recall,
                partial_coverage=settings.verify_partial_coverage,
                enabled=settings.verify,
            ),
        )


# -- abstention --------------------------------------------------------------------------------


def best_similarity(hits: Sequence[Hit]) -> float | None:
    """Best dense similarity among the hits; None when dense search saw none of them."""
    values = [hit.dense_similarity for hit in hits if hit.dense_similarity is not None]
    return max(values) if values else None


def lexical_coverage(question: str, hits: Sequence[Hit]) -> float:
    """Largest share of the question's content terms found in one hit's title and abstract.

    Rescues questions whose key word the embedder does not know ("What is SOUL?" has a dense
    similarity of 0.16 to the SOUL abstract, because all-MiniLM-L6-v2 reads "soul" as a word).
    """
    wanted = set(content_terms(question))
    if not wanted:
        return 0.0
    best = 0
    for hit in hits:
        have = set(content_terms(clean_abstract(f"{hit.title} {hit.abstract or hit.snippet}")))
        best = max(best, len(wanted & have))
    return best / len(wanted)


def abstain_reason(question: str, hits: Sequence[Hit], threshold: float) -> str | None:
    """The abstention message when retrieval found nothing relevant enough, else None.

    Relevant enough: the best dense similarity reaches `threshold`, or one retrieved paper
    contains every content term of the question (see `lexical_coverage`); docs/abstention.md
    has the calibration.
    """
    if not hits:
        return prompts.ABSTAIN_NO_HITS
    best = best_similarity(hits)
    if best is None or best >= threshold:
        return None
    if lexical_coverage(question, hits) >= 1.0:
        return None
    return prompts.ABSTAIN_LOW_SIMILARITY


def abstention(
    turn: Turn, reason: str, hits: Sequence[Hit], edits: Sequence[Edit] = (), draft: str = ""
) -> Answer:
    """An Answer that says the corpus does not answer and names the nearest papers."""
    return Answer(
        question=turn.question,
        standalone_question=turn.standalone,
        text=reason,
        abstained=True,
        abstain_reason=reason,
        nearest=list(hits),
        retrieved=list(hits),
        edits=list(edits),
        draft=draft,
        backend=turn.backend,
        usage=turn.usage(),
        timings=turn.timings(),
    )


_REFUSAL_PHRASE = re.compile(
    r"\b(do(es)? not|don't|doesn't|cannot|can't|no)\b[^.]{0,40}\b(answer|information|mention|"
    r"provide|contain|say|specif|address)",
    re.IGNORECASE,
)


def has_refusal_token(text: str) -> bool:
    """True when `text` holds the refusal token (spaces for underscores tolerated)."""
    return prompts.REFUSAL_TOKEN in text.upper().replace(" ", "_")


def _empty_reason(raw: str) -> str:
    if not raw.strip():
        return prompts.ABSTAIN_EMPTY_ANSWER
    if _REFUSAL_PHRASE.search(raw):
        return prompts.ABSTAIN_MODEL_REFUSED
    return prompts.ABSTAIN_UNSUPPORTED


# -- the pipeline ------------------------------------------------------------------------------


class _Composer:
    """Steps 4-6 for one reply: parse, verify and render sentences as they complete."""

    def __init__(self, evidence: Sequence[Evidence], policy: VerifyPolicy, turn: Turn) -> None:
        self.parser = ReplyParser()
        self.verifier = Verifier(evidence, policy, turn.standalone)
        self.numbering = Numbering(evidence)
        self.turn = turn
        self.shown: list[str] = []
        self.kept: list[Verified] = []
        self.edits: list[Edit] = []
        self.bad_markers = 0
        self.quoted = False
        """The model's sentences were all dropped; the sources' own sentences are shown."""
        self.invented = False
        """A dropped sentence named a number, name or negation no source has."""

    def take(self, sentences: list[DraftSentence]) -> str:
        """Verify and render `sentences`; return the text to show now."""
        out = []
        for sentence in sentences:
            if has_refusal_token(sentence.text):
                continue
            outcome = self.verifier.check(sentence)
            self.bad_markers += outcome.bad_markers
            self.invented = self.invented or outcome.invented
            if outcome.edit is not None:
                self.edits.append(outcome.edit)
            if outcome.shown is None:
                continue
            if any(k.text == outcome.shown.text for k in self.kept):
                self.edits.append(_repeat(sentence, outcome.shown))
                continue
            text = self.numbering.render(outcome.shown, first=not self.shown)
            self.kept.append(outcome.shown)
            self.shown.append(text)
            self.turn.mark_first_text()
            out.append(text)
        return "".join(out)


def _quote_instead(composer: _Composer, raw: str, policy: AnswerPolicy) -> bool:
    """Quote the sources when verification dropped every sentence of a real attempt.

    The model answered (no refusal) from sources selection judged relevant, but in words the
    lexical check cannot match (often restating the question: "Yes, a sound classifier can
    learn its own filters"). If none of its sentences brought in a number or name of its own
    (one that neither the sources nor the question hold), the sources' own best sentences are
    shown instead of an abstention. An invented detail means the sources do not hold the
    answer: then the answer abstains.
    """
    return (
        policy.verify.enabled
        and not composer.shown
        and not composer.invented
        and bool(raw.strip())
        and not has_refusal_token(raw)
        and not _REFUSAL_PHRASE.search(raw)
    )


def _repeat(sentence: DraftSentence, shown: Verified) -> Edit:
    return Edit(
        kind="dropped",
        original=sentence.text,
        result=None,
        reason=f"it repeats an earlier sentence of the answer ({shown.text})",
    )


def answer_events(
    backend: Backend, turn: Turn, hits: Sequence[Hit], policy: AnswerPolicy
) -> Iterator[str | Answer]:
    """Run the pipeline: yield the shown text as it is verified, then exactly one `Answer`."""
    reason = abstain_reason(turn.standalone, hits, policy.abstain_threshold)
    if reason:
        yield abstention(turn, reason, hits)
        return
    chosen = select(turn.standalone, hits, policy.selection)
    budget = min(policy.evidence_token_budget, policy.evidence_tokens_per_source * len(chosen))
    evidence = select_evidence(
        turn.standalone, chosen, budget, min_similarity=policy.abstain_threshold
    )
    if not evidence:
        yield abstention(turn, prompts.ABSTAIN_LOW_SIMILARITY, hits)
        return
    composer = _Composer(evidence, policy.verify, turn)
    for delta in backend.write(turn.standalone, evidence, turn):
        text = composer.take(composer.parser.feed(delta))
        if text:
            yield text
    text = composer.take(composer.parser.finish())
    if text:
        yield text
    raw = composer.parser.text
    if _quote_instead(composer, raw, policy):
        quoted = "".join(ExtractiveBackend().write(turn.standalone, evidence, turn))
        composer.quoted = True
        text = composer.take(parse_reply(quoted))
        if text:
            yield text
    if has_refusal_token(raw):
        yield abstention(turn, prompts.ABSTAIN_MODEL_REFUSED, hits, composer.edits, raw)
    elif not composer.shown:
        yield abstention(turn, _empty_reason(raw), hits, composer.edits, raw)
    else:
        yield Answer(
            question=turn.question,
            standalone_question=turn.standalone,
            text="".join(composer.shown).strip(),
            citations=composer.numbering.citations(),
            sources=[item.hit for item in evidence],
            retrieved=list(hits),
            uncited_sentences=[v.text for v in composer.kept if not v.sources],
            dropped_markers=composer.bad_markers,
            edits=composer.edits,
            quoted=composer.quoted,
            draft=raw,
            backend=turn.backend,
            usage=turn.usage(),
            timings=turn.timings(),
        )
