"""The real `paperchat` command: bounded input, and no secret in what it prints."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adversarial.conftest import (
    BASE_URL_PASSWORD,
    PLANTED,
    USER,
    clean_env,
    leaked,
    run_cli,
)
from tests.adversarial.upstream import FakeUpstream


@pytest.fixture(scope="module")
def cli_env(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeUpstream
) -> Iterator[tuple[dict[str, str], Path]]:
    root = tmp_path_factory.mktemp("adv-cli")
    corpus = root / "planted.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in PLANTED), encoding="utf-8")
    env = clean_env(
        root / "data",
        PAPERCHAT_LLM_BASE_URL=f"http://{USER}:{BASE_URL_PASSWORD}@127.0.0.1:{upstream.port}/v1",
        PAPERCHAT_LLM_MAX_RETRIES="0",
    )
    assert run_cli(["ingest", str(corpus)], env, root).returncode == 0
    yield env, root


def test_cli_llm_failure_prints_no_base_url_password(cli_env: tuple[dict, Path]) -> None:
    env, root = cli_env

    result = run_cli(["ask", "What damps gradient BOOM oscillation?", "--llm", "openai"], env, root)

    assert result.returncode == 1
    assert "HTTP 500" in result.stderr or "500" in result.stderr
    assert leaked(result.stdout + result.stderr) == []


def test_cli_unreachable_llm_prints_no_base_url_password(cli_env: tuple[dict, Path]) -> None:
    env, root = cli_env
    closed = {**env, "PAPERCHAT_LLM_BASE_URL": f"http://{USER}:{BASE_URL_PASSWORD}@127.0.0.1:9/v1"}

    result = run_cli(
        ["ask", "What damps gradient BOOM oscillation?", "--llm", "openai"], closed, root
    )

    assert result.returncode == 1
    assert "127.0.0.1:9" in result.stderr  # still says where it tried
    assert leaked(result.stdout + result.stderr) == []


def test_cli_huge_k_is_refused(cli_env: tuple[dict, Path]) -> None:
    env, root = cli_env

    result = run_cli(["retrieve", "concept erasure", "--k", "1000000"], env, root)

    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_cli_huge_question_is_refused(cli_env: tuple[dict, Path]) -> None:
    env, root = cli_env

    result = run_cli(["ask", "concept erasure " * 6_000], env, root)

    assert result.returncode != 0
    assert "question" in result.stderr.lower() and "Traceback" not in result.stderr
