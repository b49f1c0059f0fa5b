"""Sentence embeddings from a local model, as extra features for the learned router (optional).

    encoder = SentenceEncoder("models/all-MiniLM-L6-v2")    # a folder on disk; nothing downloaded
    vectors = encoder.encode(["What is 17 * 23?", "Summarise this memo."])   # (2, dim) float32

The folder is a sentence-transformers BERT model as it is usually shipped: `config.json`,
`model.safetensors`, `tokenizer.json`, and optionally `1_Pooling/config.json` (mean or CLS
pooling; mean by default), `sentence_bert_config.json` (`max_seq_length`) and `modules.json`
(a `Normalize` module makes rows unit length). The forward pass is numpy: a 6-layer, 384-wide
encoder such as all-MiniLM-L6-v2 costs about 30 ms per prompt on 2 cores, which pulling in torch
for would not change much. Reading the weights needs `safetensors` and the tokenizer `tokenizers`
(the `taskroute[embed]` extra); both are imported only when an encoder is built.

`Embedder` is the extension point: anything with a `fingerprint`, a `dim` and `encode` will do.
A router file trained with an embedder records its fingerprint, so it is never fed vectors from
another model. `EmbeddingCache` keeps vectors on disk by text, so repeated evaluations of the
same dataset encode it once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from taskroute.exceptions import ConfigError, DataError

Vectors = npt.NDArray[np.float32]
EXTRA_HINT = "pip install 'taskroute[embed]'"


class Embedder(Protocol):
    """Turns texts into fixed-size vectors, the same vector for the same text."""

    @property
    def fingerprint(self) -> str:
        """Identifies the model (weights and tokenizer), not the object."""
        ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: Sequence[str]) -> Vectors:
        """(len(texts), dim) float32."""
        ...


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError:
        raise ConfigError(f"sentence embeddings need {module.split('.')[0]}: "
                          f"{EXTRA_HINT}") from None


class SentenceEncoder:
    """A BERT-family sentence encoder read from a local folder; numpy forward pass."""

    def __init__(self, folder: str | os.PathLike[str], *, max_tokens: int | None = None,
                 batch_size: int = 32) -> None:
        root = Path(folder)
        self.name = root.name
        self.batch_size = batch_size
        config = _read_json(root / "config.json")
        if config.get("model_type", "bert") != "bert":
            raise DataError(f"model_type {config.get('model_type')!r}: only BERT-family "
                            "encoders are supported", file=str(root / "config.json"))
        try:
            self._heads = int(config["num_attention_heads"])
            layers = int(config["num_hidden_layers"])
            self._eps = float(config.get("layer_norm_eps", 1e-12))
            self._dim = int(config["hidden_size"])
            positions = int(config.get("max_position_embeddings", 512))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError("missing or bad setting", file=str(root / "config.json"),
                            field=str(exc)) from None
        pooling = _read_json(root / "1_Pooling" / "config.json", missing_ok=True)
        self._cls_pooling = bool(pooling.get("pooling_mode_cls_token", False))
        modules = (root / "modules.json").read_text() if (root / "modules.json").is_file() else ""
        self._normalize = "Normalize" in modules or not modules
        settings = root / "sentence_bert_config.json"
        try:
            limit = int(max_tokens or _read_json(settings, missing_ok=True).get("max_seq_length")
                        or positions)
        except (TypeError, ValueError):
            raise DataError("max_seq_length is not a number", file=str(settings)) from None
        weights_file = root / "model.safetensors"
        tokenizer_file = root / "tokenizer.json"
        for needed in (weights_file, tokenizer_file):
            if not needed.is_file():
                raise DataError("not found (a sentence-transformers folder has config.json, "
                                "model.safetensors and tokenizer.json)", file=str(needed))
        safetensors = _require("safetensors.numpy")
        tokenizers = _require("tokenizers")
        try:
            raw = safetensors.load_file(str(weights_file))
            self._tokenizer = tokenizers.Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # both libraries raise their own error types
            raise DataError(f"cannot read the model: {exc}", file=str(root)) from None
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(min(limit, positions))
        w = {k.removeprefix("bert."): np.asarray(v, dtype=np.float32) for k, v in raw.items()}
        try:
            self._embed = (w["embeddings.word_embeddings.weight"],
                           w["embeddings.position_embeddings.weight"],
                           w["embeddings.token_type_embeddings.weight"][0],
                           w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
            self._layers = [_layer(w, f"encoder.layer.{i}.") for i in range(layers)]
        except KeyError as exc:
            raise DataError("missing weight", file=str(weights_file), field=str(exc)) from None
        digest = hashlib.sha256()
        for part in (root / "config.json", tokenizer_file, weights_file):
            with open(part, "rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
        self._fingerprint = f"{self.name}:{digest.hexdigest()[:16]}"

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def dim(self) -> int:
        return self._dim

    def encode(self, texts: Sequence[str]) -> Vectors:
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        if not texts:
            return out
        ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        order = np.argsort([len(i) for i in ids], kind="stable")  # similar lengths pad less
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            width = max(len(ids[r]) for r in rows)
            batch = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.float32)
            for k, r in enumerate(rows):
                batch[k, :len(ids[r])] = ids[r]
                mask[k, :len(ids[r])] = 1.0
            out[rows] = self._forward(batch, mask)
        return out

    def _forward(self, ids: npt.NDArray[np.int64], mask: Vectors) -> Vectors:
        words, positions, token_type, ln_w, ln_b = self._embed
        n, width = ids.shape
        heads, dim = self._heads, self._dim
        size = dim // heads
        x = _layer_norm(words[ids] + positions[:width] + token_type, ln_w, ln_b, self._eps)
        padding = ((1.0 - mask) * -1e9)[:, None, None, :]
        for layer in self._layers:
            q, k, v = np.split(x @ layer["qkv_w"] + layer["qkv_b"], 3, axis=-1)
            q = q.reshape(n, width, heads, size).transpose(0, 2, 1, 3)
            k = k.reshape(n, width, heads, size).transpose(0, 2, 3, 1)
            v = v.reshape(n, width, heads, size).transpose(0, 2, 1, 3)
            scores = (q @ k) / np.float32(math.sqrt(size)) + padding
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            scores /= scores.sum(axis=-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(n, width, dim)
            x = _layer_norm(x + context @ layer["out_w"] + layer["out_b"],
                            layer["ln1_w"], layer["ln1_b"], self._eps)
            hidden = _gelu(x @ layer["up_w"] + layer["up_b"])
            x = _layer_norm(x + hidden @ layer["down_w"] + layer["down_b"],
                            layer["ln2_w"], layer["ln2_b"], self._eps)
        if self._cls_pooling:
            pooled = x[:, 0]
        else:
            pooled = (x * mask[:, :, None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)
        if self._normalize:
            pooled = pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.asarray(pooled, dtype=np.float32)


def _layer(w: dict[str, Vectors], p: str) -> dict[str, Vectors]:
    """One encoder layer's weights, transposed once for `x @ W` and Q/K/V fused."""
    qkv = ("attention.self.query", "attention.self.key", "attention.self.value")
    return {
        "qkv_w": np.ascontiguousarray(np.concatenate([w[p + n + ".weight"] for n in qkv]).T),
        "qkv_b": np.concatenate([w[p + n + ".bias"] for n in qkv]),
        "out_w": np.ascontiguousarray(w[p + "attention.output.dense.weight"].T),
        "out_b": w[p + "attention.output.dense.bias"],
        "ln1_w": w[p + "attention.output.LayerNorm.weight"],
        "ln1_b": w[p + "attention.output.LayerNorm.bias"],
        "up_w": np.ascontiguousarray(w[p + "intermediate.dense.weight"].T),
        "up_b": w[p + "intermediate.dense.bias"],
        "down_w": np.ascontiguousarray(w[p + "output.dense.weight"].T),
        "down_b": w[p + "output.dense.bias"],
        "ln2_w": w[p + "output.LayerNorm.weight"],
        "ln2_b": w[p + "output.LayerNorm.bias"],
    }


def _layer_norm(x: Vectors, weight: Vectors, bias: Vectors, eps: float) -> Vectors:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: Vectors = (x - mean) / np.sqrt(var + np.float32(eps)) * weight + bias
    return out


def _gelu(x: Vectors) -> Vectors:
    """BERT's exact (erf) GELU; numpy has no erf, math.erf per element is too slow."""
    from scipy.special import erf  # type: ignore[import-untyped]  # numpy's companion

    return np.asarray(0.5 * x * (1.0 + erf(x / np.float32(math.sqrt(2.0)))), dtype=np.float32)


def _read_json(path: Path, missing_ok: bool = False) -> dict[str, Any]:
    if missing_ok and not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read: {exc}", file=str(path)) from None
    if not isinstance(data, dict):
        raise DataError("expected a JSON object", file=str(path))
    return data


class EmbeddingCache:
    """An `Embedder` that remembers vectors by text, in memory and in one `.npz` per model
    under `folder`, so an evaluation that re-reads a dataset encodes each prompt once."""

    def __init__(self, inner: Embedder, folder: str | os.PathLike[str] | None) -> None:
        self.inner = inner
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in inner.fingerprint)
        self.path = Path(folder) / f"{safe}.npz" if folder is not None else None
        self._rows: dict[str, Vectors] = {}
        if self.path is not None and self.path.is_file():
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    for key, row in zip(data["keys"].tolist(), data["vectors"], strict=True):
                        self._rows[key] = row
            except (OSError, ValueError, KeyError):
                self._rows = {}  # a damaged cache is rebuilt, never trusted

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts: Sequence[str]) -> Vectors:
        keys = [hashlib.sha256(t.encode("utf-8", "surrogatepass")).hexdigest()[:32]
                for t in texts]
        missing = list(dict.fromkeys(k for k in keys if k not in self._rows))
        if missing:
            first = dict(zip(keys, texts, strict=True))
            fresh = self.inner.encode([first[k] for k in missing])
            self._rows.update(zip(missing, fresh, strict=True))
            self._save()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._rows[k] for k in keys]).astype(np.float32)

    def _save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, keys=np.array(list(self._rows), dtype=str),
                         vectors=np.stack(list(self._rows.values())))
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def default_cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "taskroute" / "embeddings"
