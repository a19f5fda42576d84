"""Does an abstract say what an answer sentence says? A deterministic, lexical support check.

No NLI or cross-encoder model ships offline, so support is read off the words, in two parts:

- **anchors**: every number and every name in the sentence (a word with a capital letter
  after the sentence's first word, an acronym, a word with a digit: `SOUL`, `Milgram`,
  `GPT-4`, `40%`) must occur in the abstract or its title. A small model's invented detail is
  most often such a word ("a common method used in the Milgram experiment").
- **coverage**: the share of the sentence's content words (stop words out, Porter stems, so
  "unlearning" meets "unlearn") that occur in the abstract or its title.

`SupportCheck.support` returns both; the verifier (`rag.answering.verify`) decides with the
thresholds calibrated in docs/answering.md. The eval's lexical judge (`eval.judges`) asks a
similar question with its own rules; the report says so where it grades verified answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from rag.text import clean_abstract, content_terms, split_sentences

_TOKEN = re.compile(r"[A-Za-z0-9]+(?:[-'.][A-Za-z0-9]+)*%?")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_GENERIC_NAMES = frozenset(
    """i ai the this these those it its they their a an in on for to of and or but both
    however overall additionally moreover furthermore also while whereas finally first second
    third then thus hence therefore specifically similarly instead""".split()
)


@lru_cache(maxsize=1)
def _stemmer() -> object:
    from nltk.stem import PorterStemmer

    return PorterStemmer()


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Porter stem of a lower-case word (NLTK's implementation, no data download)."""
    return str(_stemmer().stem(word))  # type: ignore[attr-defined]


def terms(text: str) -> set[str]:
    """Stemmed content words of `text` (stop words out)."""
    return {stem(term) for term in content_terms(text)}


def _fold(word: str) -> str:
    word = word.lower().rstrip("%")
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def anchors(sentence: str) -> set[str]:
    """Numbers and names of `sentence`, lower-cased, plurals folded (see module doc)."""
    found: set[str] = set()
    for index, match in enumerate(_TOKEN.finditer(sentence)):
        word = match.group(0)
        if _NUMBER.fullmatch(word.rstrip("%")):
            found.add(word.rstrip("%").rstrip("."))
            continue
        has_digit = any(ch.isdigit() for ch in word)
        capital_inside = any(ch.isupper() for ch in word[1:])
        capital_later = index > 0 and word[0].isupper()
        if (has_digit or capital_inside or capital_later) and word.lower() not in _GENERIC_NAMES:
            found.add(_fold(word))
    return found


@dataclass(frozen=True)
class Support:
    """How well one source backs one sentence."""

    coverage: float
    """Share of the sentence's content stems found in the source (0..1)."""
    missing: tuple[str, ...]
    """The sentence's numbers and names that the source lacks."""
    best_sentence: str
    """The source sentence sharing the most content stems with the sentence ("" if none)."""
    best_shared: int = 0
    """Content stems the sentence shares with `best_sentence`."""
    best_coverage: float = 0.0
    """`best_shared` as a share of the sentence's content stems."""

    def passes(self, min_coverage: float) -> bool:
        """True when no anchor is missing and coverage reaches `min_coverage`."""
        return not self.missing and self.coverage >= min_coverage


@dataclass(frozen=True)
class SourceText:
    """A source prepared once for many checks: its title and abstract, cleaned and split."""

    title: str
    abstract: str

    @property
    def sentences(self) -> list[str]:
        """The abstract's sentences."""
        return _sentences(self.abstract)

    @property
    def stems(self) -> frozenset[str]:
        """Content stems of title and abstract."""
        return _stems(f"{self.title}\n{self.abstract}")

    @property
    def tokens(self) -> frozenset[str]:
        """Every word and number of title and abstract, folded like `anchors`."""
        return _tokens(f"{self.title}\n{self.abstract}")


@lru_cache(maxsize=4096)
def _sentences(abstract: str) -> list[str]:
    return split_sentences(clean_abstract(abstract))


@lru_cache(maxsize=4096)
def _stems(text: str) -> frozenset[str]:
    return frozenset(terms(clean_abstract(text)))


@lru_cache(maxsize=4096)
def _tokens(text: str) -> frozenset[str]:
    cleaned = clean_abstract(text)
    words = {_fold(m.group(0)) for m in _TOKEN.finditer(cleaned)}
    numbers = {n.rstrip(".") for n in _NUMBER.findall(cleaned)}
    parts = {part for word in words for part in re.split(r"[-'.]", word) if part}
    return frozenset(words | numbers | parts)


def support(sentence: str, source: SourceText) -> Support:
    """How well `source` backs `sentence` (see module doc)."""
    wanted = terms(sentence)
    have = source.stems
    coverage = len(wanted & have) / len(wanted) if wanted else 0.0
    tokens = source.tokens
    missing = tuple(sorted(a for a in anchors(sentence) if not _present(a, tokens)))
    best, shared = best_sentence(wanted, source.sentences)
    best_coverage = shared / len(wanted) if wanted else 0.0
    return Support(round(coverage, 4), missing, best, shared, round(best_coverage, 4))


def _present(anchor: str, tokens: frozenset[str]) -> bool:
    """An anchor is present as written, or (`Sophia-based`) as all of its hyphenated parts."""
    if anchor in tokens:
        return True
    parts = [part for part in re.split(r"[-'.]", anchor) if part]
    return len(parts) > 1 and all(_fold(part) in tokens for part in parts)


def joint_support(sentence: str, sources: Iterable[SourceText]) -> Support:
    """Support of `sentence` by several sources read together."""
    chosen = list(sources)
    merged = SourceText(" / ".join(s.title for s in chosen), "\n".join(s.abstract for s in chosen))
    return support(sentence, merged)


def best_sentence(wanted: set[str], sentences: list[str]) -> tuple[str, int]:
    """The sentence sharing the most stems with `wanted` (the earliest on a tie) and how many.

    ("", 0) when no sentence shares any.
    """
    best, best_shared = "", 0
    for candidate in sentences:
        shared = len(wanted & _stems(candidate))
        if shared > best_shared:
            best, best_shared = candidate, shared
    return best, best_shared
