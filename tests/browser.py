"""Headless Debian Chromium for the report's browser tests (installed by scripts/bootstrap).

Each call runs a fresh profile (its own --user-data-dir, removed afterwards) with every
background network feature off and no network at all for anything but file:// URLs: the
report must render from disk alone.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--virtual-time-budget=15000", "--window-size=1400,2000",
    # No network: every host name fails to resolve and any other request goes to a proxy that
    # does not exist, so what renders came from the file alone.
    "--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-bypass-list=<-loopback>",
)
TIMEOUT_S = 120


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise AssertionError("chromium is not installed: run scripts/bootstrap")
    return path


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="jc-chromium-")
    try:
        return subprocess.run(
            [chromium(), *FLAGS, f"--proxy-server=http://127.0.0.1:{closed_port()}", f"--user-data-dir={profile}",
             *args, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL,
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def rendered_text(page: Path) -> str:
    """The page's DOM after its scripts ran, without <head> and <script> content: what a
    person sees, not what the page merely carries."""
    proc = _run(page, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    dom = re.sub(r"<head>.*?</head>", " ", dom, flags=re.DOTALL)
    dom = re.sub(r"<script\b.*?</script>", " ", dom, flags=re.DOTALL)
    text = re.sub(r"<[^>]+>", " ", dom)
    return " ".join(text.split())


def screenshot(page: Path, png: Path) -> Path:
    proc = _run(page, f"--screenshot={png}")
    assert proc.returncode == 0 and png.is_file() and png.stat().st_size > 0, proc.stderr[-2000:]
    return png
