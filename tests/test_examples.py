"""Each setup in conftest_examples/ runs over recorded machines with the outcome it promises."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLES, REALDATA, run

SETUPS = Path(__file__).parent.parent / "conftest_examples"


def in_root(pytester: pytest.Pytester, root: str, *args: str) -> pytest.RunResult:
    """A session of the copied setup, on the recorded machine ``examples/roots/<root>``."""
    return run(pytester, f"--therock-root={EXAMPLES / root}", *args, xdist=True)


def copy_setup(pytester: pytest.Pytester, name: str) -> None:
    shutil.copytree(SETUPS / name, pytester.path, dirs_exist_ok=True)


def test_ml_repo_on_a_pages_limit_raised_after_load_still_skips_the_big_model(
    pytester: pytest.Pytester,
) -> None:
    # ttm.pages_limit is 96 GiB live, but KFD took 62.5 GiB when amdgpu loaded.
    copy_setup(pytester, "ml-repo")
    result = in_root(pytester, "strix-halo-gtt-raised", "-rs")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(["*found 62.5 GiB*gfx1151*"])


def test_ml_repo_on_default_gtt_skips_the_big_model_and_says_why(pytester: pytest.Pytester) -> None:
    copy_setup(pytester, "ml-repo")
    result = in_root(pytester, "strix-halo")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*requires 96 GiB GPU memory, found 62.5 GiB from GTT on gfx1151 "
            "(GTT defaults to 50% of RAM; raise ttm.pages_limit)",
            "warning[[]memory-below-need[]]: 96 GiB of GPU memory needed; gfx1151 can allocate "
            "62.5 GiB from GTT. Fix: set ttm.pages_limit=25165824 (96 GiB) on the kernel command line "
            "and reboot",
        ]
    )


def test_ml_repo_on_a_laptop_without_gpu_skips_gpu_tests(pytester: pytest.Pytester) -> None:
    copy_setup(pytester, "ml-repo")
    result = in_root(pytester, "no-gpu")
    result.assert_outcomes(passed=1, skipped=3)
    # A laptop says it once, in the header, and the run ends like any other.
    result.stdout.fnmatch_lines(
        [
            f"therock: no AMD GPU in {EXAMPLES / 'no-gpu'} (no /dev/kfd): tests that need one "
            "will skip; -v for details"
        ]
    )
    assert "hardware requirements" not in result.stdout.str()
    verbose = in_root(pytester, "no-gpu", "-v")
    verbose.stdout.fnmatch_lines(["every hardware-marked test (3) skipped: none of them ran"])


def test_ci_runner_passes_on_strix_halo(pytester: pytest.Pytester) -> None:
    copy_setup(pytester, "strix-halo-ci")
    in_root(pytester, "strix-halo").assert_outcomes(passed=2)


@pytest.mark.parametrize(("root", "found"), [("mi210-8x", "gfx90a x8"), ("no-gpu", "no AMD GPU")])
def test_ci_runner_that_lost_its_gpu_stops_before_any_test(
    pytester: pytest.Pytester, root: str, found: str
) -> None:
    copy_setup(pytester, "strix-halo-ci")
    result = in_root(pytester, root)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [f"*expected a gfx1151 GPU (--therock-expect), found {found}*; no test was run*"]
    )


def test_ci_runner_fails_unmet_requirements_instead_of_skipping(pytester: pytest.Pytester) -> None:
    copy_setup(pytester, "strix-halo-ci")
    (pytester.path / "test_runner.py").write_text(
        (SETUPS / "strix-halo-ci" / "test_runner.py")
        .read_text()
        .replace("requires_gtt_gb(60)", "requires_gtt_gb(100)")
    )
    result = in_root(pytester, "strix-halo")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*requires 100 GiB GTT, found 62.5 GiB on gfx1151*[[]--therock-strict[]]*"]
    )


def test_ci_workflow_runs_the_strict_expecting_command() -> None:
    workflow = (SETUPS / "strix-halo-ci" / "strix-halo.yml").read_text()
    assert "pytest --therock-strict --therock-expect gfx1151 --therock-expect-runtime" in workflow


def test_ci_workflow_uploads_a_snapshot_on_every_run_and_reads_the_fleet() -> None:
    workflow = (SETUPS / "strix-halo-ci" / "strix-halo.yml").read_text()
    steps = workflow.split("\n      - ")
    (snapshot,) = [s for s in steps if "pytest-therock snapshot" in s]
    assert snapshot.startswith("if: always()")
    assert "if: failure()" not in workflow
    assert "pytest-therock fleet snapshots" in workflow
    assert "pattern: therock-snapshot-*" in workflow


def test_ci_runner_in_a_container_without_kfd_stops_with_the_fix(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """A container started without --device /dev/kfd, as its real rocminfo output shows."""
    root = shutil.copytree(EXAMPLES / "strix-halo", tmp_path / "container")
    (root / "dev/kfd").unlink()
    (root / ".therock/kfd-access").write_text("missing\n")
    sample = REALDATA / "rocminfo/error-kfd-no-such-file-docker-without-device-kfd6.10.5.txt"
    (root / ".therock/rocminfo.txt").write_text(sample.read_text())
    (root / ".therock/rocminfo.exit").write_text("1\n")
    copy_setup(pytester, "strix-halo-ci")
    result = run(pytester, f"--therock-root={root}", xdist=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes()
    text = result.stdout.str() + result.stderr.str()
    proof = text.split("; runtime proof (--therock-expect-runtime): ", 1)[1]
    assert proof.startswith("rocminfo failed: /dev/kfd does not exist")
    assert "--device /dev/kfd --device /dev/dri" in proof
    # rocminfo got past its module check ("ROCk module version 6.10.5 is loaded"): a GPU
    # host, not a machine without one; kfd-missing says so, with the container's fix
    assert (
        "therock: error[kfd-missing]: /dev/kfd is missing although rocminfo found amdgpu "
        "loaded" in result.stdout.lines
    )


def test_multi_gpu_runner_gives_each_worker_one_gpu(pytester: pytest.Pytester) -> None:
    copy_setup(pytester, "multi-gpu-xdist")
    result = in_root(pytester, "mi210-8x", "-n", "2")  # 2 of the runner's 8 workers, on 2 cores
    result.assert_outcomes(passed=16)
    result.stdout.fnmatch_lines(["therock: xdist: 1 GPU(s) per worker: gw0 -> GPU 0; gw1 -> GPU 1"])


def test_multi_gpu_runner_with_too_few_gpus_says_how_many_workers_fit(
    pytester: pytest.Pytester,
) -> None:
    copy_setup(pytester, "multi-gpu-xdist")
    result = in_root(pytester, "strix-halo", "-n", "8")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*8 workers x 1 GPU(s) need 8 GPUs, 1 visible: at most 1 worker(s) fit (use -n 1)"]
    )


def test_multi_gpu_setup_on_a_one_gpu_machine_starts_one_worker(
    pytester: pytest.Pytester,
) -> None:
    copy_setup(pytester, "multi-gpu-xdist")  # -n auto: one worker per visible GPU
    result = in_root(pytester, "strix-halo")
    result.assert_outcomes(passed=16)
    result.stdout.fnmatch_lines(["*created: 1/1 worker*"])


def test_multi_gpu_setup_on_a_laptop_runs_in_the_main_process(
    pytester: pytest.Pytester,
) -> None:
    """-n auto with a GPU per worker, and no GPU: no worker, every test skips or runs."""
    copy_setup(pytester, "multi-gpu-xdist")
    result = in_root(pytester, "no-gpu")
    assert result.ret == pytest.ExitCode.OK
    assert "created:" not in result.stdout.str()


def test_custom_diagnostic_runs_without_the_plugin(pytester: pytest.Pytester) -> None:
    """Its hooks are optional: `-p no:therock` leaves the suite running (its one test
    asks for the plugin's `therock_env` fixture, so that test alone errors)."""
    copy_setup(pytester, "custom-diagnostic")
    result = run(pytester, "-p", "no:therock")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'therock_env' not found*"])


def test_custom_diagnostic_is_in_the_header(pytester: pytest.Pytester) -> None:
    copy_setup(pytester, "custom-diagnostic")
    result = in_root(pytester, "strix-halo")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "therock: warning[[]lab-gtt[]]: gfx1151: 62.5 GiB of GTT, the eval suite needs 96",
            "therock: info[[]gpu-memory[]]: *",
            "therock: lab: eval suite needs 96 GiB of GTT",
        ]
    )
    raised = in_root(pytester, "strix-halo-gtt-raised")  # live 96 GiB, KFD's 62.5 GiB
    assert "lab-gtt" in raised.stdout.str()
