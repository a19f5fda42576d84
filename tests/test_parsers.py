from __future__ import annotations

import json
from pathlib import Path

from ingest.parsers import detect_layout, iter_input_files, parse_file
from ingest.records import Paper, Rejection, stable_paper_id
from tests.fixtures.store import SAMPLE_DIR

LISTING = SAMPLE_DIR / "001_c27be85cfd4c818d.txt"
ALTERNATING = SAMPLE_DIR / "004_c8ca838bc6f74af2.txt"
ABSTRACT_LINES = SAMPLE_DIR / "000_b88acd2dcdba4c29.txt"


def _papers(path: Path, **kw: int) -> list[Paper]:
    return [r for r in parse_file(path, **kw) if isinstance(r, Paper)]


def _rejections(path: Path, **kw: int) -> list[Rejection]:
    return [r for r in parse_file(path, **kw) if isinstance(r, Rejection)]


def test_sample_corpus_parses_to_454_entries_and_445_unique_papers_without_rejections() -> None:
    results = [r for f in iter_input_files([SAMPLE_DIR]) for r in parse_file(f)]
    assert [r for r in results if isinstance(r, Rejection)] == []
    assert len(results) == 454
    assert len({r.paper_id for r in results if isinstance(r, Paper)}) == 445


def test_folder_expands_to_its_text_files_sorted_without_readme() -> None:
    files = list(iter_input_files([SAMPLE_DIR]))
    assert [f.name for f in files] == sorted(f.name for f in SAMPLE_DIR.glob("*.txt"))


def test_each_sample_layout_is_detected() -> None:
    layouts = {
        f.name: detect_layout(f, f.read_text(encoding="utf-8").splitlines())
        for f in (ABSTRACT_LINES, LISTING, ALTERNATING)
    }
    assert layouts == {
        ABSTRACT_LINES.name: "abstract-lines",
        LISTING.name: "listing",
        ALTERNATING.name: "alternating",
    }


def test_untitled_abstract_lines_become_papers_with_a_display_title() -> None:
    papers = _papers(ABSTRACT_LINES)
    assert len(papers) == 6
    assert papers[0].title == ""
    assert papers[0].display_title.startswith("Untitled: TaskGen is an open-sourced")
    assert papers[0].paper_id.startswith("p:")


def test_listing_entries_carry_author_count_date_and_integer_year() -> None:
    first = _papers(LISTING)[0]
    assert first.title == "Sensitivity-Aware Visual Parameter-Efficient Fine-Tuning"
    assert (first.source_line, first.author_count, first.date, first.year) == (
        13,
        5,
        "Mar 15, 2023",
        2023,
    )


def test_listing_entries_with_organisation_or_no_trailer_still_parse() -> None:
    papers = {p.source_line: p for p in _papers(LISTING)}
    with_org = papers[501]
    assert with_org.title.startswith("MixtureVitae")
    assert (with_org.organisation, with_org.date, with_org.year) == (
        "ontocord Ontocord.AI",
        "Sep 29",
        None,
    )
    bare = papers[381]
    assert bare.title.startswith("Energy-Based Transformers")
    assert (bare.date, bare.author_count, bare.organisation) == (None, None, None)


def test_first_alternating_title_is_unglued_from_subscribe() -> None:
    papers = _papers(ALTERNATING)
    assert papers[0].title.startswith("MotionAGFormer: Enhancing 3D Human Pose Estimation")
    assert papers[0].source_line == 3
    assert papers[1].title == "Diversity-Aware Meta Visual Prompting"


def test_same_paper_with_other_spacing_and_case_gets_the_same_id() -> None:
    one = stable_paper_id("Deep  Learning", "We  study nets.")
    two = stable_paper_id("deep learning", "We study nets!")
    assert one == two
    assert stable_paper_id("t", "a", arxiv_id="2401.00001") == "arxiv:2401.00001"


def test_jsonl_with_arxiv_field_names(tmp_path: Path) -> None:
    path = tmp_path / "papers.jsonl"
    row = {
        "id": "2401.01234",
        "title": "A  Title",
        "abstract": "Some abstract.",
        "authors": "Ann Lee, Bo Chen and Cy Dee",
        "categories": "cs.CL cs.LG",
        "update_date": "2024-01-05",
    }
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    [paper] = _papers(path)
    assert paper.paper_id == "arxiv:2401.01234"
    assert paper.title == "A Title"
    assert paper.authors == ("Ann Lee", "Bo Chen", "Cy Dee")
    assert (paper.author_count, paper.year, paper.date) == (3, 2024, "2024-01-05")
    assert paper.categories == ("cs.CL", "cs.LG")
    assert paper.url == "https://arxiv.org/abs/2401.01234"


def test_csv_with_arxiv_field_names_reports_data_row_lines(tmp_path: Path) -> None:
    path = tmp_path / "papers.csv"
    path.write_text(
        'id,title,abstract,published\n2401.00001,First,"One, with comma.",2023-02-01\n'
        "2401.00002,Second,,2023\n",
        encoding="utf-8",
    )
    results = list(parse_file(path))
    assert isinstance(results[0], Paper)
    assert (results[0].abstract, results[0].year, results[0].source_line) == (
        "One, with comma.",
        2023,
        2,
    )
    assert str(results[1]) == f"{path}:3: record has no abstract"


def test_empty_file_is_one_rejection(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_bytes(b"  \n\n")
    assert [str(r) for r in parse_file(path)] == [f"{path}:0: file is empty"]


def test_binary_file_is_one_rejection(tmp_path: Path) -> None:
    path = tmp_path / "image.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    [rejection] = _rejections(path)
    assert str(rejection).startswith(f"{path}:0: binary file")
    assert _papers(path) == []


def test_non_utf8_line_is_rejected_at_its_line_and_other_lines_parse(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes(
        b"Abstract:Good one about graphs.\nAbstract:Caf\xe9 culture in Paris.\n"
        b"Abstract:Good two about trees.\n"
    )
    [rejection] = _rejections(path)
    assert str(rejection).startswith(f"{path}:2: not valid UTF-8 (byte 0xe9")
    assert [p.abstract for p in _papers(path)] == [
        "Good one about graphs.",
        "Good two about trees.",
    ]


def test_malformed_json_line_is_rejected_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "papers.jsonl"
    path.write_text(
        '{"title": "A", "abstract": "First."}\n{"title": "B", "abstract": \n'
        '[1, 2]\n{"title": "C", "abstract": "Third."}\n',
        encoding="utf-8",
    )
    rejections = [str(r) for r in _rejections(path)]
    assert rejections[0].startswith(f"{path}:2: malformed JSON")
    assert rejections[1] == f"{path}:3: expected a JSON object, got list"
    assert [p.title for p in _papers(path)] == ["A", "C"]


def test_record_without_abstract_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "papers.jsonl"
    path.write_text('{"title": "No abstract"}\n{"title": "B", "abstract": "  "}\n', "utf-8")
    assert [str(r) for r in parse_file(path)] == [
        f"{path}:1: record has no abstract",
        f"{path}:2: record has no abstract",
    ]


def test_megabyte_abstract_is_rejected_with_the_limit_named(tmp_path: Path) -> None:
    path = tmp_path / "papers.jsonl"
    huge = "word " * 200_000
    path.write_text(
        json.dumps({"title": "Huge", "abstract": huge})
        + "\n"
        + json.dumps({"title": "Fine", "abstract": "Normal."})
        + "\n",
        encoding="utf-8",
    )
    [rejection] = _rejections(path, max_abstract_chars=20_000)
    assert str(rejection).startswith(f"{path}:1: abstract is 999,999 characters")
    assert "PAPERCHAT_MAX_ABSTRACT_CHARS" in rejection.reason
    assert [p.title for p in _papers(path)] == ["Fine"]


def test_unreadable_path_is_a_rejection_not_a_crash(tmp_path: Path) -> None:
    [rejection] = parse_file(tmp_path / "missing.txt")
    assert isinstance(rejection, Rejection)
    assert rejection.reason.startswith("cannot read file")
