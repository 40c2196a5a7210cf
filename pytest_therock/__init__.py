"""pytest-therock: detect the ROCm / TheRock environment and gate hardware tests.

Public names are imported lazily, so loading the plugin stays cheap.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not `typing`: the command line's Ctrl-C guard starts after this

__version__ = "0.1.0"

_EXPORTS = {
    "Environment": "environment",
    "Gpu": "environment",
    "KernelParam": "environment",
    "KfdAccess": "environment",
    "Problem": "environment",
    "GttInfo": "memory",
    "GpuMemory": "memory",
    "gtt_info": "memory",
    "gpu_memory": "memory",
    "plan": "memory",
    "Diagnostic": "diagnostics",
    "detect_environment": "detect",
    "Root": "sysroot",
    "parse_target_pattern": "targets",
    "per_target": "targets",
    "parse_rocminfo": "rocminfo",
    "RocminfoError": "rocminfo",
    "RocminfoReport": "rocminfo",
}

if TYPE_CHECKING:
    from typing import Any

    from .detect import detect as detect_environment
    from .diagnostics import Diagnostic
    from .environment import Environment, Gpu, KernelParam, KfdAccess, Problem
    from .memory import GpuMemory, GttInfo, gpu_memory, gtt_info, plan
    from .rocminfo import RocminfoError, RocminfoReport, parse_rocminfo
    from .sysroot import Root
    from .targets import parse_target_pattern, per_target

__all__ = [
    "Diagnostic",
    "Environment",
    "Gpu",
    "GpuMemory",
    "GttInfo",
    "KernelParam",
    "KfdAccess",
    "Problem",
    "RocminfoError",
    "RocminfoReport",
    "Root",
    "detect_environment",
    "gpu_memory",
    "gtt_info",
    "parse_rocminfo",
    "parse_target_pattern",
    "per_target",
    "plan",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_therock' has no attribute {name!r}")
    source = "detect" if name == "detect_environment" else name
    return getattr(importlib.import_module(f".{module}", __name__), source)
