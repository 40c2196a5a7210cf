"""What was found: immutable records that round-trip through JSON.

The records that every start-up builds are :class:`typing.NamedTuple`, not frozen
dataclasses: defining a frozen dataclass compiles its generated methods, about 1.5 ms a
class on CPython 3.11 (six times a NamedTuple), and detection defines some twenty of
them before the first test is collected. Copy one with ``record._replace(field=value)``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

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


class Gpu(NamedTuple):
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


class KernelParam(NamedTuple):
    """A kernel or module parameter that shapes GPU memory, and where it was read."""

    name: str  # "ttm.pages_limit", "amdttm.pages_limit", "amdgpu.gttsize", ...
    value: str
    origin: str  # "sysfs" (the live value) or "cmdline"


class KfdAccess(NamedTuple):
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


class ToolStatus(NamedTuple):
    """How a tool run (or its recorded output) went."""

    ok: bool
    code: str  # "ok", or the error code ("rock-not-loaded", "not-found", "timeout", ...)
    message: str  # one line: what failed and what to do


class SmiSummary(NamedTuple):
    """What amd-smi (or rocm-smi) says of the driver and itself."""

    tool: str  # "amd-smi" or "rocm-smi"
    tool_version: str | None
    rocm_version: str | None
    driver_version: str | None  # amdgpu's version (DKMS), or the kernel release (in-tree)
    status: ToolStatus


class Problem(NamedTuple):
    """A source that was missing, unreadable or malformed."""

    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


class Environment(NamedTuple):
    """Everything detected about the ROCm environment of one machine (or snapshot)."""

    root: str
    gpus: tuple[Gpu, ...]  # every AMD GPU found, in KFD node order
    system_memory_bytes: int | None
    page_size: int
    kernel_params: tuple[KernelParam, ...]
    kfd: KfdAccess
    env_vars: Mapping[str, str] = types.MappingProxyType({})  # visibility, override variables
    problems: tuple[Problem, ...] = ()
    ttm_module: str = "ttm"  # "amdttm" when the DKMS driver's TTM is loaded
    wsl: bool = False
    rocminfo: ToolStatus | None = None  # None: rocminfo was not consulted
    kernel_log: KernelLogFacts | None = None  # None: the kernel log was not read
    smi: SmiSummary | None = None  # None: neither amd-smi nor rocm-smi was consulted
    versions: Versions | None = None  # None: not looked up (pytest does it when a marker asks)
    #: KFD topology nodes that exist but could not be read, or whose properties no kernel
    #: prints: each may be a GPU, so the GPUs are unknown (absence.py), never "none".
    unknown_nodes: tuple[Problem, ...] = ()

    @property
    def visible_gpus(self) -> tuple[Gpu, ...]:
        """The GPUs the ROCm runtime will expose, after the visibility variables."""
        if not any(name in self.env_vars for name in VISIBILITY_VARIABLES):
            return self.gpus
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


def record_fields(obj: Any) -> tuple[str, ...] | None:
    """The field names of a record (a NamedTuple or a dataclass, instance or class);
    None for anything else."""
    if dataclasses.is_dataclass(obj):
        return tuple(f.name for f in dataclasses.fields(obj))
    cls = obj if isinstance(obj, type) else type(obj)
    names = getattr(cls, "_fields", None)
    return names if issubclass(cls, tuple) and isinstance(names, tuple) else None


def to_dict(obj: Any) -> Any:
    """A tree of records as plain JSON values."""
    names = None if isinstance(obj, type) else record_fields(obj)
    if names is not None:
        return {name: to_dict(getattr(obj, name)) for name in names}
    if isinstance(obj, tuple | list):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


T = TypeVar("T")


def from_dict(cls: type[T], data: Any) -> T:
    """Rebuild a tree of records written by :func:`to_dict`."""
    from .kernel_log import KernelEvent, KernelLogFacts  # only a type here: imported late
    from .versions import Versions

    names = {"KernelLogFacts": KernelLogFacts, "KernelEvent": KernelEvent, "Versions": Versions}
    hints = typing.get_type_hints(cls, localns=names)
    kwargs = {name: _build(hints[name], data[name]) for name in record_fields(cls) or ()}
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
    if isinstance(tp, type) and record_fields(tp) is not None:
        return from_dict(tp, value)
    return value
