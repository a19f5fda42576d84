"""Typed paper records and rejections: what every parser produces."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field

_WS = re.compile(r"\s+")
_NON_WORD = re.compile(r"[\W_]+")
_YEAR = re.compile(r"\b(19|20)\d{2}\b")


def normalise_text(text: str) -> str:
    """Collapse whitespace and Unicode forms; keeps case and punctuation (what users read)."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def _dedupe_key(text: str) -> str:
    """Lower-case word characters only: robust to spacing, punctuation and case differences."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def stable_paper_id(title: str, abstract: str, arxiv_id: str | None = None) -> str:
    """Return the paper's stable id: `arxiv:<id>` when known, else a hash of title and abstract.

    The hash covers the normalised (lower-case, punctuation-free) title and abstract, so the
    same paper copied into two files with different spacing gets the same id.
    """
    if arxiv_id:
        return f"arxiv:{arxiv_id.strip()}"
    digest = hashlib.sha256(f"{_dedupe_key(title)}\n{_dedupe_key(abstract)}".encode()).hexdigest()
    return f"p:{digest[:16]}"


def year_from_date(date_text: str | None) -> int | None:
    """Return the four-digit year in a date string, or None (e.g. 'Sep 30' has no year)."""
    if not date_text:
        return None
    match = _YEAR.search(date_text)
    return int(match.group(0)) if match else None


@dataclass(frozen=True)
class Paper:
    """One paper, normalised from any input format.

    Attributes:
        paper_id: Stable id (`arxiv:<id>` or `p:<hash>`); the key for dedupe and citations.
        title: Title, "" when the source gives none (layout 1 of the sample corpus).
        abstract: Abstract text, whitespace-normalised.
        source_file: Path of the file it came from, as given on the command line.
        source_line: 1-based line where the record starts.
        authors: Author names when the source lists them.
        author_count: Number of authors (from the list, or from a "5 authors" trailer).
        year: Publication year as an int, None when unknown.
        date: The date text exactly as the source gave it.
        url: Link to the paper when known.
        doi: DOI when known.
        categories: arXiv categories when known.
        organisation: Organisation line some listing entries carry instead of authors.
    """

    paper_id: str
    title: str
    abstract: str
    source_file: str
    source_line: int
    authors: tuple[str, ...] = ()
    author_count: int | None = None
    year: int | None = None
    date: str | None = None
    url: str | None = None
    doi: str | None = None
    categories: tuple[str, ...] = field(default=())
    organisation: str | None = None

    @property
    def content_hash(self) -> str:
        """Hash of everything that ends up in the store; a change means re-embedding."""
        parts = [
            self.title,
            self.abstract,
            "|".join(self.authors),
            str(self.author_count),
            str(self.year),
            self.date or "",
            self.url or "",
            self.doi or "",
            "|".join(self.categories),
            self.organisation or "",
        ]
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]

    @property
    def display_title(self) -> str:
        """Title to show: the real one, or the abstract's first words for untitled papers."""
        if self.title:
            return self.title
        words = self.abstract.split()
        return "Untitled: " + " ".join(words[:10]) + (" ..." if len(words) > 10 else "")

    @property
    def where(self) -> str:
        """`file:line` of the record, for messages."""
        return f"{self.source_file}:{self.source_line}"


@dataclass(frozen=True)
class Rejection:
    """A record or file that could not become a paper, with where and why."""

    source_file: str
    source_line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.source_file}:{self.source_line}: {self.reason}"


def make_paper(
    *,
    title: str,
    abstract: str,
    source_file: str,
    source_line: int,
    max_abstract_chars: int,
    arxiv_id: str | None = None,
    **extra: object,
) -> Paper | Rejection:
    """Validate and normalise one record; return a `Paper` or the `Rejection` saying why not."""
    title_n = normalise_text(title)
    abstract_n = normalise_text(abstract)
    if not abstract_n:
        return Rejection(source_file, source_line, "record has no abstract")
    if len(abstract_n) > max_abstract_chars:
        return Rejection(
            source_file,
            source_line,
            f"abstract is {len(abstract_n):,} characters, over the limit of "
            f"{max_abstract_chars:,} (PAPERCHAT_MAX_ABSTRACT_CHARS); is this really an abstract?",
        )
    return Paper(
        paper_id=stable_paper_id(title_n, abstract_n, arxiv_id),
        title=title_n,
        abstract=abstract_n,
        source_file=source_file,
        source_line=source_line,
        **extra,  # type: ignore[arg-type]
    )
