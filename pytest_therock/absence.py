"""No AMD GPU, or not known: the two are told apart once, here, for every output.

A machine that simply has no AMD GPU (a contributor's laptop, an NVIDIA box) is not
broken: no advice to load a driver or to fix rocminfo applies to it. A fact the plugin
could not read (a snapshot whose ``sys`` is a file, a directory this user may not
enter) is unknown, never "none" or "missing". The header, the diagnostics, skip
reasons, ``pytest-therock doctor`` and its ``--json`` all ask these functions, so they
agree.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .environment import Environment, Problem, ToolStatus

#: Where the KFD topology lists the GPU nodes (``drivers/gpu/drm/amd/amdkfd/kfd_topology.c``).
KFD_TOPOLOGY = "sys/class/kfd/kfd/topology/nodes"
KFD_RECORD = ".therock/kfd-access"
#: A snapshot without the KFD topology (WSL) lists its GPUs in its recorded rocminfo.
ROCMINFO_RECORD = ".therock/rocminfo.txt"
#: Where the installed ROCm's version is read (versions.py), short of ``$ROCM_PATH``.
ROCM_VERSION = "opt/rocm/.info/version"
#: A snapshot's record of TheRock's Python SDK (and torch), versions.py's other source.
PACKAGES_RECORD = ".therock/python-versions.json"
#: What rocminfo says on a machine whose kernel has no KFD (no AMD GPU, or amdgpu not
#: loaded): ``ROCk module is NOT loaded``; or it was not run, or is not installed.
#: Nothing here contradicts "no AMD GPU". Not its ``Unable to open /dev/kfd ... No such
#: file`` (code ``kfd-missing``): rocminfo gets there only past its module check, after
#: ``ROCk module version 6.10.5 is loaded`` (tests/realdata/rocminfo/error-kfd-no-such-
#: file-docker-without-device-kfd6.10.5.txt, ROCm/ROCm#4358): a container without the
#: device on a host with amdgpu.
ROCMINFO_NOTHING = frozenset({"not-run", "not-found", "rock-not-loaded"})
#: What amd-smi / rocm-smi say there: the driver is not loaded, or no GPU was found.
SMI_NOTHING = frozenset({"driver-not-initialized", "no-gpus"})


def _under(rel: str, source: str) -> bool:
    """``rel`` is ``source`` or lies below it."""
    return rel == source or rel.startswith(source.rstrip("/") + "/")


def hidden_by(env: Environment, rel: str) -> Problem | None:
    """The problem that made ``rel`` unreadable: ``rel`` itself, a directory on its way
    (``sys: not a directory``), or the root; None when none did."""
    for problem in env.problems:
        if problem.source == env.root or _under(rel, problem.source):
            return problem
    return None


def unknown_gpus(env: Environment) -> Problem | None:
    """Why the GPUs are unknown: no GPU was found, and the KFD topology's node list, a
    node in it (``Environment.unknown_nodes``: it exists but could not be read or no
    kernel prints it) or a snapshot's recorded rocminfo could not be read. None when the
    GPUs are known (found, or their absence read)."""
    if env.gpus:
        return None
    nodes = env.unknown_nodes[0] if env.unknown_nodes else None
    return hidden_by(env, KFD_TOPOLOGY) or nodes or hidden_by(env, ROCMINFO_RECORD)


def some_unknown(env: Environment) -> str | None:
    """With GPUs found and KFD nodes that could not be read: ``1 found, 1 unknown (could
    not read ...)``, naming the first such node; else None."""
    if not env.gpus or not env.unknown_nodes:
        return None
    first = env.unknown_nodes[0]
    return f"{len(env.gpus)} found, {len(env.unknown_nodes)} {unknown_line(first)}"


#: The fix when what a snapshot holds could not be read.
RECORD_AGAIN = "record the snapshot again with `pytest-therock snapshot` on the machine"


def unknown_fix(env: Environment) -> str:
    """The fix for GPUs that are unknown: record a snapshot again (its files are what
    could not be read), or, on a live machine, ask the ROCm runtime and the kernel log."""
    if env.root != "/":
        return RECORD_AGAIN
    return "run `rocminfo`; check `dmesg | grep -i kfd`"


def unknown_kfd(env: Environment) -> Problem | None:
    """Why ``/dev/kfd``'s access is unknown (``env.kfd.known`` is false): the snapshot's
    record, or a directory on the way to ``dev/kfd``, could not be read."""
    if env.kfd.known:
        return None
    return hidden_by(env, KFD_RECORD) or hidden_by(env, "dev/kfd")


def unknown_rocm(env: Environment) -> Problem | None:
    """Why the installed ROCm is unknown: none was found, and ``opt/rocm/.info/version``
    (or a snapshot's record of TheRock's Python SDK) could not be read."""
    found = env.versions
    if found is None or found.rocm:
        return None
    recorded = hidden_by(env, PACKAGES_RECORD) if env.root != "/" else None
    return hidden_by(env, ROCM_VERSION) or recorded


def could_not_read(problem: Problem) -> str:
    """``could not read sys: not a directory``."""
    return f"could not read {problem.source}: {problem.reason}"


def unknown_line(problem: Problem) -> str:
    """``unknown (could not read sys: not a directory)``."""
    return f"unknown ({could_not_read(problem)})"


def no_amd_gpu(env: Environment) -> bool:
    """The machine simply has no AMD GPU, as far as everything read says.

    No GPU found (KFD topology, rocminfo), no ``/dev/kfd`` (known to be absent), nothing
    about the KFD topology or ``/dev/kfd`` unreadable or rejected, and no tool that saw
    more (:data:`ROCMINFO_NOTHING`, :data:`SMI_NOTHING`). Not so for a machine whose KFD
    topology lists GPUs that cannot be used, or with ``/dev/kfd`` (the driver is loaded).
    """
    if env.gpus or env.unknown_nodes or env.kfd.present or not env.kfd.known:
        return False
    if any(
        p.source in (env.root, "rocminfo", "hsa-override")
        or _under(p.source, "sys/class/kfd")
        or _under(KFD_TOPOLOGY, p.source)
        for p in env.problems
    ):
        return False
    if env.rocminfo is not None and env.rocminfo.code not in ROCMINFO_NOTHING:
        return False
    return env.smi is None or env.smi.status.code in SMI_NOTHING


#: How rocminfo.py and smi.py quote the tool's own line: a Python repr.
_QUOTED = r"""(?:rocminfo said: |it printed )('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""


def tool_said(message: str) -> str | None:
    """The tool's own line quoted in a failure message (``rocminfo said: '...'``, amd-smi's
    and rocm-smi's ``it printed '...'``), as quoted; None when there is none."""
    found = re.search(_QUOTED, message)  # compiled on first use: not at start-up
    return found.group(1) if found else None


def found_nothing(env: Environment, tool: str, status: ToolStatus) -> str | None:
    """On a machine with no AMD GPU (:func:`no_amd_gpu`), what a tool's failure means:
    ``rocminfo found no GPU agents (it said 'ROCk module is NOT loaded, ...')``, without
    the advice for a machine that has one. None elsewhere, or for another failure."""
    nothing = ROCMINFO_NOTHING if tool == "rocminfo" else SMI_NOTHING
    if status.ok or status.code not in nothing or not no_amd_gpu(env):
        return None
    said = tool_said(status.message)
    what = "GPU agents" if tool == "rocminfo" else "AMD GPU"
    if status.code in ("not-run", "not-found"):
        return f"{status.message}; not needed on a machine without an AMD GPU"
    return f"{tool} found no {what}" + (f" (it said {said})" if said else "")


def describe_absence(env: Environment) -> str:
    """Why no AMD GPU is listed, for a skip reason (after "found"): ``no AMD GPU (no
    /dev/kfd)``, or what could not be read (``unknown GPUs (could not read sys: not a
    directory)``)."""
    gpus = unknown_gpus(env)
    if gpus is not None:
        return f"unknown GPUs ({could_not_read(gpus)})"
    kfd = unknown_kfd(env)
    if kfd is not None:
        return f"no AMD GPU (/dev/kfd {unknown_line(kfd)})"
    if not env.kfd.present and not env.wsl:
        return "no AMD GPU (no /dev/kfd)"
    return "no AMD GPU"
