"""The certificate's shape (issue 2's fields, format 2) and its verdict: `certified` only
when every selected invariant passed — one skipped invariant is enough to refuse it."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from tests.conftest import ROOT, run_suite

SYNTHETIC = ("tests/synthetic_checks/check_verdict.py",)
ROW_KEYS = {"id", "title", "severity", "outcome", "message"}


def _iso(text: str) -> dt.datetime:
    stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert stamp.tzinfo is not None, text
    return stamp


def test_one_skipped_invariant_is_not_certified(tmp_path: Path) -> None:
    run = run_suite(reports=tmp_path / "reports", paths=SYNTHETIC)
    assert run.exitcode == 1, run.output[-3000:]
    assert run.outcomes() == {"JC-VERDICT-01": "passed", "JC-VERDICT-02": "skipped"}
    cert = run.certificate
    assert cert is not None and cert["verdict"] == "not-certified"
    assert "skipped on purpose" in run.message("JC-VERDICT-02")


def test_certificate_carries_issue_2_fields(tmp_path: Path) -> None:
    """Format 2 = format 1's fields (pinned here) + issue 7's, and the `waived` outcome."""
    run = run_suite("-m", "postdeploy", reports=tmp_path / "reports", paths=SYNTHETIC,
                    env={"JC_VERDICT_FAIL": "1"})
    assert run.exitcode == 1, run.output[-3000:]
    cert = run.certificate
    assert cert is not None
    assert cert["format"] == 2
    assert {"format", "target", "environment", "project_ref", "tier", "started_at", "finished_at",
            "verdict", "invariants"} <= set(cert)
    assert (cert["target"], cert["environment"], cert["project_ref"]) == ("local", "local", "localjuliaref0000000")
    assert cert["tier"] == "postdeploy"
    assert _iso(cert["started_at"]) <= _iso(cert["finished_at"])
    assert cert["verdict"] == "not-certified"
    rows = {row["id"]: row for row in cert["invariants"]}
    assert set(rows) == {"JC-VERDICT-01", "JC-VERDICT-02"}
    for row in rows.values():
        assert ROW_KEYS <= set(row), row
        assert row["outcome"] in ("passed", "failed", "skipped", "error", "waived")
        assert all(isinstance(row[k], str) for k in ROW_KEYS)
    assert (rows["JC-VERDICT-01"]["title"], rows["JC-VERDICT-01"]["severity"]) == ("an invariant that holds", "normal")
    assert (rows["JC-VERDICT-01"]["outcome"], rows["JC-VERDICT-02"]["outcome"]) == ("passed", "failed")
    assert "told to fail" in rows["JC-VERDICT-02"]["message"]
    # reports/README.md documents every field the certificate carries
    documented = set(re.findall(r"`([a-z_0-9]+)`", (ROOT / "reports" / "README.md").read_text()))
    assert set(cert) - documented == set()
    assert {k for row in rows.values() for k in row} - documented == set()
