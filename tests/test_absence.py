"""No AMD GPU, or not known: every output tells the two apart, and says each fact once.

A machine without an AMD GPU (the no-gpu example, a snapshot of this machine's real
rocminfo and rocm-smi failures, and this machine itself) gets no advice to load a
driver in any mode; a root whose ``sys`` or ``dev`` cannot be read shows the GPUs or
/dev/kfd as unknown, naming what could not be read, never as "none" or "missing".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, REALDATA, RootBuilder, real, run

from pytest_therock.absence import KFD_TOPOLOGY

TESTS = """
import pytest

@pytest.mark.requires_gfx1151
def test_needs_a_gpu():
    pass

def test_cpu():
    pass
"""
# Driver advice for a machine that has an AMD GPU, which a machine without one must not get.
ADVICE = ("modprobe", "amdgpu is not loaded", "amdgpu not loaded", "Load it with")
ROCMINFO_NO_GPU = "rocminfo/error-debian-rocminfo-5.2.3-2-no-gpu-container.txt"
ROCMSMI_NO_GPU = (
    "rocmsmi/error-debian-rocm-smi-5.2.3-2-showmeminfo-vram-gtt-json-no-gpu-container.txt"
)
MI210_NODE = "kfd-topology-mi210-node2-properties.txt"


def doctor(*args: str) -> subprocess.CompletedProcess[str]:
    """``pytest-therock doctor`` as a user runs it: its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_THEROCK_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest_therock.cli", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _recorded_no_gpu(path: Path) -> Path:
    """A snapshot of a machine without an AMD GPU: this machine's real rocminfo and
    rocm-smi outputs, no KFD topology, no /dev/kfd."""
    record = path / ".therock"
    record.mkdir(parents=True)
    (record / "rocminfo.txt").write_bytes((REALDATA / ROCMINFO_NO_GPU).read_bytes())
    (record / "rocminfo.exit").write_text("1\n")
    (record / "rocm-smi-showmeminfo.txt").write_bytes((REALDATA / ROCMSMI_NO_GPU).read_bytes())
    (record / "kfd-access").write_text("missing\n")
    return path


def _no_gpu_root(kind: str, tmp_path: Path) -> str:
    if kind == "example":
        return str(EXAMPLES / "no-gpu")
    if kind == "recorded":
        return str(_recorded_no_gpu(tmp_path / "recorded"))
    if os.path.exists("/dev/kfd") or os.path.exists("/sys/class/kfd"):
        pytest.skip("this machine has amdgpu: the live no-GPU case needs a machine without")
    return "/"


def _advice(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(a in line for a in ADVICE)]


@pytest.mark.parametrize("kind", ["example", "recorded", "live"])
def test_a_machine_without_an_amd_gpu_gets_no_driver_advice_in_any_mode(
    pytester: pytest.Pytester, tmp_path: Path, kind: str
) -> None:
    root = _no_gpu_root(kind, tmp_path)
    pytester.makepyfile(TESTS)
    for mode in ("-q", "", "-v", "-rs"):
        result = run(pytester, f"--therock-root={root}", *([mode] if mode else []))
        result.assert_outcomes(passed=1, skipped=1)
        said = result.stdout.str()
        assert not _advice(said), (mode, _advice(said))
        assert "error[" not in said and "warning[" not in said, (mode, said)
    verbose = run(pytester, f"--therock-root={root}", "-v", "-rs")
    verbose.stdout.fnmatch_lines(
        [
            "therock: GPUs: none found",
            "therock: /dev/kfd: missing",
            "therock: info[kfd-missing]: no AMD GPU found: /dev/kfd is missing and the KFD "
            "topology lists no GPU.",
            "*requires gfx1151, found no AMD GPU (no /dev/kfd)*",
        ]
    )
    if kind != "live":  # a snapshot's rocminfo is replayed; the live one is not run by pytest
        verbose.stdout.fnmatch_lines(
            [
                "therock: info[rocminfo-failed]: rocminfo found no GPU agents (it said 'ROCk "
                "module is NOT loaded, possibly no GPU devices')."
            ]
        )
    # Asked for a GPU: the same facts, as an error, still without driver advice.
    strict = run(pytester, f"--therock-root={root}", "--therock-strict", "-v")
    strict.assert_outcomes(passed=1, errors=1)
    strict.stdout.fnmatch_lines(["therock: error[[]kfd-missing]: no AMD GPU found: *"])
    assert not _advice(strict.stdout.str()), _advice(strict.stdout.str())
    for args in ((), ("-v",)):
        done = doctor("--root", root, *args)
        assert done.returncode == 1 and done.stderr == "", done.stderr
        assert not _advice(done.stdout), _advice(done.stdout)
        assert "error[kfd-missing]: no AMD GPU found: " in done.stdout, done.stdout
        failed = [line for line in done.stdout.splitlines() if "[rocminfo-failed]" in line]
        assert all(
            line.startswith("info[rocminfo-failed]: rocminfo found no GPU") for line in failed
        )
    # --json says what the text says: the tools' messages carry no driver advice either
    data = json.loads(doctor("--root", root, "--json").stdout)
    assert data["no_amd_gpu"] is True
    assert not _advice(json.dumps(data["rocminfo"])) and not _advice(json.dumps(data["smi"]))
    if data["rocminfo"] is not None:
        assert data["rocminfo"]["message"].startswith("rocminfo found no GPU agents")
    if kind == "recorded":
        assert data["smi"]["status"]["message"] == (
            "rocm-smi found no AMD GPU (it said 'ERROR:root:Driver not initialized "
            "(amdgpu not found in modules)')"
        )
    smi = [line for line in done.stdout.splitlines() if line.startswith("rocm-smi: ")]
    if kind == "recorded":  # doctor -v shows the tool's line: what it found, no advice
        assert smi == [
            "rocm-smi: rocm-smi found no AMD GPU (it said 'ERROR:root:Driver not initialized "
            "(amdgpu not found in modules)')"
        ], done.stdout


def test_rocminfo_not_installed_on_a_machine_without_an_amd_gpu_is_information(
    tmp_path: Path,
) -> None:
    """Without an AMD GPU, rocminfo missing is no fault: information, no advice."""
    path = tmp_path / "bin"
    path.mkdir()
    env = {**os.environ, "PATH": str(path), "ROCM_PATH": str(tmp_path / "none")}
    env = {k: v for k, v in env.items() if not k.startswith("PYTEST_THEROCK_")}
    if os.path.exists("/dev/kfd") or os.path.exists("/sys/class/kfd"):
        pytest.skip("this machine has amdgpu")
    done = subprocess.run(
        [sys.executable, "-m", "pytest_therock.cli", "doctor", "--timeout", "10"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 1, done.stderr
    unavailable = [ln for ln in done.stdout.splitlines() if "[tool-unavailable]" in ln]
    assert unavailable and all(ln.startswith("info[tool-unavailable]: ") for ln in unavailable)
    assert "not needed on a machine without an AMD GPU" in unavailable[0]
    assert not _advice(done.stdout), done.stdout


def test_expect_on_a_machine_without_an_amd_gpu_says_where_to_run(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    root = _recorded_no_gpu(tmp_path / "recorded")
    pytester.makepyfile(TESTS)
    result = run(pytester, f"--therock-root={root}", "--therock-expect=gfx1151")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["therock: error[[]kfd-missing]: no AMD GPU found: *"])
    said = result.stdout.str() + result.stderr.str()
    assert "fix: run on a machine with a gfx1151 GPU" in said
    assert not _advice(said), _advice(said)
    # the runtime proof replays the recorded rocminfo: what it found, no advice either
    runtime = run(pytester, f"--therock-root={root}", "--therock-expect-runtime")
    assert runtime.ret == 2
    said = runtime.stdout.str() + runtime.stderr.str()
    assert (
        "runtime proof (--therock-expect-runtime): rocminfo found no GPU agents (it said "
        "'ROCk module is NOT loaded, possibly no GPU devices')"
    ) in said
    assert "tests that need one will skip" not in said  # asked for a GPU: the whole header
    assert not _advice(said), _advice(said)


# --------------------------------------------------------------------------- unknown


def _blocked(root: RootBuilder, where: str) -> Path:
    """A machine with a real MI210 node and /dev/kfd, whose ``where`` (``sys``, ``dev``)
    is a file where a directory should be: unreadable whatever the user (root too)."""
    root.node(1, MI210_NODE)
    root.write("proc/meminfo", real("procfs/meminfo-ci-machine-debian12-container-24g.txt"))
    root.write("dev/kfd", "")  # no .therock/kfd-access record: dev/kfd itself is read
    shutil.rmtree(root.path / where)
    (root.path / where).write_text("")
    return root.path


def test_an_unreadable_kfd_topology_is_unknown_gpus_said_once(
    pytester: pytest.Pytester, root: RootBuilder
) -> None:
    path = _blocked(root, "sys")
    pytester.makepyfile(TESTS)
    for mode in ((), ("-v",), ("--therock-strict",)):
        result = run(pytester, f"--therock-root={path}", "-rs", *mode)
        lines = [ln for ln in result.stdout.lines if ln.startswith("therock:")][1:]  # not root:
        assert "therock: GPUs: unknown (could not read sys: not a directory)" in lines, lines
        assert "therock: GPUs: none found" not in lines
        # one line names what could not be read; none says there is no GPU in the topology
        assert sum("sys" in ln for ln in lines) == 1, lines
        assert not [ln for ln in lines if "lists no GPU" in ln or "not loaded" in ln], lines
        assert not _advice(result.stdout.str())
    result = run(pytester, f"--therock-root={path}", "-rs")
    result.stdout.fnmatch_lines(
        ["*requires gfx1151, found unknown GPUs (could not read sys: not a directory)"]
    )
    done = doctor("--root", str(path))
    assert done.returncode == 1
    assert "GPUs: unknown (could not read sys: not a directory)" in done.stdout.splitlines()
    assert sum("sys" in ln for ln in done.stdout.splitlines()[1:]) == 1, done.stdout
    data = json.loads(doctor("--root", str(path), "--json").stdout)
    assert data["gpus"] == [] and data["unknown"]["gpus"] == "could not read sys: not a directory"
    assert data["problems"] == [{"source": "sys", "reason": "not a directory"}]  # once
    assert data["usable"] is False and data["no_amd_gpu"] is False
    # diff and fleet, which compare machines, say it as the header does
    diff = subprocess.run(
        [sys.executable, "-m", "pytest_therock.cli", "diff", str(path), str(EXAMPLES / "no-gpu")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "  GPUs: unknown (could not read sys: not a directory)  vs  none" in diff.stdout
    fleet = subprocess.run(
        [sys.executable, "-m", "pytest_therock.cli", "fleet", "--csv", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fleet.stdout.splitlines()[1].split(",")[1] == "unknown", fleet.stdout


def test_an_unreadable_dev_is_an_unknown_dev_kfd_never_missing(
    pytester: pytest.Pytester, root: RootBuilder
) -> None:
    path = _blocked(root, "dev")
    pytester.makepyfile(TESTS)
    result = run(pytester, f"--therock-root={path}", "-v")
    lines = [ln for ln in result.stdout.lines if ln.startswith("therock:")][1:]  # not root:
    assert "therock: /dev/kfd: unknown (could not read dev: not a directory)" in lines, lines
    assert not [ln for ln in lines if "missing" in ln], lines  # no kfd-missing either
    assert sum("dev:" in ln for ln in lines) == 1, lines
    done = doctor("--root", str(path))
    assert "/dev/kfd: unknown (could not read dev: not a directory)" in done.stdout.splitlines()
    assert "missing" not in done.stdout
    data = json.loads(doctor("--root", str(path), "--json").stdout)
    assert data["kfd"]["known"] is False and data["kfd"]["present"] is False
    assert data["unknown"] == {
        "gpus": None,
        "kfd": "could not read dev: not a directory",
        "rocm": None,
    }
    diff = subprocess.run(
        [sys.executable, "-m", "pytest_therock.cli", "diff", str(path), str(EXAMPLES / "no-gpu")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "  /dev/kfd: unknown (could not read dev: not a directory)  vs  missing" in diff.stdout
    assert "kfd-missing" not in {d["code"] for d in data["diagnostics"]}


def test_an_unreadable_record_directory_leaves_gpus_kfd_and_rocm_unknown(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """The Strix Halo snapshot (no KFD topology: its GPU is in its recorded rocminfo)
    with ``.therock`` a file: its GPU, /dev/kfd's access and ROCm are unknown, said
    in one line naming ``.therock`` (ROCm's line points there), never "none found"."""
    path = tmp_path / "strix-halo"
    shutil.copytree(EXAMPLES / "strix-halo", path)
    shutil.rmtree(path / ".therock")
    (path / ".therock").write_text("")
    pytester.makepyfile(TESTS)
    result = run(pytester, f"--therock-root={path}", "-v", "-rs")
    lines = [ln for ln in result.stdout.lines if ln.startswith("therock:")][1:]  # not root:
    said = "could not read .therock: not a directory"
    assert f"therock: GPUs, /dev/kfd: unknown ({said})" in lines, lines
    assert sum(said in ln for ln in lines) == 1, lines
    assert "therock: versions: ROCm: unknown (could not read .therock, as above)" in lines
    assert not [ln for ln in lines if "none found" in ln or "missing" in ln], lines
    result.stdout.fnmatch_lines([f"*requires gfx1151, found unknown GPUs ({said})"])
    data = json.loads(doctor("--root", str(path), "--json").stdout)
    assert data["unknown"] == {"gpus": said, "kfd": said, "rocm": said}
    assert data["problems"] == [{"source": ".therock", "reason": "not a directory"}]


def test_an_unreadable_opt_is_an_unknown_rocm(pytester: pytest.Pytester, tmp_path: Path) -> None:
    path = tmp_path / "strix-halo"
    shutil.copytree(EXAMPLES / "strix-halo", path)
    (path / "opt").write_text("")  # where opt/rocm/.info/version would be
    done = doctor("--root", str(path))
    lines = done.stdout.splitlines()
    assert "versions: ROCm: unknown (could not read opt: not a directory)" in lines, lines
    assert sum("opt" in ln for ln in lines[1:]) == 1, lines
    pytester.makepyfile(TESTS)
    quiet = run(pytester, f"--therock-root={path}")  # no versions line: the warning says it
    quiet.stdout.fnmatch_lines(["therock: warning[[]source-unreadable]: opt: not a directory"])


# ------------------------------------------------------------------ unreadable KFD nodes

NODE1 = "sys/class/kfd/kfd/topology/nodes/1"


def _break_node(path: Path, fault: str) -> str:
    """Break the krackan-apu copy at ``path`` the way ``fault`` says; returns what the
    GPUs line must say could not be read (``<path>: <reason>``)."""
    node = path / NODE1
    props = node / "properties"
    if fault == "random-bytes":
        props.write_bytes(os.urandom(200_000))
        return f"{NODE1}/properties: *"  # not UTF-8, or larger than the cap
    if fault == "2-gib":
        os.truncate(props, 2 << 30)  # sparse: no disk used
        return f"{NODE1}/properties: larger than 1048576 bytes"
    if fault == "out-of-range":
        text = props.read_text()
        line = next(ln for ln in text.splitlines() if ln.startswith("simd_count "))
        props.write_text(text.replace(line, "simd_count " + "9" * 29))
        return f"{NODE1}/properties: simd_count {'9' * 24}... is out of range (more than 64 bits)"
    if fault == "node-loop":
        shutil.rmtree(node)
        node.symlink_to("1")
        return f"{NODE1}: symlink loop"
    if fault == "node-outside":
        shutil.rmtree(node)
        node.symlink_to("/etc")
        return f"{NODE1}: a symlink that leads outside the root"
    if fault == "properties-outside":
        props.unlink()
        props.symlink_to("/etc/passwd")
        return f"{NODE1}/properties: a symlink that leads outside the root"
    if fault == "sys-outside":
        shutil.rmtree(path / "sys")
        (path / "sys").symlink_to("/sys")
        return "sys: a symlink that leads outside the root"
    nodes = os.fsencode(node.parent)
    name = b"\xff\xfe" if fault == "name-not-utf8" else b"1\xff"
    os.rename(os.fsencode(node), nodes + b"/" + name)
    shown = os.fsdecode(name).encode("unicode_escape").decode()  # as printed: \udcff
    return f"{NODE1[:-1]}{shown}: a name that is not UTF-8, not a KFD node (*)"


NODE_FAULTS = [
    "random-bytes",
    "2-gib",
    "out-of-range",
    "node-loop",
    "node-outside",
    "properties-outside",
    "sys-outside",
    "name-not-utf8",
    "node-name-not-utf8",
]


@pytest.mark.parametrize("fault", NODE_FAULTS)
def test_a_kfd_node_that_cannot_be_read_makes_the_gpus_unknown_never_none(
    pytester: pytest.Pytester, tmp_path: Path, fault: str
) -> None:
    """The krackan-apu snapshot (one gfx1152 node) with that node unreadable, malformed,
    or hidden: its GPU is unknown, said once with what could not be read, and the fix is
    to record the snapshot again, not to debug this machine's driver."""
    import fnmatch

    path = tmp_path / "krackan"
    shutil.copytree(EXAMPLES / "krackan-apu", path, symlinks=True)
    said = f"could not read {_break_node(path, fault)}"
    done = doctor("--root", str(path))
    assert done.returncode == 1 and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert fnmatch.filter(lines, f"GPUs: unknown ({said})"), lines
    assert "none found" not in lines[1] and "no AMD GPU in the KFD topology" not in done.stdout
    assert "run `rocminfo`" not in done.stdout and "no simd_count" not in done.stdout
    assert sum("could not read" in ln or "source-unreadable" in ln for ln in lines) == 1, lines
    assert "error[no-gpu]: which AMD GPUs there are is unknown. Fix: record the snapshot " in (
        done.stdout
    )
    data = json.loads(doctor("--root", str(path), "--json").stdout)
    assert fnmatch.fnmatch(data["unknown"]["gpus"], said), data["unknown"]
    assert data["problems"] and data["no_amd_gpu"] is False and data["usable"] is False
    pytester.makepyfile(TESTS)
    report = tmp_path / "junit.xml"
    run(pytester, f"--therock-root={path}", f"--junitxml={report}").assert_outcomes(
        passed=1, skipped=1
    )
    assert 'name="therock_gpus" value="unknown"' in report.read_text()  # not "none"
    result = run(pytester, f"--therock-root={path}", "--therock-expect=gfx1152")
    assert result.ret == 2
    out = result.stdout.str() + result.stderr.str()
    assert "found no AMD GPU" not in out and "GPUs: none found" not in out
    result.stdout.fnmatch_lines(
        [
            f"*expected a gfx1152 GPU (--therock-expect), found unknown GPUs ({said}); "
            "fix: record the snapshot again with `pytest-therock snapshot` on the machine*"
        ]
    )


def test_gpus_found_beside_a_node_that_cannot_be_read_are_counted_and_the_rest_unknown(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """The 8x MI210 example with one GPU node unreadable: 7 found, 1 unknown."""
    path = tmp_path / "mi210"
    shutil.copytree(EXAMPLES / "mi210-8x", path, symlinks=True)
    nodes = path / "sys/class/kfd/kfd/topology/nodes"
    gpu_nodes = [
        n for n in sorted(nodes.iterdir()) if "simd_count 0\n" not in (n / "properties").read_text()
    ]
    (gpu_nodes[-1] / "properties").write_bytes(b"\xff" * 64)
    rel = f"{KFD_TOPOLOGY}/{gpu_nodes[-1].name}/properties"
    done = doctor("--root", str(path))
    lines = done.stdout.splitlines()
    assert f"GPUs: 7 found, 1 unknown (could not read {rel}: not UTF-8 text)" in lines, lines
    assert sum(rel in ln for ln in lines) == 1, lines
    data = json.loads(doctor("--root", str(path), "--json").stdout)
    assert len(data["gpus"]) == 7
    assert data["unknown_nodes"] == [{"source": rel, "reason": "not UTF-8 text"}]


# ------------------------------------------------------------------ not a machine

NOT_A_MACHINE = "not a machine (it holds none of .therock/, sys/, proc/, dev/)"


def test_a_directory_that_is_no_machine_is_refused_not_read_as_one_without_a_gpu(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stray root setting on a GPU runner (an empty directory, the directory that
    holds the snapshots, any other directory) must not turn it into a machine without
    a GPU that skips every hardware test and goes green: one line, naming the setting."""
    empty = tmp_path / "empty"
    empty.mkdir()
    pytester.makepyfile(TESTS)
    for path in (empty, EXAMPLES):  # EXAMPLES: a directory of machines, not one
        done = doctor("--root", str(path))
        assert (done.returncode, done.stdout) == (2, "")
        assert done.stderr == f"pytest-therock: --root {path}: {NOT_A_MACHINE}\n"
        result = run(pytester, f"--therock-root={path}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines([f"*pytest-therock: --therock-root: {path} is {NOT_A_MACHINE}"])
        assert "passed" not in result.stdout.str()
    monkeypatch.setenv("PYTEST_THEROCK_ROOT", str(empty))
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*PYTEST_THEROCK_ROOT: {empty} is {NOT_A_MACHINE}"])
    monkeypatch.delenv("PYTEST_THEROCK_ROOT")
    pytester.makeini(f"[pytest]\ntherock_root = {EXAMPLES}\n")
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*ini therock_root: {EXAMPLES} is {NOT_A_MACHINE}"])


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_every_example_root_is_a_machine_and_the_header_names_it(
    pytester: pytest.Pytester, name: str
) -> None:
    """Each example root is read (the rule counts it a machine), and the header, even
    the one-line form of a machine without a GPU, names the root it read."""
    path = EXAMPLES / name
    pytester.makepyfile(TESTS)
    result = run(pytester, f"--therock-root={path}")
    assert result.ret in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), result.stderr.str()
    first = next(ln for ln in result.stdout.lines if ln.startswith("therock:"))
    assert str(path) in first, first
    assert doctor("--root", str(path)).returncode in (0, 1)


def test_a_path_that_is_no_directory_is_said_in_one_wording_by_doctor_diff_and_fleet(
    tmp_path: Path,
) -> None:
    """A FIFO named like an archive and a plain file: the same fact, the same words."""
    fifo = tmp_path / "f.tar.gz"
    os.mkfifo(fifo)
    plain = tmp_path / "plain"
    plain.write_text("")
    said = "not a directory or a .tar.gz snapshot"
    for path in (fifo, plain):
        for args in (
            ("doctor", "--root", str(path)),
            ("diff", str(path), str(EXAMPLES / "no-gpu")),
            ("fleet", str(path)),
        ):
            done = subprocess.run(
                [sys.executable, "-m", "pytest_therock.cli", *args],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 2, (args, done.stderr)
            lines = [ln for ln in done.stderr.splitlines() if str(path) in ln]
            assert lines and all(ln.endswith(f"{path}: {said}") for ln in lines), (args, lines)


def test_dev_kfd_missing_beside_an_unreadable_kfd_node_says_to_record_again(
    tmp_path: Path,
) -> None:
    """No /dev/kfd recorded and the one GPU node unreadable: which GPUs there are is
    unknown, and the fix is the snapshot's, not a driver's."""
    path = tmp_path / "krackan"
    shutil.copytree(EXAMPLES / "krackan-apu", path, symlinks=True)
    (path / ".therock/kfd-access").write_text("missing\n")
    (path / "dev/kfd").unlink()
    (path / NODE1 / "properties").write_bytes(b"\xff\xfe")
    done = doctor("--root", str(path))
    assert done.returncode == 1
    assert (
        "error[kfd-missing]: /dev/kfd is missing, and which GPUs there are is unknown. "
        "Fix: record the snapshot again with `pytest-therock snapshot` on the machine"
    ) in done.stdout.splitlines(), done.stdout
    assert not _advice(done.stdout) and "none found" not in done.stdout.splitlines()[1]
