"""--therock-expect means usable; --therock-expect-runtime asks the ROCm runtime itself.

Sessions over roots built from real KFD topologies, and fake ``rocminfo`` programs
whose output is a real recorded one (``cat`` of a file in realdata/rocminfo/).
"""

from __future__ import annotations

import os
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import EXAMPLES, REALDATA, RootBuilder, run

ROCMINFO = REALDATA / "rocminfo"
MI210_4X = ROCMINFO / "gfx90a-4x-mi210-2x-epyc7763-rocm5.7.1.txt"
DENIED = ROCMINFO / "error-kfd-permission-denied-not-member-of-render-rocm5.x.txt"

TESTS = """
import pytest

@pytest.mark.requires_gfx90a
def test_mi210():
    pass

@pytest.mark.requires_gpus(2)
def test_two():
    pass

def test_plain():
    pass
"""

STOPPED = pytest.ExitCode.INTERRUPTED  # 2


def mi210(root: RootBuilder, access: str) -> Path:
    """The real 8x MI210 KFD topology, with /dev/kfd as ``access`` says."""
    root.topology("topo-mi210-xgmi-pcie").kfd(access)
    return root.path


def output(result: pytest.RunResult) -> str:
    return result.stdout.str() + result.stderr.str()


def fake_rocminfo(tmp_path: Path, body: str, name: str = "rocminfo") -> Path:
    """An executable that logs each run to ``runs.log`` and then does ``body``."""
    tool = tmp_path / "bin" / name
    tool.parent.mkdir(exist_ok=True)
    tool.write_text(f"#!/bin/sh\necho run >> {tmp_path / 'runs.log'}\n{body}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return tool


def runs(tmp_path: Path) -> int:
    log = tmp_path / "runs.log"
    return len(log.read_text().split()) if log.exists() else 0


@pytest.mark.parametrize(
    ("access", "found", "fix"),
    [
        (
            "missing",
            "/dev/kfd is missing although the KFD topology lists 8 GPU(s)",
            "inside a container, pass --device /dev/kfd --device /dev/dri",
        ),
        (
            "r",
            "/dev/kfd is not readable and writable by this user",
            "`sudo usermod -aG render,video $USER`, then log in again",
        ),
    ],
)
def test_expect_stops_when_the_gpu_is_present_but_dev_kfd_is_unusable(
    pytester: pytest.Pytester, root: RootBuilder, access: str, found: str, fix: str
) -> None:
    pytester.makepyfile(TESTS)
    result = run(pytester, f"--therock-root={mi210(root, access)}", "--therock-expect", "gfx90a")
    assert result.ret == STOPPED
    result.assert_outcomes()
    assert (
        "pytest-therock: expected a usable gfx90a GPU (--therock-expect), found gfx90a x8, "
        f"but {found}; fix: {fix}; no test was run"
    ) in output(result)


def test_expect_stops_when_the_gpu_is_hidden_by_the_visibility_variables(
    pytester: pytest.Pytester, root: RootBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "")
    pytester.makepyfile(TESTS)
    result = run(pytester, f"--therock-root={mi210(root, 'rw')}", "--therock-expect", "gfx90a")
    assert result.ret == STOPPED
    result.assert_outcomes()
    assert (
        "expected a gfx90a GPU (--therock-expect), found gfx90a x8 (GPU 0,1,2,3,4,5,6,7) "
        "hidden by ROCR_VISIBLE_DEVICES=''; fix: include GPU 0,1,2,3,4,5,6,7 in the variable, "
        "or unset it; no test was run"
    ) in output(result)


def test_expect_without_an_amd_gpu_says_where_to_run(pytester: pytest.Pytester) -> None:
    """No /dev/kfd, no topology, rocminfo found nothing: the runner has no AMD GPU, or its
    amdgpu is not loaded; nothing here tells which, so no advice to load a driver."""
    pytester.makepyfile(TESTS)
    result = run(pytester, f"--therock-root={EXAMPLES / 'no-gpu'}", "--therock-expect", "gfx1151")
    assert result.ret == STOPPED
    assert (
        "expected a gfx1151 GPU (--therock-expect), found no AMD GPU (no /dev/kfd); fix: run on "
        "a machine with a gfx1151 GPU (in CI: the job ran on a runner without one; check its "
        "runs-on labels); if this machine has one: `pytest-therock doctor --explain kfd-missing`"
    ) in output(result)
    assert "modprobe" not in output(result)


def test_expect_passes_on_a_usable_gpu(pytester: pytest.Pytester, root: RootBuilder) -> None:
    pytester.makepyfile(TESTS)
    result = run(pytester, f"--therock-root={mi210(root, 'rw')}", "--therock-expect", "gfx90a")
    result.assert_outcomes(passed=3)


def test_under_xdist_expect_stops_before_any_worker_starts(
    pytester: pytest.Pytester, root: RootBuilder, tmp_path: Path
) -> None:
    pytester.makepyfile(TESTS)
    path = mi210(root, "missing")
    xml = tmp_path / "junit.xml"
    result = run(
        pytester,
        "-n",
        "2",
        f"--therock-root={path}",
        "--therock-expect=gfx90a",
        f"--junitxml={xml}",
        xdist=True,
    )
    assert result.ret == STOPPED
    text = output(result)
    assert text.count("/dev/kfd is missing although the KFD topology lists 8 GPU(s);") == 1
    assert "therock: error[kfd-missing]" in text  # the header is shown first
    assert "created:" not in text and "[gw" not in text  # no worker was started
    suite = ET.parse(xml).getroot().find("testsuite")  # the report says why, as without -n
    assert suite is not None and suite.get("errors") == "1"


def test_a_stopped_session_says_why_in_its_junit_report(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """A wrong target: the reason as a suite property and as an error a dashboard counts."""
    pytester.makepyfile(TESTS)
    xml = tmp_path / "junit.xml"
    result = run(
        pytester,
        f"--therock-root={EXAMPLES / 'mi210-8x'}",
        "--therock-expect=gfx1151",
        f"--junitxml={xml}",
    )
    assert result.ret == STOPPED
    why = (
        "pytest-therock: expected a gfx1151 GPU (--therock-expect), found gfx90a x8; fix: run "
        "on a machine with a gfx1151 GPU (in CI: the job ran on a runner without one; check its "
        "runs-on labels); no test was run"
    )
    assert why in output(result)
    suite = ET.parse(xml).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("errors")) == ("1", "1")
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["therock_stopped"] == why
    error = suite.find("testcase/error")
    assert error is not None and error.text == why


def test_two_failed_proofs_make_one_line_with_one_prefix(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(TESTS)
    tool = fake_rocminfo(tmp_path, "exit 1")
    result = run(
        pytester,
        f"--therock-root={EXAMPLES / 'mi210-8x'}",
        "--therock-expect=gfx1151",
        "--therock-expect-runtime",
        f"--therock-rocminfo={tool}",
    )
    assert result.ret == STOPPED
    line = next(x for x in output(result).splitlines() if "no test was run" in x)
    assert line.count("pytest-therock:") == 1
    assert "found gfx90a x8" in line and "; runtime proof (--therock-expect-runtime): " in line


def test_strict_requirements_treat_an_unusable_gpu_as_absent(
    pytester: pytest.Pytester, root: RootBuilder
) -> None:
    pytester.makepyfile(TESTS)
    path = mi210(root, "missing")
    lenient = run(pytester, f"--therock-root={path}")
    lenient.assert_outcomes(passed=3)  # without --therock-strict, nothing changes
    result = run(pytester, f"--therock-root={path}", "--therock-strict")
    result.assert_outcomes(passed=1, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*requires_gfx90a: found gfx90a x8, but it cannot be used: /dev/kfd is missing "
            "although the KFD topology lists 8 GPU(s) (fix: inside a container, pass "
            "--device /dev/kfd --device /dev/dri) [[]--therock-strict[]]*"
        ]
    )


# --- the runtime proof -------------------------------------------------------------------------


def test_runtime_proof_replays_a_snapshot_and_is_reported(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile("def test_a(): pass")
    report = tmp_path / "junit.xml"
    result = run(
        pytester,
        f"--therock-root={EXAMPLES / 'strix-halo'}",
        "--therock-expect=gfx1151",
        "--therock-expect-runtime",
        f"--junitxml={report}",
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["therock: runtime: rocminfo lists gfx1151"])
    props = {p.get("name"): p.get("value") for p in ET.parse(report).iter("property")}
    assert props["therock_runtime"] == "ok: rocminfo lists gfx1151"


def test_runtime_proof_fails_when_rocminfo_lists_fewer_gpus_than_the_kernel(
    pytester: pytest.Pytester, root: RootBuilder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """8 MI210 in the KFD topology, 4 in the runtime's recorded listing; a filter fixes it."""
    mi210(root, "rw")
    root.write(".therock/rocminfo.txt", MI210_4X.read_text())
    pytester.makepyfile(TESTS)
    args = (f"--therock-root={root.path}", "--therock-expect=gfx90a", "--therock-expect-runtime")
    report = root.path.parent / "junit.xml"
    result = run(pytester, *args, f"--junitxml={report}")
    assert result.ret == STOPPED
    assert (
        "pytest-therock: runtime proof (--therock-expect-runtime): rocminfo lists 4 gfx90a "
        "GPU(s), the KFD topology 8; no test was run"
    ) in output(result)
    result.stdout.fnmatch_lines(["therock: runtime proof failed: rocminfo lists 4 gfx90a *"])
    props = {p.get("name"): p.get("value") for p in ET.parse(report).iter("property")}
    assert props["therock_runtime"] == "failed: rocminfo lists 4 gfx90a GPU(s), the KFD topology 8"
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "0,1,2,3")
    run(pytester, *args).assert_outcomes(passed=3)


def test_runtime_proof_fails_when_rocminfo_fails(pytester: pytest.Pytester, tmp_path: Path) -> None:
    tool = fake_rocminfo(tmp_path, f"cat {DENIED}\nexit 1")
    pytester.makepyfile("def test_a(): pass")
    result = run(pytester, "--therock-expect-runtime", f"--therock-rocminfo={tool}")
    assert result.ret == STOPPED
    text = output(result)
    assert "runtime proof (--therock-expect-runtime): " in text
    assert "render" in text.split("runtime proof", 1)[1]  # the tool's reason and its fix
    assert runs(tmp_path) == 1


def test_runtime_proof_kills_a_hung_rocminfo(pytester: pytest.Pytester, tmp_path: Path) -> None:
    tool = fake_rocminfo(tmp_path, "exec sleep 60")
    pytester.makepyfile("def test_a(): pass")
    result = run(
        pytester,
        "--therock-expect-runtime",
        f"--therock-rocminfo={tool}",
        "--therock-timeout=1",
    )
    assert result.ret == STOPPED
    assert f"runtime proof (--therock-expect-runtime): {tool} did not finish within 1 s" in output(
        result
    )


def test_runtime_proof_finds_rocminfo_on_path_and_names_a_different_target(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if Path("/opt/rocm/bin/rocminfo").exists():
        pytest.skip("/opt/rocm/bin/rocminfo comes before PATH")
    tool = fake_rocminfo(tmp_path, f"cat {MI210_4X}")
    monkeypatch.delenv("ROCM_PATH", raising=False)
    monkeypatch.setenv("PATH", f"{tool.parent}{os.pathsep}{os.environ['PATH']}")
    pytester.makepyfile("def test_a(): pass")
    result = run(pytester, "--therock-expect=gfx1151", "--therock-expect-runtime")
    assert result.ret == STOPPED
    assert (
        "runtime proof (--therock-expect-runtime): rocminfo lists GPU agents gfx90a x4, "
        "expected gfx1151"
    ) in output(result)


def test_rocminfo_runs_once_under_xdist_and_only_when_asked(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    tool = fake_rocminfo(tmp_path, f"cat {MI210_4X}")
    pytester.makepyfile("def test_a(): pass")
    run(pytester, "-n", "2", f"--therock-rocminfo={tool}", xdist=True).assert_outcomes(passed=1)
    assert runs(tmp_path) == 0  # not asked: never run
    result = run(
        pytester, "-n", "2", f"--therock-rocminfo={tool}", "--therock-expect-runtime", xdist=True
    )
    assert result.ret == STOPPED  # this machine's kernel shows no GPU to prove
    assert "no GPU to prove: the kernel shows none, rocminfo lists GPU agents gfx90a x4" in output(
        result
    )
    assert runs(tmp_path) == 1


def test_expect_runtime_from_the_environment_is_validated(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_THEROCK_EXPECT_RUNTIME", "perhaps")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*PYTEST_THEROCK_EXPECT_RUNTIME: expected true or false, got 'perhaps'"]
    )


# --- a snapshot's record of /dev/kfd against its recorded rocminfo ------------------------------


@pytest.mark.parametrize(
    ("record", "why"),
    [
        ("missing", "/dev/kfd is missing although the recorded rocminfo lists 1 GPU(s)"),
        ("RW", "/dev/kfd access is unknown (could not read .therock/kfd-access: malformed"),
        ("r", "/dev/kfd is not readable and writable by this user"),
    ],
)
def test_a_recorded_rocminfo_does_not_make_an_unusable_dev_kfd_usable(
    pytester: pytest.Pytester, tmp_path: Path, record: str, why: str
) -> None:
    """The real Strix Halo snapshot (its rocminfo worked), with its /dev/kfd record changed:
    --therock-expect, strict markers, the header and doctor all say not usable."""
    import shutil
    import subprocess
    import sys

    snap = tmp_path / "snap"
    shutil.copytree(EXAMPLES / "strix-halo", snap)
    (snap / ".therock" / "kfd-access").write_text(record + "\n")
    if record == "missing":
        (snap / "dev" / "kfd").unlink()
    pytester.makepyfile("import pytest\n@pytest.mark.requires_gfx1151\ndef test_gpu(): pass\n")
    expect = run(pytester, f"--therock-root={snap}", "--therock-expect=gfx1151")
    assert expect.ret == STOPPED
    assert "expected a usable gfx1151 GPU (--therock-expect), found gfx1151" in output(expect)
    assert why in output(expect)
    assert "warning[kfd-record-disagrees]" in output(expect)
    strict = run(pytester, f"--therock-root={snap}", "--therock-strict")
    strict.assert_outcomes(errors=1)
    assert "requires_gfx1151: found gfx1151 (Radeon 8060S Graphics), but it cannot be used" in (
        output(strict)
    )
    doctor = subprocess.run(
        [sys.executable, "-m", "pytest_therock.cli", "doctor", "--root", str(snap), "--json"],
        capture_output=True,
        text=True,
    )
    assert doctor.returncode == 1, doctor.stderr
    assert '"usable": false' in doctor.stdout


# --- a blank value never switches a list setting off -------------------------------------------


@pytest.mark.parametrize(
    ("variable", "option"),
    [(",", None), (" ", None), (None, ""), (None, ","), (" , ", " ")],
)
def test_a_blank_expect_falls_through_to_the_ini_and_never_disables_the_gate(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    variable: str | None,
    option: str | None,
) -> None:
    pytester.makeini("[pytest]\ntherock_expect = gfx1151\n")
    pytester.makepyfile("def test_plain(): pass")
    if variable is not None:
        monkeypatch.setenv("PYTEST_THEROCK_EXPECT", variable)
    args = [f"--therock-root={EXAMPLES / 'mi210-8x'}"]
    args += [f"--therock-expect={option}"] if option is not None else []
    result = run(pytester, *args)
    assert result.ret == STOPPED
    result.assert_outcomes()
    assert "expected a gfx1151 GPU (--therock-expect), found gfx90a x8" in output(result)


def test_a_blank_ignore_falls_through_to_the_ini(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\ntherock_ignore = kfd-missing\n")
    pytester.makepyfile("def test_plain(): pass")
    monkeypatch.setenv("PYTEST_THEROCK_IGNORE", ",")
    result = run(pytester, f"--therock-root={EXAMPLES / 'no-gpu'}", "-v", "--therock-ignore= ")
    result.assert_outcomes(passed=1)
    assert "kfd-missing" not in output(result)
    again = run(pytester, f"--therock-root={EXAMPLES / 'no-gpu'}", "-v", "-o", "therock_ignore=")
    assert "kfd-missing" in output(again)  # the check ran: the ini value above was what hid it
