"""pytest-xdist: detection runs once in the controller; each worker can get its own GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import EXAMPLES, run

from pytest_therock.detect import detect
from pytest_therock.sysroot import Root
from pytest_therock.workers import SliceBook, gpu_slices, worker_ids, worker_variables

MI210 = EXAMPLES / "mi210-8x"

COUNTING_CONFTEST = """
import os
import pytest_therock.detect as probe

_detect = probe.detect

def counted(*args, **kwargs):
    with open(os.environ["PROBE_LOG"], "a") as log:
        log.write(f"{os.getpid()}\\n")
    return _detect(*args, **kwargs)

probe.detect = counted
"""

GPU_TESTS = """
import os
import pytest

@pytest.mark.parametrize("n", range(8))
def test_gpu(n, gpu_arch, therock_env, worker_id):
    assert gpu_arch == "gfx90a"
    visible = [therock_env.gpus.index(g) for g in therock_env.visible_gpus]
    with open(os.path.join(os.environ["PROBE_DIR"], worker_id), "w") as f:
        f.write(os.environ.get("ROCR_VISIBLE_DEVICES", "") + " " + repr(visible))
"""


def test_detection_runs_once_and_the_header_is_printed_once(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "probes.log"
    monkeypatch.setenv("PROBE_LOG", str(log))
    monkeypatch.setenv("PROBE_DIR", str(tmp_path))
    pytester.makeconftest(COUNTING_CONFTEST)
    pytester.makepyfile(GPU_TESTS)
    # A subprocess: the conftest wraps the probe, which must not leak into other tests.
    result = pytester.runpytest_subprocess("-n", "4", f"--therock-root={MI210}")
    result.assert_outcomes(passed=8)
    assert len(log.read_text().split()) == 1  # the controller only; workers got it by workerinput
    assert result.stdout.str().count("therock: GPUs 0-7") == 1


def test_each_worker_sees_its_own_gpus(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_DIR", str(tmp_path))
    pytester.makepyfile(GPU_TESTS)
    result = run(
        pytester, "-n", "4", f"--therock-root={MI210}", "--therock-gpus-per-worker=2", xdist=True
    )
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(
        [
            "therock: xdist: 2 GPU(s) per worker: gw0 -> GPU 0,1; gw1 -> GPU 2,3; gw2 -> GPU 4,5; gw3 -> GPU 6,7"
        ]
    )
    seen = {p.name: p.read_text() for p in tmp_path.glob("gw*")}
    for k, text in seen.items():  # a worker that ran no test wrote nothing
        first = 2 * int(k[2:])
        assert text == f"{first},{first + 1} [{first}, {first + 1}]"
    assert seen


def test_a_user_filter_is_respected(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_DIR", str(tmp_path))
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", "7,6,5,4")
    pytester.makepyfile(GPU_TESTS)
    result = run(
        pytester, "-n", "2", f"--therock-root={MI210}", "--therock-gpus-per-worker=2", xdist=True
    )
    result.assert_outcomes(passed=8)
    seen = {p.name: p.read_text() for p in tmp_path.glob("gw*")}
    assert set(seen.values()) <= {"7,6 [7, 6]", "5,4 [5, 4]"}
    # The header names the GPUs each worker gets (its ROCR_VISIBLE_DEVICES), not positions.
    result.stdout.fnmatch_lines(
        ["therock: xdist: 2 GPU(s) per worker: gw0 -> GPU 7,6; gw1 -> GPU 5,4"]
    )
    for worker, text in seen.items():
        assert text.startswith({"gw0": "7,6 ", "gw1": "5,4 "}[worker])


def test_more_workers_than_gpu_slices_is_an_error_before_any_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(GPU_TESTS)
    result = run(
        pytester, "-n", "3", f"--therock-root={MI210}", "--therock-gpus-per-worker=3", xdist=True
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: pytest-therock: --therock-gpus-per-worker: 3 workers x 3 GPU(s) need 9 GPUs, 8 visible: at most 2 worker(s) fit (use -n 2)"
        ]
    )


def test_without_xdist_the_setting_changes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "def test_all(therock_env):\n    assert len(therock_env.visible_gpus) == 8\n"
    )
    result = run(
        pytester, "-p", "no:xdist", f"--therock-root={MI210}", "--therock-gpus-per-worker=2"
    )
    result.assert_outcomes(passed=1)


def test_slices() -> None:
    assert gpu_slices(8, 2, 4) == [range(0, 2), range(2, 4), range(4, 6), range(6, 8)]
    assert gpu_slices(3, 1, 2) == [range(0, 1), range(1, 2)]
    with pytest.raises(ValueError, match="2 GPU"):
        gpu_slices(1, 2, 1)


def test_worker_variables_name_gpus_among_all_of_them() -> None:
    env = detect(Root(MI210), {"HIP_VISIBLE_DEVICES": "1,3,5,7"})
    assert worker_variables(env, range(2, 4)) == {
        "ROCR_VISIBLE_DEVICES": "5,7",
        "HIP_VISIBLE_DEVICES": "0,1",
        "CUDA_VISIBLE_DEVICES": "0,1",
    }


# --- slices follow worker identity; -n auto is sized from the GPUs -----------------------------

STARTED_CONFTEST = """
import os

def pytest_sessionstart(session):
    workerinput = getattr(session.config, "workerinput", None)
    if workerinput is not None:  # each worker records the GPUs it was given
        name = os.path.join(os.environ["PROBE_DIR"], "started-" + workerinput["workerid"])
        with open(name, "w") as f:
            f.write(os.environ.get("ROCR_VISIBLE_DEVICES", "-"))
"""

CRASHING_TESTS = """
import os
import pytest

def test_crash_once(worker_id):
    flag = os.path.join(os.environ["PROBE_DIR"], "crashed")
    if not os.path.exists(flag):
        with open(flag, "w") as f:
            f.write(worker_id)
        os._exit(1)

@pytest.mark.parametrize("n", range(8))
def test_gpu(n, therock_env):
    assert len(therock_env.visible_gpus) == 2
"""


def started(directory: Path) -> dict[str, str]:
    return {p.name.removeprefix("started-"): p.read_text() for p in directory.glob("started-*")}


def test_a_replacement_worker_gets_the_gpus_of_the_worker_it_replaces(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One worker, so its replacement (gw1, an id no slice was planned for) must run the
    rest: before, it had no slice and every remaining test was lost."""
    monkeypatch.setenv("PROBE_DIR", str(tmp_path))
    pytester.makeconftest(STARTED_CONFTEST)
    pytester.makepyfile(CRASHING_TESTS)
    result = run(
        pytester, "-n", "1", f"--therock-root={MI210}", "--therock-gpus-per-worker=2", xdist=True
    )
    result.assert_outcomes(passed=8, failed=1)  # only the crashing test is lost
    result.stdout.fnmatch_lines(["*replacing crashed worker gw0*"])
    assert (tmp_path / "crashed").read_text() == "gw0"
    assert started(tmp_path) == {"gw0": "0,1", "gw1": "0,1"}


def test_workers_with_names_get_slices(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_DIR", str(tmp_path))
    pytester.makeconftest(STARTED_CONFTEST)
    pytester.makepyfile("def test_a(therock_env):\n    assert len(therock_env.visible_gpus) == 4\n")
    result = run(
        pytester,
        *("--tx", "popen//id=alpha", "--tx", "popen//id=beta", "--dist", "load"),
        f"--therock-root={MI210}",
        "--therock-gpus-per-worker=4",
        xdist=True,
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        ["therock: xdist: 4 GPU(s) per worker: alpha -> GPU 0,1,2,3; beta -> GPU 4,5,6,7"]
    )
    assert started(tmp_path) == {"alpha": "0,1,2,3", "beta": "4,5,6,7"}


def test_n_auto_starts_one_worker_per_gpu_slice(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROBE_DIR", str(tmp_path))
    monkeypatch.delenv("PYTEST_XDIST_AUTO_NUM_WORKERS", raising=False)
    pytester.makeconftest(STARTED_CONFTEST)
    pytester.makepyfile("def test_a(therock_env):\n    assert len(therock_env.visible_gpus) == 1\n")
    result = run(
        pytester, "-n", "auto", f"--therock-root={MI210}", "--therock-gpus-per-worker=1", xdist=True
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*created: 8/8 workers*"])
    assert started(tmp_path) == {f"gw{k}": str(k) for k in range(8)}


def test_n_auto_without_the_setting_is_left_to_xdist(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "1")
    pytester.makepyfile("def test_a(): pass")
    result = run(pytester, "-n", "auto", f"--therock-root={MI210}", xdist=True)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*created: 1/1 worker*"])


def test_worker_ids_follow_the_tx_specs() -> None:
    assert worker_ids(["popen"] * 3) == ["gw0", "gw1", "gw2"]
    assert worker_ids(["2*popen", "popen//id=alpha", "popen"]) == ["gw0", "gw1", "alpha", "gw2"]


def test_a_freed_slice_goes_to_the_next_worker_without_one() -> None:
    book = SliceBook(["gw0", "gw1"], [range(0, 2), range(2, 4)])
    assert book.take("gw1") == range(2, 4)
    assert book.take("gw0") == range(0, 2)
    book.release("gw1")  # crashed
    assert book.take("gw2") == range(2, 4)
    with pytest.raises(ValueError, match="no GPU slice left for worker 'gw3'"):
        book.take("gw3")
