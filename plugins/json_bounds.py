"""JSON from a target, parsed and walked within a depth the suite can always handle.

A body is the target's to choose: 100,000 nested brackets make ``json.loads`` raise
RecursionError, and a body just shallow enough to parse can still overflow every recursive
walker after it (scrubbing, evidence, the Allure writer). So a target's JSON is parsed here
only: deeper than ``MAX_DEPTH`` it is refused with a ``TooDeep`` (a ValueError, which every
caller already turns into a one-line cause), and what is accepted can be walked recursively
anywhere. ``capped`` is the backstop for values whose origin is not a parse.
"""

from __future__ import annotations

import json
from typing import Any

# Health reports nest a handful of levels; 64 leaves room and keeps any recursive walk
# (two frames a level at most) far from Python's recursion limit.
MAX_DEPTH = 64
NOT_SHOWN = f"<nested deeper than {MAX_DEPTH} levels: not shown>"


class TooDeep(ValueError):
    """The JSON nests deeper than MAX_DEPTH levels."""


def depth(value: Any) -> int:
    """Levels of nested arrays/objects (a scalar is 0), without recursion; stops counting
    once past MAX_DEPTH."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        level += 1
        if level > deepest:
            deepest = level
            if deepest > MAX_DEPTH:
                return deepest
        stack.extend((child, level) for child in children if isinstance(child, (dict, list, tuple)))
    return deepest


def loads(text: str | bytes) -> Any:
    """``json.loads`` of a target's body; ``TooDeep`` (a ValueError) when it nests deeper
    than MAX_DEPTH, also when too deep for the parser itself."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise TooDeep(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    if depth(value) > MAX_DEPTH:
        raise TooDeep(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


def capped(value: Any, limit: int = MAX_DEPTH) -> Any:
    """``value`` with every container deeper than ``limit`` replaced by NOT_SHOWN (the same
    object when nothing is that deep), for writers that recurse."""
    if depth(value) <= limit:
        return value

    def cut(node: Any, level: int) -> Any:
        if not isinstance(node, (dict, list, tuple)):
            return node
        if level >= limit:
            return NOT_SHOWN
        if isinstance(node, dict):
            return {k: cut(v, level + 1) for k, v in node.items()}
        return [cut(v, level + 1) for v in node]

    return cut(value, 0)
