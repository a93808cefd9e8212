"""Registers the suite's plugins and fixture modules (nothing else lives here)."""

pytest_plugins = [
    "plugins.guard_imports",
    "plugins.target",
    "plugins.schema_options",
    "plugins.invariants",
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
