"""System RAM is read on a machine without an AMD GPU too (a CPU-only CI runner)."""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import RootBuilder, real, run

MEMINFO = real("procfs/meminfo-ci-machine-debian12-container-24g.txt")  # 24684092 kB
MEMINFO_BYTES = 24684092 * 1024
#: The README's hook example ("Hooks"), as a project's conftest would hold it.
README_HOOK = """
import pytest

from pytest_therock import Diagnostic


@pytest.hookimpl(optionalhook=True)
def pytest_therock_diagnostics(env, config):
    if env.system_memory_bytes and env.system_memory_bytes < 256 * 2**30:
        return [
            Diagnostic(
                "lab-ram", "warning", "the 405B model needs 256 GiB of RAM", "use the big runner"
            )
        ]
    return []
"""


@pytest.fixture
def cpu_only(root: RootBuilder) -> Path:
    """A snapshot of a machine without an AMD GPU whose /proc/meminfo was recorded."""
    return root.kfd("missing").write("proc/meminfo", MEMINFO).path


def test_a_snapshot_without_gpu_reports_its_ram_in_junit_and_doctor(
    pytester: pytest.Pytester, cpu_only: Path, tmp_path: Path
) -> None:
    pytester.makepyfile("def test_a(): pass")
    report = tmp_path / "junit.xml"
    result = run(pytester, f"--therock-root={cpu_only}", f"--junitxml={report}", "-v")
    result.stdout.fnmatch_lines(["therock: RAM 23.5 GiB"])
    props = {p.get("name"): p.get("value") for p in ET.parse(report).iter("property")}
    assert props["therock_system_memory_bytes"] == str(MEMINFO_BYTES)
    assert props["therock_gpus"] == "none"
    doctor = subprocess.run(
        [Path(sys.executable).parent / "pytest-therock", "doctor", "--root", str(cpu_only)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "RAM 23.5 GiB" in doctor.stdout, doctor.stdout


def test_the_readme_hook_example_fires_on_a_cpu_only_runner(
    pytester: pytest.Pytester, cpu_only: Path
) -> None:
    pytester.makeconftest(README_HOOK)
    pytester.makepyfile("def test_a(): pass")
    result = run(pytester, f"--therock-root={cpu_only}", "-v")
    result.stdout.fnmatch_lines(["therock: warning[[]lab-ram[]]: the 405B model needs 256 GiB*"])


def test_this_machine_reports_the_kernels_count_of_ram(pytester: pytest.Pytester) -> None:
    """Live (``/``), with or without an AMD GPU: what ``MemTotal`` says, as sysconf counts it."""
    live = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    pytester.makepyfile(
        f"""
        def test_ram(therock_env):
            assert therock_env.system_memory_bytes == {live}
        """
    )
    run(pytester, "--therock-root=/").assert_outcomes(passed=1)


def test_a_snapshot_without_gpu_or_meminfo_stays_a_one_line_header(
    pytester: pytest.Pytester, root: RootBuilder
) -> None:
    """Nothing recorded about RAM on a machine without a GPU: RAM unknown, no problem line."""
    path = root.kfd("missing").path
    pytester.makepyfile("def test_a(): pass")
    lines = [
        line
        for line in run(pytester, f"--therock-root={path}").stdout.lines
        if line.startswith("therock:")
    ]
    assert lines[-1].startswith("therock: no AMD GPU in "), lines  # the root is named
    assert "(no /dev/kfd)" in lines[-1], lines
    assert not any("meminfo" in line for line in lines), lines
