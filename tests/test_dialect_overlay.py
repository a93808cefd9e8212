"""A dialect respells the runbook contract; every respelling is recorded as drift."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from plugins.contract.runbook import load_runbook
from plugins.contract.toml_schema import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def contract(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "runbook.toml", tmp_path / "runbook.toml")
    (tmp_path / "dialects").mkdir()
    return tmp_path / "runbook.toml"


def test_dialect_respells_and_records_drift(contract: Path) -> None:
    (contract.parent / "dialects" / "deployed.toml").write_text(
        '[endpoints]\nrate = ["/health/rate-limit"]\n[deep.parts]\nredis = "checks.redis"\n'
        '[http]\nread_timeout_s = 5.0\n'  # same value: no drift
    )
    rb = load_runbook(contract, "deployed")
    assert rb.dialect == "deployed"
    assert rb.endpoints["rate"] == ("/health/rate-limit",)
    assert rb.deep.parts["redis"] == ("checks.redis",)
    assert {d.key: (d.runbook, d.deployment) for d in rb.drift} == {
        "endpoints.rate": (["/health/rate", "/health/rate-limit"], ["/health/rate-limit"]),
        "deep.parts.redis": ("redis", "checks.redis"),
    }
    assert rb.sha256 != load_runbook(contract).sha256  # the contract in force changed


def test_dialect_cannot_invent_keys(contract: Path) -> None:
    (contract.parent / "dialects" / "typo.toml").write_text('[endpoints]\nrates = ["/x"]\n')
    with pytest.raises(ConfigError, match=r"typo.toml: endpoints.rates: not a key of the runbook contract"):
        load_runbook(contract, "typo")


def test_unknown_dialect(contract: Path) -> None:
    with pytest.raises(ConfigError, match=r"dialects/nope.toml: dialect 'nope': file not found"):
        load_runbook(contract, "nope")


def test_bad_value_from_dialect_names_both_files(contract: Path) -> None:
    (contract.parent / "dialects" / "bad.toml").write_text('[http]\nread_timeout_s = "slow"\n')
    with pytest.raises(ConfigError, match=r"runbook.toml \+ bad.toml: http.read_timeout_s: must be a number"):
        load_runbook(contract, "bad")


def test_disagreements_are_declared_drift_with_their_source(contract: Path) -> None:
    """Where the deployment's code and the runbook disagree beyond a key (a job the code no
    longer schedules), the dialect declares it with the file it is read from."""
    (contract.parent / "dialects" / "deployed.toml").write_text(
        '[[disagreements]]\ntopic = "runtime.jobs.relatorio-diario"\nrunbook = "daily at 08:00"\n'
        'deployment = "not scheduled"\nsource = "app/workers/scheduler.py"\n'
    )
    rb = load_runbook(contract, "deployed")
    [d] = rb.drift
    assert (d.key, d.runbook, d.deployment, d.source) == (
        "runtime.jobs.relatorio-diario", "daily at 08:00", "not scheduled", "app/workers/scheduler.py")
    from plugins.contract.drift import declared_entries

    assert declared_entries(rb) == [{
        "key": "runtime.jobs.relatorio-diario", "runbook": "daily at 08:00", "deployment": "not scheduled",
        "note": "read from app/workers/scheduler.py", "declared_in": "dialects/deployed.toml"}]


@pytest.mark.parametrize(("body", "error"), [
    ('disagreements = "x"\n', r"deployed.toml: disagreements: must be an array of tables"),
    ('[[disagreements]]\ntopic = "t"\nrunbook = "a"\ndeployment = "b"\n', r"disagreements\[0\].source: missing"),
    ('[[disagreements]]\ntopic = "t"\nrunbook = " "\ndeployment = "b"\nsource = "f"\n',
     r"disagreements\[0\].runbook: must not be empty"),
    ('[[disagreements]]\ntopic = "t"\nrunbook = "a"\ndeployment = "b"\nsource = "f"\n' * 2,
     r"disagreements\[1\].topic: 't' is listed twice"),
])
def test_bad_disagreement_is_a_config_error(contract: Path, body: str, error: str) -> None:
    (contract.parent / "dialects" / "deployed.toml").write_text(body)
    with pytest.raises(ConfigError, match=error):
        load_runbook(contract, "deployed")
