"""Uploads: a flood cannot fill the disk, an ingested upload is not kept, a record cap holds."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio_client import Client

from tests.adversarial.conftest import (
    MAX_UPLOAD_MB,
    MAX_UPLOAD_RECORDS,
    PASSWORD,
    USER,
    RunningServer,
    login_cookies,
    open_signed_in,
)

FLOOD = 12
MB = 1024 * 1024


def _bytes_under(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_upload_flood_is_bounded_on_disk(secured: RunningServer) -> None:
    cache = secured.data_dir / "gradio-uploads"
    payload = b"{}\n" * (int(0.9 * MB) // 3)
    cookies = login_cookies(secured)  # the page's sign-in: what an uploader has
    statuses = []
    try:
        for i in range(FLOOD):
            response = httpx.post(
                f"{secured.url}/gradio_api/upload",
                files={"files": (f"flood-{i}.jsonl", payload, "application/json")},
                cookies=cookies,
                timeout=60,
            )
            statuses.append(response.status_code)
        held = _bytes_under(cache)
    finally:
        for child in cache.iterdir() if cache.exists() else []:
            shutil.rmtree(child, ignore_errors=True)

    assert 429 in statuses, statuses
    assert held <= 6 * MAX_UPLOAD_MB * MB, f"{held / MB:.1f} MB held after {FLOOD} uploads"


def _records(tag: str, count: int) -> str:
    return "".join(
        json.dumps(
            {
                "id": f"{tag}-{i}",
                "title": f"Upload canary {tag} paper {i}",
                "abstract": f"The upload canary {tag} abstract number {i} studies retention.",
            }
        )
        + "\n"
        for i in range(count)
    )


def _upload(view: Any, path: Path) -> None:
    view.page.get_by_role("tab", name="Corpus").click()
    view.page.locator("#pc-upload input[type=file]").set_input_files(str(path))
    view.page.locator("#pc-ingest", has_text=re.compile("added|Refused|failed")).wait_for()


@pytest.mark.browser
def test_ingested_upload_is_not_kept_on_disk(
    browser: Any, secured: RunningServer, tmp_path: Path
) -> None:
    tag = "keptcheck7731"
    upload = tmp_path / "two papers.jsonl"
    upload.write_text(_records(tag, 2), encoding="utf-8")
    view = open_signed_in(browser, secured)
    try:
        _upload(view, upload)
        result = view.page.locator("#pc-ingest").inner_text()
    finally:
        view.close()

    assert "2 added" in result
    # The store itself holds the text: the Chroma folder and the keyword index beside it
    # (DATA_DIR/keywords-<collection>.sqlite3 and its SQLite journal files).
    copies = [
        p
        for p in secured.data_dir.rglob("*")
        if p.is_file()
        and "chroma" not in p.parts
        and not p.name.startswith("keywords-")
        and tag.encode() in p.read_bytes()
        and not p.name.endswith((".report.json", ".log"))
    ]
    assert copies == []


@pytest.mark.browser
def test_upload_over_the_record_cap_is_refused_and_nothing_is_stored(
    browser: Any, secured: RunningServer, tmp_path: Path
) -> None:
    upload = tmp_path / "too many.jsonl"
    upload.write_text(_records("capcheck", MAX_UPLOAD_RECORDS + 1), encoding="utf-8")
    view = open_signed_in(browser, secured)
    try:
        _upload(view, upload)
        result = view.page.locator("#pc-ingest").inner_text()
    finally:
        view.close()

    assert "Refused" in result and str(MAX_UPLOAD_RECORDS) in result
    # Nothing of the file is stored. (The corpus panel's count is no measure: a page shows the
    # count from when the server started until its load event has refreshed it.)
    client = Client(secured.url, auth=(USER, PASSWORD), verbose=False)
    hits = client.predict(question="upload canary capcheck paper", k=10, api_name="/retrieve")
    assert hits and not any("capcheck" in h["title"] for h in hits)
