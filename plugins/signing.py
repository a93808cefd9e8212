"""Ed25519 signatures over a certificate's canonical JSON, and their verification.

A deploy pipeline trusts the certificate to decide deploy or roll back (runbook rule 3), so
what it reads must be what the suite wrote. The signature covers the canonical JSON of the
certificate (every field but ``signature``) together with one digest per field and per
invariant row. The digests add no trust of their own (the signature already covers every
byte); they let a verifier *name* the field that was changed after signing instead of only
saying "bad signature". The body also holds ``documents``: the sha256 of every file
written beside the certificate for people to read (certificate.md), so the signature covers
them too and ``julia-conformance-verify`` names a page edited after signing.

Canonical JSON: keys sorted, no insignificant whitespace, UTF-8, no floats (the certificate
holds only strings, integers, booleans, null, lists and objects). For such documents this is
the same byte string as RFC 8785 (JCS) for ASCII keys.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALGORITHM = "Ed25519"
CANONICALIZATION = "json-sorted-keys-compact-utf8"
SIGNATURE_FIELD = "signature"


class SigningKeyError(ValueError):
    """A key that is not an Ed25519 key in a format we read."""


def canonical(value: Any) -> bytes:
    """The canonical byte string of a JSON value (floats refused: they have no single form)."""
    _no_floats(value, "$")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _no_floats(value: Any, where: str) -> None:
    if isinstance(value, float):
        raise ValueError(f"{where}: floats have no canonical JSON form; use a string or integer")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"{where}: keys must be strings")
            _no_floats(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _no_floats(v, f"{where}[{i}]")


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical(value)).hexdigest()[:32]


def field_digests(body: dict[str, Any]) -> dict[str, str]:
    """One digest per top-level field, and per invariant row (``invariants[JC-…]``)."""
    digests = {key: _digest(value) for key, value in body.items() if key != SIGNATURE_FIELD}
    rows = body.get("invariants")
    if isinstance(rows, list):
        for i, row in enumerate(rows):
            name = row.get("id", i) if isinstance(row, dict) else i
            digests[f"invariants[{name}]"] = _digest(row)
    return digests


def _signed_bytes(body: dict[str, Any], digests: dict[str, str]) -> bytes:
    return canonical({"certificate": body, "field_digests": digests})


# --- keys ---------------------------------------------------------------------------------


def _decode_raw(text: str) -> bytes | None:
    compact = "".join(text.split())
    decoders = (
        bytes.fromhex,
        lambda t: base64.b64decode(t, validate=True),
        lambda t: base64.b64decode(t, altchars=b"-_", validate=True),
    )
    for decode in decoders:
        try:
            raw = decode(compact)
        except (ValueError, binascii.Error):
            continue
        if len(raw) == 32:
            return raw
    return None


def load_private_key(text: str) -> Ed25519PrivateKey:
    """A PEM (PKCS#8) Ed25519 private key, or its 32-byte seed in base64 or hex."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError):
            raise SigningKeyError("not a readable PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"PEM key is {type(key).__name__}, expected Ed25519")
        return key
    raw = _decode_raw(text)
    if raw is None:
        raise SigningKeyError("expected a PEM Ed25519 private key or its 32-byte seed in base64 or hex")
    return Ed25519PrivateKey.from_private_bytes(raw)


def load_public_key(text: str) -> Ed25519PublicKey:
    """A PEM (SubjectPublicKeyInfo) Ed25519 public key, or its 32 raw bytes in base64 or hex."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except (ValueError, TypeError):
            raise SigningKeyError("not a readable PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError(f"PEM key is {type(key).__name__}, expected Ed25519")
        return key
    raw = _decode_raw(text)
    if raw is None:
        raise SigningKeyError("expected a PEM Ed25519 public key or its 32 raw bytes in base64 or hex")
    return Ed25519PublicKey.from_public_bytes(raw)


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return "sha256:" + hashlib.sha256(raw_public(key)).hexdigest()[:16]


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def private_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


# --- sign / verify ------------------------------------------------------------------------


def sign(body: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The certificate with its ``signature`` block (body must not contain one)."""
    body = {k: v for k, v in body.items() if k != SIGNATURE_FIELD}
    digests = field_digests(body)
    public = key.public_key()
    block = {
        "status": "signed",
        "algorithm": ALGORITHM,
        "canonicalization": CANONICALIZATION,
        "key_id": key_id(public),
        "public_key": base64.b64encode(raw_public(public)).decode(),
        "field_digests": digests,
        "value": base64.b64encode(key.sign(_signed_bytes(body, digests))).decode(),
    }
    return {**body, SIGNATURE_FIELD: block}


def pending_block(key: Ed25519PrivateKey | None, reason: str) -> dict[str, Any]:
    """The ``signature`` block as far as it is known before signing: what certificate.md says
    of the signature. The page is written before the body is signed, since the body holds the
    page's digest (``documents``)."""
    if key is None:
        return {"status": "unsigned", "reason": reason}
    return {"status": "signed", "algorithm": ALGORITHM, "key_id": key_id(key.public_key())}


def document_digest(text: str) -> dict[str, Any]:
    """What the certificate records of a file written beside it (``documents``): the sha256
    of its UTF-8 bytes, and their number."""
    data = text.encode("utf-8")
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def unsigned(body: dict[str, Any], reason: str) -> dict[str, Any]:
    body = {k: v for k, v in body.items() if k != SIGNATURE_FIELD}
    return {**body, SIGNATURE_FIELD: {"status": "unsigned", "reason": reason}}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    problems: tuple[str, ...]

    def __str__(self) -> str:
        return "signature valid" if self.ok else "; ".join(self.problems)


def verify(cert: dict[str, Any], public: Ed25519PublicKey) -> Verdict:
    """Check the signature against ``public``; on failure name what changed after signing."""
    block = cert.get(SIGNATURE_FIELD)
    if not isinstance(block, dict):
        return Verdict(False, ("certificate has no signature block",))
    if block.get("status") != "signed":
        return Verdict(False, (f"certificate is unsigned ({block.get('reason', 'no reason given')})",))
    if block.get("algorithm") != ALGORITHM:
        return Verdict(False, (f"signature algorithm {block.get('algorithm')!r} is not {ALGORITHM}",))
    digests = block.get("field_digests")
    try:
        signature = base64.b64decode(str(block.get("value", "")), validate=True)
    except binascii.Error:
        return Verdict(False, ("signature.value is not base64",))
    if not isinstance(digests, dict):
        return Verdict(False, ("signature.field_digests is missing",))
    body = {k: v for k, v in cert.items() if k != SIGNATURE_FIELD}
    try:
        public.verify(signature, _signed_bytes(body, digests))
        signed_ok = True
    except InvalidSignature:
        signed_ok = False
    except ValueError as exc:  # e.g. a float smuggled into the body
        return Verdict(False, (f"certificate is not canonical JSON: {exc}",))

    if signed_ok:
        if field_digests(body) != digests:  # cannot happen for a certificate we signed
            return Verdict(False, ("field digests disagree with the signed body",))
        return Verdict(True, ())

    problems = []
    if block.get("key_id") != key_id(public):
        problems.append(f"signed by key {block.get('key_id')}, not by the given key {key_id(public)}")
    now = field_digests(body)
    for name in sorted(set(now) | set(digests)):
        if name not in digests:
            problems.append(f"{name}: added after signing")
        elif name not in now:
            problems.append(f"{name}: removed after signing")
        elif now[name] != digests[name]:
            problems.append(f"{name}: changed after signing")
    if not problems:
        problems.append("signature does not match (the signature block itself was altered)")
    return Verdict(False, tuple(problems))
