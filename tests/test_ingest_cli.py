"""`paperchat ingest / remove / stats` through the Typer runner, with a fake embedder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from paperchat.cli import app
from paperchat.settings import Settings
from tests.fixtures.models import FakeEmbedding
from tests.fixtures.store import SAMPLE_DIR

GOOD = (
    '{"id": "2401.00001", "title": "Good One", "abstract": "Graph networks for molecules."}\n'
    '{"id": "2401.00002", "title": "Good Two", "abstract": "Trees for tabular data."}\n'
)
GOOD_IDS = {"arxiv:2401.00001", "arxiv:2401.00002"}


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Point the CLI at the isolated data dir and embed with the fake model."""
    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("ingest.embedding.build_embedder", lambda _settings: FakeEmbedding())
    return settings


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def as_json(result: Result) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def stored_ids() -> set[str]:
    from ingest.store import ChromaStore

    store = ChromaStore.from_settings(Settings(), None)
    return {row.meta.paper_id for row in store.all_chunks()}


def test_ingest_folder_reports_445_papers_then_nothing_new(cli: Settings) -> None:
    first = run("ingest", str(SAMPLE_DIR), "--json")
    assert first.exit_code == 0, first.output
    report = as_json(first)
    assert (report["added"], report["papers"], report["rejected"]) == (445, 445, [])
    second = as_json(run("ingest", str(SAMPLE_DIR), "--json"))
    assert (second["added"], second["updated"], second["unchanged"]) == (0, 0, 445)


def test_ingest_text_summary_names_counts_and_store(cli: Settings, tmp_path: Path) -> None:
    (tmp_path / "good.jsonl").write_text(GOOD, encoding="utf-8")
    result = run("ingest", str(tmp_path / "good.jsonl"))
    assert result.exit_code == 0
    assert "2 added, 0 updated, 0 unchanged, 0 rejected" in result.stdout
    assert f"2 papers, 2 chunks at {cli.chroma_path}" in result.stdout


# -- bad input: message with file:line, exit status 1, good records still land ------------------


def _ingest_with_bad(tmp_path: Path, name: str, content: bytes) -> tuple[Result, Path]:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.jsonl").write_text(GOOD, encoding="utf-8")
    bad = folder / name
    bad.write_bytes(content)
    return run("ingest", str(folder)), bad


def _assert_rejected_and_good_landed(result: Result, expected: str) -> None:
    assert result.exit_code == 1, result.output
    assert expected in result.stderr.splitlines()[0]
    assert "1 rejected" in result.stdout
    assert GOOD_IDS <= stored_ids()


def test_empty_file_is_reported_and_good_records_land(cli: Settings, tmp_path: Path) -> None:
    result, bad = _ingest_with_bad(tmp_path, "empty.txt", b"")
    _assert_rejected_and_good_landed(result, f"{bad}:0: file is empty")


def test_binary_file_is_reported_and_good_records_land(cli: Settings, tmp_path: Path) -> None:
    result, bad = _ingest_with_bad(tmp_path, "blob.txt", bytes(range(256)) * 8)
    _assert_rejected_and_good_landed(result, f"{bad}:0: binary file (contains NUL bytes)")


def test_non_utf8_file_is_reported_at_its_line_and_good_records_land(
    cli: Settings, tmp_path: Path
) -> None:
    content = b"Abstract:Fine first line about caching.\nAbstract:Na\xefve Bayes in 1998.\n"
    result, bad = _ingest_with_bad(tmp_path, "latin1.txt", content)
    _assert_rejected_and_good_landed(result, f"{bad}:2: not valid UTF-8 (byte 0xef at column 12)")
    assert len(stored_ids()) == 3  # the file's valid first line landed too


def test_malformed_json_line_is_reported_at_its_line_and_good_records_land(
    cli: Settings, tmp_path: Path
) -> None:
    content = b'{"title": "X", "abstract": "Fine."}\n{"title": "broken\n'
    result, bad = _ingest_with_bad(tmp_path, "bad.jsonl", content)
    _assert_rejected_and_good_landed(result, f"{bad}:2: malformed JSON: Unterminated string")


def test_record_without_abstract_is_reported_and_good_records_land(
    cli: Settings, tmp_path: Path
) -> None:
    content = b'{"id": "2401.09999", "title": "Only a title"}\n'
    result, bad = _ingest_with_bad(tmp_path, "noabs.jsonl", content)
    _assert_rejected_and_good_landed(result, f"{bad}:1: record has no abstract")
    assert "arxiv:2401.09999" not in stored_ids()


def test_megabyte_abstract_is_reported_and_good_records_land(cli: Settings, tmp_path: Path) -> None:
    huge = json.dumps({"id": "2401.08888", "title": "Huge", "abstract": "a" * 1_000_000})
    result, bad = _ingest_with_bad(tmp_path, "huge.jsonl", huge.encode() + b"\n")
    _assert_rejected_and_good_landed(
        result, f"{bad}:1: abstract is 1,000,000 characters, over the limit of 20,000"
    )


def test_json_report_lists_rejections_with_file_line_messages(
    cli: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(GOOD + "not json\n", encoding="utf-8")
    result = run("ingest", str(path), "--json")
    assert result.exit_code == 1
    report = as_json(result)
    assert [r["message"] for r in report["rejected"]] == [
        f"{path}:3: malformed JSON: Expecting value (column 1)"
    ]
    assert report["rejected"][0]["source_line"] == 3
    assert report["added"] == 2


# -- usage errors -----------------------------------------------------------------------------


def test_missing_path_is_a_usage_error(cli: Settings, tmp_path: Path) -> None:
    result = run("ingest", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert "Invalid value for 'PATH...'" in result.output


def test_ingest_without_paths_is_a_usage_error(cli: Settings) -> None:
    result = run("ingest")
    assert result.exit_code == 2
    assert "Missing argument" in result.output


def test_help_texts_show_examples(cli: Settings) -> None:
    for command, example in [
        ("ingest", "paperchat ingest data/sample"),
        ("remove", "paperchat remove arxiv:"),
        ("stats", "paperchat stats --json"),
    ]:
        result = run(command, "--help")
        assert result.exit_code == 0
        assert example in result.output
    ingest_help = run("ingest", "--help").output
    assert "--rebuild" in ingest_help and "--wait" in ingest_help
    assert "--wait" in run("remove", "--help").output


# -- remove and stats -------------------------------------------------------------------------


def test_remove_deletes_the_paper_and_all_its_chunks(cli: Settings, tmp_path: Path) -> None:
    (tmp_path / "good.jsonl").write_text(GOOD, encoding="utf-8")
    run("ingest", str(tmp_path / "good.jsonl"))
    result = run("remove", "arxiv:2401.00001", "--json")
    assert result.exit_code == 0, result.output
    assert as_json(result) == {
        "removed": ["arxiv:2401.00001"],
        "not_found": [],
        "chunks_deleted": 1,
        "papers": 1,
        "chunks": 1,
    }
    assert stored_ids() == {"arxiv:2401.00002"}


def test_remove_of_unknown_id_says_so_and_exits_1(cli: Settings, tmp_path: Path) -> None:
    (tmp_path / "good.jsonl").write_text(GOOD, encoding="utf-8")
    run("ingest", str(tmp_path / "good.jsonl"))
    result = run("remove", "arxiv:0000.00000")
    assert result.exit_code == 1
    assert "arxiv:0000.00000: not in the store" in result.stderr
    assert stored_ids() == GOOD_IDS


def test_stats_reports_papers_chunks_location_and_model(cli: Settings, tmp_path: Path) -> None:
    (tmp_path / "good.jsonl").write_text(GOOD, encoding="utf-8")
    run("ingest", str(tmp_path / "good.jsonl"))
    stats = as_json(run("stats", "--json"))
    assert stats == {
        "papers": 2,
        "chunks": 2,
        "embedding_model": "local:all-MiniLM-L6-v2",
        "id_scheme": 2,
        "store": str(cli.chroma_path),
        "configured_embedding_model": "local:all-MiniLM-L6-v2",
    }
    text = run("stats").stdout
    assert "Papers:          2" in text and "all-MiniLM-L6-v2" in text


def test_remove_from_a_store_never_built_says_how_to_build_it(cli: Settings) -> None:
    result = run("remove", "arxiv:2401.00001")
    assert result.exit_code == 1
    assert "No paper store" in result.stderr and "paperchat ingest data/sample" in result.stderr


def test_stats_on_a_fresh_data_dir_reports_empty_and_creates_nothing(cli: Settings) -> None:
    result = run("stats")
    assert result.exit_code == 0
    assert "The store is empty: paperchat ingest data/sample" in result.stdout
    assert not cli.data_dir.exists()


def test_ingest_into_store_of_another_model_fails_with_rebuild_hint(
    cli: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "good.jsonl").write_text(GOOD, encoding="utf-8")
    run("ingest", str(tmp_path / "good.jsonl"))
    monkeypatch.setenv("PAPERCHAT_EMBED", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    result = run("ingest", str(tmp_path / "good.jsonl"))
    assert result.exit_code == 1
    assert "built with the embedding model 'local:all-MiniLM-L6-v2'" in result.stderr
    assert "paperchat ingest --rebuild" in result.stderr
    rebuilt = run("ingest", "--rebuild", str(tmp_path / "good.jsonl"), "--json")
    assert rebuilt.exit_code == 0, rebuilt.output
    assert as_json(rebuilt)["embedder"] == "openai:text-embedding-3-small"
