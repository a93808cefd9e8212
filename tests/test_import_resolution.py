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
    probe = (
        "import fixtures, plugins, checks;"
        "print(fixtures.__file__); print(plugins.__file__); print(checks.__file__)"
    )
    conftest_probe = tmp_path / "conftest_probe.py"
    conftest_probe.write_text(
        "def test_resolution():\n"
        f"    {probe.replace(';', chr(10) + '    ')}\n"
        "    import fixtures\n"
        "    assert not hasattr(fixtures, 'IMPOSTOR')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(conftest_probe), "-q", "-p", "no:cacheprovider",
         "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
