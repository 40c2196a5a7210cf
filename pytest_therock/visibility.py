"""Which GPUs the ROCm runtime exposes under the visibility variables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from .parsing import decimal

G = TypeVar("G")


def select(items: Sequence[G], spec: str, uuid_of: dict[str, int] | None = None) -> list[G]:
    """Apply one ``*_VISIBLE_DEVICES`` value to ``items``.

    Entries are indices into ``items`` (ASCII digits: ``"²"`` names no device, as the C
    runtimes read it) or, for ROCR, ``GPU-<uuid>``. As in the runtimes, the list stops
    at the first entry that names no device; an empty value hides every device.
    """
    chosen: dict[int, G] = {}  # by index: a list's `in` would make 10,000 entries quadratic
    for entry in (e.strip() for e in spec.split(",")):
        number = decimal(entry) if entry[:1] != "-" else None
        if number is not None and number < len(items):
            index = number
        elif uuid_of is not None and entry.lower() in uuid_of:
            index = uuid_of[entry.lower()]
        else:
            break
        chosen.setdefault(index, items[index])
    return list(chosen.values())


def visible_gpus(gpus: Sequence[G], env: Mapping[str, str]) -> tuple[G, ...]:
    """ROCR_VISIBLE_DEVICES filters first; HIP (or CUDA) then indexes what is left."""
    result = list(gpus)
    if "ROCR_VISIBLE_DEVICES" in env:
        uuids = {str(getattr(g, "uuid", "")).lower(): i for i, g in enumerate(result)}
        result = select(result, env["ROCR_VISIBLE_DEVICES"], uuids)
    hip = env.get("HIP_VISIBLE_DEVICES", env.get("CUDA_VISIBLE_DEVICES"))
    if hip is not None:
        result = select(result, hip)
    return tuple(result)
