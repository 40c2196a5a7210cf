"""amd-smi (or rocm-smi) as a source of driver and tool versions and memory usage."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from . import tools
from .environment import Gpu, Problem, SmiSummary, ToolStatus
from .smi import (
    SmiError,
    SmiGpu,
    SmiVersions,
    parse_amdsmi_gpus,
    parse_amdsmi_version,
    parse_rocmsmi_gpus,
)
from .sysroot import Root

AMDSMI_DEFAULT = ("amd-smi",)
AMDSMI_VERSION = ("amd-smi", "version")
AMDSMI_STATIC = ("amd-smi", "static", "--json")
AMDSMI_MEMORY = ("amd-smi", "metric", "--mem-usage", "--json")
ROCMSMI_MEMORY = ("rocm-smi", "--showmeminfo", "vram", "gtt", "--json")


def consult_smi(
    root: Root, environ: Mapping[str, str], timeout: float
) -> tuple[SmiSummary | None, tuple[SmiGpu, ...]]:
    """amd-smi's versions and GPUs, else rocm-smi's memory; None when neither answers.

    amd-smi's GPU outputs (default view, ``static``, ``metric --mem-usage``) are read
    whenever one is there: a snapshot may hold them without ``amd-smi version``.
    """
    version = tools.run(root, AMDSMI_VERSION, timeout=timeout, environ=environ)
    runs = []
    if version.output.strip() or not root.is_live:  # live: no amd-smi, no more runs
        argvs = (AMDSMI_DEFAULT, AMDSMI_STATIC, AMDSMI_MEMORY)
        runs = [tools.run(root, argv, timeout=timeout, environ=environ) for argv in argvs]
    if version.output.strip() or any(run.output.strip() for run in runs):
        found: SmiVersions | None = None
        if version.output.strip():
            try:
                found = parse_amdsmi_version(version.output)
            except SmiError as exc:
                return SmiSummary(
                    "amd-smi", None, None, None, ToolStatus(False, exc.code, str(exc))
                ), ()
        elif runs[0].output.strip():
            try:  # the default view's header has the versions too
                found = parse_amdsmi_version(runs[0].output)
            except SmiError:
                found = None
        gpus: dict[int, SmiGpu] = {}
        cut: SmiError | None = None  # an output cut short: its GPUs are not taken
        for result in runs:
            try:
                for gpu in parse_amdsmi_gpus(result.output):
                    gpus[gpu.index] = _merge(gpus.get(gpu.index), gpu)
            except SmiError as exc:
                cut = cut or (exc if exc.code == "incomplete" else None)
                continue
        tool_version = found.tool_version if found else None
        status = ToolStatus(True, "ok", f"amd-smi {tool_version or '?'}")
        if cut is not None:
            status = ToolStatus(False, "incomplete", str(cut))
        summary = SmiSummary(
            "amd-smi",
            tool_version,
            found.rocm_version if found else None,
            found.driver_version if found else None,
            status,
        )
        return summary, tuple(gpus[i] for i in sorted(gpus))
    memory = tools.run(root, ROCMSMI_MEMORY, timeout=timeout, environ=environ)
    if not memory.output.strip():
        return None, ()
    try:
        listed = parse_rocmsmi_gpus(memory.output)
    except SmiError as exc:
        return SmiSummary("rocm-smi", None, None, None, ToolStatus(False, exc.code, str(exc))), ()
    status = ToolStatus(True, "ok", f"rocm-smi: {len(listed)} GPU(s)")
    return SmiSummary("rocm-smi", None, None, None, status), listed


def check_gpu_count(
    smi: SmiSummary | None, listed: tuple[SmiGpu, ...], gpus: list[Gpu], problems: list[Problem]
) -> SmiSummary | None:
    """The smi status, saying so (and a problem) when the tool lists another number of
    GPUs than the KFD topology (or rocminfo) found: one of them missed some."""
    if smi is None or not smi.status.ok or not listed or not gpus or len(listed) == len(gpus):
        return smi
    source = "the KFD topology" if all(g.source == "kfd" for g in gpus) else "rocminfo"
    said = f"{smi.tool} lists {len(listed)} GPU(s) but {source} lists {len(gpus)}"
    problems.append(Problem(smi.tool, said.removeprefix(f"{smi.tool} ")))
    return smi._replace(status=ToolStatus(False, "gpu-count-mismatch", said))


def _merge(old: SmiGpu | None, new: SmiGpu) -> SmiGpu:
    if old is None:
        return new
    changes = {f.name: getattr(new, f.name) for f in dataclasses.fields(new)}
    return dataclasses.replace(old, **{k: v for k, v in changes.items() if v is not None})


_MEMORY_FIELDS = (
    "vram_total_bytes",
    "vram_used_bytes",
    "vis_vram_total_bytes",
    "gtt_total_bytes",
    "gtt_used_bytes",
)


def fill_memory(gpus: list[Gpu], listed: tuple[SmiGpu, ...]) -> list[Gpu]:
    """Memory sizes sysfs did not give (VRAM, visible VRAM, GTT: totals and use), from
    the tool's GPUs in the same order; amd-smi's ``metric -m`` gives all of them."""
    if len(listed) != len(gpus):
        return gpus
    filled = []
    for gpu, smi in zip(gpus, listed, strict=True):
        values = {
            name: getattr(smi, name)
            for name in _MEMORY_FIELDS
            if getattr(gpu, name) is None and getattr(smi, name) is not None
        }
        name = gpu.marketing_name or smi.name
        filled.append(gpu._replace(marketing_name=name, **values))
    return filled
