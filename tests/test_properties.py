"""Property tests for the parsers and validators everything else stands on."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import tomllib
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fixtures.probes.health import dig
from plugins.contract.redaction import MASK, Redactor
from plugins.contract.runbook import load_runbook
from plugins.contract.targets import load_targets, resolve_target
from plugins.contract.toml_schema import ConfigError

ROOT = Path(__file__).resolve().parents[1]

toml_scalars = st.one_of(
    st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False),
    st.text(string.ascii_letters + "/_:.-", max_size=12),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(string.ascii_lowercase + "_", min_size=1, max_size=10), inner, max_size=3)),
    max_leaves=8,
)


def _dump(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_dump(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{k} = {_dump(v)}" for k, v in value.items()) + "}"


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(section=st.sampled_from(["targets.local", "targets.prod", "targets.new"]),
       key=st.sampled_from(["local", "stack", "api_url", "environment", "database_url_env", "redis_url_env", "bogus"]),
       value=toml_values)
def test_targets_loader_fails_only_with_config_error(tmp_path: Path, section: str, key: str, value: object) -> None:
    """The shipped file with one key of one profile set to an arbitrary value: the loader
    accepts it or says which file and key are wrong, in one line — nothing else."""
    path = tmp_path / "targets.toml"
    base = tomllib.loads((ROOT / "targets.toml").read_text())
    name = section.split(".")[1]
    base["targets"].setdefault(name, {"local": True, "environment": "e", "project_ref": "r", "database_url_env": "X"})
    base["targets"][name][key] = value
    lines = []
    for prof, table in base["targets"].items():
        lines.append(f"[targets.{prof}]")
        lines += [f"{k} = {_dump(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    try:
        profiles = load_targets(path)
        resolve_target(path, profiles, name, environ={"JC_PROD_DATABASE_URL": "postgresql://u@h/d", "X": "postgresql://u@h/d"})
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith(str(path) + ": ") and "\n" not in message


@settings(max_examples=60)
@given(st.binary(max_size=200))
def test_runbook_loader_rejects_garbage_cleanly(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("rb") / "runbook.toml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as info:
        load_runbook(path)
    assert str(info.value).startswith(str(path))


secret_text = st.text(string.ascii_letters + string.digits + "!#$%&*+-.:;=?@^_~/", min_size=4, max_size=30)


@given(secret=secret_text, before=st.text(max_size=40), after=st.text(max_size=40))
def test_registered_secret_never_survives_scrub(secret: str, before: str, after: str) -> None:
    red = Redactor()
    red.register(secret)
    out = red.scrub(before + secret + after)
    assert secret not in out


@given(user=st.text(string.ascii_lowercase, min_size=1, max_size=8),
       password=st.text(string.ascii_letters + string.digits + "!$%^&*-_", min_size=1, max_size=20),
       host=st.sampled_from(["db.example.com", "127.0.0.1", "aws-0-sa-east-1.pooler.supabase.com"]))
def test_dsn_password_is_scrubbed_without_registration(user: str, password: str, host: str) -> None:
    text = f"could not connect: postgresql://{user}:{password}@{host}:5432/postgres failed"
    out = Redactor().scrub(text)
    assert f":{password}@" not in out and f"{user}:{MASK}@{host}" in out


@given(st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=5), st.integers(), max_size=4),
       st.lists(st.text(string.ascii_lowercase, min_size=1, max_size=5), min_size=1, max_size=3))
def test_dig_never_raises(body: dict[str, int], steps: list[str]) -> None:
    result = dig({"a": body}, "a." + ".".join(steps))
    assert result is None or result == body.get(steps[0])
