"""Answering: retrieve papers, select evidence, write a cited answer.

Public API (imported lazily, so `import rag` stays cheap)::

    from paperchat.settings import Settings
    from rag import build_assistant
    with build_assistant(Settings()) as assistant:
        answer = assistant.ask("What is SOUL?")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.assistant import Assistant, ChatSession
    from rag.factory import build_assistant
    from rag.types import Answer, Citation

__all__ = ["Answer", "Assistant", "ChatSession", "Citation", "build_assistant"]

_WHERE = {
    "Assistant": "rag.assistant",
    "ChatSession": "rag.assistant",
    "Answer": "rag.types",
    "Citation": "rag.types",
    "build_assistant": "rag.factory",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")
