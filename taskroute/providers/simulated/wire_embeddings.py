"""OpenAI's `POST /v1/embeddings`, as the simulated upstream answers it: a deterministic unit
vector per input (from its text's hash, so the same text always embeds the same), as floats or
as base64 little-endian float32 (what the official SDK asks for by default), with usage."""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

from taskroute.providers.simulated.wire_openai import BadRequest

DIMENSIONS = 64


def inputs(body: Any) -> list[str]:
    """The texts (or token lists, as their text) to embed; BadRequest if there are none."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        raise BadRequest("'model' is required")
    value = body.get("input")
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, int) for v in value):
            return [" ".join(map(str, value))]
        if all(isinstance(v, str) and v for v in value) or all(
                isinstance(v, list) and v for v in value):
            return [v if isinstance(v, str) else " ".join(map(str, v)) for v in value]
    raise BadRequest("'input' must be a non-empty string or list")


def vector(text: str, dimensions: int) -> list[float]:
    raw = b""
    counter = 0
    while len(raw) < dimensions * 4:
        raw += hashlib.sha256(f"{counter}|{text}".encode()).digest()
        counter += 1
    values = [v / 2**31 - 1.0 for v in struct.unpack(f"<{dimensions}I", raw[:dimensions * 4])]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


MAX_DIMENSIONS = 65_536


def body(request: dict[str, Any], texts: list[str]) -> dict[str, Any]:
    dimensions = request.get("dimensions") or DIMENSIONS
    if not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS:
        raise BadRequest(f"'dimensions' must be from 1 to {MAX_DIMENSIONS}")
    base64_wanted = request.get("encoding_format") == "base64"
    data = []
    for i, text in enumerate(texts):
        values = vector(text, int(dimensions))
        embedding: Any = values
        if base64_wanted:
            embedding = base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    tokens = sum(max(1, len(t) // 4) for t in texts)
    return {"object": "list", "data": data, "model": request["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
