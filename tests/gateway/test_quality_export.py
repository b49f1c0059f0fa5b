"""`taskroute data import store LOG.db`: logged requests with feedback become training data."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from taskroute.cli.main import main
from tests.gateway.conftest import StartGateway


async def test_logged_requests_with_feedback_become_outcomes(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    gw = await start_gateway(edit_policy=lambda p: replace(p, log_content=True))
    ids = []
    for text in ("Summarize: cats sleep a lot.", "Summarize: dogs bark.", "Summarize: owls."):
        _, headers, _ = await gw.request("POST", "/v1/chat/completions", json={
            "model": "taskroute/summarization", "messages": [{"role": "user", "content": text}]})
        ids.append(headers["X-Taskroute-Request-Id"])
    await gw.store.flush()
    given: list[dict[str, object]] = [
        {"thumbs": "up"}, {"score": 0.9, "corrected": True, "task": "extraction"}]
    for request_id, body in zip(ids[:2], given, strict=True):
        status, _, raw = await gw.request("POST", "/v1/taskroute/feedback",
                                          json={"request_id": request_id, **body})
        assert status == 201, raw
    out = tmp_path / "outcomes.jsonl"
    assert main(["data", "import", "store", str(gw.db), "-o", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 2                         # the third has no feedback
    scores = sorted(o["score"] for r in records for o in r["outcomes"].values())
    assert scores == [0.0, 1.0]                      # a correction scores 0
    assert [r["text"] for r in records] == ["Summarize: cats sleep a lot.", "Summarize: dogs bark."]
    # the task is the class the feedback names (a misroute), else the one served
    assert [r["task"] for r in records] == ["summarization", "extraction"]
