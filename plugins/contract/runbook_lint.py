"""runbook.toml `[runbook_lint]`: how the runbook's markdown names production and its variables.

The lint (checks/test_runbook_lint.py, plugins.runbook_doc) tries every copy-pasteable command
of the document read-only against the target; this section says which URLs are production's,
which table columns list environment variable names, and how a placeholder literal looks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugins.contract.toml_schema import ConfigError, _check_table, _str_list

SECTION = "runbook_lint"


@dataclass(frozen=True)
class LintContract:
    """runbook.toml ``[runbook_lint]``."""

    production_urls: tuple[str, ...]
    env_table_columns: tuple[str, ...]
    placeholder: re.Pattern[str]


_SPEC = {
    "production_urls": (list, True),
    "env_table_columns": (list, True),
    "placeholder_pattern": (str, True),
}


def parse(path: Path, table: dict[str, Any]) -> LintContract:
    """Strict: an unknown key, a wrong type or a bad value names ``runbook_lint.<key>``."""
    _check_table(path, SECTION, table, _SPEC)
    urls = _str_list(path, f"{SECTION}.production_urls", table["production_urls"])
    for i, url in enumerate(urls):
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{path}: {SECTION}.production_urls[{i}]: must start with http:// or https://, got {url!r}"
            )
    columns = _str_list(path, f"{SECTION}.env_table_columns", table["env_table_columns"], nonempty=False)
    try:
        placeholder = re.compile(table["placeholder_pattern"])
    except re.error as exc:
        raise ConfigError(f"{path}: {SECTION}.placeholder_pattern: not a regular expression ({exc})") from None
    return LintContract(
        production_urls=tuple(u.rstrip("/") for u in urls),
        env_table_columns=tuple(columns),
        placeholder=placeholder,
    )
