"""One row of the certificate: an invariant's metadata and the outcome of its check(s).

A check reports several phases (setup, call, teardown) and, parametrised, several node ids:
the row keeps the worst outcome (``RANK``), every distinct message, its warnings, retries
and the options its skips name. plugins.certificate builds the rows from the run's reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# worst wins when a test reports several phases
RANK = {"passed": 0, "waived": 1, "skipped": 2, "failed": 3, "error": 4}


@dataclass
class Row:
    id: str
    title: str
    severity: str
    section: str
    remedy: str
    nodeids: list[str] = field(default_factory=list)
    outcome: str = "passed"
    messages: list[str] = field(default_factory=list)
    decided: bool = False
    # An invariant that holds but wants attention (e.g. a circuit half_open).
    warnings: list[str] = field(default_factory=list)
    # Idempotent reads the clients had to retry for this check (bounded; see retry_recorder).
    retries: list[str] = field(default_factory=list)
    # issue 17: per skip, the option that would decide it (None: skipped for another reason)
    skip_options: list[str | None] = field(default_factory=list)

    def needs_option(self, outcome: str) -> str | None:
        if outcome != "skipped" or not self.skip_options or None in self.skip_options:
            return None
        return ", ".join(dict.fromkeys(o for o in self.skip_options if o))

    def merge(self, outcome: str, message: str) -> None:
        self.decided = True
        if RANK[outcome] > RANK[self.outcome]:
            self.outcome = outcome
        if message and message not in self.messages:
            self.messages.append(message)
