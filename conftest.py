"""Registers the suite's plugins and fixture modules (nothing else lives here)."""

pytest_plugins = [
    "plugins.guard_imports",
    "plugins.target",
    "plugins.schema_options",
    "plugins.invariants",
    "plugins.needs_option",
    "plugins.safety",
    "plugins.drift",
    "plugins.scrub",
    "plugins.waivers",
    "plugins.allure_labels",
    "plugins.certificate",
    "plugins.reports_dir",
    "plugins.build_wait",
    "plugins.server_version",
    "plugins.runbook_doc",
    "plugins.app_repo",
    "fixtures.connections",
]
