from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from paperchat.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def _env_name(field_name: str) -> str:
    alias = Settings.model_fields[field_name].validation_alias
    return alias if isinstance(alias, str) else f"PAPERCHAT_{field_name.upper()}"


def test_env_example_lists_exactly_the_settings_fields() -> None:
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.M))
    expected = {_env_name(name) for name in Settings.model_fields}
    assert listed == expected


def test_every_setting_has_a_description() -> None:
    missing = [n for n, f in Settings.model_fields.items() if not f.description]
    assert missing == []


def test_env_prefix_overrides_defaults(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERCHAT_LLM", "tiny")
    monkeypatch.setenv("PAPERCHAT_CHROMA_URL", "http://127.0.0.1:9999")
    loaded = Settings()
    assert loaded.llm == "tiny"
    assert loaded.chroma_url == "http://127.0.0.1:9999"


def test_unknown_backend_is_rejected_with_the_allowed_values(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="extractive"):
        Settings(llm="gpt-5-turbo-ultra")  # type: ignore[arg-type]


def test_dotenv_file_is_read(settings: Settings, tmp_path: Path) -> None:
    # the `settings` fixture chdirs into tmp_path, where this .env lands
    (tmp_path / ".env").write_text("PAPERCHAT_TOP_K=9\n", encoding="utf-8")
    assert Settings().top_k == 9
