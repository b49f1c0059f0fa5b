"""Build taskroute/data/task_examples.jsonl from the hand-written sources.

The sources are `scripts/task_examples/<task>.txt`: one file per task class, examples
separated by a line holding only `%%`. Writing them as plain text keeps multi-line pasted
context, code blocks and JSON readable; the JSONL is what ships and what training reads.

`scripts/task_examples/passages.dat` holds passages asked different things: each block is a
passage, then lines `>> <task> | <instruction>`; every instruction, with the passage after a
blank line, makes one example of its task. The same words then appear under several classes,
so the classifier learns that the instruction, not the passage's topic, names the task.

`scripts/task_templates.py` adds generated examples of the same kind: invented passages, each
asked for a detail, a list and its gist.

    python scripts/build_task_examples.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from task_templates import generate, generate_questions  # noqa: E402

SOURCES = Path(__file__).resolve().parent / "task_examples"
TARGET = ROOT / "taskroute" / "data" / "task_examples.jsonl"
SEPARATOR = "%%"
ASKS = ">> "


def read_examples(path: Path) -> list[str]:
    """Split one source file into its examples, dropping blank ones."""
    chunks: list[list[str]] = [[]]
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() == SEPARATOR:
            chunks.append([])
        else:
            chunks[-1].append(line)
    return [text for chunk in chunks if (text := "\n".join(chunk).strip())]


def read_passages(path: Path) -> list[tuple[str, str]]:
    """(task, text) pairs from a passages file: each instruction with its block's passage."""
    pairs: list[tuple[str, str]] = []
    for block in read_examples(path):
        lines = block.splitlines()
        passage = "\n".join(line for line in lines if not line.startswith(ASKS)).strip()
        for line in lines:
            if line.startswith(ASKS):
                task, _, instruction = line.removeprefix(ASKS).partition("|")
                pairs.append((task.strip(), f"{instruction.strip()}\n\n{passage}"))
    return pairs


def main() -> int:
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    sources = [(path.stem, [(path.stem, t) for t in read_examples(path)])
               for path in sorted(SOURCES.glob("*.txt"))]
    sources += [(path.name, read_passages(path)) for path in sorted(SOURCES.glob("*.dat"))]
    written = len(sources)
    sources.append(("task_templates", generate()))
    sources.append(("task_questions", generate_questions()))
    for k, (name, examples) in enumerate(sources):
        for task, text in examples:
            if text in seen and k >= written:
                continue  # a generated prompt that a hand-written one already says
            if text in seen:
                print(f"duplicate example in {name}: {text[:60]!r}", file=sys.stderr)
                return 1
            seen.add(text)
            rows.append({"text": text, "task": task})
        print(f"{name:15s} {len(examples):4d}")
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    with TARGET.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} examples to {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
