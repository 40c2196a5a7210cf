"""What a hardware-marked test's setup ends as, beside the project's own skips and its
misused markers; and that the end-of-run block counts it as pytest does."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import EXAMPLES, run

STRIX = EXAMPLES / "strix-halo"  # one gfx1151 APU: requires_gfx90a is unmet

PROJECT_SKIPS = {
    "skip": ('@pytest.mark.skip(reason="project skip")', "SKIPPED [[]1[]] *: project skip"),
    "skipif": (
        '@pytest.mark.skipif(True, reason="project skipif")',
        "SKIPPED [[]1[]] *: project skipif",
    ),
    "xfail-run-false": (
        '@pytest.mark.xfail(run=False, reason="crashes the driver")',
        "XFAIL *test_x - [[]NOTRUN[]] crashes the driver",
    ),
}


def _module(project: str, ours: str, ours_first: bool) -> str:
    marks = [ours, project] if ours_first else [project, ours]
    return "import pytest\n\n" + "\n".join(marks) + "\ndef test_x():\n    pass\n"


def _counts(result: pytest.RunResult) -> dict[str, int]:
    return {k: v for k, v in result.parseoutcomes().items() if v}


def _block(result: pytest.RunResult) -> str:
    text = result.stdout.str()
    assert "therock: hardware requirements" in text, text
    return text.split("therock: hardware requirements", 1)[1].split("short test summary")[0]


def _block_counts(result: pytest.RunResult) -> dict[str, int]:
    """``3 skipped: ...``, ``1 error: ...`` lines of the block, summed by pytest's word."""
    counts: dict[str, int] = {}
    for n, word in re.findall(r"^(\d+) (skipped|errors?|xfailed): ", _block(result), re.M):
        key = "errors" if word.startswith("error") else word
        counts[key] = counts.get(key, 0) + int(n)
    return counts


@pytest.mark.parametrize("strict", [False, True], ids=["", "strict"])
@pytest.mark.parametrize("ours_first", [True, False], ids=["ours-above", "ours-below"])
@pytest.mark.parametrize("kind", list(PROJECT_SKIPS))
def test_the_projects_own_skip_wins_over_an_unmet_requirement(
    pytester: pytest.Pytester, kind: str, ours_first: bool, strict: bool
) -> None:
    project, shown = PROJECT_SKIPS[kind]
    pytester.makepyfile(_module(project, "@pytest.mark.requires_gfx90a", ours_first))
    result = run(pytester, f"--therock-root={STRIX}", "-rsx", *(["--therock-strict"] * strict))
    expected = {"xfailed": 1} if kind == "xfail-run-false" else {"skipped": 1}
    assert _counts(result) == expected, result.stdout.str()
    result.stdout.fnmatch_lines([shown])
    assert "requires gfx90a" not in result.stdout.str()
    # Nothing unmet to report, as where the requirement is met.
    assert "hardware requirements" not in result.stdout.str()


@pytest.mark.parametrize("ours_first", [True, False], ids=["ours-above", "ours-below"])
def test_a_skip_on_gfx_that_applies_leaves_the_reason_to_the_projects_skip(
    pytester: pytest.Pytester, ours_first: bool
) -> None:
    ours = '@pytest.mark.skip_on_gfx("gfx1151", reason="hangs")'
    pytester.makepyfile(_module('@pytest.mark.skip(reason="project skip")', ours, ours_first))
    result = run(pytester, f"--therock-root={STRIX}", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] *: project skip"])


@pytest.mark.parametrize(
    ("project", "args"),
    [
        ('@pytest.mark.skipif(False, reason="not here")', ()),
        ('@pytest.mark.xfail(run=False, reason="crashes")', ("--runxfail",)),
    ],
    ids=["skipif-false", "runxfail"],
)
def test_a_project_skip_that_does_not_apply_leaves_the_requirement_to_decide(
    pytester: pytest.Pytester, project: str, args: tuple[str, ...]
) -> None:
    pytester.makepyfile(_module(project, "@pytest.mark.requires_gfx90a", True))
    result = run(pytester, f"--therock-root={STRIX}", "-rs", *args)
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] *: requires gfx90a, found gfx1151*"])
    strict = run(pytester, f"--therock-root={STRIX}", "--therock-strict", *args)
    strict.assert_outcomes(errors=1)


MISUSED_GENERIC = """
import pytest

@pytest.mark.requires_gfx90a
def test_gfx():
    pass

@pytest.mark.requires_gpus("two")
def test_bad():
    pass

@pytest.mark.requires_gpus("two")
def test_bad_too():
    pass
"""


@pytest.mark.parametrize("xdist", [False, True], ids=["", "xdist"])
def test_a_misused_generic_marker_is_counted_as_the_error_it_is(
    pytester: pytest.Pytester, xdist: bool
) -> None:
    pytester.makepyfile(MISUSED_GENERIC)
    args = ("-n", "2") if xdist else ()
    result = run(pytester, f"--therock-root={STRIX}", "-v", *args, xdist=xdist)
    assert _counts(result) == {"skipped": 1, "errors": 2}
    assert _block_counts(result) == {"skipped": 1, "errors": 2}
    # One line for the two tests that share the marker: the test's place is in its error.
    result.stdout.fnmatch_lines(
        [
            "2 errors: invalid marker requires_gpus('two'): expected a whole number of GPUs, "
            "got 'two'; e.g. requires_gpus(2)",
            "1 skipped: requires gfx90a, found gfx1151*",
            "every hardware-marked test (3) skipped or is an error at setup: none of them ran",
        ]
    )
    strict = run(pytester, f"--therock-root={STRIX}", "--therock-strict", *args, xdist=xdist)
    assert _counts(strict) == {"errors": 3}
    assert _block_counts(strict) == {"errors": 3}
    strict.stdout.fnmatch_lines(
        ["every hardware-marked test (3) is an error at setup: none of them ran"]
    )


def test_an_unregistered_generic_marker_under_strict_is_counted_once_per_test(
    pytester: pytest.Pytester,
) -> None:
    # A module that does not otherwise use the plugin: left alone, unless strict.
    pytester.makepyfile(MISUSED_GENERIC.replace("@pytest.mark.requires_gfx90a\n", ""))
    result = run(pytester, f"--therock-root={STRIX}", "--therock-strict")
    assert _counts(result) == {"passed": 1, "errors": 2}
    assert _block_counts(result) == {"errors": 2}
    result.stdout.fnmatch_lines(
        [
            "*invalid marker requires_gpus('two'): * (test_an_unregistered*.py:6; under "
            "--therock-strict an unregistered requires_gpus is pytest-therock's*",
            "2 errors: invalid marker requires_gpus('two'): expected a whole number of GPUs, "
            "got 'two'; e.g. requires_gpus(2)",
            "every hardware-marked test (2) is an error at setup: none of them ran",
        ]
    )


def test_junit_gives_a_misused_marker_its_properties(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(MISUSED_GENERIC)
    report = tmp_path / "junit.xml"
    run(pytester, f"--therock-root={STRIX}", f"--junitxml={report}")
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    case = next(c for c in suite.iter("testcase") if c.get("name") == "test_bad")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props == {
        "therock_requires": "requires_gpus('two')",
        "therock_invalid_marker": "requires_gpus('two'): expected a whole number of GPUs, "
        "got 'two'; e.g. requires_gpus(2)",
    }
    assert case.find("error") is not None


@pytest.mark.parametrize(
    ("typo", "suggested"),
    [
        ("requires_gfx11_generic", "requires_gfx('gfx11-generic')"),
        ("requires_gfx1115", "requires_gfx115x"),
    ],
)
def test_a_marker_name_typo_suggests_markers_that_can_be_written(
    pytester: pytest.Pytester, typo: str, suggested: str
) -> None:
    test = "import pytest\n\n@pytest.mark.{}\ndef test_x():\n    pass\n"
    pytester.makepyfile(test.format(typo))
    result = run(pytester, f"--therock-root={STRIX}")
    result.stdout.fnmatch_lines([f"*marker {typo}: unknown gfx target*did you mean *{suggested}*"])
    line = next(s for s in result.outlines if "did you mean" in s)
    for marker in line.split("did you mean ", 1)[1].rstrip("?").split(" or "):
        pytester.makepyfile(test.format(marker))  # each one, as written, is a marker
        counts = _counts(run(pytester, f"--therock-root={STRIX}", "--strict-markers"))
        assert counts in ({"passed": 1}, {"skipped": 1}), (marker, counts)


def test_rerun_except_keeps_a_misused_marker_from_being_rerun(pytester: pytest.Pytester) -> None:
    """The README's advice for pytest-rerunfailures: a misused marker fails the same way
    every time, and a requirement unmet under --therock-strict on the same machine too."""
    pytest.importorskip("pytest_rerunfailures")
    pytester.makepyfile(MISUSED_GENERIC)
    advice = r"pytest-therock: invalid marker|\[--therock-strict\]"
    plain = run(pytester, f"--therock-root={STRIX}", "--reruns=2", "--therock-strict")
    assert _counts(plain) == {"errors": 3, "rerun": 6}
    result = run(
        pytester,
        f"--therock-root={STRIX}",
        "--reruns=2",
        "--therock-strict",
        "--rerun-except",
        advice,
    )
    assert _counts(result) == {"errors": 3}
