"""One error handler for every command: one `error: ` prefix, one exit-code table, one message."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import ingest.embedding
import rag.factory
from ingest.store import ChromaStore
from paperchat.cli import app
from paperchat.cli.errors import EXIT_CODES
from tests.fixtures.models import FakeEmbedding
from tests.fixtures.store import FAKE_EMBEDDER_ID, isolated_settings

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated, still empty data dir the CLI reads from PAPERCHAT_DATA_DIR (fake embedder)."""
    for name in list(__import__("os").environ):
        if name.startswith("PAPERCHAT_") or name == "OPENAI_API_KEY":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    data = tmp_path / "data"
    monkeypatch.setenv("PAPERCHAT_DATA_DIR", str(data))
    monkeypatch.setenv("PAPERCHAT_MODEL_DIR", str(tmp_path / "models"))
    monkeypatch.setattr(ingest.embedding, "embedder_id", lambda settings: FAKE_EMBEDDER_ID)
    monkeypatch.setattr(ingest.embedding, "build_embedder", lambda settings: FakeEmbedding())
    return data


def _error_line(stderr: str) -> str:
    """The one `error: ` line of a failed command's stderr."""
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr
    return lines[0]


QUERY_COMMANDS = [
    ["retrieve", "What is SOUL?"],
    ["ask", "What is SOUL?", "--llm", "extractive"],
    ["chat", "--llm", "extractive"],
    ["eval", "retrieval"],
    ["eval", "selection"],
]


@pytest.mark.parametrize(
    "args",
    [*QUERY_COMMANDS, ["ui"], ["stats"], ["ingest", "."], ["remove", "arxiv:2401.00001"]],
    ids=lambda args: " ".join(args[:2]),
)
def test_a_bad_setting_exits_2_with_one_error_line_from_every_command(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    monkeypatch.setenv("PAPERCHAT_TOP_K", "0")
    result = runner.invoke(app, args, input="")
    assert result.exit_code == 2, result.output
    line = _error_line(result.stderr)
    assert line.startswith("error: invalid setting (top_k: Input should be greater than or equal")
    assert "Traceback" not in result.output


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_query_commands_on_a_missing_or_empty_store_all_say_the_same_and_exit_1(
    data_dir: Path, state: str
) -> None:
    if state == "empty":
        ChromaStore.from_settings(isolated_settings(data_dir), FAKE_EMBEDDER_ID)
    lines = set()
    for args in QUERY_COMMANDS:
        result = runner.invoke(app, args, input="What is SOUL?\n")
        assert result.exit_code == 1, (args, result.output)
        lines.add(_error_line(result.stderr))
    assert len(lines) == 1, lines
    assert "paperchat ingest data/sample" in lines.pop()


def test_remove_from_a_missing_store_says_what_retrieve_says(data_dir: Path) -> None:
    removed = runner.invoke(app, ["remove", "arxiv:2401.00001"])
    retrieved = runner.invoke(app, ["retrieve", "What is SOUL?"])
    assert removed.exit_code == retrieved.exit_code == 1
    assert _error_line(removed.stderr) == _error_line(retrieved.stderr)


LLM_COMMANDS = [
    ["ask", "What is SOUL?", "--llm"],
    ["chat", "--llm"],
    ["ui", "--llm"],
    ["eval", "grounding", "--llm"],
]


def test_an_unknown_llm_is_refused_the_same_way_by_every_command(data_dir: Path) -> None:
    lines = set()
    for args in LLM_COMMANDS:
        result = runner.invoke(app, [*args, "gpt-5"])
        assert result.exit_code == 2, (args, result.output)
        lines.add(_error_line(result.stderr))
    assert lines == {
        "error: Invalid value for '--llm': must be one of local, extractive, tiny, openai, "
        "not 'gpt-5'"
    }
    assert not data_dir.exists()  # refused before anything was opened or loaded


@pytest.mark.parametrize("command", [["judge"], ["rescore", "."]], ids=["judge", "rescore"])
def test_judge_llm_is_checked_like_llm(data_dir: Path, command: list[str]) -> None:
    result = runner.invoke(app, ["eval", *command, "--judge", "llm", "--judge-llm", "gpt-5"])
    assert result.exit_code == 2, result.output
    assert _error_line(result.stderr) == (
        "error: Invalid value for '--judge-llm': must be one of local, extractive, tiny, openai, "
        "not 'gpt-5'"
    )


def test_ctrl_c_exits_130_without_a_traceback(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(rag.factory, "open_retriever", interrupted)
    result = runner.invoke(app, ["retrieve", "What is SOUL?"])
    assert result.exit_code == 130
    assert "Traceback" not in result.output and "Aborted" not in result.output


def test_a_secret_in_an_error_message_is_masked(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paperchat.errors import StoreError

    monkeypatch.setenv("PAPERCHAT_API_TOKEN", "tok-very-secret-value")

    def leaky(*args: object, **kwargs: object) -> None:
        raise StoreError("server said: bad token tok-very-secret-value")

    monkeypatch.setattr(rag.factory, "open_retriever", leaky)
    result = runner.invoke(app, ["retrieve", "What is SOUL?"])
    assert result.exit_code == 1
    assert _error_line(result.stderr) == "error: server said: bad token ***"


def test_root_help_documents_the_prefix_and_every_exit_code(data_dir: Path) -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "'error: '" in text
    for code in EXIT_CODES:
        assert f" {code} " in text
