"""Our top-level packages are named `fixtures` and `plugins`, as are unrelated PyPI packages.

pytest puts the rootdir first on sys.path (pyproject: pythonpath = ["."]), so ours win; this
plugin proves it at startup and stops the run with a clear line if an installed package of
the same name ever shadows ours (a run judging production must not run someone else's code).
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def shadowed_packages() -> list[str]:
    import checks
    import fixtures
    import plugins

    bad = []
    for mod in (checks, fixtures, plugins):
        origin = Path(getattr(mod, "__file__", "") or "").resolve()
        if ROOT not in origin.parents:
            bad.append(f"{mod.__name__} → {origin}")
    return bad


def pytest_configure(config: pytest.Config) -> None:
    bad = shadowed_packages()
    if bad:
        raise pytest.UsageError(
            "julia-conformance: an installed package shadows the suite's own: " + "; ".join(bad)
        )
