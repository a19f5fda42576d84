"""Safe by default: local bind, credentials for anything else, and uploads that stay put."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from paperchat.cli import app as cli_app
from paperchat.errors import ConfigError
from paperchat.settings import Settings
from tests.fixtures.ui import FakeCorpus, start_server
from ui.access import LOOPBACK_NAMES, Access, access_for, is_local
from ui.app import _ingest_upload
from ui.services import Services
from ui.uploads import UploadError, safe_name, save_upload, uploads_dir

# -- binding -------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_addresses_count_as_local(host: str) -> None:
    assert is_local(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "::", "example.org"])
def test_other_addresses_are_not_local(host: str) -> None:
    assert not is_local(host)


def test_non_local_bind_without_credentials_is_refused(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="PAPERCHAT_UI_AUTH"):
        access_for("0.0.0.0", settings)


def test_non_local_bind_with_page_password_and_token_serves_any_host(settings: Settings) -> None:
    secured = settings.model_copy(update={"ui_auth": "ann:pw", "api_token": SecretStr("tok")})

    access = access_for("0.0.0.0", secured)

    assert access == Access(page_auth=("ann", "pw"), api_token="tok", allowed_hosts=None)
    assert access.required


def test_non_local_bind_with_only_a_token_is_allowed(settings: Settings) -> None:
    access = access_for("0.0.0.0", settings.model_copy(update={"api_token": SecretStr("tok")}))

    assert access.required and access.page_auth is None


def test_allowed_hosts_setting_extends_the_loopback_names(settings: Settings) -> None:
    named = settings.model_copy(update={"allowed_hosts": "Paper.Example, 10.0.0.5"})

    assert access_for("0.0.0.0", named, insecure=True).allowed_hosts == LOOPBACK_NAMES | {
        "paper.example",
        "10.0.0.5",
    }
    assert access_for("127.0.0.1", named).allowed_hosts == LOOPBACK_NAMES | {
        "paper.example",
        "10.0.0.5",
    }


def test_insecure_flag_allows_non_local_bind_without_credentials(settings: Settings) -> None:
    access = access_for("0.0.0.0", settings, insecure=True)

    assert access == Access(page_auth=None, api_token=None, allowed_hosts=None)
    assert not access.required


def test_local_bind_needs_nothing_and_answers_only_loopback_names(settings: Settings) -> None:
    access = access_for("127.0.0.1", settings)

    assert not access.required
    assert access.allowed_hosts == LOOPBACK_NAMES


def test_malformed_ui_auth_is_refused(settings: Settings) -> None:
    with pytest.raises(ConfigError, match="user:password"):
        access_for("0.0.0.0", settings.model_copy(update={"ui_auth": "justaname"}))


def test_cli_refuses_non_local_bind_without_credentials_with_exit_code_2(
    settings: Settings,
) -> None:
    result = CliRunner().invoke(cli_app, ["ui", "--host", "0.0.0.0", "--port", "7999"])

    assert result.exit_code == 2
    assert "refusing to bind 0.0.0.0" in result.output
    assert "--insecure" in result.output


def test_page_with_password_refuses_anonymous_gradio_api_calls(fake_services: Services) -> None:
    server = start_server(fake_services, Access(("ann", "pw"), "tok"))
    try:
        anonymous = httpx.get(f"{server.url}/gradio_api/info")
        login = httpx.post(f"{server.url}/login", data={"username": "ann", "password": "pw"})
        signed_in = httpx.get(f"{server.url}/gradio_api/info", cookies=login.cookies)
    finally:
        server.stop()

    assert anonymous.status_code == 401
    assert signed_in.status_code == 200


# -- uploads -------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "name", ["../../etc/passwd.txt", "..\\..\\evil.csv", "/etc/cron.d/x.jsonl", ".hidden.txt"]
)
def test_upload_names_with_folders_are_written_inside_the_uploads_folder(
    settings: Settings, tmp_path: Path, name: str
) -> None:
    text = "Abstract: a paper about things.\n"
    source = write(tmp_path / "in.txt", text)

    saved = save_upload(source, name, settings)

    folder = uploads_dir(settings).resolve()
    assert saved.parent == folder
    assert ".." not in saved.name and "/" not in saved.name
    assert not saved.name.split("_", 1)[1].startswith(".")
    assert saved.read_text(encoding="utf-8") == text
    assert not source.exists()  # moved, not copied: one copy on disk


def test_upload_called_etc_passwd_without_suffix_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    source = write(tmp_path / "in", "root:x:0:0")
    uploads_dir(settings).mkdir(parents=True)  # so "nothing kept" below can fail

    with pytest.raises(UploadError, match="not supported"):
        save_upload(source, "../../etc/passwd", settings)
    assert list(uploads_dir(settings).iterdir()) == []
    assert not (uploads_dir(settings) / "../../etc/passwd").exists()
    assert not source.exists()  # the refused file is deleted, not left in Gradio's cache


def test_safe_name_keeps_only_the_last_part_with_safe_characters() -> None:
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("my papers (2024).csv") == "my_papers_2024_.csv"
    assert safe_name("....") == "upload"


@pytest.mark.parametrize("name", ["paper.pdf", "model.bin", "archive.tar.gz", "x.exe"])
def test_upload_of_a_type_ingest_cannot_read_is_refused(
    settings: Settings, tmp_path: Path, name: str
) -> None:
    source = write(tmp_path / "in", "x")

    with pytest.raises(UploadError, match="upload one of .*\\.csv"):
        save_upload(source, name, settings)


def test_upload_over_the_size_limit_is_refused_and_nothing_is_kept(
    settings: Settings, tmp_path: Path
) -> None:
    small = settings.model_copy(update={"max_upload_mb": 1})
    source = tmp_path / "big.jsonl"
    source.write_bytes(b"x" * (1024 * 1024 + 1))

    uploads_dir(small).mkdir(parents=True)  # so "nothing kept" below can fail

    with pytest.raises(UploadError, match="over the 1 MB upload limit"):
        save_upload(source, "big.jsonl", small)
    assert list(uploads_dir(small).iterdir()) == []
    assert not source.exists()  # the refused file is deleted, not left in Gradio's cache


def test_gradio_upload_route_rejects_files_over_the_limit(fake_services: Services) -> None:
    fake_services.settings = fake_services.settings.model_copy(update={"max_upload_mb": 1})
    server = start_server(fake_services)
    try:
        response = httpx.post(
            f"{server.url}/gradio_api/upload",
            files={"files": ("big.txt", b"x" * (1024 * 1024 + 10), "text/plain")},
        )
    finally:
        server.stop()

    assert response.status_code == 413


def test_refused_upload_is_reported_and_not_ingested(
    fake_services: Services, tmp_path: Path
) -> None:
    source = write(tmp_path / "slides.pdf", "%PDF-1.4")

    text, rows, _ = _ingest_upload(fake_services, str(source), lambda *a, **k: None)

    assert text.startswith("**Refused:**")
    assert isinstance(fake_services.corpus, FakeCorpus)
    assert fake_services.corpus.ingested == []
    assert rows == []


def test_accepted_upload_is_ingested_from_the_uploads_folder_and_rejections_listed(
    fake_services: Services, tmp_path: Path
) -> None:
    source = write(tmp_path / "papers.jsonl", '{"id": "1", "title": "T", "abstract": "A."}\n')

    text, rows, _ = _ingest_upload(fake_services, str(source), lambda *a, **k: None)

    assert isinstance(fake_services.corpus, FakeCorpus)
    [ingested] = fake_services.corpus.ingested
    assert ingested.parent == uploads_dir(fake_services.settings).resolve()
    assert "2 added" in text
    assert rows == [[f"{ingested.name}:3", "abstract is empty"]]
    assert not ingested.exists() and not source.exists()  # nothing kept after ingest
    [report] = (uploads_dir(fake_services.settings) / "reports").glob("*.report.json")
    assert '"abstract is empty"' in report.read_text(encoding="utf-8")
