"""Verify each answer sentence against the abstracts it cites, after the model has written it.

After OpenScholar's post-hoc citation check and RARR's "revise what the evidence does not
back": every sentence of a draft is checked against the abstract of each source it cites
(`rag.answering.support`), and one of these happens, recorded as an `Edit` on the `Answer`:

1. **kept**: a cited source supports it. Cited sources that do not support it lose their
   marker (`uncited_source`), unless the sentence needs them together (`joint`).
2. **recited**: no cited source supports it but exactly one other source does: its marker
   replaces the model's (small models cite `[1]` for whatever they copy).
3. **attributed**: it cites nothing and exactly one source supports it.
4. **replaced**: one sentence of its cited source says much of the same (at least
   `partial_coverage` of its content words, and two or more of them) but the source does not
   support it (a wrong number, a flipped negation or direction, a claim stretched beyond the
   abstract): it is replaced by that source sentence, in the third person. A sentence naming
   something its source never mentions (an invented method, person or dataset) is about
   something else and is dropped instead.
5. **dropped**: nothing supports it. It never reaches the user; the `Edit` keeps its text.

Markers naming no source are dropped and counted. A sentence in which the model speaks about
the sources rather than the papers' content ("The sources do not mention X.") has no support
and is dropped like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from paperchat.text import third_person
from rag.answering.draft import DraftSentence
from rag.answering.evidence import Evidence
from rag.answering.support import Support, support, words
from rag.types import Edit

MIN_SHARED_TO_REPLACE = 2
"""A source sentence replaces a draft sentence only if they share at least this many stems."""


@dataclass(frozen=True)
class VerifyPolicy:
    """Thresholds of the verifier; the defaults are calibrated in docs/answering.md."""

    min_token_recall: float = 0.75
    """Share of a sentence's content words its source must hold to support it..."""
    min_bigram_recall: float = 0.15
    """...and share of its adjacent content-word pairs (numbers, names, negations and
    directions must agree whatever the thresholds; `rag.answering.support`)."""
    partial_coverage: float = 0.35
    """Share of a sentence's content stems one sentence of its cited source must hold for the
    source sentence to replace it (when the source does not support it)."""
    enabled: bool = True
    """False passes every sentence through with its markers (for before/after comparisons)."""


@dataclass(frozen=True)
class Verified:
    """A sentence that will be shown: its text and the source numbers (prompt order) it cites."""

    text: str
    sources: tuple[int, ...]
    lead: str
    supporting: tuple[str, ...] = ()
    """For each source in `sources`, the abstract sentence that best supports this one."""


@dataclass(frozen=True)
class Outcome:
    """What verification made of one draft sentence: the sentence to show (or None) and why."""

    shown: Verified | None
    edit: Edit | None
    bad_markers: int = 0
    invented: bool = False
    """Dropped, and it names a number or a name that no source it was checked against holds
    and the question does not hold either: the model brought in something of its own."""


class Verifier:
    """Checks draft sentences against the sources the model was shown.

    Args:
        sources: The evidence given to the model; source number n is `sources[n - 1]`.
        policy: Thresholds.
        question: The question answered: its own words are not the model's inventions.
    """

    def __init__(
        self, sources: Sequence[Evidence], policy: VerifyPolicy, question: str = ""
    ) -> None:
        self.evidence = list(sources)
        self.texts = [(e.hit.abstract or e.hit.snippet, e.hit.title) for e in sources]
        self.policy = policy
        self.question_words = {w.lower() for w in words(question)}

    def check(self, sentence: DraftSentence) -> Outcome:
        """Verify one sentence (see module doc)."""
        valid = tuple(n for n in sentence.cited if 1 <= n <= len(self.texts))
        bad = len(sentence.cited) - len(valid)
        if not self.policy.enabled:
            shown = (
                Verified(sentence.text, valid, sentence.lead) if valid or sentence.text else None
            )
            return Outcome(shown, None, bad)
        checks = {n: support(sentence.text, *self.texts[n - 1]) for n in valid}
        passing = tuple(n for n in valid if self._passes(checks[n]))
        if passing:
            return self._kept(sentence, valid, passing, checks, bad)
        if len(valid) > 1:
            joint = support(
                sentence.text,
                "\n".join(self.texts[n - 1][0] for n in valid),
                " / ".join(self.texts[n - 1][1] for n in valid),
            )
            if self._passes(joint) and self._each_contributes(checks):
                return self._kept(sentence, valid, valid, checks, bad)
        other = self._single_supporter(sentence.text, exclude=valid)
        if other is not None:
            number, found = other
            kind = "recited" if valid else "attributed"
            edit = self._edit(kind, sentence, valid, (number,), sentence.text)
            shown = Verified(sentence.text, (number,), sentence.lead, (found.best_sentence,))
            return Outcome(shown, edit, bad)
        replaced = self._replacement(sentence, valid, checks)
        if replaced is not None:
            return Outcome(replaced[0], replaced[1], bad)
        reason = (
            "its cited abstract does not say it"
            if valid
            else "it cites no source and no source says it"
        )
        against = list(checks.values()) or [support(sentence.text, *t) for t in self.texts]
        invented = bool(against) and all(self._invents(c) for c in against)
        edit = self._edit("dropped", sentence, valid, (), None, reason)
        return Outcome(None, edit, bad, invented=invented)

    # -- outcomes --------------------------------------------------------------------------

    def _kept(
        self,
        sentence: DraftSentence,
        valid: tuple[int, ...],
        keep: tuple[int, ...],
        checks: dict[int, Support],
        bad: int,
    ) -> Outcome:
        supporting = tuple(checks[n].best_sentence for n in keep)
        shown = Verified(third_person(sentence.text), keep, sentence.lead, supporting)
        edit = None
        if keep != valid:
            edit = self._edit("uncited_source", sentence, valid, keep, shown.text)
        return Outcome(shown, edit, bad)

    def _passes(self, found: Support) -> bool:
        return found.passes(self.policy.min_token_recall, self.policy.min_bigram_recall)

    def _each_contributes(self, checks: dict[int, Support]) -> bool:
        return all(c.token_recall >= self.policy.partial_coverage for c in checks.values())

    def _invents(self, found: Support) -> bool:
        own = set(found.missing_numbers) | set(found.missing_names)
        return bool(own - self.question_words)

    def _single_supporter(self, text: str, exclude: tuple[int, ...]) -> tuple[int, Support] | None:
        found = [
            (number, support(text, *source))
            for number, source in enumerate(self.texts, start=1)
            if number not in exclude
        ]
        passing = [(n, s) for n, s in found if self._passes(s)]
        if not passing:
            return None
        passing.sort(key=lambda item: -item[1].token_recall)
        if len(passing) > 1 and passing[1][1].token_recall == passing[0][1].token_recall:
            return None  # two sources fit equally well: do not guess
        return passing[0]

    def _replacement(
        self, sentence: DraftSentence, valid: tuple[int, ...], checks: dict[int, Support]
    ) -> tuple[Verified, Edit] | None:
        candidates = [
            (checks[n].best_coverage, n)
            for n in valid
            if checks[n].best_shared >= MIN_SHARED_TO_REPLACE
            and checks[n].best_coverage >= self.policy.partial_coverage
            and not checks[n].missing_names
        ]
        if not candidates:
            return None
        _, number = max(candidates)
        own = checks[number].best_sentence
        text = third_person(own)
        shown = Verified(text, (number,), sentence.lead, (own,))
        reason = "its cited abstract says something close, quoted instead"
        return shown, self._edit("replaced", sentence, valid, (number,), text, reason)

    def _edit(
        self,
        kind: str,
        sentence: DraftSentence,
        cited: tuple[int, ...],
        now: tuple[int, ...],
        result: str | None,
        reason: str = "",
    ) -> Edit:
        reasons = {
            "recited": "its cited abstract does not say it; another source does",
            "attributed": "it cited nothing; one source says it",
            "uncited_source": "a cited abstract does not say it; that citation was removed",
        }
        return Edit(
            kind=kind,
            original=sentence.text,
            result=result,
            cited=[self.evidence[n - 1].hit.paper_id for n in cited],
            now_cited=[self.evidence[n - 1].hit.paper_id for n in now],
            reason=reason or reasons.get(kind, kind),
        )
