"""A hostile target, one defence at a time (issue 17): scrubbing is linear and scrubs exactly
what the plain regexes scrub; every GET has a total deadline and a decoded-size cap; a body
nested deeper than the parser can go is a one-line cause, never a RecursionError.

The transport tests talk to real loopback HTTP servers (tests/loopback.py); the whole-run
proofs are in tests/test_hostile_faults.py. No test here measures time: bench/scrub.py does.
"""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from plugins.redaction import _BEARER, _DSN_PASSWORD, _KV_PASSWORD, MASK, Redactor


def _plain_regexes(text: str) -> str:
    """What Redactor.scrub did before it was made linear (no registered secret)."""
    for pattern in (_DSN_PASSWORD, _KV_PASSWORD, _BEARER):
        text = pattern.sub(lambda m: m.group("pre") + MASK, text)
    return text


# Pieces that make the three shapes, their near misses and the characters that end them,
# with the few non-ASCII letters re.IGNORECASE treats specially ('ſ' ~ 's', 'İ' lower-cases
# to two characters, 'K' is the Kelvin sign).
_PIECES = ["://", "password", "PassWord", "paſſword", "bearer ", "Bearer\t", "BEARER", "=", " = ", "'", "@",
           ":", "/", "a", "Z", "9", "+", "-", ".", "_", "x", "İ", "é", "K", "\n", "abcdefgh12", "u:p@h",
           "pg://", "db2://", "9://", "postgresql://", "::", "@@", "\u00a0"]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=16))
def test_scrub_masks_what_the_plain_regexes_mask(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert Redactor().scrub(text) == _plain_regexes(text)


@settings(max_examples=500, deadline=None)
@given(st.text(string.printable + "ſİé", max_size=60))
def test_scrub_masks_what_the_plain_regexes_mask_on_any_text(text: str) -> None:
    assert Redactor().scrub(text) == _plain_regexes(text)


def test_scrub_on_long_runs_gives_the_same_text() -> None:
    """The shapes that made the old scrub quadratic (a long run of scheme characters, of
    user characters after '://', of password characters with no '@'), at a size it could not
    finish in seconds, with a real DSN at the end so the mask is still applied."""
    dsn = "postgresql://julia:pw-123@db.example.com/julia"
    for run in ("a" * 400_000, "9" * 400_000, "a://" + "b" * 400_000, "a://b:" + "c" * 400_000,
                "a://b:c" * 60_000, "password" * 50_000, "Bearer " * 60_000):
        text = run + " ;" + dsn
        assert Redactor().scrub(text) == run + " ;postgresql://julia:***@db.example.com/julia"
