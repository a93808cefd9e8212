"""Headless Debian Chromium for the report's browser tests (installed by scripts/bootstrap).

Each call runs a fresh profile (its own --user-data-dir, removed afterwards) with every
background network feature off and no network at all for anything but file:// URLs: the
report must render from disk alone.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

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


def _run(page: Path, *args: str, window: tuple[int, int] | None = None) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="jc-chromium-")
    flags = [f for f in FLAGS if not (window and f.startswith("--window-size="))]
    if window:
        flags.append(f"--window-size={window[0]},{window[1]}")
    try:
        return subprocess.run(
            [chromium(), *flags, f"--proxy-server=http://127.0.0.1:{closed_port()}", f"--user-data-dir={profile}",
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


def screenshot(page: Path, png: Path, window: tuple[int, int] | None = None) -> Path:
    proc = _run(page, f"--screenshot={png}", window=window)
    assert proc.returncode == 0 and png.is_file() and png.stat().st_size > 0, proc.stderr[-2000:]
    return png


# Recorded into the page's DOM once the app has settled (virtual time): where each element
# is on the screen and how far the page and any scroll container had scrolled.
_GEOMETRY = """<script>
setTimeout(function () {
  var found = {};
  var wanted = %s;
  Object.keys(wanted).forEach(function (name) {
    var el = null;
    document.querySelectorAll(wanted[name].selector).forEach(function (e) {
      if (!el && (!wanted[name].text || e.textContent.trim() === wanted[name].text)) el = e;
    });
    if (el && wanted[name].up) el = el.closest(wanted[name].up);
    var r = el && el.getBoundingClientRect();
    found[name] = r ? {top: r.top, bottom: r.bottom, left: r.left, right: r.right, text: el.textContent} : null;
  });
  var scrolled = 0;
  document.querySelectorAll("*").forEach(function (e) { scrolled = Math.max(scrolled, e.scrollTop); });
  var out = document.createElement("pre");
  out.id = "jc-geometry";
  out.textContent = JSON.stringify({scrollY: window.scrollY, maxScrollTop: scrolled,
                                    innerHeight: window.innerHeight, elements: found});
  document.body.appendChild(out);
}, %d);
</script>"""


def geometry(page: Path, wanted: dict[str, dict[str, str]], window: tuple[int, int],
             after_ms: int = 8000) -> dict[str, Any]:
    """Open a copy of ``page`` with a recorder appended, at ``window`` (width, height), and
    return what it recorded ``after_ms`` (virtual) ms after loading: ``scrollY``,
    ``maxScrollTop`` (of any element), ``innerHeight`` and, per wanted name, the bounding
    rectangle and text of the first element matching its ``selector`` (and ``text``, then the
    closest ``up`` ancestor), or None."""
    copy = page.with_name(f".geometry-{page.name}")
    html = page.read_text(encoding="utf-8")
    copy.write_text(html.replace("</body>", _GEOMETRY % (json.dumps(wanted), after_ms) + "</body>", 1)
                    if "</body>" in html else html + _GEOMETRY % (json.dumps(wanted), after_ms), encoding="utf-8")
    try:
        proc = _run(copy, "--dump-dom", window=window)
    finally:
        copy.unlink(missing_ok=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'<pre id="jc-geometry">(.*?)</pre>', proc.stdout, re.DOTALL)
    assert found is not None, "the recorder never ran: " + proc.stdout[-2000:]
    return json.loads(html_lib.unescape(found.group(1)))
