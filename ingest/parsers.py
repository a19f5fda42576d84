"""Read abstract files of any supported layout into `Paper` records and `Rejection`s.

Supported, detected automatically:

* `abstract-lines`: one `Abstract:<text>` per line, no titles (sample corpus layout 1).
* `listing`: a paper-listing page dump: title, blank, abstract, then an optional trailer
  (`  • 5 authors` or an organisation line, `·`, a date) (layout 2).
* `alternating`: two header lines, then title and abstract lines alternating; the first
  title is glued to `Subscribe` (layout 3).
* `arxiv-snapshot`: the arXiv metadata snapshot (JSON lines), recognised by name or by its
  first object's fields and streamed line by line (`ingest.arxiv`); other files are read
  whole (they are small).
* `jsonl` and `csv`: arXiv metadata field names (`id`, `title`, `abstract`, `authors`,
  `categories`, `update_date`/`published`, optional `url`/`doi`).

Nothing here raises on bad input: every problem becomes a `Rejection` with `file:line`, and
anything dropped from a record that is still stored (a link that is not http(s)) a
`RecordWarning` yielded just before its `Paper`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.arxiv import is_snapshot, parse_snapshot
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
_HEAD_BYTES = 1 << 16  # read to detect a streamed layout

ParseResult = Paper | Rejection | RecordWarning


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

    Args:
        path: The file.
        max_abstract_chars: Longer abstracts are rejected.
        on_bytes: Called with the number of bytes read, as they are read (for progress).
    """
    name = str(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEAD_BYTES)
        if head.strip() and b"\x00" not in head and is_snapshot(name, _head_lines(head)):
            yield from parse_snapshot(
                path, max_abstract_chars=max_abstract_chars, on_bytes=on_bytes
            )
            return
        raw = path.read_bytes()
    except OSError as err:
        yield Rejection(name, 0, f"cannot read file: {err.strerror or err}")
        return
    if on_bytes is not None:
        on_bytes(len(raw))
    if not raw.strip():
        yield Rejection(name, 0, "file is empty")
        return
    if b"\x00" in raw[:8192]:
        yield Rejection(name, 0, "binary file (contains NUL bytes); expected text, JSONL or CSV")
        return
    text = _decode(raw)
    layout = detect_layout(path, text.lines)
    if layout == "arxiv-snapshot":  # its first object lies past the bytes looked at above
        yield from parse_snapshot(path, max_abstract_chars=max_abstract_chars)
        return
    for line_no, detail in text.bad_lines.items():
        yield Rejection(name, line_no, f"not valid UTF-8 ({detail}); re-save the file as UTF-8")
    parser = _PARSERS[layout]
    for result in parser(name, text.lines, max_abstract_chars):
        if isinstance(result, Paper) and _touches_bad_line(result, text):
            continue  # already reported as a Rejection above
        yield result


def _head_lines(head: bytes) -> list[str]:
    """The whole lines of a file's first bytes, decoded leniently (for detection only)."""
    lines = head.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    if len(head) == _HEAD_BYTES:
        lines.pop()  # cut off part-way
    return [line.decode("utf-8", errors="replace") for line in lines]


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


def _decode(raw: bytes) -> _Text:
    """Decode line by line so one bad byte costs one line, not the file."""
    lines: list[str] = []
    bad: dict[int, str] = {}
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        chunk = chunk.rstrip(b"\r")
        try:
            lines.append(chunk.decode("utf-8"))
        except UnicodeDecodeError as err:
            bad[number] = f"byte 0x{chunk[err.start]:02x} at column {err.start + 1}"
            lines.append(chunk.decode("utf-8", errors="replace"))
    if lines and lines[-1] == "":
        lines.pop()
    return _Text(lines, bad)


def _touches_bad_line(paper: Paper, text: _Text) -> bool:
    return any(paper.source_line <= n <= paper.source_line + 3 for n in text.bad_lines) and (
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


def _parse_jsonl(name: str, lines: list[str], max_chars: int) -> Iterator[ParseResult]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            yield Rejection(name, number, f"malformed JSON: {err.msg} (column {err.colno})")
            continue
        if not isinstance(row, dict):
            yield Rejection(name, number, f"expected a JSON object, got {type(row).__name__}")
            continue
        yield from _record_from_mapping(name, number, row, max_chars)


def _parse_csv(name: str, lines: list[str], max_chars: int) -> Iterator[ParseResult]:
    delimiter = "\t" if name.lower().endswith(".tsv") else ","
    reader = csv.DictReader(io.StringIO("\n".join(lines) + "\n"), delimiter=delimiter)
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if "abstract" not in fields:
        yield Rejection(name, 1, f"CSV header has no 'abstract' column (found: {fields})")
        return
    start = 2
    try:
        for row in reader:
            clean = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
            yield from _record_from_mapping(name, start, clean, max_chars)
            start = reader.line_num + 1
    except csv.Error as err:
        yield Rejection(name, reader.line_num, f"malformed CSV: {err}")


_PARSERS = {
    "abstract-lines": _parse_abstract_lines,
    "alternating": _parse_alternating,
    "listing": _parse_listing,
    "jsonl": _parse_jsonl,
    "csv": _parse_csv,
}
