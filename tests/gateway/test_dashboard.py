"""The dashboard in a real headless browser (Debian's chromium driven by Playwright): no console
errors, and the numbers it shows are the stats endpoint's. Skipped when no browser is there
(scripts/install_browser.sh installs one). The screenshot lands in artifacts/."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from taskroute.policy.model import Policy, VariantSpec
from tests.gateway.conftest import RunningGateway, StartGateway

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on this machine: run scripts/install_browser.sh")


def pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f}%"


def usd(v: float | None) -> str:
    return "–" if v is None else f"${v:.6f}"


def ms(v: float | None) -> str:
    return "–" if v is None else f"{round(v * 1000)} ms"


def expected_cells(row: dict[str, Any]) -> list[str]:
    return [row["task"], row["tier"], row["model"], str(row["requests"]),
            pct(row["first_pass"]), pct(row["escalation"]), usd(row["cost_per_task"]),
            ms(row["latency_p50"]), ms(row["latency_p95"]), pct(row["correction"]),
            pct(row["misrouting"])]


def _variants(policy: Policy) -> Policy:
    return replace(policy, variants=(VariantSpec("control", 50),
                                     VariantSpec("lean", 50, replace(policy, name="lean"))))


async def _known_traffic(gw: RunningGateway) -> None:
    for i, task in enumerate(["summarization"] * 4 + ["qa"] * 3 + ["coding"] * 2):
        if i == 1:
            gw.upstream.truncate("gpt-4.1-mini", times=1)     # one escalation
        status, headers, _ = await gw.request(
            "POST", "/v1/chat/completions", json={
                "model": f"taskroute/{task}", "user": f"user-{i}",
                "messages": [{"role": "user", "content": f"Summarize item {i}, please."}]})
        assert status == 200
        if i == 0:
            await gw.store.flush()
            await gw.request("POST", "/v1/taskroute/feedback", json={
                "request_id": headers["X-Taskroute-Request-Id"], "thumbs": "down",
                "corrected": True, "task": "extraction"})   # a misroute, named
    await gw.store.flush()


async def _json(gw: RunningGateway, path: str) -> Any:
    status, _, raw = await gw.request("GET", path)
    assert status == 200, raw
    return json.loads(raw)


async def _texts(page: Any, selector: str) -> list[list[str]]:
    return list(await page.eval_on_selector_all(
        selector, "rows => rows.map(r => [...r.cells].map(c => c.textContent))"))


@asynccontextmanager
async def _browser(playwright_api: Any) -> AsyncIterator[Any]:
    """Debian's chromium, headless, closed after the test's pages."""
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def _opened(browser: Any, url: str, problems: list[str]) -> Any:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    await page.goto(url)
    await page.wait_for_selector("body[data-loaded]", timeout=15_000)
    assert await page.get_attribute("body", "data-loaded") == "true"
    return page


async def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / name), full_page=True)


async def test_dashboard_shows_the_endpoint_numbers_and_refreshes_itself(
    start_gateway: StartGateway,
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    gw = await start_gateway(edit_policy=_variants)
    await _known_traffic(gw)
    problems: list[str] = []
    async with _browser(playwright_api) as browser:
        page = await _opened(browser, gw.url + "/dashboard", problems)
        stats = await _json(gw, "/v1/taskroute/stats?by=route&since=1h")
        series = await _json(gw, "/v1/taskroute/timeseries?since=1h&step=auto")
        assert await _texts(page, "#route-table tbody tr") == [
            expected_cells(r) for r in stats["rows"]]
        assert series["step"] == "minute" and 60 <= len(series["points"]) <= 62
        assert await page.text_content("#kpi-requests") == str(stats["total"]["requests"])
        assert await page.text_content("#kpi-cost") == usd(series["cost_usd"])
        assert await page.text_content("#kpi-baseline") == usd(series["baseline_usd"])
        assert await page.text_content("#kpi-saved") == usd(series["saved_usd"])
        assert series["saved_usd"] == pytest.approx(
            series["baseline_usd"] - series["cost_usd"], abs=1e-8)
        assert await page.text_content("#kpi-first-pass") == pct(stats["total"]["first_pass"])
        assert stats["misroutes"]["misrouted"] == 1
        assert await page.text_content("#kpi-misrouted") == "1"
        assert await page.text_content("#kpi-misroutes") == "summarization → extraction × 1"
        assert await page.is_visible("#ab-section")
        ab_rows = await page.eval_on_selector_all(
            "#ab-table tbody tr", "rows => rows.map(r => r.cells[2].textContent)")
        assert len(ab_rows) >= 7 and set(ab_rows) == {"lean"}
        ab = await _json(gw, "/v1/taskroute/ab?since=7d")   # 9 requests: nothing tells
        verdicts = await page.eval_on_selector_all(
            "#ab-table tbody tr", "rows => rows.map(r => r.cells[7].textContent)")
        assert verdicts == ["no: " + m["why"] for m in ab["comparisons"][0]["metrics"].values()]
        assert await page.eval_on_selector_all("#cost-chart polyline", "ls => ls.length") == 2
        bars = await page.eval_on_selector_all("#escalation-chart rect", "rs => rs.length")
        assert bars >= 2                       # requests, and the escalated one over them
        assert not await page.is_visible("#cost-chart text.empty")
        await _shot(page, "dashboard-overview.png")
        # live: a new request shows up without a reload
        before = int(await page.get_attribute("body", "data-refreshes") or 0)
        status, _, _ = await gw.request("POST", "/v1/chat/completions", json={
            "model": "taskroute/qa", "messages": [{"role": "user", "content": "Why?"}]})
        assert status == 200
        await gw.store.flush()
        want = str(stats["total"]["requests"] + 1)
        await page.wait_for_selector(f"#kpi-requests:text-is('{want}')", timeout=20_000)
        assert int(await page.get_attribute("body", "data-refreshes") or 0) > before
    assert problems == []


async def test_a_fresh_deployment_shows_axes_and_says_what_will_appear(
    start_gateway: StartGateway,
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    gw = await start_gateway()
    problems: list[str] = []
    async with _browser(playwright_api) as browser:
        page = await _opened(browser, gw.url + "/dashboard", problems)
        assert await page.text_content("#kpi-requests") == "0"
        assert "No requests in the last hour yet" in (
            await page.text_content("#cost-chart text.empty") or "")
        assert await page.is_visible("#routes-empty")
        ticks = await page.eval_on_selector_all("#cost-chart text", "ts => ts.length")
        assert ticks >= 6                      # labelled axes, not a lone dot
        await _shot(page, "dashboard-fresh.png")
        for task in ["summarization", "qa", "coding", "chat", "extraction"]:
            status, _, _ = await gw.request("POST", "/v1/chat/completions", json={
                "model": f"taskroute/{task}",
                "messages": [{"role": "user", "content": f"A {task} request, please."}]})
            assert status == 200
        await gw.store.flush()
        await page.wait_for_selector("#kpi-requests:text-is('5')", timeout=20_000)
        assert not await page.is_visible("#routes-empty")
        assert await page.eval_on_selector_all("#cost-chart polyline", "ls => ls.length") == 2
        await _shot(page, "dashboard-first-minute.png")
    assert problems == []


def _fragile(policy: Policy) -> Policy:
    return replace(policy, calling=replace(policy.calling, breaker_failures=1,
                                           breaker_cooldown_s=600.0, retries=0))


async def _trip_the_fast_model(gw: RunningGateway) -> None:
    """One request the fast model fails with a 503: its breaker (one failure) opens."""
    gw.upstream.fail("gpt-4.1-mini", 503)
    status, _, _ = await gw.request("POST", "/v1/chat/completions", json={
        "model": "taskroute/summarization",
        "messages": [{"role": "user", "content": "Summarize this, please."}]})
    assert status == 200                           # escalated past the failing deployment


async def test_the_breakers_view_lists_states_and_trips_as_the_endpoint_does(
    start_gateway: StartGateway,
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    gw = await start_gateway(edit_policy=_fragile)
    await _trip_the_fast_model(gw)
    await gw.store.flush()
    breakers = await _json(gw, "/v1/taskroute/breakers")
    assert breakers["open"] == 1 and len(breakers["trips"]) == 1
    (trip,) = breakers["trips"]
    assert trip["deployment"].endswith("gpt-4.1-mini") and "503" in trip["reason"]
    problems: list[str] = []
    async with _browser(playwright_api) as browser:
        page = await _opened(browser, gw.url + "/dashboard#breakers", problems)
        assert await page.get_attribute("body", "data-view") == "breakers"
        rows = await _texts(page, "#breaker-table tbody tr")
        assert [(r[0], r[1]) for r in rows] == [
            (b["deployment"], b["state"].replace("_", "-")) for b in breakers["breakers"]]
        trips = await _texts(page, "#trip-table tbody tr")
        assert len(trips) == 1 and trips[0][1] == trip["deployment"]
        assert trips[0][2] == trip["reason"] and trips[0][3] == "this replica"
        assert trips[0][5] == "cooling down"
        assert not await page.is_visible("#trips-empty")
        assert await page.text_content("#kpi-breakers") == "1"
        await _shot(page, "dashboard-breakers.png")
    assert problems == []


async def test_a_restarted_gateway_lists_the_trips_from_its_log(
    start_gateway: StartGateway,
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    first = await start_gateway(edit_policy=_fragile)
    await _trip_the_fast_model(first)
    await first.stop()
    first.upstream.answer_normally("gpt-4.1-mini")
    gw = await start_gateway(edit_policy=_fragile, db=first.db)
    breakers = await _json(gw, "/v1/taskroute/breakers")
    (trip,) = breakers["trips"]
    assert breakers["open"] == 0 and "503" in trip["reason"]
    problems: list[str] = []
    async with _browser(playwright_api) as browser:
        page = await _opened(browser, gw.url + "/dashboard#breakers", problems)
        trips = await _texts(page, "#trip-table tbody tr")
        assert len(trips) == 1 and trips[0][1] == trip["deployment"]
        assert trips[0][2] == trip["reason"] and trips[0][5] == "cooling down"
        assert await page.get_attribute("#trip-table tbody .pill", "title") == trip["replica"]
        assert not await page.is_visible("#trips-empty")
        await _shot(page, "dashboard-breakers-restarted.png")
    assert problems == []


async def test_the_shadow_view_shows_the_shadow_reports_numbers(
    start_gateway: StartGateway,
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    from tests.gateway.test_shadow_report import _traffic, shadowed

    gw = await start_gateway(edit_policy=shadowed)
    await _traffic(gw)
    report = await _json(gw, "/v1/taskroute/shadow?since=1h")
    (policy,) = report["policies"]
    problems: list[str] = []
    async with _browser(playwright_api) as browser:
        page = await _opened(browser, gw.url + "/dashboard#shadow", problems)
        assert not await page.is_visible("#shadow-empty")
        assert await page.text_content("#shadow-0-requests") == str(policy["requests"])
        assert await page.text_content("#shadow-0-same-model") == pct(
            policy["agreement"]["model"])
        assert await page.text_content("#shadow-0-cost") == usd(policy["shadow_cost_usd"])
        assert await page.text_content("#shadow-0-served-cost") == usd(
            policy["served_cost_usd"])
        shown = await _texts(page, "#shadow-0-classes tbody tr")
        assert shown == [[c["task"], str(c["requests"]), pct(c["agreement"]["model"]),
                          pct(c["agreement"]["tier"]), usd(c["shadow_cost_usd"]),
                          usd(c["served_cost_usd"]),
                          ", ".join(f"{m} ×{n}" for m, n in c["shadow_models"].items())]
                         for c in policy["classes"]]
        quality = await _texts(page, ".quality-table tbody tr")
        fb = policy["quality"]["shadow"]["feedback"]
        assert quality[0][1] == (f"{fb['good']}/{fb['n']} · {pct(fb['rate'])} "
                                 f"({pct(fb['ci95'][0])}–{pct(fb['ci95'][1])})")
        await _shot(page, "dashboard-shadow.png")
    assert problems == []


async def test_with_keys_the_dashboard_signs_in_without_the_key_in_a_url_or_the_log(
    start_gateway: StartGateway, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    playwright_api = pytest.importorskip("playwright.async_api")
    from taskroute.exceptions import Secret
    from taskroute.gateway.keys import ApiKey
    from taskroute.gateway.settings import GatewaySettings

    key = "sk-read-dashboard-7f3a"
    gw = await start_gateway(GatewaySettings(keys=(
        ApiKey(Secret(key), "read"), ApiKey(Secret("sk-user-1"), "user"))))
    status, _, _ = await gw.request("POST", "/v1/chat/completions", headers={
        "Authorization": "Bearer sk-user-1"}, json={
        "model": "auto", "messages": [{"role": "user", "content": "Summarize this, please."}]})
    assert status == 200
    await gw.store.flush()
    urls: list[str] = []
    async with _browser(playwright_api) as browser:
        context = await browser.new_context()
        page = await context.new_page()
        page.on("request", lambda r: urls.append(r.url))
        await page.goto(gw.url + "/dashboard")
        await page.fill("#key", "sk-user-1")                    # a user key: refused
        await page.click("button[type=submit]")
        await page.wait_for_selector("#error:not(:empty)")
        assert "cannot read the dashboard" in (await page.text_content("#error") or "")
        await page.fill("#key", key)
        await page.click("button[type=submit]")
        await page.wait_for_selector("body[data-loaded]", timeout=10_000)
        assert await page.get_attribute("body", "data-loaded") == "true"
        rows = await page.eval_on_selector_all("#route-table tbody tr", "rs => rs.length")
        assert rows >= 1
        (cookie,) = await context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert key not in cookie["value"]
        assert await page.evaluate("document.cookie") == ""     # no script can read it
        await _shot(page, "dashboard-signed-in.png")
        other = await (await browser.new_context()).new_page()  # no cookie: the sign-in
        await other.goto(gw.url + "/dashboard")
        assert await other.is_visible("#signin")
    assert urls and not any(key in u for u in urls)
    assert key.encode() not in gw.db.read_bytes() and key not in caplog.text
    status, _, _ = await gw.request("GET", "/v1/taskroute/stats", headers={
        "Cookie": f"taskroute_session={cookie['value']}"})
    assert status == 200                                            # the session reads ...
    status, _, _ = await gw.request("POST", "/v1/chat/completions", headers={
        "Cookie": f"taskroute_session={cookie['value']}"}, json={"model": "auto"})
    assert status == 401                                            # ... and does nothing else
