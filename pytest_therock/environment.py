"""What was found: frozen dataclasses that round-trip through JSON."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .kernel_log import KernelLogFacts
    from .versions import Versions

GIB = 1 << 30
MIB = 1 << 20

#: Environment variables that restrict or fake the GPUs the ROCm runtime sees.
VISIBILITY_VARIABLES = ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")
OVERRIDE_VARIABLES = ("HSA_OVERRIDE_GFX_VERSION",)


def fmt_bytes(n: int | None) -> str:
    """``62.5 GiB``, ``64 GiB``, ``512 MiB``, ``1074 bytes`` (below 1 MiB, where MiB would
    round to 0); ``unknown`` for None."""
    if n is None:
        return "unknown"
    if n >= GIB:
        return f"{n / GIB:.1f}".removesuffix(".0") + " GiB"
    if n < MIB:
        return f"{n} bytes"
    return f"{n / MIB:.0f} MiB"


@dataclass(frozen=True)
class Gpu:
    """One AMD GPU, as the KFD topology and DRM sysfs describe it."""

    node_id: int
    gfx_target: str | None  # "gfx1151"; None on kernels without gfx_target_version
    gfx_target_version: int | None
    vendor_id: int
    device_id: int
    compute_units: int | None
    simd_count: int
    wavefront_size: int | None
    unique_id: int | None
    pci_slot: str | None  # "0000:c5:00.0"
    drm_render_minor: int | None
    card: str | None  # "card1"
    is_apu: bool
    marketing_name: str | None = None
    source: str = "kfd"  # "kfd" (the KFD topology) or "rocminfo" (WSL, or a snapshot of it)
    vram_total_bytes: int | None = None
    vram_used_bytes: int | None = None
    vis_vram_total_bytes: int | None = None
    gtt_total_bytes: int | None = None
    gtt_used_bytes: int | None = None
    #: What KFD reports as the GPU's memory (the node's memory banks; rocminfo's GPU pool):
    #: VRAM on a discrete GPU; on an APU, the carve-out or the TTM limit (see memory.py).
    kfd_memory_bytes: int | None = None

    @property
    def label(self) -> str:
        """``gfx1151 (Radeon 8060S Graphics)``, or what is known of it."""
        target = self.gfx_target or f"device 0x{self.device_id:04x}"
        return f"{target} ({self.marketing_name})" if self.marketing_name else target

    @property
    def uuid(self) -> str | None:
        """The ``GPU-…`` id that ``rocminfo`` prints and ``ROCR_VISIBLE_DEVICES`` accepts."""
        return f"GPU-{self.unique_id:016x}" if self.unique_id else None  # APUs report 0


@dataclass(frozen=True)
class KernelParam:
    """A kernel or module parameter that shapes GPU memory, and where it was read."""

    name: str  # "ttm.pages_limit", "amdttm.pages_limit", "amdgpu.gttsize", ...
    value: str
    origin: str  # "sysfs" (the live value) or "cmdline"


@dataclass(frozen=True)
class KfdAccess:
    """``/dev/kfd``: present, and what this user may do with it."""

    present: bool
    readable: bool
    writable: bool
    group: str | None = None  # the group that owns /dev/kfd ("render")
    relogin: bool = False  # a member of that group, but not in this login session
    known: bool = True  # False: a snapshot's .therock/kfd-access record was malformed

    @property
    def usable(self) -> bool:
        return self.present and self.readable and self.writable


@dataclass(frozen=True)
class ToolStatus:
    """How a tool run (or its recorded output) went."""

    ok: bool
    code: str  # "ok", or the error code ("rock-not-loaded", "not-found", "timeout", ...)
    message: str  # one line: what failed and what to do


@dataclass(frozen=True)
class SmiSummary:
    """What amd-smi (or rocm-smi) says of the driver and itself."""

    tool: str  # "amd-smi" or "rocm-smi"
    tool_version: str | None
    rocm_version: str | None
    driver_version: str | None  # amdgpu's version (DKMS), or the kernel release (in-tree)
    status: ToolStatus


@dataclass(frozen=True)
class Problem:
    """A source that was missing, unreadable or malformed."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass(frozen=True)
class Environment:
    """Everything detected about the ROCm environment of one machine (or snapshot)."""

    root: str
    gpus: tuple[Gpu, ...]  # every AMD GPU found, in KFD node order
    system_memory_bytes: int | None
    page_size: int
    kernel_params: tuple[KernelParam, ...]
    kfd: KfdAccess
    env_vars: dict[str, str] = field(default_factory=dict)  # visibility and override variables
    problems: tuple[Problem, ...] = ()
    ttm_module: str = "ttm"  # "amdttm" when the DKMS driver's TTM is loaded
    wsl: bool = False
    rocminfo: ToolStatus | None = None  # None: rocminfo was not consulted
    kernel_log: KernelLogFacts | None = None  # None: the kernel log was not read
    smi: SmiSummary | None = None  # None: neither amd-smi nor rocm-smi was consulted
    versions: Versions | None = None  # None: not looked up (pytest does it when a marker asks)

    @cached_property
    def visible_gpus(self) -> tuple[Gpu, ...]:
        """The GPUs the ROCm runtime will expose, after the visibility variables."""
        from .visibility import visible_gpus

        return visible_gpus(self.gpus, self.env_vars)

    @property
    def reachable(self) -> bool:
        """Whether this process can reach a GPU: ``/dev/kfd`` present, readable and
        writable (ROCr opens it ``O_RDWR``), or, under WSL without ``/dev/kfd``, ``/dev/dxg``.

        The one rule: ``--therock-expect``, strict markers, the ``kfd-*`` diagnostics and
        ``pytest-therock doctor`` all use it. A snapshot's own record of ``/dev/kfd``
        wins over its recorded ``rocminfo``; an unknown (malformed) record is not usable.
        """
        return self.kfd.usable or (self.wsl and not self.kfd.present)

    @property
    def usable(self) -> bool:
        """A GPU is visible and the runtime can reach it (:attr:`reachable`)."""
        return bool(self.visible_gpus) and self.reachable

    def param(self, name: str) -> KernelParam | None:
        """The live (sysfs) value of a parameter, else the command line's."""
        found = [p for p in self.kernel_params if p.name == name]
        found.sort(key=lambda p: p.origin != "sysfs")
        return found[0] if found else None

    def to_json(self) -> str:
        import json

        return json.dumps(to_dict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Environment:
        import json

        return from_dict(cls, json.loads(text))


def to_dict(obj: Any) -> Any:
    """A dataclass tree as plain JSON values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple | list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


T = TypeVar("T")


def from_dict(cls: type[T], data: Any) -> T:
    """Rebuild a dataclass tree written by :func:`to_dict`."""
    from .kernel_log import KernelEvent, KernelLogFacts  # only a type here: imported late
    from .versions import Versions

    names = {"KernelLogFacts": KernelLogFacts, "KernelEvent": KernelEvent, "Versions": Versions}
    hints = typing.get_type_hints(cls, localns=names)
    kwargs = {f.name: _build(hints[f.name], data[f.name]) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**kwargs)


def _build(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
        origin = typing.get_origin(tp)
    if origin is tuple:
        return tuple(_build(typing.get_args(tp)[0], v) for v in value)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value)  # type: ignore[arg-type]
    return value
