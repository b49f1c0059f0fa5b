"""What a new operator sees in the first minute: the stand-in upstream and `taskroute serve` (with
a user key and a read key) as their own processes, a handful of requests through the openai SDK,
then the dashboard in headless chromium — the sign-in, then each view — screenshotted into
artifacts/first-minute-*.png. Everything on 127.0.0.1; both processes are stopped at the end.

    .venv/bin/python scripts/dashboard_first_minute.py     # about 15 s
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from taskroute.demo.policy import simulated_policy_text
from taskroute.policy.loader import default_policy_text

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
PROMPTS = ("Summarize: the meeting moved to Tuesday.", "What is the capital of Peru?",
           "Write a Python function that reverses a list.", "Extract the date: due 3 May.",
           "Hi! How are you?", "Prove that the square root of 2 is irrational.")
USER_KEY, READ_KEY = "sk-first-minute-app", "sk-first-minute-ops"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # it answers
        except OSError:
            time.sleep(0.2)
    return False


async def screenshots(url: str) -> None:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium,
                                          args=["--headless", "--no-sandbox"])
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            await page.goto(url + "/dashboard")
            await page.screenshot(path=str(ARTIFACTS / "first-minute-signin.png"))
            await page.fill("#key", READ_KEY)
            await page.click("button[type=submit]")
            await page.wait_for_selector("body[data-loaded]", timeout=15_000)
            for view in ("overview", "breakers", "shadow"):
                await page.goto(f"{url}/dashboard#{view}")
                await page.wait_for_selector(f"body[data-view={view}][data-loaded]")
                await page.screenshot(path=str(ARTIFACTS / f"first-minute-{view}.png"),
                                      full_page=True)
                print(f"artifacts/first-minute-{view}.png")
        finally:
            await browser.close()


def main() -> int:
    from openai import OpenAI

    ARTIFACTS.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="taskroute-first-minute-"))
    up, gw = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "taskroute.providers.simulated", "--port", str(up)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        if not wait_http(f"http://127.0.0.1:{up}/v1/models", 20):
            print("the stand-in upstream did not start")
            return 1
        policy = folder / "policy.yaml"
        policy.write_text(simulated_policy_text(default_policy_text(), f"http://127.0.0.1:{up}"))
        env = {**os.environ, "TASKROUTE_API_KEYS": USER_KEY, "TASKROUTE_READ_KEYS": READ_KEY}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "taskroute", "serve", "--policy", str(policy), "--port",
             str(gw), "--db", str(folder / "log.db")], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        url = f"http://127.0.0.1:{gw}"
        if not wait_http(url + "/healthz", 30):
            print("taskroute serve did not start")
            return 1
        client = OpenAI(base_url=url + "/v1", api_key=USER_KEY)
        for prompt in PROMPTS:
            answer = client.chat.completions.create(
                model="auto", messages=[{"role": "user", "content": prompt}])
            print(f"{answer.model:<28} {prompt}")
        asyncio.run(screenshots(url))
        return 0
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
