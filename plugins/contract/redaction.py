"""Scrubbing secrets from everything the suite writes or prints.

Every value read from a secret environment variable is registered here, and every string
that leaves the suite (failure messages, evidence, certificate, report files) goes through
``Redactor.scrub``. Shapes that are secret whatever their source (a DSN's password, a bearer
token) are scrubbed too, since an app's error message may echo them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

MASK = "***"
# scheme://user:password@host  →  scheme://user:***@host
_DSN_PASSWORD = re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)(?=@)")
# libpq key/value form: password=secret
_KV_PASSWORD = re.compile(r"(?P<pre>\bpassword\s*=\s*)(?P<pw>'[^']*'|\S+)", re.IGNORECASE)
_BEARER = re.compile(r"(?P<pre>\bBearer\s+)(?P<pw>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)
_MIN_SECRET_LEN = 4


@dataclass
class Redactor:
    """Holds the secret values of one run; ``scrub`` removes them from any text."""

    _secrets: set[str] = field(default_factory=set)

    def register(self, value: str | None) -> None:
        if not value or len(value) < _MIN_SECRET_LEN:
            return
        self._secrets.add(value)
        # A URL's password also appears percent-decoded or -encoded in messages.
        for variant in (unquote(value), quote(value, safe="")):
            if len(variant) >= _MIN_SECRET_LEN:
                self._secrets.add(variant)
        match = _DSN_PASSWORD.search(value)
        if match:
            self.register(unquote(match.group("pw")))

    def scrub(self, text: str) -> str:
        if not text:
            return text
        # Longest first, so a secret containing another is removed whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        text = _DSN_PASSWORD.sub(lambda m: m.group("pre") + MASK, text)
        text = _KV_PASSWORD.sub(lambda m: m.group("pre") + MASK, text)
        text = _BEARER.sub(lambda m: m.group("pre") + MASK, text)
        return text

    @property
    def count(self) -> int:
        return len(self._secrets)
