"""Holds a conformance run between two of its checks until the test has injected its fault
(tests/test_midrun_death.py): touches JC_GATE_READY, then waits for JC_GATE_OPEN."""

import os
import time
from pathlib import Path


def test_wait_for_the_fault() -> None:
    Path(os.environ["JC_GATE_READY"]).write_text("waiting\n")
    gate = Path(os.environ["JC_GATE_OPEN"])
    deadline = time.monotonic() + 120
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
