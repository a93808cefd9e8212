"""A synthetic check: a KeyboardInterrupt whose traceback has an entry without a line number,
as when a signal lands on a line-less bytecode instruction (CPython 3.11). Run only by the
lifecycle self-test."""
from __future__ import annotations

import sys
import types


def test_interrupted_on_a_line_less_instruction() -> None:
    # tb_lineno=-1 with an offset past the code makes CPython report the line as None
    broken = types.TracebackType(None, sys._getframe(), 10**6, -1)
    assert broken.tb_lineno is None
    raise KeyboardInterrupt("signal 2").with_traceback(broken)
