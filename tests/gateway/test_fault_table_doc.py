"""docs/faults.md states the policy its table is run with: the opening that
scripts/fault_table.py writes from the matrix's parsed policy, and that policy at the end."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from .faults import DEADLINE_S, POLICY, fault_policy

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "faults.md"
SCRIPT = ROOT / "scripts" / "fault_table.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fault_table", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fault_page_states_the_timeouts_of_the_policy_it_is_run_with() -> None:
    calling = fault_policy().calling
    text = DOC.read_text(encoding="utf-8")
    prose = " ".join(text.split())
    ms = [f"{s * 1000:g} ms" for s in (calling.connect_timeout_s, calling.first_token_timeout_s,
                                       calling.total_timeout_s)]
    assert ms == ["300 ms", "400 ms", "800 ms"]      # the policy's own, read back
    assert (f"timeouts of {ms[0]} to connect, {ms[1]} to the first token and {ms[2]} in all"
            in prose)
    assert f"a {DEADLINE_S:g} s deadline for the whole request" in prose
    assert text.startswith(_script().intro(calling))


def test_the_fault_page_ends_with_the_policy_it_is_run_with() -> None:
    placeholders = {f"p{i}": "<upstream>" for i in range(1, 5)}
    policy = POLICY.format(**placeholders, deadline=DEADLINE_S).strip()
    assert DOC.read_text(encoding="utf-8").endswith(f"```yaml\n{policy}\n```\n")
