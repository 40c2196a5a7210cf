"""External tools (rocminfo, amd-smi, rocm-smi): found, run with a timeout, or replayed.

On a live machine a tool runs only when something asks for it. Under a snapshot
root the tool never runs: its recorded output is read from ``.therock/``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from .sysroot import (
    MAX_TOOL_OUTPUT,
    RECORD_DIR,
    Root,
    SourceError,
    ToolResult,
    os_reason,
    run_tool,
)

#: Where each tool's output is recorded in a snapshot, by the arguments it ran with.
RECORDS: dict[tuple[str, ...], str] = {
    ("rocminfo",): "rocminfo",
    ("amd-smi",): "amd-smi",
    ("amd-smi", "version"): "amd-smi-version",
    ("amd-smi", "static", "--json"): "amd-smi-static",
    ("amd-smi", "metric", "--mem-usage", "--json"): "amd-smi-metric-mem-usage",
    ("rocm-smi", "--showmeminfo", "vram", "gtt", "--json"): "rocm-smi-showmeminfo",
    ("rocm-smi", "--showproductname", "--json"): "rocm-smi-showproductname",
}


def find_tool(name: str, environ: Mapping[str, str], explicit: str | None = None) -> str | None:
    """``explicit``, else ``$ROCM_PATH/bin``, ``/opt/rocm/bin``, then ``PATH``."""
    if explicit:
        return explicit
    dirs = [Path(environ["ROCM_PATH"], "bin")] if environ.get("ROCM_PATH") else []
    dirs.append(Path("/opt/rocm/bin"))
    for d in dirs:
        candidate = d / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name, path=environ.get("PATH", os.defpath))


def unrunnable(tool: str, environ: Mapping[str, str]) -> str | None:
    """Why ``tool`` (a path, or a name looked up on ``PATH``) cannot be run, or None."""
    if os.sep not in tool:
        found = shutil.which(tool, path=environ.get("PATH", os.defpath))
        return None if found else "not found on PATH"
    try:
        st = os.stat(tool)
    except OSError as exc:
        return os_reason(exc)
    import stat

    if stat.S_ISDIR(st.st_mode):
        return "a directory, not a program"
    return None if os.access(tool, os.X_OK) else "not executable (permission denied)"


def record_name(argv: tuple[str, ...]) -> str:
    return RECORDS.get(argv, "-".join(a.lstrip("-") for a in argv))


def replay(root: Root, argv: tuple[str, ...]) -> ToolResult:
    """A tool's output as recorded in a snapshot (``.therock/<name>.txt`` and ``.exit``)."""
    name = record_name(argv)
    try:
        output = root.read_text(f"{RECORD_DIR}/{name}.txt", MAX_TOOL_OUTPUT)
    except SourceError as exc:
        return ToolResult(
            argv, None, "", f"{argv[0]} output not recorded in the snapshot ({exc.reason})"
        )
    try:
        status = root.read_text(f"{RECORD_DIR}/{name}.exit").strip()
    except SourceError:
        status = "0"
    from .parsing import decimal

    code = decimal(status)
    if code is not None and -256 < code < 256:  # an exit status, or minus a signal number
        return ToolResult(argv, code, output)
    return ToolResult(argv, None, output, f"{argv[0]}: {status}")  # "timeout", "not found", ...


def run(
    root: Root,
    argv: tuple[str, ...],
    *,
    timeout: float,
    environ: Mapping[str, str] | None = None,
    explicit: str | None = None,
    source: str | None = None,
) -> ToolResult:
    """Run (live root) or replay (snapshot root) one tool; never raises.

    ``explicit``: the tool to run instead of looking for it, as a setting gave it;
    ``source`` names that setting (``ini therock_rocminfo``), and an ``explicit`` tool
    that cannot be run (missing, a directory, not executable: one stat, when the tool is
    first needed) is reported with it.
    """
    if not root.is_live:
        return replay(root, argv)
    environ = os.environ if environ is None else environ
    if explicit and source:
        why = unrunnable(explicit, environ)
        if why is not None:
            return ToolResult(argv, None, "", f"cannot run {explicit} ({source}): {why}")
    path = find_tool(argv[0], environ, explicit)
    if path is None:
        return ToolResult(
            argv, None, "", f"{argv[0]} not found (looked in $ROCM_PATH/bin, /opt/rocm/bin, PATH)"
        )
    return run_tool([path, *argv[1:]], timeout)
