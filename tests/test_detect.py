"""Detection from roots assembled out of real sysfs captures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import REALDATA, RootBuilder, real

from pytest_therock.detect import detect
from pytest_therock.environment import Environment, fmt_bytes
from pytest_therock.memory import DEFAULT_SOURCE, gtt_info
from pytest_therock.parsing import gfx_target_name, parse_cmdline, parse_int, parse_properties
from pytest_therock.sysroot import Root


@pytest.mark.parametrize(
    ("version", "target"),
    [
        (110501, "gfx1151"),
        (90010, "gfx90a"),
        (90402, "gfx942"),
        (110000, "gfx1100"),
        (90012, "gfx90c"),
    ],
)
def test_gfx_target_version_decodes_like_rocm_agent_enumerator(version: int, target: str) -> None:
    assert gfx_target_name(version) == target


@pytest.mark.parametrize("version", [0, 91600, 101017])
def test_impossible_gfx_target_version_is_none(version: int) -> None:
    assert gfx_target_name(version) is None


def test_real_properties_file_parses_every_key() -> None:
    props = parse_properties(real("sysfs/kfd-topology-mi210-node2-properties.txt"))
    assert props["gfx_target_version"] == 90010
    assert props["simd_count"] // props["simd_per_cu"] == 104
    assert props["hive_id"] == 12609507387757274807  # 64-bit values survive


def test_half_written_properties_keep_what_is_complete() -> None:
    text = real("sysfs/kfd-topology-mi210-node2-properties.txt")
    props = parse_properties(text[: text.index("vendor_id") + 7])
    assert props["gfx_target_version"] == 90010
    assert "vendor_id" not in props


@pytest.mark.parametrize(
    ("sample", "value"),
    [
        ("gfx1151-strix-halo-128G-ttm96G-card1-mem_info_gtt_total.txt", 96 << 30),
        ("gfx1151-strix-halo-128G-uma512M-card1-mem_info_vram_total.txt", 4 << 30),
        ("ttm-parameters-pages_limit-default-superm1.txt", 3052026),
    ],
)
def test_real_sysfs_numbers(sample: str, value: int) -> None:
    assert parse_int(real(f"sysfs/{sample}")) == value


@pytest.mark.parametrize("text", ["", "lots\n", "-1", "12 34", "٣"])
def test_malformed_number_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="expected a number"):
        parse_int(text)


def test_real_cmdlines() -> None:
    arch = parse_cmdline(
        real("cmdline/gfx1103-780m-arch-xanmod-proc-cmdline-gttsize-ttm-pages-limit.txt")
    )
    assert arch["amdgpu.gttsize"] == "24576"
    assert arch["ttm.pages_limit"] == "6291456"
    dmesg_line = real("cmdline/gfx1151-strix-halo-ubuntu-oem-ttm-amdttm-pages-limit-dmesg-head.txt")
    line = next(ln for ln in dmesg_line.splitlines() if "Command line:" in ln)
    params = parse_cmdline(line.split("Command line: ", 1)[1])
    assert params["amdttm.pages_limit"] == params["ttm.pages_limit"] == "32768000"


def test_unbalanced_quote_in_cmdline_does_not_raise() -> None:
    assert parse_cmdline('quiet amdgpu.gttsize=1 foo="bar')["amdgpu.gttsize"] == "1"


@pytest.mark.parametrize(
    ("capture", "count", "target", "cus"),
    [
        ("topo-mi210-xgmi-pcie", 8, "gfx90a", 104),
        ("topo-mi300-cpx", 63, "gfx942", 38),
        ("topology-parsing-mi308", 32, "gfx942", 20),
        ("topology-parsing", 2, None, 64),
    ],
)
def test_real_topologies(capture: str, count: int, target: str | None, cus: int) -> None:
    env = detect(Root(REALDATA / "kfd-topology" / capture), {})
    assert len(env.gpus) == count
    assert {g.gfx_target for g in env.gpus} == {target}
    assert env.gpus[0].compute_units == cus
    assert not any(g.is_apu for g in env.gpus)


def test_a_real_apu_topology_and_its_meminfo() -> None:
    # Krackan Point (gfx1152) laptop: the GPU node's memory bank is TTM's limit (GTT),
    # half of the RAM that psutil reads from the capture's /proc/meminfo.
    env = detect(Root(REALDATA / "kfd-topology" / "lenovo-p16s-gfx1152"), {})
    (gpu,) = env.gpus
    assert (gpu.gfx_target, gpu.compute_units, gpu.is_apu) == ("gfx1152", 8, True)
    assert gpu.kfd_memory_bytes == 46206824448
    assert gpu.vram_total_bytes is gpu.gtt_total_bytes is None
    assert gpu.uuid is None  # an APU reports unique_id 0
    assert env.system_memory_bytes == 90247708 * 1024
    info = gtt_info(env, gpu)
    assert info.limit_source == DEFAULT_SOURCE
    assert (info.pool, info.allocatable_bytes) == ("GTT", 46206824448)


def test_vram_from_kfd_memory_banks_when_drm_is_absent() -> None:
    env = detect(Root(REALDATA / "kfd-topology" / "topology-parsing-mi308"), {})
    assert env.gpus[0].vram_total_bytes == 51539607552


def test_cpu_nodes_are_not_gpus(root: RootBuilder) -> None:
    root.node(0, "kfd-topology-mi308x-host-cpu-node0-properties.txt")
    root.node(1, "kfd-topology-vega10-2018-node0-cpu-properties.txt")
    assert detect(Root(root.path), {}).gpus == ()


def test_drm_memory_is_matched_to_its_gpu_by_pci_slot(root: RootBuilder) -> None:
    root.node(0, "kfd-topology-mi308x-host-cpu-node0-properties.txt")
    root.node(1, "kfd-topology-mi210-node2-properties.txt")  # location_id 25344: 63:00.0
    root.card(
        "card0",
        "0000:03:00.0",
        mem_info_vram_total="rx570-polaris-amdgpu21.10-card1-mem_info_vram_total.txt",
    )
    root.card(
        "card1",
        "0000:63:00.0",
        mem_info_gtt_total="gfx1151-strix-halo-128G-ttm96G-card1-mem_info_gtt_total.txt",
    )
    gpu = detect(Root(root.path), {}).gpus[0]
    assert gpu.pci_slot == "0000:63:00.0"
    assert gpu.card == "card1"
    assert gpu.gtt_total_bytes == 96 << 30


def test_mi300a_is_an_apu_and_mi300x_is_not(root: RootBuilder) -> None:
    root.node(1, "kfd-topology-mi300x-cpx-partition-node2-properties.txt")
    assert not detect(Root(root.path), {}).gpus[0].is_apu


def test_unreadable_and_malformed_sources_become_problems(root: RootBuilder) -> None:
    root.node(1, "kfd-topology-mi210-node2-properties.txt")
    (root.path / "sys/class/kfd/kfd/topology/nodes/2/properties").mkdir(parents=True)
    root.write("sys/class/kfd/kfd/topology/nodes/3/properties", "gfx_target_version 90010\n")
    root.card("card1", "0000:63:00.0")
    root.write("sys/class/drm/card1/device/mem_info_gtt_total", "\x00\xff garbage")
    root.write("sys/module/ttm/parameters/pages_limit", "")
    env = detect(Root(root.path), {})
    assert [g.node_id for g in env.gpus] == [1]
    reasons = {p.source: p.reason for p in env.problems}
    assert (
        reasons["sys/class/kfd/kfd/topology/nodes/2/properties"]
        == "is a directory, expected a file"
    )
    assert "half-written" in reasons["sys/class/kfd/kfd/topology/nodes/3/properties"]
    assert "expected a number" in reasons["sys/class/drm/card1/device/mem_info_gtt_total"]
    assert env.gpus[0].gtt_total_bytes is None


def test_symlink_loop_is_a_problem_not_a_crash(root: RootBuilder) -> None:
    root.node(1, "kfd-topology-mi210-node2-properties.txt")
    loop = root.path / "proc/cmdline"
    loop.parent.mkdir(parents=True)
    loop.symlink_to(loop)
    env = detect(Root(root.path), {})
    assert any(p.reason == "symlink loop" for p in env.problems)


def test_kernel_params_from_sysfs_win_over_the_command_line(root: RootBuilder) -> None:
    root.write(
        "proc/cmdline",
        real("cmdline/gfx1103-780m-arch-xanmod-proc-cmdline-gttsize-ttm-pages-limit.txt"),
    )
    root.param("ttm", "pages_limit", real("sysfs/ttm-parameters-pages_limit-default-superm1.txt"))
    env = detect(Root(root.path), {})
    assert env.param("ttm.pages_limit") is not None
    assert env.param("ttm.pages_limit").value == "3052026"  # type: ignore[union-attr]
    assert env.param("amdgpu.gttsize").origin == "cmdline"  # type: ignore[union-attr]
    assert env.ttm_module == "ttm"


def test_visibility_variables_select_gpus() -> None:
    topo = REALDATA / "kfd-topology" / "topo-mi210-xgmi-pcie"
    env = detect(
        Root(topo), {"ROCR_VISIBLE_DEVICES": "1,3,5", "HIP_VISIBLE_DEVICES": "2", "PATH": "/x"}
    )
    assert env.env_vars == {"ROCR_VISIBLE_DEVICES": "1,3,5", "HIP_VISIBLE_DEVICES": "2"}
    assert [g.node_id for g in env.visible_gpus] == [env.gpus[5].node_id]
    hidden = detect(Root(topo), {"HIP_VISIBLE_DEVICES": ""})
    assert hidden.visible_gpus == ()
    by_uuid = detect(Root(topo), {"ROCR_VISIBLE_DEVICES": env.gpus[2].uuid or ""})
    assert by_uuid.visible_gpus == (env.gpus[2],)


def test_environment_round_trips_through_json(root: RootBuilder) -> None:
    root.topology("topology-parsing-mi308").kfd("r")
    root.write(
        "proc/cmdline",
        real("cmdline/gfx1103-780m-arch-xanmod-proc-cmdline-gttsize-ttm-pages-limit.txt"),
    )
    env = detect(Root(root.path), {"HIP_VISIBLE_DEVICES": "0"})
    again = Environment.from_json(env.to_json())
    assert again == env
    assert again.kfd.readable and not again.kfd.writable


def test_live_root_of_this_machine() -> None:
    env = detect(Root(Path("/")))
    assert env.kfd.present == os.path.exists("/dev/kfd")
    assert env.system_memory_bytes is None or env.system_memory_bytes > 0
    assert Environment.from_json(env.to_json()) == env


SYSFS_SAMPLES = {
    # file -> what the plugin reads from it
    "kfd-topology-mi210-node2-properties.txt": ("gfx_target_version", 90010),
    "kfd-topology-gfx1152-krackan-thinkpad-p16s-node1-properties.txt": (
        "gfx_target_version",
        110502,
    ),
    "kfd-topology-mi300x-cpx-partition-node2-properties.txt": ("simd_count", 152),
    "kfd-topology-mi308x-node2-properties.txt": ("device_id", 0x74A2),
    "kfd-topology-mi308x-host-cpu-node0-properties.txt": ("cpu_cores_count", 112),
    "kfd-topology-vega10-2018-node0-cpu-properties.txt": ("cpu_cores_count", 20),
    "kfd-topology-vega10-2018-node1-properties-no-gfx-target-version.txt": ("simd_count", 256),
    "kfd-topology-vega10-2018-node1-mem_banks-0-properties.txt": ("size_in_bytes", 17163091968),
    "rx570-polaris-amdgpu21.10-card1-mem_info_gtt_total.txt": (None, 4 << 30),
    "rx570-polaris-amdgpu21.10-card1-mem_info_vram_total.txt": (None, 4 << 30),
    "gfx1151-strix-halo-128G-ttm96G-card1-mem_info_gtt_total.txt": (None, 96 << 30),
    "gfx1151-strix-halo-128G-uma512M-card1-mem_info_vram_total.txt": (None, 4 << 30),
    "ttm-parameters-pages_limit-default-superm1.txt": (None, 3052026),
    "gfx1151-strix-halo-beelink-gtr9-card-mem_info_gtt_total.txt": (None, 128 << 30),
    "gfx1151-strix-halo-beelink-gtr9-card-mem_info_vram_total.txt": (None, 512 << 20),
    "gfx1151-strix-halo-framework-96G-carveout-card-mem_info_vram_total.txt": (None, 96 << 30),
}


@pytest.mark.parametrize("sample", sorted(p.name for p in (REALDATA / "sysfs").iterdir()))
def test_every_sysfs_sample(sample: str) -> None:
    text = real(f"sysfs/{sample}")
    if sample.startswith("amd-ttm-tool-output"):
        # Not a sysfs file: amd-ttm's report of ttm.pages_limit. Its pages and GiB agree
        # with the plugin's reading of the same number.
        pages = int(text.split("limit: ")[1].split()[0])
        assert fmt_bytes(pages * 4096) == "120 GiB"
        return
    key, value = SYSFS_SAMPLES[sample]
    assert (parse_properties(text)[key] if key else parse_int(text)) == value


@pytest.mark.parametrize("sample", sorted(p.name for p in (REALDATA / "cmdline").iterdir()))
def test_every_cmdline_sample(sample: str, root: RootBuilder) -> None:
    text = real(f"cmdline/{sample}")
    if "dmesg" in sample:  # the command line as the kernel log prints it
        root.write(".therock/dmesg.txt", text)
    else:
        root.write("proc/cmdline", text)
    params = {p.name: p.value for p in detect(Root(root.path), {}).kernel_params}
    expected = {
        "gfx1103-780m-arch-xanmod-proc-cmdline-gttsize-ttm-pages-limit.txt": {
            "amdgpu.gpu_recovery": "1",
            "amdgpu.gttsize": "24576",
            "ttm.pages_limit": "6291456",
        },
        "gfx1152-krackan-cachyos-proc-cmdline-cwsr-enable-0.txt": {"amdgpu.cwsr_enable": "0"},
        "mi210-arm64-amd-gfx-list-gartsize-vramlimit-gttsize-params.txt": {
            "amdgpu.vm_size": "1",
            "amdgpu.msi": "1",
            "amdgpu.gartsize": "32",
            "amdgpu.vramlimit": "32",
            "amdgpu.gttsize": "32",
        },
        "gfx1151-strix-halo-ubuntu-oem-ttm-amdttm-pages-limit-dmesg-head.txt": {
            "ttm.pages_limit": "32768000",
            "ttm.page_pool_size": "32768000",
            "amdttm.pages_limit": "32768000",
            # the line ends with its newline, before the next record: whole, read
            "amdttm.page_pool_size": "32768000",
        },
    }
    assert params == expected[sample]
