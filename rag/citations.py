"""Citation markers: map the answer's `[n]` to sources, renumber, drop strays, flag uncited text.

The model sees sources `[1]`..`[n]`. Its answer may write `[2]`, `[1, 3]`, `[1][3]`, `[1-2]` or
`[Source 2]`. `MarkerRewriter` rewrites those markers as text streams in: numbers that point to a
source are renumbered in order of first use (the first source cited becomes `[1]`), numbers that
point to no source are removed and counted. It works on deltas, so the streamed text and the final
answer text are the same. `rewrite_markers` is the one-shot form.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from rag.evidence import Evidence
from rag.text import content_terms, split_sentences
from rag.types import Citation

_NUMBER = r"(?:sources?\s*)?\d+"
_SEPARATOR = r"\s*(?:,|;|-|–|and)\s*"
MARKER = re.compile(rf"\[\s*{_NUMBER}(?:{_SEPARATOR}{_NUMBER})*\s*\]", re.IGNORECASE)
"""A citation marker as a model writes it: `[1]`, `[1, 2]`, `[1-3]`, `[Source 2]`."""

_MAYBE_MARKER = re.compile(r"\[[\w\s,;\-–]{0,40}", re.IGNORECASE)
_RANGE = re.compile(r"(\d+)\s*[-–]\s*(?:sources?\s*)?(\d+)", re.IGNORECASE)
_LEADING_MARKERS = re.compile(rf"^((?:{MARKER.pattern}\s*)+)(.*)$", re.IGNORECASE | re.DOTALL)
_PUNCTUATION = ".,;:!?)"
_MAX_RANGE = 20


def marker_numbers(marker: str) -> list[int]:
    """The numbers a marker names, ranges expanded: `[1-3]` -> 1, 2, 3; `[2, 5]` -> 2, 5."""
    numbers: list[int] = []
    rest = marker
    for match in _RANGE.finditer(marker):
        low, high = int(match.group(1)), int(match.group(2))
        if low <= high <= low + _MAX_RANGE:
            numbers.extend(range(low, high + 1))
            rest = rest.replace(match.group(0), " ", 1)
    numbers.extend(int(n) for n in re.findall(r"\d+", rest))
    return numbers


@dataclass
class MarkerRewriter:
    """Rewrites citation markers in streamed text; see the module docstring.

    Feed deltas with `feed` and call `finish` once; each returns the text that is safe to show.
    Text that might still become a marker (`[1, `) is held back until it is complete.
    """

    n_sources: int
    order: list[int] = field(default_factory=list)
    """Source numbers as the prompt gave them, in order of first use: `order[0]` is the new [1]."""
    dropped: int = 0
    """Marker numbers that pointed to no source (removed from the text)."""
    _pending: str = ""
    _space: str = ""
    _after_drop: bool = False

    def feed(self, text: str) -> str:
        """Consume a delta; return the rewritten text that can be shown now."""
        return "".join(self._push(char) for char in text)

    def finish(self) -> str:
        """Flush held-back text at the end of the stream."""
        out = self._literal(self._pending) if self._pending else ""
        self._pending = ""
        if not self._after_drop:
            out += self._space
        self._space = ""
        return out

    def _push(self, char: str) -> str:
        if self._pending:
            self._pending += char
            if char == "]":
                marker, self._pending = self._pending, ""
                return self._marker(marker) if MARKER.fullmatch(marker) else self._literal(marker)
            if _MAYBE_MARKER.fullmatch(self._pending):
                return ""
            held, self._pending = self._pending[:-1], ""
            return self._literal(held) + self._push(char)
        if char == "[":
            self._pending = char
            return ""
        if char.isspace():
            self._space += char
            return ""
        return self._literal(char)

    def _literal(self, text: str) -> str:
        space = self._space
        if self._after_drop:
            space = "" if text[:1] in _PUNCTUATION else space[:1]
        self._space, self._after_drop = "", False
        return space + text

    def _marker(self, marker: str) -> str:
        new_numbers: set[int] = set()
        for number in marker_numbers(marker):
            if 1 <= number <= self.n_sources:
                if number not in self.order:
                    self.order.append(number)
                new_numbers.add(self.order.index(number) + 1)
            else:
                self.dropped += 1
        if not new_numbers:
            self._after_drop = True
            return ""
        return self._literal("[" + ", ".join(str(n) for n in sorted(new_numbers)) + "]")


def rewrite_markers(text: str, n_sources: int) -> tuple[str, list[int], int]:
    """Rewrite all markers of a finished answer: (text, source order, dropped marker count)."""
    rewriter = MarkerRewriter(n_sources)
    out = rewriter.feed(text) + rewriter.finish()
    return out, rewriter.order, rewriter.dropped


def answer_sentences(text: str) -> list[str]:
    """Split an answer into sentences; markers after a full stop (`… LoRA. [2]`) stay with it.

    Markers that open a new line (a list item such as `[2] Trans-LoRA …`) start their sentence.
    """
    sentences: list[str] = []
    cursor = 0
    for piece in split_sentences(text):
        start = text.find(piece, cursor)
        same_line = "\n" not in text[cursor:start] if start >= 0 else True
        cursor = start + len(piece) if start >= 0 else cursor
        match = _LEADING_MARKERS.match(piece)
        if match and sentences and same_line:
            sentences[-1] = f"{sentences[-1]} {match.group(1).strip()}"
            piece = match.group(2).strip()
        if piece:
            sentences.append(piece)
    return sentences


_SENTENCE_GAP = re.compile(r"(?<=[.!?])\s+(?=\[|[\"'(]?[A-Z0-9])")


def trailing_markers(text: str) -> str:
    """Move markers written before their sentence to its end (`[1] X.` becomes `X [1].`).

    Small models sometimes cite in that leading style, which reads as if each marker belonged
    to the sentence before it. Applies only when the answer itself opens with a marker (the
    sign of that style); otherwise `… LoRA. [2]` stays with the sentence it follows.
    """
    if not _LEADING_MARKERS.match(text.lstrip()):
        return text
    lines = []
    for line in text.split("\n"):
        pieces = []
        for piece in _SENTENCE_GAP.split(line):
            match = _LEADING_MARKERS.match(piece)
            body = match.group(2).strip() if match else ""
            if match and body:
                markers = "".join(MARKER.findall(match.group(1)))
                words = body.rstrip(".!?")
                if not words.endswith(markers):
                    words = f"{words} {markers}"
                piece = words + body[len(body.rstrip(".!?")) :]
            pieces.append(piece)
        lines.append(" ".join(pieces))
    return "\n".join(lines)


def uncited_sentences(text: str) -> list[str]:
    """Sentences of the answer that carry no citation marker."""
    return [s for s in answer_sentences(text) if not MARKER.search(s)]


ATTRIBUTION_OVERLAP = 0.6
"""Share of an uncited sentence's content terms one source must hold to be attributed to it."""

ATTRIBUTION_MIN_TERMS = 3
"""...and at least this many shared terms, so short sentences are never attributed by chance."""


def attribute_uncited(
    text: str, order: list[int], evidence: Sequence[Evidence]
) -> tuple[str, list[int], int]:
    """Cite uncited sentences that restate one source's evidence; return (text, order, count).

    Small models often drop the marker from a sentence copied from a source. A sentence with no
    marker gets the number of the single source whose shown evidence (title and sentences) holds
    at least `ATTRIBUTION_OVERLAP` of its content terms (and `ATTRIBUTION_MIN_TERMS` of them).
    Other uncited sentences are left alone and stay listed by `uncited_sentences`. `text` and
    `order` are in renumbered form (`order[0]` is [1]); a newly cited source is appended.
    """
    order = list(order)
    sources = [set(content_terms(f"{item.title} {item.text}")) for item in evidence]
    out, cursor, count = [], 0, 0
    for sentence in uncited_sentences(text):
        source = _best_source(set(content_terms(sentence)), sources)
        start = text.find(sentence, cursor)
        if source is None or start < 0:
            continue
        if source not in order:
            order.append(source)
        end = start + len(sentence)
        body = sentence.rstrip(".!?")
        out.append(
            text[cursor:start] + f"{body} [{order.index(source) + 1}]" + sentence[len(body) :]
        )
        cursor, count = end, count + 1
    out.append(text[cursor:])
    return "".join(out), order, count


MISCITED_OVERLAP = 0.3
"""A single-source sentence sharing less than this share of its terms with the cited source..."""


def correct_miscitations(raw: str, evidence: Sequence[Evidence]) -> tuple[str, int]:
    """Re-point `[k]` when a sentence plainly restates another source; return (text, count).

    Works on the model's own numbering (before `rewrite_markers`). A sentence with exactly one
    marker naming one source k is re-pointed to source m when m passes the attribution test of
    `attribute_uncited` and k holds under `MISCITED_OVERLAP` of the sentence's content terms.
    Small models tend to cite `[1]` for whatever they copy; this catches the clear cases only.
    """
    sources = [set(content_terms(f"{item.title} {item.text}")) for item in evidence]
    out, cursor, count = [], 0, 0
    for sentence in answer_sentences(raw):
        markers = MARKER.findall(sentence)
        numbers = marker_numbers(markers[0]) if len(markers) == 1 else []
        start = raw.find(sentence, cursor)
        if len(numbers) != 1 or not 1 <= numbers[0] <= len(sources) or start < 0:
            continue
        terms = set(content_terms(MARKER.sub(" ", sentence)))
        best = _best_source(terms, sources)
        cited = numbers[0]
        if best is None or best == cited:
            continue
        if len(terms & sources[cited - 1]) >= MISCITED_OVERLAP * len(terms):
            continue
        out.append(raw[cursor:start] + sentence.replace(markers[0], f"[{best}]"))
        cursor, count = start + len(sentence), count + 1
    out.append(raw[cursor:])
    return "".join(out), count


def _best_source(terms: set[str], sources: Sequence[set[str]]) -> int | None:
    if not terms:
        return None
    shared = [len(terms & source) for source in sources]
    best = max(shared, default=0)
    if best < ATTRIBUTION_MIN_TERMS or best / len(terms) < ATTRIBUTION_OVERLAP:
        return None
    if shared.count(best) > 1:
        return None  # two sources fit equally: do not guess
    return shared.index(best) + 1


def build_citations(order: Sequence[int], evidence: Sequence[Evidence]) -> list[Citation]:
    """One `Citation` per cited source, numbered as renumbered (`order[0]` is [1])."""
    citations = []
    for new_number, source_number in enumerate(order, start=1):
        item = evidence[source_number - 1]
        hit = item.hit
        citations.append(
            Citation(
                number=new_number,
                paper_id=hit.paper_id,
                title=hit.title,
                year=hit.year,
                url=hit.url,
                authors=list(hit.authors),
                author_count=hit.author_count,
                snippet=item.text,
            )
        )
    return citations
