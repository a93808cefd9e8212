"""Opt-in: JC-SEC-05 on a real checkout of the Júlia application (`JC_REAL_APP_DIR`).

Against rafa77-tech/whats-agents (HEAD e8dea89), detect-secrets alone flags dozens of values,
nearly all placeholders: CI's `${{ secrets.X }}` and `test`, test fixtures (`test-secret`,
sample message ids), `.env.example`'s `PASSWORD`, docs' `sua-api-key` and elided keys. It also
flags real-looking URL-encoded passwords in a migration script and in an operations report
— those must stay found. Asserted by path and path class only: no value of the real
repository appears in this project.

The scan reads the whole history (minutes on a large repository): the budget is raised
here so that only what git cannot read (a clone without its large files) is left out.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from checks import test_security as checks
from plugins.contract.verdict import Violation
from tests.test_security_placeholders import shipped

REAL = os.environ.get("JC_REAL_APP_DIR", "")
pytestmark = pytest.mark.skipif(
    not REAL, reason="JC_REAL_APP_DIR is unset: set it to a checkout of rafa77-tech/whats-agents to scan the "
                     "real application's repository")

# whats-agents: where the real-looking encoded passwords are (a migration script and the
# production deploy report), with their path classes.
REAL_LOOKING = {"scripts/migrate-to-prod.sh": "code", "docs/operacao/deploy-prod-report.md": "docs"}
# whats-agents: files where detect-secrets alone flags placeholders only (now or in history).
PLACEHOLDER_ONLY = {
    ".env.example", ".github/workflows/ci.yml", "app/api/routes/webhook_zapi.py",
    "dashboard/__tests__/api/integridade/anomalias.test.ts",
    "dashboard/__tests__/api/integridade/anomalias/[id]/resolver.test.ts",
    "dashboard/__tests__/api/integridade/kpis.test.ts", "dashboard/__tests__/api/integridade/reconciliacao.test.ts",
    "docs/auditorias/sprint-18/2025-12-31-sprint-18-evidence.md", "docs/integracoes/README.md",
    "docs/integracoes/slack-logica-negocio.md", "docs/integracoes/zapi-quickref.md", "docs/operacao/runbook.md",
    "planning/sprint-0/epic-01-integracoes.md", "planning/sprint-20/epic-02-eventos-tokens.md",
    "planning/sprint-20/epic-08-testes-docs.md", "planning/sprint-27/epic-05-integracao-railway.md",
    "tests/api/routes/test_webhook_meta.py", "tests/grupos/test_hospital_google_places.py",
    "tests/manual/chatwoot-config.json", "tests/manual/claude-test.json", "tests/manual/evolution-webhook-example.json",
    "tests/services/meta/test_flow_decryption.py", "tests/services/meta/test_pricing_config.py",
    "tests/test_parser.py", "tests/unit/test_sincronizar_briefing.py", "tests/unit/test_validacao_telefone.py",
    "docs/setup/configuracao.md", "docs/09-INTEGRACOES.md", "docs/INTEGRACOES.md", "docs/DEPLOY.md",
    "docs/setup/deploy.md",
}


@pytest.fixture(scope="module")
def verdict() -> Violation:
    """JC-SEC-05's verdict on the real checkout (one scan for every assertion here)."""
    contract = dataclasses.replace(shipped(), history_scan_timeout_s=3600)
    with pytest.raises(Violation) as err:
        checks.test_no_secret_in_app_repository(Path(REAL).resolve(), contract)
    return err.value


def findings(v: Violation) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = v.evidence["findings"]
    return found


def test_the_real_repositorys_placeholders_are_not_findings(verdict: Violation) -> None:
    paths = {f["file"] for f in findings(verdict)}
    assert not paths & PLACEHOLDER_ONLY, sorted(paths & PLACEHOLDER_ONLY)
    assert paths == set(REAL_LOOKING), sorted(paths)
    assert sum(verdict.evidence["placeholders_left_out"].values()) > len(PLACEHOLDER_ONLY)
    assert verdict.evidence["history_changes_scanned"] > 0


def test_the_real_looking_encoded_passwords_are_still_found(verdict: Violation) -> None:
    for path, cls in REAL_LOOKING.items():
        mine = [f for f in findings(verdict) if f["file"] == path]
        assert mine and {f["class"] for f in mine} == {cls}, path
        assert all(f["commit"] is None for f in mine)  # in the files as they are now
    groups = verdict.evidence["findings_by_class"]
    assert set(groups) == {"code", "docs"}
    assert f"— code ({groups['code']}): scripts/migrate-to-prod.sh:" in verdict.message
    assert f"; docs ({groups['docs']}): docs/operacao/deploy-prod-report.md:" in verdict.message
