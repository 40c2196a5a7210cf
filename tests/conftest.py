"""Test helpers: filesystem roots assembled from the real recorded samples in realdata/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REALDATA = Path(__file__).parent / "realdata"
EXAMPLES = Path(__file__).parent.parent / "examples" / "roots"
KFD = "sys/class/kfd/kfd/topology/nodes"


def run(pytester: pytest.Pytester, *args: str, xdist: bool = False) -> pytest.RunResult:
    """An in-process session. Plugins not under test stay out: pytester reloads them each run."""
    quiet = ("-p", "no:hypothesispytest", "-p", "no:cacheprovider")
    return pytester.runpytest(*quiet, *(() if xdist else ("-p", "no:xdist")), *args)


def real(rel: str) -> str:
    """The text of a real sample, verbatim."""
    return (REALDATA / rel).read_text()


class RootBuilder:
    """Lays out a machine's files under a directory, the way the kernel does under /."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)

    def write(self, rel: str, text: str) -> RootBuilder:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return self

    def topology(self, name: str) -> RootBuilder:
        """A whole real KFD topology capture from realdata/kfd-topology/."""
        shutil.copytree(
            REALDATA / "kfd-topology" / name / "sys", self.path / "sys", dirs_exist_ok=True
        )
        return self

    def node(self, node: int, sample: str) -> RootBuilder:
        """One KFD node from a real properties file in realdata/sysfs/."""
        return self.write(f"{KFD}/{node}/properties", real(f"sysfs/{sample}"))

    def card(self, card: str, pci_slot: str, **files: str) -> RootBuilder:
        """A DRM card; ``files`` maps mem_info_* names to real sample files."""
        self.write(
            f"sys/class/drm/{card}/device/uevent", f"DRIVER=amdgpu\nPCI_SLOT_NAME={pci_slot}\n"
        )
        for name, sample in files.items():
            self.write(f"sys/class/drm/{card}/device/{name}", real(f"sysfs/{sample}"))
        return self

    def kfd(self, access: str = "rw") -> RootBuilder:
        """/dev/kfd, and what the user could do with it: "rw", "r", "none" or "missing"."""
        if access != "missing":
            self.write("dev/kfd", "")
        return self.write(".therock/kfd-access", access + "\n")

    def param(self, module: str, name: str, value: str) -> RootBuilder:
        return self.write(f"sys/module/{module}/parameters/{name}", value)


@pytest.fixture
def root(tmp_path: Path) -> RootBuilder:
    return RootBuilder(tmp_path / "root")


def gone(pid: int) -> bool:
    """The process is gone (a zombie nobody reaped counts as gone: it runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in ("Z", "X")
