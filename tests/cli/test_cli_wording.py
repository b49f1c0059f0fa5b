"""Small CLI truths: where a named class came from; --policy taken by `policy show|check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_route_policy_cli import run


def test_route_says_the_class_came_from_the_callers_task_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(["route", "--task", "coding", "hi", "--no-classifier"], capsys)
    assert code == 0
    assert "The caller named the task coding in its task argument (--task" in out
    assert "X-Taskroute-Task" not in out


@pytest.mark.parametrize("action", ["show", "check"])
def test_policy_show_and_check_take_policy_like_every_other_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], action: str
) -> None:
    code, text, _ = run(["policy", "show", "--yaml"], capsys)
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace("tiers:", "# mine\ntiers:", 1))
    code, out, err = run(["policy", action, "--policy", str(path)], capsys)
    assert code == 0, err
    assert ("Extraction (pull named fields" if action == "show" else "ok — 6 models") in out


def test_ab_report_never_asks_for_more_requests_once_significant() -> None:
    from taskroute.cli.ab import render

    def metric(significant: bool) -> dict[str, object]:
        return {"a": 0.5, "b": 0.6, "difference": 0.1, "ci95": [0.01, 0.19],
                "significant": significant, "needed_per_variant": 145, "more_needed": 45,
                "why": None if significant else "p = 0.12, not below 0.05"}

    text = render({"comparisons": [{"variant": "b", "control": "a", "metrics": {
        "first_pass": metric(True), "cost_per_task": metric(False),
        "correction": {"a": None, "b": None, "difference": None, "significant": False,
                       "why": "no feedback to compare: 0 and 3"}}}]})
    significant, unknown, empty = text.splitlines()[1:]
    assert significant.endswith("SIGNIFICANT") and "more requests" not in significant
    assert unknown.endswith(
        "not significant: p = 0.12, not below 0.05; ~45 more requests per variant to tell")
    assert empty.endswith("not enough data: no feedback to compare: 0 and 3")


async def test_stats_show_refusals_apart_from_routed_requests(tmp_path: Path) -> None:
    import time

    from taskroute.cli.stats import render_table
    from taskroute.store.base import Refusal
    from taskroute.store.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "log.db")
    for i, status in enumerate((401, 429, 429)):
        store.add_refused(Refusal(request_id=f"req-{i}", ts=time.time(), api="openai",
                                  path="/v1/chat/completions", http_status=status,
                                  type="x", reason="no"))
    await store.flush()
    text = render_table(await store.route_stats(since_s=None))
    await store.aclose()
    assert "0 requests over all time" in text
    assert text.endswith("3 more refused before routing (1 × 401, 2 × 429)")
