"""amd-smi as a source of versions and memory in ``doctor`` over snapshots.

The recorded outputs are real samples (realdata/amdsmi); the machines around them are
the example roots, which have no DRM memory files: what amd-smi says fills the gaps.
"""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import EXAMPLES, RootBuilder, real

from pytest_therock.cli import main

MiB = 1 << 20


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["doctor", *args])
    return code, capsys.readouterr().out


def test_strix_halo_linuxver_and_the_96_gib_carve_out(
    root: RootBuilder, capsys: pytest.CaptureFixture[str]
) -> None:
    # Only the default view was recorded: its header gives the versions, and
    # "amdgpu version: Linuxver" is no version (the kernel string cut to fit the box).
    shutil.copytree(EXAMPLES / "strix-halo", root.path, dirs_exist_ok=True)
    root.write(
        ".therock/amd-smi.txt",
        real(
            "amdsmi/amd-smi-default-gfx1151-strix-halo-linuxver-96g-carveout-amdsmi26.2.1-rocm7.2.0.txt"
        ),
    )
    code, out = doctor(capsys, "--root", str(root.path))
    assert code == 0
    assert "amd-smi 26.2.1, ROCm 7.2.0\n" in out and "Linuxver" not in out
    assert "carve-out 96 GiB" in out  # 98304 MB: amd-smi's MB is MiB
    data = json.loads(doctor(capsys, "--root", str(root.path), "--json")[1])
    gpu = data["gpus"][0]
    assert (gpu["vram_total_bytes"], gpu["vram_used_bytes"]) == (96 << 30, 161 * MiB)
    assert data["smi"]["driver_version"] is None


def test_amd_smi_metric_m_fills_vram_and_gtt_where_sysfs_gave_nothing(
    root: RootBuilder, capsys: pytest.CaptureFixture[str]
) -> None:
    # An APU whose snapshot has its KFD node (a real Krackan node) but no DRM memory
    # files nor memory banks, and the text of `amd-smi metric -m` recorded in place of
    # the --json run.
    root.node(1, "kfd-topology-gfx1152-krackan-thinkpad-p16s-node1-properties.txt").kfd()
    before = json.loads(doctor(capsys, "--root", str(root.path), "--json")[1])["gpus"][0]
    assert before["vram_total_bytes"] is None and before["gtt_total_bytes"] is None
    root.write(
        ".therock/amd-smi-metric-mem-usage.txt",
        real("amdsmi/amd-smi-metric-m-apu-512mb-vram-13649mb-gtt-amdsmi26.1.0-dev.txt"),
    )
    data = json.loads(doctor(capsys, "--root", str(root.path), "--json")[1])
    gpu = data["gpus"][0]
    assert (gpu["vram_total_bytes"], gpu["vram_used_bytes"]) == (512 * MiB, 489 * MiB)
    assert (gpu["gtt_total_bytes"], gpu["gtt_used_bytes"]) == (13649 * MiB, 964 * MiB)
    assert gpu["vis_vram_total_bytes"] == 512 * MiB
    assert data["memory"][0]["total_bytes"] == 13649 * MiB
    out = doctor(capsys, "--root", str(root.path))[1]
    assert "APU, carve-out 512 MiB, GTT 964 MiB used of 13.3 GiB" in out


def test_the_kfd_memory_banks_keep_their_gtt_and_amd_smi_adds_the_rest(
    root: RootBuilder, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(EXAMPLES / "krackan-apu", root.path, dirs_exist_ok=True)
    before = json.loads(doctor(capsys, "--root", str(root.path), "--json")[1])["gpus"][0]
    root.write(
        ".therock/amd-smi-metric-mem-usage.txt",
        real("amdsmi/amd-smi-metric-m-apu-512mb-vram-13649mb-gtt-amdsmi26.1.0-dev.txt"),
    )
    gpu = json.loads(doctor(capsys, "--root", str(root.path), "--json")[1])["gpus"][0]
    assert gpu["kfd_memory_bytes"] == before["kfd_memory_bytes"] is not None  # the kernel's
    assert before["gtt_total_bytes"] is None  # KFD's bank is what the GPU may map, not GTT
    assert (gpu["vram_total_bytes"], gpu["gtt_used_bytes"]) == (512 * MiB, 964 * MiB)
    assert gpu["gtt_total_bytes"] == 13649 * MiB


def test_sysfs_values_win_over_amd_smi(
    root: RootBuilder, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(EXAMPLES / "strix-halo-gtt-raised", root.path, dirs_exist_ok=True)
    sysfs = json.loads(doctor(capsys, "--root", str(root.path), "--json")[1])["gpus"][0]
    root.write(
        ".therock/amd-smi-metric-mem-usage.txt",
        real("amdsmi/amd-smi-metric-m-apu-512mb-vram-13649mb-gtt-amdsmi26.1.0-dev.txt"),
    )
    gpu = json.loads(doctor(capsys, "--root", str(root.path), "--json")[1])["gpus"][0]
    assert gpu["vram_total_bytes"] == sysfs["vram_total_bytes"] == 4 << 30
    assert gpu["gtt_total_bytes"] == sysfs["gtt_total_bytes"]
    assert gpu["gtt_used_bytes"] == 964 * MiB  # sysfs gave no use: amd-smi does


def test_an_smi_count_that_disagrees_with_the_kfd_topology_is_said(
    root: RootBuilder, capsys: pytest.CaptureFixture[str]
) -> None:
    # A real 8-GPU MI210 topology with the (whole, real) amd-smi view of a 2-GPU
    # machine: neither the status line nor the problems may let "2 GPU(s)" pass.
    root.topology("topo-mi210-xgmi-pcie").kfd()
    root.write(".therock/amd-smi.txt", real("amdsmi/amd-smi-default-2x-rx7900xtx-amdsmi26.2.2.txt"))
    data = json.loads(doctor(capsys, "--root", str(root.path), "--json")[1])
    assert len(data["gpus"]) == 8
    status = data["smi"]["status"]
    assert not status["ok"] and status["code"] == "gpu-count-mismatch", status
    assert "amd-smi lists 2 GPU(s) but the KFD topology lists 8" in status["message"]
    _, out = doctor(capsys, "--root", str(root.path))
    assert "lists 2 GPU(s) but the KFD topology lists 8" in out


def test_a_cut_rocm_smi_table_is_incomplete_in_doctor(
    root: RootBuilder, capsys: pytest.CaptureFixture[str]
) -> None:
    # `head -5` of the real 4x MI210 concise table, recorded where rocm-smi's is read.
    head = "\n".join(real("rocmsmi/rocm-smi-concise-4x-mi210-rocm5.7.1.txt").splitlines()[:5])
    root.topology("topo-mi210-xgmi-pcie").kfd()
    root.write(".therock/rocm-smi-showmeminfo.txt", head + "\n")
    data = json.loads(doctor(capsys, "--root", str(root.path), "--json")[1])
    status = data["smi"]["status"]
    assert status["code"] == "incomplete" and "closing" in status["message"], status
