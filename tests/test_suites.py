"""Living inside other people's test suites: their marker names, pytester, late markers, reruns."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import EXAMPLES, REALDATA, run

MI210 = REALDATA / "kfd-topology" / "topo-mi210-xgmi-pcie"  # 8x gfx90a
STRIX = EXAMPLES / "strix-halo"  # gfx1151 APU
NO_GPU = EXAMPLES / "no-gpu"
VENDORED = Path(__file__).parent / "vendored"

# The marker registration of bentoml/BentoML's tests/conftest.py (main): a bare
# requires_gpus meaning "an NVIDIA GPU, and --run-gpus-tests".
BENTOML_CONFTEST = """
import pytest

def pytest_addoption(parser):
    parser.addoption("--run-gpus-tests", action="store_true", default=False)

def pytest_configure(config):
    config.addinivalue_line("markers", "requires_gpus: requires GPU to run given test.")

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if "requires_gpus" in item.keywords and not item.config.getoption("--run-gpus-tests"):
        item.add_marker(pytest.mark.skip(reason="need --run-gpus-tests option to run gpus related tests."))
"""

# professor-moody/halo-forge's tests/conftest.py: its own bare requires_rocm (a gfx1151
# host), registered with addinivalue_line and applied in pytest_collection_modifyitems.
HALO_FORGE_CONFTEST = """
import pytest

def pytest_configure(config):
    config.addinivalue_line(
        "markers", "requires_rocm: skip unless an AMD ROCm gfx1151 (Strix Halo) host"
    )

def pytest_collection_modifyitems(config, items):
    skip_rocm = pytest.mark.skip(reason="requires ROCm gfx1151; backend is cpu")
    for item in items:
        if "requires_rocm" in item.keywords:
            item.add_marker(skip_rocm)
"""


def test_bentoml_style_requires_gpus_stays_the_projects(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(BENTOML_CONFTEST)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gpus
        def test_on_gpu():
            pass

        def test_on_cpu():
            pass
        """
    )
    for root in (MI210, NO_GPU):
        result = run(pytester, f"--therock-root={root}", "-rs", "-v", "--strict-markers")
        result.assert_outcomes(passed=1, skipped=1)  # the project's skip, not a collection error
        result.stdout.fnmatch_lines(
            [
                "therock: markers registered by this project, left to it: requires_gpus",
                "SKIPPED*need --run-gpus-tests option to run gpus related tests.",
            ]
        )
    # The project's meaning, on a machine with no AMD GPU: the plugin does not skip it.
    run(pytester, f"--therock-root={NO_GPU}", "--run-gpus-tests").assert_outcomes(passed=2)
    markers = run(pytester, "--markers").stdout.str()
    assert "@pytest.mark.requires_gpus: requires GPU to run given test." in markers
    assert "AMD GPUs are visible" not in markers  # the plugin's description stepped aside


def test_halo_forge_style_requires_rocm_next_to_the_plugins_markers(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(HALO_FORGE_CONFTEST)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_rocm
        def test_trainer_on_rocm():
            pass

        @pytest.mark.requires_gfx1151
        def test_strix_halo():
            pass
        """
    )
    result = run(pytester, f"--therock-root={STRIX}", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*requires ROCm gfx1151; backend is cpu"])


REGISTER_ROCM = (
    "def pytest_configure(config):\n"
    '    config.addinivalue_line("markers", "requires_rocm: our own ROCm host")\n'
)


@pytest.mark.parametrize("where", ["root ini", "root conftest", "subdirectory conftest"])
@pytest.mark.parametrize("xdist", [False, True], ids=["", "xdist"])
def test_a_registered_generic_name_is_said_once_with_v_wherever_it_is_registered(
    pytester: pytest.Pytester, where: str, xdist: bool
) -> None:
    """A subdirectory's conftest registers its markers after the header is printed
    (during collection; under xdist only in the workers): said at the end instead."""
    sub = pytester.mkpydir("sub")
    if where == "root ini":
        pytester.makeini("[pytest]\nmarkers =\n    requires_rocm: our own ROCm host\n")
    elif where == "root conftest":
        pytester.makeconftest(REGISTER_ROCM)
    else:
        (sub / "conftest.py").write_text(REGISTER_ROCM)
    (sub / "test_theirs.py").write_text(
        "import pytest\n\n@pytest.mark.requires_rocm\ndef test_on_rocm():\n    pass\n"
    )
    pytester.makepyfile(test_ours="def test_cpu():\n    pass\n")
    args = ("-n", "2") if xdist else ()
    strict = ("--strict-markers", "--therock-strict", "-W", "error::pytest.PytestWarning")
    result = run(pytester, f"--therock-root={MI210}", "-v", *strict, *args, xdist=xdist)
    # The project's bare requires_rocm: not the plugin's, not misuse, not unknown.
    result.assert_outcomes(passed=2)
    said = [line for line in result.stdout.lines if "left to it" in line]
    assert [line.split("markers registered", 1)[1] for line in said] == [
        " by this project, left to it: requires_rocm"
    ]
    in_header = said[0].startswith("therock: ")  # else in the end-of-run block
    assert in_header == (where != "subdirectory conftest")


def test_a_generic_name_registered_in_the_ini_file_stays_the_projects(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nmarkers =\n    requires_apu: our own meaning\n")
    pytester.makepyfile("import pytest\n\n@pytest.mark.requires_apu\ndef test_a():\n    pass\n")
    run(pytester, f"--therock-root={MI210}", "--strict-markers").assert_outcomes(passed=1)
    # Without the registration, requires_apu is the plugin's: MI210 is discrete.
    pytester.makeini("[pytest]\n")
    run(pytester, f"--therock-root={MI210}").assert_outcomes(skipped=1)


def test_an_unregistered_generic_marker_the_plugin_cannot_read_is_left_alone(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_theirs="""
        import pytest

        @pytest.mark.requires_rocm
        def test_theirs():
            pass
        """,
        test_ours="""
        import pytest

        @pytest.mark.requires_rocm
        def test_bare():
            pass

        @pytest.mark.requires_gfx90a
        def test_instinct():
            pass
        """,
    )
    result = run(pytester, f"--therock-root={MI210}")
    # A module that uses the plugin's own markers is using requires_rocm as the plugin's:
    # an error of that test at setup; the module's other tests and test_theirs run.
    result.stdout.fnmatch_lines(
        ["*invalid marker requires_rocm: takes one version specifier string*(test_ours.py:3)"]
    )
    result.assert_outcomes(passed=2, errors=1, warnings=1)
    assert "ERROR collecting" not in result.stdout.str()
    run(pytester, f"--therock-root={MI210}", "test_theirs.py").assert_outcomes(passed=1)


MALFORMED = """
import pytest

def test_cpu():
    pass

@pytest.mark.requires_gpus("two")
def test_two_gpus():
    pass

@pytest.mark.requires_gpus("two")
def test_two_gpus_again():
    pass

@pytest.mark.requires_rocm(bogus=1)
def test_rocm():
    pass
"""


def test_a_malformed_unregistered_generic_marker_is_not_silently_left_alone(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_malformed=MALFORMED)
    result = run(pytester, f"--therock-root={MI210}", "-W", "always")
    result.assert_outcomes(passed=4, warnings=3)  # left alone, said for each test
    result.stdout.fnmatch_lines_random(
        [
            "*test_malformed.py:6: MarkerWarning: pytest-therock: requires_gpus('two'): "
            "expected a whole number of GPUs*; not read, so not applied (register*",
            "*test_malformed.py:14: MarkerWarning: pytest-therock: requires_rocm(bogus=1): "
            "unknown keyword 'bogus'; not read, so not applied*",
        ]
    )
    # A runner that must not go green by accident: an error of each such test, not of
    # the module (its other tests run), naming the marker, its arguments and its line.
    strict = run(pytester, f"--therock-root={MI210}", "--therock-strict")
    strict.assert_outcomes(passed=1, errors=3)
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    strict.stdout.fnmatch_lines_random(
        [
            "pytest-therock: invalid marker requires_gpus('two'): expected a whole number "
            "of GPUs, got 'two'; e.g. requires_gpus(2) (test_malformed.py:6; *",
            "*pytest-therock: invalid marker requires_rocm(bogus=1): unknown keyword 'bogus' "
            "(test_malformed.py:14; under --therock-strict an unregistered requires_rocm "
            "is pytest-therock's: register it in the ini `markers` if it is your project's)",
        ]
    )
    # Registered by the project: its own, under strict too, and nothing to warn about.
    pytester.makeini("[pytest]\nmarkers =\n    requires_gpus(n): ours\n    requires_rocm: ours\n")
    registered = run(pytester, f"--therock-root={MI210}", "--therock-strict", "-W", "always")
    registered.assert_outcomes(passed=4)
    assert "MarkerWarning" not in registered.stdout.str()


@pytest.mark.parametrize(
    ("setting", "outcome"),
    [
        (("-o", "therock_generic_markers=off"), {"passed": 1}),
        (("--therock-generic-markers=off",), {"passed": 1}),
        (("-o", "therock_generic_markers=on"), {"skipped": 1}),
        ((), {"skipped": 1}),
    ],
)
def test_generic_markers_can_be_switched_off(
    pytester: pytest.Pytester, setting: tuple[str, ...], outcome: dict[str, int]
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gpus(99)
        def test_many():
            pass
        """
    )
    run(pytester, f"--therock-root={MI210}", *setting).assert_outcomes(**outcome)


def test_generic_markers_off_from_the_environment_is_said_with_v(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_THEROCK_GENERIC_MARKERS", "off")
    pytester.makepyfile("def test_a(): pass")
    result = run(pytester, f"--therock-root={MI210}", "-v")
    result.stdout.fnmatch_lines(
        ["therock: generic markers off (therock_generic_markers): *requires_vram_gb, *"]
    )
    monkeypatch.setenv("PYTEST_THEROCK_GENERIC_MARKERS", "maybe")
    bad = run(pytester, f"--therock-root={MI210}")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*PYTEST_THEROCK_GENERIC_MARKERS: expected auto, on or off*"])


LATE_CONFTEST = """
import pytest

def pytest_collection_modifyitems(config, items):
    for item in items:
        if "gpu" in item.name:
            item.add_marker(pytest.mark.requires_gfx1151)
"""


def test_a_marker_added_during_collection_counts(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(LATE_CONFTEST)
    pytester.makepyfile("def test_gpu(): pass\ndef test_cpu(): pass\n")
    result = run(pytester, f"--therock-root={MI210}", "-rs", "--strict-markers")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*requires gfx1151, found gfx90a x8"])
    strict = run(pytester, f"--therock-root={MI210}", "--therock-strict")
    strict.assert_outcomes(passed=1, errors=1)  # fails at setup, as strict mode does
    selected = run(pytester, f"--therock-root={STRIX}", "-m", "requires_gfx1151")
    selected.assert_outcomes(passed=1, deselected=1)


def test_a_bad_marker_added_after_collection_fails_its_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            items[0].add_marker(pytest.mark.requires_gtt_gb("lots"))
        """
    )
    pytester.makepyfile("def test_a(): pass\ndef test_b(): pass\n")
    result = run(pytester, f"--therock-root={MI210}")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*invalid marker requires_gtt_gb('lots'): expected a number*"])


def test_the_skip_reason_does_not_depend_on_decorator_order(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gfx1151
        @pytest.mark.requires_apu
        def test_one():
            pass

        @pytest.mark.requires_apu
        @pytest.mark.requires_gfx1151
        def test_two():
            pass
        """
    )
    result = run(pytester, f"--therock-root={MI210}", "-rs")
    reasons = {line.split(": ", 1)[1] for line in result.stdout.lines if "SKIPPED" in line}
    assert reasons == {
        "requires an APU, found discrete gfx90a x8; requires gfx1151, found gfx90a x8"
    }


NEGATIVE = """
import pytest

@pytest.mark.skip_on_gfx("gfx90a", "gfx94X-dcgpu", reason="hipBLASLt kernel missing")
def test_skipped_on_instinct():
    pass

@pytest.mark.xfail_on_gfx("gfx9*", reason="fp8 not on gfx9", raises=AssertionError)
def test_expected_to_fail():
    assert 0

@pytest.mark.xfail_on_gfx("gfx90a", strict=True)
def test_unexpectedly_passes():
    pass

@pytest.mark.skip_on_gfx("gfx115x")
def test_everywhere_but_strix():
    pass
"""


def test_negative_markers_on_an_instinct_gpu(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(NEGATIVE)
    result = run(pytester, f"--therock-root={MI210}", "-rsxX")
    result.assert_outcomes(passed=1, skipped=1, xfailed=1, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED*hipBLASLt kernel missing (skip_on_gfx('gfx90a', 'gfx94X-dcgpu') on gfx90a)",
            "XFAIL*test_expected_to_fail - fp8 not on gfx9 (xfail_on_gfx('gfx9[*]') on gfx90a)",
            "*XPASS(strict)* xfail_on_gfx('gfx90a') on gfx90a",
        ]
    )


def test_negative_markers_elsewhere_change_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(NEGATIVE)
    result = run(pytester, f"--therock-root={STRIX}", "-rs")
    result.assert_outcomes(passed=2, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED*skip_on_gfx('gfx115x') on gfx1151 (*)"])


def _both_orders(ours: str, theirs: str, body: str) -> str:
    """A module with the two marks on two tests, in either decorator order."""
    return (
        f"import pytest\n\n@pytest.mark.{ours}\n@pytest.mark.{theirs}\n"
        f"def test_ours_on_top():\n    {body}\n\n"
        f"@pytest.mark.{theirs}\n@pytest.mark.{ours}\n"
        f"def test_theirs_on_top():\n    {body}\n"
    )


def test_a_strict_xfail_on_gfx_holds_next_to_a_plain_xfail(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        _both_orders(
            'xfail_on_gfx("gfx90a", reason="fp8 kernel missing", strict=True)',
            'xfail(reason="flaky upstream")',
            "pass",
        )
    )
    result = run(pytester, f"--therock-root={MI210}")
    result.assert_outcomes(failed=2)  # an XPASS of a strict xfail_on_gfx fails, either order
    reason = "fp8 kernel missing (xfail_on_gfx('gfx90a') on gfx90a); xfail: flaky upstream"
    assert result.stdout.lines.count(f"[XPASS(strict)] {reason}") == 2
    # Where the GPU does not match, the plain xfail is the test's, unchanged.
    elsewhere = run(pytester, f"--therock-root={STRIX}", "-rX")
    elsewhere.assert_outcomes(xpassed=2)
    elsewhere.stdout.fnmatch_lines(["XPASS *::test_ours_on_top*flaky upstream"])


def test_a_plain_strict_xfail_is_not_replaced_by_xfail_on_gfx(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        _both_orders('xfail_on_gfx("gfx90a")', 'xfail(reason="wrong", strict=True)', "pass")
    )
    result = run(pytester, f"--therock-root={MI210}")
    result.assert_outcomes(failed=2)
    reason = "xfail_on_gfx('gfx90a') on gfx90a; xfail: wrong"
    assert result.stdout.lines.count(f"[XPASS(strict)] {reason}") == 2


@pytest.mark.parametrize(
    ("raised", "outcome"),
    [("AssertionError", "xfailed"), ("TypeError", "xfailed"), ("KeyError", "failed")],
)
def test_either_xfails_expected_exception_is_expected(
    pytester: pytest.Pytester, raised: str, outcome: str
) -> None:
    pytester.makepyfile(
        _both_orders(
            'xfail_on_gfx("gfx9*", raises=AssertionError)',
            "xfail(raises=TypeError)",
            f"raise {raised}",
        )
    )
    run(pytester, f"--therock-root={MI210}").assert_outcomes(**{outcome: 2})


def test_a_plain_xfail_that_does_not_run_the_test_still_holds(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        _both_orders('xfail_on_gfx("gfx90a", strict=True)', "xfail(run=False)", "assert 0")
    )
    result = run(pytester, f"--therock-root={MI210}", "-rx")
    result.assert_outcomes(xfailed=2)
    result.stdout.fnmatch_lines(["XFAIL *::test_ours_on_top*[[]NOTRUN[]] *on gfx90a; xfail"])


def test_xfail_on_gfx_without_strict_follows_xfail_strict(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        _both_orders('xfail_on_gfx("gfx90a")', 'xfail(False, reason="not here")', "pass")
    )
    run(pytester, f"--therock-root={MI210}").assert_outcomes(xpassed=2)
    strict = run(pytester, f"--therock-root={MI210}", "-o", "xfail_strict=true")
    strict.assert_outcomes(failed=2)


@pytest.mark.parametrize(
    ("marker", "message"),
    [
        ('skip_on_gfx("gfx[")', "'gfx?' is not a valid glob: an unclosed ?"),
        ('requires_gfx("gfx11]")', "'gfx11?' is not a valid glob: an unclosed ?"),
        ("skip_on_gfx()", "name at least one target"),
        ('skip_on_gfx("gfx1115")', "unknown gfx target or family 'gfx1115'"),
        ('skip_on_gfx("gfx90a", strict=True)', "unknown keyword 'strict'"),
        ('xfail_on_gfx("gfx90a", reason=3)', "reason must be a string"),
        ('xfail_on_gfx("gfx90a", strict="yes")', "strict must be True or False"),
        ('xfail_on_gfx("gfx90a", raises="boom")', "raises must be an exception type"),
    ],
)
def test_misused_negative_marker_is_a_collection_error(
    pytester: pytest.Pytester, marker: str, message: str
) -> None:
    pytester.makepyfile(f"import pytest\n\n@pytest.mark.{marker}\ndef test_a():\n    pass\n")
    result = run(pytester, f"--therock-root={MI210}")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*::test_a: marker *{message}*"])


def test_every_evaluated_target_marker_is_accepted_by_strict_markers(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                item.add_marker(pytest.mark.requires_gfx12_5)
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gfx94x
        @pytest.mark.requires_gfx120x
        def test_a():
            pass
        """
    )
    result = run(
        pytester,
        "--strict-markers",
        "-W",
        "error::pytest.PytestUnknownMarkWarning",
        f"--therock-root={MI210}",
    )
    result.assert_outcomes(skipped=1)


def test_a_bad_environment_variable_does_not_break_help(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_THEROCK_TIMEOUT", "soon")
    help_ = run(pytester, "--help")
    assert help_.ret == pytest.ExitCode.OK
    help_.stdout.fnmatch_lines(["*--therock-timeout=SECONDS*"])
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*PYTEST_THEROCK_TIMEOUT: expected a number of seconds, e.g. 30, got 'soon'"]
    )


FLAKY = """
import pytest

@pytest.mark.requires_gfx90a
def test_flaky(tmp_path_factory):
    marker = tmp_path_factory.getbasetemp() / "attempted"
    if not marker.exists():
        marker.write_text("")
        assert False, "first attempt fails"

@pytest.mark.requires_gfx1151
def test_strix_only():
    pass
"""


def test_reruns_are_not_more_hardware_marked_tests(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytest.importorskip("pytest_rerunfailures")
    pytester.makepyfile(FLAKY)
    junit = tmp_path / "junit.xml"
    result = run(pytester, f"--therock-root={MI210}", "--reruns=2", f"--junitxml={junit}")
    outcomes = result.parseoutcomes()
    assert (outcomes["passed"], outcomes["skipped"], outcomes["rerun"]) == (1, 1, 1)
    result.stdout.fnmatch_lines(
        ["1 skipped: requires gfx1151, found gfx90a x8", "1 of 2 hardware-marked tests ran"]
    )
    for case in ET.parse(junit).iter("testcase"):
        names = [p.get("name") for p in case.iter("property")]
        assert names.count("therock_requires") == 1, (case.get("name"), names)


IN_PROCESS = """
import pytest

pytest_plugins = ["pytester"]

TESTS = '''
import pytest

@pytest.mark.requires_gfx1151
def test_strix():
    pass

def test_arch(gpu_arch):
    assert gpu_arch == "gfx90a"
'''


@pytest.mark.parametrize("n", range(3))
def test_session(pytester, n):
    pytester.makepyfile(TESTS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--therock-root={root}", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["therock: GPUs 0-7: gfx90a*", "SKIPPED*requires gfx1151, found gfx90a x8"])


def test_a_misused_marker(pytester):
    pytester.makepyfile("import pytest\\n@pytest.mark.requires_gtt_gb('x')\\ndef test_a(): pass\\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--therock-root=/nonexistent-but-not-needed")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "--therock-root={root}")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*marker requires_gtt_gb('x'): expected a number of GiB*"])
"""


def _foreign_suite_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Load the plugin (and xdist) as a project's suite would, minus hypothesis's plugin.

    hypothesis's pytest plugin imports hypothesis at the end of every session, and
    pytester's in-process runs drop it from sys.modules each time: its own problem,
    not the one under test.
    """
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("PYTEST_PLUGINS", "xdist.plugin,xdist.looponfail,pytest_therock.plugin")
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)


def test_in_process_sessions_back_to_back(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another project's suite: the plugin loads with pytest, then pytester runs sessions.

    The outer session runs in a subprocess, so that it has imported only what loading
    the plugin imports (this test session has imported every module of the plugin).
    """
    _foreign_suite_environment(monkeypatch)
    pytester.makepyfile(test_theirs=IN_PROCESS.replace("{root}", str(MI210)))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--basetemp={pytester.path / 'bt'}"
    )
    result.assert_outcomes(passed=4)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_a_slice_of_pytest_xdists_own_suite_passes_with_the_plugin(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest-xdist 3.8.0's acceptance tests (vendored slice): in-process runs, -n, workers."""
    pytest.importorskip("xdist")
    _foreign_suite_environment(monkeypatch)
    shutil.copy(VENDORED / "xdist_acceptance_slice.py", pytester.path / "test_xdist_slice.py")
    result = pytester.runpytest_subprocess(
        "-q", "-p", "no:cacheprovider", f"--basetemp={pytester.path / 'bt'}", "-p", "pytester"
    )
    result.assert_outcomes(passed=10)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


PER_TARGET = {"gfx1151": 1e-3, "gfx115x": 2e-3, "gfx11": 5e-3, "default": 1e-2}


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("gfx1151", 1e-3),
        ("gfx1150", 2e-3),  # its sub-family
        ("gfx1100", 5e-3),  # its family
        ("gfx942", 1e-2),
        ("gfx1151:xnack-", 1e-3),  # PyTorch's gcnArchName form: the target before the ':'
        ("gfx1300", 1e-2),  # newer than rocm-bootstrap's table
        (None, 1e-2),  # no GPU
    ],
)
def test_per_target_picks_the_most_specific_entry(target: str | None, expected: float) -> None:
    from pytest_therock import per_target

    assert per_target(PER_TARGET, target) == expected


def test_per_target_rejects_unknown_keys_and_a_missing_default() -> None:
    from pytest_therock import per_target

    with pytest.raises(ValueError, match=r"unknown gfx target or family 'gfx1115'; did you mean"):
        per_target({"gfx1115": 1, "default": 0}, "gfx1151")
    with pytest.raises(LookupError, match=r"no entry for gfx942 \(keys: 'gfx11'; add one"):
        per_target({"gfx11": 1}, "gfx942")
    assert per_target({"GFX110X": "rdna3"}, "gfx1101") == "rdna3"


def test_per_target_with_the_gpu_arch_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_therock import per_target

        def test_tolerance(gpu_arch):
            atol = per_target({"gfx90a": 1e-5, "gfx9": 1e-4, "default": 1e-3}, gpu_arch)
            assert atol == 1e-5
        """
    )
    run(pytester, f"--therock-root={MI210}").assert_outcomes(passed=1)


def test_the_package_page_has_no_dead_links_and_a_license() -> None:
    """The README is the package index page: a link relative to the repository is dead there."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    repo = Path(__file__).parent.parent
    links = re.findall(r"\]\(([^)]+)\)", (repo / "README.md").read_text())
    assert links and all(link.startswith("https://") for link in links), links
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT" and project["urls"]
    # Every project URL is public, and none is the index page itself (it would link to itself).
    assert all(u.startswith("https://") and "pypi.org" not in u for u in project["urls"].values())
    assert (repo / "LICENSE").read_text().startswith("MIT License")


def test_a_driver_without_gpus_is_not_a_quiet_laptop(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """/dev/kfd exists (amdgpu is loaded) but the topology lists no GPU: that is an error."""
    from conftest import RootBuilder

    root = RootBuilder(tmp_path / "root").kfd("rw")
    pytester.makepyfile("def test_a(): pass")
    result = run(pytester, f"--therock-root={root.path}")
    result.stdout.fnmatch_lines(["therock: error[[]no-gpu[]]: no AMD GPU in the KFD topology*"])
    assert "no AMD GPU (" not in result.stdout.str()


def test_deselecting_a_target_under_strict_markers_needs_no_test_that_names_it(
    pytester: pytest.Pytester,
) -> None:
    """A CPU-only CI job: `-m "not requires_gfx1151"` with --strict-markers, over tests
    that never name the marker (pytest checks the names a -m expression uses)."""
    pytester.makepyfile("def test_cpu(): pass")
    result = run(pytester, "--strict-markers", "-m", "not requires_gfx1151 and not requires_gfx94x")
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("ask", ["--markers", "--fixtures", "--help"])
def test_a_bad_setting_does_not_break_the_commands_that_explain_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ask: str
) -> None:
    monkeypatch.setenv("PYTEST_THEROCK_TIMEOUT", "nan")
    assert run(pytester, ask).ret == pytest.ExitCode.OK


def test_generic_markers_setting_names_its_values(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_THEROCK_GENERIC_MARKERS", "maybe")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*PYTEST_THEROCK_GENERIC_MARKERS: expected auto, on or off, got 'maybe'"]
    )
