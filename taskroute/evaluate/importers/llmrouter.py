"""LLMRouter-style JSON: `[{"question": str, "scores": {model: score}, ...}]` plus a price file.

The price file maps each model to `input_price` and `output_price` in USD per million tokens.
Tokens are estimated from the text (`estimate_tokens`: about four characters per token); the
output length is not recorded in this format, so every answer is assumed to be
`output_tokens` long (default 200). Costs therefore rank models by price and grow with the
prompt, which is what a strategy trades against quality.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from taskroute.evaluate.datasets import Outcome, Record
from taskroute.exceptions import DataError

DEFAULT_OUTPUT_TOKENS = 200


def estimate_tokens(text: str) -> int:
    """A cheap token estimate: one token per four characters, at least one."""
    return max(1, math.ceil(len(text) / 4))


def read_prices(path: Path) -> dict[str, tuple[float, float]]:
    """`{model: (input USD per token, output USD per token)}` from a price file."""
    raw = _read_json(path)
    if not isinstance(raw, dict):
        raise DataError("expected an object of models", file=str(path))
    prices = {}
    for model, entry in raw.items():
        if not isinstance(entry, dict):
            raise DataError("expected an object", file=str(path), field=model)
        pair = []
        for key in ("input_price", "output_price"):
            value = entry.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise DataError(f"expected a price >= 0, got {value!r}", file=str(path),
                                field=f"{model}.{key}")
            pair.append(float(value) / 1e6)
        prices[str(model)] = (pair[0], pair[1])
    return prices


def load(path: Path, prices: Path | None = None,
         output_tokens: int = DEFAULT_OUTPUT_TOKENS) -> list[Record]:
    if prices is None and (path.parent / "prices.json").is_file():
        prices = path.parent / "prices.json"
    price_table = read_prices(prices) if prices is not None else {}
    raw = _read_json(path)
    if not isinstance(raw, list):
        raise DataError("expected a JSON list of questions", file=str(path))
    records = []
    for row, item in enumerate(raw, start=1):
        records.append(_record(item, row, str(path), price_table, output_tokens))
    return records


def _record(item: Any, row: int, file: str, prices: dict[str, tuple[float, float]],
            output_tokens: int) -> Record:
    if not isinstance(item, dict):
        raise DataError("expected an object", file=file, row=row)
    text = item.get("question")
    if not isinstance(text, str):
        raise DataError("expected a string", file=file, row=row, field="question")
    scores = item.get("scores")
    if not isinstance(scores, dict) or not scores:
        raise DataError("expected a non-empty object", file=file, row=row, field="scores")
    tokens_in = estimate_tokens(text)
    outcomes = {}
    for model, score in scores.items():
        if isinstance(score, bool) or not isinstance(score, int | float) or not 0 <= score <= 1:
            raise DataError(f"expected a score in 0..1, got {score!r}", file=file, row=row,
                            field=f"scores.{model}")
        cost = None
        if prices:
            if model not in prices:
                raise DataError("model has no price", file=file, row=row,
                                field=f"scores.{model}")
            price_in, price_out = prices[model]
            cost = tokens_in * price_in + output_tokens * price_out
        outcomes[str(model)] = Outcome(float(score), cost=cost)
    meta = {k: v for k, v in item.items() if k not in ("question", "scores")}
    return Record(str(row), text, outcomes, None, meta)


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise DataError(f"cannot open: {exc.strerror}", file=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON at line {exc.lineno}: {exc.msg}", file=str(path)) from exc
