"""GTT: how much system RAM the GPU may map, what limits it, and where that was set.

The amdgpu driver reports ``mem_info_gtt_total`` (``amdgpu.gttsize`` when set,
else the TTM limit); allocations stop at TTM's ``pages_limit`` (``amdttm`` with
the packaged DKMS driver), which defaults to half of RAM. When the two disagree
the kernel logs "GTT size has been set as X but TTM size has been set as Y, this
is unusual", and the smaller one is what a process can really use.
"""

from __future__ import annotations

from dataclasses import dataclass

from .environment import Environment, Gpu

DEFAULT_SOURCE = "default: 50% of RAM"


@dataclass(frozen=True)
class GttInfo:
    """GTT of one GPU; sizes in bytes, None where unknown."""

    gfx_target: str | None
    total_bytes: int | None  # what the driver reports (mem_info_gtt_total)
    used_bytes: int | None
    vram_total_bytes: int | None
    system_memory_bytes: int | None
    limit_bytes: int | None  # the TTM limit that allocations stop at
    limit_source: str  # "ttm.pages_limit", "amdttm.pages_limit", DEFAULT_SOURCE, "unknown"
    gttsize_bytes: int | None  # amdgpu.gttsize, when set
    is_apu: bool

    @property
    def free_bytes(self) -> int | None:
        if self.total_bytes is None or self.used_bytes is None:
            return None
        return max(self.total_bytes - self.used_bytes, 0)

    @property
    def usable_bytes(self) -> int | None:
        """What a process can allocate: the smaller of the driver's size and TTM's limit."""
        known = [b for b in (self.total_bytes, self.limit_bytes) if b is not None]
        return min(known) if known else None

    @property
    def is_default(self) -> bool:
        return self.limit_source == DEFAULT_SOURCE

    @property
    def exceeds_vram(self) -> bool | None:
        """GTT larger than VRAM: allocations go to GTT (expected on an APU)."""
        usable = self.usable_bytes
        if usable is None or self.vram_total_bytes is None:
            return None
        return usable > self.vram_total_bytes

    @property
    def disagrees(self) -> bool:
        """The driver's GTT size and TTM's limit differ by more than a page pool's slack."""
        if self.total_bytes is None or self.limit_bytes is None:
            return False
        return abs(self.total_bytes - self.limit_bytes) > max(self.limit_bytes // 100, 1 << 20)

    def raise_hint(self) -> str:
        """How the current limit came to be and what to change."""
        param = (
            "amdttm.pages_limit" if self.limit_source.startswith("amdttm") else "ttm.pages_limit"
        )
        if self.is_default:
            return f"GTT defaults to 50% of RAM; raise {param}"
        if self.gttsize_bytes is not None and self.disagrees:
            return f"amdgpu.gttsize and {param} disagree; set {param}"
        return f"set by {self.limit_source}; raise it"


def _int(value: str | None) -> int | None:
    from .parsing import decimal

    return decimal(value) if value is not None else None


def gtt_info(env: Environment, gpu: Gpu) -> GttInfo:
    """Work out the GTT limits of ``gpu`` from the environment's kernel settings."""
    name = f"{env.ttm_module}.pages_limit"
    param = env.param(name)
    pages = _int(param.value) if param else None
    half_ram = env.system_memory_bytes // 2 if env.system_memory_bytes else None
    limit: int | None
    if pages is not None and pages > 0:
        limit = pages * env.page_size
        on_cmdline = any(p.name == name and p.origin == "cmdline" for p in env.kernel_params)
        near_half = half_ram is not None and abs(limit - half_ram) <= half_ram // 50
        source = DEFAULT_SOURCE if near_half and not on_cmdline else name
    elif half_ram is not None:
        limit, source = half_ram, DEFAULT_SOURCE
    else:
        limit, source = None, "unknown"
    gttsize = env.param("amdgpu.gttsize")
    gttsize_mib = _int(gttsize.value) if gttsize else None
    return GttInfo(
        gfx_target=gpu.gfx_target,
        total_bytes=gpu.gtt_total_bytes,
        used_bytes=gpu.gtt_used_bytes,
        vram_total_bytes=gpu.vram_total_bytes,
        system_memory_bytes=env.system_memory_bytes,
        limit_bytes=limit,
        limit_source=source,
        gttsize_bytes=gttsize_mib << 20 if gttsize_mib and gttsize_mib > 0 else None,
        is_apu=gpu.is_apu,
    )
