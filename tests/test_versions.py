"""ROCm, TheRock SDK and torch versions, and the markers that gate on them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import RootBuilder, run

from pytest_therock.sysroot import Root
from pytest_therock.versions import Versions, detect_versions

# Version strings as real tools print them: ROCm 6.3.3 (amd-smi version, ROCm/ROCm#4750),
# torch 2.10.0+rocm7.0 and TheRock's 7.10.0a20251124-style nightly versions.
TESTS = """
import pytest

@pytest.mark.requires_rocm(">=6.0")
def test_rocm6():
    pass

@pytest.mark.requires_rocm(">=7.0")
def test_rocm7():
    pass

@pytest.mark.requires_torch_rocm
def test_torch():
    pass

@pytest.mark.requires_torch_rocm(">=7.1")
def test_torch_71():
    pass
"""


def snapshot(
    root: RootBuilder, rocm: str | None, torch: str | None, therock: dict[str, str]
) -> Path:
    root.topology("topo-mi210-xgmi-pcie").kfd()
    if rocm:
        root.write("opt/rocm/.info/version", rocm + "\n")
    root.write(".therock/python-versions.json", json.dumps({"therock": therock, "torch": torch}))
    return root.path


def test_rocm_and_torch_markers(pytester: pytest.Pytester, root: RootBuilder) -> None:
    path = snapshot(root, "6.3.3", "2.10.0+rocm7.0", {})
    pytester.makepyfile(TESTS)
    result = run(pytester, f"--therock-root={path}", "-rs")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines_random(
        [
            "*requires ROCm >=7.0, found 6.3.3 (/opt/rocm/.info/version)",
            "*requires a ROCm build of torch for ROCm >=7.1, found torch 2.10.0+rocm7.0",
        ]
    )


def test_therock_nightly_sdk_counts_as_rocm(pytester: pytest.Pytester, root: RootBuilder) -> None:
    path = snapshot(
        root, None, "2.9.1+cpu", {"rocm-sdk-core": "7.10.0a20251124", "rocm": "7.10.0a20251124"}
    )
    pytester.makepyfile(TESTS)
    result = run(pytester, f"--therock-root={path}", "-rs")
    result.assert_outcomes(passed=2, skipped=2)  # pre-releases of 7.10 satisfy >=7.0
    result.stdout.fnmatch_lines_random(["*requires a ROCm build of torch, found torch 2.9.1+cpu"])


def test_nothing_installed(pytester: pytest.Pytester, root: RootBuilder) -> None:
    path = snapshot(root, None, None, {})
    pytester.makepyfile(TESTS)
    result = run(pytester, f"--therock-root={path}", "-rs")
    result.assert_outcomes(skipped=4)
    result.stdout.fnmatch_lines_random(
        [
            "*requires ROCm >=6.0, found no ROCm (no /opt/rocm/.info/version, no rocm-sdk-core)",
            "*requires a ROCm build of torch, found no torch",
        ]
    )


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('requires_rocm(">=seven")', "'>=seven' is not a version specifier"),
        ("requires_rocm()", "takes one version specifier string"),
        ("requires_rocm(7)", "takes one version specifier string"),
        ('requires_torch_rocm(">=7", ">=8")', "takes one version specifier string"),
    ],
)
def test_bad_specifier_is_an_error_of_its_test(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(f"import pytest\n\n@pytest.mark.{marker}\ndef test_a():\n    pass\n")
    result = run(pytester, "-o", "therock_generic_markers=on")  # the plugin's here, always
    # A generic name: an error of the test at setup, never of its module's collection.
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*invalid marker *{message}* (test_*.py:3)"])


def test_live_versions_of_this_machine() -> None:
    found = detect_versions(Root(Path("/")), os.environ)
    assert found.kernel == os.uname().release


def test_torch_local_version() -> None:
    assert Versions(None, None, torch="2.10.0+rocm7.0").torch_rocm == "7.0"
    assert Versions(None, None, torch="2.13.0+cpu").torch_rocm is None
    assert Versions(None, None, torch="2.13.0").torch_rocm is None


def test_rocm_path_wins_over_opt_rocm(root: RootBuilder) -> None:
    root.write("opt/rocm/.info/version", "6.3.3\n").write("opt/rocm-7.2.0/.info/version", "7.2.0\n")
    found = detect_versions(Root(root.path), {"ROCM_PATH": "/opt/rocm-7.2.0"})
    assert (found.rocm, found.rocm_source) == ("7.2.0", "/opt/rocm-7.2.0/.info/version")
