"""A dialect respells the runbook contract; every respelling is recorded as drift."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from plugins.config import ConfigError, load_runbook

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
