"""JC-SEC-05 on a real application's repository: placeholders are judged on their value (never
on their folder), real-looking credentials are found in every kind of file, findings are
reported by path class, the team's audited baseline is honoured, and a history whose
large files were left out of the clone is still read around them.

Every credential here is made up for the test (no real value anywhere in this project).
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from fixtures.probes import security as ps
from fixtures import secret_placeholders as sp
from plugins.contract.security import SecretScanPolicy, SecurityContract, glob_regex, parse
from plugins.contract.toml_schema import ConfigError
from tests.area_helpers import ROOT, git

# Made-up, random-looking values of the shapes a leak takes (never a real one).
PASSWORD_ENCODED = "Tq4.WnzHv" + "%21Lp8sXr"  # pragma: allowlist secret
DB_PASSWORD = "vR7#mK2p" + "Qz9!wL4x"  # pragma: allowlist secret
API_TOKEN = "Jf83kLq0Zp" + "Wm5RtY2vXc7NbH1s"  # pragma: allowlist secret
CI_KEY = "b7Hq2Lr9Xw" + "4Tz8Km1Pv6Nc3Sd5"  # pragma: allowlist secret
ENV_KEY = "sk-ant-api03-" + "Hk2Lq9Wx4Rt7Zm1Pv8Nc3Sd6Bf0Gj5" + "YuIoPaQwErTy"  # pragma: allowlist secret
HEX32 = "9F3B7C1E5A2D8F4B6C0E3A7D1F5B9C2E"  # a sample message id's shape
SHA40 = "5c1e9b7a3f2d8e4c6a0b1d3f5e7a9c2b4d6f8e0a"


def shipped() -> SecurityContract:
    return parse(ROOT / "runbook.toml", tomllib.loads((ROOT / "runbook.toml").read_text())["security"])


POLICY = shipped().secret_scan
WORDS = sp.PlaceholderWords(POLICY.placeholder_words, POLICY.identifier_words, POLICY.fill_in_words)


def make_repo(tmp_path: Path, files: dict[str, str]) -> Path:
    repo = tmp_path / "repo"
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "app")
    return repo


def head(repo: Path) -> str:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


# --- the judgement, value by value ------------------------------------------------------------


@pytest.mark.parametrize(("secret", "line", "kind", "reason"), [
    ("${{ secrets.SUPABASE_SERVICE_KEY }}", "SUPABASE_SERVICE_KEY: ${{ secrets.SUPABASE_SERVICE_KEY }}",
     "Secret Keyword", "reference to a value kept elsewhere"),
    ("${DB_PASSWORD}", "DATABASE_URL=postgres://app:${DB_PASSWORD}@db/app", "Basic Auth Credentials",
     "reference to a value kept elsewhere"),
    ("<your-api-key>", "API_KEY=<your-api-key>", "Secret Keyword", "reference to a value kept elsewhere"),
    ("test", "EVOLUTION_API_KEY: test", "Secret Keyword", "placeholder words"),
    ("true", "if: steps.check.outputs.secrets_available == 'true'", "Secret Keyword", "placeholder words"),
    ("false\\", 'echo "secrets_available=false" >> $GITHUB_OUTPUT', "Secret Keyword", "placeholder words"),
    ("changeme", "SECRET_KEY=changeme", "Secret Keyword", "placeholder words"),
    ("your-key-here", "ANTHROPIC_API_KEY=your-key-here", "Secret Keyword", "placeholder words"),
    ("test-api-key-123", 'mock.GOOGLE_API_KEY = "test-api-key-123"', "Secret Keyword", "placeholder words"),
    ("my_app_secret", 'secret = "my_app_secret"', "Secret Keyword", "placeholder words"),
    ("PASSWORD", "postgresql://postgres:PASSWORD@db:5432/app", "Basic Auth Credentials", "placeholder words"),
    ("sk-ant-sua-key-aqui", 'export ANTHROPIC_API_KEY="sk-ant-sua-key-aqui"', "Secret Keyword",
     "placeholder words"),
    ("NÃO_COMMITAR_AQUI", '"api_key": "NÃO_COMMITAR_AQUI"', "Secret Keyword", "placeholder words"),
    ("your_openai_api_key_here", "OPENAI_API_KEY=your_openai_api_key_here", "Secret Keyword", "fill-in instruction"),
    ("Insert-Evolution-Key-Here", "EVOLUTION_API_KEY=Insert-Evolution-Key-Here", "Secret Keyword",
     "fill-in instruction"),
    ("xxx", "postgresql://postgres:xxx@pooler.example.com:6543/postgres", "Basic Auth Credentials",
     "elided or masked value"),
    ("https://hooks.slack.com/services/T00/B00/xxx", "SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T00/B00/xxx",
     "Slack Token", "elided or masked value"),
    ("c24ecc...", '"apikey": "c24ecc..."', "Secret Keyword", "elided or masked value"),
    ("********", "password: ********", "Secret Keyword", "elided or masked value"),
    ("RAILWAY_TOKEN", "Add it as a GitHub Secret: `RAILWAY_TOKEN`", "Secret Keyword",
     "a variable's name, not its value"),
    ("00112233445566778899aabbccddeeff", '_TEST_KEY_HEX = "00112233445566778899aabbccddeeff"',
     "Hex High Entropy String", "counting test vector"),
    ("abc123def456", 'assert result == "abc123def456"', "Hex High Entropy String", "counting test vector"),
    (HEX32, f'"messageId": "{HEX32}",', "Hex High Entropy String", "identifier"),
    (HEX32, f'"zaapId": "{HEX32}",', "Hex High Entropy String", "identifier"),
    (SHA40, f'"git_sha": "{SHA40}",', "Hex High Entropy String", "identifier"),
    ("msg_01Hk2Lq9Wx4Rt7Zm1Pv8Nc3S", '{"model":"m","id":"msg_01Hk2Lq9Wx4Rt7Zm1Pv8Nc3S","type":"message"}',
     "Base64 High Entropy String", "identifier"),
    # detect-secrets' eager transformer re-reads a JSON line as an ini value, quotes escaped
    ("msg_01Hk2Lq9Wx4Rt7Zm1Pv8Nc3S\\", '{"model" = "\\"m\\",\\"id\\":\\"msg_01Hk2Lq9Wx4Rt7Zm1Pv8Nc3S\\',
     "Base64 High Entropy String", "identifier"),
    ("BEGIN PRIVATE KEY", '"private_key": "-----BEGIN PRIVATE KEY-----\\n...",', "Private Key", "elided key body"),
])
def test_placeholders_of_every_kind(secret: str, line: str, kind: str, reason: str) -> None:
    assert sp.placeholder_reason(secret, line, kind, WORDS) == reason


@pytest.mark.parametrize(("secret", "line", "kind"), [
    (PASSWORD_ENCODED, f'PROD_PASSWORD_ENCODED="{PASSWORD_ENCODED}"', "Secret Keyword"),
    (DB_PASSWORD, f"postgresql://postgres:{DB_PASSWORD}@db:5432/app", "Basic Auth Credentials"),
    (ENV_KEY, f"ANTHROPIC_API_KEY={ENV_KEY}", "Secret Keyword"),
    # a test key, still a key: "test" is one word of it, not all of it
    ("sk_test_" + "51Hk2Lq9Wx4Rt7Zm1Pv8Nc", 'STRIPE_KEY = "sk_test_51Hk2Lq9Wx4Rt7Zm1Pv8Nc"', "Secret Keyword"),
    ("my-secret-" + "Wx4Rt7Zm", 'password = "my-secret-Wx4Rt7Zm"', "Secret Keyword"),
    ("test%40secret", 'password = "test%40secret"', "Secret Keyword"),  # an encoded character is no word
    # a fill-in word, but not a phrase of plain words
    ("your_" + "Wx4Rt7Zm_here", 'API_KEY = "your_Wx4Rt7Zm_here"', "Secret Keyword"),
    ("here-" + "kQ93mzLpw", 'API_KEY = "here-kQ93mzLpw"', "Secret Keyword"),
    ("1234567890", 'password = "1234567890"', "Secret Keyword"),  # a weak password, still one
    # an id-named key that names a credential is no identifier
    (HEX32, f'"session_id": "{HEX32}"', "Hex High Entropy String"),
    (HEX32, f'"api_key_id": "{HEX32}"', "Hex High Entropy String"),
    # an identifier's key only counts for values flagged by entropy alone
    (HEX32, f'"id": "{HEX32}"', "Secret Keyword"),
    (HEX32, f'print("{HEX32}")', "Hex High Entropy String"),
    ("BEGIN PRIVATE KEY", '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC",',
     "Private Key"),
    ("BEGIN RSA PRIVATE KEY", "-----BEGIN RSA PRIVATE KEY-----", "Private Key"),  # the body is on the next lines
])
def test_real_looking_values_are_not_placeholders(secret: str, line: str, kind: str) -> None:
    assert sp.placeholder_reason(secret, line, kind, WORDS) is None


# --- path classes -----------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "cls"), [
    ("scripts/migrate.sh", "code"), ("app/api/routes/webhook.py", "code"), ("dashboard/lib/api.ts", "code"),
    (".github/workflows/ci.yml", "ci"), ("tests/unit/test_x.py", "tests"), ("tests/manual/sample.json", "tests"),
    ("dashboard/__tests__/api/kpis.test.ts", "tests"), ("app/test_util.py", "tests"),
    ("docs/operacao/report.md", "docs"), ("planning/sprint-0/epic.md", "docs"), ("README.md", "docs"),
    (".env.example", "config"), (".env", "config"), ("deploy/prod.env", "config"), ("railway.json", "config"),
])
def test_shipped_path_classes(path: str, cls: str) -> None:
    assert POLICY.path_class(path) == cls


@pytest.mark.parametrize(("glob", "path", "match"), [
    ("docs/**", "docs/a/b.md", True), ("docs/**", "docs", True), ("docs/**", "mydocs/a.md", False),
    ("**/*.md", "README.md", True), ("**/*.md", "a/b/c.md", True), ("*.md", "a/b.md", False),
    ("**/__tests__/**", "web/__tests__/x.ts", True), ("**/test_*.py", "test_a.py", True),
    ("**/.env.*", "svc/.env.production", True), ("railway.json", "app/railway.json", False),
])
def test_globs(glob: str, path: str, match: bool) -> None:
    assert bool(glob_regex(glob).match(path)) is match


def test_shipped_policy() -> None:
    assert {"test", "changeme", "your", "nao"} <= POLICY.placeholder_words
    assert POLICY.class_order() == ("code", "ci", "tests", "docs", "config")
    data = tomllib.loads((ROOT / "runbook.toml").read_text())["security"]
    del data["secret_scan"]
    assert parse(ROOT / "runbook.toml", data).secret_scan == SecretScanPolicy()


def _scan_section() -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((ROOT / "runbook.toml").read_text())["security"]
    return data


@pytest.mark.parametrize(("change", "message"), [
    (lambda s: s.update(extra=1), "security.secret_scan.extra: unknown key"),
    (lambda s: s.update(placeholder_words=["test", "my_key"]),
     "security.secret_scan.placeholder_words[1]: must be a single word of letters, got 'my_key'"),
    (lambda s: s.update(identifier_words=[]), "security.secret_scan.identifier_words: must not be empty"),
    (lambda s: s.update(default_class=" "), "security.secret_scan.default_class: must not be empty"),
    (lambda s: s["path_classes"][1].update(name="ci"),
     "security.secret_scan.path_classes[1].name: 'ci' is listed twice"),
    (lambda s: s["path_classes"][0].update(paths=["/abs/**"]),
     "security.secret_scan.path_classes[0].paths[0]: a glob relative to the checkout"),
    (lambda s: s["path_classes"][0].pop("paths"), "security.secret_scan.path_classes[0].paths: missing required key"),
])
def test_bad_scan_policy_names_the_key(change: Any, message: str) -> None:
    data = _scan_section()
    change(data["secret_scan"])
    with pytest.raises(ConfigError) as err:
        parse(Path("rb.toml"), data)
    assert str(err.value).startswith("rb.toml: ") and message in str(err.value)


# --- the scan, on scratch repositories --------------------------------------------------------

PLACEHOLDER_FILES = {
    ".github/workflows/ci.yml": (
        "jobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - name: Run tests\n"
        "        if: steps.check_secrets.outputs.secrets_available == 'true'\n"
        "        env:\n"
        "          SUPABASE_SERVICE_KEY: ${{ secrets.SUPABASE_SERVICE_KEY }}\n"
        "          EVOLUTION_API_KEY: test\n"
        "        run: pytest\n"),
    "tests/test_webhook.py": (
        "def test_signature():\n"
        '    secret = "my_app_secret"\n'
        '    api_key = "test-api-key-123"\n'
        f'    payload = {{"messageId": "{HEX32}"}}\n'
        '    key_hex = "00112233445566778899aabbccddeeff"\n'
        '    assert digest() == "abc123def456"\n'),
    ".env.example": (
        "ANTHROPIC_API_KEY=your-key-here\n"
        "OPENAI_API_KEY=your_openai_api_key_here\n"
        "SECRET_KEY=changeme\n"
        "DATABASE_URL=postgresql://postgres:PASSWORD@db:5432/app\n"
        "SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T00/B00/xxx\n"),
    "docs/setup.md": (
        "# Setup\n\n```bash\n"
        'export ANTHROPIC_API_KEY="sk-ant-sua-key-aqui"\n'
        "psql postgresql://user:pass@host/db < migration.sql\n```\n\n"
        "Add it as a GitHub Secret: `RAILWAY_TOKEN`\n\n```json\n"
        '{\n  "private_key": "-----BEGIN PRIVATE KEY-----\\n...",\n'
        '  "apikey": "c24ecc...",\n'
        f'  "git_sha": "{SHA40}"\n}}\n```\n'),
    "app/webhook.py": f'EXAMPLE = {{"zaapId": "{HEX32}"}}\n',
}


def _raw_detect_secrets(repo: Path, name: str) -> set[int]:
    """The lines detect-secrets alone (its plugins and default filters) flags in a file."""
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import default_settings

    with default_settings():
        return {s.line_number for s in scan_file(str(repo / name))}


def test_placeholders_in_every_path_class_are_not_findings(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, PLACEHOLDER_FILES)
    # each file holds values detect-secrets flags by itself ...
    for name in PLACEHOLDER_FILES:
        assert _raw_detect_secrets(repo, name), name
    # ... and none of them is a finding, now or in history
    result = ps.scan_repository(repo, policy=POLICY)
    assert result.findings == [] and result.history_incomplete is None
    assert set(result.placeholders) == {
        "placeholder words", "elided or masked value", "a variable's name, not its value", "counting test vector",
        "identifier", "elided key body", "fill-in instruction"}


def test_placeholders_only_in_history_are_not_findings(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, PLACEHOLDER_FILES)
    for name in PLACEHOLDER_FILES:
        (repo / name).unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "gone")
    result = ps.scan_repository(repo, policy=POLICY)
    assert result.findings == [] and result.history_changes == len(PLACEHOLDER_FILES)


LEAKS = {
    "scripts/migrate.sh": f'#!/bin/sh\nset -e\nPROD_PASSWORD_ENCODED="{PASSWORD_ENCODED}"\n',
    "docs/ops/report.md": f'# Report\n\n```bash\nPROD_PASSWORD_ENCODED="{PASSWORD_ENCODED}"\n```\n',
    "tests/test_client.py": f'API_TOKEN = "{API_TOKEN}"\n',
    ".github/workflows/deploy.yml": f"jobs:\n  deploy:\n    env:\n      DEPLOY_KEY: {CI_KEY}\n",
    ".env.example": f"ANTHROPIC_API_KEY={ENV_KEY}\n",
}


def test_a_real_looking_credential_is_found_in_every_path_class(tmp_path: Path) -> None:
    files = {name: PLACEHOLDER_FILES.get(name, "") + text for name, text in LEAKS.items()}
    repo = make_repo(tmp_path, {**PLACEHOLDER_FILES, **files})
    result = ps.scan_repository(repo, policy=POLICY)
    assert {(f.path_class, f.path) for f in result.findings} == {
        ("code", "scripts/migrate.sh"), ("docs", "docs/ops/report.md"), ("tests", "tests/test_client.py"),
        ("ci", ".github/workflows/deploy.yml"), ("config", ".env.example")}
    assert all(v not in repr(result) for v in (PASSWORD_ENCODED, API_TOKEN, CI_KEY, ENV_KEY))


def test_the_message_groups_findings_by_path_class(tmp_path: Path) -> None:
    from checks import test_security as checks
    from plugins.contract.verdict import Violation

    repo = make_repo(tmp_path, LEAKS)
    with pytest.raises(Violation) as err:
        checks.test_no_secret_in_app_repository(repo, shipped())
    assert err.value.message == (
        "expected no secret in the application's code or .env files, found 5 secret-looking value(s) "
        "(values not shown) — code (1): scripts/migrate.sh:3 (Secret Keyword); "
        "ci (1): .github/workflows/deploy.yml:4 (Base64 High Entropy String); "
        "tests (1): tests/test_client.py:1 (Base64 High Entropy String); "
        "docs (1): docs/ops/report.md:4 (Secret Keyword); "
        "config (1): .env.example:1 (Secret Keyword)")
    evidence = err.value.evidence
    assert evidence["findings_by_class"] == {"code": 1, "ci": 1, "tests": 1, "docs": 1, "config": 1}
    assert PASSWORD_ENCODED not in json.dumps(evidence)


def test_a_credential_removed_from_docs_is_found_in_history_as_docs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"docs/ops/report.md": LEAKS["docs/ops/report.md"], "main.py": "print(1)\n"})
    added = head(repo)
    (repo / "docs/ops/report.md").write_text("# Report\n\nThe password is in Railway's variables.\n")
    git(repo, "commit", "-qam", "redact")
    assert [(f.describe(), f.path_class) for f in ps.scan_repository(repo, policy=POLICY).findings] == [
        (f"docs/ops/report.md:4 in commit {added[:12]} (history) (Secret Keyword)", "docs")]


def test_an_unquoted_key_in_an_env_example_is_found_now_and_in_history(tmp_path: Path) -> None:
    """detect-secrets has no dotenv type: by itself it reads `.env.example`'s unquoted
    `KEY=value` lines never, and `.env`'s only when nothing else in the file was flagged."""
    text = PLACEHOLDER_FILES[".env.example"] + LEAKS[".env.example"]
    repo = make_repo(tmp_path, {".env.example": text, "main.py": "print(1)\n"})
    assert _raw_detect_secrets(repo, ".env.example") == {4, 5}  # by itself: the URL-shaped placeholders only
    (repo / ".env").write_text(f'DB_PASSWORD="{DB_PASSWORD}"\n' + LEAKS[".env.example"])  # ignored or not
    assert [f.describe() for f in ps.scan_repository(repo, policy=POLICY).findings] == [
        ".env:1 (Secret Keyword)", ".env:2 (Secret Keyword)", ".env.example:6 (Secret Keyword)"]
    (repo / ".env").unlink()
    added = head(repo)
    (repo / ".env.example").write_text(PLACEHOLDER_FILES[".env.example"])
    git(repo, "commit", "-qam", "placeholder again")
    result = ps.scan_repository(repo, policy=POLICY)
    assert [(f.describe(), f.path_class) for f in result.findings] == [
        (f".env.example:6 in commit {added[:12]} (history) (Secret Keyword)", "config")]


def test_the_baseline_audited_false_is_honoured_and_only_that(tmp_path: Path) -> None:
    """`detect-secrets audit` marks each result is_secret true/false; only false leaves a value
    out (in history too) — true and not-yet-audited ones are findings."""
    from detect_secrets.core.potential_secret import PotentialSecret

    repo = make_repo(tmp_path, {"docs/a.md": f'PASSWORD="{PASSWORD_ENCODED}"\n',
                                "docs/b.md": f'PASSWORD="{DB_PASSWORD}"\n',
                                "tests/c.py": f'API_TOKEN = "{API_TOKEN}"\n',
                                "scripts/old.sh": f'DEPLOY_KEY="{CI_KEY}"\n'})
    (repo / "scripts/old.sh").unlink()
    git(repo, "commit", "-qam", "remove the old script")

    def entry(value: str, verdict: bool | None) -> dict[str, Any]:
        item: dict[str, Any] = {"type": "Secret Keyword", "hashed_secret": PotentialSecret.hash_secret(value),
                                "line_number": 1}
        if verdict is not None:
            item["is_secret"] = verdict
        return item

    (repo / ps.BASELINE).write_text(json.dumps({"version": "1.5.0", "results": {
        "docs/a.md": [entry(PASSWORD_ENCODED, False)], "docs/b.md": [entry(DB_PASSWORD, True)],
        "tests/c.py": [entry(API_TOKEN, None)], "scripts/old.sh": [entry(CI_KEY, False)]}}))
    result = ps.scan_repository(repo, policy=POLICY)
    assert sorted(f.path for f in result.findings) == ["docs/b.md", "tests/c.py"]
    assert result.audited_false_positives == 2


# --- a history whose large files were left out of the clone -------------------------------------


def test_a_missing_file_content_is_read_around_and_named(tmp_path: Path) -> None:
    """A clone may lack some blobs (large files left out): `git log -p` stops there. The scan
    resumes at that commit without that file, still finds the key the same commit added to
    another file, and names what it could not read (the check fails, saying so)."""
    repo = make_repo(tmp_path, {"main.py": "print(1)\n"})
    (repo / "data").mkdir()
    (repo / "data" / "dump 1.sql").write_text("INSERT INTO t VALUES (1);\n")
    (repo / "settings.py").write_text(f'import os\nAPI_TOKEN = "{API_TOKEN}"\n')
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "dump and key")
    added = head(repo)
    (repo / "settings.py").write_text("import os\nAPI_TOKEN = os.environ['API_TOKEN']\n")
    git(repo, "commit", "-qam", "key from the environment")
    blob = subprocess.run(["git", "-C", str(repo), "rev-parse", f"{added}:data/dump 1.sql"], capture_output=True,
                          text=True, check=True).stdout.strip()
    (repo / ".git" / "objects" / blob[:2] / blob[2:]).unlink()
    (repo / "data" / "dump 1.sql").unlink()  # not in the work tree either, as in the clone
    result = ps.scan_repository(repo, policy=POLICY)
    assert [f.describe() for f in result.findings] == [
        f"settings.py:2 in commit {added[:12]} (history) (Base64 High Entropy String)"]
    assert result.history_incomplete == (
        f"git could not read 1 file version(s) (content missing from the repository): data/dump 1.sql in commit "
        f"{added[:12]} — those files' history from there back was not scanned")
    assert result.history_changes == 3  # settings.py in both commits, main.py; the dump never

    from checks import test_security as checks
    from plugins.contract.verdict import Violation

    with pytest.raises(Violation) as err:
        checks.test_no_secret_in_app_repository(repo, shipped())
    assert err.value.message.endswith(f"(git history only partly scanned: {result.history_incomplete})")
