"""The bundled catalogue of current models (`taskroute/data/models.yaml`): each one's provider
kind, tier, context window and list prices, with when and where the prices were checked.

Read by `taskroute models`; a policy copies the rows it wants into its `models:`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from taskroute.policy.model import Price


@dataclass(frozen=True, slots=True)
class CatalogueModel:
    id: str                 # provider/model, as a policy writes it
    kind: str               # the provider kind (`api:`) that serves it
    tier: str
    context_window: int
    price: Price
    checked: str            # the date its price was checked
    source: str


def load_catalogue(text: str | None = None) -> list[CatalogueModel]:
    """The catalogue's models, in file order (`text`: another catalogue's YAML)."""
    if text is None:
        text = resources.files("taskroute.data").joinpath("models.yaml").read_text("utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    vendors: dict[str, Any] = data.get("vendors") or {}
    out = []
    for model_id, row in (data.get("models") or {}).items():
        price = row["price"]
        vendor = vendors.get(row["kind"]) or {}
        out.append(CatalogueModel(
            id=model_id, kind=row["kind"], tier=row["tier"],
            context_window=int(row["context window"]),
            price=Price(input=float(price["input"]), output=float(price["output"]),
                        cached_input=_maybe(price.get("cached input")),
                        cache_write=_maybe(price.get("cache write"))),
            checked=str(vendor.get("checked", "unknown")),
            source=" ".join(str(vendor.get("source", "unknown")).split())))
    return out


def _maybe(value: Any) -> float | None:
    return None if value is None else float(value)
