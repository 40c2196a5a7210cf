"""The APU memory model and its plan, replayed from what public reports published.

Each root is built from values a report states (the source is named next to each one);
files that are whole samples come from realdata/ verbatim. KFD files hold only the keys
the plugin reads, with the published values: a ``properties`` line is ``name value``
as the kernel prints it, and rocminfo prints a memory bank's ``size_in_bytes`` / 1024
as a pool's ``Size: ... KB``.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest
from conftest import EXAMPLES, KFD, RootBuilder, real, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_therock.cli import main
from pytest_therock.detect import detect
from pytest_therock.environment import GIB, MIB, Environment, Gpu, KernelParam, KfdAccess
from pytest_therock.memory import (
    MIN_CARVE_OUT,
    PAGE,
    Plan,
    gpu_memory,
    kfd_system_limit,
    plan,
    safe_limit,
)
from pytest_therock.sysroot import Root
from pytest_therock.versions import Versions

#: gfx1151 as KFD describes it: gfx_target_version 110501 (rocm_agent_enumerator's
#: decoding), 40 CU of 2 SIMDs (rocminfo of ROCm/ROCm#5817), device 0x1586 = 5510
#: (ROCm/ROCm#5595's dmesg), vendor 0x1002 = 4098.
STRIX_HALO_NODE = (
    "cpu_cores_count 0\nsimd_count 80\nsimd_per_cu 2\ngfx_target_version 110501\n"
    "vendor_id 4098\ndevice_id 5510\n"
)
CPU_NODE = "cpu_cores_count 32\nsimd_count 0\n"  # Ryzen AI MAX+ 395: 16 cores, 32 threads
FRAMEWORK_VRAM = "sysfs/gfx1151-strix-halo-framework-96G-carveout-card-mem_info_vram_total.txt"


def pool_sizes(sample: str) -> tuple[int, int]:
    """(RAM, GPU pool) in bytes from a published `rocminfo | grep Size` (CPU pools first)."""
    sizes = [int(kb) * 1024 for kb in re.findall(r"Size:\s+(\d+)\(", real(sample))]
    return sizes[0], sizes[3]


def strix_halo(
    root: RootBuilder,
    kernel: str | None,
    ram: int | None = None,
    bank: int | None = None,
    **card: str,
) -> RootBuilder:
    """A Strix Halo snapshot: a gfx1151 KFD node (with ``bank``, what KFD reports, when
    given), a CPU node whose bank is ``ram``, the DRM ``card`` files from samples, and the
    kernel release ``kernel``."""
    root.kfd().write(f"{KFD}/1/properties", STRIX_HALO_NODE)
    if bank is not None:
        root.write(f"{KFD}/1/mem_banks/0/properties", f"heap_type 1\nsize_in_bytes {bank}\n")
    if ram is not None:
        root.write(f"{KFD}/0/properties", CPU_NODE)
        root.write(f"{KFD}/0/mem_banks/0/properties", f"heap_type 0\nsize_in_bytes {ram}\n")
    if card:
        for name, sample in card.items():
            root.write(f"sys/class/drm/card1/device/{name}", real(sample))
    if kernel is not None:
        root.write("proc/sys/kernel/osrelease", kernel + "\n")
    return root


def pages_printed(text: str) -> set[int]:
    """Every pages_limit the output suggests setting (not the settings it reports)."""
    return {int(n) for n in re.findall(r"\bset (?:amd)?ttm\.pages_limit=(\d+)", text)}


def doctor(capsys: pytest.CaptureFixture[str], root: RootBuilder, *args: str) -> str:
    capsys.readouterr()  # what came before (a pytester session) is not the doctor's
    main(["doctor", "--root", str(root.path), *args])
    return capsys.readouterr().out


def assert_one_pages_limit_that_fits(text: str, installed: int) -> int:
    """Every pages_limit printed is one number, and it fits 90% of the installed RAM."""
    (pages,) = pages_printed(text)
    assert pages * PAGE <= installed * 9 // 10
    return pages


# ROCm/ROCm#5444, comment #1 (mixer3d): a Framework Max+ 395 with 128 GB and a 96 GB
# carve-out, on Debian 13's kernel 6.12.48 and then on the backports' 6.16.3.
KERNEL_612 = ("6.12.48+deb13-amd64", "debian-6.12.48")
KERNEL_616 = ("6.16.3+deb13-amd64", "debian-6.16.3")


def framework(root: RootBuilder, kernel: tuple[str, str], bank: bool = True) -> RootBuilder:
    sample = f"reports/gfx1151-strix-halo-framework-96G-carveout-{kernel[1]}-pool-sizes-grep.txt"
    ram, pool = pool_sizes(sample)
    return strix_halo(
        root, kernel[0], ram, pool if bank else None, mem_info_vram_total=FRAMEWORK_VRAM
    )


def test_large_carve_out_on_6_12_is_hidden_and_the_plan_is_a_kernel_upgrade(
    root: RootBuilder, capsys: pytest.CaptureFixture[str], pytester: pytest.Pytester
) -> None:
    """Kernel 6.12 sends every APU allocation to GTT (eb853413d02c, 6.10): KFD reports
    16323184 KB, TTM's default, and the 96 GiB carve-out is out of reach."""
    env = detect(Root(framework(root, KERNEL_612).path), {})
    ram, pool = pool_sizes(
        "reports/gfx1151-strix-halo-framework-96G-carveout-debian-6.12.48-pool-sizes-grep.txt"
    )
    memory = gpu_memory(env, env.gpus[0])
    assert (memory.pool, memory.allocatable_bytes) == ("GTT", pool)
    assert memory.vram_total_bytes == 96 * GIB
    assert memory.installed_ram_bytes == ram + 96 * GIB  # not 31 GiB: OS RAM + carve-out
    out = doctor(capsys, root, "--need", "64")
    assert "RAM 31.1 GiB (OS), installed 127.1 GiB" in out
    assert "warning[memory-config]: the 96 GiB carve-out is larger than GTT, but kernel " in out
    # The 96 GiB carve-out is a size the settings ask for: the one plan aims at it.
    assert "plan for 96 GiB of GPU memory on gfx1151: upgrade the kernel to 6.15 or later" in out
    assert not pages_printed(out)  # no pages_limit for 64 GiB on a machine whose OS has 31
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gpu_memory_gb(64)
        def test_70b(): pass
        """
    )
    result = run(pytester, f"--therock-root={root.path}", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*requires 64 GiB GPU memory, found 15.6 GiB from GTT on gfx1151 "
            "(kernel 6.12.48+deb13-amd64 allocates from GTT and hides the 96 GiB carve-out; "
            "upgrade the kernel to 6.15 or later)",
            "warning[[]memory-below-need[]]: 64 GiB of GPU memory needed; gfx1151 can allocate "
            "15.6 GiB from GTT. Fix: upgrade the kernel to 6.15 or later",
        ]
    )
    assert not pages_printed(result.stdout.str())


def test_large_carve_out_on_6_16_is_the_pool(
    root: RootBuilder, capsys: pytest.CaptureFixture[str], pytester: pytest.Pytester
) -> None:
    """From 6.15 (8b0d068e, 759e764f) KFD uses the carve-out when it is at least GTT:
    the same machine now reports 100663296 KB."""
    env = detect(Root(framework(root, KERNEL_616).path), {})
    memory = gpu_memory(env, env.gpus[0])
    assert (memory.pool, memory.allocatable_bytes) == ("VRAM", 96 * GIB)
    assert memory.pool_reason == "KFD reports the carve-out"
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gpu_memory_gb(64)
        def test_fits_in_the_pool(gtt_info):
            assert gtt_info.pool == "VRAM"
            assert gtt_info.allocatable_bytes == 96 * 2**30

        @pytest.mark.requires_gtt_gb(64)
        def test_needs_gtt_itself():
            pass
        """
    )
    result = run(pytester, f"--therock-root={root.path}", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    text = result.stdout.str()
    # The GTT need is reached by shrinking the carve-out first: the OS has only 31 GiB.
    assert "(GTT defaults to 50% of RAM; shrink the BIOS carve-out, then raise" in text
    assert "set the carve-out (UMA frame buffer) to 512 MiB in the BIOS; then set " in text
    pages = assert_one_pages_limit_that_fits(text, memory.installed_ram_bytes or 0)
    assert pages == 64 * GIB // PAGE
    out = doctor(capsys, root, "--need", "100")
    assert "plan for 100 GiB of GPU memory on gfx1151: set the carve-out" in out
    assert assert_one_pages_limit_that_fits(out, memory.installed_ram_bytes or 0) == 26214400


@pytest.mark.parametrize(
    ("kernel", "pool", "allocatable"),
    [
        # No KFD bank (a sysfs-only snapshot): the rule for the kernel decides. On 6.12,
        # TTM's default (half of the OS's RAM) is exactly the pool that machine reported.
        (KERNEL_612, "GTT", 16323184 * 1024),
        (KERNEL_616, "VRAM", 96 * GIB),
    ],
)
def test_without_kfd_the_kernel_version_decides(
    root: RootBuilder,
    capsys: pytest.CaptureFixture[str],
    kernel: tuple[str, str],
    pool: str,
    allocatable: int,
) -> None:
    env = detect(Root(framework(root, kernel, bank=False).path), {})
    memory = gpu_memory(env, env.gpus[0])
    assert (memory.pool, memory.allocatable_bytes) == (pool, allocatable)
    assert not pages_printed(doctor(capsys, root))  # no size asked for: none invented


def test_rocminfo_pool_larger_than_the_os_ram_is_the_carve_out(root: RootBuilder) -> None:
    """Without DRM sysfs, a GPU pool three times the OS's RAM cannot be GTT."""
    sample = "reports/gfx1151-strix-halo-framework-96G-carveout-debian-6.16.3-pool-sizes-grep.txt"
    ram, pool = pool_sizes(sample)
    env = detect(Root(strix_halo(root, None, ram, pool).path), {})
    memory = gpu_memory(env, env.gpus[0])
    assert (memory.pool, memory.allocatable_bytes, memory.vram_total_bytes) == ("VRAM", pool, pool)
    assert memory.installed_ram_bytes == ram + pool


def test_a_small_carve_out_on_6_11_and_the_rule_before_6_10(root: RootBuilder) -> None:
    """ollama/ollama#5471 (godmar): Radeon 780M (gfx1103, 12 CU), 32 GB RAM, an 8 GB
    carve-out, kernel 6.11.0: "8192M of VRAM memory ready", "11867M of GTT memory ready",
    and ollama using GTT, not the carve-out. The RAM the OS sees is twice that GTT size
    (TTM's default, half of RAM). Before 6.10 the same machine would use the carve-out."""
    node = "cpu_cores_count 0\nsimd_count 24\nsimd_per_cu 2\ngfx_target_version 110003\n"
    root.kfd().write(f"{KFD}/1/properties", node + "vendor_id 4098\n")
    root.write(f"{KFD}/0/properties", CPU_NODE)
    root.write(f"{KFD}/0/mem_banks/0/properties", f"heap_type 0\nsize_in_bytes {2 * 11867 * MIB}\n")
    sample = "gfx1103-780m-32G-ram-8G-carveout-vram-gtt-memory-ready.txt"
    root.write(".therock/dmesg.txt", real(f"dmesg/{sample}"))
    root.write("proc/sys/kernel/osrelease", "6.11.0\n")
    env = detect(Root(root.path), {})
    memory = gpu_memory(env, env.gpus[0])
    assert (memory.vram_total_bytes, memory.total_bytes) == (8192 * MIB, 11867 * MIB)
    assert (memory.pool, memory.allocatable_bytes) == ("GTT", 11867 * MIB)
    assert memory.installed_ram_bytes == 2 * 11867 * MIB + 8192 * MIB
    older = env._replace(versions=Versions(None, None, kernel="6.8.0-50-generic"))
    before = gpu_memory(older, older.gpus[0])
    assert (before.pool, before.allocatable_bytes) == ("VRAM", 8192 * MIB)
    steps = plan(before, 10 * GIB)
    assert steps.steps == ("upgrade the kernel to 6.15 or later",)  # GTT's 11.6 GiB is enough


def test_carve_out_with_ram_and_kernel_unknown(
    root: RootBuilder, pytester: pytest.Pytester
) -> None:
    """antirez/ds4#475: BIOS carve-out at 96 GB, the kernel log's "15860M of GTT memory
    ready"; nothing says the RAM or the kernel. The FAQ's rule: VRAM >= GTT, so VRAM."""
    strix_halo(root, None, mem_info_vram_total=FRAMEWORK_VRAM)  # the same 96 GB setting
    root.write(
        ".therock/dmesg.txt", real("dmesg/gfx1151-strix-halo-ds4-bios-uma-96G-gtt-15860M.txt")
    )
    env = detect(Root(root.path), {})
    memory = gpu_memory(env, env.gpus[0])
    assert (memory.pool, memory.allocatable_bytes) == ("VRAM", 96 * GIB)
    assert memory.total_bytes == 15860 * MIB
    assert memory.limit_bytes is None and memory.usable_bytes is None  # RAM unknown
    assert memory.installed_ram_bytes is None
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gpu_memory_gb(64)
        def test_pool(): pass

        @pytest.mark.requires_gtt_gb(8)
        def test_gtt(): pass
        """
    )
    result = run(pytester, f"--therock-root={root.path}", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "therock: GPU 0: gfx1151, 40 CU, APU, carve-out 96 GiB, GTT 15.5 GiB, "
            "allocatable 96 GiB from VRAM",
            "therock: RAM unknown; TTM limit unknown (RAM unknown)",
            "*requires 8 GiB GTT; how much GTT gfx1151 can allocate is unknown "
            "(TTM limit unknown: RAM unknown)",
            # unknown is not "below": what is missing, and how to find out
            "warning[[]memory-unknown[]]: 8 GiB of GTT needed; how much gfx1151 can allocate "
            "is unknown (TTM limit unknown: RAM unknown). Fix: `amd-smi static` or *",
        ]
    )
    assert not pages_printed(result.stdout.str())  # nothing that only looks measured


def beelink(root: RootBuilder) -> RootBuilder:
    """ROCm/ROCm#6004 (hogeheer499-commits): Beelink GTR9 Pro, 128 GB, kernel
    7.0.0-28-generic, `amdgpu.gttsize=131072`, mem_info_vram_total 536870912 and
    mem_info_gtt_total 137438953472; HIP's total 62.47 GiB of 124.92 GiB. The GPU (and its
    62.47 GiB pool, and 124.94 GiB of RAM) is the recorded rocminfo of another 128 GB
    Strix Halo at TTM's default (ROCm/ROCm#5817)."""
    shutil.copytree(EXAMPLES / "strix-halo", root.path, dirs_exist_ok=True)
    prefix = "sysfs/gfx1151-strix-halo-beelink-gtr9-card-mem_info_"
    root.write("sys/class/drm/card1/device/mem_info_vram_total", real(f"{prefix}vram_total.txt"))
    root.write("sys/class/drm/card1/device/mem_info_gtt_total", real(f"{prefix}gtt_total.txt"))
    root.param("amdgpu", "gttsize", "131072\n")
    return root.write("proc/sys/kernel/osrelease", "7.0.0-28-generic\n")


def test_gttsize_larger_than_ram_gets_a_limit_that_fits(
    root: RootBuilder, capsys: pytest.CaptureFixture[str], pytester: pytest.Pytester
) -> None:
    env = detect(Root(beelink(root).path), {})
    memory = gpu_memory(env, env.gpus[0])
    assert memory.total_bytes == 128 * GIB  # what the driver reports
    assert (memory.pool, memory.allocatable_bytes) == ("GTT", 65507932 * 1024)  # TTM's 62.47
    installed = memory.installed_ram_bytes
    assert installed == 131015868 * 1024 + 512 * MIB
    out = doctor(capsys, root)
    assert "warning[memory-config]: amdgpu.gttsize=131072 (MiB, sysfs) is deprecated" in out
    assert 33554432 not in pages_printed(out)  # 128 GiB: more than the machine has
    pages = assert_one_pages_limit_that_fits(out, installed)
    assert pages * PAGE == safe_limit(131015868 * 1024)  # the most: 90% of the OS's RAM
    assert "and remove amdgpu.gttsize" in out
    # A session needing 64 GiB of GTT prints the same number as the header.
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gtt_gb(64)
        def test_big(): pass
        """
    )
    result = run(pytester, f"--therock-root={root.path}", "-v")
    result.assert_outcomes(skipped=1)
    assert pages_printed(result.stdout.str()) == {pages}


def ubuntu_6_17(root: RootBuilder, sample: str, ttm_bytes: int) -> RootBuilder:
    """ROCm/ROCm#5562 (ianbmacdonald): Strix Halo, Ubuntu 25.10, in-kernel amdgpu on
    6.17.0-5-generic (the log's "Linux version" line), `amdttm.*` on the command line.
    The RAM the OS saw is twice TTM's default limit (ttm_global_init(): half of RAM),
    which the log states: the GTT size (no gttsize) or "TTM size has been set as"."""
    strix_halo(root, "6.17.0-5-generic", ram=2 * ttm_bytes)
    return root.write(".therock/dmesg.txt", real(f"dmesg/{sample}"))


@pytest.mark.parametrize(
    ("sample", "ttm_bytes", "said"),
    [
        (
            "gfx1151-strix-halo-ubuntu25.10-inkernel-6.17-amdttm-only-gtt-62816M.txt",
            62816 * MIB,
            "amdttm.pages_limit=32768000 is set but the in-kernel driver reads ttm.pages_limit",
        ),
        (
            # Its command line is wrapped inside "amdttm.pages_|limit=" and read rejoined.
            "gfx1151-strix-halo-ubuntu25.10-inkernel-6.17-gttsize128000-amdttm-gtt-ttm-unusual.txt",
            65867993088,
            "amdgpu.gttsize=128000 (MiB, cmdline) is deprecated; "
            "amdttm.pages_limit=32768000 is set but the in-kernel driver reads ttm.pages_limit",
        ),
    ],
)
def test_settings_the_driver_ignores_are_one_warning_with_one_number(
    root: RootBuilder, capsys: pytest.CaptureFixture[str], sample: str, ttm_bytes: int, said: str
) -> None:
    env = detect(Root(ubuntu_6_17(root, sample, ttm_bytes).path), {})
    memory = gpu_memory(env, env.gpus[0])
    assert memory.ttm_param == "ttm.pages_limit"
    assert (memory.pool, memory.allocatable_bytes) == ("GTT", ttm_bytes)
    out = doctor(capsys, root)
    (line,) = [ln for ln in out.splitlines() if "memory-config" in ln]
    assert said in line
    # 32768000 pages (125 GiB, the user's choice) is above 90% of this RAM: the most instead.
    pages = assert_one_pages_limit_that_fits(out, memory.installed_ram_bytes or 0)
    assert pages * PAGE == safe_limit(2 * ttm_bytes)
    assert [ln for ln in out.splitlines() if "[" in ln and "memory" in ln and "Fix:" in ln] == [
        line
    ]  # one situation, one diagnostic with a fix


def test_amdgpu_dkms_version_counts_not_the_kernel(root: RootBuilder) -> None:
    """ROCm/ROCm#5724 comment #39: kernel 6.17.0-1009-oem with amdgpu-dkms 6.16.13. A DKMS
    driver from before 6.10 (ROCm 6.3's 6.10.5, ROCm/ROCm#4358) on the same kernel would
    hide a 96 GiB carve-out; a kernel upgrade would not help, a driver upgrade does. The
    machine is ROCm/ROCm#5444's Framework (its RAM on 6.16.3) with that kernel release."""
    env = detect(Root(framework(root, ("6.17.0-1009-oem", "debian-6.16.3"), bank=False).path), {})
    for version, pool in (("6.16.13", "VRAM"), ("6.10.5", "GTT")):
        versions = (env.versions or Versions(None, None))._replace(amdgpu=version)
        dkms = env._replace(versions=versions)
        memory = gpu_memory(dkms, dkms.gpus[0])
        assert memory.ttm_param == "amdttm.pages_limit"
        assert memory.pool == pool, version
    assert plan(memory, 64 * GIB).steps == (
        "upgrade amdgpu-dkms to a driver based on Linux 6.15 or later",
    )


def test_dkms_on_6_12_uses_the_carve_out_and_ignores_ttm_settings(
    root: RootBuilder, capsys: pytest.CaptureFixture[str]
) -> None:
    """ROCm/ROCm#6143 (ThomasKorimort): GMKtec EVO-X2, 96 GB carve-out, Debian kernel
    6.12.74 with amdgpu-dkms 6.16.13; `amdgpu.gttsize=98304 ttm.pages_limit=25000000`,
    and the log's "TTM size has been set as 16638816256": amdttm's default, half of the
    RAM the OS sees, since the DKMS driver does not read ttm.pages_limit."""
    ttm = 16638816256
    strix_halo(root, "6.12.74+deb13+1-amd64", ram=2 * ttm)
    sample = "gfx1151-strix-halo-debian13-dkms-gttsize-mismatch-pagefaults-gpf-noise.txt"
    root.write(".therock/dmesg.txt", real(f"dmesg/{sample}"))
    root.write("sys/module/amdgpu/version", "6.16.13\n")  # "version: 6.16.13" in the report
    (root.path / "sys/module/amdttm/parameters").mkdir(parents=True)
    env = detect(Root(root.path), {})
    memory = gpu_memory(env, env.gpus[0])
    assert (memory.driver, memory.ttm_param) == ("amdgpu-dkms 6.16.13", "amdttm.pages_limit")
    # The driver's rule (6.15+): the 96 GiB carve-out is not smaller than the 96 GiB GTT size.
    assert (memory.pool, memory.allocatable_bytes) == ("VRAM", 96 * GIB)
    assert memory.limit_bytes == ttm
    # Judged by the kernel's version alone, the carve-out would look hidden.
    kernel_only = env._replace(
        versions=(env.versions or Versions(None, None))._replace(amdgpu=None)
    )
    assert gpu_memory(kernel_only, kernel_only.gpus[0]).pool == "GTT"
    out = doctor(capsys, root)
    (line,) = [ln for ln in out.splitlines() if "[memory-config]" in ln]
    assert (
        "ttm.pages_limit=25000000 is set but the amdgpu-dkms driver reads amdttm.pages_limit"
        in (line)
    )
    assert line.endswith("Fix: remove amdgpu.gttsize (96 GiB allocatable from VRAM)")
    out = doctor(capsys, root, "--need", "100")
    assert "set the carve-out (UMA frame buffer) to 512 MiB in the BIOS; then set " in out
    pages = assert_one_pages_limit_that_fits(out, memory.installed_ram_bytes or 0)
    assert f"set amdttm.pages_limit={pages} (100 GiB)" in out


def test_json_has_the_model_and_the_plan(
    root: RootBuilder, capsys: pytest.CaptureFixture[str]
) -> None:
    framework(root, KERNEL_616)
    data = json.loads(doctor(capsys, root, "--json", "--need", "100"))
    (memory,) = data["memory"]
    assert (memory["pool"], memory["allocatable_bytes"]) == ("VRAM", 96 * GIB)
    assert data["plan"]["pages_limit"] == 26214400
    assert data["plan"]["carve_out_bytes"] == MIN_CARVE_OUT
    assert {d["code"] for d in data["diagnostics"]} >= {"memory-below-need", "gpu-memory"}


def test_need_must_be_a_positive_number(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["doctor", "--need", "lots"])
    assert exc.value.code == 2
    assert (
        "argument --need: expected a number of GiB, e.g. 64, got 'lots'" in capsys.readouterr().err
    )
    for bad in ("nan", "-1", "0", "1e300"):
        with pytest.raises(SystemExit) as exc:
            main(["doctor", "--need", bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err.splitlines()
        assert err[0].startswith("usage: ") and err[-1].startswith(
            "pytest-therock doctor: error: argument --need: "
        )  # argparse's usage, then one line


# The property: any carve-out, RAM, gttsize and pages_limit.

GPU = Gpu(
    node_id=1, gfx_target="gfx1151", gfx_target_version=110501, vendor_id=0x1002,
    device_id=0x1586, compute_units=40, simd_count=80, wavefront_size=32, unique_id=None,
    pci_slot=None, drm_render_minor=None, card="card1", is_apu=True,
)  # fmt: skip


def machine(
    carve: int, ram: int, gttsize_mib: int | None, pages: int | None, kernel: str
) -> Environment:
    params = []
    if gttsize_mib is not None:
        params.append(KernelParam("amdgpu.gttsize", str(gttsize_mib), "cmdline"))
    if pages is not None:
        params.append(KernelParam("ttm.pages_limit", str(pages), "cmdline"))
    limit = pages * PAGE if pages else ram // PAGE // 2 * PAGE
    gtt = gttsize_mib * MIB if gttsize_mib is not None else limit  # amdgpu_ttm_init()
    gpu = GPU._replace(vram_total_bytes=carve, gtt_total_bytes=gtt)
    return Environment(
        root="/property", gpus=(gpu,), system_memory_bytes=ram, page_size=PAGE,
        kernel_params=tuple(params), kfd=KfdAccess(True, True, True),
        versions=Versions(None, None, kernel=kernel),
    )  # fmt: skip


def applied(env: Environment, steps: Plan) -> Environment:
    """The machine after the plan: carve-out, TTM limit, gttsize removed, kernel."""
    gpu = env.gpus[0]
    carve, ram = gpu.vram_total_bytes or 0, env.system_memory_bytes or 0
    if steps.carve_out_bytes is not None:
        ram, carve = ram + carve - steps.carve_out_bytes, steps.carve_out_bytes
    params = {p.name: p for p in env.kernel_params}
    if steps.pages_limit is not None:
        params.pop("amdgpu.gttsize", None)
        params["ttm.pages_limit"] = KernelParam(
            "ttm.pages_limit", str(steps.pages_limit), "cmdline"
        )
    gttsize = params.get("amdgpu.gttsize")
    pages = params.get("ttm.pages_limit")
    kernel = "6.15.0" if steps.kernel else (env.versions.kernel if env.versions else None)
    return machine(
        carve, ram, int(gttsize.value) if gttsize else None,
        int(pages.value) if pages else None, kernel or "6.15.0",
    )  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    carve=st.sampled_from([512 * MIB, 1 * GIB, 4 * GIB, 16 * GIB, 32 * GIB, 64 * GIB, 96 * GIB]),
    installed_gib=st.sampled_from([16, 32, 64, 96, 128]),
    gttsize_mib=st.none() | st.integers(min_value=256, max_value=256 * 1024),
    pages=st.none() | st.integers(min_value=1, max_value=64 * GIB // PAGE),
    need_gib=st.integers(min_value=1, max_value=160),
    kernel=st.sampled_from(["6.8.0-50-generic", "6.12.48+deb13-amd64", "6.16.3", "7.0.0-28"]),
    kind=st.sampled_from(["gpu", "gtt"]),
)
def test_plan_never_exceeds_the_cap_and_reaches_the_need_or_says_why(
    carve: int,
    installed_gib: int,
    gttsize_mib: int | None,
    pages: int | None,
    need_gib: int,
    kernel: str,
    kind: str,
) -> None:
    installed = installed_gib * GIB
    if carve >= installed - 2 * GIB:
        return  # no OS left: not a machine
    env = machine(carve, installed - carve, gttsize_mib, pages, kernel)
    need = need_gib * GIB
    steps = plan(gpu_memory(env, env.gpus[0]), need, kind)
    if steps.met:
        return
    if steps.pages_limit is not None:
        ram_after = installed - (steps.carve_out_bytes or carve)
        kept = steps.pages_limit == pages  # the user's own value: never lowered
        assert kept or steps.pages_limit * PAGE <= safe_limit(ram_after) <= installed * 9 // 10
        assert pages is None or steps.pages_limit >= pages
        assert kept or steps.pages_limit * PAGE <= kfd_system_limit(ram_after)
    changed = applied(env, steps)
    after = gpu_memory(changed, changed.gpus[0])
    got = after.allocatable_bytes if kind == "gpu" else after.usable_bytes
    if steps.possible:
        assert got is not None and got >= need, (steps, after)
    else:
        assert steps.why  # it says why not
        if steps.reaches_bytes is not None:
            assert got is not None and got >= min(steps.reaches_bytes, need) - MIB


def test_kfd_limit_from_driver_load_and_a_live_pages_limit_disagree(
    root: RootBuilder, capsys: pytest.CaptureFixture[str]
) -> None:
    """KFD takes its TTM limit when amdgpu loads; ``ttm.pages_limit`` can be raised later
    (amd-ttm). The KFD bank is ROCm/ROCm#5817's recorded 62.5 GiB (TTM's default on 128 GB);
    the live pages_limit 25165824 (96 GiB) and mem_info_gtt_total are noamsto/nix-amd-ai#42's:
    examples/roots/strix-halo-gtt-raised. A process gets the smaller, KFD's, and it says so."""
    shutil.copytree(EXAMPLES / "strix-halo-gtt-raised", root.path, dirs_exist_ok=True)
    env = detect(Root(root.path), {})
    (gpu,) = env.gpus
    model = gpu_memory(env, gpu)
    assert gpu.kfd_memory_bytes is not None
    assert model.limit_bytes == 25165824 * PAGE  # the live value, reported as it is
    assert model.allocatable_bytes == model.kfd_ttm_bytes == gpu.kfd_memory_bytes
    assert model.kfd_conflict is not None and "KFD's limit 62.5 GiB" in model.kfd_conflict
    out = doctor(capsys, root)
    assert "allocatable 62.5 GiB from GTT" in out
    (warning,) = [line for line in out.splitlines() if line.startswith("warning[memory-config]")]
    assert "ttm.pages_limit 96 GiB disagree" in warning
    assert (
        "Fix: set ttm.pages_limit=25165824 (96 GiB) on the kernel command line and reboot"
        in warning
    )
    data = json.loads(doctor(capsys, root, "--json"))
    (memory,) = data["memory"]
    assert memory["allocatable_bytes"] == gpu.kfd_memory_bytes
    assert memory["kfd_conflict"] and memory["free_bytes"] is None
    assert memory["exceeds_vram"] is True
    # Asked for 96 GiB, the plan is the pages_limit on the command line (KFD reads it at load).
    assert pages_printed(doctor(capsys, root, "--need", "96")) == {25165824}


def test_requirements_on_one_test_are_met_by_one_gpu(
    root: RootBuilder, pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    """ROCm/ROCm#5814's rocminfo: an RX 9070 XT (gfx1201, 15.9 GiB of VRAM) and the
    Ryzen 9950X's iGPU (gfx1036, 61.7 GiB of GTT). 24 GiB on a gfx1201 is not the iGPU's."""
    sample = "rocminfo/gfx1201-rx9070xt-plus-gfx1036-igpu-9950x-rocm7.0-kfd6.14.14.txt"
    root.kfd().write(".therock/rocminfo.txt", real(sample))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gfx1201
        @pytest.mark.requires_gpu_memory_gb(24)
        def test_dgpu_24():
            pass

        @pytest.mark.requires_gpu_memory_gb(24)
        @pytest.mark.requires_gfx1036
        def test_igpu_24():
            pass

        @pytest.mark.requires_gfx1201
        @pytest.mark.requires_gpu_memory_gb(8)
        def test_dgpu_8():
            pass

        @pytest.mark.requires_gfx1201
        @pytest.mark.requires_apu
        def test_dgpu_apu():
            pass

        @pytest.mark.requires_gfx1201
        @pytest.mark.requires_gpu_memory_gb(100)
        def test_dgpu_100():
            pass
        """
    )
    result = run(pytester, f"--therock-root={root.path}", "-rs")
    result.assert_outcomes(passed=2, skipped=3)
    # No GPU has 100 GiB: the reason is still about the gfx1201, not the iGPU's plan.
    result.stdout.fnmatch_lines(
        [
            "SKIPPED*:23: requires_gfx1201 and requires_gpu_memory_gb(100) need one GPU "
            "meeting both, found gfx1201: 15.9 GiB GPU memory from VRAM, not 100 GiB "
            "(a discrete GPU's VRAM is 15.9 GiB); gfx1036: not gfx1201, *",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "SKIPPED*:3: requires_gfx1201 and requires_gpu_memory_gb(24) need one GPU "
            "meeting both, found gfx1201: 15.9 GiB GPU memory from VRAM, not 24 GiB (*); "
            "gfx1036: not gfx1201",
            "SKIPPED*:18: requires_apu and requires_gfx1201 need one GPU meeting both,"
            " found gfx1201: discrete; gfx1036: not gfx1201",
        ]
    )
    # The need's diagnostic names the GPU its plan is about first, and that GPU's fix.
    capsys.readouterr()
    main(["doctor", "--root", str(root.path), "--need", "70"])
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if "memory-below-need" in ln]
    assert line.startswith(
        "warning[memory-below-need]: 70 GiB of GPU memory needed; gfx1036 can allocate "
        "61.7 GiB from GTT; gfx1201 can allocate 15.9 GiB from VRAM. Fix: on gfx1036: set "
        "ttm.pages_limit=18350080 (70 GiB)"
    )


def test_one_need_gets_one_plan_in_the_session_and_the_doctor(
    root: RootBuilder, capsys: pytest.CaptureFixture[str], pytester: pytest.Pytester
) -> None:
    """ROCm/ROCm#6004's Beelink (amdgpu.gttsize=131072: 128 GiB asked for): a session
    skipping requires_gpu_memory_gb(100) and `doctor --need 100` (text and --json) quote
    the same pages_limit, one that fits."""
    beelink(root)
    env = detect(Root(root.path), {})
    installed = gpu_memory(env, env.gpus[0]).installed_ram_bytes or 0
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gpu_memory_gb(100)
        def test_big():
            pass
        """
    )
    session = run(pytester, f"--therock-root={root.path}", "-v").stdout.str()
    pages = assert_one_pages_limit_that_fits(session, installed)
    assert "warning[memory-below-need]: 100 GiB of GPU memory needed" in session
    assert pages_printed(doctor(capsys, root, "--need", "100")) == {pages}
    assert pages_printed(doctor(capsys, root)) == {pages}  # the header's memory-config
    data = json.loads(doctor(capsys, root, "--need", "100", "--json"))
    assert data["plan"]["pages_limit"] == pages


def test_a_dkms_driver_before_6_10_gets_the_upgrade_on_every_line(
    root: RootBuilder, capsys: pytest.CaptureFixture[str], pytester: pytest.Pytester
) -> None:
    """ROCm/ROCm#6143's EVO-X2 (96 GiB carve-out, `ttm.pages_limit=25000000` that the DKMS
    driver does not read) with ROCm 6.3's amdgpu-dkms 6.10.5 (ROCm/ROCm#4358): the driver
    hides the carve-out, so the header and the summary both say to upgrade it, and neither
    offers the value given to the wrong module."""
    ttm = 16638816256
    strix_halo(root, "6.12.74+deb13+1-amd64", ram=2 * ttm)
    sample = "gfx1151-strix-halo-debian13-dkms-gttsize-mismatch-pagefaults-gpf-noise.txt"
    root.write(".therock/dmesg.txt", real(f"dmesg/{sample}"))
    root.write("sys/module/amdgpu/version", "6.10.5\n")
    (root.path / "sys/module/amdttm/parameters").mkdir(parents=True)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gpu_memory_gb(20)
        def test_twenty():
            pass
        """
    )
    session = run(pytester, f"--therock-root={root.path}").stdout.str()
    upgrade = "upgrade amdgpu-dkms to a driver based on Linux 6.15 or later"
    assert f"Fix: {upgrade}" in session
    (line,) = [ln for ln in doctor(capsys, root).splitlines() if "[memory-config]" in ln]
    assert line.endswith(f"Fix: {upgrade}") and not pages_printed(line)


def test_sizes_read_as_sizes_at_both_ends(
    capsys: pytest.CaptureFixture[str], pytester: pytest.Pytester
) -> None:
    """The largest size a marker takes prints whole, the smallest need in bytes."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gpu_memory_gb(4194304)
        def test_huge():
            pass
        """
    )
    result = run(pytester, f"--therock-root={EXAMPLES / 'strix-halo'}", "-rs")
    result.stdout.fnmatch_lines(["*requires 4194304 GiB GPU memory, found 62.5 GiB*"])
    capsys.readouterr()
    main(["doctor", "--root", str(EXAMPLES / "strix-halo"), "--need", "0.000001"])
    assert "plan for 1074 bytes of GPU memory on gfx1151: nothing to change" in (
        capsys.readouterr().out
    )


def test_a_bank_that_may_be_the_carve_out_or_gtt_is_said_to_be_either(root: RootBuilder) -> None:
    """KFD offers 96 GiB (noamsto/nix-amd-ai#42's GTT with ttm.pages_limit=25165824) on a
    machine whose OS sees ROCm/ROCm#5817's 124.9 GiB, with no carve-out size, no kernel
    version and no pages_limit recorded: on 6.15+ a 96 GiB bank may be the carve-out as
    well as TTM's limit. 96 GiB is allocatable either way; the pool and the limit are
    unknown. A kernel version or the pages_limit settles it."""
    kb = re.findall(
        r"Size:\s+(\d+)\(", real("rocminfo/gfx1151-strix-halo-rocm7.11-nightly-kfd6.16.6.txt")
    )
    ram = int(kb[0]) * 1024
    bank = int(real("sysfs/gfx1151-strix-halo-128G-ttm96G-card1-mem_info_gtt_total.txt"))
    env = detect(Root(strix_halo(root, None, ram=ram, bank=bank).path), {})
    memory = gpu_memory(env, env.gpus[0])
    assert (memory.pool, memory.allocatable_bytes, memory.limit_bytes) == ("unknown", bank, None)
    assert "the carve-out" in memory.pool_reason and "GTT up to TTM's limit" in memory.pool_reason
    assert memory.describe().startswith("gfx1151: 96 GiB allocatable from an unknown pool")
    # The kernel between 6.10 and 6.14 always allocates from GTT: KFD's bank is TTM's limit.
    env = detect(Root(root.write("proc/sys/kernel/osrelease", "6.12.48+deb13-amd64\n").path), {})
    assert gpu_memory(env, env.gpus[0]).pool == "GTT"
    (root.path / "proc/sys/kernel/osrelease").unlink()
    env = detect(Root(root.param("ttm", "pages_limit", "25165824\n").path), {})
    assert (gpu_memory(env, env.gpus[0]).pool, gpu_memory(env, env.gpus[0]).limit_bytes) == (
        "GTT",
        bank,
    )
