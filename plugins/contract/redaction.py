"""Scrubbing secrets from everything the suite writes or prints.

Every value read from a secret environment variable is registered here, and every string
that leaves the suite (failure messages, evidence, certificate, report files) goes through
``Redactor.scrub``. Shapes that are secret whatever their source (a DSN's password, a bearer
token) are scrubbed too, since an app's error message may echo them.

Scrubbing is linear in the text's length (a hostile target may answer with tens of MB): a
body without the fixed part of a shape (``://`` and ``@``, ``password`` and ``=``,
``bearer``; looked for in its bytes) skips it, and each shape is matched only where its fixed
part occurs, by a regex that cannot backtrack past the next delimiter. The output is the same
as the three plain regexes applied one after the other (tests/test_hostile_units.py compares
them on random text); bench/hostile.py measures it.
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

# A DSN's password, matched from its '://' (a literal the regex engine finds fast) when a
# letter ends the scheme: neither the user nor the password part can run past a '/', so each
# character of the text is read a bounded number of times.
_DSN_AFTER_LETTER = re.compile(r"(?P<pre>://(?<=[a-zA-Z]://)[^:/@\s]*:)(?P<pw>[^@\s/]+)(?=@)")
# The rare scheme that ends in a digit, '+', '.' or '-' ('db2://'): its run of scheme
# characters needs a letter somewhere; read on the reversed text from the '://' backwards.
_OTHER_SCHEME_END = re.compile(r"[0-9+.-]://")
_DSN_AFTER = re.compile(r"://[^:/@\s]*:(?P<pw>[^@\s/]+)(?=@)")
_SCHEME_TAIL = re.compile(r"[0-9+.-]*[a-zA-Z]")


def _mask_dsn_passwords(text: str) -> str:
    """``_DSN_PASSWORD.sub`` (password → MASK), in linear time. Each '://' is judged on its
    own (a scheme cannot reach back over an earlier match's '@', and a password holds no '/'),
    so the two passes give what the single regex gives."""
    if "://" not in text:
        return text
    text = _DSN_AFTER_LETTER.sub(r"\g<pre>" + MASK, text)
    out: list[str] = []
    done = 0  # text[:done] is in out
    reversed_text: str | None = None
    for odd in _OTHER_SCHEME_END.finditer(text):
        at = odd.start() + 1
        match = _DSN_AFTER.match(text, at)
        if match is None:
            continue
        if reversed_text is None:
            reversed_text = text[::-1]
        if _SCHEME_TAIL.match(reversed_text, len(text) - at) is not None:
            out += (text[done:match.start("pw")], MASK)
            done = match.end("pw")
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


def _folded(text: str) -> str | None:
    """``text`` lower-cased, one character for one, so that an index into it is one into
    ``text``: what ``re.IGNORECASE`` matches against ASCII words (None when some character
    lower-cases to several: then the caller uses the plain regex)."""
    # 'ſ' (long s) matches 's' under re.IGNORECASE but is its own lower case.
    lowered = text.lower().replace("\u017f", "s")
    return lowered if len(lowered) == len(text) else None


def _mask_after(text: str, folded: str | None, word: str, pattern: re.Pattern[str]) -> str:
    """``pattern.sub`` (group 'pw' → MASK) for a case-insensitive pattern that starts with
    ``\\b`` + ``word``: tried only where the word occurs in ``folded`` (``_folded(text)``),
    in linear time."""
    if folded is None:
        return pattern.sub(lambda m: m.group("pre") + MASK, text)
    at = folded.find(word)
    if at < 0:
        return text
    out: list[str] = []
    done = 0
    while at >= 0:
        match = pattern.match(text, at)
        if match is None:
            at = folded.find(word, at + 1)
            continue
        out += (text[done:match.start("pw")], MASK)
        done = match.end()
        at = folded.find(word, done)
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)


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
        # What is looked for is first looked for in the text's UTF-8 bytes, lower-cased
        # (ASCII only): a fast "not here" for almost every body, and the full search only
        # where it can find something. (UTF-8 is self-synchronising: a str holds a substring
        # iff its bytes hold the substring's bytes.)
        raw = text.encode("utf-8", "surrogatepass")
        found = self._present(raw)
        # Longest first, so a secret containing another is removed whole. A replacement only
        # inserts MASK ('***'), so a secret without '*' cannot appear where it was not before.
        for secret in sorted(self._secrets, key=len, reverse=True):
            if secret in found if "*" not in secret else secret in text:
                text = text.replace(secret, MASK)
        if b"://" in raw and b"@" in raw:  # scheme://user:password@host
            text = _mask_dsn_passwords(text)
        lowered = raw.lower()
        # 'ſ' (long s, only in a text that is not ASCII) is read as 's' by re.IGNORECASE
        kv = (b"password" in lowered or (not text.isascii() and b"\xc5\xbf" in raw)) and b"=" in raw
        bearer = b"bearer" in lowered
        if not (kv or bearer):
            return text
        folded = _folded(text)
        if kv:
            masked = _mask_after(text, folded, "password", _KV_PASSWORD)
            if masked is not text:  # lower-cased again only when a password was masked
                text, folded = masked, _folded(masked)
        return _mask_after(text, folded, "bearer", _BEARER) if bearer else text

    def _present(self, raw: bytes) -> set[str]:
        """The secrets (without '*') whose bytes are in ``raw``. Shortest first: one holding an
        absent one is absent without a search (a DSN holding its password, its encodings)."""
        present: set[str] = set()
        absent: list[str] = []
        for secret in sorted(self._secrets, key=len):
            if "*" in secret:
                continue
            if any(gone in secret for gone in absent):
                continue
            if secret.encode("utf-8", "surrogatepass") in raw:
                present.add(secret)
            else:
                absent.append(secret)
        return present

    @property
    def count(self) -> int:
        return len(self._secrets)
