"""Fault injection: broken sysfs/procfs files in real sessions, and misbehaving tools.

Roots are assembled from the real samples in realdata/ (one MI210 KFD node with a DRM
card, or the whole 8-GPU topology capture ``topo-mi210-xgmi-pcie``), then one file is
broken: a directory, binary garbage, empty, a number too large, a half-written node, a
symlink loop, a FIFO, a missing /proc/meminfo, an inaccessible /dev/kfd. For each, a
real pytest session (pytester) must complete, say what is wrong in one header line,
skip what the fault hides (fail it with --therock-strict), and ``pytest-therock
doctor`` must say the same and exit 0 or 1; no traceback may reach the user.

The tools are fake shell scripts run with a live root and short timeouts.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import KFD, REALDATA, RootBuilder, gone, real, run

from pytest_therock.cli import main as cli_main
from pytest_therock.detect import detect
from pytest_therock.rocminfo_env import run_rocminfo
from pytest_therock.sysroot import MAX_TOOL_OUTPUT, Root, run_tool

NODE = f"{KFD}/1/properties"
CARD = "sys/class/drm/card0/device"
VRAM = f"{CARD}/mem_info_vram_total"
GTT = f"{CARD}/mem_info_gtt_total"
MI210_NODE = "kfd-topology-mi210-node2-properties.txt"
#: A real /proc/meminfo (this project's CI machine type: 23.5 GiB of RAM).
MEMINFO = real("procfs/meminfo-ci-machine-debian12-container-24g.txt")  # 24684092 kB
PLUGIN_ERRORS = ("Traceback", "INTERNALERROR")

SINGLE_TESTS = """
import pytest

@pytest.mark.requires_gfx90a
def test_gfx90a():
    pass

@pytest.mark.requires_vram_gb(1)
def test_vram():
    pass

@pytest.mark.requires_gtt_gb(1)
def test_gtt():
    pass

def test_plain():
    pass
"""

TOPOLOGY_TESTS = """
import pytest

@pytest.mark.requires_gpus(8)
def test_eight_gpus():
    pass

@pytest.mark.requires_gfx90a
def test_gfx90a():
    pass

@pytest.mark.requires_gtt_gb(1)
def test_gtt():
    pass

def test_plain():
    pass
"""


def single_gpu(b: RootBuilder) -> RootBuilder:
    """One MI210 (real KFD node), a CPU node, its DRM card (real 4 GiB files), real meminfo."""
    b.node(0, "kfd-topology-vega10-2018-node0-cpu-properties.txt")
    b.node(1, MI210_NODE)
    b.card(
        "card0",
        "0000:63:00.0",  # location_id 25344 of the MI210 node
        mem_info_vram_total="rx570-polaris-amdgpu21.10-card1-mem_info_vram_total.txt",
        mem_info_gtt_total="rx570-polaris-amdgpu21.10-card1-mem_info_gtt_total.txt",
    )
    b.write("proc/meminfo", MEMINFO)
    return b.kfd("rw")


def topology(b: RootBuilder) -> RootBuilder:
    """The real 8x MI210 capture (no DRM, so GTT is TTM's default: half of RAM)."""
    b.topology("topo-mi210-xgmi-pcie")
    b.write("proc/meminfo", MEMINFO)
    return b.kfd("rw")


BASES: dict[str, tuple[Callable[[RootBuilder], RootBuilder], str]] = {
    "single": (single_gpu, SINGLE_TESTS),
    "topology": (topology, TOPOLOGY_TESTS),
}


# --------------------------------------------------------------------------- helpers


def header(result: pytest.RunResult) -> list[str]:
    return [line for line in result.stdout.lines if line.startswith("therock:")]


def doctor(root: Path, *args: str) -> tuple[int, str]:
    """``pytest-therock doctor --root ROOT`` in this process: exit status and output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli_main(["doctor", "--root", str(root), "--timeout", "1", *args])
    return code, out.getvalue() + err.getvalue()


def replace_with(path: Path, kind: str, data: bytes = b"") -> None:
    """Put a directory, a FIFO, a self-loop symlink or ``data`` where ``path`` was."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "dir":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "loop":
        path.symlink_to(path.name)
    else:
        path.write_bytes(data)


def cut(text: str, at: str, keep: int) -> str:
    """``text`` up to ``keep`` characters into the first ``at``: a file written half-way."""
    return text[: text.index(at) + keep]


@contextlib.contextmanager
def fifo_rescue(fifos: list[Path], after: float) -> Iterator[None]:
    """After ``after`` seconds, keep opening ``fifos`` for writing, so a reader blocked in
    open() gets EOF instead of hanging the test run forever."""
    stop = threading.Event()

    def rescue() -> None:
        if stop.wait(after):
            return
        while not stop.wait(0.02):
            for fifo in fifos:
                with contextlib.suppress(OSError):  # ENXIO: nobody is reading
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    thread = threading.Thread(target=rescue, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


# --------------------------------------------------------------------------- the faults


@dataclass(frozen=True)
class Fault:
    base: str  # a key of BASES
    rel: str  # the file broken
    kind: str  # "dir", "fifo", "loop", "bytes", "missing"
    data: bytes = b""
    #: the one header line that says what is wrong (fnmatch, after "therock: ")
    says: str = ""
    #: test name -> skip reason (fnmatch); None: not checked (the right outcome is open)
    skips: dict[str, str] | None = field(default_factory=dict)
    usable: bool | None = True  # doctor exits 0 (False: 1; None: not checked)
    never: tuple[str, ...] = ()  # text that must not reach the output
    #: the GPU is there but this process cannot use it: the hardware tests run, and
    #: fail with --therock-strict, which treats the GPU as absent (issue 12)
    unusable_gpu: bool = False

    def apply(self, root: Path) -> None:
        replace_with(root / self.rel, self.kind, self.data)


# A node that could not be read may be a GPU: the GPUs are unknown, never "no AMD GPU".
UNKNOWN_GPUS = "requires {}, found unknown GPUs (could not read *)"
# The reason names the file that was wrong (or the missing DRM card).
VRAM_UNKNOWN = (
    "requires 1 GiB VRAM; how much VRAM gfx90a can allocate is unknown (*mem_info_vram_total*)"
)
LOST_GPU = {
    "test_gfx90a": UNKNOWN_GPUS.format("gfx90a"),
    "test_vram": UNKNOWN_GPUS.format("1 GiB VRAM"),
    "test_gtt": UNKNOWN_GPUS.format("1 GiB GTT"),
}
GPUS_UNKNOWN = "GPUs: unknown (could not read "
UNREADABLE = "warning[source-unreadable]: "
MI210_TEXT = real(f"sysfs/{MI210_NODE}")
TOPOLOGY_NODE2 = (REALDATA / "kfd-topology/topo-mi210-xgmi-pcie" / KFD / "2/properties").read_text()

FAULTS: dict[str, Fault] = {
    "vram-total-is-a-directory": Fault(
        "single",
        VRAM,
        "dir",
        says=f"{UNREADABLE}{VRAM}: is a directory, expected a file",
        skips={"test_vram": VRAM_UNKNOWN},
    ),
    "vram-total-binary-garbage": Fault(
        "single",
        VRAM,
        "bytes",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\xfd",
        says=f"{UNREADABLE}{VRAM}: not UTF-8 text",
        skips={"test_vram": VRAM_UNKNOWN},
    ),
    "vram-total-empty": Fault(
        "single",
        VRAM,
        "bytes",
        says=f"{UNREADABLE}{VRAM}: expected a number, found 'empty'",
        skips={"test_vram": VRAM_UNKNOWN},
    ),
    "vram-total-symlink-loop": Fault(
        "single",
        VRAM,
        "loop",
        says=f"{UNREADABLE}{VRAM}: symlink loop",
        skips={"test_vram": VRAM_UNKNOWN},
    ),
    "vram-total-fifo": Fault(
        "single", VRAM, "fifo", says=f"{UNREADABLE}{VRAM}: *", skips={"test_vram": VRAM_UNKNOWN}
    ),
    "gtt-total-1e40": Fault(
        "single",
        GTT,
        "bytes",
        f"{10**40}\n".encode(),
        says=f"{UNREADABLE}{GTT}: *",
        never=("9313225746154785439172786126848",),
    ),
    "gtt-total-5000-digits": Fault(
        "single",
        GTT,
        "bytes",
        b"9" * 5000 + b"\n",
        says=f"{UNREADABLE}{GTT}: *",
        never=("set_int_max_str_digits", "Exceeds the limit"),
    ),
    "node-half-written": Fault(
        "single",
        NODE,
        "bytes",
        cut(MI210_TEXT, "simd_count", 0).encode(),
        says=f"{GPUS_UNKNOWN}{NODE}: incomplete (no simd_count): node half-written?)",
        skips=LOST_GPU,
        usable=False,
    ),
    "node-cut-mid-number": Fault(
        "single",
        NODE,
        "bytes",
        cut(MI210_TEXT, "vendor_id 4098", len("vendor_id 40")).encode(),
        says=f"{UNREADABLE}{NODE}: *",
        skips=None,
        usable=None,
    ),
    "node-binary-garbage": Fault(
        "single",
        NODE,
        "bytes",
        MI210_TEXT.encode()[:200] + b"\xc3\x28\xa0\xa1\xff",
        says=f"{GPUS_UNKNOWN}{NODE}: not UTF-8 text)",
        skips=LOST_GPU,
        usable=False,
    ),
    "node-is-a-directory": Fault(
        "single",
        NODE,
        "dir",
        says=f"{GPUS_UNKNOWN}{NODE}: is a directory, expected a file)",
        skips=LOST_GPU,
        usable=False,
    ),
    "node-fifo": Fault(
        "single", NODE, "fifo", says=f"{GPUS_UNKNOWN}{NODE}: *)", skips=LOST_GPU, usable=False
    ),
    "drm-device-symlink-loop": Fault(
        "single",
        CARD,
        "loop",
        says=f"{UNREADABLE}{CARD}*: symlink loop",
        skips={"test_vram": VRAM_UNKNOWN},
    ),
    "topology-node-half-written": Fault(
        "topology",
        f"{KFD}/2/properties",
        "bytes",
        cut(TOPOLOGY_NODE2, "simd_count", 0).encode(),
        says=f"GPUs: 7 found, 1 unknown (could not read {KFD}/2/properties: incomplete "
        "(no simd_count): node half-written?)",
        skips={
            "test_eight_gpus": "requires 8 AMD GPUs, found 7 (gfx90a x7, 1 more unknown "
            f"(could not read {KFD}/2/properties: incomplete (no simd_count): node "
            "half-written?))"
        },
    ),
    "meminfo-missing": Fault(
        "topology",
        "proc/meminfo",
        "missing",
        says=f"{UNREADABLE}proc/meminfo: missing",
        skips={
            "test_gtt": "requires 1 GiB GTT; how much GTT gfx90a can allocate is unknown "
            "(no DRM card found for this GPU, so no mem_info_gtt_total)"
        },
    ),
    "meminfo-fifo": Fault(
        "topology",
        "proc/meminfo",
        "fifo",
        says=f"{UNREADABLE}proc/meminfo: *",
        skips={
            "test_gtt": "requires 1 GiB GTT; how much GTT gfx90a can allocate is unknown "
            "(no DRM card found for this GPU, so no mem_info_gtt_total)"
        },
    ),
    "cmdline-binary-garbage": Fault(
        "single",
        "proc/cmdline",
        "bytes",
        b"BOOT_IMAGE=/vmlinuz \xff\xfe ttm.pages_limit=\x80\x81\n",
        says=f"{UNREADABLE}proc/cmdline: not UTF-8 text",
    ),
    "pages-limit-is-a-directory": Fault(
        "single",
        "sys/module/ttm/parameters/pages_limit",
        "dir",
        says=f"{UNREADABLE}sys/module/ttm/parameters/pages_limit: is a directory, expected a file",
    ),
    "kfd-inaccessible": Fault(
        "single",
        ".therock/kfd-access",
        "bytes",
        b"none\n",
        says="error[kfd-denied]: /dev/kfd is not readable and writable by this user",
        usable=False,
        unusable_gpu=True,
    ),
}

BUGS: dict[str, str] = {}  # fault name -> known bug (strict xfail); none open


def fault_params() -> list[object]:
    params = []
    for name, fault in FAULTS.items():
        marks = [pytest.mark.xfail(strict=True, reason=BUGS[name])] if name in BUGS else []
        params.append(pytest.param(name, fault, id=name, marks=marks))
    return params


def build(root: RootBuilder, fault: Fault | None, base: str) -> Path:
    BASES[base][0](root)
    if fault is not None:
        if fault.kind == "missing":
            (root.path / fault.rel).unlink()
        else:
            fault.apply(root.path)
    return root.path


def fifos_in(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if stat.S_ISFIFO(p.lstat().st_mode)]


@pytest.mark.parametrize("base", sorted(BASES))
def test_healthy_roots_run_every_marked_test(
    pytester: pytest.Pytester, root: RootBuilder, base: str
) -> None:
    """The control: without the fault every marker is met and nothing is unreadable."""
    path = build(root, None, base)
    pytester.makepyfile(BASES[base][1])
    result = run(pytester, f"--therock-root={path}", "--therock-strict")
    result.assert_outcomes(passed=4)
    assert not [line for line in header(result) if "source-unreadable" in line]
    code, output = doctor(path)
    assert code == 0, output


@pytest.mark.parametrize(("name", "fault"), fault_params())
def test_fault(pytester: pytest.Pytester, root: RootBuilder, name: str, fault: Fault) -> None:
    path = build(root, fault, fault.base)
    fifos = fifos_in(path)
    if fifos:  # fail fast (and never hang) where a read would block
        with fifo_rescue(fifos, after=1.0):
            start = time.monotonic()
            detect(Root(path), {})
            elapsed = time.monotonic() - start
        assert elapsed < 0.8, f"detect() blocked on a FIFO for {elapsed:.1f} s"
    pytester.makepyfile(BASES[fault.base][1])
    with fifo_rescue(fifos, after=5.0):
        result = run(pytester, f"--therock-root={path}", "-rs")
        strict = run(pytester, f"--therock-root={path}", "--therock-strict")
        code, said = doctor(path)
    output = "\n".join([result.stdout.str(), result.stderr.str(), strict.stdout.str(), said])
    for text in (*PLUGIN_ERRORS, *fault.never):
        assert text not in output

    # The header says what is wrong, in one line.
    lines = [line.removeprefix("therock: ") for line in header(result)]
    matching = [line for line in lines if _fnmatch(line, fault.says)]
    assert len(matching) == 1, (fault.says, lines)
    assert sum(fault.rel.split("/")[-1] in line for line in lines if "[" in line) <= 1, lines

    # The session completes; what the fault hides is skipped, saying why.
    tests = 4
    if fault.unusable_gpu:
        result.assert_outcomes(passed=tests)
        strict.assert_outcomes(passed=1, errors=tests - 1)
        strict.stdout.fnmatch_lines(
            ["*requires_gfx90a: found gfx90a, but it cannot be used: *[[]--therock-strict[]]*"]
        )
    elif fault.skips is not None:
        skipped = len(fault.skips)
        result.assert_outcomes(passed=tests - skipped, skipped=skipped)
        assert result.ret == pytest.ExitCode.OK
        for reason in fault.skips.values():
            result.stdout.fnmatch_lines([f"SKIPPED [[]1[]] *.py:*: {reason}"])
        # ... and fails with --therock-strict.
        strict.assert_outcomes(passed=tests - skipped, errors=skipped)
        expected = pytest.ExitCode.TESTS_FAILED if skipped else pytest.ExitCode.OK
        assert strict.ret == expected
        for reason in fault.skips.values():
            strict.stdout.fnmatch_lines([f"*{reason} [[]--therock-strict[]]*"])
    else:
        assert result.ret == pytest.ExitCode.OK
        assert strict.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)

    # The doctor says the same, and whether the GPU is usable.
    if fault.usable is not None:
        assert code == (0 if fault.usable else 1), said
    assert any(line.startswith(matching[0]) for line in said.splitlines()), said


def _fnmatch(line: str, pattern: str) -> bool:
    """``*`` is the only wildcard: diagnostics hold brackets (``warning[code]``)."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), line) is not None


def test_doctor_as_a_command_reports_a_fault_without_traceback(root: RootBuilder) -> None:
    path = build(root, FAULTS["vram-total-binary-garbage"], "single")
    done = subprocess.run(
        [sys.executable, "-m", "pytest_therock.cli", "doctor", "--root", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"warning[source-unreadable]: {VRAM}: not UTF-8 text." in done.stdout.splitlines()
    assert "Traceback" not in done.stdout + done.stderr
    json_done = subprocess.run(
        [sys.executable, "-m", "pytest_therock.cli", "doctor", "--root", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json_done.returncode == 0 and f"{VRAM}: not UTF-8 text" in json_done.stdout


def test_the_kfd_record_makes_kfd_inaccessible_to_root(root: RootBuilder) -> None:
    """Tests run as root, for whom chmod blocks nothing: the snapshot record decides."""
    path = build(root, FAULTS["kfd-inaccessible"], "single")
    env = detect(Root(path), {})
    assert env.kfd.present and not env.kfd.readable and not env.kfd.writable
    assert not env.usable


def test_doctor_ends_a_question_without_a_stray_full_stop(root: RootBuilder) -> None:
    code, said = doctor(build(root, FAULTS["node-half-written"], "single"))
    assert code == 1 and "node half-written?" in said
    assert "?." not in said, said


# --------------------------------------------------------------------------- tools

LIVE = Root(Path("/"))
ROCMINFO_SAMPLE = REALDATA / "rocminfo/gfx90a-4x-mi210-2x-epyc7763-rocm5.7.1.txt"
ROCK_NOT_LOADED = REALDATA / "rocminfo/error-rock-not-loaded-azure-nv4as.txt"


@pytest.fixture
def tool(tmp_path: Path) -> Callable[..., str]:
    """A shell script at tmp_path/NAME: returns its path."""

    def make(name: str, body: str, executable: bool = True) -> str:
        path = tmp_path / name
        path.write_text("#!/bin/sh\n" + body)
        path.chmod(0o755 if executable else 0o644)
        return str(path)

    return make


def wait_gone(pid: int, within: float = 2.0) -> bool:
    deadline = time.monotonic() + within
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def timed(func: Callable[[], object]) -> tuple[object, float]:
    start = time.monotonic()
    value = func()
    return value, time.monotonic() - start


def test_a_hanging_tool_and_its_hanging_child_are_killed_at_the_timeout(
    tool: Callable[..., str], tmp_path: Path
) -> None:
    path = tool(
        "hang",
        f"sleep 60 &\necho $! > {tmp_path}/child.pid\necho $$ > {tmp_path}/tool.pid\nsleep 60\n",
    )
    result, elapsed = timed(lambda: run_tool([path], 1.0))
    assert elapsed < 3.0
    assert result.returncode is None and not result.ok  # type: ignore[attr-defined]
    assert result.error == f"{path} did not finish within 1 s"  # type: ignore[attr-defined]
    for pid_file in ("child.pid", "tool.pid"):
        pid = int((tmp_path / pid_file).read_text())
        assert wait_gone(pid), f"{pid_file}: {pid} still runs"


def test_a_hanging_rocminfo_becomes_a_timeout_status(
    tool: Callable[..., str], tmp_path: Path
) -> None:
    path = tool("rocminfo", f"sleep 60 &\necho $! > {tmp_path}/child.pid\nsleep 60\n")
    (report, status), elapsed = timed(lambda: run_rocminfo(LIVE, {}, 1.0, explicit=path))  # type: ignore[misc]
    assert elapsed < 3.0
    assert report is None
    assert (status.ok, status.code) == (False, "timeout")
    assert status.message == f"{path} did not finish within 1 s"
    assert wait_gone(int((tmp_path / "child.pid").read_text()))


def test_a_tool_printing_100_mb_is_cut_and_returns(tool: Callable[..., str]) -> None:
    path = tool(
        "flood",
        "yes xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | head -c 100000000\n",
    )
    result, elapsed = timed(lambda: run_tool([path], 30.0))
    assert elapsed < 30.0  # streamed and dropped past the cap, not held: a few seconds at most
    assert result.ok, result.error  # type: ignore[attr-defined]
    assert 0 < len(result.output) <= MAX_TOOL_OUTPUT  # type: ignore[attr-defined]
    (report, status), _ = timed(lambda: run_rocminfo(LIVE, {}, 2.0, explicit=path))  # type: ignore[misc]
    assert report is None and not status.ok and status.code == "unrecognised"
    assert len(status.message) < 1000 and "\n" not in status.message


def test_a_tool_killed_by_a_signal_says_so(tool: Callable[..., str]) -> None:
    path = tool("crash", "echo partial\nkill -SEGV $$\n")
    result = run_tool([path], 2.0)
    assert result.returncode == -signal.SIGSEGV
    assert result.error == f"{path} was killed by SIGSEGV"
    assert result.output == "partial\n"


def test_a_rocminfo_crashing_silently_says_it_was_killed(tool: Callable[..., str]) -> None:
    path = tool("rocminfo", "kill -SEGV $$\n")
    report, status = run_rocminfo(LIVE, {}, 2.0, explicit=path)
    assert report is None and not status.ok
    assert "SIGSEGV" in status.message


def test_a_rocminfo_crashing_after_its_header_says_it_crashed(tool: Callable[..., str]) -> None:
    head = "".join(ROCMINFO_SAMPLE.read_text().splitlines(keepends=True)[:12])
    path = tool("rocminfo", f"cat <<'EOF'\n{head}EOF\nkill -SEGV $$\n")
    report, status = run_rocminfo(LIVE, {}, 2.0, explicit=path)
    assert report is None and not status.ok
    assert "SIGSEGV" in status.message, status


def test_a_tool_that_is_not_executable_is_not_run(tool: Callable[..., str]) -> None:
    path = tool("rocminfo", "echo never\n", executable=False)
    result = run_tool([path], 2.0)
    assert result.returncode is None and result.output == ""
    assert result.error == f"cannot run {path}: permission denied"
    report, status = run_rocminfo(LIVE, {}, 2.0, explicit=path)
    assert report is None and (status.ok, status.code) == (False, "not-run")
    assert status.message == f"cannot run {path}: permission denied"


def test_a_tool_that_does_not_exist_is_not_run(tmp_path: Path) -> None:
    path = str(tmp_path / "nowhere" / "rocminfo")
    report, status = run_rocminfo(LIVE, {}, 2.0, explicit=path)
    assert report is None and (status.ok, status.code) == (False, "not-run")
    assert status.message == f"cannot run {path}: no such file or directory"


def test_a_tool_printing_non_utf8_bytes_is_decoded(tool: Callable[..., str]) -> None:
    path = tool("rocminfo", r"printf '\377\376 ROCk \200\201 \n'" + "\n")
    result = run_tool([path], 2.0)
    assert result.ok and result.output == "\ufffd\ufffd ROCk \ufffd\ufffd \n"
    report, status = run_rocminfo(LIVE, {}, 2.0, explicit=path)
    assert report is None and (status.ok, status.code) == (False, "unrecognised")


def test_a_rocminfo_printing_a_real_sample_parses(tool: Callable[..., str]) -> None:
    path = tool("rocminfo", f"cat '{ROCMINFO_SAMPLE}'\n")
    report, status = run_rocminfo(LIVE, {}, 2.0, explicit=path)
    assert (status.ok, status.code) == (True, "ok")
    assert report is not None
    assert [a.gfx_target for a in report.gpus] == ["gfx90a"] * 4


def test_a_rocminfo_saying_rock_is_not_loaded_explains_it(tool: Callable[..., str]) -> None:
    path = tool("rocminfo", f"cat '{ROCK_NOT_LOADED}'\nexit 1\n")
    report, status = run_rocminfo(LIVE, {}, 2.0, explicit=path)
    assert report is None and (status.ok, status.code) == (False, "rock-not-loaded")
    assert "sudo modprobe amdgpu" in status.message
    assert ROCK_NOT_LOADED.read_text().strip() in status.message


def test_the_rocminfo_fixture_skips_promptly_when_rocminfo_hangs(
    pytester: pytest.Pytester, tool: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PYTEST_THEROCK_ROOT", raising=False)
    path = tool("rocminfo", "sleep 60 &\nsleep 60\n")
    pytester.makepyfile("def test_r(rocminfo):\n    pass\n\ndef test_plain():\n    pass\n")
    result, elapsed = timed(
        lambda: run(pytester, f"--therock-rocminfo={path}", "--therock-timeout=1", "-rs")
    )
    assert elapsed < 10
    result.assert_outcomes(passed=1, skipped=1)  # type: ignore[attr-defined]
    result.stdout.fnmatch_lines([f"SKIPPED *{path} did not finish within 1 s"])  # type: ignore[attr-defined]
    assert "Traceback" not in result.stdout.str()  # type: ignore[attr-defined]


def test_doctor_on_a_live_root_with_a_hanging_rocminfo_returns_promptly(
    tmp_path: Path,
) -> None:
    bin_dir = tmp_path / "rocm" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "rocminfo").write_text(
        f"#!/bin/sh\nsleep 60 &\necho $! > {tmp_path}/child.pid\nsleep 60\n"
    )
    (bin_dir / "rocminfo").chmod(0o755)
    env = {**os.environ, "ROCM_PATH": str(tmp_path / "rocm")}
    env.pop("PYTEST_THEROCK_ROOT", None)
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest_therock.cli", "doctor", "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert time.monotonic() - start < 15
    assert done.returncode in (0, 1), done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert f"{bin_dir / 'rocminfo'} did not finish within 1 s" in done.stdout
    assert wait_gone(int((tmp_path / "child.pid").read_text()))
