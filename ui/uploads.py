"""Uploaded files: checked for type, size and record count, moved under `DATA_DIR/uploads`.

Nothing here trusts the browser's file name: `../../etc/passwd` becomes `etc_passwd`-like
text inside the uploads folder, and the final path is checked to lie inside it.

Disk stays bounded: Gradio's cached copy is moved (not copied) into the uploads folder, the
file is deleted once it is ingested (or refused), and only a small report of the outcome
(counts and rejected records) is kept, the newest `KEEP_REPORTS` of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import asdict
from pathlib import Path, PurePosixPath

from gradio.utils import get_upload_folder

from ingest.parsers import SUPPORTED_SUFFIXES, parse_file
from paperchat.errors import PaperchatError
from paperchat.settings import Settings
from ui.services import IngestSummary

ACCEPTED_SUFFIXES: tuple[str, ...] = tuple(sorted(s for s in SUPPORTED_SUFFIXES if s))
"""File types the page accepts (those `paperchat ingest` parses, e.g. .txt, .jsonl, .csv)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 80
_CHUNK = 1 << 20
KEEP_REPORTS = 100
"""Upload reports kept in `DATA_DIR/uploads/reports`; older ones are deleted."""


class UploadError(PaperchatError):
    """An uploaded file was refused (type, size, record count or name)."""


def uploads_dir(settings: Settings) -> Path:
    """Return the folder uploads are written to (inside the data dir)."""
    return settings.data_dir / "uploads"


def safe_name(name: str) -> str:
    """Return a file name with no folders, no leading dots and only `[A-Za-z0-9._-]`."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = _UNSAFE.sub("_", base).lstrip(".")
    if len(cleaned) > _MAX_NAME:
        stem, dot, suffix = cleaned.rpartition(".")
        cleaned = stem[: _MAX_NAME - len(suffix) - 1] + dot + suffix if dot else cleaned[:_MAX_NAME]
    return cleaned or "upload"


def check_type(name: str) -> str:
    """Return the lower-case suffix of `name`, or raise `UploadError` if ingest cannot read it."""
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in ACCEPTED_SUFFIXES:
        raise UploadError(
            f"{safe_name(name)}: file type {suffix or '(none)'!r} is not supported; "
            f"upload one of {', '.join(ACCEPTED_SUFFIXES)}"
        )
    return suffix


def save_upload(source: Path, original_name: str, settings: Settings) -> Path:
    """Move an uploaded file into the uploads folder and return where it went.

    The file is moved, so Gradio's cache does not keep a second copy; a refused file is
    deleted. Call `discard_upload` once it is ingested.

    Args:
        source: The file as received (in Gradio's upload cache).
        original_name: The name the browser sent; only its sanitised last part is used.
        settings: Gives the data dir, `max_upload_mb` and `max_upload_records`.

    Raises:
        UploadError: wrong type, over the size or record limit, or a name that escapes the
            folder.
    """
    try:
        check_type(original_name)
        limit = settings.max_upload_mb * 1024 * 1024
        size = source.stat().st_size
        if size > limit:
            raise UploadError(
                f"{safe_name(original_name)}: {size / 1024 / 1024:.1f} MB is over the "
                f"{settings.max_upload_mb} MB upload limit (PAPERCHAT_MAX_UPLOAD_MB)"
            )
        folder = uploads_dir(settings).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        target = (folder / f"{_sha256(source)[:12]}_{safe_name(original_name)}").resolve()
        if not target.is_relative_to(folder) or target.parent != folder:
            raise UploadError(f"{original_name!r}: refused file name")
        _move(source, target)
    finally:
        discard_upload(source)
    try:
        check_records(target, original_name, settings)
    except UploadError:
        discard_upload(target)
        raise
    return target


def check_records(path: Path, original_name: str, settings: Settings) -> int:
    """Return the number of records in `path`, or raise `UploadError` past `max_upload_records`.

    Every record counts, readable or not, so a file cannot hide its size in rejections.
    """
    count = 0
    for _ in parse_file(path, max_abstract_chars=settings.max_abstract_chars):
        count += 1
        if count > settings.max_upload_records:
            raise UploadError(
                f"{safe_name(original_name)}: more than {settings.max_upload_records:,} "
                "records in one upload (PAPERCHAT_MAX_UPLOAD_RECORDS); split the file, or "
                "run paperchat ingest on it"
            )
    return count


def discard_upload(path: Path) -> None:
    """Delete an uploaded file, and its folder when that is an emptied Gradio cache folder."""
    path.unlink(missing_ok=True)
    parent = path.parent.resolve()
    cache = Path(get_upload_folder()).resolve()
    if parent != cache and parent.is_relative_to(cache) and parent.is_dir():
        if not any(parent.iterdir()):
            parent.rmdir()


def write_report(saved: Path, summary: IngestSummary, settings: Settings) -> Path:
    """Keep what became of an upload (counts, rejected records) after the file is deleted."""
    folder = uploads_dir(settings) / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report = folder / f"{stamp}_{saved.name}.report.json"
    report.write_text(json.dumps({"file": saved.name, **asdict(summary)}, indent=1), "utf-8")
    for old in sorted(folder.glob("*.report.json"))[:-KEEP_REPORTS]:
        old.unlink(missing_ok=True)
    return report


def _move(source: Path, target: Path) -> None:
    """Rename `source` to `target` (a copy then a delete across file systems)."""
    try:
        os.replace(source, target)
    except OSError:
        tmp = target.with_name(target.name + ".part")
        try:
            shutil.copyfile(source, tmp)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()
