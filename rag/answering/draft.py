"""Parse a reply once: the model's text becomes a list of sentences with the sources they cite.

Every later step (mapping, verification, numbering, rendering) works on `DraftSentence`s, never
on the reply's text. Models write citation markers in many ways: `[2]`, `[1, 3]`, `[1][3]`,
`[1-2]`, `[Source 2]`, after the full stop (`… LoRA. [2]`) or, in a style the local Qwen model
falls into, before each sentence (`[1] X does Y. [2] Z.`). The parser assigns each marker to
the sentence it belongs to:

- a reply that opens with a marker is in the leading style: a sentence's leading markers are
  its own;
- otherwise markers that open a sentence on the same line follow the previous sentence's full
  stop, so they belong to that sentence (`X does Y. [2] Z.` cites [2] for X);
- a marker that opens a line (a list item such as `- [2] Trans-LoRA …`) belongs to that line;
- markers anywhere else belong to the sentence they stand in.

`ReplyParser` does the same on a stream: `feed` returns the sentences that are complete (a
later sentence has begun), `finish` the rest. Sentences are split by
`paperchat.text.split_sentences` (the splitter evidence and support use too), line by line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from paperchat.text import MARKER, split_sentences

_RANGE = re.compile(r"(\d+)\s*[-–]\s*(?:sources?\s*)?(\d+)", re.IGNORECASE)
_MAX_RANGE = 20
_LEADING = re.compile(rf"^\s*((?:{MARKER.pattern}\s*)+)", re.IGNORECASE)
_BULLET = re.compile(r"^\s*((?:[-*•]|\d+[.)])\s+)")
_OPEN_BRACKET = re.compile(r"\[[^\]\n]{0,40}$")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?)])")
_LETTER = re.compile(r"[A-Za-z]")


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


@dataclass(frozen=True)
class DraftSentence:
    r"""One sentence of a reply, its markers taken out.

    Attributes:
        text: The sentence without markers, e.g. "SOUL uses second-order optimisation."
        cited: Source numbers its markers name, as the reply wrote them (1-based, in order of
            appearance, no repeats; numbers that name no source are kept here and dropped by
            the verifier, which counts them).
        lead: What comes before it when rendered: "" for the first sentence, " " between
            sentences of a line, "\n" or "\n- " (the list bullet as written) at a new line.
    """

    text: str
    cited: tuple[int, ...] = ()
    lead: str = ""


def _numbers_of(markers: list[str]) -> list[int]:
    numbers: list[int] = []
    for marker in markers:
        numbers.extend(n for n in marker_numbers(marker) if n not in numbers)
    return numbers


def _clean(text: str) -> str:
    text = MARKER.sub(" ", text)
    text = re.sub(r"\s+", " ", text)
    return _SPACE_BEFORE_PUNCT.sub(r"\1", text).strip()


def _line_pieces(line: str, first_line: bool) -> Iterator[tuple[str, str]]:
    """(lead, piece) for each sentence of one line, the bullet kept in the first lead."""
    bullet = _BULLET.match(line)
    body = line[bullet.end() :] if bullet else line
    lead = ("" if first_line else "\n") + (bullet.group(1).strip() + " " if bullet else "")
    for index, piece in enumerate(split_sentences(body)):
        yield (lead if index == 0 else " "), piece


def parse_reply(text: str) -> list[DraftSentence]:
    """Parse a whole reply into sentences with their cited source numbers (see module doc)."""
    leading_style = bool(_LEADING.match(text.lstrip()))
    sentences: list[DraftSentence] = []
    lines = [line for line in text.split("\n") if line.strip()]
    for line_number, line in enumerate(lines):
        for index, (lead, piece) in enumerate(_line_pieces(line, line_number == 0)):
            leading = _LEADING.match(piece)
            markers = MARKER.findall(piece)
            if leading and index > 0 and not leading_style and sentences:
                owned = MARKER.findall(leading.group(1))
                previous = sentences[-1]
                extra = [n for n in _numbers_of(owned) if n not in previous.cited]
                sentences[-1] = DraftSentence(
                    previous.text, previous.cited + tuple(extra), previous.lead
                )
                markers = MARKER.findall(piece[leading.end() :])
            body = _clean(piece)
            if not _LETTER.search(body):
                if sentences and markers:  # a stray "[2]." line: it cites the sentence before
                    previous = sentences[-1]
                    extra = [n for n in _numbers_of(markers) if n not in previous.cited]
                    sentences[-1] = DraftSentence(
                        previous.text, previous.cited + tuple(extra), previous.lead
                    )
                continue
            sentences.append(DraftSentence(body, tuple(_numbers_of(markers)), lead))
    if sentences and sentences[0].lead.startswith("\n"):
        first = sentences[0]
        sentences[0] = DraftSentence(first.text, first.cited, first.lead.lstrip("\n"))
    return sentences


class ReplyParser:
    """`parse_reply` on a stream: returns each sentence once, as soon as it is complete.

    A sentence is complete when a later sentence has begun with a letter, so markers written
    after its full stop have arrived. Text that could still become a marker (`… [1,`) is held.
    """

    def __init__(self) -> None:
        self.text = ""
        self._emitted = 0

    def feed(self, delta: str) -> list[DraftSentence]:
        """Take the next piece of the reply; return the sentences completed by it."""
        self.text += delta
        settled = _OPEN_BRACKET.sub("", self.text)
        sentences = parse_reply(settled)
        if len(sentences) < 2 or not _LETTER.search(sentences[-1].text):
            return []
        return self._take(sentences[:-1])

    def finish(self) -> list[DraftSentence]:
        """The reply has ended: return every sentence not returned yet."""
        return self._take(parse_reply(self.text))

    def _take(self, sentences: list[DraftSentence]) -> list[DraftSentence]:
        new = sentences[self._emitted :]
        self._emitted = max(self._emitted, len(sentences))
        return new
