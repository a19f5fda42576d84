"""Render verified sentences once: number the cited sources in order of first use, write text.

The model saw sources `[1]`..`[n]` in prompt order; the answer numbers only the sources its
shown sentences cite, in the order they are first cited, so `[1]` is always the first
reference. `Numbering.render` turns one `Verified` sentence into the text the user sees
(`SOUL beats first-order methods [1, 2].`: markers before the closing punctuation), and
`Numbering.citations` builds the reference list for exactly the sources cited.
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.answering.evidence import Evidence
from rag.answering.verify import Verified
from rag.types import Citation

_CLOSING = ".!?"


def with_markers(text: str, numbers: Sequence[int]) -> str:
    """`Foo bar.` + [1, 3] -> `Foo bar [1, 3].`; text ending in `…` or no stop keeps its end."""
    if not numbers:
        return text
    marker = "[" + ", ".join(str(n) for n in numbers) + "]"
    body = text.rstrip()
    if body and body[-1] in _CLOSING:
        return f"{body[:-1].rstrip()} {marker}{body[-1]}"
    return f"{body} {marker}"


class Numbering:
    """Numbers sources in order of first citation and renders sentences with those numbers."""

    def __init__(self, evidence: Sequence[Evidence]) -> None:
        self.evidence = list(evidence)
        self.order: list[int] = []
        """Prompt source numbers in order of first citation: `order[0]` is shown as [1]."""
        self._supporting: dict[int, list[str]] = {}

    def render(self, sentence: Verified, first: bool) -> str:
        """The text of `sentence` as shown, with its lead unless it opens the answer."""
        numbers = []
        for source, backing in zip(
            sentence.sources, sentence.supporting or ("",) * len(sentence.sources), strict=True
        ):
            if source not in self.order:
                self.order.append(source)
            numbers.append(self.order.index(source) + 1)
            kept = self._supporting.setdefault(source, [])
            if backing and backing not in kept:
                kept.append(backing)
        lead = sentence.lead.lstrip("\n") if first else sentence.lead
        return lead + with_markers(sentence.text, sorted(numbers))

    def citations(self) -> list[Citation]:
        """One `Citation` per cited source, numbered as rendered."""
        out = []
        for number, source in enumerate(self.order, start=1):
            item = self.evidence[source - 1]
            hit = item.hit
            out.append(
                Citation(
                    number=number,
                    paper_id=hit.paper_id,
                    title=hit.title,
                    year=hit.year,
                    url=hit.url,
                    authors=list(hit.authors),
                    author_count=hit.author_count,
                    snippet=item.text,
                    supporting=list(self._supporting.get(source, [])),
                )
            )
        return out
