"""JSON lines and CSV are parsed as they are read, in bounded memory, with exact file:line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from ingest.parsers import parse_file
from ingest.records import Paper, Rejection
from tests.fixtures.arxiv_snapshot import excerpt_lines

ROWS = 3_000  # about 400 KB: several times the bytes read to detect the layout
BAD_ROWS = (1_200, 2_500)  # 0-based record numbers whose abstract is written in Latin-1
LATIN_E = b"\xe9"  # "é" in Latin-1: never valid UTF-8 on its own


def _row(i: int) -> dict[str, str]:
    return {
        "id": f"2401.{i:05d}",
        "title": f"Paper number {i}",
        "abstract": f"Record {i} studies caf\u00e9 graphs and their {i % 7} colourings. " * 2,
    }


def _write(path: Path, bad_rows: tuple[int, ...] = ()) -> Path:
    """Write ROWS records as JSON lines or CSV (by suffix); `bad_rows` in Latin-1."""
    rows = [_row(i) for i in range(ROWS)]
    if path.suffix == ".csv":
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["id", "title", "abstract"])
            writer.writeheader()
            writer.writerows(rows)
        lines = path.read_bytes().split(b"\r\n")
        offset = 1  # the header
    else:
        lines = [json.dumps(row, ensure_ascii=False).encode() for row in rows] + [b""]
        offset = 0
    for i in bad_rows:
        lines[i + offset] = lines[i + offset].decode().encode("latin-1")
    path.write_bytes(b"\n".join(lines))
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_first_paper_arrives_before_the_whole_file_is_read(tmp_path: Path, suffix: str) -> None:
    path = _write(tmp_path / f"papers{suffix}")
    size = path.stat().st_size
    counted: list[int] = []
    read_at_first_paper = None
    for result in parse_file(path, on_bytes=counted.append):
        if isinstance(result, Paper) and read_at_first_paper is None:
            read_at_first_paper = sum(counted)
    assert read_at_first_paper is not None
    assert 0 < read_at_first_paper < size // 10  # a few lines in, not the whole file
    assert sum(counted) == size  # every byte reported once, for the progress bar


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_bad_utf8_lines_mid_file_are_rejected_in_place_and_the_rest_lands(
    tmp_path: Path, suffix: str
) -> None:
    path = _write(tmp_path / f"papers{suffix}", BAD_ROWS)
    first = 2 if suffix == ".csv" else 1  # the line of record 0
    raw_lines = path.read_bytes().split(b"\n")
    expected = [
        f"{path}:{i + first}: not valid UTF-8 (byte 0xe9 at column "
        f"{raw_lines[i + first - 1].index(LATIN_E) + 1}); re-save the file as UTF-8"
        for i in BAD_ROWS
    ]

    results = list(parse_file(path))

    rejections = [r for r in results if isinstance(r, Rejection)]
    assert [str(r) for r in rejections] == expected
    papers = [r for r in results if isinstance(r, Paper)]
    assert [p.source_line for p in papers] == [i + first for i in range(ROWS) if i not in BAD_ROWS]
    for rejection in rejections:  # in file order: right after the paper on the line before
        before = results[results.index(rejection) - 1]
        assert isinstance(before, Paper) and before.source_line == rejection.source_line - 1


def test_jsonl_line_not_utf8_outside_title_and_abstract_stores_nothing(tmp_path: Path) -> None:
    path = tmp_path / "papers.jsonl"
    good = {"id": "2401.00001", "title": "Fine", "abstract": "Fine."}
    latin = {"id": "2401.00002", "title": "T", "abstract": "A.", "authors": "Ren\u00e9 Thom"}
    bad_line = json.dumps(latin, ensure_ascii=False).encode("latin-1")
    path.write_bytes(json.dumps(good).encode() + b"\n" + bad_line + b"\n")
    results = list(parse_file(path))
    assert [type(r) for r in results] == [Paper, Rejection]
    assert str(results[1]) == (
        f"{path}:2: not valid UTF-8 (byte 0xe9 at column {bad_line.index(LATIN_E) + 1}); "
        "re-save the file as UTF-8"
    )


def test_quoted_multiline_csv_fields_keep_file_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "papers.csv"
    path.write_bytes(
        b"id,title,abstract\n"  # line 1
        b'2401.00001,One,"First line,\nsecond line,\nthird line."\n'  # lines 2-4
        b"2401.00002,Two,Single line.\n"  # line 5
        b"2401.00003,Three,\n"  # line 6: no abstract
        b'2401.00004,"Four,\nwith a split title","Caf\xe9 on line 8,\nthen line 9."\n'  # 7-9
        b'2401.00005,Five,"Two\r\nlines."\r\n'  # lines 10-11, CRLF
        b"2401.00006,Six,Last.\n"  # line 12
    )
    results = list(parse_file(path))
    assert [str(r) for r in results if isinstance(r, Rejection)] == [
        f"{path}:6: record has no abstract",
        f"{path}:8: not valid UTF-8 (byte 0xe9 at column 25); re-save the file as UTF-8",
    ]
    papers = [r for r in results if isinstance(r, Paper)]
    assert [(p.paper_id, p.source_line) for p in papers] == [
        ("arxiv:2401.00001", 2),
        ("arxiv:2401.00002", 5),
        ("arxiv:2401.00005", 10),
        ("arxiv:2401.00006", 12),
    ]
    assert papers[0].abstract == "First line, second line, third line."
    assert papers[2].abstract == "Two lines."


def test_snapshot_whose_first_record_is_longer_than_the_head_is_still_a_snapshot(
    tmp_path: Path,
) -> None:
    lines, expected = excerpt_lines()
    first = json.loads(lines[0])
    first["abstract"] += " padding" * 20_000  # about 160 KB: past the bytes looked at first
    path = tmp_path / "dump.jsonl"
    path.write_text("\n".join([json.dumps(first), *lines[1:3]]) + "\n", encoding="utf-8")
    papers = [r for r in parse_file(path, max_abstract_chars=1_000_000) if isinstance(r, Paper)]
    assert [p.date for p in papers] == [e.first_date for e in expected[:3]]  # versions[0]


def test_csv_without_abstract_column_still_lists_its_bad_lines_and_is_read_to_the_end(
    tmp_path: Path,
) -> None:
    path = tmp_path / "papers.csv"
    path.write_bytes(b"id,title,summary_text\n1,One,Fine.\n2,Caf\xe9,Bad.\n3,Three,Fine.\n")
    counted: list[int] = []
    assert [str(r) for r in parse_file(path, on_bytes=counted.append)] == [
        f"{path}:1: CSV header has no 'abstract' column (found: ['id', 'title', 'summary_text'])",
        f"{path}:3: not valid UTF-8 (byte 0xe9 at column 6); re-save the file as UTF-8",
    ]
    assert sum(counted) == path.stat().st_size


def test_blank_head_then_a_record_is_not_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "padded.jsonl"
    path.write_bytes(b"  \n" * 40_000 + json.dumps(_row(7)).encode() + b"\n")  # 120 KB blank
    [paper] = parse_file(path)
    assert isinstance(paper, Paper)
    assert (paper.paper_id, paper.source_line) == ("arxiv:2401.00007", 40_001)


def test_whitespace_file_longer_than_the_head_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_bytes(b"  \n" * 40_000)  # 120 KB of blanks
    counted: list[int] = []
    assert [str(r) for r in parse_file(path, on_bytes=counted.append)] == [
        f"{path}:0: file is empty"
    ]
    assert sum(counted) == path.stat().st_size
