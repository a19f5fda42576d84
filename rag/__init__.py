"""Answering: retrieve papers, select evidence, write a cited answer.

Public API (imported lazily, so `import rag` stays cheap)::

    from rag import Assistant
    answer = Assistant.from_settings().ask("What is SOUL?")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.assistant import Assistant, ChatSession
    from rag.types import Answer, Citation

__all__ = ["Answer", "Assistant", "ChatSession", "Citation"]

_WHERE = {
    "Assistant": "rag.assistant",
    "ChatSession": "rag.assistant",
    "Answer": "rag.types",
    "Citation": "rag.types",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
