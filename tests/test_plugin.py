"""Real pytest sessions (pytester) over roots assembled from real captures."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EXAMPLES, REALDATA, RootBuilder, real, run

MI210 = REALDATA / "kfd-topology" / "topo-mi210-xgmi-pcie"


TESTS = """
import pytest

@pytest.mark.requires_gfx1151
def test_strix_halo():
    pass

@pytest.mark.requires_gfx90a
def test_mi210():
    pass

@pytest.mark.requires_gpus(2)
def test_two_gpus():
    pass

def test_arch(gpu_arch):
    assert gpu_arch == "gfx90a"

def test_plain():
    pass
"""


@pytest.fixture
def mi210_root(root: RootBuilder) -> Path:
    root.topology("topo-mi210-xgmi-pcie").kfd("rw")
    return root.path


@pytest.fixture
def empty_root(root: RootBuilder) -> Path:
    root.write(
        "proc/cmdline", real("cmdline/gfx1152-krackan-cachyos-proc-cmdline-cwsr-enable-0.txt")
    )
    return root.path


def test_unmet_requirement_skips_with_what_was_required_and_found(
    pytester: pytest.Pytester, mi210_root: Path
) -> None:
    pytester.makepyfile(TESTS)
    result = run(pytester, f"--therock-root={mi210_root}", "-rs")
    result.assert_outcomes(passed=4, skipped=1)
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]1[]] test_unmet_*.py:*: requires gfx1151, found gfx90a x8"]
    )


def test_strict_mode_fails_unmet_requirements(pytester: pytest.Pytester, empty_root: Path) -> None:
    pytester.makepyfile(TESTS)
    result = run(pytester, f"--therock-root={empty_root}", "--therock-strict")
    result.assert_outcomes(passed=1, errors=4)
    result.stdout.fnmatch_lines(["*requires gfx90a, found no AMD GPU*[[]--therock-strict[]]*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("how", ["env", "ini"])
def test_strict_mode_from_environment_or_ini(
    pytester: pytest.Pytester, empty_root: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    pytester.makepyfile(TESTS)
    if how == "env":
        monkeypatch.setenv("PYTEST_THEROCK_STRICT", "1")
    else:
        pytester.makeini("[pytest]\ntherock_strict = true\n")
    result = run(pytester, f"--therock-root={empty_root}")
    result.assert_outcomes(passed=1, errors=4)


def test_root_from_environment_and_ini(
    pytester: pytest.Pytester, mi210_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(TESTS)
    pytester.makeini(f"[pytest]\ntherock_root = {mi210_root}\n")
    run(pytester).assert_outcomes(passed=4, skipped=1)
    monkeypatch.setenv("PYTEST_THEROCK_ROOT", str(EXAMPLES / "no-gpu"))
    result = run(pytester)  # the environment variable beats the ini key
    result.assert_outcomes(passed=1, skipped=4)
    result = run(pytester, f"--therock-root={mi210_root}")  # the option beats both
    result.assert_outcomes(passed=4, skipped=1)


def test_a_root_that_is_not_a_directory_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--therock-root=/nonexistent-root")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*pytest-therock: --therock-root: /nonexistent-root is not a directory"]
    )


def test_bad_setting_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_THEROCK_STRICT", "maybe")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*pytest-therock: PYTEST_THEROCK_STRICT: expected true or false, got 'maybe'"]
    )


def test_expect_stops_the_session_before_any_test(
    pytester: pytest.Pytester, mi210_root: Path
) -> None:
    pytester.makepyfile(TESTS)
    result = run(pytester, f"--therock-root={mi210_root}", "--therock-expect", "gfx1151")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*expected a gfx1151 GPU (--therock-expect), found gfx90a x8; fix: run on a machine "
            "with a gfx1151 GPU (in CI: the job ran on a runner without one; check its runs-on "
            "labels); no test was run*"
        ]
    )
    result.assert_outcomes()
    ok = run(
        pytester,
        f"--therock-root={mi210_root}",
        "--therock-expect",
        "gfx90a",
        "--therock-expect",
        "gfx9",
    )
    ok.assert_outcomes(passed=4, skipped=1)


def test_expect_with_an_unknown_target_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--therock-expect", "gfx1115")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--therock-expect: unknown gfx target or family 'gfx1115'*"])


def test_misused_marker_is_a_collection_error_naming_test_and_marker(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gtt_gb("lots")
        def test_big():
            pass

        def test_fine():
            pass
        """
    )
    result = run(pytester)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting*",
            "*test_misused_marker_is_a_collection_error_naming_test_and_marker.py::test_big: "
            "marker requires_gtt_gb('lots'): expected a number of GiB, got 'lots'; "
            "e.g. requires_gtt_gb(64)",
            "*1 error*",
        ]
    )


def test_class_and_module_marks_and_parametrised_marks(
    pytester: pytest.Pytester, mi210_root: Path
) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.requires_gpus(1)

        @pytest.mark.requires_gfx90a
        class TestInstinct:
            def test_a(self):
                pass

            @pytest.mark.requires_apu
            def test_b(self):
                pass

        @pytest.mark.parametrize("n", [1, pytest.param(2, marks=pytest.mark.requires_gfx1151)])
        def test_p(n):
            pass
        """
    )
    result = run(pytester, f"--therock-root={mi210_root}", "-rs")
    result.assert_outcomes(passed=2, skipped=2)
    result.stdout.fnmatch_lines_random(
        ["*requires an APU, found discrete gfx90a x8", "*requires gfx1151, found gfx90a x8"]
    )


def test_strict_markers_accept_every_target_marker(
    pytester: pytest.Pytester, mi210_root: Path
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gfx942
        @pytest.mark.requires_gfx115x
        @pytest.mark.requires_gfx11
        def test_a():
            pass
        """
    )
    result = run(pytester, "--strict-markers", f"--therock-root={mi210_root}")
    result.assert_outcomes(skipped=1)


def test_markers_are_documented(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--markers")
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.requires_gfx(*targets): run only on a GPU matching one of*",
            "@pytest.mark.requires_gfx<target>: shorthand for requires_gfx('<target>'), for every*",
            "@pytest.mark.requires_gtt_gb(n): run only if a GPU can allocate at least n GiB*",
            "@pytest.mark.skip_on_gfx(*targets, reason=None): skip on a GPU matching*",
        ]
    )
    # One line for the family, not one per target: --markers stays readable.
    assert "requires_gfx1151:" not in result.stdout.str()
    assert result.stdout.str().count("@pytest.mark.requires_") < 12


def test_options_are_in_help(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--help")
    result.stdout.fnmatch_lines(
        [
            "*--therock-root=DIR*",
            "*--therock-strict*",
            "*--therock-expect=TARGET*",
            "*therock_root (string)*",
        ]
    )


def test_header_summarises_the_environment(pytester: pytest.Pytester, mi210_root: Path) -> None:
    pytester.makepyfile("def test_a(): pass")
    result = run(pytester, f"--therock-root={mi210_root}")
    result.stdout.fnmatch_lines(
        [
            f"therock: root: {mi210_root}",
            "therock: GPUs 0-7: gfx90a, 104 CU, discrete, VRAM unknown, GTT unknown x8",
            "therock: /dev/kfd: rw",
        ]
    )
    verbose = run(pytester, f"--therock-root={mi210_root}", "-v")
    verbose.stdout.fnmatch_lines(
        ["therock:   node 2, PCI 0000:63:00.0, no DRM card, device 0x740f, GPU-*"]
    )


def test_header_without_gpu_is_one_line_and_no_error(
    pytester: pytest.Pytester, empty_root: Path
) -> None:
    """A contributor's laptop: one line, no error severity, no advice to load a driver
    (nor "amdgpu is not loaded", which is no fault on a machine without an AMD GPU)."""
    pytester.makepyfile("def test_a(): pass")
    result = run(pytester, f"--therock-root={empty_root}")
    therock = [line for line in result.stdout.lines if line.startswith("therock:")]
    assert therock == [  # names the root it read: a stray setting shows
        f"therock: no AMD GPU in {empty_root} (no /dev/kfd): tests that need one will skip; "
        "-v for details"
    ]
    verbose = run(pytester, f"--therock-root={empty_root}", "-v")
    verbose.stdout.fnmatch_lines(
        [
            "therock: GPUs: none found",
            "therock: /dev/kfd: missing",
            "therock: info[kfd-missing]: no AMD GPU found: /dev/kfd is missing and the KFD "
            "topology lists no GPU.",
        ]
    )
    said = verbose.stdout.str()
    assert "error[" not in said and "modprobe" not in said and "not loaded" not in said


def test_header_without_gpu_in_strict_mode_explains_why(
    pytester: pytest.Pytester, empty_root: Path
) -> None:
    """A CI runner that asked for a GPU: the error, and where the steps for a machine
    that has one are (nothing here says whether it has one: no advice to load a driver)."""
    pytester.makepyfile("def test_a(): pass")
    result = run(pytester, f"--therock-root={empty_root}", "--therock-strict")
    result.stdout.fnmatch_lines(
        [
            "therock: GPUs: none found",
            "therock: /dev/kfd: missing",
            "therock: error[kfd-missing]: no AMD GPU found: /dev/kfd is missing and the KFD "
            "topology lists no GPU",
        ]
    )
    assert "modprobe" not in result.stdout.str()
    verbose = run(pytester, f"--therock-root={empty_root}", "--therock-strict", "-v")
    verbose.stdout.fnmatch_lines(
        ["*Fix: nothing to do without an AMD GPU; on a machine that has one: "
         "`pytest-therock doctor --explain kfd-missing`"]
    )  # fmt: skip


def test_disabling_the_plugin_removes_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_a(): pass")
    result = run(pytester, "-p", "no:therock")
    assert "therock:" not in result.stdout.str()
    result.assert_outcomes(passed=1)


def test_fixtures_describe_the_first_visible_gpu(
    pytester: pytest.Pytester, mi210_root: Path
) -> None:
    pytester.makepyfile(
        """
        def test_env(therock_env, gpu_arch, gtt_info):
            assert len(therock_env.gpus) == 8
            assert gpu_arch == "gfx90a"
            assert gtt_info.gfx_target == "gfx90a"
            assert gtt_info.total_bytes is None
        """
    )
    run(pytester, f"--therock-root={mi210_root}").assert_outcomes(passed=1)


def test_fixture_without_gpu_skips_or_fails_in_strict_mode(
    pytester: pytest.Pytester, empty_root: Path
) -> None:
    pytester.makepyfile("def test_a(gtt_info): pass")
    result = run(pytester, f"--therock-root={empty_root}", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*gtt_info needs an AMD GPU, found no AMD GPU*"])
    run(pytester, f"--therock-root={empty_root}", "--therock-strict").assert_outcomes(errors=1)


def test_start_up_runs_no_subprocess_and_imports_no_torch(
    pytester: pytest.Pytester, mi210_root: Path
) -> None:
    # A torch that fails loudly if anything imports it, and a Popen that refuses to run.
    pytester.makepyfile(torch="raise ImportError('pytest-therock imported torch')")
    pytester.makeconftest(
        """
        import subprocess

        class NoPopen(subprocess.Popen):
            def __init__(self, *args, **kwargs):
                raise AssertionError(f"pytest-therock started a subprocess: {args}")

        subprocess.Popen = NoPopen
        """
    )
    pytester.makepyfile(
        """
        import sys
        import pytest

        @pytest.mark.requires_gfx90a
        @pytest.mark.requires_gtt_gb(1)
        @pytest.mark.requires_torch_rocm
        def test_a(therock_env, gpu_arch):
            assert "torch" not in sys.modules
        """
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--therock-root={mi210_root}", "-rs"
    )
    result.assert_outcomes(skipped=1)  # requires_torch_rocm: no torch in this snapshot
    result.stdout.fnmatch_lines(["*requires a ROCm build of torch, found no torch"])
    assert "started a subprocess" not in result.stdout.str()


def test_two_requirements_of_one_kind_both_apply(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.requires_gtt_gb(8)

        @pytest.mark.requires_gtt_gb(96)
        def test_big():
            pass

        def test_small():
            pass
        """
    )
    default = run(pytester, f"--therock-root={EXAMPLES / 'strix-halo'}", "-rs")  # 62.5 GiB
    default.assert_outcomes(passed=1, skipped=1)
    default.stdout.fnmatch_lines(
        [
            "*requires 96 GiB GTT, found 62.5 GiB on gfx1151*",
            "warning[[]memory-below-need[]]: 96 GiB of GTT needed; gfx1151 can allocate 62.5 GiB. "
            "Fix: set ttm.pages_limit=25165824 (96 GiB) on the kernel command line and reboot",
        ]
    )


def test_the_plugins_modules_skip_pytests_assertion_rewriting(pytester: pytest.Pytester) -> None:
    """pytest would load each module of the plugin through its assertion rewriter (pure
    Python: half the plugin's import time with the header shown); the project's own
    tests are still rewritten."""
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            names = (".plugin", ".settings", ".state", ".detect")  # the entry point too
            loaders = {type(sys.modules["pytest_therock" + n].__loader__).__name__ for n in names}
            print("LOADER", *loaders)
        """
    )
    pytester.makepyfile("def test_a():\n    x = 1\n    assert x == 2\n")
    root = Path(__file__).parent.parent / "examples" / "roots" / "strix-halo"
    result = pytester.runpytest_subprocess(f"--therock-root={root}", "-s")
    result.stdout.fnmatch_lines(["*LOADER SourceFileLoader", "*assert 1 == 2*"])
