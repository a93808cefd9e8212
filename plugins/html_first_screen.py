"""The HTML report's first screen: the verdict, the target, the build and the blockers.

Why the report used to open scrolled past its header: when Allure 3's awesome app loads the
test tree, it puts its keyboard cursor on the first test and scrolls that cursor into view,
centred in the tree's scroll container — in the base layout the element that scrolls the whole
page (``[data-tree-scroll-container]``, the ``base-layout``). With the header (report name,
variables, metadata) taking the top ~700 px at 1400×1000, the page opened some 300 px down:
neither the verdict nor the blockers in the first view.

:func:`first_screen` adds to the built page, before the app's own script, a small script that
lets the app scroll its tree container (and ``scrollIntoView``) only once the reader has done
something — a key, a click, the wheel, a touch — or when the address names a test (a link to
one test: scrolling to it is the point). Keyboard navigation works as before from the first
key. And a style lets the variables' values wrap, line by line, instead of being cut at ~30
characters, so every blocker's id can be read (plugins.html_report puts one id a line).
"""

from __future__ import annotations

MARKER = "jc-first-screen"

_SCRIPT = """<script id="%s">
(function () {
  /* julia-conformance (plugins/html_first_screen.py): keep the first screen on the verdict. */
  var acted = /[^#\\/]/.test(location.hash);
  ["keydown", "pointerdown", "wheel", "touchstart"].forEach(function (type) {
    addEventListener(type, function () { acted = true; }, {capture: true, passive: true});
  });
  var top = Object.getOwnPropertyDescriptor(Element.prototype, "scrollTop");
  Object.defineProperty(Element.prototype, "scrollTop", {
    configurable: true, enumerable: top.enumerable, get: top.get,
    set: function (value) {
      if (acted || !this.hasAttribute("data-tree-scroll-container")) top.set.call(this, value);
    }
  });
  var into = Element.prototype.scrollIntoView;
  Element.prototype.scrollIntoView = function () {
    if (acted) return into.apply(this, arguments);
  };
})();
</script>
<style id="%s-style">
[data-testid="metadata-item-value"] span { white-space: pre-line; width: auto; overflow-wrap: anywhere; }
</style>
""" % (MARKER, MARKER)


def first_screen(html: str) -> str:
    """The page with the first-screen script and style at the top of its ``<head>`` (once)."""
    if MARKER in html:
        return html
    head = html.find("<head>")
    if head < 0:
        return _SCRIPT + html
    at = head + len("<head>")
    return html[:at] + _SCRIPT + html[at:]
