"""Pure parsers: the numbers users give, and the sysfs and procfs text the probes read.

Each takes text (or a marker argument) and returns plain values; malformed input raises
``ValueError`` with a short reason, never anything else.

Every number a user gives (an option, an environment variable, an ini key, a marker
argument) goes through :func:`parse_number` with one of the :class:`NumberRule` below,
so each is checked the same way and each error names where the value came from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import NamedTuple

_HEX = "0123456789abcdef"


#: sysfs and KFD numbers are at most 64 bits: 20 digits.
MAX_DIGITS = 20

#: Most memory one machine can have: 2**52 bytes (4 PiB), the reach of a 52-bit physical
#: address, the widest Linux supports (x86-64: ``MAX_PHYSMEM_BITS`` is
#: ``pgtable_l5_enabled() ? 52 : 46`` in arch/x86/include/asm/sparsemem.h, torvalds/linux;
#: arm64: ``CONFIG_ARM64_PA_BITS``, at most 52). A memory size above it is no measurement.
MAX_MEMORY_BYTES = 1 << 52


def _u64(word: str) -> int | None:
    """``word`` as an unsigned 64-bit number, or None."""
    if len(word) > MAX_DIGITS or not (word.isdigit() and word.isascii()):
        return None
    value = int(word)
    return value if value < 18446744073709551616 else None  # 2**64


def decimal(text: str) -> int | None:
    """``text`` (surrounding blanks allowed) as a whole number in ASCII digits, with an
    optional ``-``; None otherwise.

    Unlike ``int()``, it refuses other scripts' digits (``"²"``, ``"٣"``), ``_`` and
    ``+``, as the C runtimes that read the same variables do, and numbers of more than
    :data:`MAX_DIGITS` digits, which ``int()`` may refuse with an error of its own.
    """
    word = text.strip()
    digits = word[1:] if word.startswith("-") else word
    if not digits or len(digits) > MAX_DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    return int(word)


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


#: Largest value of a 32-bit field: the kernel prints most KFD properties with
#: ``sysfs_show_32bit_prop`` (``"%s %u"`` of a ``uint32_t``), in node_show() and
#: mem_show() of drivers/gpu/drm/amd/amdkfd/kfd_topology.c (torvalds/linux); only
#: ``hive_id``, ``local_mem_size``, ``debug_prop``, ``unique_id`` and a bank's
#: ``size_in_bytes`` are 64-bit (``%llu``).
U32_MAX = (1 << 32) - 1
#: Bounds of the node properties the plugin uses. Beyond the field types: PCI vendor
#: and device ids are 16-bit; a wavefront is 32 or 64 lanes; a CU has at most 4 SIMDs
#: (GCN; RDNA has 2), bounded here by 16; the largest GPUs have 304 CUs (MI300X: 1216
#: SIMDs), bounded by 16384 SIMDs; ``gfx_target_version`` encodes at most gfx99ff.
NODE_BOUNDS: dict[str, int] = {
    "simd_count": 16384,
    "simd_per_cu": 16,
    "wave_front_size": 64,
    "gfx_target_version": 999999,
    "vendor_id": 0xFFFF,
    "device_id": 0xFFFF,
    "location_id": U32_MAX,
    "domain": U32_MAX,
    "drm_render_minor": U32_MAX,
    "cpu_cores_count": U32_MAX,
}


#: Fields of a GPU node that are never 0: a wavefront has 32 or 64 lanes and a CU at
#: least one SIMD (kfd_topology.c fills both from the device's gfx config).
NODE_MINIMUMS: dict[str, int] = {"wave_front_size": 1, "simd_per_cu": 1}


def implausible(
    props: dict[str, int], bounds: dict[str, int], minimums: dict[str, int] | None = None
) -> str | None:
    """Why a node's (or memory bank's) properties cannot be true, or None.

    Returns ``"simd_count 18446744073709551615 is implausible (at most 16384)"`` for the
    first field above its bound (or below its minimum): a value no kernel prints, so
    the node is reported as a problem rather than believed.
    """
    for name, high in bounds.items():
        value = props.get(name)
        if value is not None and value > high:
            return f"{name} {value} is implausible (at most {high})"
    for name, low in (minimums or {}).items():
        value = props.get(name)
        if value is not None and value < low:
            return f"{name} {value} is implausible (at least {low})"
    return None


def not_unsigned(text: str, names: Iterable[str]) -> str | None:
    """Why a field of ``names`` in a properties file is no unsigned number, or None:
    the kernel prints every KFD property with ``%u`` or ``%llu``, so ``simd_count -4``,
    ``local_mem_size -1`` or a number of more than 64 bits is a fault (which
    :func:`parse_properties` would drop)."""
    wanted = frozenset(names)
    for line in text.split("\n")[:-1]:
        parts = line.split()
        if len(parts) == 2 and parts[0] in wanted and _u64(parts[1]) is None:
            if parts[1].isascii() and parts[1].isdigit():  # no kernel field is wider
                shown = parts[1] if len(parts[1]) <= 24 else f"{parts[1][:24]}..."
                return f"{parts[0]} {shown} is out of range (more than 64 bits)"
            return f"{parts[0]} {parts[1][:24]!r} is not an unsigned number"
    return None


#: A memory bank's ``size_in_bytes`` is 64-bit, but no machine has more than
#: :data:`MAX_MEMORY_BYTES`; ``heap_type`` is 32-bit.
BANK_BOUNDS: dict[str, int] = {"size_in_bytes": MAX_MEMORY_BYTES, "heap_type": U32_MAX}
#: What ``pytest-therock snapshot`` records in ``.therock/kfd-access``:
#: token -> (present, readable, writable).
KFD_ACCESS: dict[str, tuple[bool, bool, bool]] = {
    "rw": (True, True, True),
    "r": (True, True, False),
    "w": (True, False, True),
    "none": (True, False, False),
    "missing": (False, False, False),
}


def parse_kfd_access(text: str) -> tuple[bool, bool, bool]:
    """A snapshot's ``.therock/kfd-access``: exactly one of ``rw``, ``r``, ``w``, ``none``,
    ``missing`` (and a newline). Returns (present, readable, writable); ValueError for
    anything else (``"read-write"``, ``"wr"``, binary), never a guess."""
    access = KFD_ACCESS.get(text.strip())
    if access is None:
        shown_text = repr(text.strip()[:40]) if text.strip() else "empty"
        raise ValueError(f"malformed: expected rw, r, w, none or missing, found {shown_text}")
    return access


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


# --------------------------------------------------------------------------- user numbers

#: At most 2**16 GPUs: far beyond any machine (an 8-GPU MI300X in CPX mode shows 64).
MAX_GPUS = 1 << 16
#: Longest timeout: one day. Longer is a mistake, and beyond ``threading.TIMEOUT_MAX``
#: a wait fails with OverflowError.
MAX_TIMEOUT = 86400.0

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,6})?", re.ASCII)


class NumberRule(NamedTuple):  # not a dataclass: this module loads with the plugin
    """What a setting accepts: ``low <= value <= high`` (``low < value`` with ``above``)."""

    what: str  # "a number of seconds": what the error message asks for
    example: str  # "30"
    low: float
    high: float
    whole: bool = False  # only whole numbers
    above: bool = False  # the value must exceed ``low``
    unit: str = ""  # " GiB", " s": after the bounds in messages

    def bounds(self) -> str:
        at_least = "greater than" if self.above else "at least"
        return f"{at_least} {self.low:.15g} and at most {self.high:.15g}{self.unit}"


TIMEOUT = NumberRule("a number of seconds", "30", 0, MAX_TIMEOUT, above=True, unit=" s")
GIB_SIZE = NumberRule(
    "a number of GiB", "64", 0, MAX_MEMORY_BYTES >> 30, above=True, unit=" GiB (2**52 bytes)"
)
GPU_COUNT = NumberRule("a whole number of GPUs", "2", 1, MAX_GPUS, whole=True)
GPUS_PER_WORKER = NumberRule("a whole number of GPUs", "1", 0, MAX_GPUS, whole=True)


class NumberError(ValueError):
    """A number given by the user that :func:`parse_number` refused; the message is one
    line that starts with where the value came from."""


def shown(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters; never raises (``repr(10**5000)`` does,
    and so may a marker argument's own ``__repr__``)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"<int of about {int(value.bit_length() * math.log10(2)) + 1} digits>"
    try:
        text = repr(value)
    except Exception as exc:  # a marker argument whose __repr__ raises
        text = f"<{type(value).__name__}: repr raised {type(exc).__name__}>"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def parse_number(value: object, source: str, rule: NumberRule) -> float:
    """``value`` (text in ASCII digits, or an int or float) as a number within ``rule``.

    Raises :class:`NumberError` ``"{source}: ..."`` for NaN, infinities, text that is
    not a decimal number in ASCII digits (``"²"``, ``"1_000"``, ``"0x10"``), a fraction
    where a whole number is needed, and values out of the rule's bounds. ``source``
    names where the value came from: ``--therock-timeout``, ``PYTEST_THEROCK_TIMEOUT``,
    ``ini therock_timeout``, ``requires_gtt_gb(1e300)``.
    """
    expected = f"{source}: expected {rule.what}, e.g. {rule.example}, got {shown(value)}"
    number: float
    if isinstance(value, str):
        text = value.strip()
        if not (text.isascii() and _DECIMAL.fullmatch(text)):
            raise NumberError(expected)
        number = float(text)  # exact for every bound here (below 2**53)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = value
    else:
        raise NumberError(expected)
    if isinstance(number, float) and math.isnan(number):
        raise NumberError(expected)
    if rule.whole and isinstance(number, float) and not number.is_integer():
        raise NumberError(expected)
    if number > rule.high or number < rule.low or (rule.above and number == rule.low):
        raise NumberError(f"{source}: must be {rule.bounds()}, got {shown(value)}")
    return float(number)


def parse_whole(value: object, source: str, rule: NumberRule) -> int:
    """:func:`parse_number` for a rule of whole numbers; returns an int."""
    return int(parse_number(value, source, rule))
