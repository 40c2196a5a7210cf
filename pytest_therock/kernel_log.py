"""Scan a kernel log for amdgpu / KFD trouble and GTT/TTM configuration facts.

Accepts ``dmesg`` output (plain, ``-T``, ``--time-format iso``, ``-x``), ``journalctl -k``
lines and raw ``/dev/kmsg`` records: every pattern is searched anywhere in a line, so
whatever prefix a line carries does not matter. Only lines that belong to amdgpu, KFD
or DRM count; a "page fault" from another driver or a userspace trap is not ours.

The wordings come from the kernel sources named next to each pattern.

A log copied from a terminal may carry the terminal's line wrapping: a record longer
than the terminal is cut at the last column, mid-word (``... amdttm.`` then
``page_pool_size=...`` on the next line). The ``Command line:`` record is rejoined:
when records carry a prefix (timestamp, journal or kmsg header), the lines after it
that carry none are its continuation, joined without a space while the previous piece
filled the terminal's width (the longest wrapped line of the log; one column less means
the paste lost the space the terminal wrapped at). A parameter that is still cut (its
name ending in ``.``, ``_`` or ``-``, or a dotted name without ``=`` ending the command
line, as a log without prefixes leaves it) is not read as a parameter: it is listed in
``KernelLogFacts.cut_parameters``. So is the command line's last word, name or value,
when it is or may begin a GPU module's parameter, unless a second copy of the command
line in the log (x86 logs it as ``Command line:`` and ``Kernel command line:``) or the
terminal's wrap (a last piece short of the width) confirms it: a paste may end anywhere
inside it
(``amdttm.pages_limit=32`` of ``amdttm.pages_limit=32768000``), and nothing in one
copy tells a cut from a whole last word.

Every other record is rejoined the same way (prefixed logs, the width learnt from the
log), so an event wrapped over two lines is counted and quoted whole; lines with no
prefix that no learnt width explains are counted in ``KernelLogFacts.unjoined_lines``
(the log looks wrapped: an event split there may be missed).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass

_MIB = 1024 * 1024

# Modules whose "unknown parameter ... ignored" matters for the GPU (incl. DKMS copies).
_GPU_MODULES = frozenset(
    {"amdgpu", "amdkfd", "amdttm", "amdkcl", "amdxcp", "amddrm_ttm_helper", "ttm", "drm"}
)

# A line is ours when it names amdgpu/KFD, or is a DRM line of no other driver.
_OURS = re.compile(r"amdgpu|amdkfd|\bkfd\b|amdttm")
_DRM = re.compile(r"\[drm\b|\bdrm:")
_FOREIGN = re.compile(r"\b(?:radeon|i915|xe|nouveau|nvidia\w*|vmwgfx|virtio_gpu|simpledrm)\b")

# (kind, pattern), in the order events are reported.
_EVENTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    # gmc_v9..v12 / amdgpu_gmc.c: "[gfxhub] page fault (src_id:..." (also "retry"/"no-retry");
    # gmc_v7/v8: "GPU fault detected: ..." and "VM fault (0x.., vmid .., pasid ..)".
    ("page-fault", re.compile(r"\bpage fault \(|GPU fault detected|\bVM fault \(")),
    # amdgpu_job.c: "ring %s timeout, signaled seq=%u, emitted seq=%u" (older: "ring gfx timeout").
    ("ring-timeout", re.compile(r"\bring \S+ timeout(?!, but soft recovered)")),
    # amdgpu_job.c: "ring %s timeout, but soft recovered" (the job was killed, no reset).
    ("ring-soft-recovery", re.compile(r"\bring \S+ timeout, but soft recovered")),
    # mes_v11_0.c / mes_v12_0.c: "MES failed to respond to msg=%s"; before 6.9 "to response".
    ("mes-failure", re.compile(r"\bMES failed to respon(?:d|se) (?:to )?msg=")),
    # amdgpu_device.c: "GPU reset begin!" (newer: "GPU reset begin!. Source: %d").
    ("gpu-reset", re.compile(r"\bGPU reset begin\b")),
    # amdgpu_device.c: "GPU reset(%d) failed" ; amdgpu_job.c (older): "GPU Recovery Failed: %d".
    ("gpu-reset-failed", re.compile(r"\bGPU reset\(\d+\) failed|\bGPU Recovery Failed")),
    # drm_drv.c drm_dev_wedged_event(): "device wedged, needs recovery".
    ("device-wedged", re.compile(r"\bdevice wedged, needs recovery")),
    # amdgpu_device.c: "VRAM is lost due to GPU reset!".
    ("vram-lost", re.compile(r"\bVRAM is lost due to GPU reset")),
    # amdgpu_ras.c: "%ld uncorrectable hardware errors detected in %s block" (also "new",
    # "deferred"); the "Total"/"in total" summaries repeat the same errors and are skipped.
    (
        "ras-error",
        re.compile(r"\b[1-9]\d* (?:new )?(?:uncorrectable|deferred) hardware errors detected"),
    ),
    # kfd_device.c: "DID %04x is missing in supported_devices" (old), "GC IP %06x %s not
    # supported in kfd" / "%s %s not supported in kfd" (new).
    (
        "kfd-unsupported-device",
        re.compile(r"\bis missing in supported_devices|\bnot supported in kfd\b"),
    ),
    # amdgpu_ttm.c amdgpu_ttm_init() (6.17+): the two drm_warn()s below.
    ("gtt-ttm-mismatch", re.compile(r"\bGTT size has been set as \d+ but TTM size has been set")),
    ("gttsize-deprecated", re.compile(r"\bConfiguring gttsize via module parameter is deprecated")),
    # kernel/module/main.c: "%s: unknown parameter '%s' ignored" (see _unknown_parameter).
    ("unknown-parameter", re.compile(r"\bunknown parameter '")),
)

_TOTAL = re.compile(r"\btotal\b", re.IGNORECASE)
# Digit runs are bounded so int() never meets a number too long to convert.
_VRAM_READY = re.compile(r"\b(\d{1,12})M of VRAM memory ready")
_GTT_READY = re.compile(r"\b(\d{1,12})M of GTT memory ready")
_GTT_TTM = re.compile(
    r"\bGTT size has been set as (\d{1,20}) but TTM size has been set as (\d{1,20})\b"
)
_TOKEN_END = re.compile(r"[\s;\]]")
_COMMAND_LINE = re.compile(r"(?:^|[\s;\]:])(?:Kernel c|C)ommand line: ?(.*)$")
# How a record of each log shape starts: dmesg "[    0.000000]" / "[Sat Apr 11 ...]"
# (not any "[": a wrapped piece may start with "[gfxhub] page fault"),
# kmsg "6,1,1000,-;", syslog/journal "Apr 11 21:30:00 ", ISO "2026-04-11T21:30:00",
# dmesg -x "kern  :info  : ", and kmsg's " KEY=value" dictionary lines.
_RECORD = re.compile(
    r"\[ *\d+\.\d+\]|\[[A-Z][a-z]{2} [A-Z][a-z]{2} |<\d+>|\d+,\d+,\d+,"
    r"|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d |\d{4}-\d\d-\d\d[T ]\d\d:"
    r"|[a-z]+ *:[a-z]+ *: | [A-Z][A-Z0-9_]*="
)
_ELISION = re.compile(r"[\s.…]*|\[?\s*\.\.\.\s*\]?|\(?\s*snip\w*\s*\)?", re.IGNORECASE)
_GPU_SETTING = re.compile(r"(?:amdgpu|amdttm|ttm|amdkfd|amdxcp)\.[\w-]+=")
_CUT_NAME = re.compile(r"[^=]*[A-Za-z0-9][._-]")  # "amdttm.", "amdttm.pages_": a name cut short


@dataclass(frozen=True)
class KernelEvent:
    """How often one kind of event occurred, and the last line that reported it."""

    kind: str
    count: int
    last_line: str


@dataclass(frozen=True)
class KernelLogFacts:
    """What one kernel log says about the GPU driver; sizes in bytes, last report wins."""

    events: tuple[KernelEvent, ...]
    vram_ready_bytes: int | None
    gtt_ready_bytes: int | None
    gtt_size_bytes: int | None
    ttm_size_bytes: int | None
    command_line: str | None  # rejoined when wrapped; cut parameters left out
    unknown_parameters: tuple[str, ...]
    cut_parameters: tuple[str, ...] = ()  # command-line words cut by a wrap, not read
    #: Lines of a log whose records carry a prefix that carry none and that no learnt
    #: terminal width explains: the log looks wrapped, and an event split across such
    #: lines may be missed.
    unjoined_lines: int = 0

    def count(self, kind: str) -> int:
        """Occurrences of ``kind`` (0 when absent)."""
        return next((e.count for e in self.events if e.kind == kind), 0)


def _is_ours(line: str) -> bool:
    if _OURS.search(line):
        return True
    return bool(_DRM.search(line)) and not _FOREIGN.search(line)


def _unknown_parameter(line: str) -> str | None:
    """``amdgpu: unknown parameter 'gtt_size' ignored`` -> ``gtt_size``; other GPU
    modules are qualified (``ttm.foo``); non-GPU modules give None."""
    head, sep, tail = line.partition(": unknown parameter '")
    param, quote, _ = tail.partition("' ignored")
    if not sep or not quote:
        return None
    module = _TOKEN_END.split(head)[-1].replace("-", "_")
    if module not in _GPU_MODULES:
        return None
    return param if module == "amdgpu" else f"{module}.{param}"


def scan_kernel_log(text: str, *, max_lines: int = 200_000) -> KernelLogFacts:
    """Scan the last ``max_lines`` lines of ``text``; never raises on any text."""
    lines = text.splitlines()[-max_lines:] if max_lines > 0 else []
    counts: dict[str, int] = {}
    last: dict[str, str] = {}
    vram = gtt = gtt_size = ttm_size = None
    command_line: str | None = None
    unknown: list[str] = []

    copies: list[tuple[str, bool]] = []  # every Command line record, rejoined; ends whole
    widths: dict[bool, int] = {}  # the terminal's width, learnt once per log shape

    def width(prefixed: bool) -> int:
        if prefixed not in widths:
            widths[prefixed] = _wrap_width(lines, prefixed)
        return widths[prefixed]

    sample = [line for line in lines[:2000] if line.strip()]
    # Records carry a prefix when the log starts with one, or most lines have one (a
    # narrow wrap makes most lines pieces).
    records = sum(1 for line in sample if _RECORD.match(line))
    prefixed_log = bool(sample) and (bool(_RECORD.match(sample[0])) or 2 * records > len(sample))
    unjoined = 0  # lines of a prefixed log with no prefix that no wrap explains
    skip_to = 0
    for index, raw in enumerate(lines):
        if index < skip_to:
            continue  # a wrapped piece, already joined to its record
        line = raw.strip()
        if prefixed_log and _RECORD.match(raw) and width(True):
            joined, _, used = _rejoined(lines, index, line, True, width(True))
            line, skip_to = (joined, index + 1 + used) if used else (line, 0)
        elif prefixed_log and _continues(raw, True) and not _RECORD.match(raw):
            unjoined += 1
        if len(copies) < 4 and "ommand line:" in line:
            found = _COMMAND_LINE.search(line)
            if found:
                prefixed = bool(line[: found.start(1)].partition("ommand line:")[0].strip())
                if prefixed_log and prefixed and width(True):
                    copies.append(_rejoined([line], 0, found.group(1).strip(), True, 0)[:2])
                    copies[-1] = (copies[-1][0], _whole_end(lines, index, skip_to, width(True)))
                else:
                    head = found.group(1).strip()
                    copies.append(_rejoined(lines, index, head, prefixed, width(prefixed))[:2])
                continue  # the command line reports no event (and may be long)
        ours = _is_ours(line)
        for kind, pattern in _EVENTS:
            if kind == "unknown-parameter":
                # Module loading prints these; the module name decides, not the line.
                param = _unknown_parameter(line)
                if param is None:
                    continue
                if param not in unknown:
                    unknown.append(param)
            elif not (ours and pattern.search(line)):
                continue
            elif kind == "ras-error" and _TOTAL.search(line):
                continue  # a summary of errors already counted
            counts[kind] = counts.get(kind, 0) + 1
            last[kind] = line
        if not ours:
            continue
        if match := _VRAM_READY.search(line):
            vram = int(match.group(1)) * _MIB
        if match := _GTT_READY.search(line):
            gtt = int(match.group(1)) * _MIB
        if match := _GTT_TTM.search(line):
            gtt_size, ttm_size = int(match.group(1)), int(match.group(2))

    cut: tuple[str, ...] = ()
    if copies:
        command_line, cut = _without_cut(copies[0][0], _confirmed(copies))
    events = tuple(
        KernelEvent(kind, counts[kind], last[kind]) for kind, _ in _EVENTS if kind in counts
    )
    return KernelLogFacts(
        events=events,
        vram_ready_bytes=vram,
        gtt_ready_bytes=gtt,
        gtt_size_bytes=gtt_size,
        ttm_size_bytes=ttm_size,
        command_line=command_line,
        unknown_parameters=tuple(unknown),
        cut_parameters=cut,
        unjoined_lines=unjoined,
    )


def _continues(line: str, prefixed: bool) -> bool:
    """A line that may be the terminal's wrap of the one before: not blank, not the
    user's "...", and (in a log whose records carry a prefix) no record of its own."""
    if not line.strip() or _ELISION.fullmatch(line):
        return False
    return not (prefixed and _RECORD.match(line))


def _wrap_width(lines: list[str], prefixed: bool) -> int:
    """The terminal's width: the longest record followed by a continuation (prefixed
    logs), else the longest line length that at least two lines share; 0 if none."""
    if prefixed:
        pairs = itertools.pairwise(lines)
        full = [len(a.rstrip("\r")) for a, b in pairs if _RECORD.match(a) and _continues(b, True)]
        return max(full, default=0)
    lengths = Counter(len(line.rstrip("\r")) for line in lines)
    shared = [n for n, count in lengths.items() if count >= 2 and n >= 60]
    return max(shared, default=0)


def _whole_end(lines: list[str], index: int, end: int, width: int) -> bool:
    """Whether the record at ``lines[index]``, wrapped up to ``lines[end]``, was ended by
    the terminal: wrapped, its last piece stops short of the width."""
    if end <= index + 1:
        return False
    return len(lines[end - 1].rstrip("\r").rstrip()) < width - 1


def _rejoined(
    lines: list[str], index: int, head: str, prefixed: bool, width: int
) -> tuple[str, bool, int]:
    """The record at ``lines[index]`` from ``head`` on, with its wrapped continuation;
    whether its end is known to be the record's (it was wrapped and its last piece
    stops short of the terminal's ``width``: the terminal, not the paste, ended it);
    and how many continuation lines were joined."""
    piece = lines[index].rstrip("\r")
    text = piece[piece.rindex(head) :] if head and head in piece else head  # with its spaces
    pieces = 1
    for following in lines[index + 1 : index + 64]:
        full = width and len(piece) in (width - 1, width)  # a wrapped piece fills the width
        if not full or not _continues(following, prefixed):
            break
        # A piece one column short lost the space the terminal wrapped at; so did one
        # ending in a whole setting when a GPU module's setting starts the next piece
        # (when every wrapped piece of the log lost its space, the width is one short).
        short = len(piece) < width
        whole = "=" in text.rsplit(" ", 1)[-1] and bool(_GPU_SETTING.match(following))
        piece = following.rstrip("\r")
        text += (" " if short or whole else "") + piece
        pieces += 1
    return text.strip(), pieces > 1 and len(piece.rstrip()) < width - 1, pieces - 1


def _gpu_related(word: str) -> bool:
    """A word that is, or may be the start of, a GPU module's parameter (``a``,
    ``amdttm.pages_limit=32``): the only words read as settings."""
    name = word.partition("=")[0]
    return bool(name) and any(
        f"{m}.".startswith(name) or name.startswith(f"{m}.") for m in _GPU_MODULES
    )


def _confirmed(copies: list[tuple[str, bool]]) -> bool:
    """Whether the last word of the first copy is whole: the terminal wrapped the record
    and ended it short of its width, or another copy of the command line (x86 logs it
    twice: ``Command line: %s`` in arch/x86/kernel/setup.c ``setup_arch()`` and
    ``Kernel command line: %s`` in init/main.c ``start_kernel()``) holds the same words
    and goes on past it, or ends with it too."""
    first, whole = copies[0]
    words = first.split()
    if whole:
        return True
    for other, _ in copies[1:]:
        theirs = other.split()
        if words and theirs[: len(words)] == words:
            return True
    return False


def _without_cut(command_line: str, confirmed: bool) -> tuple[str, tuple[str, ...]]:
    """The command line without words cut short, and those words. Its last word is
    where the pasted record ends: unless confirmed (:func:`_confirmed`), it may be cut
    (``amdttm.pages_limit=32`` of ``...=32768000``, or ``a`` of ``amdgpu.gttsize=...``),
    name or value alike, so when it is or may be a GPU setting it is listed as cut too."""
    words = command_line.split(" ")
    cut = [w for w in words if w and _CUT_NAME.fullmatch(w.partition("=")[0])]
    last = next((w for w in reversed(words) if w), "")
    if last and not confirmed and last not in cut and _gpu_related(last):
        cut.append(last)
    dropped = set(cut)
    kept = " ".join(w for w in words if w not in dropped)
    return " ".join(kept.split()) if cut else command_line.strip(), tuple(dict.fromkeys(cut))[:20]
