"""The pure half of the reports, with no database: what any `LogReader` backend hands over (fine
groups of `Counts`, per-request samples, hourly rows) and what the reports make of it."""

from __future__ import annotations

from taskroute.policy.model import Price
from taskroute.quality import abtest, timeseries
from taskroute.quality.metrics import Counts, FineKey, report

MINI, MID = "openai/gpt-4.1-mini", "openai/gpt-4.1"


def _groups() -> dict[FineKey, Counts]:
    return {
        ("chat", "fast", MINI, "default", "A"): Counts(requests=30, completed=30, first_pass=30,
                                                       answered_unescalated=30, cost_usd=0.03,
                                                       attempts=30),
        ("chat", "balanced", MID, "default", "B"): Counts(requests=10, completed=10,
                                                          first_pass=8, escalated=2,
                                                          answered_unescalated=8, cost_usd=0.1,
                                                          attempts=12, errors=2),
    }


def test_the_report_groups_totals_and_marks_over_serving() -> None:
    got = report(_groups(), since_s=3600.0, now=10_000.0, by="tier",
                 tier_order=("fast", "balanced", "strong"))
    assert (got["since"], got["until"], got["window_s"]) == (6400.0, 10_000.0, 3600.0)
    assert [r["tier"] for r in got["rows"]] == ["fast", "balanced"]     # busiest first
    balanced = got["rows"][1]
    assert balanced["over_served"] == 0.8          # chat did fine at fast: 8 answered above it
    assert balanced["escalation"] == 0.2 and balanced["upstream_error"] == round(2 / 12, 6)
    assert got["total"]["requests"] == 40 and got["total"]["misrouting"] == 8 / 40


def test_the_ab_comparison_needs_two_variants() -> None:
    counts = abtest.per_variant(_groups())
    assert abtest.variant_names(counts, ["B"]) == ["B", "A"]            # the policy's first
    one = abtest.compare(counts, ["A"], {})
    assert one["comparisons"] == [] and "fewer than two variants" in one["note"]
    samples = {"A": ([0.001] * 30, [0.2] * 30), "B": ([0.01] * 10, [0.5] * 10)}
    two = abtest.compare(counts, ["A", "B"], samples)
    (comparison,) = two["comparisons"]
    assert (comparison["control"], comparison["variant"]) == ("A", "B")
    assert comparison["metrics"]["escalation"]["difference"] == 0.2
    assert comparison["metrics"]["cost_per_request"]["difference"] == 0.009


def test_the_time_series_prices_the_baseline_per_hour() -> None:
    rows = [(10, 2, 0.002, 1, 200.0, 100.0), (11, 1, 0.001, 0, 100.0, 50.0)]
    got = timeseries.hourly(rows, MID, Price(input=2.0, output=8.0))
    assert [p["hour"] for p in got["points"]] == [36_000, 39_600]
    assert got["points"][0]["baseline_usd"] == round((200 * 2 + 100 * 8) / 1e6, 8)
    assert got["baseline_usd"] == round((300 * 2 + 150 * 8) / 1e6, 8)
    assert got["baseline_model"] == MID and got["cost_usd"] == 0.003
