"""A learned router file named in the policy picks a task's first model."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

from taskroute.cli.main import main
from taskroute.exceptions import PolicyError
from taskroute.policy import load_policy
from taskroute.router import Router

HARD = ["Prove that the integral of {x} converges", "Derive the eigenvalues of matrix {x}",
        "Solve the differential equation {x} step by step"]
EASY = ["Say hello to {x}", "What colour is the {x}?", "Thank {x} for the gift"]


def outcomes(path: Path) -> None:
    """Cheap model right only on easy prompts; strong right on everything."""
    rng = random.Random(3)
    with path.open("w") as out:
        for i in range(300):
            hard = i % 2 == 0
            text = rng.choice(HARD if hard else EASY).format(x=f"item{rng.randrange(50)}")
            out.write(json.dumps({"id": str(i), "text": text, "outcomes": {
                "cheap": {"score": 0.0 if hard else 1.0, "cost": 0.0001},
                "strong": {"score": 1.0, "cost": 0.01},
            }}) + "\n")


def policy_text(router_file: str) -> str:
    return f"""\
models:
  sim/small: {{tier: fast, price: {{input: 0.1, output: 0.4}}}}
  sim/large: {{tier: strong, price: {{input: 5, output: 20}}}}
tiers:
  fast: {{use: sim/small, escalate to: [strong]}}
  strong: {{use: sim/large}}
tasks:
  chat: fast
  qa:
    tier: fast
    router:
      file: {router_file}
      models: {{cheap: sim/small, strong: sim/large}}
      target: 0.7
"""


@pytest.fixture(scope="module")
def router_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("learned")
    data = folder / "outcomes.jsonl"
    outcomes(data)
    assert main(["train", str(data), "-o", str(folder / "router.npz"), "--C", "1"]) == 0
    return folder / "router.npz"


def test_learned_router_picks_the_first_model_and_says_why(
    router_file: Path, tmp_path: Path
) -> None:
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(policy_text(str(router_file)))
    router = Router(load_policy(policy_path), classifier=False)
    easy = router.decide({"messages": [{"role": "user", "content": "Say hello to item7"}],
                          "metadata": {"task": "qa"}})
    hard = router.decide({"messages": [{"role": "user",
                                        "content": "Prove that the integral of item7 converges"}],
                          "metadata": {"task": "qa"}})
    assert (easy.model, easy.chain) == ("sim/small", ("sim/small", "sim/large"))
    assert (hard.model, hard.tier, hard.chain) == ("sim/large", "strong", ("sim/large",))
    assert any("learned router picked sim/large" in r for r in hard.reasons)
    chat = router.decide({"messages": [{"role": "user", "content": "Prove it"}]})
    assert chat.model == "sim/small"  # tasks without a router are untouched


def test_router_file_path_is_relative_to_the_policy(router_file: Path) -> None:
    policy_path = router_file.parent / "policy.yaml"
    policy_path.write_text(policy_text(router_file.name))
    assert load_policy(policy_path).tasks["qa"].router is not None


def test_missing_router_file_is_a_policy_error(tmp_path: Path) -> None:
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(policy_text("nowhere.npz"))
    with pytest.raises(PolicyError, match="no learned router file"):
        load_policy(policy_path)


def test_unmapped_models_are_a_policy_error(router_file: Path, tmp_path: Path) -> None:
    policy_path = tmp_path / "policy.yaml"
    mapping = "      models: {cheap: sim/small, strong: sim/large}\n"
    policy_path.write_text(policy_text(str(router_file)).replace(mapping, ""))
    with pytest.raises(PolicyError, match="none of the learned router's models"):
        Router(load_policy(policy_path), classifier=False)


def test_a_rebuilt_router_shares_an_unchanged_file_and_reads_a_changed_one(
    router_file: Path, tmp_path: Path
) -> None:
    import os
    import shutil

    copy = tmp_path / "router.npz"
    shutil.copy(router_file, copy)
    policy_path = tmp_path / "policy.yaml"
    policy_path.write_text(policy_text(str(copy)))
    router = Router(load_policy(policy_path), classifier=False)
    same = router.with_policy(load_policy(policy_path))
    assert same._learned_routers["qa"][0] is router._learned_routers["qa"][0]
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # retrained
    changed = same.with_policy(load_policy(policy_path))
    assert changed._learned_routers["qa"][0] is not router._learned_routers["qa"][0]
