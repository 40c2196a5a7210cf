"""Tests for the rocminfo parser against real recorded outputs (tests/realdata/rocminfo)."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_therock.rocminfo import Agent, Pool, RocminfoError, RocminfoReport, parse_rocminfo

DATA = Path(__file__).parent / "realdata" / "rocminfo"
KB = 1024

# Values read from the files (grep the file for each label to check).
GPU_SAMPLES: dict[str, dict[str, Any]] = {
    "gfx1151-strix-halo-rocm7.11-nightly-kfd6.16.6.txt": {
        "types": ("CPU", "GPU"),
        "targets": ("gfx1151",),
        "cu": 40,
        "marketing": "Radeon 8060S Graphics",
        "chip_id": 5510,
        "wavefront": 32,
        "vram_kb": 65507932,
        "kfd": "6.16.6",
        "runtime": "1.18",
        "wsl": False,
    },
    "gfx942-mi300a-4socket-apu-rocm6.3.1.txt": {
        "types": ("CPU",) * 4 + ("GPU",) * 4,
        "targets": ("gfx942",) * 4,
        "cu": 228,
        "marketing": "AMD Instinct MI300A",
        "chip_id": 29856,
        "wavefront": 64,
        "vram_kb": 98648060,
        "kfd": "6.10.5",
        "runtime": "1.14",
        "wsl": False,
    },
    "gfx90a-4x-mi210-2x-epyc7763-rocm5.7.1.txt": {
        "types": ("CPU", "CPU", "GPU", "GPU", "GPU", "GPU"),
        "targets": ("gfx90a",) * 4,
        "cu": 104,
        "marketing": "AMD Instinct MI210",
        "chip_id": 29711,
        "wavefront": 64,
        "vram_kb": 67092480,
        "kfd": None,
        "runtime": "1.1",
        "wsl": False,
    },
    "gfx1100-rx7900xtx-wsl2-rocm6.3.txt": {
        "types": ("CPU", "GPU"),
        "targets": ("gfx1100",),
        "cu": 96,
        "marketing": "AMD Radeon RX 7900 XTX",
        "chip_id": 29772,
        "wavefront": 32,
        "vram_kb": 25079976,
        "kfd": None,
        "runtime": "1.1",
        "wsl": True,
    },
    "gfx1102-rx7600xt-rocm6.3-kfd6.10.5-trademark-symbol.txt": {
        "types": ("CPU", "GPU"),
        "targets": ("gfx1102",),
        "cu": 32,
        "marketing": "AMD Radeon\u2122 RX 7600 XT",
        "chip_id": 29824,
        "wavefront": 32,
        "vram_kb": 16760832,
        "kfd": "6.10.5",
        "runtime": "1.14",
        "wsl": False,
    },
    "gfx1150-radeon890m-hx370-debian-kernel6.18-with-npu-agent.txt": {
        "types": ("CPU", "GPU", "DSP"),
        "targets": ("gfx1150",),
        "cu": 16,
        "marketing": "AMD Radeon Graphics",
        "chip_id": 5390,
        "wavefront": 32,
        "vram_kb": 12110900,
        "kfd": None,
        "runtime": "1.18",
        "wsl": False,
    },
    "gfx906-radeon-vii-fx9590-rocm5.6.txt": {
        "types": ("CPU", "GPU"),
        "targets": ("gfx906",),
        "cu": 60,
        "marketing": "AMD Radeon VII",
        "chip_id": 26287,
        "wavefront": 64,
        "vram_kb": 16760832,
        "kfd": None,
        "runtime": "1.1",
        "wsl": False,
    },
    # Mixed systems: "cu", "marketing", "chip_id", "vram_kb" give one value per GPU.
    "gfx1201-rx9070xt-plus-gfx1036-igpu-9950x-rocm7.0-kfd6.14.14.txt": {
        "types": ("CPU", "GPU", "GPU"),
        "targets": ("gfx1201", "gfx1036"),
        "cu": (64, 2),
        "marketing": ("AMD Radeon RX 9070 XT", "AMD Radeon Graphics"),
        "chip_id": (30032, 5056),
        "wavefront": 32,
        "vram_kb": (16695296, 64686176),
        "kfd": "6.14.14",
        "runtime": "1.18",
        "wsl": False,
    },
    "gfx1100-gfx1201-gfx1031-3-gpus-2x-epyc7453-rocm6.4.1-empty-uuid.txt": {
        "types": ("CPU", "CPU", "GPU", "GPU", "GPU"),
        "targets": ("gfx1100", "gfx1201", "gfx1031"),
        "cu": (96, 64, 40),
        "marketing": ("Radeon RX 7900 XTX", "AMD Radeon RX 9070 XT", "AMD Radeon RX 6700 XT"),
        "chip_id": (29772, 30032, 29663),
        "wavefront": 32,
        "vram_kb": (25149440, 16695296, 12566528),
        "kfd": "6.12.12",
        "runtime": "1.15",
        "wsl": False,
    },
    "gfx942-mi300x-vf-sriov-guest-xeon8568y-rocm7.2.4-kfd6.16.13.txt": {
        "types": ("CPU", "GPU"),
        "targets": ("gfx942",),
        "cu": 304,
        "marketing": "AMD Instinct MI300X VF",
        "chip_id": 29877,
        "wavefront": 64,
        "vram_kb": 200998912,
        "kfd": "6.16.13",
        "runtime": "1.18",
        "wsl": False,
    },
    "gfx1151-strix-halo-eng-sample-ubuntu22.04-rocm6.3.4-kfd6.10.5.txt": {
        "types": ("CPU", "GPU"),
        "targets": ("gfx1151",),
        "cu": 40,
        "marketing": "AMD Radeon Graphics",
        "chip_id": 5510,
        "wavefront": 32,
        "vram_kb": 65507864,
        "kfd": "6.10.5",
        "runtime": "1.14",
        "wsl": False,
    },
    # A Radeon 780M (Chip ID 0x15bf, natively gfx1103) that the runtime lists as gfx1102.
    "gfx1103-780m-chip-0x15bf-listed-as-gfx1102-override-rocm6.2.2-kfd6.8.5.txt": {
        "types": ("CPU", "GPU"),
        "targets": ("gfx1102",),
        "cu": 12,
        "marketing": "AMD Radeon Graphics",
        "chip_id": 0x15BF,
        "wavefront": 32,
        "vram_kb": 16073840,
        "kfd": "6.8.5",
        "runtime": "1.14",
        "wsl": False,
    },
}

# file -> (code, text the message must contain: the fix, and the tool's own line)
ERROR_SAMPLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "error-rock-not-loaded-azure-nv4as.txt": (
        "rock-not-loaded",
        ("sudo modprobe amdgpu", "dmesg | grep amdgpu", "ROCk module is NOT loaded"),
    ),
    "error-kfd-permission-denied-not-member-of-render-rocm5.x.txt": (
        "kfd-permission-denied",
        ("sudo usermod -aG render $USER", "log in again", "Permission denied"),
    ),
    "error-kfd-no-such-file-docker-without-device-kfd6.10.5.txt": (
        "kfd-missing",
        ("--device /dev/kfd --device /dev/dri", "No such file or directory"),
    ),
    # Debian's rocminfo 5.2.3 on a machine without GPU: libkmod noise, then a coloured line.
    "error-debian-rocminfo-5.2.3-2-no-gpu-container.txt": (
        "rock-not-loaded",
        ("sudo modprobe amdgpu", "ROCk module is NOT loaded"),
    ),
    "error-debian-rocminfo-5.2.3-2-support-no-gpu-container.txt": (
        "rock-not-loaded",
        ("sudo modprobe amdgpu", "ROCk module is NOT loaded"),
    ),
    # ENOMEM from KFD (unsupported Navi 14, "DID 7340 is missing in supported_devices" in
    # dmesg), then OUT_OF_RESOURCES: the first failure, the open of /dev/kfd, wins.
    "error-kfd-cannot-allocate-memory-navi14-unsupported-out-of-resources-rocm3.10.txt": (
        "kfd-no-gpu",
        ("not supported", "dmesg | grep -i kfd", "Cannot allocate memory"),
    ),
    "error-kfd-operation-not-permitted-lxc-container-root-in-render.txt": (
        "kfd-open-failed",
        ("--device /dev/kfd --device /dev/dri", "device cgroup", "Operation not permitted"),
    ),
    "error-wsl-rocr-unsupported-gpu-out-of-resources-rx7600xt-rocm6.2.3.txt": (
        "out-of-resources",
        ("HSA_OVERRIDE_GFX_VERSION", "Call returned HSA_STATUS_ERROR_OUT_OF_RESOURCES"),
    ),
    # ROCm 7.2: bare "HSA_STATUS_ERROR:" (no suffix), and agent creation failing.
    "error-hsa-status-error-generic-rx7800xt-plus-rx580-rocm7.2.0.txt": (
        "hsa-init-failed",
        ("dmesg | grep -i -e amdgpu -e kfd", "HSA_STATUS_ERROR: A generic error has occurred"),
    ),
    "error-agent-creation-failed-unrecognized-id-invalid-argument-rx9070xt-rocm7.2.1.txt": (
        "unsupported-gpu",
        ("does not know this GPU", "The GPU node has an unrecognized id"),
    ),
    # WSL: an assertion in libhsakmt's thunk_proxy, then the shell's "Aborted (core dumped)".
    "error-wsl-thunk-proxy-queryadapterinfo-assertion-rx7900xt-plus-gtx1080ti-rocm6.3.4.txt": (
        "wsl-driver-mismatch",
        ("Adrenalin", "ROCm for WSL", "wsl --shutdown", "QueryAdapterInfo", "Assertion"),
    ),
}


def read(name: str) -> str:
    return (DATA / name).read_bytes().decode("utf-8", errors="replace")


def parse_or_error(text: str) -> RocminfoReport | None:
    """The contract for any input: a report, or RocminfoError; nothing else."""
    try:
        return parse_rocminfo(text)
    except RocminfoError as exc:
        assert exc.code and str(exc)
        return None


def test_every_sample_file_is_checked() -> None:
    on_disk = {p.name for p in DATA.iterdir()}
    assert on_disk == set(GPU_SAMPLES) | set(ERROR_SAMPLES)
    assert not set(GPU_SAMPLES) & set(ERROR_SAMPLES)


def _per_gpu(value: Any, i: int) -> Any:
    """A table value is either shared by every GPU or a tuple with one entry per GPU."""
    return value[i] if isinstance(value, tuple) else value


@pytest.mark.parametrize("name", sorted(GPU_SAMPLES))
def test_gpu_sample(name: str) -> None:
    want = GPU_SAMPLES[name]
    report = parse_rocminfo(read(name))
    assert report.complete
    assert tuple(a.device_type for a in report.agents) == want["types"]
    assert tuple(g.gfx_target for g in report.gpus) == want["targets"]
    assert report.kfd_version == want["kfd"]
    assert report.runtime_version == want["runtime"] == report.system["Runtime Version"]
    assert report.wsl is want["wsl"]
    for i, gpu in enumerate(report.gpus):
        assert gpu.is_gpu and gpu.vendor_name == "AMD"
        assert gpu.compute_units == _per_gpu(want["cu"], i)
        assert gpu.marketing_name == _per_gpu(want["marketing"], i)
        assert gpu.chip_id == _per_gpu(want["chip_id"], i)
        assert gpu.wavefront_size == want["wavefront"]
        assert gpu.memory_bytes == _per_gpu(want["vram_kb"], i) * KB
        assert gpu.gfx_target is not None
        assert gpu.isa_names[0].startswith("amdgcn-amd-amdhsa--" + gpu.gfx_target)
        assert gpu.pools[0].segment == "GLOBAL" and gpu.pools[0].allocatable is True
        assert gpu.pools[-1] == Pool("GROUP", (), 64 * KB, False)
    for agent in report.agents:
        if not agent.is_gpu:
            assert agent.gfx_target is None
            assert agent.wavefront_size is None  # only kernel agents print it
    assert len({g.node for g in report.gpus}) == len(report.gpus)


def test_gfx1151_strix_halo_details() -> None:
    report = parse_rocminfo(read("gfx1151-strix-halo-rocm7.11-nightly-kfd6.16.6.txt"))
    cpu, gpu = report.agents
    assert cpu.name == cpu.marketing_name == "AMD RYZEN AI MAX+ 395 w/ Radeon 8060S"
    assert (cpu.uuid, cpu.node, cpu.compute_units, cpu.simds_per_cu) == ("CPU-XX", 0, 32, 0)
    assert [p.flags for p in cpu.pools] == [
        ("FINE GRAINED",),
        ("EXTENDED FINE GRAINED",),
        ("KERNARG", "FINE GRAINED"),
        ("COARSE GRAINED",),
    ]
    assert {p.size_bytes for p in cpu.pools} == {131015868 * KB}
    assert (gpu.name, gpu.uuid, gpu.node, gpu.bdfid, gpu.simds_per_cu) == (
        "gfx1151",
        "GPU-XX",
        1,
        62464,
        2,
    )
    assert gpu.isa_names == ("amdgcn-amd-amdhsa--gfx1151", "amdgcn-amd-amdhsa--gfx11-generic")
    assert [p.size_bytes for p in gpu.pools] == [65507932 * KB, 65507932 * KB, 64 * KB]
    assert report.system["VMM Support"] == "YES"
    assert report.system["XNACK enabled"] == "NO"


def test_mi210_empty_flag_list_and_features_in_isa_name() -> None:
    report = parse_rocminfo(read("gfx90a-4x-mi210-2x-epyc7763-rocm5.7.1.txt"))
    gpu = report.gpus[0]
    assert gpu.pools[1].segment == "GLOBAL" and gpu.pools[1].flags == ()
    assert gpu.pools[1].size_bytes == 67092480 * KB
    assert gpu.isa_names == ("amdgcn-amd-amdhsa--gfx90a:sramecc+:xnack-",)
    assert [g.uuid for g in report.gpus] == [
        "GPU-74e9455f63e4f48f",
        "GPU-6de8c605c2212805",
        "GPU-600c883acb6a35a8",
        "GPU-850e4e3c316d4738",
    ]
    assert [len(a.pools) for a in report.agents] == [3, 3, 3, 3, 3, 3]


def test_mi300a_apu_agents() -> None:
    report = parse_rocminfo(read("gfx942-mi300a-4socket-apu-rocm6.3.1.txt"))
    assert [a.name for a in report.agents[:4]] == ["AMD Instinct MI300A Accelerator"] * 4
    assert [g.bdfid for g in report.gpus] == [256, 16640, 33024, 49408]
    assert report.gpus[0].isa_names == ("amdgcn-amd-amdhsa--gfx942:sramecc+:xnack-",)
    assert "XNACK enabled" not in report.system  # ROCm 6.3 header has no such line


def test_wsl_missing_fields_are_none() -> None:
    report = parse_rocminfo(read("gfx1100-rx7900xtx-wsl2-rocm6.3.txt"))
    gpu = report.gpus[0]
    assert report.wsl and report.kfd_version is None
    assert gpu.uuid is None and gpu.bdfid is None
    assert report.agents[0].uuid == "CPU-XX" and report.agents[0].bdfid is None


def test_rdna4_dgpu_with_rdna2_igpu() -> None:
    report = parse_rocminfo(read("gfx1201-rx9070xt-plus-gfx1036-igpu-9950x-rocm7.0-kfd6.14.14.txt"))
    dgpu, igpu = report.gpus
    assert dgpu.isa_names == ("amdgcn-amd-amdhsa--gfx1201", "amdgcn-amd-amdhsa--gfx12-generic")
    assert igpu.isa_names == ("amdgcn-amd-amdhsa--gfx1036", "amdgcn-amd-amdhsa--gfx10-3-generic")
    assert (dgpu.uuid, dgpu.bdfid, dgpu.node) == ("GPU-2b09110b94528d60", 768, 1)
    assert (igpu.uuid, igpu.bdfid, igpu.node) == ("GPU-XX", 30208, 2)
    assert igpu.is_apu and igpu.memory_properties == ("APU",)
    assert not dgpu.is_apu and dgpu.memory_properties == ()
    # the discrete card has one GLOBAL pool only (no EXTENDED FINE GRAINED pool)
    assert [p.segment for p in dgpu.pools] == ["GLOBAL", "GROUP"]
    assert [p.flags for p in igpu.pools[:2]] == [("COARSE GRAINED",), ("EXTENDED FINE GRAINED",)]
    assert report.agents[0].name == "AMD Ryzen 9 9950X 16-Core Processor"
    assert {p.size_bytes for p in report.agents[0].pools} == {129372352 * KB}


def test_empty_uuid_lines_and_three_generations() -> None:
    report = parse_rocminfo(
        read("gfx1100-gfx1201-gfx1031-3-gpus-2x-epyc7453-rocm6.4.1-empty-uuid.txt")
    )
    rdna3, rdna4, rdna2 = report.gpus
    # ROCm 6.4.1 printed "Uuid:" with no value for two of the three cards
    assert not rdna3.uuid and not rdna4.uuid
    assert rdna2.uuid == "GPU-XX"
    assert [g.node for g in report.gpus] == [2, 3, 4]
    assert [g.bdfid for g in report.gpus] == [25344, 49920, 41728]
    assert rdna2.isa_names[1] == "amdgcn-amd-amdhsa--gfx10-3-generic"
    assert [a.node for a in report.agents[:2]] == [0, 1]
    assert [a.pools[0].size_bytes for a in report.agents[:2]] == [131879616 * KB, 132048500 * KB]


def test_mi300x_vf_generic_isa_with_features() -> None:
    report = parse_rocminfo(read("gfx942-mi300x-vf-sriov-guest-xeon8568y-rocm7.2.4-kfd6.16.13.txt"))
    gpu = report.gpus[0]
    assert gpu.isa_names == (
        "amdgcn-amd-amdhsa--gfx942:sramecc+:xnack-",
        "amdgcn-amd-amdhsa--gfx9-4-generic:sramecc+:xnack-",
    )
    assert (gpu.uuid, gpu.bdfid, gpu.simds_per_cu) == ("GPU-43529fe3ce00c724", 33536, 4)
    assert [p.flags for p in gpu.pools] == [
        ("COARSE GRAINED",),
        ("EXTENDED FINE GRAINED",),
        ("FINE GRAINED",),
        (),
    ]
    assert report.agents[0].name == "INTEL(R) XEON(R) PLATINUM 8568Y+"
    assert report.system["VMM Support"] == "YES"


def test_npu_dsp_agent_is_not_a_gpu() -> None:
    report = parse_rocminfo(read("gfx1150-radeon890m-hx370-debian-kernel6.18-with-npu-agent.txt"))
    npu = report.agents[2]
    assert (npu.name, npu.marketing_name, npu.device_type) == ("aie2", "AIE-ML", "DSP")
    assert not npu.is_gpu and npu.gfx_target is None and npu.isa_names == ()
    assert npu.pools[0].flags == ("KERNARG", "COARSE GRAINED")
    assert len(report.gpus) == 1


@pytest.mark.parametrize("name", sorted(ERROR_SAMPLES))
def test_error_sample(name: str) -> None:
    code, needles = ERROR_SAMPLES[name]
    with pytest.raises(RocminfoError) as info:
        parse_rocminfo(read(name))
    assert info.value.code == code
    assert isinstance(info.value, ValueError)
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.parametrize(
    ("text", "code", "needle"),
    [
        pytest.param(
            "\x1b[37mROCk module version 6.10.5 is loaded\x1b[0m\n"
            "\x1b[31mhsa api call failure at: /src/rocminfo/rocminfo.cc:1282\n"
            "\x1b[31mCall returned HSA_STATUS_ERROR_OUT_OF_RESOURCES: The runtime failed to "
            "allocate the necessary resources.\n\x1b[0m",
            "out-of-resources",
            "'Call returned HSA_STATUS_ERROR_OUT_OF_RESOURCES",
            id="ansi-out-of-resources",
        ),
        pytest.param(
            "hsa api call failure at line 900, file: /w/rocminfo.cc. Call returned 4104\n",
            "out-of-resources",
            "HIP runtime initialisation failed",
            id="rocm1.9-numeric-status",
        ),
        pytest.param(
            "ROCk module is loaded\nhsa api call failure at: rocminfo.cc:1148\n"
            "Call returned HSA_STATUS_ERROR_INVALID_ARGUMENT: One of the actual arguments\n",
            "hsa-init-failed",
            "HSA_STATUS_ERROR_INVALID_ARGUMENT",
            id="other-hsa-status",
        ),
        pytest.param(
            "\x1b[31mROCk module is NOT live, possibly no GPU devices\x1b[0m\n",
            "rock-not-live",
            "dmesg",
            id="not-live",
        ),
        pytest.param(
            "ROCk module is loaded\nUnable to open /dev/kfd read-write: Permission denied\n"
            'me is not member of "video" group, the default DRM access group.\n',
            "kfd-permission-denied",
            "usermod -aG video",
            id="group-named-by-rocminfo",
        ),
        pytest.param(
            "ROCk module is loaded\nUnable to open /dev/kfd read-write: Operation not permitted\n",
            "kfd-open-failed",
            "--device /dev/kfd",
            id="eperm-in-container",
        ),
        pytest.param(
            "ROCk module is loaded\nSegmentation fault (core dumped)\n",
            "crashed",
            "Segmentation fault",
            id="segfault",
        ),
        pytest.param("", "empty", "printed nothing", id="empty"),
        pytest.param(" \n=====\n", "empty", "printed nothing", id="blank"),
        pytest.param("bash: rocminfo: command not found\n", "unrecognised", "command", id="junk"),
        pytest.param(
            "ROCk module is loaded\n=====================\nHSA System Attributes\n"
            "=====================\nRuntime Version:         1.1\nHSA Agents\n*** Done ***\n",
            "no-agents",
            "Runtime Version",
            id="header-only",
        ),
    ],
)
def test_failure_texts(text: str, code: str, needle: str) -> None:
    with pytest.raises(RocminfoError) as info:
        parse_rocminfo(text)
    assert info.value.code == code
    assert needle in str(info.value)
    assert "\x1b" not in str(info.value)


def test_error_pickles_with_its_code() -> None:
    error = RocminfoError("kfd-missing", "message")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.code, str(copy)) == ("kfd-missing", "message")


def test_report_is_hashable_and_system_read_only() -> None:
    report = parse_rocminfo(read("gfx906-radeon-vii-fx9590-rocm5.6.txt"))
    assert hash(report) == hash(parse_rocminfo(read("gfx906-radeon-vii-fx9590-rocm5.6.txt")))
    with pytest.raises(TypeError):
        report.system["Runtime Version"] = "9.9"  # type: ignore[index]


def _agents(text: str) -> tuple[Agent, ...]:
    return parse_rocminfo(text).agents


@pytest.mark.parametrize("name", sorted(GPU_SAMPLES))
@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: t.replace("\n", "\r\n"), id="crlf"),
        pytest.param(
            lambda t: "".join(f"\x1b[37m{line}\x1b[0m\n" for line in t.splitlines()), id="ansi"
        ),
        pytest.param(
            lambda t: "\n".join(" ".join(line.split()) for line in t.splitlines()),
            id="lost-padding-and-indent",
        ),
        pytest.param(lambda t: re.sub(r"(?m)^(\*{7}|Agent \d+) *\n", "", t), id="no-agent-headers"),
        pytest.param(lambda t: re.sub(r"(?m)^ *(ISA|Pool) \d+ *\n", "", t), id="no-numbered-lines"),
        pytest.param(lambda t: "libdrm: amdgpu.ids: No such file or directory\n" + t, id="stderr"),
        # ROCm 1.x printed plain numbers and "65916544KB" (no hex, no space before KB)
        pytest.param(lambda t: re.sub(r"\(0x[0-9a-f]+\) ?", "", t), id="no-hex"),
    ],
)
def test_layout_variants_parse_the_same(name: str, mangle: Any) -> None:
    text = read(name)
    assert _agents(mangle(text)) == _agents(text)


def test_empty_cpu_name() -> None:
    text = read("gfx906-radeon-vii-fx9590-rocm5.6.txt")
    text = text.replace(
        "  Name:                    AMD FX(tm)-9590 Eight-Core Processor", "  Name:"
    )
    report = parse_rocminfo(text)
    assert report.agents[0].name == "" and report.agents[0].device_type == "CPU"
    assert [g.gfx_target for g in report.gpus] == ["gfx906"]


def test_unparsable_numbers_become_none() -> None:
    text = read("gfx906-radeon-vii-fx9590-rocm5.6.txt")
    text = text.replace("Compute Unit:            60", "Compute Unit:            sixty")
    text = text.replace("16760832(0xffc000) KB", "lots")
    text = text.replace("Chip ID:                 26287(0x66af)", "Chip ID: " + "9" * 5000)
    gpu = parse_rocminfo(text).gpus[0]
    assert gpu.compute_units is None and gpu.chip_id is None
    assert gpu.memory_bytes is None and gpu.pools[0].size_bytes is None


def test_gfx_target_falls_back_to_agent_name() -> None:
    text = read("gfx1151-strix-halo-rocm7.11-nightly-kfd6.16.6.txt")
    text = re.sub(r"(?m)^ *Name: +amdgcn-amd-amdhsa--gfx1151 *\n", "", text)
    gpu = parse_rocminfo(text).gpus[0]
    assert gpu.isa_names == ("amdgcn-amd-amdhsa--gfx11-generic",)
    assert gpu.gfx_target == "gfx1151"


def test_output_without_done_keeps_listed_agents() -> None:
    lines = read("gfx90a-4x-mi210-2x-epyc7763-rocm5.7.1.txt").splitlines()
    full = parse_rocminfo("\n".join(lines))
    no_done = parse_rocminfo("\n".join(lines[:-1]))
    assert not no_done.complete and no_done.agents == full.agents
    # cut inside the last GPU's pools: that GPU is dropped, the others stay
    cut = max(i for i, line in enumerate(lines) if "Pool 2" in line)
    partial = parse_rocminfo("\n".join(lines[:cut]))
    assert partial.agents == full.agents[:-1]


@pytest.mark.parametrize("name", sorted(GPU_SAMPLES))
def test_every_line_truncation(name: str) -> None:
    lines = read(name).splitlines(keepends=True)
    full = parse_rocminfo("".join(lines))
    for end in range(len(lines) + 1):
        report = parse_or_error("".join(lines[:end]))
        if report is not None and report.agents:
            n = len(report.agents)
            assert report.agents[:-1] == full.agents[: n - 1]
            last = report.agents[-1]
            assert (last.name, last.device_type, last.pools) == (
                full.agents[n - 1].name,
                full.agents[n - 1].device_type,
                full.agents[n - 1].pools,
            )
    # any cut with a whole first agent parses
    assert parse_or_error("".join(lines[: len(lines) - 1])) is not None
    # any cut with none, too: a report with no agents that says it is incomplete
    for end in range(1, len(lines)):
        report = parse_or_error("".join(lines[:end]))
        if "".join(lines[:end]).strip():
            assert report is not None and not report.complete, end


@given(st.text())
def test_any_text_raises_only_rocminfo_error(text: str) -> None:
    parse_or_error(text)


_ALL_LINES = sorted({line for name in GPU_SAMPLES for line in read(name).splitlines()})


@given(st.lists(st.sampled_from(_ALL_LINES) | st.text(max_size=40), max_size=80))
def test_shuffled_real_lines(lines: list[str]) -> None:
    parse_or_error("\n".join(lines))


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(GPU_SAMPLES) + sorted(ERROR_SAMPLES)),
    st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(-1, 255)), max_size=30),
)
def test_byte_corruption(name: str, edits: list[tuple[float, int]]) -> None:
    data = bytearray((DATA / name).read_bytes())
    for where, byte in edits:
        at = int(where * len(data)) if data else 0
        if byte < 0:
            del data[at : at + 1]  # drop a byte
        elif data:
            data[at] = byte
    parse_or_error(data.decode("utf-8", errors="replace"))


# --------------------------------------------------------------------------- WSL crashes


def test_wsl_thunk_crash_quotes_the_assertion_not_the_shell() -> None:
    name = "error-wsl-thunk-proxy-queryadapterinfo-assertion-rx7900xt-plus-gtx1080ti-rocm6.3.4.txt"
    with pytest.raises(RocminfoError) as info:
        parse_rocminfo(read(name))
    message = str(info.value)
    assert "thunk_proxy.cpp:111" in message and "Aborted" not in message
    assert "sudo dmesg" not in message and "modprobe" not in message  # no Linux driver advice


@pytest.mark.parametrize(
    "lines",
    [
        # the same assertion at line 113 (ROCm/ROCm#4460)
        [
            "WSL environment detected.",
            "rocminfo: ./sources/wsl/libhsakmt/src/thunk_proxy/"
            "thunk_proxy.cpp:113: void thunk_proxy::QueryAdapterInfo(D3DKMT_HANDLE, "
            "ATIADAPTERINFO*): Assertion `ret == STATUS_SUCCESS' failed.",
        ],
        # the WSL thunk's other assertion, as quoted in microsoft/WSL#40464 (ROCm 7.2)
        [
            "WSL environment detected.",
            "Assertion `props.EngineId.ui32.Major && "
            '"HSA_OVERRIDE_GFX_VERSION may be needed"\' failed.',
        ],
    ],
)
def test_wsl_thunk_crash_variants(lines: list[str]) -> None:
    with pytest.raises(RocminfoError) as info:
        parse_rocminfo("\n".join(lines) + "\nAborted (core dumped)\n")
    assert info.value.code == "wsl-driver-mismatch"
    assert "Assertion" in str(info.value)


def test_a_linux_assertion_is_a_crash_quoting_the_assertion() -> None:
    text = "ROCk module is loaded\nrocminfo: foo.cpp:1: int f(): Assertion `x' failed.\nAborted\n"
    with pytest.raises(RocminfoError) as info:
        parse_rocminfo(text)
    assert info.value.code == "crashed" and "Assertion `x' failed" in str(info.value)


# --------------------------------------------------------------------------- cut outputs

MULTI_GPU = "gfx942-mi300a-4socket-apu-rocm6.3.1.txt"  # 4 CPU agents, then 4 GPU agents


def test_whole_samples_are_complete() -> None:
    for name in GPU_SAMPLES:
        report = parse_rocminfo(read(name))
        assert report.complete and report.missing == () and report.incomplete_reason() is None


@pytest.mark.parametrize("name", [MULTI_GPU, "gfx90a-4x-mi210-2x-epyc7763-rocm5.7.1.txt"])
def test_every_cut_of_a_multi_gpu_output_says_it_is_incomplete(name: str) -> None:
    # Cut at every line boundary, from the end and from the start: whatever parses is
    # either the whole output or says what it is missing; never a complete short count.
    lines = read(name).splitlines(keepends=True)
    whole = parse_rocminfo("".join(lines))
    for cut in range(1, len(lines)):
        for part, side in (("".join(lines[:cut]), "end"), ("".join(lines[cut:]), "beginning")):
            report = parse_or_error(part)
            if report is None:
                continue
            if report.complete:  # only the blank/padding lines around the output were cut
                assert report.gpus == whole.gpus, (side, cut)
                continue
            assert any(m.startswith(f"its {side}") for m in report.missing), (side, cut)
            reason = report.incomplete_reason()
            assert reason is not None and "incomplete" in reason
            assert f"lists {len(report.gpus)} GPU agent(s)" in reason


def test_a_paste_missing_agents_in_the_middle_says_which() -> None:
    lines = read(MULTI_GPU).splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip().startswith("Agent ")]
    cut = lines[: starts[5] - 1] + lines[starts[7] - 1 :]  # drop agents 6 and 7
    report = parse_rocminfo("\n".join(cut))
    assert report.missing == ("agents 6 to 7",)
    assert len(report.gpus) == 2


def test_a_paste_starting_at_the_agents_banner_is_whole() -> None:
    lines = read(MULTI_GPU).splitlines()
    start = lines.index(next(line for line in lines if line.strip() == "HSA Agents"))
    report = parse_rocminfo("\n".join(lines[start:]))
    assert report.complete and len(report.gpus) == 4 and report.runtime_version is None


def test_an_agent_number_too_long_for_int_is_no_traceback() -> None:
    lines = read(MULTI_GPU).splitlines()
    lines[lines.index(next(ln for ln in lines if ln.strip() == "Agent 2"))] = "Agent " + "9" * 5000
    report = parse_rocminfo("\n".join(lines))
    assert not report.complete and len(report.missing) <= 4


@pytest.mark.parametrize("text", ["bash: rocminfo: command not found\nSize: 3", "Name: foo\n"])
def test_one_label_line_of_other_text_is_not_a_cut_rocminfo_output(text: str) -> None:
    """ "Name:" or "Size:" can be anybody's: such text is not called an incomplete
    rocminfo output (whose advice is to run rocminfo again and keep all of it)."""
    with pytest.raises(RocminfoError) as raised:
        parse_rocminfo(text)
    assert raised.value.code == "unrecognised"
