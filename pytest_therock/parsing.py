"""Pure parsers for the sysfs and procfs text the probes read.

Each takes the text of one file and returns plain values; malformed input raises
``ValueError`` with a short reason, never anything else.
"""

from __future__ import annotations

import re

_HEX = "0123456789abcdef"


#: sysfs and KFD numbers are at most 64 bits: 20 digits.
MAX_DIGITS = 20


def _u64(word: str) -> int | None:
    """``word`` as an unsigned 64-bit number, or None."""
    if len(word) > MAX_DIGITS or not (word.isdigit() and word.isascii()):
        return None
    value = int(word)
    return value if value < 18446744073709551616 else None  # 2**64


def parse_int(text: str) -> int:
    """A sysfs attribute holding one unsigned 64-bit integer, e.g. ``"103079215104\\n"``."""
    value = text.strip()
    number = _u64(value)
    if number is None:
        if value.isascii() and value.isdigit():
            raise ValueError(f"number out of range ({len(value)} digits)")
        shown = value[:40] or "empty"
        raise ValueError(f"expected a number, found {shown!r}")
    return number


def parse_properties(text: str) -> dict[str, int]:
    """A KFD topology ``properties`` file: one ``name value`` pair a line.

    Lines that are not a name and an unsigned 64-bit number are ignored, so a node
    written half-way still yields what it has; so is a last line without its
    newline, which may be a number cut short.
    """
    props: dict[str, int] = {}
    lines = text.split("\n")
    for line in lines[:-1]:  # the part after the last newline is unfinished
        parts = line.split()
        value = _u64(parts[1]) if len(parts) == 2 else None
        if value is not None:
            props[parts[0]] = value
    return props


def gfx_target_name(gfx_target_version: int) -> str | None:
    """Decode KFD's ``gfx_target_version`` the way ``rocm_agent_enumerator`` does.

    ``major*10000 + minor*100 + stepping`` printed as ``gfx%d%x%x``:
    110501 -> gfx1151, 90010 -> gfx90a, 90402 -> gfx942. Zero (a CPU node) or
    an impossible encoding gives None.
    """
    major, rest = divmod(gfx_target_version, 10000)
    minor, stepping = divmod(rest, 100)
    if major == 0 or minor > 15 or stepping > 15:
        return None
    return f"gfx{major}{_HEX[minor]}{_HEX[stepping]}"


#: A kernel command line word: unquoted characters and ``"``-quoted runs (a quote left
#: open runs to the end), as ``next_arg()`` in the kernel's lib/cmdline.c splits them.
_CMDLINE_WORD = re.compile(r'(?:[^ \t\n\v\f\r"]+|"[^"]*"?)+')


def parse_cmdline(text: str) -> dict[str, str]:
    """Kernel command line parameters; ``name`` alone maps to ``""``; last one wins.

    Split the way the kernel does (``next_arg()`` in lib/cmdline.c, torvalds/linux
    v6.12): words are separated by spaces outside ``"`` quotes; the quotes around a
    value (``name="a b"``) or a whole word (``"name=a b"``) are dropped; there are no
    other escapes. Linear in the length of ``text``. Module parameters are normalised
    the way the kernel does: ``-`` and ``_`` are the same in parameter names
    (``amdgpu.gtt-size`` is ``amdgpu.gtt_size``).
    """
    params: dict[str, str] = {}
    for word in _CMDLINE_WORD.findall(text):
        quoted = word.startswith('"')
        name, equals, value = word[quoted:].partition("=")
        if equals and value.startswith('"'):
            value = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
        elif equals and quoted and value.endswith('"'):
            value = value[:-1]
        params[name.replace("-", "_")] = value
    return params
