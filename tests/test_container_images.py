"""The local images: built from the right sources, and the PostgreSQL one behaving like the
official image where clients rely on it (so `postgres_image = "postgres:15"` in targets.toml
changes nothing else)."""

from __future__ import annotations

import modulefinder
import os
import subprocess
import sys
import tarfile
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import docker
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from fixtures.stack import container_runs as cs
from fixtures.stack.images import app_files, build
from fixtures.stack.services import free_port
from plugins.contract.targets import load_targets
from plugins.contract.toml_schema import ConfigError
from tests.conftest import ROOT, skip_without_containers

# --- what the images are built from --------------------------------------------------------


def test_app_requirements_follow_pyproject() -> None:
    """The app image installs what the suite's own environment declares, nothing looser."""
    declared = {
        canonicalize_name(r.name): r
        for r in map(Requirement, tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    }
    for line in build.app_requirements():
        req = Requirement(line)
        mine = declared.get(canonicalize_name(req.name))
        assert mine is not None, f"{req.name} is not a dependency in pyproject.toml"
        assert req.specifier == mine.specifier, req.name
        assert req.extras <= mine.extras, req.name


def test_app_wheels_are_pinned_to_this_environment() -> None:
    closure = build.pinned_closure(build.app_requirements())
    names = {canonicalize_name(Requirement(spec).name) for spec in closure}
    assert {canonicalize_name(Requirement(r).name) for r in build.app_requirements()} <= names
    for spec in closure:
        req = Requirement(spec)
        pins = [s for s in req.specifier if s.operator == "=="]
        if pins:
            assert metadata.version(req.name) == pins[0].version, spec


def test_mirror_comes_from_the_hosts_apt_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JC_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n\nTypes: deb\nEnabled: no\n"
        "URIs: http://disabled.example/debian\nSuites: bookworm\n"
    )
    (tmp_path / "sources.list.d" / "other.list").write_text(
        "deb [arch=amd64] https://packages.example/apt stable main\n")
    assert build.debian_mirror(tmp_path) == build.Mirror("http://mirror.example/debian", "http://mirror.example/debian-security")


def test_mirror_one_line_format_and_fallback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JC_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [signed-by=/k.gpg] http://ftp.example/debian bookworm main contrib\n")
    assert build.debian_mirror(tmp_path).main == "http://ftp.example/debian"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert build.debian_mirror(empty) == build.Mirror(build.FALLBACK_MIRROR, None)
    monkeypatch.setenv("JC_DEBIAN_MIRROR", "http://override.example/debian/")
    assert build.debian_mirror(tmp_path).main == "http://override.example/debian"


def test_app_context_holds_the_app_and_nothing_else() -> None:
    names = [n for n, _ in build.context_files("app")]
    assert "src/runbook.toml" in names
    assert "src/fixtures/stack/refapp/__main__.py" in names
    assert any(n.startswith("src/fixtures/stack/migrations/") and n.endswith(".sql") for n in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert not [n for n in names if n.startswith("src/fixtures/stack/images/")]


def _image_files() -> dict[str, Path]:
    """The app context's files, as the image has them under /app (the Dockerfile aside)."""
    return {name.removeprefix("src/"): path for name, path in build.context_files("app") if name.startswith("src/")}


def test_app_image_copies_exactly_the_apps_import_closure() -> None:
    """The image copies the modules the reference app imports — computed by Python's own
    modulefinder here, from every module of the app's package — and no other module."""
    finder = modulefinder.ModuleFinder(path=[str(ROOT)])  # ours only: the rest is not copied
    for module in app_files.app_package_modules():
        finder.import_hook(module)
    imported = {Path(m.__file__).relative_to(ROOT).as_posix() for m in finder.modules.values() if m.__file__}
    copied = {name for name in _image_files() if name.endswith(".py")}
    assert copied == imported
    # and the data the app reads: its runbook and the migrations it ships, nothing else
    assert {name for name in _image_files() if not name.endswith(".py")} == {
        "runbook.toml", *(p.relative_to(ROOT).as_posix() for p in (ROOT / "fixtures/stack/migrations").glob("*.sql"))}


def test_the_reference_app_imports_only_the_contract_and_the_migration_convention() -> None:
    """The app's layer rule: of this repository it imports its own package, the runbook
    contract's parsers and fixtures.migrations — never the launcher, the seed or a probe."""
    package = ROOT / "fixtures" / "stack" / "refapp"
    for path in sorted(package.glob("*.py")):
        module = f"{app_files.APP_PACKAGE}.{path.stem}" if path.name != "__init__.py" else app_files.APP_PACKAGE
        ours = {n for n in app_files._imported_names(path, module)
                if n.split(".")[0] in {"fixtures", "plugins", "checks", "tests"} and app_files.module_file(n)}
        allowed = {n for n in ours if n.startswith((app_files.APP_PACKAGE, "plugins.contract"))
                   or n in {"fixtures.migrations", "fixtures.stack", "fixtures", "plugins"}}
        assert ours == allowed, f"{path.name} imports {sorted(ours - allowed)}"


def test_the_reference_app_runs_from_the_image_files_alone(tmp_path: Path) -> None:
    """A copy of exactly the image's files is enough: every module of the app imports, and
    its settings and job table load from the copied runbook and migrations."""
    for name, path in _image_files().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(path.read_bytes())
    code = (
        "import importlib, sys\n"
        "sys.path.insert(0, '.')\n"
        f"for m in {app_files.app_package_modules()!r}: importlib.import_module(m)\n"
        "from fixtures.stack.refapp.config import load_settings\n"
        "from plugins.contract.runtime import load\n"
        "s = load_settings({'DATABASE_URL': 'postgresql://u@h/db', 'REDIS_URL': 'redis://h/0',"
        " 'APP_ENV': 'local', 'SUPABASE_PROJECT_REF': 'ref'})\n"
        "assert load().jobs and s.expected_schema_version\n"
        "ours = [m.__file__ for n, m in sys.modules.items() if n.split('.')[0] in ('fixtures', 'plugins')]\n"
        "print('OUTSIDE', [f for f in ours if not f.startswith(sys.argv[1])])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JC_RUNBOOK", "JC_DIALECT")}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "OUTSIDE []" in proc.stdout, proc.stdout


def test_context_tar_is_deterministic() -> None:
    """Same sources, same digest: an unchanged checkout never rebuilds an image."""
    files = build.context_files("app")
    one, two = build.context_tar(files), build.context_tar(list(reversed(files)))
    assert one == two
    import io

    with tarfile.open(fileobj=io.BytesIO(one)) as tar:
        members = tar.getmembers()
    assert {m.mtime for m in members} == {0} and {m.uid for m in members} == {0}
    entrypoint = next(m for m in tarfile.open(fileobj=io.BytesIO(build.context_tar(build.context_files("postgres"))))
                      if m.name == "docker-entrypoint.sh")
    assert entrypoint.mode & 0o111


def test_image_names_come_from_the_local_profile(tmp_path: Path) -> None:
    assert cs.Images.from_options({}) == cs.Images()
    assert cs.Images.from_options({"postgres_image": "postgres:15", "redis_image": "redis:7"}) == cs.Images(
        postgres="postgres:15", redis="redis:7", app=build.DEFAULT_IMAGES["app"])
    local = load_targets(ROOT / "targets.toml")["local"]
    assert cs.Images.from_options(local) == cs.Images()  # targets.toml names the local builds
    bad = tmp_path / "targets.toml"
    bad.write_text((ROOT / "targets.toml").read_text().replace(
        'postgres_image = "julia-conformance/postgres:15"', "postgres_image = 15"))
    with pytest.raises(ConfigError, match=r"targets\.local\.postgres_image: must be a string"):
        load_targets(bad)


@given(st.text(min_size=1, max_size=100, alphabet=st.characters(min_codepoint=33, max_codepoint=126)))
def test_service_names_are_dns_labels(run_id: str) -> None:
    """Services reach each other by container name: the run's part must be a DNS label."""
    slug = cs.slug(run_id)
    assert 1 <= len(slug) <= 40
    assert all(ch.isascii() and (ch.isalnum() and not ch.isupper() or ch == "-") for ch in slug)
    assert not slug.startswith("-") and not slug.endswith("-")


def test_owner_liveness() -> None:
    assert cs._owner_alive(cs.owner_label())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not cs._owner_alive(cs.owner_label(dead.pid))
    assert cs._owner_alive(f"some-other-host/{cs._boot_id()}/{dead.pid}")  # not ours to judge
    assert cs._owner_alive("garbage")
    host, _, pid = cs.owner_label().rsplit("/", 2)
    assert not cs._owner_alive(f"{host}/an-earlier-boot/{pid}")


# --- the PostgreSQL image, like the official one ----------------------------------------------


@pytest.fixture
def engine() -> Iterator[docker.DockerClient]:
    skip_without_containers()
    client = docker.from_env()
    yield client
    cs.remove_run(client, f"image-test-{os.getpid()}")
    client.close()


def _postgres(**kwargs: str) -> cs.PublishedPostgres:
    pg = cs.PublishedPostgres(cs.Images().postgres, driver=None, **kwargs)  # type: ignore[arg-type]
    pg.with_kwargs(labels={cs.LABEL_RUN: f"image-test-{os.getpid()}", cs.LABEL_OWNER: cs.owner_label()})
    pg.publish(5432, "127.0.0.1", free_port())
    return pg


def test_postgres_image_honours_the_official_variables(engine: docker.DockerClient) -> None:
    """POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB, password auth over TCP, the readiness
    line twice (the init server, then the real one), pg_stat_statements preloaded."""
    pg = _postgres(username="julia", password="s3cr'et", dbname="app").start()
    logs = pg.get_wrapped_container().logs().decode()
    assert logs.count("database system is ready to accept connections") == 2
    assert "PostgreSQL init process complete; ready for start up." in logs
    port = pg.get_exposed_port(5432)
    with psycopg.connect(host="127.0.0.1", port=port, user="julia", password="s3cr'et", dbname="app") as conn:
        assert conn.execute("SHOW shared_preload_libraries").fetchone() == ("pg_stat_statements",)
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("julia", "app")
        assert int(conn.execute("SHOW server_version_num").fetchone()[0]) >= 150000  # type: ignore[index]
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host="127.0.0.1", port=port, user="julia", password="wrong", dbname="app").close()


def test_postgres_image_refuses_to_start_without_a_password(engine: docker.DockerClient) -> None:
    ctr = engine.containers.run(
        cs.Images().postgres, detach=True,
        labels={cs.LABEL_RUN: f"image-test-{os.getpid()}", cs.LABEL_OWNER: cs.owner_label()},
    )
    assert ctr.wait(timeout=60)["StatusCode"] == 1
    assert "superuser password is not specified" in ctr.logs().decode()
