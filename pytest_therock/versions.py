"""Installed versions, read without importing anything: ROCm, TheRock's SDK, torch, kernel."""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from .environment import Problem
from .sysroot import RECORD_DIR, Root, SourceError

#: TheRock's Python SDK distributions (``pip install rocm[libraries,devel]``).
THEROCK_DISTRIBUTIONS = ("rocm", "rocm-sdk-core", "rocm-sdk-devel", "rocm-sdk-libraries")


class Versions(NamedTuple):
    """Installed versions: ROCm, torch, the kernel, amdgpu, TheRock's SDK."""

    rocm: str | None  # "7.2.0" (/opt/rocm/.info/version) or TheRock's SDK version
    rocm_source: str | None  # where ``rocm`` came from
    therock: Mapping[str, str] = MappingProxyType({})  # distribution -> version
    torch: str | None = None  # "2.9.1+rocm7.10.0a20251124"
    kernel: str | None = None
    amdgpu: str | None = None  # the DKMS driver's version; in-tree drivers have none

    @property
    def build_targets(self) -> tuple[str, ...]:
        """The GPU families TheRock's SDK was installed for: ``rocm-sdk-libraries-gfx1151``."""
        prefix = "rocm-sdk-libraries-"
        return tuple(sorted(n[len(prefix) :] for n in self.therock if n.startswith(prefix)))

    @property
    def torch_rocm(self) -> str | None:
        """The ROCm a torch build targets, from its local version: ``+rocm6.4`` -> ``6.4``."""
        local = (self.torch or "").partition("+")[2]
        return local.removeprefix("rocm") if local.startswith("rocm") else None


def _first_line(root: Root, rel: str, problems: list[Problem] | None = None) -> str | None:
    """The first line of ``rel``; None when it is missing or empty. One that cannot be
    read (``opt`` a file, permission) is added to ``problems``: unknown, not absent."""
    try:
        text = root.read_text(rel).strip()
    except SourceError as exc:
        if exc.reason != "missing" and problems is not None:
            problems.append(Problem(exc.path, exc.reason))
        return None
    return text.splitlines()[0].strip() if text else None


def python_distributions(names: tuple[str, ...]) -> dict[str, str]:
    """Versions of installed distributions, from their metadata (nothing is imported)."""
    from importlib import metadata

    found = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name in names or name.startswith("rocm-sdk-libraries-"):
            found[name] = dist.version
    return found


def _recorded_packages(root: Root, problems: list[Problem] | None = None) -> dict[str, str]:
    """Python packages as ``pytest-therock snapshot`` recorded them; a record that
    cannot be read or has not the recorded shape is a problem naming the file."""
    rel = f"{RECORD_DIR}/python-versions.json"
    try:
        if not root.exists(rel):
            return {}
        data = root.read_json(rel)
        if not isinstance(data, dict):
            raise SourceError(rel, "not a JSON object")
        therock = data.get("therock") or {}
        torch = data.get("torch")
        if not isinstance(therock, dict) or not all(
            isinstance(v, str) for v in (*therock, *therock.values())
        ):
            raise SourceError(rel, "'therock' is not an object of names to versions")
        if torch is not None and not isinstance(torch, str):
            raise SourceError(rel, "'torch' is not a version")
    except SourceError as exc:
        if problems is not None:
            problems.append(Problem(exc.path, exc.reason))
        return {}
    packages = dict(therock)
    if torch:
        packages["torch"] = torch
    return packages


def detect_versions(
    root: Root, environ: Mapping[str, str], problems: list[Problem] | None = None
) -> Versions:
    """Versions on this machine, or as a snapshot recorded them; a record that cannot
    be read is added to ``problems``."""
    candidates = []
    if environ.get("ROCM_PATH"):
        candidates.append(os.path.join(environ["ROCM_PATH"].lstrip("/"), ".info/version"))
    candidates.append("opt/rocm/.info/version")
    rocm, source = None, None
    for rel in candidates:
        rocm = _first_line(root, rel, problems)
        if rocm:
            source = "/" + rel
            break
    if root.is_live:
        packages = python_distributions((*THEROCK_DISTRIBUTIONS, "torch"))
    else:
        packages = _recorded_packages(root, problems)
    torch = packages.pop("torch", None)
    if rocm is None:
        rocm = packages.get("rocm-sdk-core") or packages.get("rocm")
        source = "TheRock Python SDK" if rocm else None
    return Versions(
        rocm=rocm,
        rocm_source=source,
        therock=packages,
        torch=torch,
        kernel=_first_line(root, "proc/sys/kernel/osrelease", problems),
        amdgpu=_first_line(root, "sys/module/amdgpu/version", problems),
    )
