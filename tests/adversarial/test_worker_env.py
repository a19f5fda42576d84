"""The local LLM worker process gets only the environment it needs: no keys, no tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.models.files import tiny_model_path
from rag.models.server import LocalLLMServer

pytestmark = pytest.mark.slow

SECRET_VARS = {
    "OPENAI_API_KEY": "sk-worker-canary-0123456789",
    "PAPERCHAT_API_TOKEN": "worker-token-canary",
    "PAPERCHAT_UI_AUTH": "ann:worker-password-canary",
    "HF_TOKEN": "hf_worker_canary",
    "AWS_SECRET_ACCESS_KEY": "aws-worker-canary",
}


def test_local_llm_worker_inherits_no_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in SECRET_VARS.items():
        monkeypatch.setenv(name, value)
    server = LocalLLMServer(
        tiny_model_path(), alias="smollm2-135m-instruct", context=512, log_path=tmp_path / "w.log"
    ).start()
    try:
        assert server._process is not None
        raw = Path(f"/proc/{server._process.pid}/environ").read_bytes()
        names = {entry.split(b"=", 1)[0].decode() for entry in raw.split(b"\0") if entry}
        values = raw.decode(errors="replace")
    finally:
        server.stop()

    assert "PATH" in names  # it still gets what it needs to run
    assert sorted(set(SECRET_VARS) & names) == []
    assert [v for v in SECRET_VARS.values() if v in values] == []
