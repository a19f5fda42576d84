"""Reading the arXiv metadata snapshot: mapping, rejects, detection by name and by content."""

from __future__ import annotations

import json
from pathlib import Path

from ingest.arxiv import first_version_date
from ingest.parsers import detect_layout, parse_file
from ingest.records import Paper, Rejection
from tests.fixtures.arxiv_snapshot import (
    EXCERPT_GOOD,
    MALFORMED_LINE,
    NO_ABSTRACT_LINE,
    excerpt_lines,
    write_excerpt,
)


def _papers(path: Path) -> list[Paper]:
    return [r for r in parse_file(path) if isinstance(r, Paper)]


def test_excerpt_stores_every_good_line_and_rejects_the_two_bad_ones(tmp_path: Path) -> None:
    path = write_excerpt(tmp_path / "arxiv-metadata-oai-snapshot.json")
    results = list(parse_file(path))
    papers = [r for r in results if isinstance(r, Paper)]
    rejected = [str(r) for r in results if isinstance(r, Rejection)]
    assert [(p.source_line, p.paper_id) for p in papers] == [
        (e.line, e.paper_id) for e in EXCERPT_GOOD
    ]
    assert len(papers) == 28
    assert rejected[0].startswith(f"{path}:{MALFORMED_LINE}: malformed JSON")
    assert rejected[1] == f"{path}:{NO_ABSTRACT_LINE}: 2206.10017: record has no abstract"
    assert len(rejected) == 2


def test_old_and_new_style_ids_become_arxiv_ids(tmp_path: Path) -> None:
    ids = {p.paper_id for p in _papers(write_excerpt(tmp_path / "s.json"))}
    for expected in (
        "arxiv:hep-th/9901001",
        "arxiv:math.GT/0309136",
        "arxiv:cond-mat/0102536",
        "arxiv:0704.0001",
        "arxiv:2301.01234",
    ):
        assert expected in ids
    [old] = [p for p in _papers(tmp_path / "s.json") if p.paper_id == "arxiv:hep-th/9901001"]
    assert old.url == "https://arxiv.org/abs/hep-th/9901001"


def test_date_and_year_come_from_the_first_version(tmp_path: Path) -> None:
    papers = _papers(write_excerpt(tmp_path / "s.json"))
    assert [p.date for p in papers] == [e.first_date for e in EXCERPT_GOOD]
    assert [p.year for p in papers] == [int(e.first_date[:4]) for e in EXCERPT_GOOD]
    several = [e for e in EXCERPT_GOOD if e.first_date[:4] != e.update_date[:4]]
    assert several  # the excerpt has papers revised in a later year: the dates differ


def test_date_falls_back_to_update_date_without_versions() -> None:
    assert first_version_date({"versions": [], "update_date": "2021-03-04"}) == "2021-03-04"
    assert first_version_date({"versions": [{"created": "garbled"}], "update_date": "2020-01-02"})
    assert first_version_date({}) is None


def test_authors_come_from_authors_parsed_else_from_the_authors_string(tmp_path: Path) -> None:
    lines, _ = excerpt_lines()
    row = json.loads(lines[0])
    first = _papers(write_excerpt(tmp_path / "s.json"))[0]
    assert first.authors == ("A. Author0", "B. Writer0", "C. Coauthor0 Jr")
    assert first.author_count == 3
    del row["authors_parsed"]
    row["authors"] = "Ann Lee, Bo Chan and Cy Diaz"
    (tmp_path / "t.json").write_text(json.dumps(row) + "\n", encoding="utf-8")
    [paper] = _papers(tmp_path / "t.json")
    assert paper.authors == ("Ann Lee", "Bo Chan", "Cy Diaz")


def test_multi_line_latex_abstract_becomes_one_clean_line(tmp_path: Path) -> None:
    papers = _papers(write_excerpt(tmp_path / "s.json"))
    first = papers[0]
    assert first.abstract == (
        "We study string dualities in setting 0. As shown in Fig. 1, the effect scales as "
        "$O(n^{1})$ with size. Our results, with $0\\times 10^{0}$ samples, hold for case 0."
    )
    assert first.title == "On string dualities: study number 0"
    for paper in papers:
        assert "\n" not in paper.abstract and "  " not in paper.abstract
        assert "~" not in paper.abstract and "\\," not in paper.abstract
    assert papers[1].categories == ("math.GT", "math.AG")


def test_snapshot_is_recognised_by_its_fields_whatever_its_name(tmp_path: Path) -> None:
    lines, _ = excerpt_lines()
    for name in ("dump.txt", "export.jsonl", "metadata"):
        path = write_excerpt(tmp_path / name)
        assert detect_layout(path, lines) == "arxiv-snapshot"
        assert _papers(path)[0].date == EXCERPT_GOOD[0].first_date  # the snapshot mapping
    plain = tmp_path / "plain.jsonl"
    plain.write_text('{"id": "2401.00001", "title": "T", "abstract": "A."}\n', encoding="utf-8")
    assert detect_layout(plain, plain.read_text().splitlines()) == "jsonl"


def test_snapshot_is_recognised_past_a_malformed_first_line(tmp_path: Path) -> None:
    lines, _ = excerpt_lines()
    path = tmp_path / "dump.txt"
    path.write_text("\n".join(['{"id": "cut', *lines[:3]]) + "\n", encoding="utf-8")
    results = list(parse_file(path))
    assert str(results[0]).startswith(f"{path}:1: malformed JSON")
    papers = [r for r in results[1:] if isinstance(r, Paper)]
    assert [p.date for p in papers] == [e.first_date for e in EXCERPT_GOOD[:3]]
    assert papers[2].authors[2] == "C. Coauthor2 Jr"  # from authors_parsed


def test_snapshot_named_file_is_a_snapshot_even_when_every_line_is_bad(tmp_path: Path) -> None:
    path = tmp_path / "arxiv-metadata-oai-snapshot.json"
    path.write_bytes(b'{"id": "x\n[1, 2]\n\xff\xfe{}\n')
    assert [str(r).split(": ", 1)[1] for r in parse_file(path)] == [
        "malformed JSON: Unterminated string starting at (column 8)",
        "expected a JSON object, got list",
        "not valid UTF-8 (byte 0xff at column 1); re-save the file as UTF-8",
    ]


def test_bytes_read_are_reported_as_the_file_is_read(tmp_path: Path) -> None:
    path = write_excerpt(tmp_path / "s.json")
    counted: list[int] = []
    seen_before_first_paper = None
    for result in parse_file(path, on_bytes=counted.append):
        if isinstance(result, Paper) and seen_before_first_paper is None:
            seen_before_first_paper = sum(counted)
    assert sum(counted) == path.stat().st_size
    assert seen_before_first_paper is not None
    assert 0 < seen_before_first_paper < path.stat().st_size  # streamed, not read whole
