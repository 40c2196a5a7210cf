"""The text the plugin prints: the session header and ``pytest-therock doctor``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .diagnostics import Diagnostic
from .environment import Environment, Gpu, fmt_bytes
from .memory import gpu_memory
from .printable import printable

if TYPE_CHECKING:
    from .versions import Versions


def gpu_line(env: Environment, gpu: Gpu) -> str:
    info = gpu_memory(env, gpu)
    parts = [gpu.label]
    if gpu.compute_units:
        parts.append(f"{gpu.compute_units} CU")
    parts.append("APU" if gpu.is_apu else "discrete")
    vram = "carve-out" if gpu.is_apu else "VRAM"
    parts.append(f"{vram} {fmt_bytes(info.vram_total_bytes)}")
    if info.total_bytes is not None and info.used_bytes is not None:
        parts.append(f"GTT {fmt_bytes(info.used_bytes)} used of {fmt_bytes(info.total_bytes)}")
    else:
        parts.append(f"GTT {fmt_bytes(info.total_bytes)}")
    if gpu.is_apu:
        parts.append(f"allocatable {fmt_bytes(info.allocatable_bytes)} from {info.pool_name}")
    elif info.total_bytes is not None and info.usable_bytes not in (None, info.total_bytes):
        parts.append(f"usable {fmt_bytes(info.usable_bytes)}")
    return ", ".join(parts)


def gpu_details(env: Environment, gpu: Gpu) -> str:
    return (
        f"node {gpu.node_id}, PCI {gpu.pci_slot or '?'}, {gpu.card or 'no DRM card'}, "
        f"device 0x{gpu.device_id:04x}, {gpu.uuid or 'no unique id'}"
    )


def summary_lines(env: Environment, diagnostics: list[Diagnostic], verbose: int = 0) -> list[str]:
    """One line per fact; ``verbose`` adds details and the fixes. Machine text in them
    (GPU names, tool messages, paths) is made :func:`printable`."""
    from .absence import (
        found_nothing,
        some_unknown,
        unknown_gpus,
        unknown_kfd,
        unknown_line,
        unknown_rocm,
    )

    lines = []
    visible = env.visible_gpus
    if env.root != "/":
        lines.append(f"root: {env.root}")
    # What could not be read is unknown, said once: on its fact's line, not again as
    # a source-unreadable line.
    gpus_unknown, kfd_unknown = unknown_gpus(env), unknown_kfd(env)
    quoted = {str(p) for p in (gpus_unknown, kfd_unknown) if p is not None}
    both = gpus_unknown is not None and gpus_unknown == kfd_unknown  # `.therock` a file
    if not env.gpus:
        what = "GPUs, /dev/kfd" if both else "GPUs"
        lines.append(
            f"{what}: {unknown_line(gpus_unknown)}" if gpus_unknown else "GPUs: none found"
        )
    partly = some_unknown(env)
    if partly is not None:  # GPUs found, and nodes that may be more of them
        lines.append(f"GPUs: {partly}")
        quoted.add(str(env.unknown_nodes[0]))
    if verbose:
        for index, gpu in enumerate(visible):
            lines.append(f"GPU {index}: {gpu_line(env, gpu)}")
            lines.append(f"  {gpu_details(env, gpu)}")
    else:  # identical GPUs share a line: an 8-GPU runner stays readable
        described = [gpu_line(env, gpu) for gpu in visible]
        start = 0
        for index, text in enumerate(described):
            if index + 1 < len(described) and described[index + 1] == text:
                continue
            first = f"GPU {start}" if start == index else f"GPUs {start}-{index}"
            count = f" x{index - start + 1}" if index > start else ""
            lines.append(f"{first}: {text}{count}")
            start = index + 1
    hidden = len(env.gpus) - len(visible)
    if hidden:
        lines.append(f"hidden: {hidden} GPU(s) by the visibility variables")
    if env.system_memory_bytes is not None or visible:
        gtt = gpu_memory(env, visible[0]) if visible else None
        ram = f"RAM {fmt_bytes(env.system_memory_bytes)}"
        if gtt is not None and gtt.is_apu and env.system_memory_bytes is not None:
            ram += f" (OS), installed {fmt_bytes(gtt.installed_ram_bytes)}"
        if gtt is not None and not env.wsl:
            ram += f"; TTM limit {fmt_bytes(gtt.limit_bytes)} ({gtt.limit_why})"
        lines.append(ram)
    settings = [f"{p.name}={p.value} ({p.origin})" for p in env.kernel_params]
    if settings and (verbose or visible):
        lines.append("settings: " + ", ".join(settings))
    kfd = env.kfd
    access = "rw" if kfd.usable else ("missing" if not kfd.present else "no access")
    if not kfd.known:
        access = unknown_line(kfd_unknown) if kfd_unknown else "unknown"
    if not both:  # else said on the GPUs line
        lines.append("WSL: /dev/dxg" if env.wsl and not kfd.present else f"/dev/kfd: {access}")
    if env.rocminfo is not None and env.rocminfo.ok and verbose:
        lines.append(env.rocminfo.message)
    found = env.versions
    rocm_unknown = unknown_rocm(env)
    if found is not None and verbose:
        parts = [f"ROCm {found.rocm} ({found.rocm_source})" if found.rocm else "ROCm: none found"]
        if rocm_unknown is not None and str(rocm_unknown) in quoted:  # its reason: above
            parts[0] = f"ROCm: unknown (could not read {rocm_unknown.source}, as above)"
        elif rocm_unknown is not None:  # said here, not again as source-unreadable
            parts[0] = f"ROCm: {unknown_line(rocm_unknown)}"
            quoted.add(str(rocm_unknown))
        parts += [f"torch {found.torch}"] if found.torch else []
        parts += [f"kernel {found.kernel}"] if found.kernel else []
        parts += [f"amdgpu {found.amdgpu}"] if found.amdgpu else []
        parts += (
            [f"TheRock SDK for {', '.join(found.build_targets)}"] if found.build_targets else []
        )
        lines.append("versions: " + "; ".join(parts))
    smi = env.smi
    if smi is not None and smi.status.ok:
        parts = [f"{smi.tool} {smi.tool_version or ''}".strip()]
        parts += [f"ROCm {smi.rocm_version}"] if smi.rocm_version else []
        parts += [f"amdgpu {smi.driver_version}"] if smi.driver_version else []
        lines.append(", ".join(parts))
    elif smi is not None and verbose:
        nothing = found_nothing(env, smi.tool, smi.status)  # no AMD GPU: no driver advice
        lines.append(f"{smi.tool}: {nothing or smi.status.message}")
    if env.env_vars:
        lines.append("env: " + " ".join(f"{k}={v!r}" for k, v in env.env_vars.items()))
    for diag in diagnostics:
        if diag.code == "source-unreadable" and diag.message in quoted:
            continue
        lines.append(str(diag) if verbose else f"{diag.severity}[{diag.code}]: {diag.message}")
    return [printable(line) for line in lines]


def junit_properties(
    env: Environment, diagnostics: list[Diagnostic], versions: Versions
) -> list[tuple[str, str]]:
    """Test-suite properties: what the run ran on, for CI dashboards."""
    from .absence import unknown_gpus

    gpus = env.visible_gpus
    memory = [gpu_memory(env, g) for g in gpus]
    none = "unknown" if unknown_gpus(env) is not None else "none"  # as the header says
    props = [
        ("therock_gpus", ",".join(g.gfx_target or "unknown" for g in gpus) or none),
        ("therock_gpu_names", ",".join(g.marketing_name or "" for g in gpus)),
        ("therock_vram_bytes", ",".join(str(g.vram_total_bytes or "") for g in gpus)),
        ("therock_gtt_usable_bytes", ",".join(str(m.usable_bytes or "") for m in memory)),
        ("therock_gpu_memory_bytes", ",".join(str(m.allocatable_bytes or "") for m in memory)),
        ("therock_memory_pool", ",".join(m.pool for m in memory)),
        ("therock_system_memory_bytes", str(env.system_memory_bytes or "")),
        ("therock_rocm_version", versions.rocm or ""),
        ("therock_torch_version", versions.torch or ""),
        ("therock_diagnostics", ",".join(f"{d.severity}:{d.code}" for d in diagnostics)),
    ]
    return [(name, printable(value)) for name, value in props]


def header_lines(env: Environment, diagnostics: list[Diagnostic], verbose: int) -> list[str]:
    return [f"therock: {line}" for line in summary_lines(env, diagnostics, verbose)]
