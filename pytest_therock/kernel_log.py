"""Scan a kernel log for amdgpu / KFD trouble and GTT/TTM configuration facts.

Accepts ``dmesg`` output (plain, ``-T``, ``--time-format iso``, ``-x``), ``journalctl -k``
lines and raw ``/dev/kmsg`` records: every pattern is searched anywhere in a line, so
whatever prefix a line carries does not matter. Only lines that belong to amdgpu, KFD
or DRM count; a "page fault" from another driver or a userspace trap is not ours.

The wordings come from the kernel sources named next to each pattern.

A log copied from a terminal may carry the terminal's line wrapping: a record longer
than the terminal is cut at the last column, mid-word (``... amdttm.`` then
``page_pool_size=...`` on the next line). Records are rejoined. When they carry a
prefix (timestamp, journal or kmsg header), the lines after one that carry none are its
continuation; without prefixes (``dmesg -t``) a line continues the one before unless it
starts a record of its own (a device's ``amdgpu 0000:c5:00.0:``, a ``amdgpu:`` /
``[drm]`` tag, ``Linux version``, ``Command line:``). Pieces are joined without a space
while the previous one filled the terminal's width: the longest record followed by a
continuation (prefixed logs), else the longest line when two lines reach it, else a
longest ``Command line:`` followed by a line of command-line words; one column less
means the paste lost the space the terminal wrapped at.

A parameter that is still cut (its name ending in ``.``, ``_`` or ``-``) is not read as
a parameter: it is listed in ``KernelLogFacts.cut_parameters``. So is the command
line's last word, name or value, when it is or may begin a GPU module's parameter and
the record may go on past what the paste shows: its last piece fills the column the
log's lines were wrapped or cut at (``amdttm.pages_limit=32`` of
``amdttm.pages_limit=32768000``), or the next line may be its unjoined tail. A record
that ends short of that column (with a newline, or at the end of the text) and is
followed by nothing, a blank line, "..." or another record ended there: its last word
is read. A second copy of the command line (x86 logs ``Command line:`` and ``Kernel
command line:``) that holds the same words decides over the first copy's end.

Lines with no prefix in a prefixed log that no learnt width explains, and a command
line's tail no width explains, are counted in ``KernelLogFacts.unjoined_lines`` (the log
looks wrapped: an event split there may be missed).
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
# How a record of a log without prefixes (`dmesg -t`) starts: a device message's
# "amdgpu 0000:c5:00.0: " (dev_printk(): driver and device name, drivers/base/core.c),
# a pr_fmt "amdgpu: " / "[drm] " / "[drm:func]" tag, or the boot records "Linux version "
# (init/version.c linux_banner) and "Command line: " / "Kernel command line: ".
_DEVICE = re.compile(
    r"[\w-]+ [0-9a-f]{4,}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]: |[a-z][a-z0-9_]*: |\[drm[]:]"
    r"|Linux version |(?:Kernel c|C)ommand line: "
)
_ELISION = re.compile(r"[\s.…]*|\[?\s*\.\.\.\s*\]?|\(?\s*snip\w*\s*\)?", re.IGNORECASE)
_GPU_SETTING = re.compile(rf"(?:{'|'.join(sorted(_GPU_MODULES))})\.[\w-]+=")
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
    doubtful: tuple[str, ...] = ()  # words of the first copy a guessed lost space ended
    widths: dict[bool, int] = {}  # the terminal's width, learnt once per log shape
    surely: dict[bool, bool] = {}

    def width(prefixed: bool) -> int:
        if prefixed not in widths:
            widths[prefixed] = _wrap_width(lines, prefixed)
        return widths[prefixed]

    def sure(prefixed: bool) -> bool:  # two lines fill the width: one a column short lost a space
        if prefixed not in surely:
            full = width(prefixed)
            surely[prefixed] = sum(len(line.rstrip("\r")) == full for line in lines) >= 2
        return surely[prefixed]

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
        end = index + 1  # the line after the record
        guessed: tuple[str, ...] = ()
        # In a log of prefixed records a record starts at its prefix; in one without
        # (`dmesg -t`) every line that is not a wrapped piece starts one.
        starts = not prefixed_log or bool(_RECORD.match(raw))
        if starts and width(prefixed_log):
            joined, guessed, used = _rejoined(lines, index, line, prefixed_log, width(prefixed_log))
            if used:
                guessed = () if sure(prefixed_log) else guessed
                line, skip_to = joined, index + 1 + used
                end = skip_to
        elif prefixed_log and _continues(raw, True) and not starts:
            unjoined += 1
        if len(copies) < 4 and "ommand line:" in line:
            found = _COMMAND_LINE.search(line)
            if found:
                open_end = _may_be_cut(lines, end, starts and prefixed_log, width(prefixed_log))
                if not copies:
                    doubtful = guessed
                copies.append((found.group(1).strip(), not open_end))
                if open_end and not prefixed_log and not width(False):
                    unjoined += 1  # its tail, not joined: what it holds is not read
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
        command_line, cut = _without_cut(copies[0][0], _confirmed(copies), doubtful)
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
    user's "...", and no record of its own: in a log whose records carry a prefix, no
    prefix; in one without (``dmesg -t``), no device's ``driver BDF:`` prefix
    (``dev_printk()``'s ``"%s %s: "`` of driver and device name, drivers/base/core.c)."""
    if not line.strip() or _ELISION.fullmatch(line):
        return False
    return not (_RECORD if prefixed else _DEVICE).match(line)


def _wrap_width(lines: list[str], prefixed: bool) -> int:
    """The terminal's width: the longest record followed by a continuation (prefixed
    logs), else the longest line when at least two lines are that long (no line of a
    wrapped paste is longer than the terminal, and many fill it), else the length of a
    longest ``Command line:`` line followed by command-line words (:func:`_tail`); 0 if
    none."""
    pairs = itertools.pairwise(lines)
    if prefixed:
        full = [len(a.rstrip("\r")) for a, b in pairs if _RECORD.match(a) and _continues(b, True)]
        return max(full, default=0)
    if edge := _edge(lines):
        return edge
    longest = max((len(line.rstrip("\r")) for line in lines), default=0)
    for a, b in pairs:
        if len(a.rstrip("\r")) >= longest - 1 >= 39 and "ommand line:" in a and _tail(b):
            return longest
    return 0


def _tail(line: str) -> bool:
    """A line of a log without prefixes that may be a wrapped command line's tail: it
    may continue one (:func:`_continues`) and is no message (no ``: ``, no final ``:``)."""
    text = line.strip()
    return _continues(line, False) and not (": " in text or text.endswith(":"))


def _edge(lines: list[str]) -> int:
    """The column a paste's lines were wrapped or cut at: the longest line's length when
    at least two lines have it or one column less (and it is 40 columns or more); 0 if
    none."""
    lengths = Counter(len(line.rstrip("\r")) for line in lines)
    longest = max(lengths, default=0)
    # a piece that lost the space the terminal wrapped at is one column short
    return longest if longest >= 40 and lengths[longest] + lengths[longest - 1] >= 2 else 0


def _may_be_cut(lines: list[str], end: int, prefixed: bool, width: int) -> bool:
    """Whether the record that ends at ``lines[end - 1]`` may go on past what the paste
    shows, so that its last word may be cut: its last piece fills the column the log's
    lines were wrapped or cut at (the terminal's ``width``, or :func:`_edge`; one column
    less when the paste lost the space at the wrap), or the next line may be its wrapped
    tail that no width explains (in a prefixed log: a line with no prefix; without
    prefixes: a line of command-line words, no ``: `` of a message in it). A record
    that ends short of that column, with a newline or at the end of the text, and is
    followed by nothing, a blank line, the user's "..." or another record, ended there:
    its last word is whole."""
    edge = width or _edge(lines)
    if edge and len(lines[end - 1].rstrip("\r")) >= edge - 1:
        return True
    if width or end >= len(lines):
        return False
    return _continues(lines[end], True) if prefixed else _tail(lines[end])


def _rejoined(
    lines: list[str], index: int, head: str, prefixed: bool, width: int
) -> tuple[str, tuple[str, ...], int]:
    """The record at ``lines[index]`` from ``head`` on, with its wrapped continuation;
    the words a guessed lost space ended (a piece one column short of the ``width`` lost
    the space the terminal wrapped at, or, when the width is not sure, may be cut inside
    a word); and how
    many continuation lines were joined."""
    piece = lines[index].rstrip("\r")
    text = piece[piece.rindex(head) :] if head and head in piece else head  # with its spaces
    pieces = 1
    doubtful: list[str] = []
    for following in lines[index + 1 : index + 64]:
        full = width and len(piece) in (width - 1, width)  # a wrapped piece fills the width
        if not full or not _continues(following, prefixed):
            break
        # A piece one column short lost the space the terminal wrapped at; so did one
        # ending in a whole setting when a GPU module's setting starts the next piece
        # (when every wrapped piece of the log lost its space, the width is one short).
        short = len(piece) < width
        whole = "=" in text.rsplit(" ", 1)[-1] and bool(_GPU_SETTING.match(following))
        if short and not whole and text.split():
            doubtful.append(text.split()[-1])
        piece = following.rstrip("\r")
        text += (" " if short or whole else "") + piece
        pieces += 1
    return text.strip(), tuple(doubtful), pieces - 1


def _gpu_related(word: str) -> bool:
    """A word that is, or may be the start of, a GPU module's parameter (``a``,
    ``amdttm.pages_limit=32``): the only words read as settings."""
    name = word.partition("=")[0]
    return bool(name) and any(
        f"{m}.".startswith(name) or name.startswith(f"{m}.") for m in _GPU_MODULES
    )


def _confirmed(copies: list[tuple[str, bool]]) -> bool:
    """Whether the last word of the first copy is whole. x86 logs the command line
    twice (``Command line: %s`` in arch/x86/kernel/setup.c ``setup_arch()`` and
    ``Kernel command line: %s`` in init/main.c ``start_kernel()``): another copy that
    holds the same words decides (it goes on past the last word or ends with it too:
    whole; its word there goes on past it: cut). Otherwise the copy's own end decides
    (:func:`_may_be_cut`)."""
    first, whole = copies[0]
    words = first.split()
    for other, _ in copies[1:]:
        theirs = other.split()
        if not words or len(theirs) < len(words) or theirs[: len(words) - 1] != words[:-1]:
            continue
        if theirs[len(words) - 1] == words[-1]:
            return True
        if theirs[len(words) - 1].startswith(words[-1]):
            return False
    return whole


def _without_cut(
    command_line: str, confirmed: bool, doubtful: tuple[str, ...] = ()
) -> tuple[str, tuple[str, ...]]:
    """The command line without words cut short, and those words: names ending in
    ``.``, ``_`` or ``-``; the last word, when the record may go on past what the paste
    shows (not ``confirmed``, :func:`_confirmed`): ``amdttm.pages_limit=32`` of
    ``...=32768000``, or ``a`` of ``amdgpu.gttsize=...``; and ``doubtful`` words, ended
    by a guessed lost space at a wrap. Of the last and the doubtful words only those
    that are or may begin a GPU setting are listed: the only words read as settings."""
    words = command_line.split(" ")
    cut = [w for w in words if w and _CUT_NAME.fullmatch(w.partition("=")[0])]
    last = next((w for w in reversed(words) if w), "")
    maybe = [w for w in doubtful if w in words] + ([last] if last and not confirmed else [])
    cut += [w for w in maybe if w not in cut and _gpu_related(w)]
    dropped = set(cut)
    kept = " ".join(w for w in words if w not in dropped)
    return " ".join(kept.split()) if cut else command_line.strip(), tuple(dict.fromkeys(cut))[:20]
