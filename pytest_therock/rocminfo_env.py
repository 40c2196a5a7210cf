"""rocminfo as a source of GPUs (WSL, snapshots) and as a cross-check of the KFD topology."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from . import tools
from .environment import Gpu, Problem, ToolStatus
from .rocminfo import Agent, RocminfoError, RocminfoReport, parse_rocminfo
from .sysroot import Root, SourceError

ROCMINFO = ("rocminfo",)


def run_rocminfo(
    root: Root,
    environ: Mapping[str, str],
    timeout: float,
    explicit: str | None = None,
    source: str | None = None,
) -> tuple[RocminfoReport | None, ToolStatus]:
    """Run (or replay) rocminfo and parse it; failures become a status, never an exception.

    ``explicit``: the rocminfo a setting names, and ``source`` that setting, named when
    the tool cannot be run (``cannot run /x/rocminfo (ini therock_rocminfo): ...``)."""
    result = tools.run(
        root, ROCMINFO, timeout=timeout, environ=environ, explicit=explicit, source=source
    )
    if result.returncode is not None and result.returncode < 0:  # killed by a signal
        known = _reported_failure(result.output)  # e.g. an assertion in the WSL thunk
        if known is not None:
            return None, known
        if "WSL environment detected" in result.output:  # no amdgpu module: no dmesg
            why = (
                f"{result.error}: the ROCm runtime crashed under WSL; check that the Windows "
                "driver (Adrenalin) is the one AMD lists for this ROCm for WSL release"
            )
        else:
            why = f"{result.error}: the ROCm runtime crashed; check `dmesg | grep -i amdgpu`"
        return None, ToolStatus(False, "crashed", why)
    if result.error is not None and not result.output.strip():
        code = "timeout" if "did not finish" in result.error else "not-run"
        return None, ToolStatus(False, code, result.error)
    try:
        report = parse_rocminfo(result.output)
    except RocminfoError as exc:
        return None, ToolStatus(False, exc.code, str(exc))
    failed = result.error is not None or result.returncode not in (0, None)
    why = result.error or f"exit status {result.returncode}"
    incomplete = report.incomplete_reason()
    if incomplete is not None:
        said = f" (rocminfo: {why})" if failed else ""
        return report, ToolStatus(False, "incomplete", f"{incomplete}{said}. {RERUN}")
    if failed:
        return report, ToolStatus(False, "failed", f"rocminfo listed agents but failed: {why}")
    return report, ToolStatus(True, "ok", f"rocminfo: {len(report.gpus)} GPU agent(s)")


RERUN = (
    "Run `rocminfo` again and keep its whole output, from the first line to `*** Done ***` "
    "(or record a new snapshot with `pytest-therock snapshot`)"
)


def _reported_failure(output: str) -> ToolStatus | None:
    """The failure rocminfo printed before a signal killed it, if it is one we know."""
    try:
        parse_rocminfo(output)
    except RocminfoError as exc:
        if exc.code not in ("empty", "no-agents", "unrecognised"):
            return ToolStatus(False, exc.code, str(exc))
    return None


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
    agents = report.gpus
    cpu_pools = [a.memory_bytes for a in report.agents if a.device_type == "CPU"]
    # The CPU agents' pools are the system RAM; a cut output may lack some of them.
    ram = (sum(p for p in cpu_pools if p) or None) if report.complete else None
    if not kfd_gpus:
        problems.extend(_chip_overrides(agents, root))
        if not report.complete:  # a cut output cannot say how many GPUs there are
            return [], status, None
        return [gpu_from_agent(a, i) for i, a in enumerate(agents)], status, ram
    by_node = {a.node: a for a in agents}
    overridden: dict[int | None, str | None] = {}  # node -> the KFD's own target
    merged = []
    for gpu in kfd_gpus:
        agent = by_node.get(gpu.node_id)
        if agent is not None and agent.gfx_target and gpu.gfx_target:
            if agent.gfx_target != gpu.gfx_target:
                problems.append(_kfd_override(gpu, agent))
                overridden[agent.node] = gpu.gfx_target
            gpu = gpu._replace(
                marketing_name=gpu.marketing_name or agent.marketing_name,
                is_apu=gpu.is_apu or agent.is_apu,
            )
        merged.append(gpu)
    # An overridden target is reported once, as an override, not again as a mismatch.
    runtime_targets = [overridden.get(a.node, a.gfx_target) for a in agents]
    kfd, seen = Counter(g.gfx_target for g in kfd_gpus), Counter(runtime_targets)
    if report.complete and kfd != seen:
        problems.append(
            Problem("rocminfo", f"lists {_count(seen)} but the KFD topology lists {_count(kfd)}")
        )
    return merged, status, ram


_OVERRIDE = "the target is overridden (HSA_OVERRIDE_GFX_VERSION)"


def _kfd_override(gpu: Gpu, agent: Agent) -> Problem:
    """The runtime lists another target than the kernel's for the same KFD node."""
    chip = f", PCI device 0x{gpu.device_id:04x}" if gpu.device_id else ""
    return Problem(
        "hsa-override",
        f"node {gpu.node_id}: the KFD topology says {gpu.gfx_target}{chip}, but the ROCm "
        f"runtime (rocminfo) lists {agent.gfx_target}: {_OVERRIDE}",
    )


def _chip_overrides(agents: tuple[Agent, ...], root: Root) -> list[Problem]:
    """GPU agents whose target is not one AMD lists for their PCI device id: rocminfo's
    ``Chip ID``, else ``PCI_ID`` in the uevent of the DRM card at the agent's BDFID."""
    from .pci_targets import chip_targets

    found = []
    for index, agent in enumerate(agents):
        chip = agent.chip_id or _uevent_device_id(root, agent)
        native = chip_targets(chip)
        if native and agent.gfx_target and agent.gfx_target not in native:
            name = f" ({agent.marketing_name})" if agent.marketing_name else ""
            found.append(
                Problem(
                    "hsa-override",
                    f"GPU {index}{name}: rocminfo lists {agent.gfx_target}, but its chip (PCI "
                    f"device 0x{chip or 0:04x}) is a {' or '.join(sorted(native))}: "
                    f"{_OVERRIDE}",
                )
            )
    return found


def _uevent_device_id(root: Root, agent: Agent) -> int | None:
    """``PCI_ID=1002:15BF`` of the DRM card at the agent's PCI slot (the kernel's
    ``pci_uevent()`` in drivers/pci/pci-driver.c writes ``PCI_ID=%04X:%04X``)."""
    slot = gpu_from_agent(agent, 0).pci_slot
    if slot is None:
        return None
    for card in root.listdir("sys/class/drm"):
        if not (card.startswith("card") and card[4:].isdigit()):
            continue
        try:
            uevent = dict(
                line.partition("=")[::2]
                for line in root.read_text(f"sys/class/drm/{card}/device/uevent").splitlines()
            )
        except SourceError:
            continue
        vendor, _, device = uevent.get("PCI_ID", "").partition(":")
        if uevent.get("PCI_SLOT_NAME") == slot and vendor.upper() == "1002":
            return int(device, 16) if _is_hex(device) and len(device) <= 4 else None
    return None


def _count(targets: Counter[str | None]) -> str:
    return ", ".join(f"{t or '?'} x{n}" for t, n in sorted(targets.items(), key=str)) or "no GPU"
