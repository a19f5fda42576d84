"""Ingest-time record filters (`ingest.selection`): categories, dates, limit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from ingest.records import Paper, RecordWarning, Rejection
from ingest.selection import Selection, Selector, parse_category, parse_day, record_date


def _paper(n: int, categories: str = "cs.CL", date: str | None = "2023-05-06") -> Paper:
    return Paper(
        paper_id=f"arxiv:2301.{n:05d}",
        title=f"T{n}",
        abstract=f"A{n}.",
        source_file="f.json",
        source_line=n,
        categories=tuple(categories.split()),
        date=date,
    )


def _kept(selection: Selection, papers: list[Paper]) -> list[int]:
    return [p.source_line for p in papers if selection.matches(p)]


def test_category_matches_any_of_a_records_categories_without_case() -> None:
    papers = [_paper(1, "cs.LG cs.CL"), _paper(2, "cs.LG"), _paper(3, "CS.cl")]
    assert _kept(Selection(categories=("cs.CL",)), papers) == [1, 3]
    assert _kept(Selection(categories=("cs.CL", "cs.LG")), papers) == [1, 2, 3]


def test_archive_without_a_dot_matches_its_categories_and_not_a_longer_archive() -> None:
    papers = [
        _paper(1, "cs.CL"),
        _paper(2, "math.GT"),
        _paper(3, "hep-th"),
        _paper(4, "hep-ph"),
        _paper(5, "csx.AI"),
    ]
    assert _kept(Selection(categories=("cs",)), papers) == [1]
    assert _kept(Selection(categories=("hep-th",)), papers) == [3]
    assert _kept(Selection(categories=("cs.C",)), papers) == []  # a category is matched whole


def test_since_and_until_are_inclusive_days() -> None:
    papers = [_paper(i, date=d) for i, d in enumerate(["2022-12-31", "2023-01-01", "2023-06-30"])]
    since = Selection(since=dt.date(2023, 1, 1))
    until = Selection(until=dt.date(2023, 1, 1))
    assert _kept(since, papers) == [1, 2]
    assert _kept(until, papers) == [0, 1]
    assert _kept(Selection(since=dt.date(2023, 1, 1), until=dt.date(2023, 1, 1)), papers) == [1]


def test_record_without_an_iso_date_does_not_match_a_date_filter() -> None:
    papers = [_paper(1, date=None), _paper(2, date="Sep 30"), _paper(3, date="2023-02-30")]
    assert _kept(Selection(since=dt.date(2000, 1, 1)), papers) == []
    assert _kept(Selection(), papers) == [1, 2, 3]
    assert record_date(_paper(4, date="2023-02-03")) == dt.date(2023, 2, 3)


def test_limit_stops_reading_after_that_many_matching_records() -> None:
    read: list[int] = []

    def records() -> Iterator[Paper]:
        for n in range(100):
            read.append(n)
            yield _paper(n, "cs.CL" if n % 2 else "math.GT")

    selector = Selector(Selection(categories=("cs.CL",), limit=3))
    kept = list(selector.apply(records()))
    assert [p.source_line for p in kept if isinstance(p, Paper)] == [1, 3, 5]
    assert read == list(range(6))  # nothing read past the third match
    assert (selector.kept, selector.filtered) == (3, 3)


def test_rejections_pass_and_warnings_go_with_their_paper() -> None:
    bad = Rejection("f.json", 9, "malformed JSON")
    records = [
        RecordWarning("f.json", 1, "link dropped"),
        _paper(1, "math.GT"),
        bad,
        RecordWarning("f.json", 2, "link dropped"),
        _paper(2, "cs.CL"),
    ]
    out = list(Selector(Selection(categories=("cs",))).apply(records))
    assert out == [bad, records[3], records[4]]


def test_bad_flag_values_say_what_is_expected() -> None:
    assert parse_category(" cs.CL ") == "cs.CL"
    for bad in ("", "cs..CL", "cs.CL,cs.LG", "2301"):
        with pytest.raises(ValueError, match="not an arXiv category; expected e.g. cs.CL"):
            parse_category(bad)
    assert parse_day("2023-01-31", "--since") == dt.date(2023, 1, 31)
    for bad in ("2023-02-30", "2023-1-5", "31/01/2023", "2023-01-31T00:00"):
        with pytest.raises(ValueError, match="is not a day; expected YYYY-MM-DD"):
            parse_day(bad, "--until")
    with pytest.raises(ValueError, match="--since 2024-01-01 is after --until 2023-01-01"):
        Selection(since=dt.date(2024, 1, 1), until=dt.date(2023, 1, 1))
    with pytest.raises(ValueError, match="--limit must be at least 1"):
        Selection(limit=0)
    assert not Selection().active and Selection(limit=5).active
