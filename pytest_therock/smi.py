"""Pure parsers for the output of ``amd-smi`` and ``rocm-smi``.

What the plugin needs from these tools: driver and tool versions, and per GPU the
product name, gfx target (where printed), and VRAM / GTT total and used in bytes.

Formats handled (each detected from the text, not told):

``amd-smi``
    ``version`` (text and ``--json``); the default view (``amd-smi`` alone, ROCm 7+:
    a boxed table, old one-line or new multi-line header); the help banner older
    versions print instead (``AMD System Management Interface | Version: ...``);
    ``list``, ``static`` and ``metric --mem-usage`` as text (``GPU: 0`` blocks of
    ``KEY: value`` lines, any uniform indentation) or ``--json`` (a bare list of
    ``{"gpu": N, ...}``, or ``{"gpu_data": [...]}`` since ROCm 6.4/7; quantities are
    ``{"value": v, "unit": u}``, strings like ``"512 MB"``, plain numbers or ``"N/A"``);
    ``monitor`` (``GPU  XCP  GTT_USED ...`` table; its VRAM and GTT columns).
``rocm-smi``
    ``--version``, ``--showdriverversion`` / ``-a`` (``Driver version: ...``); the
    concise table (ROCm 5.0-5.4 ``GPU  Temp  AvgPwr ...`` right under the banner, 5.5+
    ``GPU Temp (DieEdge)...`` under ``Concise Info``, 6.0-6.2 ``Device [Model :
    Revision]`` with a name row under each GPU, 6.3+ ``Device Node IDs...``);
    ``GPU[N] : Key: value`` lines (``-i``, ``--showproductname``, ``--showmeminfo
    vram gtt``; tabs or spaces); ``--json`` (``{"card0": {...}, "system": {...}}``)
    and ``--csv`` (``device,...`` header, one ``cardN`` row per GPU).

Units: rocm-smi prints bytes (``(B)``). amd-smi prints memory as ``MB`` meaning MiB:
its CLI divides the byte counts by ``1024 * 1024`` and labels the result ``MB``
(ROCm/amdsmi ``amdsmi_cli`` default view: ``amdsmi_get_gpu_memory_usage(...) //
(1024 * 1024)`` printed as ``f"{used}/{total} MB"``), and a 512 MiB carve-out shows
as ``TOTAL_VRAM: 512 MB``. So KB/MB/GB here are binary; plain JSON numbers for
memory are MiB, the unit amd-smi uses for them.

Every parser raises only :class:`SmiError`: for an error the tool printed (with its
own line quoted and what to do), or for text that is none of the formats above.
Fields that are absent, ``N/A`` or unparsable become ``None``.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

__all__ = [
    "SmiError",
    "SmiGpu",
    "SmiVersions",
    "parse_amdsmi_gpus",
    "parse_amdsmi_version",
    "parse_rocmsmi_gpus",
    "parse_rocmsmi_version",
]


class SmiError(ValueError):
    """amd-smi / rocm-smi failed, or printed something we cannot read.

    ``code`` is one of ``driver-not-initialized``, ``permission-denied``,
    ``invalid-command``, ``no-gpus``, ``tool-error`` (the tool reported another
    failure), ``incomplete`` (a table cut short: see :func:`_incomplete`) and
    ``unrecognised`` (not output of the expected command). The message
    quotes the tool's own line (``line``) and says what to do.
    """

    def __init__(self, code: str, message: str, line: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.line = line


@dataclass(frozen=True)
class SmiVersions:
    """Versions reported by one tool; ``None`` where not printed or ``N/A``."""

    tool: str  # "amd-smi" or "rocm-smi"
    tool_version: str | None  # build suffix dropped: "24.7.1+8dc45db" -> "24.7.1"
    library_version: str | None  # AMDSMI / ROCM-SMI-LIB library
    rocm_version: str | None
    #: amdgpu driver version, e.g. "6.16.13" (DKMS). With amdgpu built into the
    #: kernel amd-smi prints the kernel's /proc/version with spaces removed
    #: ("Linuxversion6.17.0-1012-oem(buildd@...)..."); that becomes the kernel
    #: release "6.17.0-1012-oem", the version of the in-tree driver.
    driver_version: str | None


@dataclass(frozen=True)
class SmiGpu:
    """One GPU (or GPU partition) as the tool lists it, memory in bytes."""

    index: int  # the tool's own GPU index (amd-smi "GPU: N", rocm-smi "GPU[N]"/"cardN")
    name: str | None  # market / product name
    gfx_target: str | None  # "gfx1151"; feature suffixes such as ":xnack-" dropped
    vram_total_bytes: int | None
    vram_used_bytes: int | None
    gtt_total_bytes: int | None
    gtt_used_bytes: int | None
    #: CPU-visible VRAM (amd-smi ``TOTAL_VISIBLE_VRAM`` / ``USED_VISIBLE_VRAM``).
    vis_vram_total_bytes: int | None = None
    vis_vram_used_bytes: int | None = None


# --------------------------------------------------------------------------- errors

_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "driver-not-initialized",
        re.compile(
            r"driver not (?:initiali[sz]ed|loaded)|amdgpu not found in modules"
            r"|amdgpu/initstate|unable to detect any gpu devices|DRIVERS?_NOT_LOADED",
            re.IGNORECASE,
        ),
    ),
    (
        "permission-denied",
        re.compile(
            r"permission denied|permission needed|missing the following required groups"
            r"|requires elevation|STATUS_NO_PERM",
            re.IGNORECASE,
        ),
    ),
    (
        "invalid-command",
        re.compile(
            r"Invalid(?:Sub)?CommandException|InvalidParameter\w{0,64}Exception"
            r"|MissingParameter\w{0,64}Exception|RequiredCommandException"
            r"|Command '[^']{0,200}' is invalid"
            r"|unrecognized arguments|invalid choice|^usage:|INVALID_(?:SUB)?COMMAND"
            r"|INVALID_PARAMETER",
            re.IGNORECASE,
        ),
    ),
    (
        "no-gpus",
        re.compile(
            r"no AMD GPUs?\b|can ?not find a device|cannot be found on the system"
            r"|DEVICE_NOT_FOUND|no GPUs? (?:were )?(?:found|detected)",
            re.IGNORECASE,
        ),
    ),
    (
        "tool-error",
        re.compile(
            r"Traceback \(most recent call last\)|Exception\b|AMDSMI_STATUS_|RSMI_STATUS_"
            r"|Error code:|^ERROR\b|rsmi_init",
            re.IGNORECASE,
        ),
    ),
)

_ADVICE = {
    "driver-not-initialized": (
        "The amdgpu kernel driver is not loaded or failed to initialise: load it with "
        "`sudo modprobe amdgpu` and look for the reason in `sudo dmesg | grep -i amdgpu`. "
        "Under WSL2 amd-smi and rocm-smi cannot see the GPU at all; use rocminfo there."
    ),
    "permission-denied": (
        "The user may not open the GPU device nodes: add it to the render and video groups "
        "(`sudo usermod -aG render,video $USER`, then log in again) or run the tool with sudo."
    ),
    "invalid-command": (
        "This version of the tool did not accept the command line; check it against "
        "`{tool} -h`. Versions come from `amd-smi version` and `rocm-smi --version`."
    ),
    "no-gpus": (
        "The tool found no AMD GPU: check that `lspci -nn | grep -i amd` lists one and that "
        "amdgpu bound it (`sudo dmesg | grep -i amdgpu`)."
    ),
    "tool-error": "The tool failed; run it by hand to see the whole error.",
}

_QUOTE_LIMIT = 300
#: Characters of a line the failure rules look at: an error line is short, and a
#: bound keeps every rule's work per line small whatever a hostile tool prints.
_LINE_LIMIT = 4096
_ERROR_WORD = re.compile(r"error|exception", re.IGNORECASE)


def _quote(line: str, limit: int = _QUOTE_LIMIT) -> str:
    line = line.strip()
    return repr(line if len(line) <= limit else line[: limit - 3] + "...")


def _reported_error(tool: str, lines: Iterable[str]) -> SmiError | None:
    """The error the tool printed, if any line of ``lines`` is one we know."""
    best: tuple[int, int, str] | None = None
    for line in lines:
        text = line[:_LINE_LIMIT].strip()
        if not text:
            continue
        for rank, (_code, pattern) in enumerate(_RULES):
            if pattern.search(text):
                # Among lines of one kind, quote the tool's own error line rather than
                # noise around it ("cat: ...initstate: No such file" before rocm-smi's).
                key = (rank, 0 if _ERROR_WORD.search(text) else 1, text)
                best = key if best is None or key[:2] < best[:2] else best
                break
    if best is None:
        return None
    code, line = _RULES[best[0]][0], best[2]
    advice = _ADVICE[code].format(tool=tool)
    if code == "invalid-command" and "--version" in line:
        advice = (
            "`amd-smi --version` is not an amd-smi command: run `amd-smi version`."
            if tool == "amd-smi"
            else "rocm-smi before ROCm 6.0 has no --version: its version is in the banner of "
            "`rocm-smi -h` (`ROCM-SMI version: ...`), which this parser reads too."
        )
    return SmiError(code, f"{tool} failed ({code}): it printed {_quote(line)}. {advice}", line)


def _failure(tool: str, text: str, expected: str) -> SmiError:
    """The tool's own error if it printed one, else an ``unrecognised`` error."""
    lines = text.splitlines()
    reported = _reported_error(tool, lines)
    if reported is not None:
        return reported
    first = next((line for line in lines if line.strip()), "")
    got = f"its first line is {_quote(first, 120)}" if first else "it is empty"
    return SmiError(
        "unrecognised",
        f"{tool} output not recognised as {expected} ({got}). Run the command by hand and "
        "check that it works and prints that.",
        first.strip() or None,
    )


_T = TypeVar("_T")


def _guarded(tool: str, expected: str, parse: Callable[[], _T]) -> _T:
    """Last line of defence for the "only SmiError" promise on hostile input."""
    try:
        return parse()
    except SmiError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, RecursionError, OverflowError) as exc:
        raise SmiError(
            "unrecognised",
            f"{tool} output could not be read as {expected} ({type(exc).__name__}: {exc}).",
        ) from exc


def _incomplete(tool: str, what: str) -> SmiError:
    """A table that lacks part of itself: its GPUs cannot be counted from it."""
    return SmiError(
        "incomplete",
        f"{tool} output is incomplete ({what}): its GPUs are not counted from it. Run "
        f"`{tool}` again and keep its whole output (or record a new snapshot with "
        "`pytest-therock snapshot`)",
    )


def _check_indices(tool: str, indices: Iterable[int]) -> None:
    """GPU indices are 0..N-1 (both tools enumerate devices in order): a gap is a lost
    row or block."""
    found = sorted(set(indices))
    if found and found != list(range(found[-1] + 1)):
        missing = sorted(set(range(found[-1] + 1)) - set(found))[:8]
        raise _incomplete(tool, f"GPU {', '.join(map(str, missing))} missing from the list")


# --------------------------------------------------------------------------- values

_NA = frozenset({"", "N/A", "NA", "NONE", "NULL"})
_UNIT_BYTES = {
    "B": 1,
    "KB": 1 << 10,
    "KIB": 1 << 10,
    "MB": 1 << 20,
    "MIB": 1 << 20,
    "GB": 1 << 30,
    "GIB": 1 << 30,
    "TB": 1 << 40,
    "TIB": 1 << 40,
}
_QUANTITY = re.compile(r"(\d{1,20}(?:\.\d{1,12})?)\s*([KMGT]?i?B)?", re.IGNORECASE)
_INTEGER = re.compile(r"\d{1,20}")
_VERSION = re.compile(r"\d[0-9A-Za-z._~-]{0,63}")
_KERNEL_STRING = re.compile(r"Linux\s*version\s*(\d[^\s(]{0,63})", re.IGNORECASE)
_GFX = re.compile(r"gfx([0-9a-f]{3,4})(?![0-9a-z])")


def _is_na(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip().upper() in _NA)


def _bytes(number: object, unit: object) -> int | None:
    if isinstance(number, bool) or not isinstance(number, int | float | str):
        return None
    if isinstance(number, str):
        match = _QUANTITY.fullmatch(number.strip())
        if match is None:
            return None
        number, unit = float(match.group(1)), match.group(2) or unit
    factor = _UNIT_BYTES.get(unit.strip().upper()) if isinstance(unit, str) else None
    if factor is None or number < 0:
        return None
    if isinstance(number, int):
        return number * factor
    size = number * factor
    return round(size) if math.isfinite(size) else None


def _amd_bytes(value: object) -> int | None:
    """An amd-smi memory quantity in bytes; a bare number is MiB (amd-smi's unit)."""
    if isinstance(value, Mapping):
        return _bytes(value.get("value"), value.get("unit") or "MB")
    return _bytes(value, "MB")


def _plain_bytes(value: object) -> int | None:
    """A rocm-smi ``(B)`` field: a non-negative integer number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value >= 0 else None
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _version(value: object) -> str | None:
    """``"24.7.1+8dc45db"`` -> ``"24.7.1"``; ``N/A``, error texts, truncations -> None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith("..."):  # amd-smi cut it to fit its table
        text = text[:-3]
        if "+" not in text:
            return None
    text = text.split("+", 1)[0].strip()
    return text if _VERSION.fullmatch(text) else None


def _driver_version(value: object) -> str | None:
    if isinstance(value, Mapping):  # amd-smi default view JSON: the driver info record
        value = value.get("driver_version")
    if not isinstance(value, str):
        return None
    match = _KERNEL_STRING.match(value.strip())
    if match is not None:
        release = match.group(1)
        return None if release.endswith("...") else release.rstrip(".")
    return _version(value)


def _name(value: object) -> str | None:
    if not isinstance(value, str) or _is_na(value):
        return None
    name = " ".join(value.split())
    if name.startswith("...") or len(name) > 200:  # amd-smi default view truncates long names
        return None
    return name


def _gfx(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    match = _GFX.search(value.strip().lower())
    return f"gfx{match.group(1)}" if match else None


def _index(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value < 1_000_000 else None
    if isinstance(value, str) and re.fullmatch(r"\d{1,6}", value.strip()):
        return int(value.strip())
    return None


# --------------------------------------------------------------------------- json

_DECODER = json.JSONDecoder()


def _load_json(text: str) -> tuple[bool, object]:
    """``(True, document)`` if the output is JSON, after any warning lines the tool printed."""
    offset = 0
    for line in text.splitlines(keepends=True):
        stripped = line.lstrip()
        if stripped[:1] in ("{", "["):
            try:
                return True, _DECODER.raw_decode(text, offset + len(line) - len(stripped))[0]
            except (ValueError, RecursionError):
                return False, None
        offset += len(line)
    return False, None


def _json_errors(document: object) -> list[str]:
    """amd-smi's JSON error objects: ``{"error": "...", "code": ..., "error_type": ...}``."""
    items = document if isinstance(document, list) else [document]
    errors = []
    for item in items[:100]:
        if isinstance(item, Mapping) and isinstance(item.get("error"), str):
            kind = item.get("error_type")
            errors.append(f"{item['error']} [{kind}]" if isinstance(kind, str) else item["error"])
    return errors


_Path = tuple[str, ...]
_Flat = dict[_Path, object]


def _flatten(record: Mapping[object, object], prefix: _Path = (), depth: int = 0) -> _Flat:
    """Nested JSON -> ``{("ASIC", "MARKET_NAME"): value}``; ``{"value", "unit"}`` stays a leaf."""
    flat: _Flat = {}
    for key, value in record.items():
        path = (*prefix, str(key).strip().upper())
        if isinstance(value, Mapping) and "value" not in value and depth < 8:
            for sub, leaf in _flatten(value, path, depth + 1).items():
                flat.setdefault(sub, leaf)
        else:
            flat.setdefault(path, value)
    return flat


# --------------------------------------------------------------------------- amd-smi

_AMD_GPUS_EXPECTED = (
    "amd-smi GPU output (`amd-smi`, `amd-smi list`, `amd-smi static` or "
    "`amd-smi metric --mem-usage`, as text or --json)"
)
_AMD_VERSION_EXPECTED = "amd-smi version output (`amd-smi version`, text or --json)"

_GPU_BLOCK = re.compile(r"GPU:\s*(\d{1,6})")
_KEY_VALUE = re.compile(r"([^:]{1,200}?):(?:[ \t]+(.*?))?[ \t]*")
_BDF = re.compile(r"(?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]")
_MEM_PAIR = re.compile(r"(?<!\d)(\d{1,20})\s*/\s*(\d{1,20})\s*([KMGT]?i?B)\b", re.IGNORECASE)

_AMD_VERSION_FIELDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("tool", re.compile(r"AMDSMI Tool:\s*([^|\s]+)", re.IGNORECASE)),
    ("tool", re.compile(r"^\W{0,3}AMD-SMI\s+(\d[^|\s]*)")),  # default view header
    ("tool", re.compile(r"AMD System Management Interface\s*\|\s*Version:\s*([^|\s]+)")),
    ("library", re.compile(r"AMDSMI Library version:\s*([^|]*?)\s*(?:\||$)", re.IGNORECASE)),
    ("rocm", re.compile(r"ROCm version:\s*([^|\s]+)", re.IGNORECASE)),
    ("driver", re.compile(r"amdgpu version:\s*([^|\s]+)", re.IGNORECASE)),
)


def _amd_text_blocks(lines: Iterable[str]) -> dict[int, _Flat]:
    """``GPU: N`` blocks of indented ``KEY: value`` lines -> ``{N: {path: value}}``.

    A block ends at the next line indented no deeper than its ``GPU:`` line (another
    GPU, or a ``CPU: N`` block). Indentation is relative, so pasted output that was
    shifted right as a whole still parses.
    """
    blocks: dict[int, _Flat] = {}
    current: _Flat | None = None
    base = 0
    stack: list[tuple[int, str]] = []
    for raw in lines:
        line = raw.expandtabs(4).rstrip()
        content = line.lstrip()
        if not content:
            continue
        indent = len(line) - len(content)
        if current is None or indent <= base:
            header = _GPU_BLOCK.fullmatch(content)
            current = blocks.setdefault(int(header.group(1)), {}) if header else None
            base, stack = indent, []
            continue
        pair = _KEY_VALUE.fullmatch(content)
        if pair is None:
            continue  # wrapped continuation of a long value, "- item" lists
        key, value = pair.group(1).strip().upper(), (pair.group(2) or "").strip()
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = (*(name for _, name in stack), key)
        if value:
            current.setdefault(path, value)
        elif len(stack) < 16:
            stack.append((indent, key))
    return blocks


def _amd_default_view(lines: list[str]) -> list[tuple[int, _Flat]] | None:
    """The boxed table ``amd-smi`` prints with no command (ROCm 7+); None if absent.

    Each GPU is two rows: ``| BDF  GPU-Name | ... |`` then ``| GPU HIP-ID OAM-ID
    Partition-Mode | GFX-Uti Fan Mem-Usage |``. Mem-Usage is ``used/total MB``. It is
    reported as VRAM: the table does not say which pool it is, and amd-smi versions
    that include ROCm/rocm-systems PR 1967 show GTT there instead on an APU whose GTT
    is larger than its VRAM carve-out (``amd-smi metric --mem-usage`` is exact).
    """
    if not any("Mem-Usage" in line or "GPU-Name" in line for line in lines):
        return None
    rows: list[tuple[int, _Flat]] = []
    name: str | None = None
    closed = False  # the box's bottom edge ("+---+---+") after the last GPU row
    headed = False  # the box's column header ("... | ... Mem-Usage |") came
    for raw in lines:
        line = raw.strip()
        headed = headed or "Mem-Usage" in line
        if headed and not closed and line.startswith("+"):
            closed = True
        if line.startswith("|") and not line.endswith("|") and not closed:
            raise _incomplete("amd-smi", f"a row is cut short: {_quote(line, 80)}")
        if len(line) < 2 or line[0] != "|" or line[-1] != "|" or closed:
            continue
        cells = line[1:-1].split("|")
        if len(cells) != 2:
            continue  # version header, process table
        left = cells[0].split(None, 1)
        if not left:
            continue
        if _BDF.fullmatch(left[0]) or left[0] == "N/A":
            name = _name(left[1]) if len(left) > 1 else None
        elif left[0].isdecimal() and left[0].isascii() and len(left[0]) <= 6:
            flat: _Flat = {("MARKET_NAME",): name}
            pair = _MEM_PAIR.search(cells[1])
            if pair is not None:
                used, total, unit = pair.groups()
                flat[("MEM_USAGE", "USED_VRAM")] = f"{used} {unit}"
                flat[("MEM_USAGE", "TOTAL_VRAM")] = f"{total} {unit}"
            rows.append((int(left[0]), flat))
            name = None
    if not closed:
        raise _incomplete("amd-smi", "the GPU table stops before its closing `+---+` edge")
    return rows


#: ``amd-smi monitor`` column -> the ``metric --mem-usage`` key it reports.
_MONITOR_COLUMNS = {
    "VRAM_USED": "USED_VRAM",
    "VRAM_TOTAL": "TOTAL_VRAM",
    "GTT_USED": "USED_GTT",
    "GTT_TOTAL": "TOTAL_GTT",
}
_MONITOR_UNIT = re.compile(r"[KMGT]?i?B|%|W|°?C|[KMG]?Hz", re.IGNORECASE)


def _amd_monitor(lines: list[str]) -> list[tuple[int, _Flat]] | None:
    """``amd-smi monitor [-v ...]``: a ``GPU  XCP  GTT_USED ...`` header, one row per GPU.

    Cells are separated by spaces and a value's unit is its own word (``938 MB``), so
    a row is split into words and each unit joined to its number before the cells are
    matched to the header's columns. None without such a header.
    """
    body = [line.split() for line in lines if line.strip()]
    if not body or body[0][:1] != ["GPU"] or not _MONITOR_COLUMNS.keys() & set(body[0]):
        return None
    header = body[0]
    rows: list[tuple[int, _Flat]] = []
    for words in body[1:]:
        cells: list[str] = []
        for word in words:
            if cells and _MONITOR_UNIT.fullmatch(word) and not _is_na(cells[-1]):
                cells[-1] = f"{cells[-1]} {word}"
            else:
                cells.append(word)
        index = _index(cells[0]) if cells else None
        if index is None:
            continue
        if len(cells) < len(header):
            raise _incomplete("amd-smi", f"GPU {index}'s row has fewer columns than the header")
        if len(cells) != len(header):
            continue
        flat: _Flat = {}
        for column, cell in zip(header, cells, strict=True):
            key = _MONITOR_COLUMNS.get(column.upper())
            if key is not None:
                flat[("MEM_USAGE", key)] = cell
        rows.append((index, flat))
    return rows


def _amd_json_gpus(document: object) -> list[tuple[int, _Flat]] | None:
    """GPU records of amd-smi JSON; None if the document has no GPU structure at all."""
    found: list[tuple[int, _Flat]] = []
    recognised = document == []  # `amd-smi list --json` on a machine without GPUs
    queue: list[tuple[object, int]] = [(document, 0)]
    while queue:
        item, depth = queue.pop()
        if depth > 4:
            continue
        if isinstance(item, list):
            queue.extend((child, depth + 1) for child in reversed(item[:4096]))
            continue
        if not isinstance(item, Mapping):
            continue
        index = _index(item.get("gpu", item.get("gpu_id")))
        if index is not None:
            found.append((index, _flatten(item)))
            continue
        for key in ("gpu_data", "gpu_info_list"):
            if key in item:
                recognised = True
                queue.append((item[key], depth + 1))
    if not found and not recognised:
        return None
    return found


def _amd_csv(lines: list[str]) -> list[tuple[int, _Flat]] | None:
    """``amd-smi ... --csv``: a ``gpu,...`` header, one row per GPU."""
    body = [line for line in lines if line.strip()]
    if not body or not body[0].strip().lower().startswith("gpu,"):
        return None
    try:
        rows = list(csv.reader(body[:10_000]))
    except csv.Error:
        return None
    header = [column.strip().upper() for column in rows[0]]
    found: list[tuple[int, _Flat]] = []
    for row in rows[1:]:
        index = _index(row[0]) if row else None
        if index is not None:
            if len(row) < len(header):
                raise _incomplete("amd-smi", f"GPU {index}'s row has fewer columns than the header")
            found.append((index, {(key,): value for key, value in zip(header, row, strict=False)}))
    return found


def _pick(flat: _Flat, suffixes: Iterable[_Path], convert: Callable[[object], _T]) -> _T | None:
    """The first value, by suffix preference, that converts to something."""
    for suffix in suffixes:
        for path, value in flat.items():
            if path[-len(suffix) :] != suffix or _is_na(value):
                continue
            if any(part.startswith("PROCESS") for part in path):
                continue
            converted = convert(value)
            if converted is not None:
                return converted
    return None


def _amd_gpu(index: int, flat: _Flat) -> SmiGpu:
    return SmiGpu(
        index=index,
        name=_pick(flat, [("MARKET_NAME",), ("BOARD", "PRODUCT_NAME")], _name),
        gfx_target=_pick(flat, [("TARGET_GRAPHICS_VERSION",), ("GFX_VERSION",)], _gfx),
        vram_total_bytes=_pick(
            flat, [("TOTAL_VRAM",), ("VRAM", "SIZE"), ("VRAM_SIZE",)], _amd_bytes
        ),
        vram_used_bytes=_pick(flat, [("USED_VRAM",)], _amd_bytes),
        gtt_total_bytes=_pick(flat, [("TOTAL_GTT",)], _amd_bytes),
        gtt_used_bytes=_pick(flat, [("USED_GTT",)], _amd_bytes),
        vis_vram_total_bytes=_pick(flat, [("TOTAL_VISIBLE_VRAM",)], _amd_bytes),
        vis_vram_used_bytes=_pick(flat, [("USED_VISIBLE_VRAM",)], _amd_bytes),
    )


def _merge(records: Iterable[tuple[int, _Flat]]) -> dict[int, _Flat]:
    merged: dict[int, _Flat] = {}
    for index, flat in records:
        target = merged.setdefault(index, {})
        for path, value in flat.items():
            if _is_na(target.get(path)):
                target[path] = value
    return merged


def _amdsmi_gpus(text: str) -> tuple[SmiGpu, ...]:
    lines = text.splitlines()
    records: list[tuple[int, _Flat]] | None = None
    is_json, document = _load_json(text)
    if is_json:
        errors = _json_errors(document)
        records = _amd_json_gpus(document)
        if not records and errors:
            raise _failure("amd-smi", "\n".join(errors), _AMD_GPUS_EXPECTED)
    if records is None:
        records = _amd_default_view(lines)
    if not records:
        blocks = _amd_text_blocks(lines)
        records = list(blocks.items()) if blocks else records
    if records is None:
        records = _amd_csv(lines)
    if records is None:
        records = _amd_monitor(lines)
    if records is None or (not records and _reported_error("amd-smi", lines)):
        raise _failure("amd-smi", text, _AMD_GPUS_EXPECTED)
    merged = _merge(records)
    _check_indices("amd-smi", merged)
    return tuple(_amd_gpu(index, merged[index]) for index in sorted(merged))


def parse_amdsmi_gpus(text: str) -> tuple[SmiGpu, ...]:
    """GPUs from ``amd-smi`` (default view), ``list``, ``static``, ``metric --mem-usage``
    (``metric -m``) or ``monitor``.

    Text or ``--json`` (``--csv`` too, for the columns it has); the format is detected.
    ``list`` only gives indices. Raises :class:`SmiError` if the tool reported an error
    instead, or the text is not one of these outputs.
    """
    return _guarded("amd-smi", _AMD_GPUS_EXPECTED, lambda: _amdsmi_gpus(text))


def _versions(tool: str, text: str, expected: str, fields: dict[str, object]) -> SmiVersions:
    """The versions a tool printed; SmiError when it printed none."""
    if not fields:
        raise _failure(tool, text, expected)
    return SmiVersions(
        tool=tool,
        tool_version=_version(fields.get("tool")),
        library_version=_version(fields.get("library")),
        rocm_version=_version(fields.get("rocm")),
        driver_version=_driver_version(fields.get("driver")),
    )


def _amdsmi_version(text: str) -> SmiVersions:
    fields: dict[str, object] = {}
    is_json, document = _load_json(text)
    if is_json:
        for record in document if isinstance(document, list) else [document]:
            if not isinstance(record, Mapping):
                continue
            if "amdsmi_library_version" in record or record.get("tool") == "AMDSMI Tool":
                fields.setdefault("tool", record.get("version"))
                fields.setdefault("library", record.get("amdsmi_library_version"))
                fields.setdefault("rocm", record.get("rocm_version"))
                fields.setdefault("driver", record.get("amdgpu_version"))
            info = record.get("version_info")  # default view as JSON
            if isinstance(info, Mapping):
                rocm = info.get("rocm version")
                fields.setdefault("tool", info.get("amd-smi"))
                fields.setdefault("rocm", rocm[1] if isinstance(rocm, list) and rocm[1:] else rocm)
                fields.setdefault("driver", info.get("amdgpu version"))
        gpus = _amd_json_gpus(document) or []
    else:
        for line in text.splitlines():
            for field, pattern in _AMD_VERSION_FIELDS:
                match = pattern.search(line.strip())
                if match is not None:
                    fields.setdefault(field, match.group(1))
        gpus = sorted(_amd_text_blocks(text.splitlines()).items())
    for _, flat in sorted(gpus, key=lambda record: record[0]):  # `amd-smi static [--driver]`
        driver = flat.get(("DRIVER", "VERSION"))
        if driver is not None:
            fields.setdefault("driver", driver)
            break
    return _versions("amd-smi", text, _AMD_VERSION_EXPECTED, fields)


def parse_amdsmi_version(text: str) -> SmiVersions:
    """Versions from ``amd-smi version`` (text or ``--json``).

    Also reads the header of the default view (``amd-smi``), the banner of older
    versions' help, and the driver version of ``amd-smi static [--driver]``.
    """
    return _guarded("amd-smi", _AMD_VERSION_EXPECTED, lambda: _amdsmi_version(text))


# --------------------------------------------------------------------------- rocm-smi

_ROCM_GPUS_EXPECTED = (
    "rocm-smi GPU output (`rocm-smi`, `rocm-smi -i`, `--showproductname`, "
    "`--showmeminfo vram gtt`, with or without --json / --csv)"
)
_ROCM_VERSION_EXPECTED = "rocm-smi version output (`rocm-smi --version` or --showdriverversion)"

_GPU_LINE = re.compile(r"GPU\[(\d{1,6})\]\s*:\s*(.*)")
_FIELD = re.compile(r"([^:]{1,200}?)\s*:\s*(.*)")
_CARD = re.compile(r"card(\d{1,6})")
_ROW = re.compile(r"(\d{1,6})\s")
_ROCM_NAME_KEYS = ("market name", "marketing name", "card series", "device name")
#: rocm-smi 6.0-6.2 concise view prints at most this many characters of the name.
_CONCISE_NAME_WIDTH = 20

_ROCM_VERSION_FIELDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("tool", re.compile(r"ROCm-SMI version\s*:\s*([^|\s]+)", re.IGNORECASE)),
    ("library", re.compile(r"ROCm-SMI-LIB version\s*:\s*([^|\s]+)", re.IGNORECASE)),
    ("driver", re.compile(r"Driver version\s*[:,]\s*([^|\s,]+)", re.IGNORECASE)),
    ("rocm", re.compile(r"ROCm version\s*:\s*([^|\s]+)", re.IGNORECASE)),
)


def _key(text: str) -> str:
    return " ".join(text.split()).lower()


def _rocm_card_fields(card: Mapping[object, object]) -> dict[str, object]:
    return {_key(str(key)): value for key, value in card.items()}


def _rocm_csv(lines: list[str]) -> dict[int, dict[str, object]] | None:
    """``rocm-smi ... --csv``: a ``device,...`` header and one ``cardN`` row per GPU."""
    body = [line for line in lines if line.strip()]
    if not body or not body[0].strip().lower().startswith("device,"):
        return None
    try:
        rows = list(csv.reader(body[:10_000]))
    except csv.Error:
        return None
    header = [_key(column) for column in rows[0]]
    cards: dict[int, dict[str, object]] = {}
    for row in rows[1:]:
        card = _CARD.fullmatch(row[0].strip()) if row else None
        if card is not None:
            fields: dict[str, object] = dict(zip(header, row, strict=False))
            cards.setdefault(int(card.group(1)), fields)
    return cards


#: Column names of the concise table (every layout since ROCm 5.0 has several of them).
_CONCISE_COLUMNS = frozenset(
    {"Temp", "AvgPwr", "Power", "SCLK", "MCLK", "Fan", "Perf", "PwrCap", "VRAM%", "GPU%"}
)


def _concise_header(lines: list[str]) -> int | None:
    """The header row of the concise table: ``GPU`` or ``Device`` then known columns.

    ROCm 5.x before 5.5 prints it right under the ``ROCm System Management Interface``
    banner (``GPU  Temp   AvgPwr  SCLK ...``, no ``Concise Info`` line, no Device or
    Node columns); later versions put a ``Concise Info`` banner first. Columns are
    found by name, never by position or width.
    """
    banner = False
    for i, line in enumerate(lines[:200]):
        if "ROCm System Management Interface" in line or "Concise Info" in line:
            banner = True
            continue
        words = line.split()
        header = words[:1] in (["GPU"], ["Device"])
        known = len(_CONCISE_COLUMNS.intersection(words))
        if header and known >= (2 if banner else 4):  # a paste of the table alone
            return i
    return None


def _rocm_concise(lines: list[str]) -> dict[int, str | None] | None:
    """The concise table ``rocm-smi`` prints with no options; None if absent.

    Rows start with the device index. Only the 6.0-6.2 layout (``[Model : Revision]``)
    has names, on an indented row under each GPU, cut to 20 characters: a name that
    long may be truncated and is dropped.
    """
    header = _concise_header(lines)
    if header is None:
        return None
    named = "[Model" in lines[header]
    base = len(lines[header]) - len(lines[header].lstrip())
    # Every column has a value in every row (N/A when unknown): a row with fewer words
    # than the header's known column names was cut.
    columns = len((_CONCISE_COLUMNS | {"GPU", "Device"}).intersection(lines[header].split()))
    found: dict[int, str | None] = {}
    last: int | None = None
    closed = False
    for raw in lines[header + 1 :]:
        line = raw.rstrip()
        content = line.lstrip()
        indent = len(line) - len(content)
        if content.startswith("=") or "End of ROCm SMI Log" in content:
            if found or "End of ROCm SMI Log" in content:
                closed = True
                break
            continue
        row = _ROW.match(content + " ") if indent == base else None
        if row is not None:
            last = int(row.group(1))
            if len(content.split()) < columns:
                raise _incomplete("rocm-smi", f"GPU {last}'s row is cut short")
            found.setdefault(last, None)
        elif named and last is not None and indent > base and content:
            name = _name(content)
            if name is not None and len(name) < _CONCISE_NAME_WIDTH:
                found[last] = found[last] or name
            last = None
    # rocm-smi draws a `====` rule above and below the table; a paste that kept the one
    # above and lost the one below was cut (a table pasted bare cannot tell).
    opened = any(line.lstrip().startswith("=") for line in lines[:header])
    if opened and not closed:
        raise _incomplete("rocm-smi", "the concise table stops before its closing `====` rule")
    _check_indices("rocm-smi", found)
    return found


def _rocm_gpu(index: int, fields: Mapping[str, object], fallback_name: str | None) -> SmiGpu:
    name = next(
        (name for key in _ROCM_NAME_KEYS if (name := _name(fields.get(key))) is not None),
        fallback_name,
    )
    return SmiGpu(
        index=index,
        name=name,
        gfx_target=_gfx(fields.get("gfx version")),
        vram_total_bytes=_plain_bytes(fields.get("vram total memory (b)")),
        vram_used_bytes=_plain_bytes(fields.get("vram total used memory (b)")),
        gtt_total_bytes=_plain_bytes(fields.get("gtt total memory (b)")),
        gtt_used_bytes=_plain_bytes(fields.get("gtt total used memory (b)")),
    )


def _rocmsmi_gpus(text: str) -> tuple[SmiGpu, ...]:
    lines = text.splitlines()
    cards: dict[int, dict[str, object]] | None = None
    names: dict[int, str | None] = {}
    is_json, document = _load_json(text)
    if is_json and isinstance(document, Mapping):
        found: dict[int, dict[str, object]] = {}
        for key, card in document.items():
            match = _CARD.fullmatch(str(key).strip())
            if match is not None and isinstance(card, Mapping):
                found.setdefault(int(match.group(1)), _rocm_card_fields(card))
        if found or "system" in document:  # "system" alone: no GPU listed
            cards = found
    if cards is None:
        cards = _rocm_csv(lines)
    if cards is None:
        per_gpu: dict[int, dict[str, object]] = {}
        for line in lines:
            gpu = _GPU_LINE.match(line.strip())
            if gpu is None:
                continue
            fields = per_gpu.setdefault(int(gpu.group(1)), {})
            field = _FIELD.fullmatch(gpu.group(2).strip())
            if field is not None:
                fields.setdefault(_key(field.group(1)), field.group(2).strip())
        concise = _rocm_concise(lines)
        if per_gpu and concise is None:
            banner = any("ROCm System Management Interface" in line for line in lines)
            if banner and not any("End of ROCm SMI Log" in line for line in lines):
                raise _incomplete("rocm-smi", "it stops before `End of ROCm SMI Log`")
            _check_indices("rocm-smi", per_gpu)
        if per_gpu or concise is not None:
            cards, names = per_gpu, concise or {}
            for index in names:
                cards.setdefault(index, {})
    if cards is None or (not cards and _reported_error("rocm-smi", lines)):
        raise _failure("rocm-smi", text, _ROCM_GPUS_EXPECTED)
    return tuple(_rocm_gpu(index, cards[index], names.get(index)) for index in sorted(cards))


def parse_rocmsmi_gpus(text: str) -> tuple[SmiGpu, ...]:
    """GPUs from ``rocm-smi`` (concise view), ``-i``, ``--showproductname``,
    ``--showmeminfo vram gtt``, ``-a``, and their ``--json`` / ``--csv`` forms.

    The concise view gives indices (and, on ROCm 6.0-6.2, short names) only.
    Raises :class:`SmiError` if the tool reported an error instead, or the text is
    not one of these outputs.
    """
    return _guarded("rocm-smi", _ROCM_GPUS_EXPECTED, lambda: _rocmsmi_gpus(text))


def _rocmsmi_version(text: str) -> SmiVersions:
    fields: dict[str, object] = {}
    is_json, document = _load_json(text)
    if is_json and isinstance(document, Mapping):
        wanted = {
            "rocm-smi version": "tool",
            "rocm-smi-lib version": "library",
            "driver version": "driver",
            "rocm version": "rocm",
        }
        for section in (document, *document.values()):
            if isinstance(section, Mapping):
                for key, value in section.items():
                    field = wanted.get(_key(str(key)))
                    if field is not None:
                        fields.setdefault(field, value)
    else:
        for line in text.splitlines():
            for field, pattern in _ROCM_VERSION_FIELDS:
                match = pattern.search(line)
                if match is not None:
                    fields.setdefault(field, match.group(1))
    return _versions("rocm-smi", text, _ROCM_VERSION_EXPECTED, fields)


def parse_rocmsmi_version(text: str) -> SmiVersions:
    """Versions from ``rocm-smi --version`` (ROCm 6+: ``ROCM-SMI version`` and
    ``ROCM-SMI-LIB version``) or the ``rocm-smi -h`` banner (older versions, which
    reject ``--version``), plus ``Driver version`` from ``--showdriverversion`` or ``-a``
    (text or ``--json``). rocm-smi prints no ROCm version: that stays None.
    """
    return _guarded("rocm-smi", _ROCM_VERSION_EXPECTED, lambda: _rocmsmi_version(text))
