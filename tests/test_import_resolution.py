"""`fixtures` and `plugins` are also names of unrelated PyPI packages: ours must win."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from plugins.guard_imports import shadowed_packages

ROOT = Path(__file__).resolve().parents[1]


def test_our_packages_resolve_to_the_repo() -> None:
    assert shadowed_packages() == []


def test_installed_namesakes_do_not_shadow(tmp_path: Path) -> None:
    # Impostor packages as an installed distribution would put them on sys.path.
    site = tmp_path / "site"
    for name in ("fixtures", "plugins", "checks"):
        (site / name).mkdir(parents=True)
        (site / name / "__init__.py").write_text("IMPOSTOR = True\n")
    probe_file = tmp_path / "probe_resolution.py"
    probe_file.write_text(
        "import checks, fixtures, plugins\n"
        "def test_resolution():\n"
        "    for mod in (checks, fixtures, plugins):\n"
        "        assert not hasattr(mod, 'IMPOSTOR'), mod.__file__\n"
        f"        assert mod.__file__.startswith({str(ROOT)!r}), mod.__file__\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        # the console script, from a foreign cwd: nothing but the ini's `pythonpath` puts
        # the repo ahead of the impostors on sys.path
        [str(Path(sys.executable).parent / "pytest"), str(probe_file), "-q", "-p", "no:cacheprovider",
         "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_conformance_run_does_not_import_hypothesis() -> None:
    """The checks never use hypothesis; its pytest plugin would import all of it (about half
    a second of a post-deploy gate) — the target plugin blocks it for conformance runs."""
    code = (
        "import sys, pytest\n"
        "rc = pytest.main(['checks', '--collect-only', '-q', '-p', 'no:cacheprovider'])\n"
        "print('HYPOTHESIS-LOADED' if 'hypothesis' in sys.modules else 'HYPOTHESIS-ABSENT', rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "HYPOTHESIS-ABSENT 0" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-2000:]
