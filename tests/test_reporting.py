"""What a session reports: hardware-skip summary, JUnit properties, user hooks, rocminfo."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import EXAMPLES, run

STRIX = EXAMPLES / "strix-halo"

MARKED = """
import pytest

@pytest.mark.requires_gfx1151
def test_strix():
    pass

@pytest.mark.requires_gtt_gb(64)
def test_big_model():
    pass

@pytest.mark.parametrize("n", range(3))
@pytest.mark.requires_gfx1100
def test_navi31(n):
    pass

def test_cpu():
    pass
"""


def test_summary_groups_hardware_skips_by_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKED)
    result = run(pytester, f"--therock-root={STRIX}")
    result.assert_outcomes(passed=2, skipped=4)
    result.stdout.fnmatch_lines(
        [
            "*= therock: hardware requirements =*",
            "3 skipped: requires gfx1100, found gfx1151 (Radeon 8060S Graphics)",
            "1 skipped: requires 64 GiB GTT, found 62.5 GiB on gfx1151 (GTT defaults to 50% of RAM; raise ttm.pages_limit)",
            "1 of 5 hardware-marked tests ran",
        ]
    )


def test_summary_says_when_every_hardware_test_was_skipped(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKED)
    for shown in ("-v", "--therock-strict"):  # a laptop without either stays quiet
        result = run(pytester, f"--therock-root={EXAMPLES / 'no-gpu'}", shown)
        result.stdout.fnmatch_lines(["every hardware-marked test (5) * none of them ran"])
    quiet = run(pytester, f"--therock-root={EXAMPLES / 'no-gpu'}")
    quiet.assert_outcomes(passed=1, skipped=5)
    assert "hardware requirements" not in quiet.stdout.str()


def test_summary_under_xdist_counts_worker_reports(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(MARKED)
    result = pytester.runpytest("-p", "no:cacheprovider", "-n", "2", f"--therock-root={STRIX}")
    result.assert_outcomes(passed=2, skipped=4)
    result.stdout.fnmatch_lines(
        ["3 skipped: requires gfx1100, found gfx1151*", "1 of 5 hardware-marked tests ran"]
    )


def test_no_summary_without_hardware_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a(): pass")
    assert "hardware requirements" not in run(pytester, f"--therock-root={STRIX}").stdout.str()


def test_junit_records_the_environment_and_each_skip_reason(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(MARKED)
    report = tmp_path / "junit.xml"
    run(pytester, f"--therock-root={STRIX}", f"--junitxml={report}")
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    props = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert props["therock_gpus"] == "gfx1151"
    assert props["therock_gtt_usable_bytes"] == str(65507932 * 1024)
    assert props["therock_gpu_memory_bytes"] == str(65507932 * 1024)
    assert props["therock_memory_pool"] == "GTT"
    assert props["therock_diagnostics"] == "info:gpu-memory"
    case = next(c for c in suite.iter("testcase") if c.get("name") == "test_big_model")
    case_props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert case_props["therock_requires"] == "requires_gtt_gb(64)"
    assert case_props["therock_unmet"].startswith("requires 64 GiB GTT, found 62.5 GiB")
    skipped = case.find("skipped")
    assert skipped is not None and "requires 64 GiB GTT" in (skipped.get("message") or "")


HOOKS_CONFTEST = """
from pytest_therock import Diagnostic

def pytest_therock_diagnostics(env, config):
    if env.system_memory_bytes and env.system_memory_bytes < 256 * 2**30:
        return [Diagnostic("lab-ram", "warning", "our 405B model needs 256 GiB of RAM", "use the big runner")]
    return []

def pytest_therock_report_header(env, config):
    return [f"lab runner: {len(env.gpus)} GPU(s)"]
"""


def test_projects_add_diagnostics_and_header_lines(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(HOOKS_CONFTEST)
    pytester.makepyfile("def test_a(): pass")
    result = run(pytester, f"--therock-root={STRIX}")
    result.stdout.fnmatch_lines(
        [
            "therock: warning[lab-ram]: our 405B model needs 256 GiB of RAM",
            "therock: info[[]gpu-memory[]]: *",
            "therock: lab runner: 1 GPU(s)",
        ]
    )
    quiet = run(
        pytester,
        f"--therock-root={STRIX}",
        "--therock-ignore=lab-ram",
        "--therock-ignore=gpu-memory",
    )
    assert "lab-ram" not in quiet.stdout.str()
    assert "gpu-memory" not in quiet.stdout.str()


def test_rocminfo_fixture_replays_a_snapshot(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_agents(rocminfo):
            (gpu,) = rocminfo.gpus
            assert gpu.gfx_target == "gfx1151"
            assert gpu.compute_units == 40
            assert [a.device_type for a in rocminfo.agents] == ["CPU", "GPU"]
        """
    )
    run(pytester, f"--therock-root={STRIX}").assert_outcomes(passed=1)


def test_rocminfo_fixture_skips_with_the_tools_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_agents(rocminfo):\n    pass\n")
    result = run(pytester, f"--therock-root={EXAMPLES / 'no-gpu'}", "-rs")
    result.assert_outcomes(skipped=1)
    # A machine without an AMD GPU: what rocminfo found, quoted, and no driver advice.
    result.stdout.fnmatch_lines(
        ["SKIPPED * rocminfo found no GPU agents (it said 'ROCk module is NOT loaded, possibly "
         "no GPU devices')"]
    )  # fmt: skip
    assert "modprobe" not in result.stdout.str()
    strict = run(pytester, f"--therock-root={EXAMPLES / 'no-gpu'}", "--therock-strict")
    strict.assert_outcomes(errors=1)


def test_rocminfo_fixture_runs_the_tool_with_a_timeout(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    hung = tmp_path / "rocminfo"
    hung.write_text("#!/bin/sh\nsleep 30\n")
    hung.chmod(0o755)
    pytester.makepyfile("def test_agents(rocminfo):\n    pass\n")
    result = run(pytester, f"--therock-rocminfo={hung}", "--therock-timeout=0.5", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*rocminfo did not finish within 0.5 s*"])


def test_a_malformed_project_diagnostic_is_reported_not_raised(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from pytest_therock import Diagnostic

        def pytest_therock_diagnostics(env, config):
            return ["lab is down", Diagnostic("lab", "fatal", "bad severity")]
        """
    )
    pytester.makepyfile("def test_a(): pass")
    result = run(pytester, f"--therock-root={STRIX}")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "therock: warning[[]hook-invalid[]]: pytest_therock_diagnostics returned 'lab is down': expected *",
            "therock: warning[[]hook-invalid[]]: pytest_therock_diagnostics returned Diagnostic(code='lab'*",
        ]
    )
