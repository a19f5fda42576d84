r"""The arXiv metadata snapshot (`arxiv-metadata-oai-snapshot.json`), read as a stream.

The snapshot is JSON lines although its name ends in `.json`: one object per line with the
fields `id`, `submitter`, `authors`, `title`, `comments`, `journal-ref`, `doi`, `categories`,
`license`, `abstract`, `versions`, `update_date` and `authors_parsed`; about 2.7 million lines
and 4.5 GB. It is read a line at a time, never whole, so memory does not grow with the file.

A file is a snapshot when its name is `arxiv-metadata-oai-snapshot*.json`, or, whatever its
name, when the first JSON object in it has `id`, `abstract` and `versions` or
`authors_parsed` (fields only the snapshot carries; `ingest.parsers` reads other JSON lines).

Mapping to `Paper`:

* id: `arxiv:<id>` through `records.parse_arxiv_id` (new `2301.01234` and old `hep-th/9901001`
  ids); a line whose id is not an arXiv one keeps it as a `src:` id, as other files do;
* date: the first version's submission date (`versions[0].created`) as YYYY-MM-DD, else
  `update_date`; year from it. `--since` / `--until` compare this date (`ingest.selection`);
* authors: `authors_parsed` ([last, first, suffix] each) as "First Last Suffix", else the
  `authors` string split on commas and `and`;
* title and abstract: LaTeX spacing (`~` between words, `\\`, `\,`, `\ `, `\quad`) becomes a
  space, then whitespace is collapsed (abstracts span several indented lines);
* categories split on spaces; `doi`; the link is the abstract page.

A bad line (not UTF-8, not JSON, not an object, no id, no abstract) is a `Rejection` with
`file:line: reason`; the other lines are still read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

from ingest.lines import not_utf8, read_lines
from ingest.records import (
    Paper,
    Rejection,
    paper_from_row,
    split_authors,
)

SNAPSHOT_NAME = re.compile(r"arxiv-metadata-oai-snapshot.*\.json", re.IGNORECASE)
HEAD_LINES = 20  # lines looked at to find the first JSON object when detecting
_LATEX_SPACE = re.compile(r"\\\\|\\newline\b|\\q?quad\b|\\[,;: ]|(?<=\S)~(?=\S)")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def looks_like_snapshot(row: object) -> bool:
    """True for a JSON object with the arXiv snapshot's own fields."""
    return (
        isinstance(row, dict)
        and "id" in row
        and "abstract" in row
        and ("versions" in row or "authors_parsed" in row)
    )


def is_snapshot(name: str, lines: Iterable[str]) -> bool:
    """True when the file is an arXiv snapshot, by name or by its first JSON object."""
    if SNAPSHOT_NAME.fullmatch(Path(name).name):
        return True
    for count, line in enumerate(lines):
        if count >= HEAD_LINES:
            break
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a malformed first line: look at the next one
        return looks_like_snapshot(row)
    return False


def parse_snapshot(
    path: Path,
    *,
    max_abstract_chars: int,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[Paper | Rejection]:
    """Read a snapshot line by line into papers and `file:line` rejections.

    Args:
        path: The snapshot file.
        max_abstract_chars: Longer abstracts are rejected.
        on_bytes: Called with each line's size in bytes once it is read (progress).
    """
    name = str(path)
    for line in read_lines(path, on_bytes):
        if not line.text.strip():
            continue
        if line.bad is not None:
            yield not_utf8(name, line.number, line.bad)
            continue
        yield _record(name, line.number, line.text, max_abstract_chars)


def _record(name: str, number: int, text: str, max_chars: int) -> Paper | Rejection:
    """One snapshot line as a `Paper`, or the `Rejection` saying why not."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        return Rejection(name, number, f"malformed JSON: {err.msg} (column {err.colno})")
    if not isinstance(row, dict):
        return Rejection(name, number, f"expected a JSON object, got {type(row).__name__}")
    raw_id = str(row.get("id") or "").strip()
    if not raw_id:
        return Rejection(name, number, "snapshot record has no 'id'")
    abstract = row.get("abstract")
    if not isinstance(abstract, str) or not abstract.strip():
        return Rejection(name, number, f"{raw_id}: record has no abstract")
    categories = row.get("categories")
    return paper_from_row(
        raw_id=raw_id,
        title=latex_spacing(str(row.get("title") or "")),
        abstract=latex_spacing(abstract),
        source_file=name,
        source_line=number,
        max_abstract_chars=max_chars,
        authors=_authors(row),
        date=first_version_date(row),
        url=None,
        doi=str(row.get("doi") or "").strip() or None,
        categories=tuple(categories.split()) if isinstance(categories, str) else (),
    )


def latex_spacing(text: str) -> str:
    """Turn LaTeX spacing commands and ties into plain spaces (whitespace is collapsed later)."""
    return _LATEX_SPACE.sub(" ", text)


def first_version_date(row: dict[str, object]) -> str | None:
    """The first version's date as YYYY-MM-DD, else `update_date`, else None."""
    versions = row.get("versions")
    if isinstance(versions, list) and versions and isinstance(versions[0], dict):
        created = versions[0].get("created")
        if isinstance(created, str):
            try:
                return parsedate_to_datetime(created).date().isoformat()
            except (TypeError, ValueError):
                pass  # an unreadable date: fall back to update_date
    updated = row.get("update_date")
    if isinstance(updated, str) and _ISO_DATE.match(updated.strip()):
        return updated.strip()[:10]
    return None


def _authors(row: dict[str, object]) -> tuple[str, ...]:
    """`authors_parsed` as "First Last Suffix" names, else the `authors` string split."""
    parsed = row.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        names = []
        for entry in parsed:
            if isinstance(entry, list) and entry:
                last, first, *rest = [str(part).strip() for part in entry] + [""]
                name = " ".join(p for p in (first, last, *rest) if p)
                if name:
                    names.append(latex_spacing(name))
        if names:
            return split_authors(names)
    return split_authors(row.get("authors"))
