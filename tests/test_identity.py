"""Paper identity: arXiv ids only for real ones, namespaced source ids, `p:` ids unchanged."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ingest.parsers import iter_input_files, parse_file
from ingest.pipeline import ingest_paths
from ingest.records import (
    Paper,
    RecordWarning,
    checked_url,
    parse_arxiv_id,
    source_paper_id,
    stable_paper_id,
)
from ingest.rows import ChunkMeta
from ingest.store import ChromaStore
from paperchat.cli import app
from paperchat.settings import Settings
from tests.conftest import REPO
from tests.fixtures.models import FakeEmbedding
from tests.fixtures.store import FAKE_EMBEDDER_ID, SAMPLE_DIR, ingest_fake


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _papers(settings: Settings) -> dict[str, ChunkMeta]:
    store = ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID)
    return {r.meta.paper_id: r.meta for r in store.all_chunks() if r.meta.chunk_index == 0}


# -- arXiv identifiers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "canonical", "version"),
    [
        ("2301.01234", "2301.01234", ""),
        ("2301.01234v2", "2301.01234", "v2"),
        ("0704.0001", "0704.0001", ""),
        ("1412.9999v1", "1412.9999", "v1"),
        ("hep-th/9901001", "hep-th/9901001", ""),
        ("math.GT/0309136v1", "math.GT/0309136", "v1"),
        ("cond-mat/0011001", "cond-mat/0011001", ""),
        ("arXiv:2301.01234v3", "2301.01234", "v3"),
        ("ARXIV:hep-th/9901001", "hep-th/9901001", ""),
        ("https://arxiv.org/abs/2301.01234v2", "2301.01234", "v2"),
        ("http://arxiv.org/pdf/2301.01234.pdf", "2301.01234", ""),
        ("https://www.arxiv.org/abs/math.GT/0309136", "math.GT/0309136", ""),
        ("  2301.01234  ", "2301.01234", ""),
    ],
)
def test_real_arxiv_identifiers_are_recognised_and_versions_folded(
    raw: str, canonical: str, version: str
) -> None:
    parsed = parse_arxiv_id(raw)
    assert parsed is not None
    assert (parsed.id, parsed.version) == (canonical, version)


@pytest.mark.parametrize(
    "raw",
    [
        "1",
        "id:1",
        "2313.01234",  # month 13
        "2301.1234",  # four digits after the dot since 1501
        "1412.12345",  # five digits before 1501
        "0612.1234",  # new style began in 0704
        "hep-th/9913001",  # month 13
        "hep-th/123",
        "W2301.01234",
        "https://example.org/abs/2301.01234",
        "10.1000/xyz123",
    ],
)
def test_other_ids_are_not_arxiv_identifiers(raw: str) -> None:
    assert parse_arxiv_id(raw) is None


def test_records_get_arxiv_ids_only_for_arxiv_identifiers(tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"id": "arXiv:2301.01234v2", "title": "A", "abstract": "Alpha."},
            {"id": "1", "title": "B", "abstract": "Beta."},
            {"title": "C", "abstract": "Gamma."},
        ],
    )
    a, b, c = (p for p in parse_file(path) if isinstance(p, Paper))
    assert a.paper_id == "arxiv:2301.01234"
    assert a.url == "https://arxiv.org/abs/2301.01234v2"
    assert b.paper_id == source_paper_id(str(path), "1")
    assert re.fullmatch(r"src:[0-9a-f]{16}", b.paper_id)
    assert c.paper_id == stable_paper_id("C", "Gamma.")


# -- p: ids stay exactly as they were -----------------------------------------------------------


def test_records_without_an_id_keep_the_first_releases_p_ids() -> None:
    # The first release's formula, written out: sha256 of the lower-cased word characters of
    # title and abstract, joined by a newline, first 16 hex digits.
    def first_release(title: str, abstract: str) -> str:
        def key(text: str) -> str:
            return re.sub(r"[\W_]+", " ", text.lower()).strip()

        digest = hashlib.sha256(f"{key(title)}\n{key(abstract)}".encode()).hexdigest()
        return f"p:{digest[:16]}"

    for title, abstract in [("SOUL", "Second-order  unlearning."), ("", "Only, an abstract!")]:
        assert stable_paper_id(title, abstract) == first_release(title, abstract)


def test_every_paper_id_in_the_eval_datasets_is_still_a_sample_corpus_id() -> None:
    corpus = {
        result.paper_id
        for path in iter_input_files([SAMPLE_DIR])
        for result in parse_file(path)
        if isinstance(result, Paper)
    }
    referenced: set[str] = set()
    for dataset in (REPO / "eval" / "datasets").glob("*.jsonl"):
        for line in dataset.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                row = json.loads(line)
                referenced |= set(row.get("relevant_ids", [])) | {row.get("paper_id")} - {None}
    assert len(referenced) > 70 and all(pid.startswith("p:") for pid in referenced)
    assert referenced <= corpus
    assert "p:d4ad722d7858ad37" in corpus  # SOUL, cited in the README


# -- namespaced source ids ----------------------------------------------------------------------


def test_two_files_numbering_their_rows_alike_keep_both_papers(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    first = _jsonl(tmp_path / "export1.jsonl", [{"id": "1", "title": "A", "abstract": "Alpha."}])
    second = _jsonl(tmp_path / "export2.jsonl", [{"id": "1", "title": "B", "abstract": "Beta."}])
    ingest_fake([first], settings, fake_embedding)
    report = ingest_fake([second], settings, fake_embedding)
    assert (report.added, report.updated, report.papers) == (1, 0, 2)
    titles = {meta.title for meta in _papers(settings).values()}
    assert titles == {"A", "B"}


def test_the_same_file_reached_by_another_path_is_unchanged(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path, monkeypatch: Any
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    path = _jsonl(folder / "rows.jsonl", [{"id": "7", "title": "A", "abstract": "Alpha."}])
    ingest_fake([path], settings, fake_embedding)
    (tmp_path / "link").symlink_to(folder)
    monkeypatch.chdir(folder)
    relative = ingest_fake([Path("rows.jsonl")], settings, fake_embedding)
    linked = ingest_fake([tmp_path / "link" / "rows.jsonl"], settings, fake_embedding)
    assert (relative.added, relative.unchanged) == (0, 1)
    assert (linked.added, linked.unchanged) == (0, 1)


def test_a_changed_row_of_the_same_file_updates_its_paper(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    path = _jsonl(tmp_path / "rows.jsonl", [{"id": "7", "title": "A", "abstract": "Alpha."}])
    ingest_fake([path], settings, fake_embedding)
    _jsonl(path, [{"id": "7", "title": "A", "abstract": "Alpha, revised."}])
    report = ingest_fake([path], settings, fake_embedding)
    assert (report.added, report.updated, report.papers) == (0, 1, 1)


def test_the_same_paper_in_two_files_is_stored_once_by_content(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    one = _jsonl(tmp_path / "one.jsonl", [{"id": "1", "title": "Same", "abstract": "Text."}])
    two = _jsonl(tmp_path / "two.jsonl", [{"id": "9", "title": "SAME", "abstract": "text"}])
    plain = tmp_path / "plain.txt"
    plain.write_text("Abstract:Something else entirely.\n", encoding="utf-8")
    ingest_fake([one], settings, fake_embedding)
    report = ingest_fake([two, plain], settings, fake_embedding)
    assert (report.added, report.duplicates, report.papers) == (1, 1, 2)


def test_two_arxiv_entries_with_equal_text_stay_two_papers(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    rows = [{"id": f"2401.0000{i}", "title": "Same", "abstract": "Text."} for i in (1, 2)]
    report = ingest_fake([_jsonl(tmp_path / "a.jsonl", rows)], settings, fake_embedding)
    assert (report.added, report.duplicates) == (2, 0)


def test_arxiv_versions_of_one_paper_are_one_paper(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    v1 = _jsonl(tmp_path / "v1.jsonl", [{"id": "2401.00001v1", "title": "T", "abstract": "Old."}])
    v2 = _jsonl(tmp_path / "v2.jsonl", [{"id": "2401.00001v2", "title": "T", "abstract": "New."}])
    ingest_fake([v1], settings, fake_embedding)
    report = ingest_fake([v2], settings, fake_embedding)
    assert (report.added, report.updated, report.papers) == (0, 1, 1)
    assert _papers(settings)["arxiv:2401.00001"].abstract == "New."


# -- uploads never replace a stored paper -------------------------------------------------------


def _upload(path: Path, settings: Settings, embedding: FakeEmbedding) -> Any:
    store = ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID)
    return ingest_paths(
        [path],
        settings,
        store=store,
        embedder=embedding,
        embedder_id=FAKE_EMBEDDER_ID,
        allow_updates=False,
    )


def test_an_upload_cannot_replace_a_stored_arxiv_paper(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    real = _jsonl(
        tmp_path / "real.jsonl", [{"id": "2401.00001", "title": "T", "abstract": "Real."}]
    )
    ingest_fake([real], settings, fake_embedding)
    forged = _jsonl(
        tmp_path / "upload.jsonl",
        [
            {"id": "2401.00001", "title": "T", "abstract": "Forged claims."},
            {"id": "2401.00002", "title": "New", "abstract": "A new paper."},
        ],
    )
    report = _upload(forged, settings, fake_embedding)
    assert (report.added, report.updated) == (1, 0)
    [rejected] = report.rejected
    assert rejected.source_line == 1
    assert "arxiv:2401.00001 is already stored with different content" in rejected.reason
    assert _papers(settings)["arxiv:2401.00001"].abstract == "Real."
    again = _upload(real, settings, fake_embedding)  # the same content is fine
    assert (again.unchanged, again.rejected) == (1, [])


# -- links --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(document.cookie)",
        " javascript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "file:///etc/passwd",
        "vbscript:msgbox",
        "http://",
        "https://exa mple.org/",
        "https://example.org/\nx",
        "//example.org/x",
    ],
)
def test_links_that_are_not_http_are_refused(url: str) -> None:
    assert checked_url(url) is None


def test_http_links_are_kept() -> None:
    assert checked_url(" https://example.org/a?b=1#c ") == "https://example.org/a?b=1#c"
    assert checked_url("HTTP://EXAMPLE.ORG") == "HTTP://EXAMPLE.ORG"


def test_a_javascript_link_is_dropped_with_a_warning_and_the_record_stored(
    settings: Settings, fake_embedding: FakeEmbedding, tmp_path: Path
) -> None:
    path = _jsonl(
        tmp_path / "links.jsonl",
        [
            {"title": "A", "abstract": "Alpha.", "url": "javascript:alert(1)"},
            {"id": "2401.00001", "title": "B", "abstract": "Beta.", "url": "data:text/html,x"},
            {"title": "C", "abstract": "Gamma.", "url": "https://example.org/c"},
        ],
    )
    parsed = list(parse_file(path))
    warnings = [r for r in parsed if isinstance(r, RecordWarning)]
    assert [(w.source_line, "dropped" in w.message) for w in warnings] == [(1, True), (2, True)]
    report = ingest_fake([path], settings, fake_embedding)
    assert (report.added, report.rejected, len(report.warnings)) == (3, [], 2)
    urls = {meta.title: meta.url for meta in _papers(settings).values()}
    assert urls == {
        "A": None,
        "B": "https://arxiv.org/abs/2401.00001",
        "C": "https://example.org/c",
    }


def test_cli_prints_link_warnings_and_still_exits_0(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("ingest.embedding.build_embedder", lambda _settings: FakeEmbedding())
    path = _jsonl(tmp_path / "l.jsonl", [{"title": "A", "abstract": "x", "url": "javascript:x"}])
    result = CliRunner().invoke(app, ["ingest", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}:1: warning: link 'javascript:x' dropped" in result.stderr
    as_json = CliRunner().invoke(app, ["ingest", str(path), "--json"])
    assert json.loads(as_json.stdout)["warnings"][0]["source_line"] == 1
