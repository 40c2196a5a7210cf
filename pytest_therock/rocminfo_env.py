"""rocminfo as a source of GPUs (WSL, snapshots) and as a cross-check of the KFD topology."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping

from . import tools
from .environment import Gpu, Problem, ToolStatus
from .rocminfo import Agent, RocminfoError, RocminfoReport, parse_rocminfo
from .sysroot import Root

ROCMINFO = ("rocminfo",)


def run_rocminfo(
    root: Root, environ: Mapping[str, str], timeout: float, explicit: str | None = None
) -> tuple[RocminfoReport | None, ToolStatus]:
    """Run (or replay) rocminfo and parse it; failures become a status, never an exception."""
    result = tools.run(root, ROCMINFO, timeout=timeout, environ=environ, explicit=explicit)
    if result.returncode is not None and result.returncode < 0:  # killed by a signal
        why = f"{result.error}: the ROCm runtime crashed; check `dmesg | grep -i amdgpu`"
        return None, ToolStatus(False, "crashed", why)
    if result.error is not None and not result.output.strip():
        code = "timeout" if "did not finish" in result.error else "not-run"
        return None, ToolStatus(False, code, result.error)
    try:
        report = parse_rocminfo(result.output)
    except RocminfoError as exc:
        return None, ToolStatus(False, exc.code, str(exc))
    if result.error is not None or result.returncode not in (0, None):
        why = result.error or f"exit status {result.returncode}"
        return report, ToolStatus(False, "failed", f"rocminfo listed agents but failed: {why}")
    return report, ToolStatus(True, "ok", f"rocminfo: {len(report.gpus)} GPU agent(s)")


def gpu_from_agent(agent: Agent, index: int) -> Gpu:
    """A GPU as rocminfo describes it; its memory pool is what KFD reports (memory.py)."""
    bus = None
    if agent.bdfid is not None:
        b, devfn = divmod(agent.bdfid, 256)
        bus = f"0000:{b:02x}:{devfn >> 3:02x}.{devfn & 7:x}"
    uuid = agent.uuid or ""
    unique = int(uuid[4:], 16) if uuid.startswith("GPU-") and _is_hex(uuid[4:]) else None
    pool = agent.memory_bytes
    return Gpu(
        node_id=agent.node if agent.node is not None else index,
        gfx_target=agent.gfx_target,
        gfx_target_version=None,
        vendor_id=0x1002,
        device_id=agent.chip_id or 0,
        compute_units=agent.compute_units,
        simd_count=(agent.compute_units or 0) * (agent.simds_per_cu or 0),
        wavefront_size=agent.wavefront_size,
        unique_id=unique,
        pci_slot=bus,
        drm_render_minor=None,
        card=None,
        is_apu=agent.is_apu,
        marketing_name=agent.marketing_name,
        source="rocminfo",
        vram_total_bytes=None if agent.is_apu else pool,
        kfd_memory_bytes=pool,
    )


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


def consult_rocminfo(
    root: Root,
    kfd_gpus: list[Gpu],
    problems: list[Problem],
    environ: Mapping[str, str],
    timeout: float,
) -> tuple[list[Gpu], ToolStatus, int | None]:
    """GPUs from rocminfo where the KFD topology has none; else the KFD GPUs, cross-checked."""
    report, status = run_rocminfo(root, environ, timeout)
    if report is None:
        return kfd_gpus, status, None
    cpu_pools = [a.memory_bytes for a in report.agents if a.device_type == "CPU"]
    ram = sum(p for p in cpu_pools if p) or None  # the CPU agents' pools are the system RAM
    agents = report.gpus
    if not kfd_gpus:
        return [gpu_from_agent(a, i) for i, a in enumerate(agents)], status, ram
    kfd = Counter(g.gfx_target for g in kfd_gpus)
    seen = Counter(a.gfx_target for a in agents)
    if kfd != seen:
        problems.append(
            Problem("rocminfo", f"lists {_count(seen)} but the KFD topology lists {_count(kfd)}")
        )
    by_node = {a.node: a for a in agents}
    merged = []
    for gpu in kfd_gpus:
        agent = by_node.get(gpu.node_id)
        if agent is not None and agent.gfx_target == gpu.gfx_target:
            gpu = dataclasses.replace(
                gpu,
                marketing_name=gpu.marketing_name or agent.marketing_name,
                is_apu=gpu.is_apu or agent.is_apu,
            )
        merged.append(gpu)
    return merged, status, ram


def _count(targets: Counter[str | None]) -> str:
    return ", ".join(f"{t or '?'} x{n}" for t, n in sorted(targets.items(), key=str)) or "no GPU"
