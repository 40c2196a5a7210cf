"""Who a marker belongs to, beside other projects' markers: decided once every conftest
is loaded, from what a module does (not its text), and said for every test it touches."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import EXAMPLES, REALDATA, run
from test_suites import MALFORMED  # the same malformed module, read under other settings

STRIX = EXAMPLES / "strix-halo"  # one gfx1151 APU
MI210 = REALDATA / "kfd-topology" / "topo-mi210-xgmi-pcie"  # 8x gfx90a
NO_GPU = EXAMPLES / "no-gpu"
README = Path(__file__).parent.parent / "README.md"

REGISTERS_GENERIC = """
def pytest_configure(config):
    config.addinivalue_line("markers", "requires_rocm: ours")
    config.addinivalue_line("markers", "requires_gpus: ours")
"""

USES_BOTH = """
import pytest

@pytest.mark.requires_gfx1151
def test_gfx():
    pass

@pytest.mark.requires_rocm
def test_rocm():
    pass

@pytest.mark.requires_gpus(2)
def test_gpus2():
    pass
"""


@pytest.mark.parametrize("subdir", ["z", "0z"])  # collected after a/, and before it
@pytest.mark.parametrize("xdist", [False, True], ids=["", "xdist"])
def test_a_subdirectory_registration_counts_whatever_the_collection_order(
    pytester: pytest.Pytester, subdir: str, xdist: bool
) -> None:
    (pytester.mkpydir("a") / "test_a.py").write_text(USES_BOTH)
    sub = pytester.mkpydir(subdir)
    (sub / "conftest.py").write_text(REGISTERS_GENERIC)
    (sub / "test_z.py").write_text("def test_plain():\n    pass\n")
    args = ("-n", "2") if xdist else ()
    result = run(pytester, f"--therock-root={STRIX}", "--strict-markers", *args, xdist=xdist)
    # The project's requires_rocm and requires_gpus (2 GPUs on a 1-GPU machine): theirs.
    result.assert_outcomes(passed=4)
    assert result.ret == pytest.ExitCode.OK


MALFORMED_IN_A_PLUGIN_MODULE = """
import pytest

@pytest.mark.requires_gfx1151
def test_gfx():
    pass

@pytest.mark.requires_rocm
def test_rocm():
    pass

def test_cpu():
    pass
"""


def test_a_malformed_generic_marker_in_a_plugin_module_is_an_error_of_that_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_mixed=MALFORMED_IN_A_PLUGIN_MODULE)
    result = run(pytester, f"--therock-root={STRIX}")
    result.assert_outcomes(passed=2, errors=1)  # not a collection error of the module
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_rocm*",
            "*pytest-therock: invalid marker requires_rocm: takes one version specifier "
            "string, e.g. '>=7.0' (test_mixed.py:7)",
        ]
    )
    assert "ERROR collecting" not in result.stdout.str()


def test_the_plugins_own_names_are_still_checked_at_collection(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.requires_gtt_gb('x')\ndef test_a():\n    pass\n"
    )
    result = run(pytester, f"--therock-root={STRIX}")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting*", "*requires_gtt_gb('x'): expected a number*"])


BARE_ROCM = """
import pytest

@pytest.mark.requires_rocm
def test_rocm({fixture}):
    pass
"""


@pytest.mark.parametrize(
    ("head", "fixture", "uses"),
    [
        (
            '"""Needs a ROCm host: see the therock_dist_dir setting (pytest_therock too)."""',
            "",
            False,
        ),
        ("# requires_gfx1151 and skip_on_gfx are not used here", "", False),
        ("from pytest_therock import per_target", "", True),
        ("import pytest_therock", "", True),
        ("", "gpu_arch", True),
        ("", "therock_env", True),
        # the project's own fixture named like one of the plugin's: not the plugin's
        ("import pytest\n\n@pytest.fixture\ndef rocminfo():\n    return 'ours'", "rocminfo", False),
    ],
    ids=["docstring", "comment", "per_target", "import", "gpu_arch", "therock_env", "own-fixture"],
)
def test_a_module_uses_the_plugin_by_what_it_does_not_by_its_text(
    pytester: pytest.Pytester, head: str, fixture: str, uses: bool
) -> None:
    pytester.makepyfile(test_m=head + "\n" + BARE_ROCM.format(fixture=fixture))
    result = run(pytester, f"--therock-root={STRIX}", "-W", "always")
    if uses:  # the plugin's requires_rocm, misused: an error of that test, at setup
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*invalid marker requires_rocm: takes one version*"])
    else:  # the project's bare marker: left alone, and said
        result.assert_outcomes(passed=1, warnings=1)
        result.stdout.fnmatch_lines(["*MarkerWarning: pytest-therock: requires_rocm: *"])
    assert "ERROR collecting" not in result.stdout.str()


def test_every_test_with_an_unread_marker_errors_under_the_readmes_warning_filter(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_malformed=MALFORMED)
    recipe = ("-W", "error::pytest_therock.plugin.MarkerWarning")
    result = run(pytester, f"--therock-root={MI210}", *recipe)
    result.assert_outcomes(passed=1, errors=3)
    out = result.stdout.str()
    said = "E   pytest_therock.plugin.MarkerWarning: pytest-therock: requires_gpus('two')"
    assert [line.startswith(said) for line in result.stdout.lines].count(True) == 2, out
    # The user's test and the message, not the plugin's source.
    assert "pytest_therock" + "/plugin.py" not in out, out
    assert "def pytest_runtest_setup" not in out, out


@pytest.mark.parametrize("xdist", [False, True], ids=["", "xdist"])
def test_each_test_with_an_unread_marker_warns_once_with_or_without_xdist(
    pytester: pytest.Pytester, xdist: bool
) -> None:
    pytester.makepyfile(test_malformed=MALFORMED)
    args = ("-n", "2") if xdist else ()
    result = run(pytester, f"--therock-root={MI210}", "-W", "always", *args, xdist=xdist)
    result.assert_outcomes(passed=4, warnings=3)  # one per test, at each test's line
    result.stdout.fnmatch_lines_random(
        [
            "*test_malformed.py:6: MarkerWarning: pytest-therock: requires_gpus('two'): *",
            "*test_malformed.py:10: MarkerWarning: pytest-therock: requires_gpus('two'): *",
            "*test_malformed.py:14: MarkerWarning: pytest-therock: requires_rocm(bogus=1): *",
        ]
    )


STRICT_MIX = """
import pytest

@pytest.mark.requires_gfx1151
def test_strix():
    pass

@pytest.mark.requires_gfx1100
def test_navi31():
    pass

@pytest.mark.xfail(reason="known")
@pytest.mark.requires_gfx1100
def test_navi31_known():
    assert False

def test_cpu():
    pass
"""


def _pytest_counts(result: pytest.RunResult) -> dict[str, int]:
    return {k: v for k, v in result.parseoutcomes().items() if v}


def test_the_strict_summary_uses_pytests_words_for_what_happened(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(STRICT_MIX)
    result = run(pytester, f"--therock-root={STRIX}", "--therock-strict")
    counts = _pytest_counts(result)
    assert counts == {"passed": 2, "errors": 2}, counts  # unmet under strict: setup errors
    block = result.stdout.str().split("therock: hardware requirements", 1)[1]
    assert "failed" not in block, block
    result.stdout.fnmatch_lines(
        [
            "2 errors: requires gfx1100, found gfx1151 (Radeon 8060S Graphics)",
            "1 of 3 hardware-marked tests ran",
        ]
    )
    none = run(pytester, f"--therock-root={NO_GPU}", "--therock-strict")
    assert _pytest_counts(none) == {"passed": 1, "errors": 3}
    none.stdout.fnmatch_lines(
        [
            "2 errors: requires gfx1100, found no AMD GPU*",
            "1 error: requires gfx1151, found no AMD GPU*",
            "every hardware-marked test (3) is an error at setup: none of them ran",
        ]
    )


def test_a_test_skipped_by_the_project_is_not_counted_as_run(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        def pytest_runtest_setup(item):
            if item.name == "test_strix":
                pytest.skip("the project's own reason")
        """
    )
    pytester.makepyfile(STRICT_MIX)
    result = run(pytester, f"--therock-root={STRIX}")
    assert _pytest_counts(result) == {"passed": 1, "skipped": 3}
    result.stdout.fnmatch_lines(
        ["2 skipped: requires gfx1100, found gfx1151*", "0 of 3 hardware-marked tests ran"]
    )


@pytest.mark.parametrize("marker", ["requires_rocm('')", "requires_torch_rocm('  ')"])
def test_an_empty_version_specifier_is_an_error_naming_the_test(
    pytester: pytest.Pytester, marker: str
) -> None:
    pytester.makepyfile(
        test_empty=f"import pytest\n\n@pytest.mark.requires_gfx1151\n"
        f"@pytest.mark.{marker}\ndef test_rocm():\n    pass\n"
    )
    result = run(pytester, f"--therock-root={STRIX}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [f"*invalid marker {marker}: an empty version specifier*(test_empty.py:3)"]
    )


UNMET_MEMORY = """
import pytest

@pytest.mark.requires_gtt_gb(96)
@pytest.mark.requires_gpu_memory_gb(96)
def test_big():
    pass
"""


def test_every_junit_property_written_is_documented(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    pytester.makepyfile(UNMET_MEMORY)
    junit = tmp_path / "junit.xml"
    run(pytester, f"--therock-root={STRIX}", f"--junitxml={junit}").assert_outcomes(skipped=1)
    written = {p.get("name") for p in ET.parse(junit).iter("property")}
    assert "therock_gpu_memory_needed_bytes" in written
    documented = set(re.findall(r"`(therock_\w+)`", README.read_text()))
    assert written - documented == set()


def _readme_block_after(phrase: str) -> str:
    text = README.read_text()
    start = text.index(phrase)
    match = re.search(r"```ini\n(.*?)```", text[start:], re.S)
    assert match is not None, f"no ini block after {phrase!r}"
    return match.group(1)


def test_the_readmes_workaround_for_markers_defined_in_a_helper_module(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        helpers="import pytest\n\nstrix = pytest.mark.requires_gfx1151\n",
        test_model="from helpers import strix\n\n@strix\ndef test_a():\n    pass\n",
    )
    # In a process of its own: pytest's mark generator keeps the names it has seen.
    strict = ("-p", "no:cacheprovider", f"--therock-root={MI210}", "--strict-markers", "-rs")
    unregistered = pytester.runpytest_subprocess(*strict)
    assert unregistered.ret == pytest.ExitCode.INTERRUPTED  # not registered in time
    unregistered.stdout.fnmatch_lines(["*'requires_gfx1151' not found in `markers`*"])
    pytester.makeini(_readme_block_after("defined in a helper module"))
    result = pytester.runpytest_subprocess(*strict)
    result.assert_outcomes(skipped=1)  # registered, and still the plugin's
    result.stdout.fnmatch_lines(["SKIPPED*requires gfx1151, found gfx90a x8"])
