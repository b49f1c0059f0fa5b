"""databricks-dolly-15k's prompts as task-classifier data: its categories mapped to task classes.

Shared by `train_task_classifier.py` (training and the cross-source figure) and
`score_task_classifier.py` (a model scored on prompts it was not trained on). Dolly is
(c) Databricks, Inc., CC BY-SA 3.0; a file trained on it carries that licence.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["DOLLY_CLASSES", "HEADLINE", "load_dolly"]

# Creative writing is `writing` (a stronger tier than chat in the default policy);
# brainstorming, lists of ideas, is chat.
DOLLY_CLASSES = {
    "closed_qa": "retrieval_qa", "information_extraction": "extraction", "open_qa": "qa",
    "general_qa": "qa", "classification": "classification", "summarization": "summarization",
    "creative_writing": "writing", "brainstorming": "chat",
}
# The categories the headline figure is taken over: those the issue maps to a class of its own.
HEADLINE = ("classification", "closed_qa", "general_qa", "information_extraction", "open_qa",
            "summarization")


def load_dolly(path: Path) -> tuple[list[str], list[str], list[str]]:
    """Dolly's prompts (the instruction, then its passage where there is one), their task
    classes and their own categories."""
    texts: list[str] = []
    labels: list[str] = []
    categories: list[str] = []
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        if item.get("category") not in DOLLY_CLASSES or not isinstance(
                item.get("instruction"), str):
            raise SystemExit(f"{path}: row {row}: needs 'instruction' and a 'category' of "
                             f"{', '.join(sorted(DOLLY_CLASSES))}")
        context = (item.get("context") or "").strip()
        texts.append(item["instruction"].strip() + (f"\n\n{context}" if context else ""))
        labels.append(DOLLY_CLASSES[item["category"]])
        categories.append(item["category"])
    return texts, labels, categories
