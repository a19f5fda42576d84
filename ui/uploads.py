"""Uploaded files: checked for type and size, copied under `DATA_DIR/uploads` with a safe name.

Nothing here trusts the browser's file name: `../../etc/passwd` becomes `etc_passwd`-like
text inside the uploads folder, and the final path is checked to lie inside it.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

from ingest.parsers import SUPPORTED_SUFFIXES
from paperchat.errors import PaperchatError
from paperchat.settings import Settings

ACCEPTED_SUFFIXES: tuple[str, ...] = tuple(sorted(s for s in SUPPORTED_SUFFIXES if s))
"""File types the page accepts (those `paperchat ingest` parses, e.g. .txt, .jsonl, .csv)."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 80
_CHUNK = 1 << 20


class UploadError(PaperchatError):
    """An uploaded file was refused (type, size or name)."""


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
    """Copy an uploaded file into the uploads folder and return where it went.

    Args:
        source: The file as received (e.g. in Gradio's upload cache).
        original_name: The name the browser sent; only its sanitised last part is used.
        settings: Gives the data dir and `max_upload_mb`.

    Raises:
        UploadError: wrong type, over the size limit, or a name that escapes the folder.
    """
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
    digest = _sha256(source)
    target = (folder / f"{digest[:12]}_{safe_name(original_name)}").resolve()
    if not target.is_relative_to(folder) or target.parent != folder:
        raise UploadError(f"{original_name!r}: refused file name")
    tmp = target.with_name(target.name + ".part")
    try:
        with source.open("rb") as src, tmp.open("wb") as dst:
            copied = 0
            while block := src.read(_CHUNK):
                copied += len(block)
                if copied > limit:  # the file grew since stat(): still refuse
                    raise UploadError(
                        f"{safe_name(original_name)}: over the {settings.max_upload_mb} MB "
                        "upload limit"
                    )
                dst.write(block)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()
