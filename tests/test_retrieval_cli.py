import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ingest.embedding
from ingest.store import ChromaStore
from paperchat.cli import app
from tests.fixtures.models import FakeEmbedding
from tests.fixtures.store import FAKE_EMBEDDER_ID, ingest_fake, isolated_settings

PAPERS = [
    {
        "id": "2401.00003",
        "title": "Forgetting data in language models",
        "abstract": "Machine unlearning removes training data from language models.",
        "update_date": "2024-01-15",
        "url": "https://example.org/unlearning",
    },
    {
        "id": "2101.00002",
        "title": "Graph transformers for molecules",
        "abstract": "Graph transformers predict molecule properties with attention.",
        "update_date": "2021-06-01",
    },
    {
        "id": "2301.00001",
        "title": "Quokka sampling for bandits",
        "abstract": "Exploration in bandits with a new sampling rule.",
        "update_date": "2023-03-01",
    },
]
RESULT_KEYS = {"paper_id", "title", "score", "year", "url", "snippet"}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store of three papers embedded by the fake model; the CLI is pointed at it."""
    for name in list(__import__("os").environ):
        if name.startswith("PAPERCHAT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(data))
    monkeypatch.setattr(ingest.embedding, "embedder_id", lambda settings: FAKE_EMBEDDER_ID)
    monkeypatch.setattr(ingest.embedding, "build_embedder", lambda settings: FakeEmbedding())
    return data


@pytest.fixture
def filled(data_dir: Path, tmp_path: Path) -> Path:
    corpus = tmp_path / "papers.jsonl"
    corpus.write_text("".join(json.dumps(p) + "\n" for p in PAPERS))
    ingest_fake([corpus], isolated_settings(data_dir), FakeEmbedding())
    return data_dir


def test_retrieve_prints_a_ranked_list_with_titles_and_years(runner, filled):
    result = runner.invoke(app, ["retrieve", "machine unlearning language models", "--k", "2"])
    assert result.exit_code == 0, result.output
    assert "Papers for: machine unlearning language models" in result.output
    assert " 1. Forgetting data in language models (2024)" in result.output
    assert "https://example.org/unlearning" in result.output
    assert " 3. " not in result.output


def test_retrieve_json_has_the_documented_fields(runner, filled):
    result = runner.invoke(app, ["retrieve", "graph molecules", "--json", "--mode", "bm25"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["question"] == "graph molecules"
    assert record["results"][0]["paper_id"] == "arxiv:2101.00002"
    assert all(set(r) == RESULT_KEYS for r in record["results"])


def test_retrieve_stdin_writes_one_json_line_per_question(runner, filled):
    result = runner.invoke(
        app, ["retrieve", "-", "--k", "1"], input="quokka bandits\n\ngraph molecules\n"
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [r["question"] for r in lines] == ["quokka bandits", "graph molecules"]
    assert [r["results"][0]["paper_id"] for r in lines] == ["arxiv:2301.00001", "arxiv:2101.00002"]
    assert all(len(r["results"]) == 1 for r in lines)


def test_retrieve_year_filter_limits_results(runner, filled):
    result = runner.invoke(
        app, ["retrieve", "language models graph bandits", "--year-from", "2022", "--json"]
    )
    assert result.exit_code == 0, result.output
    years = [r["year"] for r in json.loads(result.output)["results"]]
    assert years and all(y >= 2022 for y in years)


def test_retrieve_on_empty_store_says_to_ingest_first(runner, data_dir):
    ChromaStore.from_settings(isolated_settings(data_dir), FAKE_EMBEDDER_ID)  # empty collection
    result = runner.invoke(app, ["retrieve", "anything"])
    assert result.exit_code == 1
    assert "run paperchat ingest data/sample first" in result.output


def test_retrieve_without_any_store_says_to_ingest_first(runner, data_dir):
    result = runner.invoke(app, ["retrieve", "anything"])
    assert result.exit_code == 1
    assert "paperchat ingest data/sample" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["retrieve", "q", "--mode", "sparse"],
        ["retrieve", "q", "--year-from", "2024", "--year-to", "2020"],
        ["retrieve", "q", "--k", "0"],
    ],
)
def test_retrieve_usage_errors_exit_with_status_two(runner, data_dir, args):
    result = runner.invoke(app, args)
    assert result.exit_code == 2


def test_eval_retrieval_reports_all_three_modes_per_subset(runner, filled, tmp_path):
    dataset = tmp_path / "dev.jsonl"
    rows = [
        {"question": "quokka", "relevant_ids": ["arxiv:2301.00001"], "wording": "lexical"},
        {
            "question": "molecule graphs",
            "relevant_ids": ["arxiv:2101.00002"],
            "wording": "paraphrase",
        },
        {
            "question": "a question nothing answers",
            "relevant_ids": [],
            "wording": "paraphrase",
            "answerable": False,
        },
    ]
    dataset.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = runner.invoke(app, ["eval", "retrieval", "--dataset", str(dataset)])
    assert result.exit_code == 0, result.output
    assert "2 questions (1 lexical, 1 paraphrase); 1 unanswerable skipped" in result.output
    for heading in ("all questions:", "lexical:", "paraphrase:"):
        assert heading in result.output
    for mode in ("hybrid", "bm25", "dense"):
        assert result.output.count(f"  {mode} ") == 3

    as_json = runner.invoke(app, ["eval", "retrieval", "--dataset", str(dataset), "--json"])
    report = json.loads(as_json.output)
    assert [m["mode"] for m in report["modes"]] == ["hybrid", "bm25", "dense"]
    bm25 = report["modes"][1]
    assert bm25["by_wording"]["lexical"]["hit@1"] == 1.0
    assert bm25["questions"][0]["ranked_ids"][0] == "arxiv:2301.00001"


@pytest.mark.parametrize("top_k", [1, 2])
def test_retrieve_k_defaults_to_paperchat_top_k(runner, filled, monkeypatch, top_k):
    monkeypatch.setenv("PAPERCHAT_TOP_K", str(top_k))
    result = runner.invoke(app, ["retrieve", "language models graph bandits", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["results"]) == top_k
