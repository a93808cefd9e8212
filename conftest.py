"""Registers the suite's plugins and fixture modules (nothing else lives here)."""

pytest_plugins = [
    "plugins.guard_imports",
    "plugins.target",
    "plugins.invariants",
    "plugins.safety",
    "plugins.scrub",
    "plugins.waivers",
    "plugins.allure_labels",
    "plugins.certificate",
    "fixtures.connections",
]
