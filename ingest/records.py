"""Typed paper records, rejections and warnings: what every parser produces.

Also the one home of paper identity (see docs/ingest.md, "Identity"):

* `arxiv:<id>` only for a real arXiv identifier (`parse_arxiv_id`), version folded;
* `src:<hash>` for any other id a record carries, namespaced by the file it came from, so
  two files' row ids never meet;
* `p:<hash>` of the normalised title and abstract for records without an id (unchanged since
  the first release: the eval datasets cite these ids).

`content_key` (the same hash as `p:` ids) identifies a paper's content whatever its id, so a
true duplicate is recognised across files and id kinds.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

_WS = re.compile(r"\s+")
_NON_WORD = re.compile(r"[\W_]+")
_YEAR = re.compile(r"\b(19|20)\d{2}\b")
_ARXIV_PREFIX = re.compile(
    r"^(?:arxiv:|https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/)", re.IGNORECASE
)
_ARXIV_NEW = re.compile(r"(\d{2})(\d{2})\.(\d{4,5})(v\d+)?")
_ARXIV_OLD = re.compile(r"([a-z]+(?:-[a-z]+)?)(\.[a-z]{2})?/(\d{2})(\d{2})(\d{3})(v\d+)?", re.I)
_UNSAFE_IN_URL = re.compile(r"[\s\x00-\x1f\x7f]")
SAFE_URL_SCHEMES = frozenset({"http", "https"})
ARXIV_PREFIX = "arxiv:"
UNTITLED = "Untitled: "


def normalise_text(text: str) -> str:
    """Collapse whitespace and Unicode forms; keeps case and punctuation (what users read)."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", text)).strip()


def _dedupe_key(text: str) -> str:
    """Lower-case word characters only: robust to spacing, punctuation and case differences."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def content_key(title: str, abstract: str) -> str:
    """Hash of the normalised (lower-case, punctuation-free) title and abstract.

    The same paper copied into two files with different spacing gets the same key.
    """
    digest = hashlib.sha256(f"{_dedupe_key(title)}\n{_dedupe_key(abstract)}".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ArxivId:
    """A real arXiv identifier: `id` without version (`2301.01234`, `hep-th/9901001`).

    Attributes:
        id: The canonical identifier, version folded.
        version: The version the source named (`v2`), "" when none.
    """

    id: str
    version: str = ""

    @property
    def abs_url(self) -> str:
        """The paper's abstract page, at the version the source named."""
        return f"https://arxiv.org/abs/{self.id}{self.version}"


def parse_arxiv_id(raw: str) -> ArxivId | None:
    """Return the arXiv identifier `raw` names, or None when it is not one.

    Accepts new-style ids (`2301.01234`, `2301.01234v2`; four digits after the dot up to
    1412, five from 1501), old-style ids (`hep-th/9901001`, `math.GT/0309136v1`), an
    `arXiv:` prefix and `arxiv.org/abs/...` or `/pdf/...` links. Months must be 01-12.
    """
    text = _ARXIV_PREFIX.sub("", raw.strip())
    if text != raw.strip():  # a prefix or a link: drop what may follow the id in a URL
        text = text.split("?")[0].split("#")[0].rstrip("/").removesuffix(".pdf")
    if match := _ARXIV_NEW.fullmatch(text):
        year, month, number, version = match.groups()
        yymm = int(year + month)
        digits_ok = len(number) == (5 if yymm >= 1501 else 4)
        if 1 <= int(month) <= 12 and yymm >= 704 and digits_ok:
            return ArxivId(f"{year}{month}.{number}", version or "")
        return None
    if match := _ARXIV_OLD.fullmatch(text):
        archive, subject, year, month, number, version = match.groups()
        if 1 <= int(month) <= 12 and (int(year) >= 91 or int(year) <= 7):
            subject = subject.upper() if subject else ""
            return ArxivId(f"{archive.lower()}{subject}/{year}{month}{number}", version or "")
    return None


def file_identity(source_file: str) -> str:
    """The file a record came from, as an absolute path with links resolved.

    Not cached: a relative name means another file after a change of folder.
    """
    return str(Path(source_file).resolve())


def source_paper_id(source_file: str, raw_id: str) -> str:
    """Id of a record whose own id is not an arXiv one: `src:` + hash of (file, id).

    The same file read again (from any folder, by any relative path) gives the same ids;
    two files that both number their rows 1, 2, 3 give different ones.
    """
    text = f"{file_identity(source_file)}\x1f{raw_id.strip()}"
    return f"src:{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def stable_paper_id(
    title: str,
    abstract: str,
    arxiv_id: str | None = None,
    source: tuple[str, str] | None = None,
) -> str:
    """Return the paper's stable id: `arxiv:<id>`, else `src:<hash>`, else `p:<hash>`.

    Args:
        title: Normalised title.
        abstract: Normalised abstract.
        arxiv_id: A canonical arXiv id (see `parse_arxiv_id`), when the record has one.
        source: (file, raw id) when the record carries an id that is not an arXiv one.
    """
    if arxiv_id:
        return f"{ARXIV_PREFIX}{arxiv_id}"
    if source:
        return source_paper_id(*source)
    return f"p:{content_key(title, abstract)}"


def checked_url(raw: str) -> str | None:
    """Return `raw` (trimmed) when it is an http(s) link with a host, else None.

    `javascript:`, `data:`, `file:` and other schemes, and links with spaces or control
    characters inside, are never stored: the page and the API hand stored links to browsers.
    """
    text = raw.strip()
    if not text or _UNSAFE_IN_URL.search(text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    return text if parts.scheme.lower() in SAFE_URL_SCHEMES and parts.hostname else None


def untitled_display_title(abstract: str) -> str:
    """What an untitled paper shows as its title: its abstract's first words."""
    words = abstract.split()
    return UNTITLED + " ".join(words[:10]) + (" ..." if len(words) > 10 else "")


def split_authors(value: object) -> tuple[str, ...]:
    """Author names from a list, or from one string joined by commas, `and` or semicolons."""
    if isinstance(value, list):
        return tuple(normalise_text(str(v)) for v in value if str(v).strip())
    if isinstance(value, str) and value.strip():
        parts = re.split(r",\s*|\s+and\s+|;\s*", normalise_text(value))
        return tuple(p for p in parts if p)
    return ()


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
        paper_id: Stable id (`arxiv:<id>`, `src:<hash>` or `p:<hash>`); the key for dedupe,
            updates and citations.
        title: Title, "" when the source gives none (layout 1 of the sample corpus).
        abstract: Abstract text, whitespace-normalised.
        source_file: Path of the file it came from, as given on the command line.
        source_line: 1-based line where the record starts.
        authors: Author names when the source lists them.
        author_count: Number of authors (from the list, or from a "5 authors" trailer).
        year: Publication year as an int, None when unknown.
        date: The date text as the source gave it (the arXiv snapshot: its first version's
            date as YYYY-MM-DD, see `ingest.arxiv`).
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
    def content_key(self) -> str:
        """Identity of the content (normalised title and abstract), whatever the id."""
        return content_key(self.title, self.abstract)

    @property
    def display_title(self) -> str:
        """Title to show: the real one, or the abstract's first words for untitled papers."""
        return self.title or untitled_display_title(self.abstract)

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


@dataclass(frozen=True)
class RecordWarning:
    """Something dropped from a record that was still stored (e.g. an unsafe link)."""

    source_file: str
    source_line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source_file}:{self.source_line}: warning: {self.message}"


def make_paper(
    *,
    title: str,
    abstract: str,
    source_file: str,
    source_line: int,
    max_abstract_chars: int,
    arxiv_id: str | None = None,
    source_id: str | None = None,
    **extra: object,
) -> Paper | Rejection:
    """Validate and normalise one record; return a `Paper` or the `Rejection` saying why not.

    Args:
        title: Title as read ("" when the source has none).
        abstract: Abstract as read.
        source_file: The file, as given on the command line.
        source_line: 1-based line where the record starts.
        max_abstract_chars: Longer abstracts are rejected.
        arxiv_id: Canonical arXiv id (`parse_arxiv_id(...).id`) when the record has one.
        source_id: The record's own id when it is not an arXiv one (namespaced by file).
        **extra: Other `Paper` fields (authors, year, url, ...).
    """
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
        paper_id=stable_paper_id(
            title_n,
            abstract_n,
            arxiv_id,
            (source_file, source_id) if source_id and source_id.strip() else None,
        ),
        title=title_n,
        abstract=abstract_n,
        source_file=source_file,
        source_line=source_line,
        **extra,  # type: ignore[arg-type]
    )


def paper_from_row(
    *,
    raw_id: str,
    title: str,
    abstract: str,
    source_file: str,
    source_line: int,
    max_abstract_chars: int,
    authors: tuple[str, ...],
    date: str | None,
    url: str | None,
    doi: str | None,
    categories: tuple[str, ...],
) -> Paper | Rejection:
    """`make_paper` for a row of named fields (a JSON line, a CSV row, an arXiv snapshot line).

    The callers read the fields their own way (the snapshot cleans LaTeX spacing and takes
    the first version's date; a JSONL or CSV row may give categories as a list); what follows
    is shared: an arXiv `raw_id` gives the paper id and, without a `url`, the link to its
    abstract page; any other non-empty `raw_id` is the row's own id, namespaced by file. The
    author count is that of `authors`, the year that of `date`.
    """
    arxiv = parse_arxiv_id(raw_id) if raw_id else None
    return make_paper(
        title=title,
        abstract=abstract,
        arxiv_id=arxiv.id if arxiv else None,
        source_id=None if arxiv else raw_id,
        source_file=source_file,
        source_line=source_line,
        max_abstract_chars=max_abstract_chars,
        authors=authors,
        author_count=len(authors) or None,
        date=date,
        year=year_from_date(date),
        url=url or (arxiv.abs_url if arxiv else None),
        doi=doi,
        categories=categories,
    )
