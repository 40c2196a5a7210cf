"""pytest-therock: detect the ROCm / TheRock environment and gate hardware tests.

Public names are imported lazily, so loading the plugin stays cheap.
"""

from __future__ import annotations

import importlib
import sys

TYPE_CHECKING = False  # not `typing`: the command line's Ctrl-C guard starts after this


def _skip_assert_rewrite(hooks: Iterable[object]) -> None:
    """Take this package's modules out of pytest's assertion rewriting.

    pytest marks every module of a plugin installed with a ``pytest11`` entry point for
    rewriting (``Config._mark_plugins_for_rewrite`` in ``_pytest/config/__init__.py``),
    so each one is loaded by ``AssertionRewritingHook`` (``_pytest/assertion/rewrite.py``),
    pure Python, instead of the import system's own loader. Measured with
    ``benchmarks/bench.py``'s import rows on the ``strix-halo`` header: 30 ms of the
    plugin's own import self times, 16 ms with ``--assert=plain``; without a bytecode
    cache the hook parses and rewrites each module again (``plugin.py``: 34 ms, against
    14 ms to compile it). The package holds no assertion that
    needs rewriting (two ``assert x is not None`` for the type checker). The mark is
    private to the hook, so it is read defensively: where it is not found, modules are
    rewritten as before. Called here, before pytest imports ``plugin`` (this file itself
    is loaded by the hook), and again by each session's ``pytest_addhooks`` (an
    in-process session installs a new hook).
    """
    for hook in hooks:
        marked = getattr(hook, "_must_rewrite", None)
        cache = getattr(hook, "_marked_for_rewrite_cache", None)
        if isinstance(marked, set) and isinstance(cache, dict) and __name__ in marked:
            marked.discard(__name__)
            cache.clear()


_skip_assert_rewrite(sys.meta_path)

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
    from collections.abc import Iterable
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
