"""The one settings object: every knob paperchat has, read from `PAPERCHAT_*` env vars and `.env`.

Fields are flat and named by group prefix (`llm_`, `embed_`, `chroma_`, `ui_`, ...) so that the
environment variable names stay short and match the docs: `PAPERCHAT_LLM`, `PAPERCHAT_LLM_BASE_URL`,
`PAPERCHAT_CHROMA_URL`, `PAPERCHAT_DATA_DIR`, `PAPERCHAT_UI_AUTH`. `.env.example` lists the same
fields; `tests/test_settings.py` checks that the two agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import platformdirs
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LLMBackend = Literal["local", "tiny", "openai", "extractive"]
EmbedBackend = Literal["local", "openai"]
EmbedDevice = Literal["auto", "cpu", "cuda", "mps"]
EmbedRuntime = Literal["torch", "onnx", "onnx-int8"]


def _default_model_dir() -> Path:
    return Path(platformdirs.user_cache_dir("paperchat")) / "models"


class Settings(BaseSettings):
    """All of paperchat's configuration: keyword overrides, else env vars, else `.env`."""

    model_config = SettingsConfigDict(
        env_prefix="PAPERCHAT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        validate_default=True,
    )

    # -- storage ---------------------------------------------------------------------------
    data_dir: Path = Field(
        default=Path(".paperchat"),
        description="Root of everything paperchat writes: Chroma store, caches, eval runs.",
    )
    model_dir: Path = Field(
        default_factory=_default_model_dir,
        description="Cache for assembled local LLM weights and exported ONNX embedding models, "
        "shared by every data dir.",
    )
    chroma_url: str | None = Field(
        default=None,
        description="Chroma server URL (e.g. http://127.0.0.1:8000). Unset: embedded store "
        "under DATA_DIR/chroma.",
    )
    collection: str = Field(default="papers", description="Chroma collection name.")

    # -- ingest ----------------------------------------------------------------------------
    chunk_tokens: int = Field(
        default=160,
        ge=32,
        le=400,
        description="Chunk size in tiktoken (cl100k) tokens, title excluded. 160 keeps "
        "title + chunk under all-MiniLM-L6-v2's 256 word-piece window.",
    )
    chunk_overlap: int = Field(default=32, ge=0, description="Token overlap between chunks.")
    max_abstract_chars: int = Field(
        default=20_000,
        ge=100,
        description="Abstracts longer than this are rejected as malformed (a real abstract "
        "is under 3,000 characters).",
    )
    embed_batch_size: int = Field(
        default=64,
        ge=1,
        description="Chunks embedded (and written) per batch. Unset: 64, and on a GPU 256, the "
        "local model's own batch.",
    )

    # -- embeddings ------------------------------------------------------------------------
    embed: EmbedBackend = Field(
        default="local",
        description="Embedding backend: 'local' (all-MiniLM-L6-v2 shipped on PyPI) or 'openai'.",
    )
    embed_openai_model: str = Field(
        default="text-embedding-3-small",
        description="Model name sent to the embedding server when EMBED=openai.",
    )
    embed_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible embedding server (text-embeddings-inference, vLLM, "
        "Infinity), e.g. http://gpu-node:8080/v1; separate from LLM_BASE_URL. Implies "
        "EMBED=openai.",
    )
    embed_api_key: SecretStr | None = Field(
        default=None,
        description="API key for EMBED_BASE_URL (never logged). Unset: none is sent there; "
        "OpenAI itself gets OPENAI_API_KEY.",
    )
    embed_device: EmbedDevice = Field(
        default="auto",
        description="Where the local model runs: auto (cuda, then mps, then cpu), cpu, cuda "
        "(fp16) or mps. The vectors are the same model's, so a store can be filled from any.",
    )
    embed_runtime: EmbedRuntime = Field(
        default="torch",
        description="Local model runtime: torch, onnx (ONNX Runtime on CPU, same vectors as "
        "torch) or onnx-int8 (quantized: faster, its own embedder id). docs/scale.md compares "
        "them.",
    )

    # -- retrieval -------------------------------------------------------------------------
    top_k: int = Field(default=5, ge=1, le=50, description="Papers returned per question.")
    candidate_k: int = Field(
        default=30,
        ge=1,
        description="Chunks fetched from each of dense and keyword search before fusion.",
    )

    # -- answering -------------------------------------------------------------------------
    llm: LLMBackend = Field(
        default="local",
        description="Answering backend: local (Qwen2.5-Coder-1.5B GGUF from PyPI), tiny "
        "(SmolLM2-135M), openai (or any OpenAI-compatible server), extractive (no LLM).",
    )
    llm_model: str = Field(
        default="gpt-4o-mini", description="Model name sent to an OpenAI-compatible server."
    )
    llm_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible base URL (vLLM, Ollama, llama.cpp, LM Studio). "
        "Implies LLM=openai semantics.",
    )
    openai_api_key: SecretStr | None = Field(
        default=None,
        validation_alias="OPENAI_API_KEY",
        description="API key for OpenAI; read from OPENAI_API_KEY.",
    )
    llm_timeout_s: float = Field(default=120.0, gt=0, description="Per-request LLM timeout.")
    llm_max_retries: int = Field(default=2, ge=0, description="Retries on 429/5xx/timeouts.")
    llm_max_tokens: int = Field(default=256, ge=16, description="Answer length cap in tokens.")
    llm_threads: int = Field(
        default=0, ge=0, description="CPU threads for the local model server (0 = all cores)."
    )
    llm_context: int = Field(default=4096, ge=512, description="Local model context window.")
    evidence_token_budget: int = Field(
        default=250,
        ge=50,
        description="Most prompt tokens spent on evidence sentences (the local model reads "
        "~80 tokens/s on 2 CPU cores).",
    )
    evidence_tokens_per_source: int = Field(
        default=100,
        ge=20,
        description="Evidence tokens per selected source, up to evidence_token_budget: one "
        "source gets a short prompt, so the first token comes sooner.",
    )
    select_max_sources: int = Field(
        default=3,
        ge=1,
        le=20,
        description="Most retrieved papers passed to the model as sources (source selection).",
    )
    select_min_relative_similarity: float = Field(
        default=0.85,
        ge=0.0,
        le=1.0,
        description="Source selection: keep a paper whose dense similarity is at least this "
        "share of the best paper's (docs/answering.md has the calibration).",
    )
    select_min_coverage_with_similarity: float = Field(
        default=0.3,
        ge=0.0,
        le=1.0,
        description="Source selection: a paper kept for its similarity must still hold at "
        "least this weighted share of the question's words.",
    )
    select_min_coverage: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        description="Source selection: keep a paper whose title and abstract hold at least "
        "this weighted share of the question's words.",
    )
    verify: bool = Field(
        default=True,
        description="Check every answer sentence against the abstract it cites; re-cite, "
        "replace or drop what the abstract does not say.",
    )
    verify_min_token_recall: float = Field(
        default=0.75,
        ge=0.0,
        le=1.0,
        description="Verification: share of a sentence's content words its cited abstract "
        "must hold (its numbers, names, negations and directions must agree too).",
    )
    verify_min_bigram_recall: float = Field(
        default=0.15,
        ge=0.0,
        le=1.0,
        description="Verification: share of a sentence's adjacent content-word pairs its "
        "cited abstract must hold as pairs.",
    )
    verify_partial_coverage: float = Field(
        default=0.35,
        ge=0.0,
        le=1.0,
        description="Verification: a sentence its source does not support is replaced by the "
        "source sentence holding at least this share of its content words (else dropped).",
    )
    abstain_threshold: float = Field(
        default=0.34,
        description="Minimum dense cosine similarity of the best chunk for the question to "
        "count as answerable, unless one retrieved paper holds every question word "
        "(calibrated on the dev set; see docs/abstention.md).",
    )

    # -- ui / http -------------------------------------------------------------------------
    ui_host: str = Field(default="127.0.0.1", description="Address the web app binds.")
    ui_port: int = Field(default=7860, ge=1, le=65535, description="Port the web app binds.")
    ui_auth: str | None = Field(
        default=None,
        description="user:password for the web server: the page's sign-in, HTTP Basic, or "
        "gradio_client auth=. When it or API_TOKEN is set, every route needs one of them.",
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="Token for the web server: 'Authorization: Bearer <token>' (the openai "
        "client's api_key), or the password at the page's sign-in. Set it or UI_AUTH to bind a "
        "non-local address.",
    )
    allowed_hosts: str | None = Field(
        default=None,
        description="Comma-separated host names the web server answers to, besides 127.0.0.1, "
        "localhost and ::1 (which a local bind always allows). Unset on a non-local bind: any.",
    )
    max_upload_mb: int = Field(default=20, ge=1, description="Largest file the page accepts.")
    max_upload_records: int = Field(
        default=10_000,
        ge=1,
        description="Most records one uploaded file may hold; a larger file is refused whole.",
    )
    max_request_kb: int = Field(
        default=1024,
        ge=16,
        description="Largest request body the web server reads (uploads: MAX_UPLOAD_MB).",
    )
    max_question_chars: int = Field(
        default=2000, ge=10, description="Longest question accepted, in characters."
    )
    max_messages: int = Field(
        default=50, ge=1, description="Most messages one chat request (or page chat) may carry."
    )
    max_k: int = Field(
        default=50, ge=1, le=200, description="Largest number of papers one question may ask for."
    )

    @model_validator(mode="after")
    def _top_k_within_max_k(self) -> Settings:
        if self.top_k > self.max_k:
            raise ValueError(f"top_k ({self.top_k}) must not exceed max_k ({self.max_k})")
        return self

    @model_validator(mode="after")
    def _embed_base_url_means_a_server(self) -> Settings:
        if self.embed_base_url is None:
            return self
        if self.embed == "local" and "embed" in self.model_fields_set:
            raise ValueError(
                "PAPERCHAT_EMBED_BASE_URL is set but PAPERCHAT_EMBED=local: unset one of them"
            )
        self.embed = "openai"
        return self

    @property
    def allowed_host_names(self) -> list[str]:
        """`allowed_hosts` split into lower-case names."""
        return [h.strip().lower() for h in (self.allowed_hosts or "").split(",") if h.strip()]

    @property
    def chroma_path(self) -> Path:
        """Folder of the embedded Chroma store."""
        return self.data_dir / "chroma"
