"""Streamed ingest: small read batches store exactly what one batch would, dedupe across
batches and files, filters, the CLI flags, and a SIGKILL part-way through then a re-run."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ingest.faults import KILL_AT_ENV
from ingest.pipeline import IngestReport, ingest_paths
from ingest.selection import Selection
from ingest.store import ChromaStore
from paperchat.cli import app
from paperchat.settings import Settings
from tests.fixtures.arxiv_snapshot import EXCERPT_GOOD, excerpt_lines, write_excerpt
from tests.fixtures.models import FakeEmbedding
from tests.fixtures.store import FAKE_EMBEDDER_ID, isolated_settings
from tests.fixtures.streamed_ingest import SETTINGS

SCRIPT = Path(__file__).parent / "fixtures" / "streamed_ingest.py"
GOOD_IDS = {e.paper_id for e in EXCERPT_GOOD}


def _settings(data_dir: Path) -> Settings:
    return isolated_settings(data_dir, **SETTINGS)


def _ingest(
    paths: list[Path], data_dir: Path, read_batch: int, **kw: Any
) -> tuple[IngestReport, ChromaStore]:
    settings = _settings(data_dir)
    store = ChromaStore.from_settings(settings, FAKE_EMBEDDER_ID)
    report = ingest_paths(
        paths,
        settings,
        store=store,
        embedder=FakeEmbedding(),
        embedder_id=FAKE_EMBEDDER_ID,
        read_batch=read_batch,
        **kw,
    )
    return report, store


def _rows(store: ChromaStore) -> list[str]:
    return sorted(row.chunk_id for row in store.all_chunks())


def test_small_read_batches_store_exactly_what_one_batch_stores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_excerpt(tmp_path / "arxiv-metadata-oai-snapshot.json")
    one, one_store = _ingest([source], tmp_path / "one", read_batch=1000)
    many, many_store = _ingest([source], tmp_path / "many", read_batch=4, progress=True)
    assert _rows(many_store) == _rows(one_store)
    assert len(_rows(many_store)) > len(GOOD_IDS)  # several chunks a paper
    assert (many.added, many.papers, len(many.rejected)) == (28, 28, 2)
    assert (many.added, many.chunks, many.rejected) == (one.added, one.chunks, one.rejected)
    assert {r.paper_id for r in many_store.get_papers(sorted(GOOD_IDS)).values()} == GOOD_IDS
    assert "28/28" in capsys.readouterr().err  # the bar's total is exact once all is read


def test_ingest_plans_each_batch_without_reading_the_whole_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_excerpt(tmp_path / "s.json")
    _ingest([source], tmp_path / "data", read_batch=4)
    asked: list[int] = []
    real = ChromaStore.papers_like

    def counting(self: ChromaStore, ids: Any, keys: Any) -> Any:
        asked.append(len(ids))
        return real(self, ids, keys)

    monkeypatch.setattr(ChromaStore, "papers_like", counting)
    monkeypatch.setattr(ChromaStore, "stored_papers", lambda self: pytest.fail("whole store read"))
    again, _ = _ingest([source], tmp_path / "data", read_batch=4)
    assert (again.unchanged, again.added, again.chunks_written) == (28, 0, 0)
    assert asked == [4] * 7  # 28 papers, 4 at a time


def test_store_answers_for_just_the_ids_and_contents_asked(tmp_path: Path) -> None:
    source = write_excerpt(tmp_path / "s.json")
    _, store = _ingest([source], tmp_path / "data", read_batch=1000)
    by_id = store.papers_like(["arxiv:0704.0001", "arxiv:hep-th/9901001", "arxiv:nope"], [])
    assert set(by_id) == {"arxiv:0704.0001", "arxiv:hep-th/9901001"}
    assert all(len(p.versions) == 1 for p in by_id.values())
    key = by_id["arxiv:0704.0001"].content_key
    assert key is not None
    assert set(store.papers_like([], [key])) == {"arxiv:0704.0001"}


def test_updates_in_a_later_batch_replace_only_that_paper(tmp_path: Path) -> None:
    source = write_excerpt(tmp_path / "s.json")
    first, store = _ingest([source], tmp_path / "data", read_batch=4)
    lines = source.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[-1])
    row["abstract"] = "A rewritten abstract about something else entirely."
    lines[-1] = json.dumps(row)
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    second, store = _ingest([source], tmp_path / "data", read_batch=4)
    assert (second.added, second.updated, second.unchanged) == (0, 1, 27)
    assert second.chunks <= first.chunks  # the old version's rows are gone
    [meta] = store.get_papers([f"arxiv:{row['id']}"]).values()
    assert meta.abstract == row["abstract"]


def test_duplicates_are_found_across_batches_and_files(tmp_path: Path) -> None:
    source = write_excerpt(tmp_path / "s.json")
    lines, _ = excerpt_lines()
    late = json.loads(lines[-1])  # read in the last batch of the first file
    early = json.loads(lines[0])  # read in its first batch
    copies = tmp_path / "copies.jsonl"
    copies.write_text(
        json.dumps({"id": "row-1", "title": late["title"], "abstract": late["abstract"]})
        + "\n"
        + json.dumps({"id": early["id"], "title": "Other", "abstract": "Different text."})
        + "\n",
        encoding="utf-8",
    )
    report, store = _ingest([source, copies], tmp_path / "data", read_batch=4)
    assert (report.added, report.duplicates, report.papers) == (28, 2, 28)
    [meta] = store.get_papers([f"arxiv:{early['id']}"]).values()
    assert meta.title != "Other"  # first wins


def _expected(categories: tuple[str, ...], since: str | None, until: str | None) -> list[str]:
    def wanted(have: tuple[str, ...]) -> bool:
        return not categories or any(
            h == c or h.startswith(c + ".") for h in have for c in categories
        )

    return [
        e.paper_id
        for e in EXCERPT_GOOD
        if wanted(e.categories)
        and (since is None or e.first_date >= since)
        and (until is None or e.first_date <= until)
    ]


@pytest.mark.parametrize(
    ("categories", "since", "until"),
    [
        (("cs.CL",), None, None),
        (("cs",), None, None),
        (("hep-th", "math.GT"), None, None),
        ((), "2018-01-01", None),
        ((), None, "2007-12-31"),
        (("cs",), "2016-01-01", "2021-12-31"),
    ],
)
def test_filters_store_just_the_matching_records(
    tmp_path: Path, categories: tuple[str, ...], since: str | None, until: str | None
) -> None:
    expected = _expected(categories, since, until)
    assert 0 < len(expected) < len(GOOD_IDS)  # each case keeps some and drops some
    selection = Selection(
        categories=categories,
        since=dt.date.fromisoformat(since) if since else None,
        until=dt.date.fromisoformat(until) if until else None,
    )
    report, store = _ingest(
        [write_excerpt(tmp_path / "s.json")], tmp_path / "data", 4, selection=selection
    )
    assert {r.meta.paper_id for r in store.all_chunks()} == set(expected)
    assert (report.added, report.filtered) == (len(expected), len(GOOD_IDS) - len(expected))
    assert len(report.rejected) == 2  # bad lines are reported whatever the filters


def test_limit_counts_records_that_pass_the_filters(tmp_path: Path) -> None:
    selection = Selection(categories=("cs",), limit=3)
    report, store = _ingest(
        [write_excerpt(tmp_path / "s.json")], tmp_path / "data", 2, selection=selection
    )
    assert {r.meta.paper_id for r in store.all_chunks()} == set(_expected(("cs",), None, None)[:3])
    assert report.added == 3


# -- the CLI flags ------------------------------------------------------------------------------


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(settings.data_dir))
    monkeypatch.setattr("ingest.embedding.build_embedder", lambda _settings: FakeEmbedding())
    return settings


def test_cli_flags_select_records_and_the_summary_says_how_many_were_left_out(
    cli: Settings, tmp_path: Path
) -> None:
    source = write_excerpt(tmp_path / "arxiv-metadata-oai-snapshot.json")
    args = ["ingest", str(source), "--category", "cs.CL", "--category", "hep-th"]
    result = CliRunner().invoke(app, [*args, "--since", "1999-01-01", "--limit", "4"])
    assert result.exit_code == 0  # reading stopped at the 4th match, before the bad lines
    expected = _expected(("cs.CL", "hep-th"), "1999-01-01", None)[:4]
    assert f"{len(expected)} added" in result.stdout and "0 rejected" in result.stdout
    assert "filtered out" in result.stdout
    store = ChromaStore.from_settings(Settings(), None)
    assert {r.meta.paper_id for r in store.all_chunks()} == set(expected)


def test_cli_summary_without_filters_is_unchanged(cli: Settings, tmp_path: Path) -> None:
    path = tmp_path / "good.jsonl"
    path.write_text('{"id": "2401.00001", "title": "G", "abstract": "Graphs."}\n', "utf-8")
    result = CliRunner().invoke(app, ["ingest", str(path)])
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == (
        "1 added, 0 updated, 0 unchanged, 0 rejected, 0 duplicates skipped (1 files)."
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--since", "2023-13-01"], "--since '2023-13-01' is not a day; expected YYYY-MM-DD"),
        (["--until", "May 2023"], "--until 'May 2023' is not a day; expected YYYY-MM-DD"),
        (["--category", "cs..CL"], "not an arXiv category"),
        (["--since", "2024-01-01", "--until", "2023-01-01"], "is after --until"),
        (["--limit", "0"], "--limit"),
    ],
)
def test_cli_bad_filter_values_are_usage_errors(
    cli: Settings, tmp_path: Path, flags: list[str], message: str
) -> None:
    source = write_excerpt(tmp_path / "s.json")
    result = CliRunner().invoke(app, ["ingest", str(source), *flags])
    assert result.exit_code == 2
    assert message in " ".join(result.output.replace("│", "").split())


# -- a SIGKILL part-way through a streamed ingest --------------------------------------------


def _script(data_dir: Path, source: Path, kill_at: str | None = None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERCHAT_")}
    if kill_at:
        env[KILL_AT_ENV] = kill_at
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(data_dir), "5", str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if kill_at:
        assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
        return {}
    assert result.returncode == 0, result.stderr[-2000:]
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_streamed_ingest_killed_part_way_then_rerun_stores_every_record_once(
    tmp_path: Path,
) -> None:
    source = write_excerpt(tmp_path / "arxiv-metadata-oai-snapshot.json")
    _, clean = _ingest([source], tmp_path / "clean", read_batch=1000)
    data = tmp_path / "data"

    _script(data, source, kill_at="batch-written:9")  # in the second read batch or later

    after_kill = ChromaStore.from_settings(_settings(data), None, create=False)
    stored = after_kill.count_papers()
    assert 5 <= stored < len(GOOD_IDS)  # the first read batch is whole, the rest is not

    rerun = _script(data, source)
    assert rerun["added"] + rerun["updated"] + rerun["unchanged"] == len(GOOD_IDS)
    assert rerun["unchanged"] >= 5
    assert (rerun["papers"], rerun["duplicates"]) == (len(GOOD_IDS), 0)
    store = ChromaStore.from_settings(_settings(data), None, create=False)
    rows = [row.chunk_id for row in store.all_chunks()]
    assert len(rows) == len(set(rows))  # no chunk twice
    assert sorted(rows) == _rows(clean)  # every chunk of every paper, once, nothing extra
    third = _script(data, source)
    assert (third["added"], third["updated"], third["unchanged"]) == (0, 0, len(GOOD_IDS))
