"""HTML report with PNG plots (matplotlib, from the `taskroute[eval]` extra), self-contained."""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from taskroute.evaluate.replay import StrategyScore


def _pyplot() -> Any:
    try:
        import matplotlib
    except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
        raise ModuleNotFoundError(
            "the HTML report needs matplotlib: pip install 'taskroute[eval]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def cost_quality_plot(results: Sequence[StrategyScore], cost_label: str) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for res in results:
        xs, ys = [p.cost for p in res.curve], [p.quality for p in res.curve]
        if len(set(zip(xs, ys, strict=True))) == 1:
            ax.scatter(xs[:1], ys[:1], marker="s", s=28, label=res.name)
        else:
            pts = sorted(zip(xs, ys, strict=True))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=res.name)
    ax.set_xlabel(cost_label)
    ax.set_ylabel("quality")
    ax.set_title("Cost vs quality as each strategy's knob moves")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    out = _png(fig)
    plt.close(fig)
    return out


def strong_share_plot(results: Sequence[StrategyScore]) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for res in results:
        if res.sweep:
            ax.plot([100 * p.strong_share for p in res.sweep], [p.quality for p in res.sweep],
                    marker=".", label=res.name)
    ax.set_xlabel("strong-model calls (%)")
    ax.set_ylabel("quality")
    ax.set_title("RouteLLM threshold sweep")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    out = _png(fig)
    plt.close(fig)
    return out


def table_rows(results: Sequence[StrategyScore]) -> tuple[list[str], list[list[str]]]:
    keys: list[str] = []
    for res in results:
        keys.extend(k for k in res.figures if k not in keys)
    rows = [[res.name] + [f"{res.figures[k]:.4g}" if k in res.figures else "" for k in keys]
            for res in results]
    return ["strategy", *keys], rows


def write_report(path: str | os.PathLike[str], results: Sequence[StrategyScore], *,
                 title: str, notes: Sequence[str] = (), cost_label: str = "cost") -> None:
    header, rows = table_rows(results)
    cells = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    images = [cost_quality_plot(results, cost_label)]
    if any(r.sweep for r in results):
        images.insert(0, strong_share_plot(results))
    imgs = "".join(f'<p><img alt="plot" src="data:image/png;base64,{b}"></p>' for b in images)
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    Path(path).write_text(
        "<!doctype html><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font:14px sans-serif;margin:2em}td,th{padding:3px 8px;"
        "border-bottom:1px solid #ddd;text-align:right}</style>"
        f"<h1>{html.escape(title)}</h1><ul>{items}</ul>"
        f"<table><tr>{cells}</tr>{body}</table>{imgs}", encoding="utf-8")
