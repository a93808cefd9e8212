"""runbook.toml `[runbook_lint]`: how the runbook's markdown names production and its variables.

The lint (checks/test_runbook_lint.py, plugins.runbook_doc) tries every copy-pasteable command
of the document read-only against the target; this section says which URLs are production's,
which table columns list environment variable names, and how a placeholder literal looks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from plugins.contract.toml_schema import OptStrList, StrList, Table, check, fail, of_type, validate

SECTION = "runbook_lint"


@dataclass(frozen=True)
class LintContract:
    """runbook.toml ``[runbook_lint]``."""

    production_urls: tuple[str, ...]
    env_table_columns: tuple[str, ...]
    placeholder: re.Pattern[str]


def _urls(urls: list[str]) -> list[str]:
    for i, url in enumerate(urls):
        if not url.startswith(("http://", "https://")):
            raise fail(f"must start with http:// or https://, got {url!r}", at=i)
    return urls


def _pattern(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise fail(f"not a regular expression ({exc})") from None


class LintSection(Table):
    production_urls: Annotated[StrList, check(_urls)]
    env_table_columns: OptStrList
    placeholder_pattern: Annotated[re.Pattern[str], of_type(str), check(_pattern)]

    def contract(self) -> LintContract:
        return LintContract(
            production_urls=tuple(u.rstrip("/") for u in self.production_urls),
            env_table_columns=tuple(self.env_table_columns),
            placeholder=self.placeholder_pattern,
        )


def parse(path: Path, table: dict[str, Any]) -> LintContract:
    """Strict: an unknown key, a wrong type or a bad value names ``runbook_lint.<key>``."""
    return validate(LintSection, table, path, SECTION).contract()
