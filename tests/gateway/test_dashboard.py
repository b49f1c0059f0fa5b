"""The dashboard in a real headless browser (Debian's chromium driven by Playwright): no console
errors, and the numbers it shows are the stats endpoint's. Skipped when no browser is there
(scripts/install_browser.sh installs one). The screenshot lands in artifacts/."""

from __future__ import annotations

import json
import shutil
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
                "corrected": True})
    await gw.store.flush()


async def test_dashboard_shows_the_endpoint_numbers_without_console_errors(
    start_gateway: StartGateway,
) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    gw = await start_gateway(edit_policy=_variants)
    await _known_traffic(gw)
    _, _, raw = await gw.request("GET", "/v1/taskroute/stats?by=route&since=24h")
    stats = json.loads(raw)
    problems: list[str] = []
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1100, "height": 1000})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            await page.goto(gw.url + "/dashboard")
            await page.wait_for_selector("body[data-loaded]", timeout=10_000)
            assert await page.get_attribute("body", "data-loaded") == "true"
            shown = await page.eval_on_selector_all(
                "#route-table tbody tr",
                "rows => rows.map(r => [...r.cells].map(c => c.textContent))")
            assert shown == [expected_cells(r) for r in stats["rows"]]
            assert await page.is_visible("#ab-section")
            ab_rows = await page.eval_on_selector_all(
                "#ab-table tbody tr", "rows => rows.map(r => r.cells[2].textContent)")
            assert len(ab_rows) >= 7 and set(ab_rows) == {"lean"}
            points = await page.eval_on_selector_all("#cost-chart polyline", "ls => ls.length")
            assert points == 2
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            await browser.close()
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
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
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
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "dashboard-signed-in.png"))
            other = await (await browser.new_context()).new_page()  # no cookie: the sign-in
            await other.goto(gw.url + "/dashboard")
            assert await other.is_visible("#signin")
        finally:
            await browser.close()
    assert urls and not any(key in u for u in urls)
    assert key.encode() not in gw.db.read_bytes() and key not in caplog.text
    status, _, _ = await gw.request("GET", "/v1/taskroute/stats", headers={
        "Cookie": f"taskroute_session={cookie['value']}"})
    assert status == 200                                            # the session reads ...
    status, _, _ = await gw.request("POST", "/v1/chat/completions", headers={
        "Cookie": f"taskroute_session={cookie['value']}"}, json={"model": "auto"})
    assert status == 401                                            # ... and does nothing else
