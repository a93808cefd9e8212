"""Pure parts of the security checks: the rotation schedule, the definition of a view that
bypasses RLS, and the secret scan over a scratch repository (never showing a value)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from dataclasses import replace
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fixtures.probes import security as ps
from fixtures.probes.security import git_history, repo_secrets
from plugins.contract.security import SecretRotation, parse
from plugins.contract.toml_schema import ConfigError
from tests.area_helpers import ROOT, git

TODAY = dt.date(2026, 11, 25)
KEY = "sk-ant-api03-" + "Pq7Lm2Zx9Wv4Rt8Yn3Bc6Hj1Kd5Fg0Sa" + "E2uIoPzXcVbNmLkJhGfDsAq"  # pragma: allowlist secret


# --- rotation -------------------------------------------------------------------------------


def test_due_day_is_on_time_and_the_day_after_is_overdue() -> None:
    r = SecretRotation("ANTHROPIC_API_KEY", 90, dt.date(2026, 2, 9))
    assert r.due == dt.date(2026, 5, 10)
    assert not r.overdue_on(dt.date(2026, 5, 10))
    assert r.overdue_on(dt.date(2026, 5, 11))


@given(st.dates(dt.date(2000, 1, 1), dt.date(2030, 1, 1)), st.integers(1, 3650), st.integers(0, 4000))
def test_overdue_iff_more_days_than_the_interval(last: dt.date, interval: int, elapsed: int) -> None:
    r = SecretRotation("S", interval, last)
    assert r.overdue_on(last + dt.timedelta(days=elapsed)) is (elapsed > interval)


def shipped() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((ROOT / "runbook.toml").read_text())["security"]
    return data


def test_shipped_section_parses() -> None:
    contract = parse(ROOT / "runbook.toml", shipped(), today=TODAY)
    assert contract.anon_role == "anon" and contract.exposed_schemas == ("public",)
    assert {r.secret for r in contract.secret_rotation} >= {"ANTHROPIC_API_KEY", "SUPABASE_SERVICE_KEY"}
    assert contract.history_scan_timeout_s == 300
    data = shipped()
    del data["history_scan_timeout_s"]
    assert parse(ROOT / "runbook.toml", data, today=TODAY).history_scan_timeout_s == ps.HISTORY_TIMEOUT_S


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(extra=1), "security.extra: unknown key"),
        (lambda d: d.update(api_roles=["authenticated"]), "security.api_roles: must include anon_role 'anon'"),
        (lambda d: d.update(exposed_schemas=[]), "security.exposed_schemas: must not be empty"),
        (lambda d: d["secret_rotation"][0].update(last_rotated="2026-02-09"),
         "security.secret_rotation[0].last_rotated: must be a date"),
        (lambda d: d["secret_rotation"][0].update(last_rotated=dt.datetime(2026, 2, 9, 12, 0)),
         "security.secret_rotation[0].last_rotated: must be a date (YYYY-MM-DD), not a date-time"),
        (lambda d: d["secret_rotation"][0].update(last_rotated=dt.date(2026, 12, 1)),
         "security.secret_rotation[0].last_rotated: 2026-12-01 is in the future"),
        (lambda d: d["secret_rotation"][0].update(interval_days=0),
         "security.secret_rotation[0].interval_days: must be greater than 0"),
        (lambda d: d["secret_rotation"][1].update(secret="ANTHROPIC_API_KEY"),
         "security.secret_rotation[1].secret: 'ANTHROPIC_API_KEY' is listed twice"),
        (lambda d: d["secret_rotation"][0].update(value="sk-..."), "security.secret_rotation[0].value: unknown key"),
        (lambda d: d.update(history_scan_timeout_s=0), "security.history_scan_timeout_s: must be > 0"),
        (lambda d: d.update(history_scan_timeout_s="5m"), "security.history_scan_timeout_s: must be "),
    ],
)
def test_bad_section_names_the_key(change: Any, message: str) -> None:
    data = shipped()
    change(data)
    with pytest.raises(ConfigError) as err:
        parse(Path("rb.toml"), data, today=TODAY)
    assert str(err.value).startswith("rb.toml: ") and message in str(err.value)


# --- views that bypass RLS ------------------------------------------------------------------


def view(*, invoker: bool = False, readable: tuple[str, ...] = ("anon",), superuser: bool = False,
         bypassrls: bool = False, bases: tuple[ps.BaseTable, ...] = (), materialized: bool = False) -> ps.ViewFacts:
    return ps.ViewFacts("public", "v", "owner", invoker, superuser, bypassrls, readable, bases, materialized)


RLS_OTHER_OWNER = ps.BaseTable("public.t", rls_enabled=True, rls_forced=False, owned_by_view_owner=False)
RLS_SAME_OWNER = ps.BaseTable("public.t", rls_enabled=True, rls_forced=False, owned_by_view_owner=True)
RLS_FORCED_SAME_OWNER = ps.BaseTable("public.t", rls_enabled=True, rls_forced=True, owned_by_view_owner=True)
NO_RLS = ps.BaseTable("public.t", rls_enabled=False, rls_forced=False, owned_by_view_owner=True)
# Read through an inner view (security_invoker: with the outer view owner's rights).
RLS_VIA_VIEW = ps.BaseTable("public.t", rls_enabled=True, rls_forced=False, owned_by_view_owner=False,
                            via=("public.inner",))
# Read through an inner view that is not security_invoker: with ITS owner's rights.
SUPERUSER = ps.Reader("postgres", superuser=True, bypassrls=True)
ORDINARY = ps.Reader("reporter", superuser=False, bypassrls=False)
RLS_VIA_DEFINER_VIEW = ps.BaseTable("public.t", rls_enabled=True, rls_forced=False, owned_by_view_owner=False,
                                    via=("public.inner",), read_as=SUPERUSER)
# Outside the exposed schemas and without RLS: the API cannot reach it but through the view.
PRIVATE_NO_RLS = ps.BaseTable("interno.t", rls_enabled=False, rls_forced=False, owned_by_view_owner=False,
                              exposed=False)
MATVIEW = ps.BaseTable("public.m", rls_enabled=False, rls_forced=False, owned_by_view_owner=True, materialized=True)
PRIVATE_RLS = ps.BaseTable("interno.t", rls_enabled=True, rls_forced=False, owned_by_view_owner=False,
                           exposed=False)


@pytest.mark.parametrize(
    ("facts", "bypasses"),
    [
        (view(superuser=True, bases=(RLS_OTHER_OWNER,)), True),
        (view(bypassrls=True, bases=(RLS_OTHER_OWNER,)), True),
        (view(bases=(RLS_SAME_OWNER,)), True),  # a table's owner is not subject to its RLS
        (view(bases=(RLS_FORCED_SAME_OWNER,)), False),  # unless FORCEd
        (view(bases=(RLS_OTHER_OWNER,)), False),  # an ordinary owner is subject to RLS
        (view(invoker=True, superuser=True, bases=(RLS_OTHER_OWNER,)), False),  # security_invoker
        (view(readable=(), superuser=True, bases=(RLS_OTHER_OWNER,)), False),  # the API cannot read it
        (view(superuser=True, bases=(NO_RLS,)), False),  # no RLS to bypass (JC-SEC-01's finding)
        (view(superuser=True), False),  # reads no table
        # a view over a view over an RLS table: judged with the outer owner's rights
        (view(superuser=True, bases=(RLS_VIA_VIEW,)), True),
        (view(bases=(RLS_VIA_VIEW,)), False),
        # ... unless the inner view is a definer view: then with its owner's rights
        (view(bases=(RLS_VIA_DEFINER_VIEW,)), True),
        (view(superuser=True, bases=(replace(RLS_VIA_DEFINER_VIEW, read_as=ORDINARY),)), False),
        # a table outside the exposed schemas: without RLS any definer view publishes it
        (view(bases=(PRIVATE_NO_RLS,)), True),
        (view(invoker=True, bases=(PRIVATE_NO_RLS,)), False),
        (view(readable=(), bases=(PRIVATE_NO_RLS,)), False),
        (view(bases=(PRIVATE_RLS,)), False),  # its RLS applies to an ordinary owner
        # ... unless every API reader of the view may read the table itself (a catalog granted to PUBLIC)
        (view(bases=(replace(PRIVATE_NO_RLS, direct_readers=("anon", "authenticated")),)), False),
        (view(readable=("anon", "authenticated"), bases=(replace(PRIVATE_NO_RLS, direct_readers=("authenticated",)),)),
         True),
        # a materialized view never applies RLS: readable by the API is enough
        (view(materialized=True), True),
        (view(materialized=True, readable=()), False),
        # ... nor does a definer view over one the view's API readers may not read themselves
        (view(bases=(MATVIEW,)), True),
        (view(bases=(replace(MATVIEW, direct_readers=("anon",)),)), False),
        (view(invoker=True, bases=(MATVIEW,)), False),
    ],
)
def test_bypasses_rls(facts: ps.ViewFacts, bypasses: bool) -> None:
    assert ps.bypasses_rls(facts) is bypasses


def test_bypassed_tables_name_the_path_and_the_reading_role() -> None:
    facts = view(bases=(RLS_VIA_DEFINER_VIEW, PRIVATE_NO_RLS, RLS_OTHER_OWNER))
    assert facts.bypassed_tables() == ["public.t via public.inner as postgres"]
    assert facts.unprotected_private_tables() == ["interno.t"]
    chain = replace(RLS_VIA_VIEW, via=("public.a", "public.b"))
    assert view(superuser=True, bases=(chain,)).bypassed_tables() == ["public.t via public.a → public.b"]


# --- secret scan ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "env"), [(".env", True), (".env.production", True), ("prod.env", True),
                                           ("env.py", False), (".envrc", False), ("environment.yml", False)])
def test_env_files(name: str, env: bool) -> None:
    assert ps.is_env_file(name) is env


def make_repo(tmp_path: Path, files: dict[str, str], *, commit: tuple[str, ...] | None = None) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "init", "-q")
    git(repo, "add", *(commit if commit is not None else files))
    git(repo, "commit", "-qm", "x")
    return repo


def test_committed_key_is_found_without_its_value(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"app/config.py": f'ANTHROPIC_API_KEY = "{KEY}"\n', "README.md": "hello\n"})
    result = ps.scan_repository(repo)
    assert result.git and result.files == 2
    assert [f.describe() for f in result.findings] == [
        "app/config.py:1 (Base64 High Entropy String, Secret Keyword)"]
    assert KEY not in repr(result) and KEY[:16] not in repr(result)


def test_untracked_code_is_not_committed_but_an_ignored_env_file_is_scanned(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"main.py": "print(1)\n", ".gitignore": ".env\n"})
    (repo / "scratch.py").write_text(f'ANTHROPIC_API_KEY = "{KEY}"\n')
    (repo / ".env").write_text(f"ANTHROPIC_API_KEY={KEY}\n")
    (repo / "node_modules").mkdir()
    (repo / "node_modules" / ".env").write_text(f"KEY={KEY}\n")
    result = ps.scan_repository(repo)
    assert [f.path for f in result.findings] == [".env"]


def test_allowlisted_and_audited_findings_are_left_out(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {
        "a.py": f'ANTHROPIC_API_KEY = "{KEY}"  # pragma: allowlist secret\n',
        "b.py": f'VOYAGE_API_KEY = "{KEY}x"\n',
    })
    first = ps.scan_repository(repo)
    assert [f.path for f in first.findings] == ["b.py"]
    from detect_secrets.core.potential_secret import PotentialSecret

    baseline = {"results": {"b.py": [{"type": "Secret Keyword", "hashed_secret": PotentialSecret.hash_secret(KEY + "x"),
                                      "is_secret": False, "line_number": 1}]}}
    (repo / ps.BASELINE).write_text(json.dumps(baseline))
    second = ps.scan_repository(repo)
    assert second.findings == [] and second.audited_false_positives >= 1


def test_a_directory_that_is_not_a_repository_is_scanned_whole(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "settings.py").write_text(f'ANTHROPIC_API_KEY = "{KEY}"\n')
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "lib.py").write_text(f'API_KEY = "{KEY}"\n')
    result = ps.scan_repository(tmp_path)
    assert not result.git
    assert [f.path for f in result.findings] == ["src/settings.py"]


# --- git history -------------------------------------------------------------------------------


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_a_key_removed_since_is_found_in_history_naming_its_first_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"main.py": "print(1)\n"})
    (repo / "settings.py").write_text(f'import os\nANTHROPIC_API_KEY = "{KEY}"\n')
    added = commit_all(repo, "wip: key")
    (repo / "settings.py").write_text(f'import os\n\nDEBUG = True\nANTHROPIC_API_KEY = "{KEY}"\n')
    commit_all(repo, "moved")
    (repo / "settings.py").write_text("import os\nANTHROPIC_API_KEY = os.environ['ANTHROPIC_API_KEY']\n")
    commit_all(repo, "read it from the environment")
    result = ps.scan_repository(repo)
    assert [f.describe() for f in result.findings] == [
        f"settings.py:2 in commit {added[:12]} (history) (Base64 High Entropy String, Secret Keyword)"]
    assert result.history_changes == 4  # main.py once, settings.py three times
    assert KEY not in repr(result) and KEY[:16] not in repr(result)


def test_a_key_still_present_is_named_once_where_it_is_now(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"config.py": f'VOYAGE_API_KEY = "{KEY}"\n'})
    (repo / "config.py").write_text(f'# config\nVOYAGE_API_KEY = "{KEY}"\n')
    commit_all(repo, "comment")
    assert [f.describe() for f in ps.scan_repository(repo).findings] == [
        "config.py:2 (Base64 High Entropy String, Secret Keyword)"]


def test_history_honours_the_allowlist_the_baseline_and_vendored_dirs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"a.py": f'ANTHROPIC_API_KEY = "{KEY}"  # pragma: allowlist secret\n',
                                "b.py": f'VOYAGE_API_KEY = "{KEY}x"\n',
                                "node_modules/x/.env": f"KEY={KEY}y\n"})
    for name in ("a.py", "b.py", "node_modules/x/.env"):
        (repo / name).unlink()
    commit_all(repo, "remove")
    from detect_secrets.core.potential_secret import PotentialSecret

    assert [f.path for f in ps.scan_repository(repo).findings] == ["b.py"]
    (repo / ps.BASELINE).write_text(json.dumps({"results": {"b.py": [
        {"type": "Secret Keyword", "hashed_secret": PotentialSecret.hash_secret(KEY + "x"), "is_secret": False,
         "line_number": 1}]}}))
    assert ps.scan_repository(repo).findings == []


def test_history_of_a_subdirectory_is_its_own(tmp_path: Path) -> None:
    """--app-repo may name a folder of a larger repository (the reference app): only the
    history under it counts, with paths relative to it."""
    repo = make_repo(tmp_path, {"other/leak.py": f'API_KEY = "{KEY}"\n', "app/main.py": "print(1)\n"})
    (repo / "app" / "old.py").write_text(f'API_KEY = "{KEY}"\n')
    commit_all(repo, "key in app")
    (repo / "app" / "old.py").unlink()
    (repo / "other" / "leak.py").unlink()
    commit_all(repo, "gone")
    assert [f.path for f in ps.scan_repository(repo / "app").findings] == ["old.py"]


def test_a_repository_without_commits_has_no_history(tmp_path: Path) -> None:
    repo = tmp_path / "empty"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / ".env").write_text(f"ANTHROPIC_API_KEY={KEY}\n")
    result = ps.scan_repository(repo)
    assert [f.path for f in result.findings] == [".env"] and result.history_changes == 0


def test_history_line_numbers_are_the_file_lines_of_that_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"app.py": "import os\n\n\ndef main():\n    pass\n"})
    (repo / "app.py").write_text(f'import os\n\n\ndef main():\n    token = "{KEY}"\n    pass\n')
    added = commit_all(repo, "debug token")
    (repo / "app.py").write_text("import os\n\n\ndef main():\n    pass\n")
    commit_all(repo, "remove it")
    assert [f.describe() for f in ps.scan_repository(repo).findings] == [
        f"app.py:5 in commit {added[:12]} (history) (Base64 High Entropy String)"]


# --- git history: whatever git's config, and never silently partial ----------------------------


def key_in_history(repo: Path, name: str = "settings.py") -> str:
    """Commit a key in ``name`` (line 2), then remove it; the commit that added it."""
    (repo / name).write_text(f'import os\nANTHROPIC_API_KEY = "{KEY}"\n')
    added = commit_all(repo, "wip: key")
    (repo / name).unlink()
    commit_all(repo, "gone")
    return added


@pytest.mark.parametrize("config", [
    ("diff.noprefix", "true"), ("diff.mnemonicPrefix", "true"), ("diff.srcPrefix", "x/"),
    ("diff.dstPrefix", "y/"), ("diff.interHunkContext", "10"), ("diff.external", "false"),
    ("log.follow", "true"), ("color.ui", "always"), ("core.quotePath", "true"),
])
def test_history_is_read_whatever_the_repositorys_diff_config(tmp_path: Path, config: tuple[str, str]) -> None:
    repo = make_repo(tmp_path, {"main.py": "print(1)\n"})
    git(repo, "config", *config)
    (repo / "settings.py").write_text("import os\n\n\nDEBUG = True\n")
    commit_all(repo, "settings")
    (repo / "settings.py").write_text(f'import os\nAPI_KEY = "{KEY}"\n\nDEBUG = True\nX = 1\n')
    added = commit_all(repo, "wip: key")
    (repo / "settings.py").unlink()
    commit_all(repo, "gone")
    result = ps.scan_repository(repo)
    assert [f.describe() for f in result.findings] == [
        f"settings.py:2 in commit {added[:12]} (history) (Base64 High Entropy String, Secret Keyword)"]
    assert result.history_incomplete is None


def test_the_root_commit_is_read_without_running_the_repositorys_gpg(tmp_path: Path) -> None:
    """log.showRoot=false would hide the first commit's diff; log.showSignature=true would run
    the repository's gpg.program on every signed commit."""
    marker = tmp_path / "gpg-ran"
    gpg = tmp_path / "fake-gpg"
    gpg.write_text(f"#!/bin/sh\ncat > /dev/null\necho ran >> '{marker}'\necho '[GNUPG:] SIG_CREATED ' >&2\n"
                   "printf -- '-----BEGIN PGP SIGNATURE-----\\n\\nAAAA\\n-----END PGP SIGNATURE-----\\n'\n")
    gpg.chmod(0o755)
    repo = make_repo(tmp_path, {"settings.py": f'API_KEY = "{KEY}"\n'})
    root = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    git(repo, "config", "gpg.program", str(gpg))
    (repo / "settings.py").write_text("import os\nAPI_KEY = os.environ['API_KEY']\n")
    git(repo, "add", "settings.py")
    git(repo, "commit", "-S", "-qm", "signed: key removed")
    marker.unlink()
    git(repo, "config", "log.showRoot", "false")
    git(repo, "config", "log.showSignature", "true")
    result = ps.scan_repository(repo)
    assert [f.describe() for f in result.findings] == [
        f"settings.py:1 in commit {root[:12]} (history) (Base64 High Entropy String, Secret Keyword)"]
    assert not marker.exists()


def test_a_history_git_cannot_read_is_incomplete_not_clean(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"main.py": "print(1)\n"})
    key_in_history(repo)
    for obj in (repo / ".git" / "objects").glob("??/*"):
        obj.unlink()  # the index still lists main.py: only the history is gone
    result = ps.scan_repository(repo)
    assert result.git and result.findings == []
    assert result.history_incomplete is not None
    assert result.history_incomplete.startswith("git log failed (exit 128): fatal: ")
    from checks import test_security as checks
    from plugins.contract.verdict import Undecidable

    contract = parse(ROOT / "runbook.toml", shipped(), today=TODAY)
    with pytest.raises(Undecidable) as err:
        checks.test_no_secret_in_app_repository(repo, contract)
    assert "no secret in the files as they are now, but git log failed (exit 128): fatal: " in str(err.value)


def test_paths_with_spaces_quotes_and_accents_are_named_as_they_are(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"main.py": "print(1)\n"})
    names = ["my file.env", "configuração.py", 'say "hi".py', "back\\slash.py", "tab\there.py"]
    for i, name in enumerate(names):
        (repo / name).write_text(f"import os\nAPI_KEY{i} = '{KEY}{i}'\n")
    commit_all(repo, "keys")
    for name in names:
        (repo / name).unlink()
    commit_all(repo, "gone")
    assert sorted(f"{f.path}:{f.line}" for f in ps.scan_repository(repo).findings) == sorted(
        f"{name}:2" for name in names)


def test_the_deadline_stops_the_scan_naming_the_commits_covered(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"main.py": "print(1)\n", ".env": f"API_KEY={KEY}\n"}, commit=("main.py",))
    key_in_history(repo)
    result = ps.scan_repository(repo, history_timeout_s=0)
    assert result.history_incomplete == (
        "git history scan stopped at its 0 s deadline: the newest 0 of 3 commits covered")
    assert [f.path for f in result.findings] == [".env"]  # what was read still counts
    assert ps.scan_repository(repo).history_incomplete is None


def test_a_deadline_passed_mid_history_names_the_commits_read_to_their_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that jumps past the deadline at the second commit's header (calls: the start,
    then one per commit or file header): the newest commit only was covered."""
    repo = make_repo(tmp_path, {"main.py": "print(1)\n"})
    added = key_in_history(repo)
    calls = iter(range(1000))
    monkeypatch.setattr(git_history, "_clock", lambda: 0.0 if next(calls) < 3 else 1e6)
    result = ps.scan_repository(repo, history_timeout_s=60)
    assert result.history_incomplete == (
        "git history scan stopped at its 60 s deadline: the newest 1 of 3 commits covered")
    assert result.findings == [] and result.history_changes == 0  # HEAD removed a file: nothing added
    monkeypatch.undo()
    assert [f.commit for f in ps.scan_repository(repo).findings] == [added]


def test_an_oversized_addition_is_skipped_and_the_next_file_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = make_repo(tmp_path, {"main.py": "print(1)\n"})
    (repo / "dump.sql").write_text(f"-- {KEY}x\n" + "INSERT INTO t VALUES (1);\n" * 50)
    (repo / "settings.py").write_text(f'import os\nAPI_KEY = "{KEY}"\n')
    commit_all(repo, "dump and key")
    (repo / "dump.sql").unlink()
    (repo / "settings.py").unlink()
    commit_all(repo, "gone")
    monkeypatch.setattr(git_history, "HISTORY_MAX_ADDED_BYTES", 500)
    additions = list(ps.history_additions(repo))
    assert sorted(a.path for a in additions) == ["main.py", "settings.py"]
    assert [f.path for f in ps.scan_repository(repo).findings] == ["settings.py"]


@pytest.mark.parametrize(("path", "name"), [
    ("app/settings.py", "7/app/settings.py"), ("../../pwn/evil.py", "7/_/_/pwn/evil.py"),
    ("a/./b/../c.env", "7/a/_/b/_/c.env"), ("/abs/x.py", "7/_/abs/x.py"), ("..", "7/_"),
])
def test_temp_names_stay_inside_their_folder(path: str, name: str) -> None:
    assert repo_secrets._temp_name(7, path) == name


def test_a_crafted_dot_dot_path_in_history_is_reported_not_written_outside(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tree entry named `..` (git's plumbing accepts it; no checkout would) reaches `git
    log -p` as `b/../../pwn/evil.py`."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")

    def plumb(*args: str, stdin: str = "") -> str:
        return subprocess.run(["git", "-c", "user.email=ci@example.invalid", "-c", "user.name=ci", "-C", str(repo),
                               *args], input=stdin, capture_output=True, text=True, check=True).stdout.strip()

    blob = plumb("hash-object", "-w", "--stdin", stdin=f'API_KEY = "{KEY}"\n')
    tree = plumb("mktree", stdin=f"100644 blob {blob}\tevil.py\n")
    for name in ("pwn", "..", ".."):
        tree = plumb("mktree", stdin=f"040000 tree {tree}\t{name}\n")
    plumb("update-ref", "HEAD", plumb("commit-tree", tree, "-m", "crafted"))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(repo_secrets.tempfile, "tempdir", str(scratch))
    result = ps.scan_repository(repo)
    assert [f.path for f in result.findings] == ["../../pwn/evil.py"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "tmp"] and list(scratch.iterdir()) == []


def test_an_inherited_git_dir_does_not_redirect_the_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from a git hook, the suite inherits GIT_DIR (and friends): the scan still reads the
    repository it was given, current files and history alike."""
    repo = make_repo(tmp_path, {"app/config.py": f'ANTHROPIC_API_KEY = "{KEY}"\n'})
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    (other / "clean.py").write_text("print(1)\n")
    git(other, "add", "clean.py")
    git(other, "commit", "-qm", "clean")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    result = ps.scan_repository(repo)
    assert result.git
    assert [f.describe() for f in result.findings] == [
        "app/config.py:1 (Base64 High Entropy String, Secret Keyword)"]
    assert [a.path for a in ps.history_additions(repo)] == ["app/config.py"]


def test_a_repository_git_cannot_read_is_not_taken_for_a_plain_folder(tmp_path: Path) -> None:
    """A git repository whose index is corrupt is still scanned file by file, but its history
    is not vouched for: the scan says git failed (the check is then undecidable, not clean).
    A folder that is no repository at all is simply scanned as files."""
    repo = make_repo(tmp_path, {"main.py": "print(1)\n"})
    (repo / ".git" / "index").write_bytes(b"not an index")
    result = ps.scan_repository(repo)
    assert not result.git and result.files >= 1 and result.findings == []
    assert result.history_incomplete is not None
    assert result.history_incomplete.startswith("git ls-files failed: fatal: "), result.history_incomplete
    assert result.history_incomplete.endswith("every file scanned as it is now, history not read")

    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "main.py").write_text("print(1)\n")
    result = ps.scan_repository(plain)
    assert not result.git and result.files == 1 and result.history_incomplete is None
