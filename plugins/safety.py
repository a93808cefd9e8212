"""Against staging and production the suite only reads.

The clients enforce it per operation (fixtures.clients: READ ONLY transactions with
timeouts, a Redis command allow-list, GET only). This plugin enforces it per test: a check
marked ``mutates`` never runs against a target that is not local — it is refused at
collection, with a message, before anything connects.
"""

from __future__ import annotations

import pytest

from plugins.target import run_context


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        ctx = run_context(config)
    except pytest.UsageError:
        return
    if ctx.target.local:
        return
    refused = [item for item in items if item.get_closest_marker("mutates") is not None]
    if not refused:
        return
    items[:] = [item for item in items if item.get_closest_marker("mutates") is None]
    config.hook.pytest_deselected(items=refused)
    tr = config.pluginmanager.get_plugin("terminalreporter")
    names = ", ".join(item.nodeid for item in refused[:5]) + (" …" if len(refused) > 5 else "")
    line = (
        f"julia-conformance: refused {len(refused)} test(s) marked 'mutates' on target "
        f"'{ctx.target.name}' (not local; the suite only reads there): {names}"
    )
    if tr is not None:
        tr.write_line(line, yellow=True)
