"""One machine, one need, one plan: every output that suggests a memory change quotes the
same one, and none lowers a ``pages_limit`` the user set (README "Memory on APUs", "The
plan"). Checked on every example root, through real ``pytest-therock doctor`` processes
(text and ``--json``) and real pytest sessions (header, ``-v`` summary, skip reason,
JUnit properties)."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES, run

ROOTS = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())
NEEDS = [None, 16, 64, 96, 200]
MEMORY_CODES = ("memory-config", "memory-below-need", "memory-unknown")
DIAG = re.compile(r"^(?:therock: )?(\w+)\[([\w-]+)\]: (.*?)(?:\. Fix: (.*))?$")
PAGES = re.compile(r"pages_limit=(\d+)")


@functools.cache
def doctor(root: str, *args: str) -> str:
    """A real ``pytest-therock doctor`` process on the example root (once per arguments)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_therock.cli",
            "doctor",
            "--root",
            str(EXAMPLES / root),
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def memory_fixes(lines: list[str]) -> dict[str, str | None]:
    """The memory diagnostics' fixes, by code."""
    found = {}
    for line in lines:
        match = DIAG.match(line)
        if match and match.group(2) in MEMORY_CODES:
            found[match.group(2)] = match.group(4)
    return found


def user_pages(data: dict[str, Any]) -> int:
    """The largest ``pages_limit`` the user set (live or on the command line), else 0."""
    memory = data["memory"]
    param = memory[0]["ttm_param"] if memory else "ttm.pages_limit"
    values = [p["value"] for p in data["kernel_params"] if p["name"] == param]
    return max((int(v) for v in values if v.strip().isdigit()), default=0)


def planned_change(data: dict[str, Any]) -> str | None:
    plan = data["plan"]
    return plan["change"] if plan is not None else None


@pytest.mark.parametrize("need", NEEDS, ids=lambda n: f"need{n}")
@pytest.mark.parametrize("root", ROOTS)
def test_every_output_quotes_the_one_plan(root: str, need: int | None) -> None:
    asked = ("--need", str(need)) if need else ()
    text = doctor(root, *asked).splitlines()
    data = json.loads(doctor(root, *asked, "--json"))
    change = planned_change(data)
    # The JSON plan is the plan the text quotes: every memory fix is it (or, for an
    # unknown size, how to find it out).
    fixes = memory_fixes(text)
    json_fixes = {d["code"]: d["fix"] for d in data["diagnostics"] if d["code"] in MEMORY_CODES}
    assert fixes == json_fixes
    for code, fix in fixes.items():
        if code == "memory-unknown" and fix != change:
            assert fix is not None and "amd-smi static" in fix
        else:
            assert fix == change, (code, fix, change)
    plan_lines = [line for line in text if line.startswith("plan for ")]
    if need:
        (line,) = plan_lines if data["plan"] is not None else ([""])
        assert change is None or change in line
    else:
        assert not plan_lines
    # One number, never below the value the user set.
    printed = {int(p) for fix in fixes.values() for p in PAGES.findall(fix or "")}
    printed |= {int(p) for line in plan_lines for p in PAGES.findall(line)}
    assert len(printed) <= 1, printed
    if data["plan"] is not None and data["plan"]["pages_limit"] is not None:
        assert printed == {data["plan"]["pages_limit"]}
        assert data["plan"]["pages_limit"] >= user_pages(data)
    # "Below" only when it is established: a size that is unknown is said to be unknown.
    sizes = [m["allocatable_bytes"] for m in data["memory"]]
    if need and sizes and all(s is None for s in sizes):
        assert "memory-below-need" not in fixes
        assert "memory-unknown" in fixes
        assert any("is unknown" in line for line in text if "memory-unknown" in line)


@pytest.mark.parametrize("need", [n for n in NEEDS if n], ids=lambda n: f"need{n}")
@pytest.mark.parametrize("root", ROOTS)
def test_a_session_quotes_the_doctors_plan(
    pytester: pytest.Pytester, tmp_path: Path, root: str, need: int
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.requires_gpu_memory_gb({need})
        def test_model():
            pass
        """
    )
    xml = tmp_path / "junit.xml"
    result = run(pytester, f"--therock-root={EXAMPLES / root}", "-v", "-rs", f"--junitxml={xml}")
    lines = result.stdout.lines
    plain = json.loads(doctor(root, "--json"))
    needed = json.loads(doctor(root, "--need", str(need), "--json"))
    header = memory_fixes([line for line in lines if line.startswith("therock: ")])
    summary = memory_fixes([line for line in lines if not line.startswith("therock: ")])
    # The header's fix is the doctor's (no need); the summary's is `doctor --need`'s.
    if "memory-config" in header:
        assert header["memory-config"] == planned_change(plain)
    for code, fix in summary.items():
        if code == "memory-unknown" and fix != planned_change(needed):
            assert fix is not None and "amd-smi static" in fix
        else:
            assert fix == planned_change(needed), (code, fix)
    # Where the need goes past what the settings ask for, the summary says its plan
    # replaces the header's: never two plans side by side unexplained.
    later = summary.get("memory-below-need")
    if header.get("memory-config") and later and later != header["memory-config"]:
        (line,) = [x for x in lines if x.startswith("warning[memory-below-need]")]
        assert "this plan replaces the one for the" in line
    # Neither lowers what the user set, nor what the other sets.
    pages = [
        int(p) for fix in (*header.values(), *summary.values()) for p in PAGES.findall(fix or "")
    ]
    assert all(p >= user_pages(plain) for p in pages)
    if len(pages) == 2:
        assert pages[1] >= pages[0]
    # The skip reason, and its JUnit property, say the same; "below" only when it is.
    skipped = [line.split(": ", 1)[1] for line in lines if line.startswith("SKIPPED [1]")]
    props = {
        p.get("name"): p.get("value")
        for p in ET.parse(xml).getroot().iter("property")
        if p.get("name") == "therock_unmet"
    }
    if not skipped:
        assert "memory-below-need" not in summary and "memory-unknown" not in summary
        return
    (reason,) = skipped
    assert props == {"therock_unmet": reason}
    memory = needed["memory"]
    if memory and all(m["allocatable_bytes"] is None for m in memory):
        assert "is unknown" in reason and "found unknown" not in reason
        assert "memory-below-need" not in summary
    first = memory[0] if memory else {}
    kfd, live = first.get("kfd_ttm_bytes"), first.get("limit_bytes")
    plan = needed["plan"] or {}
    if first.get("kfd_conflict") and kfd < live and plan.get("pages_limit") == user_pages(plain):
        # set high enough, not in effect: nothing to raise, a reboot to take it
        assert f"raise {first['ttm_param']}" not in reason and "reboot" in reason


@pytest.mark.parametrize("need", [None, 16, 48])
def test_a_pages_limit_lowered_at_runtime_is_kept_and_quoted_once(
    tmp_path: Path, need: int | None
) -> None:
    """strix-halo-gtt-raised with its live ttm.pages_limit lowered to 32 GiB after KFD took
    62.5 GiB: a process gets 32 GiB. The plan keeps at least the 32 GiB the user set, and
    memory-config gives no fix of its own besides the plan."""
    import shutil

    root = shutil.copytree(EXAMPLES / "strix-halo-gtt-raised", tmp_path / "root")
    (root / "sys/module/ttm/parameters/pages_limit").write_text("8388608\n")
    asked = ("--need", str(need)) if need else ()
    base = [sys.executable, "-m", "pytest_therock.cli", "doctor", "--root", str(root), *asked]
    text = subprocess.run(base, capture_output=True, text=True, check=False, timeout=120).stdout
    out = subprocess.run([*base, "--json"], capture_output=True, text=True, timeout=120)
    data = json.loads(out.stdout)
    assert "a process gets the smaller, the live ttm.pages_limit" in text
    fixes = memory_fixes(text.splitlines())
    assert fixes.get("memory-config") == planned_change(data)
    plan = data["plan"]
    assert plan is not None  # the settings ask for 32 GiB
    if need == 48:
        assert plan["pages_limit"] == 48 * 2**30 // 4096  # raised, from 32 GiB
        assert fixes["memory-below-need"] == plan["change"]
    else:
        assert plan["met"] and plan["change"] is None
        assert not any(p.isdigit() for fix in fixes.values() for p in PAGES.findall(fix or ""))
