"""GPU memory: which pool a GPU allocates from, how big it is, and the one change that
gets a process the size it needs. Pure functions over the detected :class:`Environment`.

Sizes are bytes (GiB = 2**30); a size that is not known is ``None`` and its source says
why, never a number that only looks measured. The rules, with their sources:

- **Discrete GPU**: allocations come from VRAM.
- **APU, the pool**: the "VRAM" of an APU is a carve-out of RAM reserved by the firmware
  (BIOS "UMA frame buffer"); GTT is RAM the GPU maps on demand. What KFD, and so
  rocminfo and HIP, offers as the GPU's memory depends on the driver:

  - before Linux 6.10: the carve-out;
  - from 6.10 (eb853413d02c8d9b27942429b261a9eef228f005, "drm/amdkfd: Let VRAM allocations
    go to GTT domain on small APUs"): always GTT, however large the carve-out;
  - from 6.15 (8b0d068e7dd177eca506d908622095b4a6c9d168 "drm/amdkfd: add a new flag to
    manage where VRAM allocations go" and 759e764f7d587283b4e0b01ff930faca64370e59
    "drm/amdkfd: use GTT for VRAM on APUs only if GTT is larger", both first in 6.15-rc1,
    per AMD in ROCm/ROCm#5444, and backported into Ubuntu's 6.14 OEM kernel):
    ``amdgpu_ttm_init()`` sets ``apu_prefer_gtt`` only when the carve-out
    (``real_vram_size``) is smaller than the driver's GTT size; otherwise KFD uses the
    carve-out. This is TheRock FAQ's "if your VRAM is larger than GTT, applications will
    use VRAM". With the packaged amdgpu-dkms driver its own version
    (``/sys/module/amdgpu/version``) is compared instead of the kernel's.

  Where KFD's memory bank is readable (the KFD topology, or rocminfo's GPU pool) it
  decides: with ``apu_prefer_gtt`` ``amdgpu_amdkfd_get_local_mem_info()`` reports the TTM
  limit (``ttm_tt_pages_limit() << PAGE_SHIFT``), else the carve-out. A bank larger than
  the RAM the OS sees is the carve-out: GTT lives in that RAM.
- **GTT**: the driver's GTT size is ``amdgpu.gttsize`` (MiB, deprecated since 6.17:
  "Configuring gttsize via module parameter is deprecated, please use ttm.pages_limit")
  else TTM's limit (``amdgpu_ttm_init()``). Allocations stop at TTM's ``pages_limit``
  (pages of 4 KiB), which defaults to half of the RAM the OS sees (``ttm_global_init()``
  in ``ttm_device.c``; the FAQ; ``amd-ttm --clear``'s documentation). The packaged DKMS
  driver brings its own TTM, ``amdttm``, which reads ``amdttm.pages_limit``. KFD also stops
  a process at ``max_system_mem_limit``: RAM - RAM/64 - 1.5 GiB
  (``amdgpu_amdkfd_gpuvm_init_mem_limits()`` in ``amdgpu_amdkfd_gpuvm.c``, since
  9b37d45d797e "drm/amdgpu: Rework KFD memory max limits", 6.7).
- **Installed RAM** on an APU is the RAM the OS sees plus the carve-out.
- **Not HIP's total**: ``hipMemGetInfo`` can report a total smaller than what it then
  allocates (a 96 GiB carve-out on 6.18: total 15.49 GiB, free 95.84 GiB,
  ROCm/ROCm#5444; pytorch/pytorch#107605), so the model follows KFD, not HIP.
- **The plan's ceiling**: ``pages_limit`` is never planned above 90% of the RAM the OS will
  see (AMD's ``amd-ttm`` refuses more: ``MAX_MEMORY_PERCENTAGE = 90`` in
  superm1/amd-debug-tools ``amd_debug/ttm.py``) nor above KFD's ``max_system_mem_limit``.
  The kernel itself accepts any ``pages_limit`` (``ttm_tt.c`` only falls back to its
  default for 0), so the ceiling is the plan's, not the kernel's.
- **One plan per machine**: a plan aims at the larger of the need and what the settings
  already ask for (:func:`intended_bytes`), so it never lowers a ``pages_limit`` the user
  set. KFD takes its limit only when amdgpu loads
  (``amdgpu_amdkfd_gpuvm_init_mem_limits()``), so every planned ``pages_limit`` goes on
  the kernel command line with a reboot, and a value set at runtime above KFD's limit is
  put in effect the same way.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from .environment import GIB, MIB, Environment, Gpu, fmt_bytes

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

#: TTM counts pages_limit in pages of PAGE_SIZE: 4 KiB on x86-64.
PAGE = 4096
#: AMD's amd-ttm refuses a TTM limit above this share of system memory (percent).
SAFE_PERCENT = 90
#: KFD's AMDGPU_RESERVE_MEM_LIMIT (3UL << 29): RAM kept back from ROCm allocations.
KFD_RESERVE = 3 << 29
#: The carve-out a plan shrinks to: the BIOS minimum on Strix Halo and most APUs.
MIN_CARVE_OUT = 512 * MIB
DEFAULT_SOURCE = "default: 50% of RAM"
#: Driver versions where the APU rule changes (see the module docstring).
GTT_ALWAYS = (6, 10)
LARGER_POOL = (6, 15)


def kfd_system_limit(ram: int) -> int:
    """KFD's ``max_system_mem_limit`` for ``ram`` bytes of RAM (amdgpu_amdkfd_gpuvm.c)."""
    limit = ram - (ram >> 6)
    return limit >> 1 if limit < 2 * KFD_RESERVE else limit - KFD_RESERVE


def safe_limit(ram: int) -> int:
    """The largest TTM limit a plan sets with ``ram`` bytes of RAM the OS sees: 90% of it
    (amd-ttm's ceiling) and within KFD's own limit, in whole 4 KiB pages."""
    return min(ram * SAFE_PERCENT // 100, kfd_system_limit(ram)) // PAGE * PAGE


def _version(text: str | None) -> tuple[int, int] | None:
    match = re.match(r"\s*(\d+)\.(\d+)", text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _int(value: str | None) -> int | None:
    """A kernel parameter's whole number of pages or MiB; None if not one, or absurd."""
    from .parsing import decimal

    number = decimal(value or "")
    return number if number is not None and 0 <= number < 10**15 else None


class GpuMemory(NamedTuple):
    """One GPU's memory: sizes in bytes (None: unknown, and its ``*_source`` says why).

    ``pool`` is where allocations (``hipMalloc``, PyTorch) come from: ``"VRAM"`` (a
    discrete GPU's, or an APU's carve-out), ``"GTT"`` or ``"unknown"``; ``allocatable_bytes``
    is how much of it a process can allocate. ``total_bytes``/``usable_bytes`` are GTT:
    the driver's GTT size, and the smaller of it and TTM's limit.
    """

    gfx_target: str | None
    label: str
    is_apu: bool
    vram_total_bytes: int | None  # a discrete GPU's VRAM; an APU's carve-out
    vram_source: str
    total_bytes: int | None  # the driver's GTT size
    gtt_source: str
    used_bytes: int | None  # GTT in use
    limit_bytes: int | None  # TTM's limit: allocations stop there
    limit_source: str  # "ttm.pages_limit", DEFAULT_SOURCE, "KFD memory bank", "unknown: ..."
    ttm_param: str  # "ttm.pages_limit", or "amdttm.pages_limit" with amdgpu-dkms
    gttsize_bytes: int | None  # amdgpu.gttsize, when set
    system_memory_bytes: int | None  # the RAM the OS sees (MemTotal)
    installed_ram_bytes: int | None  # APU: OS RAM + carve-out; discrete: OS RAM
    kfd_bytes: int | None  # what KFD reports as the GPU's memory
    driver: str | None  # "kernel 6.16.3+deb13-amd64", "amdgpu-dkms 6.16.13"
    pool: str
    pool_reason: str
    allocatable_bytes: int | None
    #: KFD's own TTM limit, fixed when amdgpu loaded (the memory bank when it reports GTT);
    #: None when KFD's view is not readable or reports the carve-out.
    kfd_ttm_bytes: int | None = None
    #: The ``pages_limit`` (4 KiB pages) on the kernel command line for ``ttm_param``, if any.
    cmdline_pages: int | None = None

    @property
    def usable_bytes(self) -> int | None:
        """GTT a process can allocate: the smaller of the driver's GTT size and TTM's limit
        (and KFD's system limit); None when TTM's limit is unknown."""
        if self.limit_bytes is None:
            return None
        sizes = [self.limit_bytes]
        sizes += [self.total_bytes] if self.total_bytes is not None else []
        sizes += [self.kfd_ttm_bytes] if self.kfd_ttm_bytes is not None else []
        if self.system_memory_bytes:
            sizes.append(kfd_system_limit(self.system_memory_bytes))
        return min(sizes)

    @property
    def free_bytes(self) -> int | None:
        if self.total_bytes is None or self.used_bytes is None:
            return None
        return max(self.total_bytes - self.used_bytes, 0)

    @property
    def pool_name(self) -> str:
        """``VRAM``, ``GTT``, or ``an unknown pool``: for ``from {pool_name}``."""
        return "an unknown pool" if self.pool == "unknown" else self.pool

    @property
    def kfd_conflict(self) -> str | None:
        """Why KFD's limit and TTM's live ``pages_limit`` disagree, or None when they agree.

        KFD takes its limit once, when amdgpu loads
        (``amdgpu_amdkfd_gpuvm_init_mem_limits()``: ``max_ttm_mem_limit =
        ttm_tt_pages_limit() << PAGE_SHIFT``, and the topology's memory bank), and refuses
        a GTT allocation past it (``amdgpu_amdkfd_reserve_mem_limit()``); TTM reads its
        ``pages_limit`` at every allocation (``ttm_tt_populate()`` in ``ttm_tt.c``), and
        it can be changed at runtime (``/sys/module/ttm/parameters/pages_limit``, mode
        0644; AMD's ``amd-ttm``). A process gets the smaller of the two.
        """
        kfd, live = self.kfd_ttm_bytes, self.limit_bytes
        if kfd is None or live is None or abs(kfd - live) <= max(live // 100, MIB):
            return None
        smaller = "KFD's" if kfd < live else f"the live {self.ttm_param}"
        return (
            f"KFD's limit {fmt_bytes(kfd)} (set when amdgpu loaded) and the live "
            f"{self.ttm_param} {fmt_bytes(live)} disagree: a process gets the smaller, "
            f"{smaller}"
        )

    @property
    def pending(self) -> bool:
        """A ``pages_limit`` set above the limit KFD took when amdgpu loaded: asked for,
        not in effect until amdgpu reloads (reboot). See :attr:`kfd_conflict`."""
        kfd, live = self.kfd_ttm_bytes, self.limit_bytes
        return self.kfd_conflict is not None and kfd is not None and live is not None and kfd < live

    @property
    def set_limit_bytes(self) -> int | None:
        """The ``pages_limit`` the user set (live or on the command line), in bytes; None
        when TTM's limit is the kernel's default or unknown. A plan never lowers it."""
        return self.limit_bytes if self.limit_source == self.ttm_param else None

    @property
    def limit_why(self) -> str:
        """Where TTM's limit came from, or why it is unknown."""
        return self.limit_source.removeprefix("unknown: ")

    @property
    def is_default(self) -> bool:
        """TTM's limit is the kernel's default, half of RAM."""
        return self.limit_source == DEFAULT_SOURCE

    @property
    def exceeds_vram(self) -> bool | None:
        """GTT larger than VRAM (on an APU: allocations use GTT on current kernels)."""
        if self.usable_bytes is None or self.vram_total_bytes is None:
            return None
        return self.usable_bytes > self.vram_total_bytes

    @property
    def disagrees(self) -> bool:
        """The driver's GTT size and TTM's limit differ by more than a page pool's slack."""
        if self.total_bytes is None or self.limit_bytes is None:
            return False
        return abs(self.total_bytes - self.limit_bytes) > max(self.limit_bytes // 100, MIB)

    def describe(self) -> str:
        """One line: the pool, what it gives, and the sizes around it."""
        name = self.gfx_target or self.label
        if self.pool == "unknown" and self.allocatable_bytes is not None:
            head = (
                f"{name}: {fmt_bytes(self.allocatable_bytes)} allocatable from an unknown "
                f"pool ({self.pool_reason})"
            )
        elif self.pool == "unknown":
            head = f"{name}: allocations come from an unknown pool ({self.pool_reason})"
        else:
            head = (
                f"{name}: allocations come from {self.pool}, "
                f"{fmt_bytes(self.allocatable_bytes)} allocatable ({self.pool_reason})"
            )
        parts = [head]
        if self.is_apu:
            parts.append(f"carve-out {fmt_bytes(self.vram_total_bytes)}")
            parts.append(f"TTM limit {fmt_bytes(self.limit_bytes)} ({self.limit_why})")
            parts.append(f"installed RAM {fmt_bytes(self.installed_ram_bytes)}")
        return "; ".join(parts)


def _driver(env: Environment) -> tuple[str | None, tuple[int, int] | None, bool]:
    """The amdgpu driver that decides the APU rule: (name, version, oem_backport)."""
    versions = env.versions
    if versions is not None and versions.amdgpu:
        return f"amdgpu-dkms {versions.amdgpu}", _version(versions.amdgpu), False
    kernel = versions.kernel if versions is not None else None
    if kernel:
        # AMD backported 8b0d068e/759e764f into Ubuntu's 6.14 OEM kernel (ROCm/ROCm#5444).
        oem = bool(re.match(r"6\.14\.0-\d+-oem", kernel))
        return f"kernel {kernel}", _version(kernel), oem
    return None, None, False


def ttm_param(env: Environment) -> str:
    """The TTM parameter the loaded driver reads: ``amdttm.pages_limit`` with amdgpu-dkms."""
    dkms = env.ttm_module == "amdttm" or bool(env.versions and env.versions.amdgpu)
    return "amdttm.pages_limit" if dkms else "ttm.pages_limit"


def gttsize_bytes(env: Environment) -> int | None:
    """``amdgpu.gttsize`` in bytes, when set (it is in MiB; -1 means unset)."""
    param = env.param("amdgpu.gttsize")
    mib = _int(param.value) if param else None
    return mib * MIB if mib else None


def _ttm_limit(env: Environment, name: str, ram: int | None) -> tuple[int | None, str]:
    """TTM's limit from its live or command-line value; the default (half of RAM) otherwise."""
    param = env.param(name)
    pages = _int(param.value) if param else None
    half = ram // PAGE // 2 * PAGE if ram else None  # ttm_global_init(): totalram pages / 2
    if pages:
        limit = pages * PAGE
        live = param is not None and param.origin == "sysfs"
        on_cmdline = any(p.name == name and p.origin == "cmdline" for p in env.kernel_params)
        if live and not on_cmdline and half is not None and abs(limit - half) <= half // 50:
            return limit, DEFAULT_SOURCE  # the live value is the kernel's default
        return limit, name
    if half is not None:
        return half, DEFAULT_SOURCE
    return None, "unknown: RAM unknown"


def gpu_memory(env: Environment, gpu: Gpu | None = None) -> GpuMemory:
    """The memory model of ``gpu`` (see the module docstring for every rule).

    ``gpu``: one of ``env.gpus``; None (the default) is the first visible GPU, as the
    ``gtt_info`` fixture takes it. Raises ValueError when None is given and no GPU is
    visible, TypeError when ``env`` is not an :class:`Environment` or ``gpu`` not a
    :class:`Gpu`.
    """
    if not isinstance(env, Environment):
        raise TypeError(f"gpu_memory: env must be an Environment, got {type(env).__name__}")
    if gpu is None:
        if not env.visible_gpus:
            raise ValueError(
                "gpu_memory: no visible AMD GPU in this environment; pass one of env.gpus"
            )
        gpu = env.visible_gpus[0]
    elif not isinstance(gpu, Gpu):
        raise TypeError(
            f"gpu_memory: gpu must be a Gpu (one of env.gpus), got {type(gpu).__name__}"
        )
    ram = env.system_memory_bytes
    log = env.kernel_log
    one_gpu = len(env.gpus) == 1
    name = ttm_param(env)
    bank = gpu.kfd_memory_bytes

    vram, vram_source = gpu.vram_total_bytes, "mem_info_vram_total"
    if vram is not None and not gpu.card:
        vram_source = "KFD memory bank" if vram == bank else "amd-smi"
    if vram is None and one_gpu and log is not None and log.vram_ready_bytes is not None:
        vram, vram_source = log.vram_ready_bytes, "kernel log"
    if vram is None and not gpu.is_apu and bank is not None:
        vram, vram_source = bank, "KFD memory bank"
    driver, version, oem = _driver(env)
    early = version is not None and version < GTT_ALWAYS and not oem
    early = early and not (gpu.gfx_target or "").startswith("gfx94")
    if vram is None and gpu.is_apu and bank is not None:
        if ram is not None and bank > ram:
            vram, vram_source = bank, "KFD memory bank, larger than the OS's RAM: the carve-out"
        elif early:
            vram, vram_source = bank, f"KFD memory bank: the carve-out before 6.10 ({driver})"
    if vram is None:
        card = "no DRM card for this GPU, so " if not gpu.card else ""
        vram_source = f"unknown: {card}no mem_info_vram_total"

    limit, limit_source = _ttm_limit(env, name, ram)
    bank_is_vram = bank is not None and vram is not None and abs(bank - vram) <= MIB
    bank_is_gtt = gpu.is_apu and bank is not None and not bank_is_vram
    half = ram // PAGE // 2 * PAGE if ram else None
    ambiguous = (
        bank_is_gtt
        and bank is not None
        and vram is None
        and _bank_may_be_carve_out(gpu, bank, version, oem, half, limit, limit_source, name)
    )
    if ambiguous:
        limit, limit_source = None, "unknown: KFD's memory bank is the carve-out or TTM's limit"
        bank_is_gtt = False
    if bank_is_gtt and bank is not None and (limit is None or limit_source == DEFAULT_SOURCE):
        # KFD reports the TTM limit here: measured, and the default when it is half of RAM.
        near = half is not None and abs(bank - half) <= half // 50
        limit, limit_source = bank, DEFAULT_SOURCE if near else "KFD memory bank"
    kfd_ttm = bank if bank_is_gtt else None

    gttsize = gttsize_bytes(env)
    gtt, gtt_source = gpu.gtt_total_bytes, "mem_info_gtt_total" if gpu.card else "amd-smi"
    # (detection fills a GTT size without a DRM card only from amd-smi or rocm-smi)
    if gtt is None and one_gpu and log is not None and log.gtt_ready_bytes is not None:
        gtt, gtt_source = log.gtt_ready_bytes, "kernel log"
    if gtt is None and gttsize is not None:
        gtt, gtt_source = gttsize, "amdgpu.gttsize"
    if gtt is None and limit is not None:
        gtt, gtt_source = limit, "= TTM limit (amdgpu_ttm_init)"
    if gtt is None:
        gtt_source = "unknown"

    installed = ram
    if gpu.is_apu:
        installed = ram + vram if ram is not None and vram is not None else None
    model = GpuMemory(
        gfx_target=gpu.gfx_target,
        label=gpu.label,
        is_apu=gpu.is_apu,
        vram_total_bytes=vram,
        vram_source=vram_source,
        total_bytes=gtt,
        gtt_source=gtt_source,
        used_bytes=gpu.gtt_used_bytes,
        limit_bytes=limit,
        limit_source=limit_source,
        ttm_param=name,
        gttsize_bytes=gttsize,
        system_memory_bytes=ram,
        installed_ram_bytes=installed,
        kfd_bytes=bank,
        driver=driver,
        pool="unknown",
        pool_reason="",
        allocatable_bytes=None,
        kfd_ttm_bytes=kfd_ttm,
        cmdline_pages=next(
            (_int(p.value) for p in env.kernel_params if p.name == name and p.origin == "cmdline"),
            None,
        ),
    )
    if ambiguous and bank is not None:
        # Either way KFD offers ``bank``: the carve-out, or GTT up to TTM's limit.
        reason = (
            f"KFD offers {fmt_bytes(bank)}: the carve-out (from 6.15, when it is at least "
            "the GTT size) or GTT up to TTM's limit; no mem_info_vram_total or kernel "
            "version here tells which"
        )
        return model._replace(pool="unknown", pool_reason=reason, allocatable_bytes=bank)
    pool, reason = _pool(model, version, oem, bank_is_vram, bank_is_gtt)
    allocatable = vram if pool == "VRAM" else model.usable_bytes if pool == "GTT" else None
    return model._replace(pool=pool, pool_reason=reason, allocatable_bytes=allocatable)


def _bank_may_be_carve_out(
    gpu: Gpu,
    bank: int,
    version: tuple[int, int] | None,
    oem: bool,
    half: int | None,
    limit: int | None,
    limit_source: str,
    name: str,
) -> bool:
    """Whether an APU's KFD bank (no carve-out size known) may be the carve-out as well as
    TTM's limit: not from 6.10 to 6.14 (always GTT), not on MI300A (f4bff6e0b9e1), not
    when it matches TTM's default (half of RAM) or a ``pages_limit`` that is set."""
    if (gpu.gfx_target or "").startswith("gfx94"):
        return False
    if version is not None and not oem and GTT_ALWAYS <= version < LARGER_POOL:
        return False
    if half is not None and abs(bank - half) <= half // 50:
        return False
    set_here = limit is not None and limit_source == name
    return not (set_here and limit is not None and abs(bank - limit) <= max(limit // 100, MIB))


def _pool(
    m: GpuMemory,
    version: tuple[int, int] | None,
    oem: bool,
    bank_is_vram: bool,
    bank_is_gtt: bool,
) -> tuple[str, str]:
    """Which pool allocations come from, and why (one phrase)."""
    if not m.is_apu:
        return "VRAM", "discrete GPU"
    if bank_is_vram:
        return "VRAM", "KFD reports the carve-out"
    if bank_is_gtt:
        if m.kfd_conflict:
            return "GTT", "KFD reports its TTM limit from driver load, not the live one"
        return "GTT", "KFD reports the TTM limit"
    rule = _kernel_rule(m, version, oem)
    if rule is not None:
        return rule
    vram, gtt = m.vram_total_bytes, m.total_bytes
    if vram is None and gtt is None:
        return "unknown", "carve-out and GTT unknown"
    if vram is not None and (gtt is None or vram >= gtt):
        return "VRAM", "carve-out >= GTT" + ("" if version else "; kernel unknown, 6.15+ assumed")
    return "GTT", "GTT > carve-out" + ("" if version else "; kernel unknown, 6.15+ assumed")


def _kernel_rule(
    m: GpuMemory, version: tuple[int, int] | None, oem: bool
) -> tuple[str, str] | None:
    """The pool a driver version forces whatever the sizes; None where the sizes decide."""
    if version is None or oem or version >= LARGER_POOL:
        return None
    if (m.gfx_target or "").startswith("gfx94"):
        return None  # MI300A: KFD reports TTM's limit since 6.7 (f4bff6e0b9e1); sizes decide
    if version < GTT_ALWAYS:
        return "VRAM", f"{m.driver}: before 6.10 KFD uses the carve-out"
    return "GTT", f"{m.driver}: from 6.10 to 6.14 KFD uses GTT"


def intended_bytes(env: Environment) -> int | None:
    """The size the settings already ask for: ``amdgpu.gttsize``, the ``pages_limit`` set
    (live or on the command line, for the TTM module the driver reads or for the one it
    does not), the GTT size a kernel log reports TTM disagreeing with, or a carve-out
    larger than the GTT the driver allocates from. None when there is none (TTM's default).

    Every plan on the machine aims at least this high (:func:`target_bytes`), so no plan
    lowers a limit the user set, and one that is set but not in effect (raised at runtime
    after KFD took its limit) gets the step that makes it take effect."""
    sizes = [gttsize_bytes(env) or 0]
    for gpu in env.visible_gpus:
        if not gpu.is_apu:
            continue
        m = gpu_memory(env, gpu)
        sizes.append(m.set_limit_bytes or 0)
        usable, carve = m.usable_bytes, m.vram_total_bytes
        if m.pool == "GTT" and carve is not None and usable is not None and carve > usable:
            sizes.append(carve)  # the carve-out the user chose, hidden by the driver
    name = ttm_param(env)
    other = "ttm.pages_limit" if name.startswith("amdttm") else "amdttm.pages_limit"
    on_cmdline = {p.name: p.value for p in env.kernel_params if p.origin == "cmdline"}
    if other in on_cmdline and name not in on_cmdline:
        sizes.append((_int(on_cmdline[other]) or 0) * PAGE)
    log = env.kernel_log
    if log is not None and log.gtt_size_bytes and log.gtt_size_bytes != log.ttm_size_bytes:
        sizes.append(log.gtt_size_bytes)
    return max(sizes) or None


def target_bytes(env: Environment, need: int | None = None) -> int | None:
    """The one size every suggestion on this machine aims at: the larger of ``need`` and
    what the user already asked for (so a header line and a summary line agree)."""
    return max(need or 0, intended_bytes(env) or 0) or None


class Plan(NamedTuple):
    """The single change that lets ``gpu`` allocate ``need_bytes``, or why none can.

    ``kind`` is ``"gpu"`` (from whichever pool applies) or ``"gtt"`` (GTT itself).
    ``steps`` are done in order (carve-out first); ``pages_limit`` is the exact value of
    ``param`` to set (4 KiB pages), never above :func:`safe_limit` of the RAM the OS
    will see, and never below the value the user set (a higher one is kept);
    ``reaches_bytes`` is what the machine can allocate after the steps. ``unknown``: how
    much the GPU can allocate is unknown, so neither met nor below is established.
    """

    gfx_target: str | None
    kind: str
    need_bytes: int
    found_bytes: int | None
    met: bool
    possible: bool
    steps: tuple[str, ...]
    action: str  # the steps without numbers, for skip reasons
    why: str
    param: str
    pages_limit: int | None = None
    carve_out_bytes: int | None = None
    kernel: str | None = None
    reaches_bytes: int | None = None

    @property
    def unknown(self) -> bool:
        """How much the GPU can allocate is unknown and no step is planned: neither met
        nor below the need is established."""
        return not self.met and self.found_bytes is None and not self.steps

    @property
    def change(self) -> str | None:
        """The steps as one line, or None when nothing is to change."""
        return "; then ".join(self.steps) if self.steps else None

    def line(self) -> str:
        """``plan for 96 GiB on gfx1151: ...``: the plan as the doctor prints it."""
        what = "GPU memory" if self.kind == "gpu" else "GTT"
        head = f"plan for {fmt_bytes(self.need_bytes)} of {what} on {self.gfx_target}"
        if self.met:
            return f"{head}: nothing to change ({self.why})"
        if self.unknown:
            return f"{head}: unknown whether it is met ({self.why})"
        return f"{head}: {self.change or 'no change can'} ({self.why})"


def plan(m: GpuMemory, need: int, kind: str = "gpu") -> Plan:
    """The plan for ``need`` bytes on the GPU ``m`` describes (see :class:`Plan`).

    In order: nothing, when it is already allocatable; a driver upgrade, when the driver
    hides a carve-out that is large enough; TTM's limit alone, within 90% of the RAM the
    OS sees; the carve-out shrunk to its minimum first, then TTM's limit; else the most
    the machine can give, and why ``need`` is out of reach.
    """
    found = m.allocatable_bytes if kind == "gpu" else m.usable_bytes

    def make(possible: bool, steps: tuple[str, ...], action: str, why: str, **kw: Any) -> Plan:
        if any(step.startswith("upgrade") for step in steps):
            kw.setdefault("kernel", f"{LARGER_POOL[0]}.{LARGER_POOL[1]}")
        if steps and steps[0].startswith("upgrade") and not action.startswith("upgrade"):
            action = f"{steps[0]}, then {action}"  # the skip reason names every kind of step
        return Plan(
            m.gfx_target, kind, need, found, False, possible, steps, action, why, m.ttm_param, **kw
        )

    if found is not None and found >= need:
        pool = m.pool_name if kind == "gpu" else "GTT"
        why = f"{fmt_bytes(found)} allocatable from {pool}"
        return Plan(m.gfx_target, kind, need, found, True, True, (), "", why, m.ttm_param)
    if kind == "gpu" and not m.is_apu and found is None:
        why = f"its VRAM is unknown: {m.vram_source.removeprefix('unknown: ')}"
        return make(False, (), "unknown", why)
    if kind == "gpu" and not m.is_apu:
        return make(False, (), "no setting can", f"a discrete GPU's VRAM is {fmt_bytes(found)}")
    version = _version((m.driver or " ").partition(" ")[2])
    upgrade = _upgrade(m, version)
    vram, ram = m.vram_total_bytes, m.system_memory_bytes
    # From 6.15 the carve-out is used when it is at least the driver's GTT size.
    hides = version is not None and GTT_ALWAYS <= version < LARGER_POOL and upgrade is not None
    hides = hides and vram is not None and vram >= (m.total_bytes or 0)
    if kind == "gpu" and upgrade and hides and vram is not None and vram >= need:
        why = f"{m.driver} allocates from GTT and hides the {fmt_bytes(vram)} carve-out"
        return make(True, (upgrade,), upgrade, why, kernel="6.15", reaches_bytes=vram)
    early = version is not None and version < GTT_ALWAYS and upgrade is not None
    before = (upgrade,) if kind == "gpu" and early and upgrade else ()
    drop = " and remove amdgpu.gttsize" if m.gttsize_bytes is not None else ""
    gtt_now = m.usable_bytes
    if before and gtt_now is not None and gtt_now >= need and (vram or 0) < (m.total_bytes or 0):
        why = f"{m.driver} allocates from the carve-out; GTT has {fmt_bytes(gtt_now)}"
        return make(True, before, before[0], why, reaches_bytes=gtt_now)

    def ttm(pages: int) -> str:
        """The step that puts ``pages`` in effect: KFD takes its limit only when amdgpu
        loads, so a command-line value needs a reboot (or a reload of amdgpu)."""
        size = fmt_bytes(pages * PAGE)
        if pages == m.cmdline_pages and (m.pending or drop):  # asked for there, not in effect
            remove = "remove amdgpu.gttsize and " if drop else ""
            return (
                f"{remove}reboot, so the {m.ttm_param}={pages} ({size}) on the kernel "
                "command line takes effect"
            )
        return f"set {m.ttm_param}={pages} ({size}) on the kernel command line{drop} and reboot"

    set_pages = (m.set_limit_bytes or 0) // PAGE
    pages = max(-(-need // PAGE), set_pages)  # never lower a limit the user set
    raise_it = f"raise {m.ttm_param}"
    if m.pending and pages == set_pages:  # the value is set, KFD has not taken it yet
        raise_it = (
            "reboot"
            if pages == m.cmdline_pages
            else f"put {m.ttm_param} on the kernel command line and reboot"
        )
    if ram is None:  # no pages_limit that cannot be checked against the RAM behind it
        why = "the RAM the OS sees is unknown, so no pages_limit can be checked against it"
        return make(False, before, before[0] if before else "RAM unknown", why)
    if need <= safe_limit(ram):
        why = f"{_now(m, kind, found)}; at most {fmt_bytes(safe_limit(ram))}, 90% of RAM"
        steps = (*before, ttm(pages))
        return make(True, steps, raise_it, why, pages_limit=pages, reaches_bytes=pages * PAGE)
    after = None
    if m.is_apu and vram is not None and vram > MIN_CARVE_OUT:
        after = ram + vram - MIN_CARVE_OUT
    shrink = f"set the carve-out (UMA frame buffer) to {fmt_bytes(MIN_CARVE_OUT)} in the BIOS"
    if after is not None and need <= safe_limit(after):
        why = f"the {fmt_bytes(vram)} carve-out leaves the OS {fmt_bytes(ram)} of RAM"
        return make(
            True,
            (*before, shrink, ttm(pages)),
            f"shrink the BIOS carve-out, then {raise_it}",
            why,
            pages_limit=pages,
            carve_out_bytes=MIN_CARVE_OUT,
            reaches_bytes=pages * PAGE,
        )
    best_ram = after if after is not None else ram
    most = max(safe_limit(best_ram), set_pages * PAGE)  # a set limit above 90% stays
    why = (
        f"{fmt_bytes(need)} is more than 90% of the {fmt_bytes(best_ram)} of RAM the OS "
        f"{'would see' if after is not None else 'sees'}: {fmt_bytes(most)} is the most"
    )
    biggest = max(most, vram or 0) if kind == "gpu" and m.is_apu else most
    if found is not None and biggest <= found:
        return make(False, (), "no setting can", why)
    if set_pages and most == set_pages * PAGE and not m.pending:  # set, in effect: the most
        return make(False, (), "no setting can", f"{m.ttm_param} is set that high; {why}")
    if kind == "gpu" and vram is not None and vram >= most:
        if upgrade and hides:
            return make(False, (upgrade,), upgrade, why, kernel="6.15", reaches_bytes=vram)
        return make(False, (), "no setting can", why)
    steps = (*before, *((shrink,) if after is not None else ()), ttm(most // PAGE))
    return make(
        False,
        steps,
        f"at most {fmt_bytes(most)}: {raise_it}",
        why,
        pages_limit=most // PAGE,
        carve_out_bytes=MIN_CARVE_OUT if after is not None else None,
        reaches_bytes=most,
    )


def _now(m: GpuMemory, kind: str, found: int | None) -> str:
    if m.pending and (kind == "gtt" or m.pool == "GTT"):
        limit = (
            f"KFD's limit from when amdgpu loaded, below the live {m.ttm_param} "
            f"{fmt_bytes(m.limit_bytes)}"
        )
        return f"GTT {fmt_bytes(found)} now ({limit})"
    if kind == "gtt" or m.pool == "GTT":
        limit = "TTM's default, 50% of RAM" if m.is_default else f"TTM limit: {m.limit_why}"
        return f"GTT {fmt_bytes(found)} now ({limit})"
    if m.pool == "unknown":
        return f"{fmt_bytes(found)} now from an unknown pool"
    return f"{m.pool} {fmt_bytes(found)} now"


def _upgrade(m: GpuMemory, version: tuple[int, int] | None) -> str | None:
    """The driver upgrade that uses the larger pool, when this driver predates it."""
    if version is None or version >= LARGER_POOL or not m.is_apu:
        return None
    if (m.driver or "").startswith("amdgpu-dkms"):
        return "upgrade amdgpu-dkms to a driver based on Linux 6.15 or later"
    if re.match(r"kernel 6\.14\.0-\d+-oem", m.driver or ""):
        return None
    return "upgrade the kernel to 6.15 or later"


def machine_plan(env: Environment, need: int | None, kind: str = "gpu") -> Plan | None:
    """The plan for :func:`target_bytes` (the larger of ``need`` and what the settings
    already ask for) on the visible GPU that gets closest to it: the one plan every line
    on this machine quotes (header, session summary, skip reasons, ``doctor --need``)."""
    target = target_bytes(env, need)
    if target is None or not env.visible_gpus:
        return None
    plans = [plan(gpu_memory(env, g), target, kind) for g in env.visible_gpus]
    met = [p for p in plans if p.met]
    if met:
        return met[0]
    best = max(plans, key=lambda p: (p.possible, p.reaches_bytes or p.found_bytes or -1))
    if need and target > need:
        why = f"the settings already ask for {fmt_bytes(target)}; {best.why}"
        best = best._replace(why=why)
    return best


def plan_hint(env: Environment, gpu: Gpu, need: int, kind: str = "gpu") -> str:
    """For a skip reason: why ``gpu`` has less than ``need`` bytes, and the kind of change
    in the machine's one plan (for :func:`target_bytes`, as every other line). The exact
    value is left to the session summary and ``pytest-therock doctor --need``."""
    m = gpu_memory(env, gpu)
    steps = plan(m, target_bytes(env, need) or need, kind)
    if not steps.possible and not steps.steps:
        return steps.why
    if steps.steps and steps.steps[0].startswith("upgrade"):
        return f"{steps.why}; {steps.action}"
    if kind == "gpu" and m.pool == "VRAM" and m.is_apu:
        why = "allocations come from the carve-out"
    elif m.pending:
        why = f"KFD took its limit when amdgpu loaded, before {m.ttm_param} was raised"
    elif m.is_default:
        why = "GTT defaults to 50% of RAM"
    elif m.gttsize_bytes is not None and m.disagrees:
        why = f"amdgpu.gttsize and {m.ttm_param} disagree"
    elif m.pool == "GTT" or kind == "gtt":
        why = f"TTM limit set by {m.limit_why}"
    else:
        why = m.pool_reason
    return f"{why}; {steps.action}"


def memories(env: Environment, gpus: Iterable[Gpu] | None = None) -> list[GpuMemory]:
    """The memory model of each visible GPU (or of ``gpus``)."""
    return [gpu_memory(env, g) for g in (env.visible_gpus if gpus is None else gpus)]


#: The name the ``gtt_info`` fixture and earlier releases used.
GttInfo = GpuMemory


#: The function behind the ``gtt_info`` fixture: :func:`gpu_memory`.
gtt_info = gpu_memory


__all__ = ["GIB", "GpuMemory", "GttInfo", "Plan", "gpu_memory", "gtt_info", "plan"]
