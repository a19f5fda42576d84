"""Read abstract files of any supported layout into `Paper` records and `Rejection`s.

Supported, detected automatically:

* `abstract-lines`: one `Abstract:<text>` per line, no titles (sample corpus layout 1).
* `listing`: a paper-listing page dump: title, blank, abstract, then an optional trailer
  (`  • 5 authors` or an organisation line, `·`, a date) (layout 2).
* `alternating`: two header lines, then title and abstract lines alternating; the first
  title is glued to `Subscribe` (layout 3).
* `arxiv-snapshot`: the arXiv metadata snapshot (JSON lines), recognised by name or by its
  first object's fields (`ingest.arxiv`).
* `jsonl` and `csv`: arXiv metadata field names (`id`, `title`, `abstract`, `authors`,
  `categories`, `update_date`/`published`, optional `url`/`doi`).

The layout is detected from the file's first bytes (`_HEAD_BYTES`). The arXiv snapshot, JSON
lines and CSV/TSV are then read a line at a time (`ingest.lines`): memory holds one line (one
CSV record) and the numbers of lines that were not UTF-8, whatever the file's size. The three
text layouts of the sample corpus are read whole: they are small hand-made pages, and their
parsers look ahead over the lines.

Nothing here raises on bad input: every problem becomes a `Rejection` with `file:line`, and
anything dropped from a record that is still stored (a link that is not http(s)) a
`RecordWarning` yielded just before its `Paper`.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from ingest.arxiv import HEAD_LINES, is_snapshot, parse_snapshot
from ingest.lines import Line, decode_line, not_utf8, read_lines
from ingest.records import (
    Paper,
    RecordWarning,
    Rejection,
    checked_url,
    make_paper,
    normalise_text,
    paper_from_row,
    split_authors,
    year_from_date,
)

SUPPORTED_SUFFIXES = {".txt", ".jsonl", ".json", ".ndjson", ".csv", ".tsv", ""}

_AUTHORS = re.compile(r"^\s*•\s*(\d+)\s+authors?\s*$")
_DATE = re.compile(r"^([A-Z][a-z]{2} \d{1,2}(?:, \d{4})?)(?:\s+\d+)?$")
_HEADER_LINES = {
    "new",
    "get trending papers in your email inbox!",
    "get trending papers in your email inbox once a day!",
    "subscribe",
    "daily papers",
    "byak and the research community",
}
_SHOWN_URL_CHARS = 60
_HEAD_BYTES = 1 << 16  # read to detect the layout
_NUL_BYTES = 8192  # a NUL in these says binary

ParseResult = Paper | Rejection | RecordWarning
_TextParser = Callable[[str, list[str], int], Iterator[ParseResult]]


@dataclass(frozen=True)
class _Text:
    """A decoded file: its lines and the 1-based numbers of lines that were not valid UTF-8."""

    lines: list[str]
    bad_lines: dict[int, str]


def iter_input_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Expand folders into their supported files (sorted, recursive, hidden files skipped)."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and not any(p.startswith(".") for p in child.parts[-1:]):
                    if child.suffix.lower() in SUPPORTED_SUFFIXES and child.name != "README.md":
                        yield child
        else:
            yield path


def parse_file(
    path: Path,
    *,
    max_abstract_chars: int = 20_000,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[ParseResult]:
    """Parse one file into papers and rejections; never raises for bad content.

    JSON lines, CSV/TSV and the arXiv snapshot are streamed: results come as the file is read,
    with rejections in line order. The text layouts are read whole first.

    Args:
        path: The file.
        max_abstract_chars: Longer abstracts are rejected.
        on_bytes: Called with the number of bytes read, as they are read (for progress).
    """
    name = str(path)
    try:
        head, blank, size = _sniff(path)
        if blank or b"\x00" in head[:_NUL_BYTES]:
            if on_bytes is not None:
                on_bytes(size)
            yield Rejection(
                name,
                0,
                "file is empty"
                if blank
                else "binary file (contains NUL bytes); expected text, JSONL or CSV",
            )
            return
        layout = detect_layout(path, _detection_lines(path, head))
        yield from _parse_layout(path, layout, max_abstract_chars, on_bytes)
    except OSError as err:  # reading, not parsing: bad content never raises
        yield Rejection(name, 0, f"cannot read file: {err.strerror or err}")


def _sniff(path: Path) -> tuple[bytes, bool, int]:
    """The file's first `_HEAD_BYTES`, whether it is all whitespace, and its size in bytes."""
    with path.open("rb") as handle:
        head = chunk = handle.read(_HEAD_BYTES)
        while chunk and not chunk.strip():
            chunk = handle.read(_HEAD_BYTES)  # a blank head: is the rest blank too?
        return head, not chunk.strip(), os.fstat(handle.fileno()).st_size


def _detection_lines(path: Path, head: bytes) -> list[str]:
    """The first lines of the file, as many as layout detection looks at, decoded leniently.

    The whole lines of the head, unless the head is cut before `HEAD_LINES` lines (a first
    record longer than the head): then the first `HEAD_LINES` lines, read whole.
    """
    lines = head.split(b"\n")
    if len(head) == _HEAD_BYTES:
        lines.pop()  # cut off part-way
        if len(lines) < HEAD_LINES:
            with path.open("rb") as handle:
                lines = list(islice(handle, HEAD_LINES))
    return [decode_line(n, raw).text for n, raw in enumerate(lines, start=1)]


def detect_layout(path: Path, lines: list[str]) -> str:
    """Name the layout of a file from its suffix and first lines."""
    if is_snapshot(str(path), lines):
        return "arxiv-snapshot"
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"}:
        return "jsonl"
    if suffix in {".csv", ".tsv"}:
        return "csv"
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("{"):
        return "jsonl"
    if first.startswith("Abstract:"):
        return "abstract-lines"
    if any(line.startswith("Subscribe") and len(line) > len("Subscribe") for line in lines[:5]):
        return "alternating"
    return "listing"


def _parse_layout(
    path: Path, layout: str, max_chars: int, on_bytes: Callable[[int], None] | None
) -> Iterator[ParseResult]:
    name = str(path)
    if layout == "arxiv-snapshot":
        return parse_snapshot(path, max_abstract_chars=max_chars, on_bytes=on_bytes)
    lines = read_lines(path, on_bytes)
    if layout == "jsonl":
        return _parse_jsonl(name, lines, max_chars)
    if layout == "csv":
        return _parse_csv(name, lines, max_chars)
    return _parse_text(name, _TEXT_PARSERS[layout], _decode(lines), max_chars)


def _decode(lines: Iterable[Line]) -> _Text:
    """Hold a whole (small) text file: its lines, and the lines that were not UTF-8."""
    text = _Text([], {})
    for line in lines:
        text.lines.append(line.text)
        if line.bad is not None:
            text.bad_lines[line.number] = line.bad
    return text


def _parse_text(
    name: str, parser: _TextParser, text: _Text, max_chars: int
) -> Iterator[ParseResult]:
    for number, detail in text.bad_lines.items():
        yield not_utf8(name, number, detail)
    for result in parser(name, text.lines, max_chars):
        if isinstance(result, Paper) and _touches_bad_line(result, text.bad_lines):
            continue  # already reported as a Rejection above
        yield result


def _touches_bad_line(paper: Paper, bad_lines: Collection[int]) -> bool:
    """True when a paper starting at `source_line` spans a non-UTF-8 line and shows it."""
    return any(n in bad_lines for n in range(paper.source_line, paper.source_line + 4)) and (
        "\ufffd" in paper.abstract or "\ufffd" in paper.title
    )


# -- text layouts ------------------------------------------------------------------------------


def _parse_abstract_lines(name: str, lines: list[str], max_chars: int) -> Iterator[ParseResult]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if not line.startswith("Abstract:"):
            yield Rejection(name, number, "expected a line starting with 'Abstract:'")
            continue
        yield make_paper(
            title="",
            abstract=line[len("Abstract:") :],
            source_file=name,
            source_line=number,
            max_abstract_chars=max_chars,
        )


def _parse_alternating(name: str, lines: list[str], max_chars: int) -> Iterator[ParseResult]:
    start = next(i for i, line in enumerate(lines) if line.startswith("Subscribe"))
    body = lines[start:]
    body[0] = body[0][len("Subscribe") :]
    for offset in range(0, len(body), 2):
        number = start + offset + 1
        title = body[offset]
        if offset + 1 >= len(body):
            yield Rejection(name, number, "title without an abstract on the next line")
            return
        yield make_paper(
            title=title,
            abstract=body[offset + 1],
            source_file=name,
            source_line=number,
            max_abstract_chars=max_chars,
        )


def _parse_listing(name: str, lines: list[str], max_chars: int) -> Iterator[ParseResult]:
    """Walk non-blank lines: title, abstract, then trailer lines until the next title."""
    rows = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
    i = 0
    while i < len(rows) and (
        rows[i][1].strip().lower() in _HEADER_LINES or _DATE.match(rows[i][1].strip())
    ):
        i += 1
    while i < len(rows):
        number, title = rows[i]
        if i + 1 >= len(rows):
            yield Rejection(name, number, "title without an abstract after it")
            return
        abstract = rows[i + 1][1]
        i += 2
        extra: dict[str, Any] = {}
        i = _read_trailer(rows, i, extra)
        yield make_paper(
            title=title,
            abstract=abstract,
            source_file=name,
            source_line=number,
            max_abstract_chars=max_chars,
            **extra,
        )


def _read_trailer(rows: list[tuple[int, str]], i: int, extra: dict[str, Any]) -> int:
    """Consume `• N authors` / organisation, `·`, date lines; fill `extra`; return new index."""
    if i < len(rows) and (match := _AUTHORS.match(rows[i][1])):
        extra["author_count"] = int(match.group(1))
        i += 1
    elif i + 1 < len(rows) and rows[i + 1][1].strip() == "·":
        extra["organisation"] = normalise_text(rows[i][1])
        i += 1
    if i < len(rows) and rows[i][1].strip() == "·":
        i += 1
    if i < len(rows) and (match := _DATE.match(rows[i][1].strip())):
        extra["date"] = match.group(1)
        extra["year"] = year_from_date(match.group(1))
        i += 1
    return i


# -- structured layouts ------------------------------------------------------------------------


def _record_from_mapping(
    name: str, number: int, row: dict[str, object], max_chars: int
) -> Iterator[ParseResult]:
    """Map arXiv-metadata field names to a `Paper` (and a warning for a dropped link)."""
    abstract = row.get("abstract") or row.get("summary")
    if not isinstance(abstract, str) or not abstract.strip():
        yield Rejection(name, number, "record has no abstract")
        return
    raw_id = str(row.get("id") or "").strip()
    date = str(row.get("update_date") or row.get("published") or row.get("date") or "") or None
    raw_categories = row.get("categories")
    categories = (
        raw_categories.split()
        if isinstance(raw_categories, str)
        else raw_categories
        if isinstance(raw_categories, list)
        else []
    )
    raw_url = str(row.get("url") or "").strip()
    url = checked_url(raw_url) if raw_url else None
    paper = paper_from_row(
        raw_id=raw_id,
        title=str(row.get("title") or ""),
        abstract=abstract,
        source_file=name,
        source_line=number,
        max_abstract_chars=max_chars,
        authors=split_authors(row.get("authors")),
        date=date,
        url=url,
        doi=str(row["doi"]) if row.get("doi") else None,
        categories=tuple(str(c) for c in categories),
    )
    if raw_url and url is None and isinstance(paper, Paper):
        shown = raw_url if len(raw_url) <= _SHOWN_URL_CHARS else raw_url[:_SHOWN_URL_CHARS] + "..."
        yield RecordWarning(
            name, number, f"link {shown!r} dropped: only http:// and https:// links are stored"
        )
    yield paper


def _parse_jsonl(name: str, lines: Iterable[Line], max_chars: int) -> Iterator[ParseResult]:
    """One record a line; a line that is not UTF-8 is rejected whole."""
    for line in lines:
        if line.bad is not None:
            yield not_utf8(name, line.number, line.bad)
            continue
        if not line.text.strip():
            continue
        try:
            row = json.loads(line.text)
        except json.JSONDecodeError as err:
            yield Rejection(name, line.number, f"malformed JSON: {err.msg} (column {err.colno})")
            continue
        if not isinstance(row, dict):
            yield Rejection(name, line.number, f"expected a JSON object, got {type(row).__name__}")
            continue
        yield from _record_from_mapping(name, line.number, row, max_chars)


def _parse_csv(name: str, lines: Iterable[Line], max_chars: int) -> Iterator[ParseResult]:
    """A header row, then one record a row; quoted fields may span lines.

    The reader pulls lines as it needs them, so `reader.line_num` is the last line of the row
    just read. A line that is not UTF-8 is rejected where it comes, and a paper whose title or
    abstract shows it is dropped; the file goes on.
    """
    bad: set[int] = set()
    rejected: list[Rejection] = []  # bad lines the reader pulled since the last yield
    source = iter(lines)

    def feed() -> Iterator[str]:
        for line in source:
            if line.bad is not None:
                bad.add(line.number)
                rejected.append(not_utf8(name, line.number, line.bad))
            yield line.text + "\n"

    def take_rejected() -> Iterator[Rejection]:
        yield from rejected
        rejected.clear()

    delimiter = "\t" if name.lower().endswith(".tsv") else ","
    reader = csv.DictReader(feed(), delimiter=delimiter)
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    yield from take_rejected()
    if "abstract" not in fields:
        yield Rejection(name, 1, f"CSV header has no 'abstract' column (found: {fields})")
    else:
        start = 2
        try:
            for row in reader:
                yield from take_rejected()
                clean = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
                for result in _record_from_mapping(name, start, clean, max_chars):
                    if not (isinstance(result, Paper) and _touches_bad_line(result, bad)):
                        yield result
                start = reader.line_num + 1
        except csv.Error as err:
            yield from take_rejected()
            yield Rejection(name, reader.line_num, f"malformed CSV: {err}")
        yield from take_rejected()
    for line in source:  # after a stop: the rest's bad lines are still reported
        if line.bad is not None:
            yield not_utf8(name, line.number, line.bad)


_TEXT_PARSERS: dict[str, _TextParser] = {
    "abstract-lines": _parse_abstract_lines,
    "alternating": _parse_alternating,
    "listing": _parse_listing,
}
