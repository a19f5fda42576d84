"""The local model's runtimes (torch, ONNX fp32, ONNX int8) and devices give the same vectors.

The ONNX files are exported (traced, fused, quantized) once per test module from the packaged
weights into a temp `model_dir` (about 15 s on 2 cores), exactly as `paperchat ingest` would on
first use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import ingest.onnx_model
from ingest.embedding import (
    INT8_ID,
    _weights_dir,
    batch_size_for,
    build_embedder,
    embedder_id,
    resolve_device,
)
from ingest.onnx_model import (
    OnnxMiniLMEmbedding,
    export_key,
    length_sorted_batches,
    mean_pool_normalize,
    onnx_model_file,
)
from paperchat.errors import ConfigError
from paperchat.redact import secret_values
from paperchat.settings import Settings

TEXTS = [
    "Graph neural networks for molecules\nMessage passing networks predict molecular properties.",
    "A recipe for sourdough bread.",
    "Attention is all you need",
    "We study the sample complexity of reinforcement learning in linear MDPs and prove a "
    "lower bound that matches the upper bound up to logarithmic factors. " * 12,  # > 256 pieces
    "",  # [CLS] [SEP] only
]
REAL = slice(0, 4)  # texts with words; no chunk or question is empty


def _cosines(a: list[list[float]], b: list[list[float]]) -> list[float]:
    x, y = np.asarray(a), np.asarray(b)
    return list((x * y).sum(axis=1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1)))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("models")


def _settings(model_dir: Path, **update: object) -> Settings:
    return Settings(_env_file=None, model_dir=model_dir, llm="extractive", **update)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def torch_vectors(model_dir: Path) -> list[list[float]]:
    embedder = build_embedder(_settings(model_dir, embed_runtime="torch", embed_device="cpu"))
    return embedder.get_text_embedding_batch(TEXTS)


@pytest.mark.slow
def test_onnx_fp32_vectors_match_torch(model_dir: Path, torch_vectors: list[list[float]]) -> None:
    embedder = build_embedder(_settings(model_dir, embed_runtime="onnx"))
    assert isinstance(embedder, OnnxMiniLMEmbedding)
    vectors = embedder.get_text_embedding_batch(TEXTS)
    assert [len(v) for v in vectors] == [384] * len(TEXTS)
    assert min(_cosines(vectors, torch_vectors)) > 0.999
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    # one text alone (no padding) gives the same vector as in a batch
    assert _cosines([embedder.get_query_embedding(TEXTS[1])], [vectors[1]])[0] > 0.99999


@pytest.mark.slow
def test_onnx_int8_vectors_stay_close_to_torch(
    model_dir: Path, torch_vectors: list[list[float]]
) -> None:
    embedder = build_embedder(_settings(model_dir, embed_runtime="onnx-int8"))
    vectors = embedder.get_text_embedding_batch(TEXTS)
    cosines = _cosines(vectors[REAL], torch_vectors[REAL])
    assert min(cosines) > 0.98  # 0.99+ measured; the empty text (never embedded) gets 0.97
    assert min(cosines) < 0.9999  # really quantized, not the fp32 file again
    # and the ranking a question sees is the torch ranking
    query = embedder.get_query_embedding("molecular property prediction with graph networks")
    assert int(np.argmax(np.asarray(vectors) @ np.asarray(query))) == 0


@pytest.mark.slow
def test_onnx_export_is_cached_by_a_key_of_the_weights(model_dir: Path) -> None:
    fp32 = onnx_model_file(_weights_dir(), model_dir, int8=False)
    int8 = onnx_model_file(_weights_dir(), model_dir, int8=True)
    assert fp32.parent == model_dir / "onnx" and int8.name == fp32.stem + "-int8.onnx"
    assert int8.stat().st_size < 0.7 * fp32.stat().st_size  # MatMul weights in 8 bits
    mtime = fp32.stat().st_mtime_ns
    assert onnx_model_file(_weights_dir(), model_dir, int8=False) == fp32
    assert fp32.stat().st_mtime_ns == mtime  # not exported again
    assert not list((model_dir / "onnx").glob("*.partial"))
    assert not list((model_dir / "onnx").glob("*-traced.onnx"))  # only the fused file is kept


@pytest.mark.slow
def test_onnx_export_fuses_attention_layernorm_and_gelu_in_every_layer(model_dir: Path) -> None:
    import onnx

    layers = 6  # all-MiniLM-L6-v2
    ops = [
        n.op_type
        for n in onnx.load(str(onnx_model_file(_weights_dir(), model_dir, int8=False))).graph.node
    ]
    assert ops.count("Attention") == layers  # fails if the traced attention goes unmatched
    assert ops.count("SkipLayerNormalization") == 2 * layers
    assert ops.count("BiasGelu") == layers and ops.count("EmbedLayerNormalization") == 1
    int8 = [
        n.op_type
        for n in onnx.load(str(onnx_model_file(_weights_dir(), model_dir, int8=True))).graph.node
    ]
    assert int8.count("QAttention") == layers and int8.count("MatMulInteger") == 3 * layers


def test_export_key_changes_with_the_recipe_and_the_runtime_versions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    weights = _weights_dir()
    key = export_key(weights)
    assert export_key(weights) == key  # a pure function of its inputs

    monkeypatch.setitem(ingest.onnx_model.QUANTIZATION, "reduce_range", True)
    assert export_key(weights) != key  # another int8 recipe: a new file
    monkeypatch.undo()
    monkeypatch.setattr(ingest.onnx_model, "STEPS", ingest.onnx_model.STEPS + "; more fusion")
    assert export_key(weights) != key
    monkeypatch.undo()

    import importlib.metadata

    real_version = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: "0.0.1" if name == "onnxruntime" else real_version(name),
    )
    assert export_key(weights) != key  # another optimizer may fuse differently
    monkeypatch.undo()
    assert export_key(weights) == key


def test_length_sorted_batches_hold_every_text_once_shortest_first() -> None:
    lengths = [9, 3, 7, 3, 12, 1, 5]
    batches = length_sorted_batches(lengths, 3)
    assert batches == [[5, 1, 3], [6, 2, 0], [4]]
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert length_sorted_batches([], 16) == []


@pytest.mark.slow
def test_sorted_sub_batches_return_vectors_in_the_callers_order(model_dir: Path) -> None:
    embedder = build_embedder(_settings(model_dir, embed_runtime="onnx"))
    assert isinstance(embedder, OnnxMiniLMEmbedding)
    texts = [TEXTS[3], TEXTS[1], TEXTS[0], TEXTS[2], TEXTS[3][:200], "graph"]  # lengths mixed
    alone = [embedder.get_text_embedding(t) for t in texts]  # one text: no sorting, no padding
    small = embedder.model_copy(update={"sub_batch": 2})  # 3 sub-batches, out of order
    for model in (embedder, small):
        together = model.get_text_embedding_batch(texts)
        assert min(_cosines(together, alone)) > 0.99999


def test_mean_pooling_ignores_padding_and_normalises() -> None:
    hidden = np.array([[[3.0, 0.0], [1.0, 0.0], [100.0, 100.0]]], dtype=np.float32)
    mask = np.array([[1, 1, 0]], dtype=np.int64)
    assert mean_pool_normalize(hidden, mask).tolist() == [[1.0, 0.0]]


def test_int8_has_its_own_embedder_id_and_fp32_onnx_shares_torchs(settings: Settings) -> None:
    torch_id = embedder_id(settings)
    assert embedder_id(settings.model_copy(update={"embed_runtime": "onnx"})) == torch_id
    assert embedder_id(settings.model_copy(update={"embed_device": "cuda"})) == torch_id
    int8_id = embedder_id(settings.model_copy(update={"embed_runtime": "onnx-int8"}))
    assert int8_id == INT8_ID != torch_id
    # the first int8 recipe (unfused graph, unsigned weights) made other vectors under this id
    assert int8_id != "local:all-MiniLM-L6-v2:int8"


def test_onnx_runtime_on_a_gpu_is_refused_with_what_to_set() -> None:
    assert resolve_device("auto", "onnx-int8") == "cpu"
    with pytest.raises(ConfigError, match="PAPERCHAT_EMBED_RUNTIME=torch"):
        resolve_device("cuda", "onnx")


def test_auto_device_falls_back_to_cpu_without_a_gpu() -> None:
    import torch

    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ConfigError, match="sees no cuda device"):
        resolve_device("cuda")


def test_gpu_batches_256_unless_the_batch_size_is_set(settings: Settings) -> None:
    assert batch_size_for(settings, "cpu") == 64
    assert batch_size_for(settings, "cuda") == 256
    assert batch_size_for(settings.model_copy(update={"embed_batch_size": 32}), "cuda") == 32


def test_embed_base_url_selects_the_server_and_refuses_an_explicit_local(
    settings: Settings,
) -> None:
    served = Settings(data_dir=settings.data_dir, embed_base_url="http://10.0.0.5:8080/v1")
    assert served.embed == "openai"
    assert embedder_id(served) == "openai:text-embedding-3-small"
    with pytest.raises(ValueError, match="PAPERCHAT_EMBED=local"):
        Settings(data_dir=settings.data_dir, embed="local", embed_base_url="http://x/v1")


def test_embedding_server_key_and_url_password_are_redacted(settings: Settings) -> None:
    served = Settings(
        data_dir=settings.data_dir,
        embed_base_url="http://tei:url-secret@10.0.0.5:8080/v1",
        embed_api_key="tei-key-1",
    )
    assert {"tei-key-1", "url-secret"} <= set(secret_values(served))


def test_a_store_never_mixes_int8_and_full_precision_vectors(settings: Settings) -> None:
    from ingest.pipeline import ingest_paths
    from ingest.store import ChromaStore
    from paperchat.errors import EmbeddingModelMismatch
    from tests.fixtures.models import FakeEmbedding
    from tests.fixtures.store import SAMPLE_DIR

    corpus = sorted(SAMPLE_DIR.glob("*.txt"))[0]
    int8 = settings.model_copy(update={"embed_runtime": "onnx-int8"})
    store = ChromaStore.from_settings(int8, embedder_id(int8))
    first = ingest_paths([corpus], int8, store=store, embedder=FakeEmbedding())
    assert (first.added, first.embedder) == (6, INT8_ID)

    for other in ("torch", "onnx"):
        full = settings.model_copy(update={"embed_runtime": other})
        with pytest.raises(EmbeddingModelMismatch, match=INT8_ID) as refused:
            ingest_paths([corpus], full, store=store, embedder=FakeEmbedding())
        assert "--rebuild" in str(refused.value)  # says what to do
        assert "PAPERCHAT_EMBED_RUNTIME=onnx-int8" in str(refused.value)  # or what to set
    # the same runtime adds to it as usual
    again = ingest_paths([corpus], int8, store=store, embedder=FakeEmbedding())
    assert (again.added, again.unchanged) == (0, 6)


def test_a_store_of_the_first_int8_recipe_refuses_the_new_one(settings: Settings) -> None:
    from ingest.pipeline import ingest_paths
    from ingest.store import ChromaStore
    from paperchat.errors import EmbeddingModelMismatch
    from tests.fixtures.models import FakeEmbedding
    from tests.fixtures.store import SAMPLE_DIR

    corpus = sorted(SAMPLE_DIR.glob("*.txt"))[0]
    int8 = settings.model_copy(update={"embed_runtime": "onnx-int8"})
    old_id = "local:all-MiniLM-L6-v2:int8"  # what onnx-int8 wrote before the fused recipe
    store = ChromaStore.from_settings(int8, old_id)
    ingest_paths([corpus], int8, store=store, embedder=FakeEmbedding(), embedder_id=old_id)
    with pytest.raises(EmbeddingModelMismatch, match=old_id) as refused:
        ingest_paths([corpus], int8, store=store, embedder=FakeEmbedding())
    assert "PAPERCHAT_EMBED_RUNTIME" not in str(refused.value)  # no runtime reads it: rebuild
    assert "--rebuild" in str(refused.value)
