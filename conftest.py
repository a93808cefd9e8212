"""Registers the suite's plugins and fixture modules (nothing else lives here)."""

pytest_plugins = [
    "plugins.guard_imports",
    "plugins.rewrite_scope",
    "plugins.target",
    # (early: its pytest_configure runs after the later plugins' option checks — a usage error
    # creates no reports folder — and before allure-pytest creates its results folder)
    "plugins.reports_dir",
    "plugins.schema_options",
    "plugins.invariants",
    "plugins.needs_option",
    "plugins.safety",
    "plugins.connection_risk",
    "plugins.drift",
    "plugins.scrub",
    "plugins.waivers",
    "plugins.allure_labels",
    "plugins.certificate",
    "plugins.build_wait",
    "plugins.server_version",
    "plugins.runbook_doc",
    "plugins.app_repo",
    "plugins.run_database",
    "fixtures.connections",
]
