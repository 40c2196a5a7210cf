"""Diagnostics drawn from TheRock's FAQ, as small checks with stable codes.

Each check reads the :class:`Environment` and returns what it measured, the fix,
and the FAQ question it answers. ``pytest-therock doctor --explain CODE`` prints
the explanation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .environment import GIB, Environment, fmt_bytes
from .gtt import gtt_info

SEVERITIES = ("error", "warning", "info")
FAQ = "https://github.com/ROCm/TheRock/blob/main/docs/faq.md"


@dataclass(frozen=True)
class Diagnostic:
    """A finding: a stable code, its severity, one line of what was measured, the fix."""

    code: str
    severity: str  # "error", "warning" or "info"
    message: str  # one line, with the measured values
    fix: str | None = None

    def __str__(self) -> str:
        fix = f" Fix: {self.fix}" if self.fix else ""
        stop = "" if self.message.endswith((".", "?", "!")) else "."
        return f"{self.severity}[{self.code}]: {self.message}{stop}{fix}"


def checked(diag: object) -> Diagnostic:
    """A project's diagnostic as given, or one saying what is wrong with it."""
    if isinstance(diag, Diagnostic) and diag.severity in SEVERITIES:
        return diag
    return Diagnostic(
        "hook-invalid",
        "warning",
        f"pytest_therock_diagnostics returned {diag!r}: expected "
        f"Diagnostic(code, severity, message, fix) with severity one of {', '.join(SEVERITIES)}",
    )


@dataclass(frozen=True)
class Check:
    """A registered check: its code, severity, FAQ question and explanation."""

    code: str
    severity: str
    faq: str | None  # the FAQ question this answers
    explanation: str
    run: Callable[[Environment], Iterator[Diagnostic]]


CHECKS: dict[str, Check] = {}


def check(
    code: str, severity: str, faq: str | None, explanation: str
) -> Callable[
    [Callable[[Environment], Iterator[tuple[str, str | None]]]],
    Callable[[Environment], Iterator[tuple[str, str | None]]],
]:
    """Register a check yielding ``(message, fix)`` pairs."""

    def register(
        func: Callable[[Environment], Iterator[tuple[str, str | None]]],
    ) -> Callable[[Environment], Iterator[tuple[str, str | None]]]:
        def run(env: Environment) -> Iterator[Diagnostic]:
            for message, fix in func(env):
                yield Diagnostic(code, severity, message, fix)

        CHECKS[code] = Check(code, severity, faq, explanation.strip(), run)
        return func

    return register


def run_checks(env: Environment, ignore: frozenset[str] = frozenset()) -> list[Diagnostic]:
    """Every diagnostic for ``env``, most severe first."""
    found = [d for c in CHECKS.values() if c.code not in ignore for d in c.run(env)]
    return sorted(found, key=lambda d: SEVERITIES.index(d.severity))


@check(
    "kfd-missing",
    "error",
    "How do I verify my GPU is recognized by TheRock?",
    """
/dev/kfd is the ROCm compute device. Without it no ROCm program sees a GPU. When
the KFD topology is also missing, the amdgpu kernel module is not loaded (check
`lsmod | grep amdgpu` and `dmesg | grep amdgpu`). When the topology exists but
/dev/kfd does not, this is a container started without the device: pass
`--device /dev/kfd --device /dev/dri` to docker or podman.
""",
)
def _kfd_missing(env: Environment) -> Iterator[tuple[str, str | None]]:
    if env.kfd.present or env.wsl:  # WSL reaches the GPU through /dev/dxg
        return
    if env.rocminfo is not None and env.rocminfo.ok:  # it opened /dev/kfd when it ran
        return
    kfd_gpus = [g for g in env.gpus if g.source == "kfd"]
    if kfd_gpus:
        yield (
            f"/dev/kfd is missing although the KFD topology lists {len(kfd_gpus)} GPU(s)",
            "inside a container, pass --device /dev/kfd --device /dev/dri",
        )
    else:
        yield (
            "/dev/kfd is missing and no GPU is in the KFD topology: amdgpu is not loaded",
            "`sudo modprobe amdgpu`, then check `dmesg | grep amdgpu`",
        )


@check(
    "kfd-denied",
    "error",
    "How do I verify my GPU is recognized by TheRock?",
    """
ROCm opens /dev/kfd (and /dev/dri/renderD*) read-write. They belong to the
`render` group (`video` on older distributions). Add the user to both groups
with `sudo usermod -aG render,video $USER`; group membership takes effect only
in a new login session, so log out and in again (or run `newgrp render`).
""",
)
def _kfd_denied(env: Environment) -> Iterator[tuple[str, str | None]]:
    kfd = env.kfd
    if not kfd.present or kfd.usable:
        return
    group = kfd.group or "render"
    if kfd.relogin:
        yield (
            f"/dev/kfd belongs to group {group!r}; you are a member, but not in this login session",
            "log out and in again (or run `newgrp " + group + "`)",
        )
    else:
        yield (
            "/dev/kfd is not readable and writable by this user",
            f"`sudo usermod -aG {group},video $USER`, then log in again",
        )


@check(
    "no-gpu",
    "error",
    "How do I verify my GPU is recognized by TheRock?",
    """
No AMD GPU node was found in /sys/class/kfd/kfd/topology, or every GPU is
hidden by ROCR_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES.
Run `rocminfo` or `amd-smi` to see what the ROCm stack finds.
""",
)
def _no_gpu(env: Environment) -> Iterator[tuple[str, str | None]]:
    if not env.gpus and env.kfd.present:
        yield "no AMD GPU in the KFD topology", "run `rocminfo`; check `dmesg | grep -i kfd`"
    elif env.gpus and not env.visible_gpus:
        shown = ", ".join(f"{k}={v!r}" for k, v in env.env_vars.items() if "VISIBLE" in k)
        yield f"all {len(env.gpus)} GPU(s) hidden by {shown}", "unset or fix the variable"


@check(
    "gtt-exceeds-vram",
    "info",
    "Why does PyTorch use Graphics Translation Table (GTT) instead of VRAM on gfx1151?",
    """
On an APU such as Strix Halo (gfx1151) memory is physically unified: VRAM is a
small firmware carve-out, and GTT maps system RAM into the GPU's address space
on demand. When GTT is larger than VRAM, allocations (PyTorch's included) go to
GTT. This is expected; the performance difference on an APU is minimal.
""",
)
def _gtt_exceeds_vram(env: Environment) -> Iterator[tuple[str, str | None]]:
    for gpu in env.visible_gpus:
        info = gtt_info(env, gpu)
        if gpu.is_apu and info.exceeds_vram:
            yield (
                f"{gpu.gfx_target}: GTT {fmt_bytes(info.usable_bytes)} > VRAM "
                f"{fmt_bytes(info.vram_total_bytes)}, so allocations use GTT (expected on an APU)",
                None,
            )


@check(
    "vram-exceeds-gtt",
    "info",
    "Can I prioritize VRAM usage over GTT?",
    """
If VRAM is larger than GTT, applications use VRAM. To prefer VRAM, raise the
VRAM carve-out in the BIOS or lower the GTT size below it; to prefer GTT (the
FAQ's advice for AI workloads on APUs, since a carve-out permanently removes
memory from the OS), lower the carve-out and raise ttm.pages_limit.
""",
)
def _vram_exceeds_gtt(env: Environment) -> Iterator[tuple[str, str | None]]:
    for gpu in env.visible_gpus:
        info = gtt_info(env, gpu)
        if gpu.is_apu and info.exceeds_vram is False:
            yield (
                f"{gpu.gfx_target}: VRAM carve-out {fmt_bytes(gpu.vram_total_bytes)} >= GTT "
                f"{fmt_bytes(info.usable_bytes)}, so applications use VRAM",
                "lower the carve-out in the BIOS and raise ttm.pages_limit to prefer GTT",
            )


@check(
    "gtt-default",
    "info",
    "Can I prioritize VRAM usage over GTT?",
    """
By default TTM lets the GPU map at most half of system RAM (ttm.pages_limit,
in pages of 4 KiB). Large models on an APU need more: set ttm.pages_limit (and
amdttm.pages_limit when the packaged amdgpu-dkms driver is installed) on the
kernel command line. GiB x 262144 = pages; e.g. 96 GiB = 25165824.
""",
)
def _gtt_default(env: Environment) -> Iterator[tuple[str, str | None]]:
    for gpu in env.visible_gpus:
        info = gtt_info(env, gpu)
        if gpu.is_apu and info.is_default and env.system_memory_bytes:
            target_gib = int(env.system_memory_bytes * 3 // 4 // GIB)
            pages = target_gib * GIB // env.page_size
            param = f"{env.ttm_module}.pages_limit"
            yield (
                f"{gpu.gfx_target}: GTT is at the default 50% of RAM "
                f"({fmt_bytes(info.limit_bytes)} of {fmt_bytes(env.system_memory_bytes)})",
                f"for {target_gib} GiB add {param}={pages} to the kernel command line",
            )


GTT_BELOW_NEED = Check(
    "gtt-below-need",
    "warning",
    "What should I do if I encounter memory allocation errors?",
    """
Tests marked requires_gtt_gb(n) declare how much GTT they need. When the largest
need is above what the GPU can allocate (the smaller of the driver's GTT size and
the TTM limit), those tests were skipped; the session summary says by how much
and gives the ttm.pages_limit that would fit them (GiB x 262144 pages).
""",
    lambda env: iter(()),  # reported in the session summary, which knows the need
)
CHECKS[GTT_BELOW_NEED.code] = GTT_BELOW_NEED


def gtt_below_need(env: Environment, needed: int) -> Diagnostic | None:
    """The largest GTT the session's tests asked for, against what the GPUs allow."""
    gpus = env.visible_gpus
    if not gpus:
        return None
    usable = max((gtt_info(env, g).usable_bytes or 0) for g in gpus)
    if usable >= needed:
        return None
    gib = -(-needed // GIB)
    return Diagnostic(
        GTT_BELOW_NEED.code,
        GTT_BELOW_NEED.severity,
        f"tests need up to {fmt_bytes(needed)} of GTT; the GPU can allocate {fmt_bytes(usable)}",
        f"add {env.ttm_module}.pages_limit={gib * GIB // env.page_size} to the kernel command "
        f"line ({gib} GiB)",
    )


@check(
    "gtt-ttm-mismatch",
    "warning",
    "What should I do if I encounter memory allocation errors?",
    """
The driver reports GTT as amdgpu.gttsize when it is set, but allocations stop
at TTM's pages_limit. When the two disagree the kernel logs "GTT size has been
set as X but TTM size has been set as Y, this is unusual" and the smaller one is
what a process can use. Drop amdgpu.gttsize and set ttm.pages_limit alone.
""",
)
def _gtt_ttm_mismatch(env: Environment) -> Iterator[tuple[str, str | None]]:
    for gpu in env.visible_gpus:
        info = gtt_info(env, gpu)
        if info.disagrees and info.total_bytes is not None and info.limit_bytes is not None:
            yield (
                f"{gpu.gfx_target}: driver reports GTT {fmt_bytes(info.total_bytes)} but "
                f"the TTM limit is {fmt_bytes(info.limit_bytes)} ({info.limit_source}); "
                f"usable: {fmt_bytes(info.usable_bytes)}",
                f"set {env.ttm_module}.pages_limit to the size you want and drop amdgpu.gttsize",
            )


@check(
    "gttsize-deprecated",
    "warning",
    "What should I do if I encounter memory allocation errors?",
    """
Current kernels log "Configuring gttsize via module parameter is deprecated,
please use ttm.pages_limit". amdgpu.gttsize only changes what the driver
reports; TTM's pages_limit is what allocations obey.
""",
)
def _gttsize_deprecated(env: Environment) -> Iterator[tuple[str, str | None]]:
    param = env.param("amdgpu.gttsize")
    if param and param.value.strip() not in ("", "-1"):
        mib = param.value.strip()
        pages = int(mib) * 256 if mib.isascii() and mib.isdigit() and len(mib) < 12 else None
        yield (
            f"amdgpu.gttsize={mib} (MiB) is set ({param.origin}); it is deprecated",
            f"use {env.ttm_module}.pages_limit={pages}" if pages else "use ttm.pages_limit",
        )


_VALID = {
    "ttm": {"pages_limit", "page_pool_size", "dma32_pages_limit"},
    "amdttm": {"pages_limit", "page_pool_size", "dma32_pages_limit"},
    "amdgpu": {"gttsize", "gartsize", "vramlimit"},
}


@check(
    "kernel-param-ignored",
    "warning",
    "What should I do if I encounter memory allocation errors?",
    """
The kernel ignores a misspelled module parameter (it logs "amdgpu: unknown
parameter 'gtt_size' ignored"), and the setting silently keeps its default.
With the packaged amdgpu-dkms driver TTM is the `amdttm` module: a `ttm.*`
setting alone does not reach it. Likewise `amdttm.*` does nothing with the
in-kernel driver.
""",
)
def _param_ignored(env: Environment) -> Iterator[tuple[str, str | None]]:
    for p in env.kernel_params:
        if p.origin != "cmdline":
            continue
        module, _, name = p.name.partition(".")
        valid = _VALID.get(module, set())
        import difflib

        close = difflib.get_close_matches(name, sorted(valid), n=1, cutoff=0.75)
        if name not in valid and close:
            yield (
                f"kernel parameter {p.name} is not a parameter (ignored)",
                f"use {module}.{close[0]}",
            )
    dkms = env.ttm_module == "amdttm"
    other = "ttm" if dkms else "amdttm"
    for p in env.kernel_params:
        if (
            p.origin == "cmdline"
            and p.name.startswith(f"{other}.")
            and not env.param(f"{env.ttm_module}.{p.name.split('.', 1)[1]}")
        ):
            yield (
                f"{p.name} is set but the loaded TTM module is {env.ttm_module}",
                f"set {env.ttm_module}.{p.name.split('.', 1)[1]} too",
            )


@check(
    "hsa-override",
    "warning",
    None,
    """
HSA_OVERRIDE_GFX_VERSION makes the ROCm runtime report another GPU target than
the hardware's, so kernels built for that target run on this GPU. Tests then
run on hardware other than the one their markers name.
""",
)
def _hsa_override(env: Environment) -> Iterator[tuple[str, str | None]]:
    value = env.env_vars.get("HSA_OVERRIDE_GFX_VERSION")
    if value is not None:
        real = ", ".join(sorted({g.gfx_target or "?" for g in env.gpus})) or "none"
        yield (
            f"HSA_OVERRIDE_GFX_VERSION={value} fakes the GPU target (hardware: {real})",
            "unset it unless you mean to run another target's code",
        )


@check(
    "visibility-mismatch",
    "warning",
    None,
    """
ROCR_VISIBLE_DEVICES filters the GPUs first; HIP_VISIBLE_DEVICES (or
CUDA_VISIBLE_DEVICES) then indexes what is left. Setting both to different
lists usually hides more than intended.
""",
)
def _visibility_mismatch(env: Environment) -> Iterator[tuple[str, str | None]]:
    rocr = env.env_vars.get("ROCR_VISIBLE_DEVICES")
    hip = env.env_vars.get("HIP_VISIBLE_DEVICES", env.env_vars.get("CUDA_VISIBLE_DEVICES"))
    if rocr is not None and hip is not None and rocr != hip:
        yield (
            f"ROCR_VISIBLE_DEVICES={rocr!r} and HIP_VISIBLE_DEVICES={hip!r} differ; "
            f"visible: {len(env.visible_gpus)} of {len(env.gpus)} GPU(s)",
            "set only one of them",
        )


@check(
    "rocminfo-failed",
    "error",
    "How do I verify my GPU is recognized by TheRock?",
    """
rocminfo initialises the ROCm runtime (HSA) and lists the agents it can use.
When it fails, so will HIP programs such as PyTorch. Its own message says why:
amdgpu not loaded, /dev/kfd not accessible, a container without the devices, or
the runtime failing to start (HSA_STATUS_ERROR_*).
""",
)
def _rocminfo_failed(env: Environment) -> Iterator[tuple[str, str | None]]:
    status = env.rocminfo
    if status is not None and not status.ok and status.code not in ("not-run", "timeout"):
        yield status.message, None


@check(
    "tool-unavailable",
    "warning",
    None,
    """
rocminfo could not be run: not installed (looked in $ROCM_PATH/bin,
/opt/rocm/bin and PATH; set --therock-rocminfo), or it hung past
--therock-timeout and was killed with its children.
""",
)
def _tool_unavailable(env: Environment) -> Iterator[tuple[str, str | None]]:
    status = env.rocminfo
    if status is not None and status.code in ("not-run", "timeout"):
        yield status.message, None


@check(
    "target-unsupported",
    "warning",
    "Which GPU architectures are supported by TheRock?",
    """
TheRock's roadmap (SUPPORTED_GPUS.md) lists, per gfx target, whether its builds
pass, are sanity-tested on hardware, or are release-ready. A target with builds
only may install fine and still fail at device enumeration or kernel launch; a
target not listed has no TheRock build at all.
""",
)
def _target_unsupported(env: Environment) -> Iterator[tuple[str, str | None]]:
    from .therock import LINUX_STATUS, SOURCE

    for target in sorted({g.gfx_target for g in env.visible_gpus if g.gfx_target}):
        status = LINUX_STATUS.get(target)
        if status is None:
            yield f"{target} is not on TheRock's list of supported GPUs", f"see {SOURCE}"
        elif status in ("build", "planned"):
            what = "has builds but is not sanity-tested" if status == "build" else "is planned"
            yield f"{target} {what} in TheRock (Linux)", f"see {SOURCE}"


@check(
    "rocm-build-mismatch",
    "warning",
    "Which GPU architectures are supported by TheRock?",
    """
TheRock's Python SDK installs its GPU libraries per target family
(rocm-sdk-libraries-gfx1151, rocm-sdk-libraries-gfx110X-all, ...). When none of
the installed families covers the GPU, HIP finds no kernels for it: install the
package for this GPU's family from TheRock's release index.
""",
)
def _rocm_build_mismatch(env: Environment) -> Iterator[tuple[str, str | None]]:
    built = env.versions.build_targets if env.versions else ()
    if not built:
        return
    from .targets import parse_target_pattern  # only now: the header shows without it

    patterns = []
    for family in built:
        try:
            patterns.append(parse_target_pattern(family))
        except ValueError:
            continue
    if not patterns:
        return
    for target in sorted({g.gfx_target for g in env.visible_gpus if g.gfx_target}):
        if not any(p.matches(target) for p in patterns):
            yield (
                f"{target} is not among the targets TheRock's SDK was installed for "
                f"({', '.join(built)})",
                f"install rocm-sdk-libraries for {target} (e.g. `pip install rocm[libraries]` "
                "from the index for this GPU family)",
            )


_LOG_EVENTS = {
    "page-fault": "GPU page fault(s)",
    "ring-timeout": "ring timeout(s)",
    "mes-failure": "MES failure(s)",
    "gpu-reset": "GPU reset(s)",
    "gpu-reset-failed": "failed GPU reset(s)",
    "device-wedged": "wedged-device report(s)",
    "vram-lost": "VRAM lost after reset",
    "ras-error": "RAS (hardware) error report(s)",
    "kfd-unsupported-device": "device(s) KFD does not support",
}


@check(
    "kernel-log",
    "warning",
    "What should I do if I encounter memory allocation errors?",
    """
The FAQ's advice: review `dmesg | grep amdgpu`. The plugin reads the kernel log
(a snapshot's .therock/dmesg.txt, or `dmesg` in `pytest-therock doctor`) and
reports GPU page faults, ring timeouts, MES failures, GPU resets, lost VRAM, RAS
errors and devices KFD refused, with their count and the last occurrence.
""",
)
def _kernel_log(env: Environment) -> Iterator[tuple[str, str | None]]:
    log = env.kernel_log
    if log is None:
        return
    for event in log.events:
        label = _LOG_EVENTS.get(event.kind)
        if label:
            yield f"kernel log: {event.count} {label}; last: {event.last_line[:160]}", None
    if log.gtt_size_bytes and log.ttm_size_bytes and log.gtt_size_bytes != log.ttm_size_bytes:
        yield (
            f"kernel log: GTT size {fmt_bytes(log.gtt_size_bytes)} but TTM size "
            f"{fmt_bytes(log.ttm_size_bytes)}: allocations stop at the TTM size",
            f"set {env.ttm_module}.pages_limit alone and drop amdgpu.gttsize",
        )
    for name in log.unknown_parameters:
        yield f"kernel log: unknown parameter {name!r} ignored", "check its spelling"


@check(
    "source-unreadable",
    "warning",
    None,
    """
A file the plugin reads (KFD topology, DRM sysfs, module parameters,
/proc/cmdline, /proc/meminfo) was missing, unreadable or malformed. What it
would have told is reported as unknown.
""",
)
def _unreadable(env: Environment) -> Iterator[tuple[str, str | None]]:
    for problem in env.problems:
        if problem.source != "rocminfo":
            yield str(problem), None


@check(
    "rocminfo-mismatch",
    "warning",
    "How do I verify my GPU is recognized by TheRock?",
    """
rocminfo lists the GPUs the ROCm runtime can use; the KFD topology lists what
the kernel driver found. When they differ, the runtime is hiding or failing a
GPU (an unsupported target, a visibility variable, a broken partition), or the
rocminfo output came from another moment than the sysfs files.
""",
)
def _rocminfo_mismatch(env: Environment) -> Iterator[tuple[str, str | None]]:
    for problem in env.problems:
        if problem.source == "rocminfo":
            yield f"rocminfo {problem.reason}", "run `rocminfo` and `dmesg | grep -i kfd`"


@check(
    "vram-carve-out",
    "info",
    "Why is allocating to GTT beneficial compared to VRAM?",
    """
On an APU the "VRAM" is a carve-out of system RAM that the firmware reserves for
the GPU at boot. A small carve-out (the BIOS minimum, often 512 MiB) leaves the
RAM to the OS and lets GTT serve the GPU on demand, which the FAQ recommends for
AI workloads. A large carve-out is lost to the OS even when no GPU program runs.
""",
)
def _vram_carve_out(env: Environment) -> Iterator[tuple[str, str | None]]:
    ram = env.system_memory_bytes
    for gpu in env.visible_gpus:
        vram = gpu.vram_total_bytes
        if not gpu.is_apu or vram is None:
            continue
        if vram <= GIB:
            yield (
                f"{gpu.gfx_target}: VRAM carve-out {fmt_bytes(vram)} (small): GPU memory is GTT",
                None,
            )
        elif ram and vram >= ram // 4:
            yield (
                f"{gpu.gfx_target}: VRAM carve-out {fmt_bytes(vram)} of {fmt_bytes(ram)} RAM "
                "is reserved for the GPU and lost to the OS",
                "set the carve-out to its minimum in the BIOS and raise ttm.pages_limit",
            )


@check(
    "gart-not-gtt",
    "info",
    "What is the difference between Graphics Address Remapping Table (GART) and GTT?",
    """
GART is the part of the GPU's address space that the kernel driver maps for its
own use; it is kept small. GTT is what user processes (PyTorch) can map. Setting
amdgpu.gartsize does not change how much memory applications can allocate:
ttm.pages_limit (amdttm.pages_limit with the DKMS driver) does.
""",
)
def _gart_not_gtt(env: Environment) -> Iterator[tuple[str, str | None]]:
    for p in env.kernel_params:
        if p.name == "amdgpu.gartsize" and p.origin == "cmdline":
            yield (
                f"amdgpu.gartsize={p.value} sizes GART (the driver's own mappings), not GTT",
                f"to let applications allocate more, set {env.ttm_module}.pages_limit",
            )
