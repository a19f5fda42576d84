"""Does an abstract say what a sentence says? The one lexical support check of paperchat.

No NLI or cross-encoder model ships offline, so support is read off the words. `support`
measures, for a claim (an answer sentence) and evidence (an abstract with its title):

1. **numbers**: every number in the claim (`40%`, `16B`, `40x40`, "six") occurs in the evidence;
2. **names**: every name-like word (capitalised after the first word, or with inner capitals:
   `SOUL`, `LoRA`, `Milgram`) occurs in the evidence: a small model's invented detail is most
   often such a word;
3. **negation**: the claim adds no negation cue its best-matching evidence sentence lacks, and
   drops no "not" on a word that sentence negates;
4. **direction**: no direction word is flipped against that sentence ("fewer errors" where it
   says "more errors");
5. **token recall**: the share of the claim's distinct content words (stop words out, light
   stemming, so "unlearning" meets "unlearn") that occur in the evidence;
6. **bigram recall**: the share of its adjacent content-word pairs that occur as pairs there.

`Support.passes` applies thresholds to 5 and 6 after 1-4. Two callers: the answer verifier
(`rag.answering.verify`, thresholds calibrated on the tune split, docs/answering.md) and the
eval's lexical judge (`eval.judges.LexicalJudge`, its own thresholds, calibrated on
eval/datasets/judge_calibration.jsonl). Because they share this check, the lexical judge's
citation figures on verified answers are partly true by construction; reports say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from paperchat.text import CITATION_MARKER, SUPPORT_STOPWORDS, clean_abstract, split_sentences

_WORD = re.compile(r"[A-Za-z0-9]+(?:[.,]\d+)*")
_NUMBER_WORDS = frozenset(
    """zero two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty
    ninety hundred thousand million billion trillion twice triple""".split()
)
# Negation cues, by class: a claim may not add a cue of any class that its best-matching
# evidence sentence lacks, nor drop a "not" the sentence has ("without" may be dropped: "X runs
# in 3 s" is implied by "X runs in 3 s without retraining").
_NEGATION_CLASS = {
    **dict.fromkeys("not no never cannot nor neither none".split(), "not"),
    **dict.fromkeys("fail fails failed unable lack lacks".split(), "fail"),
    "without": "without",
}
_NEGATIONS = frozenset(_NEGATION_CLASS)
# Direction words (as stems) and their opposites: "fewer errors" where the evidence says "more".
_OPPOSITES = {
    "more": {"fewer", "less"},
    "fewer": {"more"},
    "less": {"more"},
    "higher": {"lower"},
    "lower": {"higher"},
    "larger": {"smaller"},
    "smaller": {"larger"},
    "increas": {"reduc", "decreas", "lower"},
    "reduc": {"increas", "rais"},
    "decreas": {"increas"},
    "improv": {"degrad", "hurt", "damag"},
    "degrad": {"improv"},
    "outperform": {"underperform"},
    "underperform": {"outperform"},
    "before": {"after"},
    "after": {"before"},
}
# LaTeX left in abstracts: `Evo\textbf{Lved}` reads as `EvoLved`, `$\boldsymbol{50.72\%}$` as 50.72.
_LATEX = re.compile(r"\\[A-Za-z]+\*?\{|[{}$]")


def stem(word: str) -> str:
    """Crude suffix stripping so "models"/"model" and "improves"/"improved" meet.

    Kept this plain on purpose: the lexical judge's calibration (docs/grounding.md) was
    measured with it; NLTK's Porter stemmer merged more words and let two more false claims
    through on the calibration set.
    """
    if any(ch.isdigit() for ch in word) or len(word) <= 3:
        return word
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: len(word) - len(suffix)] + repl
    if word.endswith("e") and len(word) > 4:
        return word[:-1]  # "erase" meets "erased" and "erasing"
    return word


def _normalise_number(token: str) -> str:
    return token.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+", token) else token


def words(text: str) -> list[str]:
    """The words and numbers of `text` as written ([n] markers and LaTeX braces removed)."""
    text = _LATEX.sub("", CITATION_MARKER.sub(" ", text))
    text = text.replace("n't", " not").replace("n’t", " not")
    return [_normalise_number(w) for w in _WORD.findall(text)]


def content_tokens(text: str) -> list[str]:
    """Lower-cased, stemmed content words of `text` in order (stop words and negations out)."""
    out = []
    for word in words(text):
        low = word.lower()
        if low not in SUPPORT_STOPWORDS and low not in _NEGATIONS:
            out.append(stem(low))
    return out


def terms(text: str) -> set[str]:
    """The distinct content tokens of `text`."""
    return set(content_tokens(text))


def _numbers(found: list[str]) -> set[str]:
    """Numbers in digits ("3.6", "16B", "40x40") and in words ("six", "twice")."""
    lowered = (w.lower() for w in found)
    return {w for w in lowered if any(ch.isdigit() for ch in w) or w in _NUMBER_WORDS}


def _names(found: list[str]) -> set[str]:
    """Words that look like names: capitalised after the first word, or with inner capitals."""
    names = set()
    for i, word in enumerate(found):
        inner_caps = any(ch.isupper() for ch in word[1:])
        if inner_caps or (i > 0 and word[:1].isupper()):
            names.add(word.lower())
    return names


def _negation_classes(found: list[str]) -> set[str]:
    return {_NEGATION_CLASS[w.lower()] for w in found if w.lower() in _NEGATION_CLASS}


def _negated_words(found: list[str]) -> set[str]:
    """Stemmed content words right after a "not"-class cue ("does not imply X" -> imply)."""
    negated = set()
    for i, word in enumerate(found):
        if _NEGATION_CLASS.get(word.lower()) == "not":
            following = content_tokens(" ".join(found[i + 1 : i + 4]))
            if following:
                negated.add(following[0])
    return negated


def _negation_mismatch(claim_words: list[str], sentence_words: list[str]) -> bool:
    """The claim adds a negation the sentence lacks, or drops a "not" on a word it repeats."""
    claim, sentence = _negation_classes(claim_words), _negation_classes(sentence_words)
    if claim - sentence:
        return True
    if "not" in claim:
        return False
    return bool(_negated_words(sentence_words) & set(content_tokens(" ".join(claim_words))))


def _flipped_direction(claim_tokens: list[str], ev_bigrams: set[tuple[str, str]]) -> bool:
    """A direction word + its object ("fewer error") absent, its opposite ("more error") there."""
    for word, following in zip(claim_tokens, claim_tokens[1:], strict=False):
        opposites = _OPPOSITES.get(word, set())
        if opposites and (word, following) not in ev_bigrams:
            if any((o, following) in ev_bigrams for o in opposites):
                return True
    return False


@dataclass(frozen=True)
class Support:
    """What `support` found for one (claim, evidence) pair; see the module doc."""

    token_recall: float
    bigram_recall: float
    n_tokens: int
    missing_numbers: tuple[str, ...]
    missing_names: tuple[str, ...]
    negation_mismatch: bool
    flipped_direction: bool
    best_sentence: str
    """The evidence sentence sharing the most content tokens with the claim ("" if none)."""
    best_shared: int
    """Distinct content tokens the claim shares with `best_sentence`."""

    @property
    def best_coverage(self) -> float:
        """`best_shared` as a share of the claim's distinct content tokens."""
        return self.best_shared / self.n_tokens if self.n_tokens else 0.0

    @property
    def contradicted(self) -> bool:
        """A number, a name, a negation or a direction disagrees with the evidence."""
        return bool(
            self.missing_numbers
            or self.missing_names
            or self.negation_mismatch
            or self.flipped_direction
        )

    def passes(self, min_token_recall: float, min_bigram_recall: float) -> bool:
        """Supported: nothing contradicted, and both recalls reach their thresholds."""
        return (
            self.n_tokens > 0
            and not self.contradicted
            and self.token_recall >= min_token_recall
            and self.bigram_recall >= min_bigram_recall
        )


def _bigrams(found: tuple[str, ...]) -> set[tuple[str, str]]:
    tokens = content_tokens(" ".join(found))
    return set(zip(tokens, tokens[1:], strict=False))


@lru_cache(maxsize=4096)
def _evidence_sentences(evidence: str) -> tuple[tuple[str, frozenset[str], tuple[str, ...]], ...]:
    """(sentence, its content tokens, its words) for each sentence of the evidence."""
    out = []
    for sentence in split_sentences(clean_abstract(evidence)):
        out.append((sentence, frozenset(content_tokens(sentence)), tuple(words(sentence))))
    return tuple(out)


@lru_cache(maxsize=4096)
def _evidence_index(evidence: str) -> tuple[frozenset[str], frozenset[str], list[str]]:
    """(lower-cased words, their stems, content tokens in order) of the evidence."""
    found = words(evidence)
    lower = frozenset(w.lower() for w in found)
    return lower, frozenset(stem(w) for w in lower), content_tokens(evidence)


def support(claim: str, evidence: str, title: str = "") -> Support:
    """How well `evidence` (an abstract, with its `title`) backs `claim`; see the module doc.

    The title counts for words, numbers and names; `best_sentence` is an abstract sentence.
    """
    claim_words = words(claim)
    claim_tokens = content_tokens(claim)
    ev_lower, ev_stems, ev_tokens = _evidence_index(f"{title}\n{evidence}" if title else evidence)
    distinct = set(claim_tokens)
    token_recall = len(distinct & set(ev_tokens)) / len(distinct) if distinct else 0.0
    bigrams = set(zip(claim_tokens, claim_tokens[1:], strict=False))
    ev_bigrams = set(zip(ev_tokens, ev_tokens[1:], strict=False))
    bigram_recall = len(bigrams & ev_bigrams) / len(bigrams) if bigrams else 1.0
    best, best_words, best_shared = "", tuple[str, ...](), -1
    for sentence, tokens, sentence_words in _evidence_sentences(evidence):
        shared = len(distinct & tokens)
        if shared > best_shared:
            best, best_words, best_shared = sentence, sentence_words, shared
    return Support(
        token_recall=round(token_recall, 4),
        bigram_recall=round(bigram_recall, 4),
        n_tokens=len(distinct),
        missing_numbers=tuple(sorted(_numbers(claim_words) - ev_lower)),
        missing_names=tuple(
            sorted(n for n in _names(claim_words) if n not in ev_lower and stem(n) not in ev_stems)
        ),
        negation_mismatch=_negation_mismatch(claim_words, list(best_words)),
        flipped_direction=_flipped_direction(claim_tokens, _bigrams(best_words)),
        best_sentence=best,
        best_shared=max(best_shared, 0),
    )
