"""Run by tests/test_signals_disks.py: fills the filesystem of JC_FILL_DIR while the run is on
(as another process filling the disk would), then lets the run go on writing its reports.

Not collected by `pytest tests` (no test_ prefix).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


def test_fills_the_disk() -> None:
    filler = Path(os.environ["JC_FILL_DIR"]) / "filler"
    chunk = b"\0" * 4096
    with open(filler, "ab", buffering=0) as fh:
        while True:
            try:
                fh.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                break
    # the last blocks may take only part of a chunk
    with open(filler, "ab", buffering=0) as fh:
        try:
            while fh.write(b"\0"):
                pass
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc


def test_after_the_disk_is_full() -> None:
    """Not run when the run stops at the first result it cannot write."""
