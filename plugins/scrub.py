"""Redaction applied where the suite's output leaves the process.

plugins.contract.redaction knows the secrets; this plugin applies them at every exit: pytest's report
of each test (what the terminal prints: failure text, captured output, the short summary),
every Allure result and attachment as it is written, and — as a backstop — every text file
under the run's allure-results before the certificate is written. A secret read from an env
var, or a DSN password or bearer token in an app's error message, must not reach a CI log or
an artifact anyone can download.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import allure_commons
import pytest

from fixtures import json_bounds
from plugins.contract.redaction import Redactor
from plugins.target import redactor as run_redactor

TEXT_SUFFIXES = (".json", ".txt", ".properties", ".md", ".log", ".csv", ".xml", ".html", ".uri", ".mjs")


def scrub_value(value: Any, red: Redactor, _level: int = 0) -> Any:
    """``value`` with every string scrubbed; a container nested deeper than
    json_bounds.MAX_DEPTH is replaced by its placeholder (never a RecursionError)."""
    if isinstance(value, str):
        return red.scrub(value)
    if isinstance(value, (list, tuple, dict)) and _level >= json_bounds.MAX_DEPTH:
        return json_bounds.NOT_SHOWN
    if isinstance(value, list):
        return [scrub_value(v, red, _level + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(scrub_value(v, red, _level + 1) for v in value)
    if isinstance(value, dict):
        return {k: scrub_value(v, red, _level + 1) for k, v in value.items()}
    return value


def _scrub_longrepr(longrepr: Any, red: Redactor) -> Any:
    if longrepr is None:
        return None
    if isinstance(longrepr, str):
        return red.scrub(longrepr)
    if isinstance(longrepr, tuple):  # a skip: (path, lineno, reason)
        return tuple(red.scrub(x) if isinstance(x, str) else x for x in longrepr)
    text = str(longrepr)
    clean = red.scrub(text)
    # Keep pytest's rich representation unless it carries a secret.
    return longrepr if clean == text else clean


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    try:
        red = run_redactor(item.config)
    except KeyError:
        return report
    report.longrepr = _scrub_longrepr(report.longrepr, red)
    report.sections = [(title, red.scrub(content)) for title, content in report.sections]
    report.user_properties = [(k, scrub_value(v, red)) for k, v in report.user_properties]
    return report


# --- Allure: results are scrubbed before allure-pytest's file logger serializes them ------


@pytest.hookimpl(tryfirst=True)
def pytest_warning_recorded(warning_message: Any, when: str, nodeid: str, location: Any) -> None:
    """A warning's text is printed in the warnings summary: scrubbed before anyone formats it
    (pytest's terminal, xdist's worker sending it to the controller)."""
    try:
        red = run_redactor(_CONFIG[0]) if _CONFIG else None
    except KeyError:
        red = None
    if red is None:
        return
    message = warning_message.message
    text = str(message)
    clean = red.scrub(text)
    if clean != text:
        category = type(message) if isinstance(message, Warning) else UserWarning
        try:
            warning_message.message = category(clean)
        except Exception:  # noqa: BLE001 - a warning class with its own constructor
            warning_message.message = UserWarning(clean)
    if isinstance(warning_message.line, str):
        warning_message.line = red.scrub(warning_message.line)


# The run's config, for hooks that are not given it (pytest_warning_recorded).
_CONFIG: list[pytest.Config] = []


def _scrub_attrs(root: Any, red: Redactor, seen: set[int]) -> None:
    """Scrub every string reachable from an allure_commons model object, in place (walked
    with a stack of its own: no depth is too deep)."""
    import attr

    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if attr.has(type(obj)):
            for field in attr.fields(type(obj)):
                value = getattr(obj, field.name)
                if isinstance(value, str):
                    setattr(obj, field.name, red.scrub(value))
                elif isinstance(value, (list, dict)) or attr.has(type(value)):
                    todo.append(value)
        elif isinstance(obj, list):
            for i, value in enumerate(obj):
                if isinstance(value, str):
                    obj[i] = red.scrub(value)
                else:
                    todo.append(value)
        elif isinstance(obj, dict):
            for key, value in obj.items():
                if isinstance(value, str):
                    obj[key] = red.scrub(value)
                else:
                    todo.append(value)


def scrub_file(path: Path, red: Redactor) -> bool:
    """Rewrite a text file without its secrets (JSON string by string); True if changed."""
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if path.suffix == ".json":
        try:  # (a file nested too deep to walk is scrubbed as text)
            data = json_bounds.loads(text)
        except ValueError:
            data = None
        if data is not None:
            clean_data = scrub_value(data, red)
            if clean_data == data:
                return False
            path.write_text(json.dumps(clean_data, ensure_ascii=False), encoding="utf-8")
            return True
    clean = red.scrub(text)
    if clean == text:
        return False
    path.write_text(clean, encoding="utf-8")
    return True


def scrub_tree(root: Path, red: Redactor) -> int:
    """Backstop over a folder's text files; the number of files that needed it."""
    if not root.is_dir():
        return 0
    changed = 0
    for path in sorted(root.rglob("*")):
        if path.is_file() and (path.suffix in TEXT_SUFFIXES or "-attachment" in path.name):
            changed += scrub_file(path, red)
    return changed


class AllureRedactor:
    """An allure_commons plugin: scrubs results before, and attachments right after, writing."""

    def __init__(self, red: Redactor, results_dir: Path) -> None:
        self.red = red
        self.results_dir = results_dir

    @allure_commons.hookimpl(tryfirst=True)
    def report_result(self, result: Any) -> None:
        _scrub_attrs(result, self.red, set())

    @allure_commons.hookimpl(tryfirst=True)
    def report_container(self, container: Any) -> None:
        _scrub_attrs(container, self.red, set())

    @allure_commons.hookimpl(tryfirst=True)
    def report_globals(self, globals_item: Any) -> None:
        _scrub_attrs(globals_item, self.red, set())

    @allure_commons.hookimpl(trylast=True)
    def report_attached_data(self, body: Any, file_name: str) -> None:
        scrub_file(self.results_dir / file_name, self.red)

    @allure_commons.hookimpl(trylast=True)
    def report_attached_file(self, source: Any, file_name: str) -> None:
        scrub_file(self.results_dir / file_name, self.red)


def pytest_configure(config: pytest.Config) -> None:
    _CONFIG[:] = [config]
    config.add_cleanup(_CONFIG.clear)
    results = getattr(config.option, "allure_report_dir", None)
    try:
        red = run_redactor(config)
    except KeyError:
        return
    if not results:
        return
    plugin = AllureRedactor(red, Path(results).resolve())
    allure_commons.plugin_manager.register(plugin)
    config.add_cleanup(lambda: allure_commons.plugin_manager.unregister(plugin))
