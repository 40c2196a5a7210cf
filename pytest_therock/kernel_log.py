"""Scan a kernel log for amdgpu / KFD trouble and GTT/TTM configuration facts.

Accepts ``dmesg`` output (plain, ``-T``, ``--time-format iso``, ``-x``), ``journalctl -k``
lines and raw ``/dev/kmsg`` records: every pattern is searched anywhere in a line, so
whatever prefix a line carries does not matter. Only lines that belong to amdgpu, KFD
or DRM count; a "page fault" from another driver or a userspace trap is not ours.

The wordings come from the kernel sources named next to each pattern.
"""

from __future__ import annotations

import re
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
    command_line: str | None
    unknown_parameters: tuple[str, ...]

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

    for raw in lines:
        line = raw.strip()
        if command_line is None and "ommand line:" in line:
            found = _COMMAND_LINE.search(line)
            if found:
                command_line = found.group(1).strip()
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
    )
