"""``pytest-therock doctor`` and ``snapshot`` over the example roots."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import EXAMPLES, RootBuilder, real

from pytest_therock.cli import main
from pytest_therock.snapshot import take
from pytest_therock.sysroot import Root


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["doctor", *args])
    return code, capsys.readouterr().out


def test_json_describes_the_strix_halo(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = doctor(capsys, "--root", str(EXAMPLES / "strix-halo"), "--json")
    data = json.loads(out)
    assert code == 0
    assert data["usable"] is True
    (gpu,) = data["gpus"]
    assert gpu["gfx_target"] == "gfx1151"
    assert gpu["marketing_name"] == "Radeon 8060S Graphics"
    assert gpu["is_apu"] is True
    assert gpu["kfd_memory_bytes"] == 65507932 * 1024  # rocminfo's GPU pool on this APU
    assert gpu["vram_total_bytes"] is None
    assert data["system_memory_bytes"] == 131015868 * 1024  # its CPU agent's pool
    (memory,) = data["memory"]
    assert memory["limit_source"] == "default: 50% of RAM"  # the pool is half of RAM
    assert (memory["pool"], memory["allocatable_bytes"]) == ("GTT", 65507932 * 1024)
    assert memory["installed_ram_bytes"] is None  # the carve-out is unknown
    assert data["plan"] is None  # no size asked for: nothing invented
    codes = {d["code"]: d["severity"] for d in data["diagnostics"]}
    assert codes == {"gpu-memory": "info"}
    assert set(data["diagnostics"][0]) == {"code", "severity", "message", "fix"}


def test_json_without_gpu_exits_1_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = doctor(capsys, "--root", str(EXAMPLES / "no-gpu"), "--json")
    data = json.loads(out)
    assert code == 1
    assert data["gpus"] == []
    assert {d["code"] for d in data["diagnostics"]} == {"kfd-missing", "rocminfo-failed"}


def test_text_report_has_every_fix(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = doctor(capsys, "--root", str(EXAMPLES / "strix-halo-gtt-raised"))
    assert code == 0
    assert (
        "GPU 0: gfx1151 (Radeon 8060S Graphics), 40 CU, APU, carve-out 4 GiB, GTT 96 GiB, "
        "allocatable 62.5 GiB from GTT"
    ) in out  # KFD's limit from driver load, below the live pages_limit
    assert "RAM 124.9 GiB (OS), installed 128.9 GiB; TTM limit 96 GiB (ttm.pages_limit)" in out
    assert "info[gpu-memory]: gfx1151: allocations come from GTT, 62.5 GiB allocatable" in out
    assert "Fix: set ttm.pages_limit=25165824 (96 GiB) on the kernel command line and reboot" in out


def test_ignore_silences_a_code(capsys: pytest.CaptureFixture[str]) -> None:
    _, out = doctor(capsys, "--root", str(EXAMPLES / "strix-halo"), "--ignore", "gpu-memory")
    assert "gpu-memory" not in out


def test_explain(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = doctor(capsys, "--explain", "gpu-memory")
    assert code == 0
    assert out.startswith("gpu-memory (info)\nFAQ: Can I prioritize VRAM usage over GTT?")
    assert main(["doctor", "--explain", "nope"]) == 2
    assert "unknown code 'nope'" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["doctor", "--root", str(tmp_path / "missing")]) == 2
    assert "missing: no such file or directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["doctor", "--bogus"])
    assert exc.value.code == 2


def test_console_script_runs() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_therock.cli",
            "doctor",
            "--root",
            str(EXAMPLES / "mi210-8x"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0
    assert "GPU 7: gfx90a, 104 CU, discrete" in out.stdout


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()))
def test_a_snapshot_replays_like_its_source(
    example: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    take(tmp_path / "snap", {}, timeout=5, source=Root(EXAMPLES / example))
    _, original = doctor(capsys, "--root", str(EXAMPLES / example), "--json")
    _, replayed = doctor(capsys, "--root", str(tmp_path / "snap"), "--json")
    before, after = json.loads(original), json.loads(replayed)
    for data in (before, after):
        data.pop("root")
    assert after == before


def test_snapshot_of_this_machine_as_tar_gz(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "machine.tar.gz"
    assert main(["snapshot", str(target), "--timeout", "10"]) == 0
    with tarfile.open(target) as tar:
        names = tar.getnames()
    assert ".therock/snapshot.json" in names
    assert ".therock/kfd-access" in names
    assert main(["snapshot", str(target)]) == 2  # never overwrites
    assert "exists" in capsys.readouterr().err


def test_amd_smi_adds_versions_and_the_vram_carve_out(
    root: RootBuilder, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(EXAMPLES / "strix-halo", root.path, dirs_exist_ok=True)
    root.write(
        ".therock/amd-smi.txt",
        real("amdsmi/amd-smi-default-gfx1151-strix-halo-rocm7.2.0-amdgpu6.16.13.txt"),
    )
    root.write(
        ".therock/amd-smi-version.txt",
        real("amdsmi/amd-smi-version-amdsmi26.2.1-rocm7.2.0-kernel-string-jupyter-indented.txt"),
    )
    code, out = doctor(capsys, "--root", str(root.path))
    assert code == 0
    assert "amd-smi 26.2.1, ROCm 7.2.0, amdgpu 6.17.0-1012-oem" in out
    assert "GPU 0: gfx1151 (Radeon 8060S Graphics), 40 CU, APU, carve-out 512 MiB, GTT" in out
    data = json.loads(doctor(capsys, "--root", str(root.path), "--json")[1])
    assert data["gpus"][0]["vram_used_bytes"] == 147 << 20


def test_failing_amd_smi_is_reported_not_raised(
    root: RootBuilder, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(EXAMPLES / "no-gpu", root.path, dirs_exist_ok=True)
    root.write(
        ".therock/rocm-smi-showmeminfo.txt", real("rocmsmi/error-wsl2-driver-not-initialized.txt")
    )
    data = json.loads(doctor(capsys, "--root", str(root.path), "--json")[1])
    assert data["smi"]["tool"] == "rocm-smi"
    assert data["smi"]["status"]["code"] == "driver-not-initialized"


def test_doctor_reads_a_snapshot_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "bug-report.tar.gz"
    take(archive, {}, timeout=5, source=Root(EXAMPLES / "strix-halo"))
    code, out = doctor(capsys, "--root", str(archive))
    assert code == 0
    assert "GPU 0: gfx1151 (Radeon 8060S Graphics), 40 CU, APU" in out
    (tmp_path / "broken.tar.gz").write_bytes(b"not gzip")
    assert main(["doctor", "--root", str(tmp_path / "broken.tar.gz")]) == 2
    assert "broken.tar.gz" in capsys.readouterr().err


def test_an_unreadable_kernel_log_says_how_to_read_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # What util-linux dmesg prints where kernel.dmesg_restrict is set and the user is not root.
    fake = tmp_path / "dmesg"
    fake.write_text(
        "#!/bin/sh\necho 'dmesg: read kernel buffer failed: Operation not permitted' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    data = json.loads(doctor(capsys, "--json", "--timeout", "10")[1])
    messages = [d["message"] for d in data["diagnostics"] if d["code"] == "source-unreadable"]
    assert messages == [
        "dmesg: kernel log not read (dmesg: read kernel buffer failed: Operation not permitted); "
        "try `sudo dmesg`"
    ]


def test_snapshot_into_an_unwritable_place_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["snapshot", str(blocker / "snap")]) == 2  # a file where a directory must be
    err = capsys.readouterr().err
    assert err.startswith("pytest-therock: cannot write ") and "Traceback" not in err
