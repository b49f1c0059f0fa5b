"""Sticky variant assignment, the A/B statistics, and the policy's experiment sections."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from taskroute.exceptions import PolicyError
from taskroute.policy.loader import default_policy_text, load_policy, parse_policy
from taskroute.policy.model import VariantSpec
from taskroute.quality.abtest import bootstrap_means, two_proportions
from taskroute.quality.variants import assign, position

ARMS = (VariantSpec("control", 70), VariantSpec("lean", 20), VariantSpec("bold", 10))


def test_the_same_user_always_gets_the_same_variant() -> None:
    for user in ("alice", "bob", "user-42"):
        assert len({assign(ARMS, user).name for _ in range(50)}) == 1


def test_assignment_is_a_stable_hash_not_pythons() -> None:
    # fixed by SHA-256: the same in every process and Python version
    assert position("alice", "control,lean,bold") == pytest.approx(
        int.from_bytes(__import__("hashlib").sha256(b"control,lean,bold\x00alice").digest()[:8],
                       "big") / 2 ** 64)


def test_weights_are_honoured_over_ten_thousand_users() -> None:
    counts = Counter(assign(ARMS, f"user-{i}").name for i in range(10_000))
    for arm in ARMS:
        share = counts[arm.name] / 10_000
        assert abs(share - arm.weight / 100) < 0.015, (arm.name, share)


def test_anonymous_requests_are_spread_by_weight_too() -> None:
    rng = random.Random(1)
    counts = Counter(assign(ARMS, None, rng=rng).name for _ in range(10_000))
    assert abs(counts["control"] / 10_000 - 0.7) < 0.02


def test_z_test_finds_a_real_difference_and_not_a_tiny_one() -> None:
    known = two_proportions(800, 1000, 850, 1000)   # 80% vs 85% first pass
    assert known["significant"] and known["p_value"] < 0.01
    assert known["difference"] == pytest.approx(0.05)
    assert known["ci95"][0] > 0
    assert known["more_needed"] == 0          # ~900 per arm needed; 1000 are in
    tiny = two_proportions(800, 1000, 805, 1000)
    assert not tiny["significant"] and tiny["more_needed"] > 10_000


def test_z_test_matches_the_textbook_value() -> None:
    # p1 = .5, p2 = .6, n = 200 each: pooled .55, z = .1 / sqrt(.55*.45*(2/200)) = 2.0101
    result = two_proportions(100, 200, 120, 200)
    assert result["z"] == pytest.approx(2.0101, abs=1e-3)
    assert result["p_value"] == pytest.approx(0.0444, abs=1e-3)


def test_z_test_withholds_significance_on_a_handful_of_requests() -> None:
    # 0 of 4 against 4 of 4: p ≈ 0.005, but 2 successes expected per variant, not 5
    tiny = two_proportions(0, 4, 4, 4)
    assert tiny["p_value"] < 0.01 and tiny["difference"] == 1.0
    assert not tiny["significant"]
    assert tiny["why"] == "too few requests: 4 and 4; about 10 per variant needed"
    assert tiny["needed_per_variant"] == 10 and tiny["more_needed"] == 6
    rare = two_proportions(0, 300, 4, 300, counted="feedback")     # 4 in 600: 2 expected each
    assert rare["p_value"] < 0.05 and not rare["significant"]
    assert rare["why"].startswith("too few feedback: 300 and 300; about 750 per variant")
    assert two_proportions(400, 1000, 450, 1000)["significant"]     # a clear large sample
    assert two_proportions(800, 1000, 805, 1000)["why"] == "p = 0.78, not below 0.05"


def test_bootstrap_withholds_significance_on_few_values_or_below_the_resolution() -> None:
    rng = random.Random(5)
    # "0 ms against 1 ms" on 3 and 4 answered requests: the interval excludes 0, on 7 values
    fast, slow = [0.0002, 0.0003, 0.0001], [0.0012, 0.0013, 0.0011, 0.0014]
    few = bootstrap_means(fast, slow, resolution=0.001, rounds=400)
    assert few["ci95"][0] > 0 and not few["significant"]
    assert few["why"] == "too few requests: 3 and 4; about 30 per variant needed"
    # 0.4 ms apart on 500 each: plainly real in the interval, but under the millisecond
    a = [rng.gauss(0.0100, 0.0001) for _ in range(500)]
    b = [rng.gauss(0.0104, 0.0001) for _ in range(500)]
    close = bootstrap_means(a, b, resolution=0.001, unit=" s", rounds=400)
    assert close["ci95"][0] > 0 and not close["significant"]
    assert close["why"] == "the difference (0.000396 s) is below the resolution of 0.001 s"
    assert close["needed_per_variant"] is None
    # 20 ms apart on 500 each: still significant
    c = [rng.gauss(0.120, 0.030) for _ in range(500)]
    d = [rng.gauss(0.140, 0.030) for _ in range(500)]
    clear = bootstrap_means(c, d, resolution=0.001, rounds=400)
    assert clear["significant"] and clear["why"] is None


def test_bootstrap_tells_a_cost_difference_from_noise() -> None:
    rng = random.Random(3)
    cheap = [rng.gauss(0.010, 0.002) for _ in range(500)]
    dear = [rng.gauss(0.012, 0.002) for _ in range(500)]
    same = [rng.gauss(0.010, 0.002) for _ in range(500)]
    assert bootstrap_means(cheap, dear, rounds=400)["significant"]
    noise = bootstrap_means(cheap, same, rounds=400)
    assert not noise["significant"] and noise["why"] == "the 95% interval includes no difference"


def _policy_with(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(default_policy_text() + "\n" + extra, encoding="utf-8")
    return path


def test_variants_with_an_override_and_a_file(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text(
        default_policy_text().replace("name: default", "name: other"), encoding="utf-8")
    policy = load_policy(_policy_with(tmp_path, """
variants:
  control: {weight: 50}
  lean:
    weight: 30
    override:
      adjust: [{when: input_tokens >= 0, move down: 1, because: cheaper for everyone}]
  other: {weight: 20, policy: other.yaml}
shadow: {override: {name: candidate, when unsure: qa}}
budgets: {per user: 5, per day: 100, step down below: 25%}
"""))
    control, lean, other = policy.variants
    assert control.policy is None and lean.weight == 30
    assert lean.policy is not None and len(lean.policy.adjust_rules) == 1
    assert lean.policy.tasks == policy.tasks
    assert other.policy is not None and other.policy.name == "other"
    assert policy.shadow is not None and policy.shadow.default_task == "qa"
    assert policy.shadow.name == "candidate" and not policy.shadow.variants
    assert policy.budgets is not None and policy.budgets.step_down_below == 0.25
    assert policy.budgets.per_user_usd == 5 and policy.budgets.per_key_usd is None


@pytest.mark.parametrize(("section", "problem"), [
    ("variants:\n  only: {weight: 1}\n", "at least two variants"),
    ("variants:\n  a: {weight: 1}\n  b: {wieght: 1}\n", "unknown key 'wieght'"),
    ("variants:\n  a: {weight: 1}\n  b: {weight: 1, override: {tasks: {chat: huge}}}\n",
     "expected one of fast, balanced, strong"),
    ("budgets: {per user: -1}\n", "expected a number from 0"),
    ("budgets: {step down below: 20%}\n", "at least one of"),
    ("shadow: missing.yaml\n", "does not load"),
])
def test_bad_experiment_sections_fail_with_file_and_line(
    tmp_path: Path, section: str, problem: str
) -> None:
    path = _policy_with(tmp_path, section)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert problem in message and str(path) in message


def test_the_error_in_an_override_points_at_the_override_line() -> None:
    text = default_policy_text() + (
        "\nvariants:\n  a: {weight: 1}\n  b:\n    weight: 1\n    override:\n"
        "      tasks: {chat: huge}\n")
    line = text.count("\n")  # the last line
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, file="p.yaml")
    assert f"p.yaml:{line}" in str(caught.value)
