"""Build the :class:`Environment` from a filesystem root, without initialising HIP."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .environment import (
    OVERRIDE_VARIABLES,
    VISIBILITY_VARIABLES,
    Environment,
    Gpu,
    KernelParam,
    KfdAccess,
    Problem,
)
from .parsing import (
    BANK_BOUNDS,
    MAX_DIGITS,
    MAX_MEMORY_BYTES,
    NODE_BOUNDS,
    NODE_MINIMUMS,
    gfx_target_name,
    implausible,
    not_unsigned,
    parse_cmdline,
    parse_int,
    parse_kfd_access,
    parse_properties,
)

if TYPE_CHECKING:
    from .kernel_log import KernelLogFacts
    from .versions import Versions
from .sysroot import MAX_TOOL_OUTPUT, RECORD_DIR, Root, SourceError, blocked, os_reason

KFD_NODES = "sys/class/kfd/kfd/topology/nodes"
SMI_RECORDS = (
    "amd-smi",
    "amd-smi-version",
    "amd-smi-static",
    "amd-smi-metric-mem-usage",
    "rocm-smi-showmeminfo",
)
DRM = "sys/class/drm"
AMD_VENDOR_ID = 0x1002
#: Module parameters that shape GPU memory, read live from /sys/module.
MODULE_PARAMS = (
    "amdgpu/gttsize",
    "amdgpu/gartsize",
    "amdgpu/vramlimit",
    "ttm/pages_limit",
    "ttm/page_pool_size",
    "amdttm/pages_limit",
    "amdttm/page_pool_size",
)
#: Command-line prefixes worth keeping (everything else is not ours).
CMDLINE_PREFIXES = ("amdgpu.", "ttm.", "amdttm.", "amdkfd.")
DRM_MEMORY = (
    "vram_total",
    "vram_used",
    "vis_vram_total",
    "gtt_total",
    "gtt_used",
)
#: Integrated GPUs (APUs) by gfx target; MI300A shares gfx942 with the discrete MI300X.
APU_TARGETS = frozenset(
    [
        "gfx801",
        "gfx902",
        "gfx909",
        "gfx90c",
        "gfx1013",
        "gfx1033",
        "gfx1035",
        "gfx1036",
        "gfx1103",
        "gfx1150",
        "gfx1151",
        "gfx1152",
        "gfx1153",
    ]
)
APU_DEVICE_IDS = frozenset({0x74A0})  # Instinct MI300A


def detect(
    root: Root | str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    run_tools: bool = False,
    timeout: float = 30.0,
) -> Environment:
    """Detect everything the plugin reports (public as ``pytest_therock.detect_environment``).

    ``root``: this machine (None, ``""`` or ``"/"``), or a snapshot directory, as a
    :class:`Root`, a str or a path-like. ``environ`` (default ``os.environ``) gives the
    visibility variables and ``$ROCM_PATH``. Never raises for a bad source: what cannot
    be read is a :class:`Problem` in ``problems``; raises TypeError for a ``root`` of
    another type.

    rocminfo is consulted when a snapshot recorded it, under WSL (no KFD topology),
    or on a live machine when ``run_tools`` asks for it (``pytest-therock doctor``).
    """
    if root is None or (isinstance(root, str) and not root):
        root = Root()
    elif isinstance(root, (str, os.PathLike)):
        root = Root(root)
    elif not isinstance(root, Root):
        raise TypeError(
            "detect_environment: root must be a directory (str or path-like) or a Root, "
            f"got {type(root).__name__}"
        )
    environ = os.environ if environ is None else environ
    problems: list[Problem] = []
    closed = None if root.is_live else _closed(root)
    if closed is not None:  # one line, not one for each file that cannot be read
        problems.append(Problem(str(root.path), closed))
        return Environment(
            root=str(root.path),
            gpus=(),
            system_memory_bytes=None,
            page_size=4096,
            kernel_params=(),
            kfd=KfdAccess(False, False, False),
            problems=tuple(problems),
        )
    unknown_nodes: list[Problem] = []
    gpus = _kfd_gpus(root, problems, unknown_nodes)
    wsl = root.exists("dev/dxg")
    status = None
    ram = None
    recorded = not root.is_live and root.exists(f"{RECORD_DIR}/rocminfo.txt")
    if not (root.is_live or recorded):  # `.therock` a file: the record is unknown, not absent
        stop = blocked(root, f"{RECORD_DIR}/rocminfo.txt")
        problems.extend([Problem(stop.path, stop.reason)] if stop is not None else [])
    if recorded or (root.is_live and (run_tools or (wsl and not gpus))):
        from .rocminfo_env import consult_rocminfo

        gpus, status, ram = consult_rocminfo(root, gpus, problems, environ, timeout)
    slots = card_slots(root, problems) if gpus else {}
    gpus = [_with_drm(root, gpu, problems, slots, only_gpu=len(gpus) == 1) for gpu in gpus]
    kernel_log = _kernel_log(root, run_tools, timeout, problems)
    if kernel_log is not None and kernel_log.unjoined_lines:
        problems.append(
            Problem(
                "kernel log",
                f"{kernel_log.unjoined_lines} line(s) carry no timestamp and no wrap width "
                "explains them: the log looks wrapped (a terminal paste?), and an event "
                "split across lines may be missed. Paste it from `sudo dmesg > dmesg.txt`",
            )
        )
    smi = None
    if run_tools or any(root.exists(f"{RECORD_DIR}/{name}.txt") for name in SMI_RECORDS):
        from .smi_env import check_gpu_count, consult_smi, fill_memory

        smi, listed = consult_smi(root, environ, timeout)
        smi = check_gpu_count(smi, listed, gpus, problems)
        gpus = fill_memory(gpus, listed)
    # RAM with or without a GPU (a CPU-only runner's hooks ask for it too): live, one
    # sysconf call; a snapshot's procfs through psutil. Without a GPU a snapshot that did
    # not record /proc/meminfo leaves it unknown without a problem line (the header
    # stays one line); one that cannot be read is still said.
    kfd_ram = _kfd_ram(root, problems)
    quiet = ram is not None or kfd_ram is not None or not gpus
    ram = _system_memory(root, problems, quiet=quiet) or ram or kfd_ram
    versions = _versions(root, environ, problems) if run_tools or not root.is_live else None
    return Environment(
        root=str(root.path),
        gpus=tuple(gpus),
        system_memory_bytes=ram,
        page_size=os.sysconf("SC_PAGE_SIZE") if root.is_live else 4096,
        kernel_params=_kernel_params(root, problems, kernel_log),
        kfd=kfd_access(root, problems),
        env_vars={k: environ[k] for k in VISIBILITY_VARIABLES + OVERRIDE_VARIABLES if k in environ},
        problems=tuple(dict.fromkeys(problems)),  # a directory that blocks many files: once
        unknown_nodes=tuple(dict.fromkeys(unknown_nodes)),
        ttm_module="amdttm" if root.is_dir("sys/module/amdttm") else "ttm",
        wsl=wsl,
        rocminfo=status,
        kernel_log=kernel_log,
        smi=smi,
        versions=versions,
    )


def _closed(root: Root) -> str | None:
    """Why a snapshot root cannot be read at all (missing, not a directory, not
    enterable by this user, not a machine), or None."""
    try:
        if not os.path.isdir(root.path):
            return "not a directory" if os.path.lexists(root.path) else "missing"
    except OSError as exc:
        return os_reason(exc)
    if not os.access(root.path, os.R_OK | os.X_OK):
        return "permission denied (cannot list or enter it)"
    from .sysroot import not_a_machine  # the rule pytest, doctor, diff and fleet refuse by

    return not_a_machine(str(root.path))


def _versions(root: Root, environ: Mapping[str, str], problems: list[Problem]) -> Versions:
    from .versions import detect_versions

    return detect_versions(root, environ, problems)


def _kernel_log(
    root: Root, run_tools: bool, timeout: float, problems: list[Problem]
) -> KernelLogFacts | None:
    """The kernel log, as a snapshot recorded it or (``run_tools``) as ``dmesg`` prints it."""
    if not (run_tools or root.exists(f"{RECORD_DIR}/dmesg.txt")):
        return None
    from .kernel_log import scan_kernel_log

    if not root.is_live:
        try:
            text = root.read_text(f"{RECORD_DIR}/dmesg.txt", MAX_TOOL_OUTPUT)
        except SourceError:
            return None
        return scan_kernel_log(text)
    if not run_tools:
        return None
    from .sysroot import run_tool

    result = run_tool(["dmesg"], timeout)
    if not result.ok:  # often: not permitted without root (kernel.dmesg_restrict)
        said = result.error or (result.output.strip().splitlines() or ["no output"])[-1]
        problems.append(Problem("dmesg", f"kernel log not read ({said[:120]}); try `sudo dmesg`"))
        return None
    return scan_kernel_log(result.output)


def _entries(root: Root, rel: str, problems: list[Problem]) -> list[str]:
    """A directory's entries; one that exists but cannot be listed is a problem."""
    try:
        return root.entries(rel)
    except SourceError as exc:
        problems.append(Problem(exc.path, exc.reason))
        return []


def _kfd_gpus(root: Root, problems: list[Problem], unknown: list[Problem]) -> list[Gpu]:
    """GPU nodes of the KFD topology. A node that exists but cannot be read, or whose
    properties no kernel would print (:data:`~pytest_therock.parsing.NODE_BOUNDS`), is a
    problem, not a GPU, and is also added to ``unknown``: it may be a GPU, so the GPUs are
    unknown, never "none". So is an entry the kernel never makes: it names each node
    ``"%d"`` of its id (``kobject_init_and_add(..., "%d", id)`` in kfd_build_sysfs_node_entry,
    drivers/gpu/drm/amd/amdkfd/kfd_topology.c, torvalds/linux)."""
    gpus: list[Gpu] = []
    nodes = []
    for name in _entries(root, KFD_NODES, problems):
        if name.isascii() and name.isdigit() and len(name) <= MAX_DIGITS:
            nodes.append(name)
        else:
            utf8 = name.encode(errors="surrogateescape").decode(errors="replace") == name
            named = "not a KFD node (the kernel names them 0, 1, ...)"
            named = named if utf8 else f"a name that is not UTF-8, {named}"
            _unknown_node(Problem(f"{KFD_NODES}/{name}", named), problems, unknown)
    for node in sorted(nodes, key=int):
        rel = f"{KFD_NODES}/{node}/properties"
        try:
            text = root.read_text(rel)
        except SourceError as exc:
            _unknown_node(Problem(exc.path, exc.reason), problems, unknown)
            continue
        props = parse_properties(text)
        if text and not text.endswith("\n"):
            problems.append(Problem(rel, "cut short (no final newline): node half-written?"))
        unread = not_unsigned(text, ("simd_count",))
        if unread is None and "simd_count" not in props:
            unread = "incomplete (no simd_count): node half-written?"
        if unread is not None:
            _unknown_node(Problem(rel, unread), problems, unknown)
            continue
        if props["simd_count"] == 0:
            continue  # a CPU node
        if props.get("vendor_id", AMD_VENDOR_ID) != AMD_VENDOR_ID:
            continue
        why = (
            not_unsigned(text, (*NODE_BOUNDS, "local_mem_size"))
            or implausible(props, NODE_BOUNDS, NODE_MINIMUMS)
            or _undecodable_target(props)
        )
        if why is not None:
            _unknown_node(Problem(rel, f"{why}: not counted as a GPU"), problems, unknown)
            continue
        bank = _bank_vram(root, node, problems)
        if bank is not None and bank > MAX_MEMORY_BYTES:
            _unknown_node(
                Problem(rel, f"memory banks total {bank} bytes, implausible"), problems, unknown
            )
            continue
        gpus.append(_gpu(int(node), props, bank))
    return gpus


def _unknown_node(problem: Problem, problems: list[Problem], unknown: list[Problem]) -> None:
    problems.append(problem)
    unknown.append(problem)


def _undecodable_target(props: dict[str, int]) -> str | None:
    """A GPU node's ``gfx_target_version`` that decodes to no gfx target (0, 999999):
    :func:`~pytest_therock.parsing.gfx_target_name` decodes it as rocm_agent_enumerator
    does. An old kernel that has no such field is not a fault."""
    gtv = props.get("gfx_target_version")
    if gtv is not None and gfx_target_name(gtv) is None:
        return f"gfx_target_version {gtv} decodes to no gfx target"
    return None


def _kfd_ram(root: Root, problems: list[Problem]) -> int | None:
    """System RAM from a snapshot's KFD CPU nodes (their memory banks, heap type 0), which
    is what rocminfo lists as the CPU agents' pools; None on a live machine or without them."""
    if root.is_live:
        return None
    total = None
    for node in root.listdir(KFD_NODES):
        try:
            props = parse_properties(root.read_text(f"{KFD_NODES}/{node}/properties"))
        except SourceError:
            continue
        if props.get("simd_count", 0) == 0 and props.get("cpu_cores_count", 0) > 0:
            total = (total or 0) + (_bank_vram(root, node, problems, heap_types=(0,)) or 0)
    return total or None


def _bank_vram(
    root: Root, node: str, problems: list[Problem], heap_types: tuple[int, ...] = (1, 2)
) -> int | None:
    """The size of the node's KFD memory banks of ``heap_types`` (1 and 2: frame buffer).

    A bank that cannot be read, or whose values no kernel prints, is a problem; its
    size is left out."""
    total = None
    banks = f"{KFD_NODES}/{node}/mem_banks"
    for bank in _entries(root, banks, problems):
        rel = f"{banks}/{bank}/properties"
        try:
            props = parse_properties(root.read_text(rel))
        except SourceError as exc:
            problems.append(Problem(exc.path, exc.reason))
            continue
        why = implausible(props, BANK_BOUNDS)
        if why is not None:
            problems.append(Problem(rel, why))
            continue
        if props.get("heap_type") in heap_types and "size_in_bytes" in props:
            total = (total or 0) + props["size_in_bytes"]
    return total


def _gpu(node: int, props: dict[str, int], bank: int | None) -> Gpu:
    """A GPU node. ``bank``: its KFD memory banks' size: VRAM on a discrete GPU; on an APU
    the carve-out or the TTM limit, whichever pool KFD allocates from (memory.py decides)."""
    gtv = props.get("gfx_target_version") or None
    target = gfx_target_name(gtv) if gtv else None
    simd_per_cu = props.get("simd_per_cu")
    location = props.get("location_id")
    device_id = props.get("device_id", 0)
    pci = None
    if location:
        bus, devfn = divmod(location, 256)
        pci = f"{props.get('domain', 0):04x}:{bus:02x}:{devfn >> 3:02x}.{devfn & 7:x}"
    is_apu = (
        props.get("cpu_cores_count", 0) > 0 or target in APU_TARGETS or device_id in APU_DEVICE_IDS
    )
    return Gpu(
        node_id=node,
        gfx_target=target,
        gfx_target_version=gtv,
        vendor_id=props.get("vendor_id", AMD_VENDOR_ID),
        device_id=device_id,
        compute_units=props["simd_count"] // simd_per_cu if simd_per_cu else None,
        simd_count=props["simd_count"],
        wavefront_size=props.get("wave_front_size"),
        unique_id=props.get("unique_id"),
        pci_slot=pci,
        drm_render_minor=props.get("drm_render_minor"),
        card=None,
        is_apu=is_apu,
        vram_total_bytes=None if is_apu else bank,
        kfd_memory_bytes=bank,
    )


def card_slots(root: Root, problems: list[Problem]) -> dict[str, str]:
    """Each DRM ``cardN`` and its PCI slot, from its ``uevent`` or its ``device`` link."""
    slots = {}
    for card in _entries(root, DRM, problems):
        if not (card.startswith("card") and card[4:].isdigit()):
            continue
        try:
            uevent = root.read_text(f"{DRM}/{card}/device/uevent")
        except SourceError as exc:
            uevent = ""
            if exc.reason != "missing":
                problems.append(Problem(exc.path, exc.reason))
        slot = next((ln[14:] for ln in uevent.splitlines() if ln.startswith("PCI_SLOT_NAME=")), "")
        slots[card] = slot or os.path.basename(root.realpath(f"{DRM}/{card}/device"))
    return slots


def _find_card(root: Root, gpu: Gpu, slots: dict[str, str]) -> str | None:
    """The DRM card of a GPU, by PCI slot, else by its render node."""
    for card, slot in slots.items():
        if gpu.pci_slot and slot == gpu.pci_slot:
            return card
    minor = gpu.drm_render_minor
    if minor and root.exists(f"{DRM}/renderD{minor}/device"):
        render_dev = root.realpath(f"{DRM}/renderD{minor}/device")
        for card in slots:
            if root.realpath(f"{DRM}/{card}/device") == render_dev:
                return card
    return None


def _with_drm(
    root: Root, gpu: Gpu, problems: list[Problem], slots: dict[str, str], only_gpu: bool
) -> Gpu:
    """Add DRM memory sizes; with ``only_gpu``, the single amdgpu card is this GPU's."""
    if gpu.card is not None:
        return gpu
    card = _find_card(root, gpu, slots)
    if card is None and only_gpu:
        cards = [c for c in slots if root.exists(f"{DRM}/{c}/device/mem_info_vram_total")]
        card = cards[0] if len(cards) == 1 else None
    if card is None:
        return gpu
    values: dict[str, int | None] = {}
    for name in DRM_MEMORY:
        rel = f"{DRM}/{card}/device/mem_info_{name}"
        try:
            value = parse_int(root.read_text(rel))
            if value > MAX_MEMORY_BYTES:
                raise ValueError(f"{value} bytes is implausible (at most 2**52)")
            values[f"{name}_bytes"] = value
        except SourceError as exc:
            if exc.reason != "missing":
                problems.append(Problem(exc.path, exc.reason))
        except ValueError as exc:
            problems.append(Problem(rel, str(exc)))
    try:
        product = root.read_text(f"{DRM}/{card}/device/product_name").strip() or None
    except SourceError:
        product = None
    return _replace(gpu, card=card, marketing_name=product or gpu.marketing_name, **values)


def _replace(gpu: Gpu, **changes: object) -> Gpu:

    return gpu._replace(**changes)  # type: ignore[arg-type]


def _kernel_params(
    root: Root, problems: list[Problem], kernel_log: KernelLogFacts | None
) -> tuple[KernelParam, ...]:
    params = []
    for item in MODULE_PARAMS:
        module, name = item.split("/")
        rel = f"sys/module/{module}/parameters/{name}"
        try:
            value = root.read_text(rel).strip()
        except SourceError as exc:
            if exc.reason != "missing":
                problems.append(Problem(exc.path, exc.reason))
            continue
        params.append(KernelParam(f"{module}.{name}", " ".join(value.split()), "sysfs"))
    try:
        cmdline = parse_cmdline(root.read_text("proc/cmdline"))
    except SourceError as exc:
        if exc.reason != "missing" or root.is_live:
            problems.append(Problem(exc.path, exc.reason))
        logged = kernel_log.command_line if kernel_log else None  # "Command line: ..."
        cmdline = parse_cmdline(logged) if logged else {}
        for word in kernel_log.cut_parameters if kernel_log else ():
            problems.append(
                Problem(
                    "kernel log",
                    f"Command line: {word!r} is or may be cut short (a wrapped or cut "
                    "paste?): not read as a setting",
                )
            )
    for name, value in cmdline.items():
        if name.startswith(CMDLINE_PREFIXES):
            params.append(KernelParam(name, " ".join(value.split()), "cmdline"))
    return tuple(params)


def kfd_access(root: Root, problems: list[Problem] | None = None) -> KfdAccess:
    """/dev/kfd: present, readable, writable (as recorded, in a snapshot).

    A snapshot's record that is not one of its tokens is a problem (added to
    ``problems``) and leaves the access unknown: never guessed from its letters."""
    recorded = f"{RECORD_DIR}/kfd-access"
    if not root.is_live:
        try:
            return KfdAccess(*parse_kfd_access(root.read_text(recorded)))
        except (SourceError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, SourceError) else str(exc)
            if reason != "missing":
                if problems is not None:  # the path that stopped it: `.therock` a file
                    source = exc.path if isinstance(exc, SourceError) else recorded
                    problems.append(Problem(source, reason))
                return KfdAccess(root.exists("dev/kfd"), False, False, known=False)
    if not root.exists("dev/kfd"):
        stop = blocked(root, "dev/kfd")  # `dev` a file: /dev/kfd is unknown, not missing
        if stop is None:
            return KfdAccess(False, False, False)
        if problems is not None:
            problems.append(Problem(stop.path, stop.reason))
        return KfdAccess(False, False, False, known=False)
    readable, writable = root.access("dev/kfd", os.R_OK), root.access("dev/kfd", os.W_OK)
    if readable and writable:
        return KfdAccess(True, True, True)
    group, relogin = _kfd_group(root)
    return KfdAccess(True, readable, writable, group, relogin)


def _kfd_group(root: Root) -> tuple[str | None, bool]:
    """The group owning /dev/kfd, and whether the user joined it after logging in."""
    import grp
    import pwd

    try:
        gid = os.stat(root.path / "dev/kfd").st_gid
        group = grp.getgrgid(gid)
        user = pwd.getpwuid(os.getuid()).pw_name
    except (OSError, KeyError):
        return None, False
    return group.gr_name, user in group.gr_mem and gid not in os.getgroups()


def _system_memory(root: Root, problems: list[Problem], quiet: bool = False) -> int | None:
    """Total RAM: the kernel's count on a live machine, psutil's reading of a snapshot's procfs."""
    if root.is_live:  # what MemTotal says, without importing psutil at start-up
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        root.read_text("proc/meminfo")  # a regular, readable file: psutil would block on a FIFO
    except SourceError as exc:
        if not (quiet and exc.reason == "missing"):
            problems.append(Problem(exc.path, exc.reason))
        return None
    import psutil

    saved = psutil.PROCFS_PATH
    psutil.PROCFS_PATH = str(root.path / "proc")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # psutil warns about fields a snapshot lacks
            return int(psutil.virtual_memory().total)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        if isinstance(exc, FileNotFoundError):
            reason = "missing"
        elif isinstance(exc, OSError):
            reason = os_reason(exc)
        else:
            reason = "malformed, no MemTotal line" if isinstance(exc, KeyError) else "malformed"
        if not (quiet and reason == "missing"):
            problems.append(Problem("proc/meminfo", reason))
        return None
    finally:
        psutil.PROCFS_PATH = saved
