"""Keeps pytest's assertion rewriting to code that asserts: not the libraries a run imports.

pytest marks for assertion rewriting every package of every installed distribution that ships
a ``pytest11`` entry point (``_pytest.config.Config._mark_plugins_for_rewrite``), so the whole
``anyio`` package is marked because anyio ships a pytest plugin. The suite imports anyio as a
library (httpx's async transport, fixtures/http_transport.py, runs on it), and when bytecode is
not written (``PYTHONDONTWRITEBYTECODE``, common in CI and container images, set on this
machine) pytest then re-parses, rewrites and compiles anyio's modules on every run: about
0.2 s of a ~1.3 s post-deploy gate (bench/results.md). No anyio module holds an assert the
suite needs explained, and the suite uses no anyio fixture or marker, so:

* ``-p no:anyio`` (pyproject addopts) keeps anyio's pytest plugin from importing anyio while
  pytest starts, before this module can act;
* ``pytest_configure`` below, first of all, takes the marks off, so the later import of anyio
  is an ordinary one.

pytest has no public call to unmark a name; this reads the hook's ``_must_rewrite`` set and
does nothing if a pytest release renames it (tests/test_rewrite_scope.py then fails, rather
than the gate silently getting slower).
"""

from __future__ import annotations

import pytest

# Libraries the suite imports that pytest marks only because they ship a pytest plugin.
NOT_REWRITTEN = ("anyio",)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    hook = getattr(config.pluginmanager, "rewrite_hook", None)
    marked = getattr(hook, "_must_rewrite", None)
    if not isinstance(marked, set):
        return
    removed = marked.intersection(NOT_REWRITTEN)
    if removed:
        marked.difference_update(removed)
        cache = getattr(hook, "_marked_for_rewrite_cache", None)
        if isinstance(cache, dict):
            cache.clear()
