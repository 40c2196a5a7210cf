"""amd-smi (or rocm-smi) as a source of driver and tool versions and memory usage."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from . import tools
from .environment import Gpu, SmiSummary, ToolStatus
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
    """amd-smi's versions and GPUs, else rocm-smi's memory; None when neither answers."""
    version = tools.run(root, AMDSMI_VERSION, timeout=timeout, environ=environ)
    if version.output.strip():
        try:
            found: SmiVersions = parse_amdsmi_version(version.output)
            status = ToolStatus(True, "ok", f"amd-smi {found.tool_version or '?'}")
        except SmiError as exc:
            return SmiSummary(
                "amd-smi", None, None, None, ToolStatus(False, exc.code, str(exc))
            ), ()
        gpus: dict[int, SmiGpu] = {}
        for argv in (AMDSMI_DEFAULT, AMDSMI_STATIC, AMDSMI_MEMORY):
            result = tools.run(root, argv, timeout=timeout, environ=environ)
            try:
                for gpu in parse_amdsmi_gpus(result.output):
                    gpus[gpu.index] = _merge(gpus.get(gpu.index), gpu)
            except SmiError:
                continue
        summary = SmiSummary(
            "amd-smi", found.tool_version, found.rocm_version, found.driver_version, status
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


def _merge(old: SmiGpu | None, new: SmiGpu) -> SmiGpu:
    if old is None:
        return new
    changes = {f.name: getattr(new, f.name) for f in dataclasses.fields(new)}
    return dataclasses.replace(old, **{k: v for k, v in changes.items() if v is not None})


def fill_memory(gpus: list[Gpu], listed: tuple[SmiGpu, ...]) -> list[Gpu]:
    """Memory sizes sysfs did not give, from the tool's GPUs in the same order."""
    if len(listed) != len(gpus):
        return gpus
    filled = []
    for gpu, smi in zip(gpus, listed, strict=True):
        values = {
            name: getattr(smi, name)
            for name in ("vram_total_bytes", "vram_used_bytes", "gtt_total_bytes", "gtt_used_bytes")
            if getattr(gpu, name) is None and getattr(smi, name) is not None
        }
        name = gpu.marketing_name or smi.name
        filled.append(dataclasses.replace(gpu, marketing_name=name, **values))
    return filled
