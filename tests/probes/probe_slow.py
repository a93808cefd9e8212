"""A test that takes long enough to be interrupted mid-run (tests/test_lifecycle.py)."""

import time


def test_slow() -> None:
    time.sleep(60)
