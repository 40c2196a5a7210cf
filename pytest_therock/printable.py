"""Text from the machine made safe to print: one line, no control sequences.

GPU names, tool output, file contents, kernel parameters and paths come from sysfs,
tools and snapshots that strangers attach to bug reports. Printed raw, an ESC byte
starts a terminal control sequence (it can move the cursor, rewrite earlier lines,
retitle the window), a newline forges a line of the report, and a bidirectional
override reorders what the reader sees. Everything the plugin prints from the machine
passes through :func:`printable` at the output boundary: the header, ``pytest-therock
doctor`` (text and ``--json``), skip reasons and JUnit properties.
"""

from __future__ import annotations

from typing import Any


def _escape(char: str) -> str:
    return char.encode("unicode_escape", "backslashreplace").decode("ascii")


def printable(text: str) -> str:
    """``text`` with each character that does not print escaped the way Python writes it
    (``\\x1b``, ``\\n``, ``\\u202e``): C0 and C1 controls, DEL, format characters (bidi
    overrides, zero-width), line and paragraph separators, surrogates, private-use and
    unassigned code points. Spaces and every printable character (``Radeon™``,
    ``Instinct MI300X``, CJK) stay as they are; printable text is returned unchanged.
    """
    if text.isprintable():
        return text
    import unicodedata  # only for text that needs it: not on the header's usual path

    return "".join(
        c if c.isprintable() or unicodedata.category(c) == "Zs" else _escape(c) for c in text
    )


def printable_tree(data: Any) -> Any:
    """JSON-like ``data`` (dicts, lists, tuples, strings, numbers) with every string,
    keys included, made :func:`printable`."""
    if isinstance(data, str):
        return printable(data)
    if isinstance(data, dict):
        return {printable_tree(k): printable_tree(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [printable_tree(v) for v in data]
    return data
