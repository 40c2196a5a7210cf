"""The real ``rocminfo`` and ``rocm-smi`` binaries, run through the plugin.

Two kinds of tests:

- Recorded: the verbatim outputs of Debian 12's ``rocminfo`` / ``rocm-smi`` 5.2.3-2 on a
  machine without an AMD GPU (``realdata/*/error-debian-*``, see ``realdata/SOURCES.md``)
  are parsed and replayed. These run everywhere.
- Live: the binaries installed on this machine are run. Without them the tests are
  skipped, saying how to install them, except when ``CI`` is set: then a missing binary
  fails, so CI cannot go green by skipping. The no-GPU expectations are skipped on a
  machine that has amdgpu loaded; the rest hold on any machine.

Install the binaries on Debian/Ubuntu with ``sudo apt-get install rocminfo rocm-smi``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import REALDATA, real

from pytest_therock import tools
from pytest_therock.cli import main
from pytest_therock.detect import detect
from pytest_therock.diagnostics import run_checks
from pytest_therock.rocminfo import RocminfoError, parse_rocminfo
from pytest_therock.rocminfo_env import run_rocminfo
from pytest_therock.smi import SmiError, parse_rocmsmi_gpus, parse_rocmsmi_version
from pytest_therock.sysroot import RECORD_DIR, Root

INSTALL = "sudo apt-get install rocminfo rocm-smi"
TIMEOUT = 30.0

ROCMINFO_NO_GPU = "rocminfo/error-debian-rocminfo-5.2.3-2-no-gpu-container.txt"
ROCMINFO_SUPPORT_NO_GPU = "rocminfo/error-debian-rocminfo-5.2.3-2-support-no-gpu-container.txt"
ROCMSMI_NO_GPU = {
    (): "rocmsmi/error-debian-rocm-smi-5.2.3-2-no-gpu-container.txt",
    ("--showmeminfo", "vram", "gtt", "--json"): (
        "rocmsmi/error-debian-rocm-smi-5.2.3-2-showmeminfo-vram-gtt-json-no-gpu-container.txt"
    ),
    ("--showproductname", "--json"): (
        "rocmsmi/error-debian-rocm-smi-5.2.3-2-showproductname-json-no-gpu-container.txt"
    ),
}
ROCMSMI_VERSION = "rocmsmi/error-debian-rocm-smi-5.2.3-2-version-unrecognized-argument.txt"

ROCK_LINE = "ROCk module is NOT loaded, possibly no GPU devices"
DRIVER_LINE = "ERROR:root:Driver not initialized (amdgpu not found in modules)"
# What rocminfo says on a machine without amdgpu: the module is not loaded, or (the
# host has it but a container got no devices) /dev/kfd is missing.
NO_GPU_CODES = {"rock-not-loaded", "kfd-missing"}
# Codes that mean the plugin did not understand, or did not get, rocminfo's output.
NOT_UNDERSTOOD = {"unrecognised", "empty", "incomplete", "not-run", "timeout"}


# --------------------------------------------------------------------------- helpers


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _installed(name: str) -> str:
    """The binary the plugin would run, or skip (fail under CI) saying how to install it."""
    path = tools.find_tool(name, os.environ)
    if path is not None:
        return path
    why = (
        f"{name} is not installed (looked in $ROCM_PATH/bin, /opt/rocm/bin and PATH); "
        f"install it with `{INSTALL}`"
    )
    if _ci():
        pytest.fail(f"{why}. CI is set, so this test fails instead of skipping.", pytrace=False)
    pytest.skip(why)


def _has_amdgpu() -> bool:
    return any(Path(p).exists() for p in ("/dev/kfd", "/sys/module/amdgpu", "/sys/class/kfd"))


@pytest.fixture
def rocminfo_path() -> str:
    return _installed("rocminfo")


@pytest.fixture
def rocm_smi_path() -> str:
    return _installed("rocm-smi")


@pytest.fixture
def no_amd_gpu() -> None:
    if _has_amdgpu():
        pytest.skip("this machine has amdgpu (/dev/kfd or its sysfs); no-GPU expectations")


def _snapshot(tmp_path: Path, records: dict[str, tuple[str, str]]) -> Root:
    """A machine with no KFD topology whose tool outputs are the given real samples."""
    for name, (sample, status) in records.items():
        target = tmp_path / RECORD_DIR
        target.mkdir(exist_ok=True)
        (target / f"{name}.txt").write_bytes((REALDATA / sample).read_bytes())
        (target / f"{name}.exit").write_text(f"{status}\n")
    return Root(tmp_path)


# --------------------------------------------------------------------------- recorded


def test_recorded_rocminfo_samples_are_verbatim() -> None:
    """Guard against an editor "cleaning" the samples: bytes as the tool wrote them."""
    data = (REALDATA / ROCMINFO_NO_GPU).read_bytes()
    assert data == (REALDATA / ROCMINFO_SUPPORT_NO_GPU).read_bytes()
    assert data.endswith(f"\x1b[31m{ROCK_LINE}\x1b[0m\n".encode())
    assert data.startswith(b"libkmod: ERROR ")
    for sample in ROCMSMI_NO_GPU.values():
        assert (REALDATA / sample).read_bytes() == (
            b"cat: /sys/module/amdgpu/initstate: No such file or directory\n"
            + DRIVER_LINE.encode()
            + b"\n"
        )


@pytest.mark.parametrize("sample", [ROCMINFO_NO_GPU, ROCMINFO_SUPPORT_NO_GPU])
def test_recorded_rocminfo_no_gpu_is_rock_not_loaded(sample: str) -> None:
    with pytest.raises(RocminfoError) as caught:
        parse_rocminfo(real(sample))
    assert caught.value.code == "rock-not-loaded"
    message = str(caught.value)
    assert message.startswith("rocminfo failed: the amdgpu kernel module is not loaded. ")
    assert "`sudo modprobe amdgpu`" in message
    # The tool's own line is quoted, without its colour codes or libkmod's noise.
    assert message.endswith(f"rocminfo said: {ROCK_LINE!r}")
    assert "\x1b" not in message
    assert "libkmod" not in message


def test_recorded_rocminfo_replayed_in_a_snapshot(tmp_path: Path) -> None:
    root = _snapshot(tmp_path, {"rocminfo": (ROCMINFO_NO_GPU, "1")})
    report, status = run_rocminfo(root, {}, timeout=TIMEOUT)
    assert report is None
    assert (status.ok, status.code) == (False, "rock-not-loaded")
    assert status.message.endswith(f"rocminfo said: {ROCK_LINE!r}")


def test_recorded_rocminfo_diagnostics(tmp_path: Path) -> None:
    """What `pytest-therock doctor` prints for a snapshot of this machine."""
    root = _snapshot(tmp_path, {"rocminfo": (ROCMINFO_NO_GPU, "1")})
    env = detect(root, {})
    assert not env.usable
    diagnostics = {d.code: d for d in run_checks(env)}
    assert {"kfd-missing", "rocminfo-failed"} <= set(diagnostics)
    # This machine has no AMD GPU: rocminfo found none, which is information, not a fault.
    assert str(diagnostics["rocminfo-failed"]) == (
        f"info[rocminfo-failed]: rocminfo found no GPU agents (it said {ROCK_LINE!r})."
    )


@pytest.mark.parametrize("args", list(ROCMSMI_NO_GPU), ids=lambda a: " ".join(a) or "plain")
def test_recorded_rocm_smi_no_gpu_is_driver_not_initialized(args: tuple[str, ...]) -> None:
    # rocm-smi 5.2.3 exits 0 here and prints no JSON even with --json: only the text says
    # it failed.
    with pytest.raises(SmiError) as caught:
        parse_rocmsmi_gpus(real(ROCMSMI_NO_GPU[args]))
    assert caught.value.code == "driver-not-initialized"
    assert caught.value.line == DRIVER_LINE  # its own line, not the `cat:` noise before it
    assert str(caught.value).startswith(
        f"rocm-smi failed (driver-not-initialized): it printed {DRIVER_LINE!r}. "
        "The amdgpu kernel driver is not loaded"
    )


def test_recorded_rocm_smi_replayed_in_a_snapshot(tmp_path: Path) -> None:
    argv = ("rocm-smi", "--showmeminfo", "vram", "gtt", "--json")
    sample = ROCMSMI_NO_GPU[argv[1:]]
    root = _snapshot(tmp_path, {tools.record_name(argv): (sample, "0")})
    result = tools.run(root, argv, timeout=TIMEOUT)
    assert (result.ok, result.output) == (True, real(sample))  # exit 0, yet no GPU
    with pytest.raises(SmiError, match="driver-not-initialized"):
        parse_rocmsmi_gpus(result.output)


def test_recorded_rocm_smi_5_has_no_version_option() -> None:
    text = real(ROCMSMI_VERSION)
    assert text.startswith("usage: rocm-smi [-h] ")
    with pytest.raises(SmiError) as caught:
        parse_rocmsmi_version(text)
    assert caught.value.code == "invalid-command"
    assert caught.value.line == "rocm-smi: error: unrecognized arguments: --version"


# --------------------------------------------------------------------------- live


def test_live_rocminfo_output_is_understood(rocminfo_path: str) -> None:
    """On any machine, the plugin reads what the installed rocminfo prints."""
    report, status = run_rocminfo(Root(), os.environ, timeout=TIMEOUT, explicit=rocminfo_path)
    assert status.code not in NOT_UNDERSTOOD, status.message
    assert status.message
    if status.ok:
        assert report is not None and report.agents
    else:
        assert status.message.startswith("rocminfo ")


def test_live_rocminfo_no_gpu(rocminfo_path: str, no_amd_gpu: None) -> None:
    report, status = run_rocminfo(Root(), os.environ, timeout=TIMEOUT, explicit=rocminfo_path)
    assert report is None
    assert not status.ok
    assert status.code in NO_GPU_CODES, status.message
    assert status.message.startswith("rocminfo failed: ")
    assert "rocminfo said: " in status.message
    assert "modprobe amdgpu" in status.message
    if status.code == "rock-not-loaded":
        assert status.message.endswith(f"rocminfo said: {ROCK_LINE!r}")


def test_live_rocminfo_found_through_rocm_path(rocminfo_path: str) -> None:
    prefix = Path(rocminfo_path).resolve().parent.parent
    environ = {**os.environ, "ROCM_PATH": str(prefix), "PATH": os.defpath}
    found = tools.find_tool("rocminfo", environ)
    assert found is not None and Path(found).resolve() == Path(rocminfo_path).resolve()
    _report, status = run_rocminfo(Root(), environ, timeout=TIMEOUT)
    assert status.code not in NOT_UNDERSTOOD, status.message


def test_live_rocminfo_found_by_default(rocminfo_path: str) -> None:
    _report, status = run_rocminfo(Root(), os.environ, timeout=TIMEOUT)
    assert status.code not in NOT_UNDERSTOOD, status.message


def test_live_detect_reports_rocminfo_failed(rocminfo_path: str, no_amd_gpu: None) -> None:
    env = detect(Root(), os.environ, run_tools=True, timeout=TIMEOUT)
    assert env.rocminfo is not None and env.rocminfo.code in NO_GPU_CODES
    diagnostics = {d.code: d for d in run_checks(env)}
    assert {"kfd-missing", "rocminfo-failed"} <= set(diagnostics)
    said = diagnostics["rocminfo-failed"]
    assert said.severity == "info" and said.message.startswith("rocminfo found no GPU agents")
    assert "modprobe" not in said.message and "modprobe" not in str(diagnostics["kfd-missing"])


def test_live_doctor_no_gpu(capsys: pytest.CaptureFixture[str], no_amd_gpu: None) -> None:
    assert main(["doctor", "--root", "/"]) == 1
    out = capsys.readouterr().out
    assert "GPUs: none found" in out
    assert "error[kfd-missing]: " in out


def test_live_doctor_runs_rocminfo(
    capsys: pytest.CaptureFixture[str], rocminfo_path: str, no_amd_gpu: None
) -> None:
    assert main(["doctor", "--root", "/"]) == 1
    lines = capsys.readouterr().out.splitlines()
    # No AMD GPU here: rocminfo's failure is information, quoting the tool, with no
    # advice to load a driver (on any line: they must not disagree).
    failed = [line for line in lines if "[rocminfo-failed]: " in line]
    assert len(failed) == 1, lines
    assert failed[0].startswith("info[rocminfo-failed]: rocminfo found no GPU agents (it said ")
    assert not [line for line in lines if "modprobe" in line or "not loaded." in line], lines


def test_live_doctor_json_has_rocminfo_status(
    capsys: pytest.CaptureFixture[str], rocminfo_path: str, no_amd_gpu: None
) -> None:
    assert main(["doctor", "--root", "/", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["usable"] is False
    assert data["rocminfo"]["ok"] is False
    assert data["rocminfo"]["code"] in NO_GPU_CODES
    assert {"kfd-missing", "rocminfo-failed"} <= {d["code"] for d in data["diagnostics"]}


def test_live_snapshot_replays_like_the_machine(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, rocminfo_path: str
) -> None:
    """A snapshot taken here with the real tools reads back as this machine does."""
    assert main(["doctor", "--root", "/"]) in (0, 1)
    live = capsys.readouterr().out.splitlines()
    assert main(["snapshot", str(tmp_path / "snap")]) == 0
    capsys.readouterr()
    assert main(["doctor", "--root", str(tmp_path / "snap")]) in (0, 1)
    replayed = capsys.readouterr().out.splitlines()
    rocminfo_lines = [line for line in live if "rocminfo" in line]
    assert [line for line in replayed if "rocminfo" in line] == rocminfo_lines


@pytest.mark.parametrize("args", list(ROCMSMI_NO_GPU), ids=lambda a: " ".join(a) or "plain")
def test_live_rocm_smi_no_gpu(rocm_smi_path: str, no_amd_gpu: None, args: tuple[str, ...]) -> None:
    result = tools.run(Root(), ("rocm-smi", *args), timeout=TIMEOUT, explicit=rocm_smi_path)
    assert result.error is None, result.error
    # Whatever the exit status (5.2.3 exits 0 here), the text says the driver is missing.
    with pytest.raises(SmiError) as caught:
        parse_rocmsmi_gpus(result.output)
    assert caught.value.code == "driver-not-initialized", str(caught.value)
    assert "sudo modprobe amdgpu" in str(caught.value)


def test_live_rocm_smi_version_is_understood(rocm_smi_path: str) -> None:
    """rocm-smi 6+ prints its versions; 5.x rejects --version, which is recognised too."""
    result = tools.run(Root(), ("rocm-smi", "--version"), timeout=TIMEOUT, explicit=rocm_smi_path)
    assert result.error is None, result.error
    try:
        versions = parse_rocmsmi_version(result.output)
    except SmiError as exc:
        assert exc.code in ("invalid-command", "driver-not-initialized"), str(exc)
    else:
        assert versions.tool_version
