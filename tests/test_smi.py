"""Tests for the amd-smi / rocm-smi parsers.

Every file in realdata/amdsmi and realdata/rocmsmi (real outputs from public GitHub
issues, see realdata/SOURCES.md) is parsed and checked for the values a user would
notice. A few more formats are written inline, each taken from the tool's source or
documentation or a maintainer's pasted output (named at the test), for layouts no
sample covers; those are not sample files.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_therock.smi import (
    SmiError,
    SmiGpu,
    SmiVersions,
    parse_amdsmi_gpus,
    parse_amdsmi_version,
    parse_rocmsmi_gpus,
    parse_rocmsmi_version,
)

DATA = Path(__file__).parent / "realdata"
SAMPLE_DIRS = ("amdsmi", "rocmsmi")
MiB = 1 << 20
PARSERS = (parse_amdsmi_gpus, parse_amdsmi_version, parse_rocmsmi_gpus, parse_rocmsmi_version)


def read(rel: str) -> str:
    return (DATA / rel).read_text(encoding="utf-8")


def smi_error(parse: Callable[[str], object], text: str) -> SmiError:
    with pytest.raises(SmiError) as info:
        parse(text)
    return info.value


def no_gpu_fields(gpu: SmiGpu) -> bool:
    return all(getattr(gpu, f.name) is None for f in fields(gpu) if f.name != "index")


# --------------------------------------------------------------------------- samples

CHECKS: dict[str, Callable[[str], None]] = {}


def sample(rel: str) -> Callable[[Callable[[str], None]], Callable[[str], None]]:
    def register(check: Callable[[str], None]) -> Callable[[str], None]:
        assert rel not in CHECKS, rel
        CHECKS[rel] = check
        return check

    return register


@sample("amdsmi/amd-smi-default-2x-rx7900xtx-amdsmi26.2.2.txt")
def _default_two_7900xtx(text: str) -> None:
    gpus = parse_amdsmi_gpus(text)
    assert [gpu.index for gpu in gpus] == [0, 1]
    assert {gpu.name for gpu in gpus} == {"AMD Radeon RX 7900 XTX"}
    assert (gpus[0].vram_used_bytes, gpus[0].vram_total_bytes) == (7608 * MiB, 24560 * MiB)
    assert (gpus[1].vram_used_bytes, gpus[1].vram_total_bytes) == (30 * MiB, 24560 * MiB)
    assert gpus[0].gfx_target is None and gpus[0].gtt_total_bytes is None
    # Header "AMD-SMI 26.2.2+unknown  amdgpu version: Linuxver ROCm version: N/A":
    # the NixOS kernel string is cut to "Linuxver", which says nothing.
    assert parse_amdsmi_version(text) == SmiVersions("amd-smi", "26.2.2", None, None, None)


@sample("amdsmi/amd-smi-default-gfx1151-strix-halo-rocm7.2.0-amdgpu6.16.13.txt")
def _default_strix_halo(text: str) -> None:
    (gpu,) = parse_amdsmi_gpus(text)
    assert gpu == SmiGpu(0, "AMD Radeon Graphics", None, 512 * MiB, 147 * MiB, None, None)
    assert parse_amdsmi_version(text) == SmiVersions("amd-smi", "26.2.1", None, "7.2.0", "6.16.13")


@sample("amdsmi/amd-smi-list-gfx1150-hx470-amdsmi26.2.1-jupyter-indented.txt")
def _list_indented(text: str) -> None:
    (gpu,) = parse_amdsmi_gpus(text)
    assert gpu.index == 0 and no_gpu_fields(gpu)
    assert smi_error(parse_amdsmi_version, text).code == "unrecognised"


@sample("amdsmi/amd-smi-static-driver-2x-rx7900xtx-nixos.txt")
def _static_driver_nixos(text: str) -> None:
    # amdgpu built into the NixOS kernel: VERSION is /proc/version without spaces.
    assert parse_amdsmi_version(text) == SmiVersions("amd-smi", None, None, None, "6.19.11")
    gpus = parse_amdsmi_gpus(text)
    assert [gpu.index for gpu in gpus] == [0, 1]
    assert all(no_gpu_fields(gpu) for gpu in gpus)


@sample("amdsmi/amd-smi-static-gfx1150-hx470-apu-amdsmi26.2.1-rocm7.2.0-jupyter-indented.txt")
def _static_gfx1150(text: str) -> None:
    (gpu,) = parse_amdsmi_gpus(text)
    assert gpu == SmiGpu(0, "AMD Radeon Graphics", "gfx1150", 65536 * MiB, None, None, None)
    versions = parse_amdsmi_version(text)
    assert versions.driver_version == "6.17.0-1012-oem"
    assert versions.tool_version is None and versions.rocm_version is None


@sample("amdsmi/amd-smi-version-amdsmi24.7.1-rocm6.3.3.txt")
def _version_24(text: str) -> None:
    assert parse_amdsmi_version(text) == SmiVersions("amd-smi", "24.7.1", "25.1.0.0", "6.3.3", None)
    assert smi_error(parse_amdsmi_gpus, text).code == "unrecognised"


@sample("amdsmi/amd-smi-version-amdsmi26.2.1-rocm7.2.0-kernel-string-jupyter-indented.txt")
def _version_26(text: str) -> None:
    assert parse_amdsmi_version(text) == SmiVersions(
        "amd-smi", "26.2.1", "26.2.1", "7.2.0", "6.17.0-1012-oem"
    )
    assert smi_error(parse_amdsmi_gpus, text).code == "unrecognised"


@sample("amdsmi/error-amd-smi-dash-dash-version-invalid-subcommand-amdsmi26.2.1.txt")
def _error_dash_dash_version(text: str) -> None:
    for parse in (parse_amdsmi_version, parse_amdsmi_gpus):
        error = smi_error(parse, text)
        assert error.code == "invalid-command"
        assert error.line == text.strip()
        assert "AmdSmiInvalidSubcommandException" in str(error)
        assert "`amd-smi version`" in str(error)


@sample("rocmsmi/error-wsl2-driver-not-initialized.txt")
def _error_wsl2(text: str) -> None:
    for parse in (parse_rocmsmi_version, parse_rocmsmi_gpus):
        error = smi_error(parse, text)
        assert error.code == "driver-not-initialized"
        assert error.line == "ERROR:root:Driver not initialized (amdgpu not found in modules)"
        assert error.line in str(error) and "modprobe amdgpu" in str(error)


@sample("rocmsmi/error-debian-rocm-smi-5.2.3-2-no-gpu-container.txt")
@sample("rocmsmi/error-debian-rocm-smi-5.2.3-2-showmeminfo-vram-gtt-json-no-gpu-container.txt")
@sample("rocmsmi/error-debian-rocm-smi-5.2.3-2-showproductname-json-no-gpu-container.txt")
def _error_no_gpu_container(text: str) -> None:
    # rocm-smi 5.2.3 prints the same two lines (and exits 0) with or without --json.
    _error_wsl2(text)


@sample("rocmsmi/error-debian-rocm-smi-5.2.3-2-version-unrecognized-argument.txt")
def _error_rocm_smi_5_version(text: str) -> None:
    for parse in (parse_rocmsmi_version, parse_rocmsmi_gpus):
        error = smi_error(parse, text)
        assert error.code == "invalid-command"
        assert error.line == "rocm-smi: error: unrecognized arguments: --version"
        assert "rocm-smi -h" in str(error)


@sample("rocmsmi/rocm-smi-concise-4x-mi210-rocm5.7.1.txt")
def _concise_mi210(text: str) -> None:
    gpus = parse_rocmsmi_gpus(text)
    assert [gpu.index for gpu in gpus] == [0, 1, 2, 3]
    assert all(no_gpu_fields(gpu) for gpu in gpus)
    assert smi_error(parse_rocmsmi_version, text).code == "unrecognised"


@sample("rocmsmi/rocm-smi-concise-mi300a-tpx-3-partitions-rocm6.3.3.txt")
def _concise_mi300a_tpx(text: str) -> None:
    gpus = parse_rocmsmi_gpus(text)
    assert [gpu.index for gpu in gpus] == [0, 1, 2]  # one MI300A in TPX mode: 3 devices
    assert all(no_gpu_fields(gpu) for gpu in gpus)


@sample("rocmsmi/rocm-smi-concise-rx9070xt-plus-igpu-rocm7.2.1.txt")
def _concise_9070xt_igpu(text: str) -> None:
    assert [gpu.index for gpu in parse_rocmsmi_gpus(text)] == [0, 1]


@sample("rocmsmi/rocm-smi-i-mi300a-rocm6.3.3.txt")
def _id_mi300a(text: str) -> None:
    (gpu,) = parse_rocmsmi_gpus(text)
    assert gpu == SmiGpu(0, "AMD Instinct MI300A", None, None, None, None, None)


@sample("rocmsmi/rocm-smi-showmeminfo-vram-8x-mi300x-spx-tabs-expanded.txt")
def _meminfo_8x_mi300x(text: str) -> None:
    gpus = parse_rocmsmi_gpus(text)
    assert [gpu.index for gpu in gpus] == list(range(8))
    assert {gpu.vram_total_bytes for gpu in gpus} == {206141652992}
    assert gpus[0].vram_used_bytes == 297771008 and gpus[7].vram_used_bytes == 297775104
    assert gpus[0].name is None and gpus[0].gtt_total_bytes is None


@sample("rocmsmi/rocm-smi-showmeminfo-vram-mi300a-spx-rocm6.3.3.txt")
def _meminfo_mi300a(text: str) -> None:
    (gpu,) = parse_rocmsmi_gpus(text)
    assert (gpu.vram_total_bytes, gpu.vram_used_bytes) == (100742320128, 8388608)


RX7900XT = SmiGpu(0, "Radeon RX 7900 XT", "gfx1100", 21458059264, 27856896, None, None)


@sample("rocmsmi/rocm-smi-showproductname-showuse-showmeminfo-vram-csv-rx7900xt.txt")
def _csv_7900xt(text: str) -> None:
    assert parse_rocmsmi_gpus(text) == (RX7900XT,)


@sample("rocmsmi/rocm-smi-showproductname-showuse-showmeminfo-vram-json-rx7900xt.txt")
def _json_7900xt(text: str) -> None:
    assert parse_rocmsmi_gpus(text) == (RX7900XT,)
    # The pasted JSON is pretty-printed; rocm-smi may print it on one line.
    assert parse_rocmsmi_gpus(json.dumps(json.loads(text))) == (RX7900XT,)


@sample("rocmsmi/rocm-smi-version-rocm7.2.0.txt")
def _rocm_smi_version(text: str) -> None:
    assert parse_rocmsmi_version(text) == SmiVersions("rocm-smi", "4.0.0", "7.8.0", None, None)
    assert smi_error(parse_rocmsmi_gpus, text).code == "unrecognised"


@sample(
    "amdsmi/amd-smi-default-gfx1151-strix-halo-linuxver-96g-carveout-amdsmi26.2.1-rocm7.2.0.txt"
)
def _default_strix_halo_linuxver(text: str) -> None:
    # amd-smi's MB is MiB: 98304 MB = 96 * 1024 MiB is the 96 GiB carve-out (decimal
    # megabytes would have printed 103079). "Linuxver" is /proc/version cut to fit the
    # box: not a version, so the driver version is unknown.
    (gpu,) = parse_amdsmi_gpus(text)
    assert gpu == SmiGpu(0, "AMD Radeon Graphics", None, 96 << 30, 161 * MiB, None, None)
    assert parse_amdsmi_version(text) == SmiVersions("amd-smi", "26.2.1", None, "7.2.0", None)


@sample("amdsmi/amd-smi-metric-m-apu-512mb-vram-13649mb-gtt-amdsmi26.1.0-dev.txt")
def _metric_m_apu(text: str) -> None:
    (gpu,) = parse_amdsmi_gpus(text)
    assert (gpu.vram_total_bytes, gpu.vram_used_bytes) == (512 * MiB, 489 * MiB)
    assert (gpu.gtt_total_bytes, gpu.gtt_used_bytes) == (13649 * MiB, 964 * MiB)
    assert (gpu.vis_vram_total_bytes, gpu.vis_vram_used_bytes) == (512 * MiB, 489 * MiB)


@sample("amdsmi/amd-smi-monitor-v-apu-gtt-amdsmi26.1.0-dev.txt")
def _monitor_v_apu(text: str) -> None:
    (gpu,) = parse_amdsmi_gpus(text)
    assert (gpu.gtt_total_bytes, gpu.gtt_used_bytes) == (13649 * MiB, 938 * MiB)
    assert gpu.vram_total_bytes is None and gpu.name is None


@sample("rocmsmi/rocm-smi-concise-raphael-igpu-plus-rx7900xt-rocm5.x-2023.txt")
def _concise_rocm5_plain_temp(text: str) -> None:
    gpus = parse_rocmsmi_gpus(text)
    assert [gpu.index for gpu in gpus] == [0, 1]  # the Raphael iGPU and the RX 7900 XT
    assert all(no_gpu_fields(gpu) for gpu in gpus)


@sample("rocmsmi/rocm-smi-showmeminfo-vram-gtt-gfx1150-890m-rocm7.13-docker.txt")
def _meminfo_vram_gtt_890m(text: str) -> None:
    (gpu,) = parse_rocmsmi_gpus(text)
    assert (gpu.vram_total_bytes, gpu.vram_used_bytes) == (536870912, 158003200)
    assert (gpu.gtt_total_bytes, gpu.gtt_used_bytes) == (47244640256, 36192239616)


def _respaced(text: str, rng: random.Random) -> str:
    """The same table with every run of spaces between cells 1 to 9 spaces wide."""
    out = []
    for line in text.splitlines():
        if line.startswith("="):  # banners keep their words, rules change width
            words = line.strip("=")
            pad = "=" * rng.randint(10, 60)
            out.append(f"{pad}{words}{pad}" if words else pad * 2)
            continue
        cells = line.split("  ")
        cells = [c.strip() for c in cells if c.strip()]
        out.append("".join(c + " " * rng.randint(2, 9) for c in cells))
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("seed", range(40))
def test_old_concise_table_in_other_column_widths(seed: int) -> None:
    # Other builds pad the columns to other widths (the header and rows are printed with
    # per-column widths); the table is read by column names, never by position.
    text = read("rocmsmi/rocm-smi-concise-raphael-igpu-plus-rx7900xt-rocm5.x-2023.txt")
    variant = _respaced(text, random.Random(seed))
    assert [gpu.index for gpu in parse_rocmsmi_gpus(variant)] == [0, 1]


def test_old_concise_table_pasted_without_its_banners() -> None:
    text = read("rocmsmi/rocm-smi-concise-raphael-igpu-plus-rx7900xt-rocm5.x-2023.txt")
    table = "\n".join(line for line in text.splitlines() if not line.startswith("="))
    assert [gpu.index for gpu in parse_rocmsmi_gpus(table)] == [0, 1]


@pytest.mark.parametrize("gpus", [1, 3, 8])
def test_old_concise_table_with_other_gpu_counts(gpus: int) -> None:
    text = read("rocmsmi/rocm-smi-concise-raphael-igpu-plus-rx7900xt-rocm5.x-2023.txt")
    lines = text.splitlines()
    row = lines[3]
    rows = [str(i) + row[1:] for i in range(gpus)]
    variant = "\n".join([*lines[:3], *rows, *lines[5:]])
    assert [gpu.index for gpu in parse_rocmsmi_gpus(variant)] == list(range(gpus))


def test_monitor_table_with_vram_columns_and_other_spacing() -> None:
    # `amd-smi monitor -v -m` adds VRAM columns; a unit is its own word after a number.
    text = read("amdsmi/amd-smi-monitor-v-apu-gtt-amdsmi26.1.0-dev.txt")
    header, row = text.splitlines()
    header += "  VRAM_USED  VRAM_TOTAL"
    row += "  489 MB  512 MB"
    for spaces in (" ", "   ", "\t"):
        variant = spaces.join(header.split()) + "\n" + spaces.join(row.split()) + "\n"
        (gpu,) = parse_amdsmi_gpus(variant)
        assert (gpu.vram_total_bytes, gpu.vram_used_bytes) == (512 * MiB, 489 * MiB)
        assert gpu.gtt_total_bytes == 13649 * MiB


def sample_files() -> list[str]:
    return sorted(
        f"{folder}/{path.name}"
        for folder in SAMPLE_DIRS
        for path in (DATA / folder).iterdir()
        if path.is_file()
    )


def test_every_sample_is_checked() -> None:
    assert sorted(CHECKS) == sample_files()


@pytest.mark.parametrize("rel", sorted(CHECKS))
def test_sample(rel: str) -> None:
    CHECKS[rel](read(rel))


# --------------------------------------------------------------------------- amd-smi formats


def test_amdsmi_version_json() -> None:
    # `amd-smi version --json`: keys as set by amdsmi_cli's version command.
    text = json.dumps(
        [
            {
                "tool": "AMDSMI Tool",
                "version": "26.2.0+021c61fc",
                "amdsmi_library_version": "26.2.0",
                "rocm_version": "7.0.2",
                "amdgpu_version": "6.16.6",
                "amd_hsmp_driver_version": "N/A",
            }
        ],
        indent=4,
    )
    assert parse_amdsmi_version(text) == SmiVersions(
        "amd-smi", "26.2.0", "26.2.0", "7.0.2", "6.16.6"
    )


def test_amdsmi_help_banner_of_versions_without_default_view() -> None:
    # `amd-smi` alone before ROCm 7 printed its help (ROCm/amdsmi docs).
    text = (
        "usage: amd-smi [-h]  ...\n\n"
        "AMD System Management Interface | Version: 25.2.0 | ROCm version: 6.4.0 | "
        "Platform: Linux Baremetal\n\noptions:\n  -h, --help          show this help message\n"
    )
    assert parse_amdsmi_version(text) == SmiVersions("amd-smi", "25.2.0", None, "6.4.0", None)
    assert smi_error(parse_amdsmi_gpus, text).code == "invalid-command"


def test_amdsmi_default_view_multiline_header() -> None:
    # Layout of amdsmi_logger.print_default_output after 26.2 (one field per line,
    # names longer than 22 characters cut to "..." + the last 19).
    text = """\
+------------------------------------------------------------------------------+
| AMD-SMI            26.3.0+abcdef                                             |
| amdgpu Version:    6.16.13                                                   |
| ROCm Version:      7.2.0                                                     |
| Platform:          Linux Baremetal                                           |
|-------------------------------------+----------------------------------------|
| BDF                        GPU-Name | Mem-Uti   Temp   UEC       Power-Usage |
| GPU  HIP-ID  OAM-ID  Partition-Mode | GFX-Uti    Fan               Mem-Usage |
|=====================================+========================================|
| 0000:01:00.0 ...AMD Instinct MI300X | 0 %      35 °C   0           133/750 W |
|   0       0       0        SPX/NPS1 | 0 %        N/A          283/196592 MB |
|-------------------------------------+----------------------------------------|
| 0000:c5:00.0    AMD Radeon Graphics | N/A        N/A   0                 N/A |
|   1       1     N/A             N/A | N/A        N/A                    N/A |
+-------------------------------------+----------------------------------------+
"""
    gpus = parse_amdsmi_gpus(text)
    assert gpus == (
        SmiGpu(0, None, None, 196592 * MiB, 283 * MiB, None, None),
        SmiGpu(1, "AMD Radeon Graphics", None, None, None, None, None),
    )
    assert parse_amdsmi_version(text) == SmiVersions("amd-smi", "26.3.0", None, "7.2.0", "6.16.13")


def test_amdsmi_metric_mem_usage_text() -> None:
    # `amd-smi metric -m` on an APU, as pasted in ROCm/rocm-systems PR 1967.
    text = """\
GPU: 0
    MEM_USAGE:
        TOTAL_VRAM: 512 MB
        USED_VRAM: 489 MB
        FREE_VRAM: 23 MB
        TOTAL_VISIBLE_VRAM: 512 MB
        USED_VISIBLE_VRAM: 489 MB
        FREE_VISIBLE_VRAM: 23 MB
        TOTAL_GTT: 13649 MB
        USED_GTT: 964 MB
        FREE_GTT: 12685 MB
"""
    (gpu,) = parse_amdsmi_gpus(text)
    assert gpu == SmiGpu(
        0, None, None, 512 * MiB, 489 * MiB, 13649 * MiB, 964 * MiB, 512 * MiB, 489 * MiB
    )


MEM_USAGE = {
    "total_vram": {"value": 30576, "unit": "MB"},
    "used_vram": {"value": 20450, "unit": "MB"},
    "total_gtt": {"value": 32023, "unit": "MB"},
    "used_gtt": "N/A",
}


@pytest.mark.parametrize(
    "document",
    [
        [{"gpu": 0, "mem_usage": MEM_USAGE}],  # ROCm 6.x: a bare list
        {"gpu_data": [{"gpu": 0, "mem_usage": MEM_USAGE}]},  # later: {"gpu_data": [...]}
    ],
)
def test_amdsmi_metric_mem_usage_json(document: object) -> None:
    text = "WARNING: User is missing the following required groups: render, video.\n"
    text += json.dumps(document, indent=4)
    (gpu,) = parse_amdsmi_gpus(text)
    assert gpu == SmiGpu(0, None, None, 30576 * MiB, 20450 * MiB, 32023 * MiB, None)


def test_amdsmi_static_json() -> None:
    document = {
        "gpu_data": [
            {
                "gpu": 1,
                "asic": {"market_name": "AMD Instinct MI300A", "target_graphics_version": "gfx942"},
                "driver": {"name": "amdgpu", "version": "6.10.10"},
                "vram": {"type": "HBM", "size": {"value": 96434, "unit": "MB"}},
            },
            {"gpu": 0, "asic": {"market_name": "N/A"}, "vram": {"size": "8 GB"}},
        ]
    }
    text = json.dumps(document)
    assert parse_amdsmi_gpus(text) == (
        SmiGpu(0, None, None, 8 << 30, None, None, None),
        SmiGpu(1, "AMD Instinct MI300A", "gfx942", 96434 * MiB, None, None, None),
    )
    assert parse_amdsmi_version(text).driver_version == "6.10.10"


def test_amdsmi_json_error_object() -> None:
    # amdsmi_cli_exceptions: JSON errors are {"error", "code", "error_type"}.
    text = json.dumps(
        {
            "error": "AMD-SMI Command '--version' is invalid. Run 'amd-smi -h' for more info.",
            "code": 203,
            "error_type": "INVALID_SUBCOMMAND",
        }
    )
    assert smi_error(parse_amdsmi_gpus, text).code == "invalid-command"


def test_amdsmi_driver_not_loaded_still_prints_versions() -> None:
    # ROCm/amdsmi issue 172: amdgpu built into the kernel, amd-smi 26.1.0.
    text = """\
ERROR:root:Unable to get devices, driver not initialized (amdgpu not found in modules)
ERROR:root:Unable to detect any GPU devices, check amdgpu version and module status (sudo modprobe amdgpu)
ERROR:root:Unable to detect any CPU devices, check amd_hsmp (or) hsmp_acpi version and module status
AMDSMI Tool: 26.1.0+b5522cc8 | AMDSMI Library version: 26.1.0 | ROCm version: N/A
"""
    assert parse_amdsmi_version(text) == SmiVersions("amd-smi", "26.1.0", "26.1.0", None, None)
    error = smi_error(parse_amdsmi_gpus, text)
    assert error.code == "driver-not-initialized"
    assert error.line is not None and "driver not initialized" in error.line


def test_amdsmi_missing_groups() -> None:
    # ROCm/amdsmi issue 184 (ROCm 7.0 amd-smi run by a user outside render/video).
    text = (
        "RuntimeError: WARNING: User is missing the following required groups: render, video. "
        "Please add user to these groups.\n"
    )
    error = smi_error(parse_amdsmi_gpus, text)
    assert error.code == "permission-denied" and "usermod" in str(error)


# --------------------------------------------------------------------------- rocm-smi formats


def test_rocmsmi_concise_with_names() -> None:
    # ROCm 6.0-6.2 concise layout: a 20-character name row under each device.
    text = """\
========================================= ROCm System Management Interface =========================================
=================================================== Concise Info ===================================================
Device  [Model : Revision]    Temp        Power     Partitions      SCLK    MCLK    Fan  Perf  PwrCap  VRAM%  GPU%
        Name (20 chars)       (Junction)  (Socket)  (Mem, Compute)
====================================================================================================================
0       [0x74a1 : 0x00]       35.0°C      133.0W    NPS1, SPX       131Mhz  900Mhz  0%   auto  750.0W    0%   0%
        AMD Instinct MI300X
1       [0x744c : 0xc8]       35.0°C      33.0W     N/A, N/A        31Mhz   96Mhz   0%   auto  327.0W    0%   0%
        AMD Radeon RX 7900 X
====================================================================================================================
=============================================== End of ROCm SMI Log ================================================
"""
    gpus = parse_rocmsmi_gpus(text)
    assert [gpu.name for gpu in gpus] == ["AMD Instinct MI300X", None]  # 20 chars: maybe cut


def test_rocmsmi_meminfo_vram_gtt_and_product_lines() -> None:
    # `rocm-smi --showproductname --showmeminfo vram gtt`; older versions print the
    # memory type in lower case ("vram Total Memory (B)").
    text = """\
GPU[0]\t\t: Card Series: \t\tAMD Instinct MI300X OAM
GPU[0]\t\t: Card Model: \t\t0x74a1
GPU[0]\t\t: GFX Version: \t\tgfx942
GPU[0]\t\t: vram Total Memory (B): 206141652992
GPU[0]\t\t: vram Total Used Memory (B): 297771008
GPU[0]\t\t: GTT Total Memory (B): 270318108672
GPU[0]\t\t: GTT Total Used Memory (B): 17600512
"""
    (gpu,) = parse_rocmsmi_gpus(text)
    assert (gpu.index, gpu.name, gpu.gfx_target) == (0, "AMD Instinct MI300X OAM", "gfx942")
    assert (gpu.vram_total_bytes, gpu.vram_used_bytes) == (206141652992, 297771008)
    assert (gpu.gtt_total_bytes, gpu.gtt_used_bytes) == (270318108672, 17600512)


def test_rocmsmi_driver_version() -> None:
    # The header of `rocm-smi -a` (ROCm 4.1), and `rocm-smi --showdriverversion --json`.
    text = """\
======================= ROCm System Management Interface =======================
========================= Version of System Component ==========================
Driver version: 5.9.15
================================================================================
"""
    assert parse_rocmsmi_version(text) == SmiVersions("rocm-smi", None, None, None, "5.9.15")
    as_json = json.dumps({"system": {"Driver version": "6.16.13"}})
    assert parse_rocmsmi_version(as_json).driver_version == "6.16.13"


def test_rocmsmi_help_banner() -> None:
    # rocm-smi before 6.0 shows its version only in the `rocm-smi -h` banner.
    text = (
        "usage: rocm-smi [-h] [-d DEVICE [DEVICE ...]] [--alldevices] [--showhw] [-a] [-i] [-v]\n"
        "\n"
        "AMD ROCm System Management Interface | ROCM-SMI version: 1.4.1 | Kernel version: 6.1.0\n"
    )
    assert parse_rocmsmi_version(text) == SmiVersions("rocm-smi", "1.4.1", None, None, None)


def test_rocmsmi_bad_option() -> None:
    text = (
        "usage: rocm-smi [-h] [-d DEVICE [DEVICE ...]]\n"
        "rocm-smi: error: unrecognized arguments: --foo\n"
    )
    error = smi_error(parse_rocmsmi_gpus, text)
    assert error.code == "invalid-command" and "rocm-smi -h" in str(error)


@pytest.mark.parametrize("parse", PARSERS)
@pytest.mark.parametrize("text", ["", "\n\n", "hello world\n", "{}garbage", "[1, 2"])
def test_not_smi_output(parse: Callable[[str], object], text: str) -> None:
    error = smi_error(parse, text)
    assert error.code == "unrecognised"


# --------------------------------------------------------------------------- robustness


def parse_or_smi_error(parse: Callable[[str], object], text: str) -> None:
    """The contract: a well-formed result, or SmiError, never anything else."""
    try:
        result = parse(text)
    except SmiError as error:
        assert error.code and str(error)
        return
    if isinstance(result, SmiVersions):
        assert result.tool in ("amd-smi", "rocm-smi")
        return
    assert isinstance(result, tuple)
    indices = [gpu.index for gpu in result]
    assert indices == sorted(set(indices))
    for gpu in result:
        for value in (gpu.vram_total_bytes, gpu.vram_used_bytes):
            assert value is None or (isinstance(value, int) and value >= 0)
        for value in (gpu.gtt_total_bytes, gpu.gtt_used_bytes):
            assert value is None or (isinstance(value, int) and value >= 0)


SAMPLES = [(DATA / rel).read_bytes() for rel in sample_files()]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text())
def test_arbitrary_text(text: str) -> None:
    for parse in PARSERS:
        parse_or_smi_error(parse, text)


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["flip", "insert", "delete", "truncate"]),
        st.integers(min_value=0, max_value=1 << 16),
        st.binary(min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=6,
)


@FUZZ
@given(st.sampled_from(SAMPLES), EDITS)
def test_corrupted_samples(data: bytes, edits: list[tuple[str, int, bytes]]) -> None:
    corrupted = bytearray(data)
    for kind, position, chunk in edits:
        at = position % (len(corrupted) + 1)
        if kind == "flip":
            corrupted[at : at + len(chunk)] = chunk
        elif kind == "insert":
            corrupted[at:at] = chunk
        elif kind == "delete":
            del corrupted[at : at + len(chunk)]
        else:
            del corrupted[at:]
    text = corrupted.decode("utf-8", errors="replace")
    for parse in PARSERS:
        parse_or_smi_error(parse, text)


@FUZZ
@given(st.lists(st.sampled_from(SAMPLES), min_size=1, max_size=3), st.randoms())
def test_shuffled_sample_lines(chosen: list[bytes], rnd: random.Random) -> None:
    lines = [line for data in chosen for line in data.decode("utf-8").splitlines()]
    rnd.shuffle(lines)
    text = "\n".join(lines[: len(lines) // 2 + 1])
    for parse in PARSERS:
        parse_or_smi_error(parse, text)


# --------------------------------------------------------------------------- cut tables

CONCISE = sorted(p.name for p in (DATA / "rocmsmi").glob("rocm-smi-concise-*.txt"))
AMD_DEFAULT_2X = "amdsmi/amd-smi-default-2x-rx7900xtx-amdsmi26.2.2.txt"


def _indices_or_code(parse: Callable[[str], tuple[SmiGpu, ...]], text: str) -> object:
    try:
        return [gpu.index for gpu in parse(text)]
    except SmiError as exc:
        return exc.code


@pytest.mark.parametrize("name", CONCISE)
def test_a_concise_table_cut_anywhere_never_counts_part_of_its_gpus(name: str) -> None:
    # Every character cut of each real concise table (`head -5` of the 4x MI210 one
    # listed 2 GPUs; a row cut mid-way counted as a GPU): the whole list, or an error.
    text = read(f"rocmsmi/{name}")
    whole = [gpu.index for gpu in parse_rocmsmi_gpus(text)]
    for cut in range(len(text)):
        got = _indices_or_code(parse_rocmsmi_gpus, text[:cut])
        assert got == whole or got in ("incomplete", "unrecognised"), (cut, got)
    rows = [i for i, line in enumerate(text.splitlines()) if line[:1].isdigit()]
    end = text.splitlines()[rows[-1]]
    cut_row = "\n".join([*text.splitlines()[: rows[-1]], end[: len(end) // 3]])
    assert _indices_or_code(parse_rocmsmi_gpus, cut_row) == "incomplete"


@pytest.mark.parametrize("name", CONCISE)
def test_a_concise_table_that_lost_a_row_is_incomplete(name: str) -> None:
    lines = read(f"rocmsmi/{name}").splitlines()
    rows = [i for i, line in enumerate(lines) if line[:1].isdigit()]
    for row in rows[:-1]:  # the last row lost is an honest smaller table
        text = "\n".join(lines[:row] + lines[row + 1 :])
        with pytest.raises(SmiError) as info:
            parse_rocmsmi_gpus(text)
        assert info.value.code == "incomplete" and "missing from the list" in str(info.value)


def test_the_amd_smi_default_view_cut_anywhere_never_counts_part_of_its_gpus() -> None:
    # The 2x RX 7900 XTX box cut after GPU 0 listed 1 GPU.
    text = read(AMD_DEFAULT_2X)
    assert [gpu.index for gpu in parse_amdsmi_gpus(text)] == [0, 1]
    for cut in range(len(text)):
        got = _indices_or_code(parse_amdsmi_gpus, text[:cut])
        assert got in ([0, 1], "incomplete", "unrecognised"), (cut, got)
    lines = text.splitlines()
    after_gpu0 = next(i for i, line in enumerate(lines) if line.startswith("|   0 "))
    with pytest.raises(SmiError, match="closing"):
        parse_amdsmi_gpus("\n".join(lines[: after_gpu0 + 2]))
