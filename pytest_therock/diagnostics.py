"""Diagnostics drawn from TheRock's FAQ, as small checks with stable codes.

Each check reads the :class:`Environment` and returns what it measured, the fix,
and the FAQ question it answers. ``pytest-therock doctor --explain CODE`` prints
the explanation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from .environment import Environment, fmt_bytes
from .memory import PAGE, GpuMemory, gpu_memory, machine_plan, target_bytes, ttm_param

SEVERITIES = ("error", "warning", "info")
FAQ = "https://github.com/ROCm/TheRock/blob/main/docs/faq.md"


class Diagnostic(NamedTuple):
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


class Check(NamedTuple):
    """A registered check: its code, severity, FAQ question and explanation."""

    code: str
    severity: str
    faq: str | None  # the FAQ question this answers
    explanation: str
    run: Callable[[Environment, int | None], Iterator[Diagnostic]]


CHECKS: dict[str, Check] = {}


Found = Iterator[tuple[str, str | None] | tuple[str, str | None, str]]


def check(
    code: str, severity: str, faq: str | None, explanation: str
) -> Callable[[Callable[..., Found]], Callable[..., Found]]:
    """Register a check yielding ``(message, fix)`` pairs, or ``(message, fix, severity)``
    for a finding less severe than the check's own (rocminfo failing on a machine with
    no AMD GPU is information). A check taking a second argument also gets the size
    (bytes) the user or the session's tests need, or None."""

    def register(func: Callable[..., Found]) -> Callable[..., Found]:
        takes_need = func.__code__.co_argcount == 2

        def run(env: Environment, need: int | None = None) -> Iterator[Diagnostic]:
            for found in func(env, need) if takes_need else func(env):
                level = found[2] if len(found) == 3 else severity
                yield Diagnostic(code, level, found[0], found[1])

        CHECKS[code] = Check(code, severity, faq, explanation.strip(), run)
        return func

    return register


def run_checks(
    env: Environment, ignore: frozenset[str] = frozenset(), need: int | None = None
) -> list[Diagnostic]:
    """Every diagnostic for ``env``, most severe first; ``need``: bytes of GPU memory the
    user asked for (``pytest-therock doctor --need``), which memory fixes then aim at."""
    checks = list(CHECKS.values())
    if any(p.source == env.root for p in env.problems):  # the root itself cannot be read:
        checks = [c for c in checks if c.code == "source-unreadable"]  # nothing else is known
    found = [d for c in checks if c.code not in ignore for d in c.run(env, need)]
    return sorted(found, key=lambda d: SEVERITIES.index(d.severity))


def check_codes(codes: Iterable[str], source: str, others: bool = False) -> None:
    """Refuse a code no check has, with one line naming ``source`` (``--therock-ignore``,
    ``PYTEST_THEROCK_IGNORE``, ``ini therock_ignore``) and the codes it is close to.

    ``others``: a project's ``pytest_therock_diagnostics`` hook may add codes, so only
    a code close to a built-in one (a typo) is refused. Raises ValueError.
    """
    for code in sorted(codes):
        if code in CHECKS:
            continue
        import difflib  # only for a code that is not built in

        close = difflib.get_close_matches(code, list(CHECKS), n=3, cutoff=0.6)
        if others and not close:
            continue
        hint = f"did you mean {' or '.join(close)}?" if close else f"codes: {', '.join(CHECKS)}"
        raise ValueError(f"{source}: unknown diagnostic code {code!r}; {hint}")


@check(
    "kfd-missing",
    "error",
    "How do I verify my GPU is recognized by TheRock?",
    """
/dev/kfd is the ROCm compute device. Without it no ROCm program sees a GPU. amdgpu
creates it, and the KFD topology, when it loads (kfd_init in
drivers/gpu/drm/amd/amdkfd/kfd_module.c calls kfd_chardev_init, then
kfd_topology_init), whether or not it finds a GPU. When both are missing, either the
machine has no AMD GPU (nothing to do: tests that need one skip; a pytest run is
quiet about it unless --therock-strict or --therock-expect asks for a GPU) or its
amdgpu module is not loaded. Nothing read tells the two apart, so the plugin gives
no advice; on a machine that has an AMD GPU (`lspci -nn | grep -i amd` lists it),
load the module with `sudo modprobe amdgpu` and look for why it did not load in
`dmesg | grep amdgpu`. When the topology lists GPUs but /dev/kfd is missing, this is
a container started without the device: pass `--device /dev/kfd --device /dev/dri`
to docker or podman.
""",
)
def _kfd_missing(env: Environment) -> Iterator[tuple[str, str | None]]:
    from .absence import no_amd_gpu, unknown_fix, unknown_gpus

    # WSL reaches the GPU through /dev/dxg; an unknown /dev/kfd is source-unreadable's
    if env.kfd.present or env.wsl or not env.kfd.known:
        return
    # A snapshot's record of /dev/kfd wins over its recorded rocminfo (Environment.reachable);
    # kfd-record-disagrees says when the two disagree.
    kfd_gpus = [g for g in env.gpus if g.source == "kfd"]
    if kfd_gpus:
        yield (
            f"/dev/kfd is missing although the KFD topology lists {len(kfd_gpus)} GPU(s)",
            "inside a container, pass --device /dev/kfd --device /dev/dri",
        )
    elif env.gpus or (env.rocminfo is not None and env.rocminfo.code in ("ok", "incomplete")):
        # A recorded rocminfo that ran (a snapshot without the topology): not "amdgpu not loaded".
        listed = f"lists {len(env.gpus)} GPU(s)" if env.gpus else "ran"
        yield (
            f"/dev/kfd is missing although the recorded rocminfo {listed}",
            "inside a container, pass --device /dev/kfd --device /dev/dri",
        )
    elif no_amd_gpu(env):  # a laptop, an NVIDIA box: no advice for a machine with a GPU
        yield (
            "no AMD GPU found: /dev/kfd is missing and the KFD topology lists no GPU",
            "nothing to do without an AMD GPU; on a machine that has one: "
            "`pytest-therock doctor --explain kfd-missing`",
        )
    elif env.rocminfo is not None and env.rocminfo.code == "kfd-missing":  # absence.py
        yield (
            "/dev/kfd is missing although rocminfo found amdgpu loaded",
            "inside a container, pass --device /dev/kfd --device /dev/dri",
        )
    elif unknown_gpus(env) is not None:  # the GPUs line says what could not be read
        yield "/dev/kfd is missing, and which GPUs there are is unknown", unknown_fix(env)
    else:  # a tool saw more than "no GPU here" (rocminfo hung, amd-smi lists a GPU)
        yield (
            "/dev/kfd is missing and the KFD topology lists no GPU: amdgpu is not loaded",
            "on a machine with an AMD GPU, `sudo modprobe amdgpu`, then check "
            "`dmesg | grep amdgpu`",
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
    if not kfd.present or kfd.usable or not kfd.known:  # unknown: source-unreadable says so
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
    "kfd-record-disagrees",
    "warning",
    "How do I verify my GPU is recognized by TheRock?",
    """
A snapshot records both /dev/kfd's access (.therock/kfd-access and dev/kfd) and the
output of rocminfo. When rocminfo ran (it opens /dev/kfd) but the record says /dev/kfd
was missing, not readable and writable, or cannot be read, the two were taken under
different conditions (another user, another container) or the snapshot was edited.
The record of /dev/kfd decides: the GPU counts as not usable. Record the snapshot
again, as the user and in the container that runs the tests.
""",
)
def _kfd_record_disagrees(env: Environment) -> Iterator[tuple[str, str | None]]:
    if env.reachable or env.rocminfo is None or env.rocminfo.code not in ("ok", "incomplete"):
        return
    kfd = env.kfd
    said = (
        "cannot be read"
        if not kfd.known
        else "says /dev/kfd is missing"
        if not kfd.present
        else "says /dev/kfd is not readable and writable"
    )
    yield (
        f"the recorded rocminfo ran, but the record of /dev/kfd {said}: "
        "the GPU counts as not usable",
        "record the snapshot again, as the user and in the container that runs the tests",
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
    from .absence import unknown_fix, unknown_gpus

    if not env.gpus and env.kfd.present and unknown_gpus(env) is not None:
        # the GPUs line says what could not be read: no claim about the topology here
        yield "which AMD GPUs there are is unknown", unknown_fix(env)
    elif not env.gpus and env.kfd.present:
        yield "no AMD GPU in the KFD topology", "run `rocminfo`; check `dmesg | grep -i kfd`"
    elif env.gpus and not env.visible_gpus:
        shown = ", ".join(f"{k}={v!r}" for k, v in env.env_vars.items() if "VISIBLE" in k)
        yield f"all {len(env.gpus)} GPU(s) hidden by {shown}", "unset or fix the variable"


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
(A `ttm.*` setting the DKMS driver's `amdttm` does not read, or the reverse, is
reported by `memory-config`.)
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


@check(
    "hsa-override",
    "warning",
    None,
    """
HSA_OVERRIDE_GFX_VERSION makes the ROCm runtime report another GPU target than
the hardware's, so kernels built for that target run on this GPU. Tests then
run on hardware other than the one their markers name. Also found without the
variable: when rocminfo lists another target than the KFD topology for the same
node, or (a snapshot) than AMD's device table gives for the GPU's Chip ID.
""",
)
def _hsa_override(env: Environment) -> Iterator[tuple[str, str | None]]:
    value = env.env_vars.get("HSA_OVERRIDE_GFX_VERSION")
    fix = "unset HSA_OVERRIDE_GFX_VERSION unless you mean to run another target's code"
    seen = [p.reason for p in env.problems if p.source == "hsa-override"]
    for reason in seen:  # the chip's own target against the one the runtime lists
        yield (f"{reason}; HSA_OVERRIDE_GFX_VERSION={value}" if value else reason), fix
    if value is not None and not seen:
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
def _rocminfo_failed(env: Environment) -> Found:
    from .absence import found_nothing

    status = env.rocminfo
    skip = ("not-run", "timeout", "incomplete")
    if status is not None and not status.ok and status.code not in skip:
        nothing = found_nothing(env, "rocminfo", status)  # no AMD GPU: information
        yield (nothing, None, "info") if nothing else (status.message, None)


@check(
    "rocminfo-incomplete",
    "error",
    "How do I verify my GPU is recognized by TheRock?",
    """
rocminfo prints a banner, then every agent (CPUs, GPUs), then `*** Done ***`. An
output that starts mid-way, skips agent numbers or stops before `*** Done ***`
(a paste cut short, a snapshot written while rocminfo was killed) lists only
some GPUs, so it is not used to count them. Record the whole output again.
""",
)
def _rocminfo_incomplete(env: Environment) -> Iterator[tuple[str, str | None]]:
    from .rocminfo_env import RERUN

    status = env.rocminfo
    if status is not None and status.code == "incomplete":
        yield status.message.removesuffix(f". {RERUN}"), RERUN


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
def _tool_unavailable(env: Environment) -> Found:
    from .absence import found_nothing

    status = env.rocminfo
    if status is not None and status.code in ("not-run", "timeout"):
        nothing = found_nothing(env, "rocminfo", status)  # not installed, and no AMD GPU
        yield (nothing, None, "info") if nothing else (status.message, None)


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
errors and devices KFD refused, with their count and the last occurrence. (A
GTT size that disagrees with TTM's is reported by `memory-config`.)
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
def _unreadable(env: Environment) -> Found:
    from .absence import no_amd_gpu

    for problem in env.problems:
        if problem.source == "dmesg" and no_amd_gpu(env):  # no GPU: nothing to look for there
            yield str(problem), None, "info"
        elif problem.source not in ("rocminfo", "hsa-override"):
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
                f"to let applications allocate more, set {ttm_param(env)} "
                "(`pytest-therock doctor --need GIB` gives the value)",
            )


@check(
    "gpu-memory",
    "info",
    "Can I prioritize VRAM usage over GTT?",
    """
On an APU the "VRAM" is a carve-out of RAM that the firmware reserves at boot, and
GTT is RAM the GPU maps on demand. Which one a process allocates from depends on
the driver: the carve-out before Linux 6.10; GTT from 6.10; from 6.15 the carve-out
when it is at least the GTT size (FAQ: "if your VRAM is larger than GTT, applications
will use VRAM"), else GTT. GTT stops at TTM's pages_limit, half of RAM by default.
This line says which pool applies, how much a process can allocate from it, and
the installed RAM (what the OS sees plus the carve-out). HIP's hipMemGetInfo may
report a smaller total than it then allocates (ROCm/ROCm#5444): this follows KFD.
`pytest-therock doctor --need GIB` gives the one change that reaches a size.
""",
)
def _gpu_memory(env: Environment, need: int | None) -> Found:
    if not any(g.is_apu for g in env.visible_gpus):
        return
    # The plan itself is quoted by memory-config or memory-below-need: one fix per situation.
    planned = machine_plan(env, need)
    hint = (
        None
        if need or (planned is not None and planned.change)
        else "`pytest-therock doctor --need GIB` gives the change for a size"
    )
    for gpu in env.visible_gpus:
        if gpu.is_apu:
            yield gpu_memory(env, gpu).describe(), hint


@check(
    "memory-config",
    "warning",
    "What should I do if I encounter memory allocation errors?",
    """
Settings that do not do what they seem: `amdgpu.gttsize` (deprecated since Linux
6.17; it changes what the driver reports, while allocations stop at TTM's
pages_limit, so the smaller of the two counts; the kernel logs "GTT size has been
set as X but TTM size has been set as Y, this is unusual"); a `ttm.pages_limit`
the packaged amdgpu-dkms driver does not read (it reads `amdttm.pages_limit`), or
an `amdttm.pages_limit` the in-kernel driver does not read; a large carve-out the
driver does not allocate from; a TTM pages_limit changed at runtime that KFD, which
took its limit when amdgpu loaded, does not follow (a process gets the smaller).
One diagnostic per machine, whose fix is the same
plan `pytest-therock doctor --need` prints: the exact pages_limit (4 KiB pages)
for the size you asked for, never above 90% of the RAM (AMD's amd-ttm refuses
more), carve-out first where it blocks.
""",
)
def _memory_config(env: Environment, need: int | None) -> Found:
    gpus = [g for g in env.visible_gpus if g.is_apu] or list(env.visible_gpus)
    if not gpus:
        return
    model = gpu_memory(env, gpus[0])
    name = model.ttm_param
    problems = []
    gttsize = env.param("amdgpu.gttsize")
    if model.gttsize_bytes is not None and gttsize is not None:
        problems.append(
            f"amdgpu.gttsize={gttsize.value.strip()} (MiB, {gttsize.origin}) is deprecated"
        )
    other = "ttm.pages_limit" if name.startswith("amdttm") else "amdttm.pages_limit"
    on_cmdline = {p.name: p.value for p in env.kernel_params if p.origin == "cmdline"}
    if other in on_cmdline and name not in on_cmdline:
        driver = "amdgpu-dkms driver" if name.startswith("amdttm") else "in-kernel driver"
        problems.append(f"{other}={on_cmdline[other]} is set but the {driver} reads {name}")
    log = env.kernel_log
    if log is not None and log.gtt_size_bytes and log.ttm_size_bytes:
        if log.gtt_size_bytes != log.ttm_size_bytes:
            problems.append(
                f"the kernel log says GTT size {fmt_bytes(log.gtt_size_bytes)} but TTM size "
                f"{fmt_bytes(log.ttm_size_bytes)}"
            )
    elif model.disagrees:
        problems.append(
            f"the driver's GTT size {fmt_bytes(model.total_bytes)} differs from TTM's limit "
            f"{fmt_bytes(model.limit_bytes)} ({model.limit_source})"
        )
    if model.kfd_conflict:
        problems.append(model.kfd_conflict)
    carve = model.vram_total_bytes
    hidden = model.is_apu and model.pool == "GTT" and carve is not None
    if (
        hidden
        and carve is not None
        and model.usable_bytes is not None
        and carve > model.usable_bytes
    ):
        by = model.driver or "the driver"
        problems.append(
            f"the {fmt_bytes(carve)} carve-out is larger than GTT, but {by} allocates from GTT"
        )
    if not problems:
        return
    kind = "gpu" if model.is_apu else "gtt"
    # The machine's one plan: for the larger of the need and what the settings ask for
    # (memory.intended_bytes: a set pages_limit, gttsize, a carve-out the driver hides).
    plan = machine_plan(env, need, kind)
    found = f"{model.gfx_target or model.label} can allocate {fmt_bytes(model.allocatable_bytes)}"
    message = "; ".join(problems) + f": {found} from {model.pool_name}"
    fix = plan.change if plan is not None else None  # a plan with nothing to change: no Fix
    if plan is not None and not plan.change and not plan.met:
        message += f" ({plan.why})"
    # (pages_limit lowered at runtime below KFD's limit: allocations stop at the live
    # value, which the plan keeps; nothing more to change, so no Fix of its own.)
    if model.gttsize_bytes is not None and (plan is None or plan.met):
        fix = "remove amdgpu.gttsize" + (f" ({plan.why})" if plan else f" and set {name}")
    elif (
        plan is not None
        and plan.pages_limit is None
        and model.system_memory_bytes is None
        and _pages(on_cmdline.get(other))
        and not need
    ):
        # The RAM is unknown, so no value of ours: the one the user chose, where it is read.
        pages = _pages(on_cmdline.get(other)) or 0
        drop = " and remove amdgpu.gttsize" if model.gttsize_bytes is not None else ""
        size = fmt_bytes(pages * PAGE)
        fix = f"set {name}={pages} ({size}), the value given to {other}{drop}"
    yield message, fix


def _pages(value: str | None) -> int | None:
    text = (value or "").strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) < 16 else None


MEMORY_BELOW_NEED = Check(
    "memory-below-need",
    "warning",
    "What should I do if I encounter memory allocation errors?",
    """
Tests marked requires_gpu_memory_gb(n) or requires_gtt_gb(n), or `pytest-therock
doctor --need n`, ask for n GiB. When the GPU cannot allocate that much, this says
how much it can, from which pool, and gives the plan: the single change that
reaches n (exact pages_limit in 4 KiB pages, carve-out first where it blocks, a
kernel upgrade where the kernel hides the larger pool), or why none can.
""",
    lambda env, need: iter(()),  # reported where the need is known: summary, doctor --need
)
CHECKS[MEMORY_BELOW_NEED.code] = MEMORY_BELOW_NEED


MEMORY_UNKNOWN = Check(
    "memory-unknown",
    "warning",
    "What should I do if I encounter memory allocation errors?",
    """
Tests marked requires_gpu_memory_gb(n) or requires_gtt_gb(n), or `pytest-therock
doctor --need n`, ask for n GiB, and how much a GPU can allocate is unknown: its
size could not be read (no DRM card for the GPU, so no mem_info_vram_total or
mem_info_gtt_total; an unreadable file; an unknown TTM limit). Neither enough nor
too little is established, so nothing is planned; the line says what is missing.
`amd-smi static` or `rocm-smi --showmeminfo vram gtt` shows the sizes on the machine
(`pytest-therock doctor` runs them; `pytest-therock snapshot` records them).
""",
    lambda env, need: iter(()),  # reported where the need is known: summary, doctor --need
)
CHECKS[MEMORY_UNKNOWN.code] = MEMORY_UNKNOWN
_FIND_OUT = "`amd-smi static` or `rocm-smi --showmeminfo vram gtt` on the machine shows it"


def _unknown_why(m: GpuMemory, kind: str) -> str:
    """What is missing for ``m``'s allocatable size (``kind`` as for :func:`memory_below_need`)."""
    if kind == "gpu" and m.pool == "unknown":
        return f"pool unknown: {m.pool_reason}"
    if kind == "gpu" and m.pool == "VRAM":
        return m.vram_source.removeprefix("unknown: ")
    if m.limit_bytes is None:
        return f"TTM limit unknown: {m.limit_why}"
    return f"GTT size: {m.gtt_source}"


def memory_below_need(env: Environment, need: int, kind: str = "gpu") -> Diagnostic | None:
    """What a session's tests (or the user) need, against what the GPUs allow, with the plan.

    ``kind``: ``"gpu"`` (from whichever pool applies) or ``"gtt"``. None when met.
    When a GPU's size is unknown, "below" is not established: ``memory-unknown`` says
    what is missing (and the plan, when one reaches ``need`` whatever the size is).
    """
    models = [gpu_memory(env, g) for g in env.visible_gpus]
    sizes = [(m.allocatable_bytes if kind == "gpu" else m.usable_bytes) for m in models]
    plan = machine_plan(env, need, kind)
    if plan is None or any(s is not None and s >= need for s in sizes):
        return None
    what = "GPU memory" if kind == "gpu" else "GTT"
    if any(s is None for s in sizes):
        unknown = [
            f"how much {m.gfx_target or m.label} can allocate"
            + (f" from {m.pool_name}" if kind == "gpu" and m.pool != "unknown" else "")
            + f" is unknown ({_unknown_why(m, kind)})"
            for s, m in zip(sizes, models, strict=True)
            if s is None
        ]
        known = [
            f"{m.gfx_target or m.label} can allocate {fmt_bytes(s)}"
            for s, m in zip(sizes, models, strict=True)
            if s is not None
        ]
        message = f"{fmt_bytes(need)} of {what} needed; " + "; ".join(
            dict.fromkeys(unknown + known)
        )
        fix = plan.change if plan.change and plan.possible else _FIND_OUT
        return Diagnostic(MEMORY_UNKNOWN.code, MEMORY_UNKNOWN.severity, message, fix)
    # The GPU the plan is about is the one the message names; the others follow.
    found = [
        f"{m.gfx_target or m.label} can allocate {fmt_bytes(s)}"
        + (f" from {m.pool_name}" if kind == "gpu" else "")
        for s, m in zip(sizes, models, strict=True)
    ]
    first = next((i for i, m in enumerate(models) if m.gfx_target == plan.gfx_target), 0)
    found.insert(0, found.pop(first))
    message = f"{fmt_bytes(need)} of {what} needed; " + "; ".join(dict.fromkeys(found))
    if not plan.change:
        message += f" ({plan.why})"
    settings = machine_plan(env, None, kind)  # what memory-config quotes without a need
    if plan.change and settings is not None and settings.change not in (None, plan.change):
        message += (
            f" (this plan replaces the one for the {fmt_bytes(settings.need_bytes)} "
            "the settings ask for)"
        )
    return Diagnostic(
        MEMORY_BELOW_NEED.code,
        MEMORY_BELOW_NEED.severity,
        message,
        f"on {plan.gfx_target}: {plan.change}" if plan.change and len(models) > 1 else plan.change,
    )


__all__ = ["PAGE", "Diagnostic", "memory_below_need", "run_checks", "target_bytes"]
