"""``pytest-therock snapshot``: record what the probes read, to replay it elsewhere.

The snapshot is a directory laid out like ``/`` (or a ``.tar.gz`` of one) holding
only the files the plugin reads, plus the tools' outputs under ``.therock/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from . import __version__, tools
from .detect import DRM, DRM_MEMORY, KFD_NODES, MODULE_PARAMS
from .sysroot import RECORD_DIR, Root, SourceError, ToolResult, run_tool
from .versions import THEROCK_DISTRIBUTIONS, python_distributions

FILES = (
    "proc/cmdline",
    "proc/meminfo",
    "proc/version",
    "proc/sys/kernel/osrelease",
    "sys/module/amdgpu/version",
    "opt/rocm/.info/version",
)


def _kfd_files(root: Root) -> Iterator[str]:
    top = KFD_NODES.rsplit("/", 1)[0]
    yield f"{top}/generation_id"
    yield f"{top}/system_properties"
    for node in root.listdir(KFD_NODES):
        for name in ("properties", "name", "gpu_id"):
            yield f"{KFD_NODES}/{node}/{name}"
        for bank in root.listdir(f"{KFD_NODES}/{node}/mem_banks"):
            for name in ("properties", "used_memory"):
                yield f"{KFD_NODES}/{node}/mem_banks/{bank}/{name}"


def _drm_files(root: Root) -> Iterator[str]:
    for card in root.listdir(DRM):
        if card.startswith("card") and card[4:].isdigit():
            for name in ("uevent", "product_name", *(f"mem_info_{m}" for m in DRM_MEMORY)):
                yield f"{DRM}/{card}/device/{name}"


def recorded_files(root: Root, environ: Mapping[str, str]) -> Iterator[str]:
    """Every file the probes read, relative to the root."""
    yield from FILES
    if environ.get("ROCM_PATH"):
        yield os.path.join(environ["ROCM_PATH"].lstrip("/"), ".info/version")
    yield from (f"sys/module/{item.replace('/', '/parameters/')}" for item in MODULE_PARAMS)
    yield from _kfd_files(root)
    yield from _drm_files(root)


def _record_tool(dest: Path, name: str, result: ToolResult) -> None:
    (dest / f"{name}.txt").write_text(result.output)
    status = str(result.returncode) if result.error is None else result.error
    (dest / f"{name}.exit").write_text(status + "\n")


def take(
    destination: Path,
    environ: Mapping[str, str],
    timeout: float = 30.0,
    source: Root | None = None,
) -> list[str]:
    """Record this machine (or ``source``) into ``destination``: a directory or a ``.tar.gz``."""
    if destination.name.endswith((".tar.gz", ".tgz")):
        with tempfile.TemporaryDirectory() as tmp:
            written = take(Path(tmp), environ, timeout, source)
            with tarfile.open(destination, "w:gz") as tar:
                for rel in sorted(os.listdir(tmp)):
                    tar.add(Path(tmp, rel), arcname=rel)
            return written
    root = source or Root()
    written = []
    for rel in dict.fromkeys(recorded_files(root, environ)):
        try:
            text = root.read_text(rel)
        except SourceError:
            continue
        target = destination / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        written.append(rel)
    record = destination / RECORD_DIR
    record.mkdir(parents=True, exist_ok=True)
    for device in ("dev/kfd", "dev/dxg"):
        if root.exists(device):
            (destination / "dev").mkdir(exist_ok=True)
            (destination / device).touch()
            written.append(device)
    from .detect import kfd_access

    kfd = kfd_access(root)
    access = "".join(m for m, ok in (("r", kfd.readable), ("w", kfd.writable)) if ok)
    (record / "kfd-access").write_text((access or "none") if kfd.present else "missing")
    for argv in tools.RECORDS:  # every tool run a snapshot records
        result = tools.run(root, argv, timeout=timeout, environ=environ)
        if result.error is None or result.output:
            _record_tool(record, tools.record_name(argv), result)
            written.append(f"{RECORD_DIR}/{tools.record_name(argv)}.txt")
    if root.is_live:
        _record_tool(record, "dmesg", run_tool(["dmesg"], timeout))
        versions = {
            "therock": python_distributions(THEROCK_DISTRIBUTIONS),
            "torch": python_distributions(("torch",)).get("torch"),
        }
        (record / "python-versions.json").write_text(json.dumps(versions, indent=2) + "\n")
    else:  # re-recording a snapshot: keep what it recorded
        for name in ("dmesg.txt", "dmesg.exit", "python-versions.json"):
            with contextlib.suppress(SourceError):
                (record / name).write_text(root.read_text(f"{RECORD_DIR}/{name}"))
    meta = {"pytest_therock": __version__, "files": written}
    (record / "snapshot.json").write_text(json.dumps(meta, indent=2) + "\n")
    return written
