"""What a run imports before its first check: only what the checks it may run need.

The post-deploy gate (runbook rule 3) must be fast, and every run imports every check
module to collect it. These tests pin the start-up costs bench/results.md measured away, by
structure rather than by the clock: pglast and the maintenance and security probe modules
are imported where they are used, probe packages resolve their names on first use, and
anyio (a library here) is imported without pytest's assertion rewriting.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.probes import maintenance as pm
from fixtures.probes import security as ps
from fixtures.probes.lazy import lazy_exports

ROOT = Path(__file__).resolve().parents[1]

# Imported by a run's start (its plugins and every check module) only where used.
NOT_AT_START = (
    "pglast",
    "fixtures.probes.maintenance.bloat", "fixtures.probes.maintenance.index_catalog",
    "fixtures.probes.maintenance.statements", "fixtures.probes.maintenance.statistics",
    "fixtures.probes.maintenance.sizes",
    "fixtures.probes.security.git_history", "fixtures.probes.security.repo_secrets",
    "fixtures.probes.security.policies",  # (security.rls is read by the run's role probe)
)

_START = """
import glob, importlib, json, sys
import conftest
for name in conftest.pytest_plugins:
    importlib.import_module(name)
for path in sorted(glob.glob("checks/test_*.py")):
    importlib.import_module(path[:-3].replace("/", "."))
print(json.dumps(sorted(sys.modules)))
"""


def test_a_run_start_imports_no_module_it_does_not_use() -> None:
    proc = subprocess.run([sys.executable, "-c", _START], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = set(json.loads(proc.stdout))
    assert "checks.test_maintenance" in loaded and "checks.test_security" in loaded
    early = sorted(m for m in NOT_AT_START if m in loaded or any(x.startswith(m + ".") for x in loaded))
    assert early == [], f"imported at a run's start: {early}"


@pytest.mark.parametrize("package", [pm, ps], ids=lambda p: p.__name__)
def test_a_lazy_probe_package_exports_its_modules_names(package) -> None:
    import importlib

    assert len(package.__all__) == len(set(package.__all__))
    for name in package.__all__:
        value = getattr(package, name)
        homes = [m for m in sys.modules.values()
                 if getattr(m, "__name__", "").startswith(package.__name__ + ".") and vars(m).get(name) is value]
        assert homes, f"{package.__name__}.{name} is not its module's object"
    assert set(package.__all__) <= set(dir(package))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        package.nope  # noqa: B018
    # `from package import module` still gives the module
    mod = importlib.import_module(package.__name__ + "." + sorted(
        m.rsplit(".", 1)[1] for m in sys.modules if m.startswith(package.__name__ + "."))[0])
    assert mod.__name__.startswith(package.__name__ + ".")


def test_lazy_exports_refuses_ambiguous_names() -> None:
    with pytest.raises(ValueError, match="two of its modules"):
        lazy_exports("pkg", {"a": ("x",), "b": ("x",)})
    # importing a submodule binds its name on the package, over an exported name of that name
    with pytest.raises(ValueError, match=r"\['a'\] name both a module and an exported name"):
        lazy_exports("pkg", {"a": ("a",)})


def test_anyio_is_imported_as_a_library_not_rewritten() -> None:
    """plugins/rewrite_scope.py: anyio's modules are not re-parsed and re-compiled by pytest's
    assertion rewriting on every run (pytest marks them because anyio ships a plugin)."""
    from _pytest.assertion.rewrite import AssertionRewritingHook

    import anyio._backends._asyncio as backend

    assert not isinstance(backend.__loader__, AssertionRewritingHook), backend.__loader__
