"""Offline environment: called by every entry point before heavy imports, never on import."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def tiktoken_cache_dir() -> Path:
    """Return llama-index-core's bundled tiktoken cache (holds cl100k_base, loaded offline)."""
    spec = importlib.util.find_spec("llama_index.core")
    if spec is None or spec.origin is None:  # pragma: no cover - llama-index is a dependency
        raise RuntimeError("llama-index-core is not installed")
    return Path(spec.origin).parent / "_static" / "tiktoken_cache"


def apply_offline_env() -> None:
    """Set the env vars that keep HF, tiktoken, Gradio and Chroma off the network.

    Values already set by the user win (`setdefault`), so an online setup stays possible.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(tiktoken_cache_dir()))
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
