"""``julia-conformance-verify``: may a pipeline trust this certificate?

Exit 0 when the certificate's Ed25519 signature verifies against the given public key (and it
has not expired, and — with ``--require-certified`` — its verdict is ``certified``); exit 1
naming what is wrong (a field changed after signing, another key, unsigned, expired, a page
beside it — certificate.md — edited after signing: its sha256 is in the signed body); exit 4
for unusable input (no such file, not JSON, not a key). ``--generate-keypair PREFIX`` writes a
new key pair (PREFIX.key, mode 0600, and PREFIX.pub) for ``signing_key_env``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plugins import signing

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 4
PROG = "julia-conformance-verify"


class UsageProblem(Exception):
    pass


def _read_certificate(arg: str) -> tuple[Path, dict[str, Any]]:
    path = Path(arg)
    if path.is_dir():
        path = path / "certificate.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageProblem(f"{path}: no such certificate") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageProblem(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UsageProblem(f"{path}: not a certificate (top level is not an object)")
    return path, data


def _read_public_key(arg: str) -> signing.Ed25519PublicKey:
    path = Path(arg)
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() else arg
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"{path}: cannot read: {exc}") from None
    try:
        return signing.load_public_key(text)
    except signing.SigningKeyError as exc:
        where = str(path) if path.is_file() else "--public-key"
        raise UsageProblem(f"{where}: {exc}") from None


def parse_time(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def documents(cert: dict[str, Any], folder: Path) -> tuple[list[str], list[str], list[str]]:
    """The files the certificate signed the digest of (``documents``: certificate.md), as
    found beside it: problems (changed after signing), notes (not there to check) and the
    names found unchanged."""
    signed = cert.get("documents")
    if not isinstance(signed, dict):
        return [], ["no page is covered by the signature (a certificate written before issue 17)"], []
    problems, notes, unchanged = [], [], []
    for name, entry in sorted(signed.items()):
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        if Path(name).name != name or not isinstance(digest, str):
            problems.append(f"documents.{name}: not a file name with its sha256")
            continue
        try:
            data = (folder / name).read_bytes()
        except FileNotFoundError:
            notes.append(f"{name} not found beside the certificate: not checked")
            continue
        except OSError as exc:
            problems.append(f"{name}: cannot read: {exc}")
            continue
        now = hashlib.sha256(data).hexdigest()
        if now != digest:
            problems.append(f"{name}: changed after signing (its sha256 is {now[:16]}…, the certificate "
                            f"signed {digest[:16]}…)")
        else:
            unchanged.append(name)
    return problems, notes, unchanged


def check(cert: dict[str, Any], public: signing.Ed25519PublicKey, *, now: dt.datetime,
          allow_expired: bool = False, require_certified: bool = False, folder: Path | None = None) -> list[str]:
    """Every reason not to trust the certificate (empty: trust it); with ``folder``, also
    the pages beside it whose digest it signed."""
    result = signing.verify(cert, public)
    problems = list(result.problems)
    if result.ok and folder is not None:
        problems += documents(cert, folder)[0]
    if result.ok and not allow_expired:
        until = cert.get("valid_until")
        try:
            if not isinstance(until, str) or parse_time(until) < now:
                problems.append(f"valid_until: expired at {until}")
        except ValueError:
            problems.append(f"valid_until: unreadable time {until!r}")
    if result.ok and require_certified and cert.get("verdict") != "certified":
        problems.append(f"verdict: {cert.get('verdict')!r}, not 'certified'")
    return problems


def generate_keypair(prefix: str) -> tuple[Path, Path]:
    key = signing.Ed25519PrivateKey.generate()
    private, public = Path(f"{prefix}.key"), Path(f"{prefix}.pub")
    for p in (private, public):
        if p.exists():
            raise UsageProblem(f"{p}: exists; refusing to overwrite a key")
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(signing.private_pem(key))
    public.write_text(signing.public_pem(key.public_key()))
    return private, public


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("certificate", nargs="?", help="certificate.json, or a run folder holding one")
    parser.add_argument("--public-key", help="the signer's Ed25519 public key: a PEM file, or base64/hex of its 32 bytes")
    parser.add_argument("--allow-expired", action="store_true", help="accept a certificate past its valid_until")
    parser.add_argument("--require-certified", action="store_true", help="also fail unless the verdict is 'certified'")
    parser.add_argument("--generate-keypair", metavar="PREFIX", help="write PREFIX.key and PREFIX.pub and exit")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage; our usage code is 4
        return EXIT_USAGE if exc.code else EXIT_OK
    try:
        if args.generate_keypair:
            private, public = generate_keypair(args.generate_keypair)
            print(f"{PROG}: wrote {private} (keep secret; put its content in the env var named by "
                  f"signing_key_env) and {public}")
            return EXIT_OK
        if not args.certificate or not args.public_key:
            raise UsageProblem("give a certificate and --public-key (or --generate-keypair PREFIX)")
        path, cert = _read_certificate(args.certificate)
        public = _read_public_key(args.public_key)
    except UsageProblem as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    problems = check(cert, public, now=dt.datetime.now(dt.timezone.utc), allow_expired=args.allow_expired,
                     require_certified=args.require_certified, folder=path.parent)
    if problems:
        for problem in problems:
            print(f"{PROG}: INVALID {path}: {problem}")
        return EXIT_INVALID
    _, notes, unchanged = documents(cert, path.parent)
    print(f"{PROG}: OK {path}: signed by {signing.key_id(public)}; verdict {cert.get('verdict')}; "
          f"target {cert.get('target')}; valid until {cert.get('valid_until')}"
          + (f"; {', '.join(unchanged)} unchanged" if unchanged else "")
          + "".join(f"; {note}" for note in notes))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
