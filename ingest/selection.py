"""Which records an ingest keeps: categories, a date range and a count.

`paperchat ingest`'s `--category`, `--since`, `--until` and `--limit`:

* A category filter matches a record when any of its categories is one of them, compared
  without case: `cs.CL` matches `cs.CL`; a name without a dot matches a whole archive, `cs`
  matching `cs.CL`, `cs.LG`, ... (and `hep-th` matching `hep-th`, not `hep-ph`).
* `since` / `until` (inclusive) compare a record's date as YYYY-MM-DD: for the arXiv
  snapshot its first version's submission date, else `update_date` (`ingest.arxiv`); for
  other files their `update_date`/`published`. A record without such a date does not match
  a date filter.
* `limit` stops reading once that many records have matched (before duplicates and stored
  papers are sorted out): `--limit 1000` reads the first 1,000 matching records of a file.

Rejected lines pass through (they are reported whatever the filters); a warning about a record
that is filtered out is dropped with it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ingest.records import Paper, RecordWarning, Rejection

_CATEGORY = re.compile(r"[a-z][a-z-]*(\.[a-z][a-z-]*)?", re.IGNORECASE)
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")

Record = Paper | Rejection | RecordWarning


def parse_category(text: str) -> str:
    """Check one `--category` value (`cs.CL`, `cs`, `hep-th`); raise ValueError if malformed."""
    value = text.strip()
    if not _CATEGORY.fullmatch(value):
        raise ValueError(
            f"{text!r} is not an arXiv category; expected e.g. cs.CL, math.GT, hep-th, "
            "or an archive such as cs"
        )
    return value


def parse_day(text: str, flag: str) -> dt.date:
    """Check a `--since` / `--until` value (YYYY-MM-DD); raise ValueError saying what is wrong."""
    if _ISO_DATE.fullmatch(text.strip()):
        try:
            return dt.date.fromisoformat(text.strip())
        except ValueError:
            pass  # e.g. 2023-02-30
    raise ValueError(f"{flag} {text!r} is not a day; expected YYYY-MM-DD, e.g. 2023-01-31")


def record_date(paper: Paper) -> dt.date | None:
    """The record's date when it is YYYY-MM-DD (or starts so), else None."""
    match = _ISO_DATE.match(paper.date or "")
    if not match:
        return None
    try:
        return dt.date(*map(int, match.groups()))
    except ValueError:
        return None


@dataclass(frozen=True)
class Selection:
    """What to keep of the records read.

    Attributes:
        categories: Keep records with any of these categories or archives (all when empty).
        since: Keep records dated on or after this day.
        until: Keep records dated on or before this day.
        limit: Stop after this many records matched (None: no limit).
    """

    categories: tuple[str, ...] = ()
    since: dt.date | None = None
    until: dt.date | None = None
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.since and self.until and self.since > self.until:
            raise ValueError(f"--since {self.since} is after --until {self.until}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be at least 1, got {self.limit}")

    @property
    def active(self) -> bool:
        """True when something is filtered or limited."""
        return bool(self.categories or self.since or self.until or self.limit is not None)

    def matches(self, paper: Paper) -> bool:
        """True when `paper` passes the category and date filters (the limit aside)."""
        if self.categories and not any(
            _category_matches(have, want) for have in paper.categories for want in self.categories
        ):
            return False
        if self.since or self.until:
            day = record_date(paper)
            if day is None:
                return False
            if (self.since and day < self.since) or (self.until and day > self.until):
                return False
        return True


def _category_matches(have: str, want: str) -> bool:
    have, want = have.lower(), want.lower()
    return have == want or ("." not in want and have.startswith(want + "."))


class Selector:
    """Applies a `Selection` to a stream of records and counts what it filtered out."""

    def __init__(self, selection: Selection) -> None:
        self.selection = selection
        self.filtered = 0  # papers that did not match
        self.kept = 0  # papers that matched (at most `limit`)

    def apply(self, records: Iterable[Record]) -> Iterator[Record]:
        """Yield rejections, and the papers that match with their warnings, up to the limit."""
        limit = self.selection.limit
        pending: list[RecordWarning] = []  # warnings come just before their paper
        for record in records:
            if isinstance(record, RecordWarning):
                pending.append(record)
            elif isinstance(record, Rejection):
                yield record
            elif self.selection.matches(record):
                yield from pending
                pending.clear()
                yield record
                self.kept += 1
                if limit is not None and self.kept >= limit:
                    return
            else:
                pending.clear()
                self.filtered += 1
