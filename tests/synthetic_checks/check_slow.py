"""A test that takes long enough to be interrupted mid-run (tests/test_lifecycle.py).

It touches the file named by JC_SLOW_STARTED when it starts, so the lifecycle test signals
the run while it is really inside a test, however loaded the machine is.
"""

import os
import time
from pathlib import Path


def test_slow() -> None:
    marker = os.environ.get("JC_SLOW_STARTED")
    if marker:
        Path(marker).write_text("started\n")
    time.sleep(60)
