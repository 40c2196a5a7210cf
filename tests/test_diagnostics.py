"""Each FAQ diagnostic, over roots built from real samples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLES, REALDATA, RootBuilder, real

from pytest_therock.detect import detect
from pytest_therock.diagnostics import CHECKS, Diagnostic, run_checks
from pytest_therock.environment import Environment
from pytest_therock.sysroot import Root


def found(env: Environment) -> dict[str, list[Diagnostic]]:
    result: dict[str, list[Diagnostic]] = {}
    for diag in run_checks(env):
        result.setdefault(diag.code, []).append(diag)
    return result


def example(name: str, **environ: str) -> Environment:
    return detect(Root(EXAMPLES / name), environ)


def test_every_check_is_documented_in_the_readme_and_explained() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for code, check in CHECKS.items():
        assert f"`{code}`" in readme, code
        assert check.explanation and check.severity in ("error", "warning", "info")


def test_strix_halo_with_default_gtt_says_what_is_allocatable_and_invents_no_target() -> None:
    (diag,) = found(example("strix-halo"))["gpu-memory"]
    assert diag.severity == "info"
    assert diag.message == (
        "gfx1151: allocations come from GTT, 62.5 GiB allocatable (KFD reports the TTM limit); "
        "carve-out unknown; TTM limit 62.5 GiB (default: 50% of RAM); installed RAM unknown"
    )
    assert diag.fix == "`pytest-therock doctor --need GIB` gives the change for a size"


def test_pages_limit_raised_after_kfd_took_its_limit_is_flagged() -> None:
    diags = found(example("strix-halo-gtt-raised"))
    (config,) = diags["memory-config"]
    assert "KFD's limit 62.5 GiB (set when amdgpu loaded) and the live ttm.pages_limit 96 GiB" in (
        config.message
    )
    assert diags["gpu-memory"][0].message.startswith(
        "gfx1151: allocations come from GTT, 62.5 GiB allocatable"
    )


def test_vram_carve_out_at_least_gtt_means_vram_is_used() -> None:
    # The RX 570 driver reported GTT == VRAM (4 GiB); as on an APU with a large carve-out.
    # Without KFD's bank or a kernel version, the FAQ's rule (kernels 6.15+) decides.
    env = example("strix-halo-gtt-raised")
    size = int(real("sysfs/rx570-polaris-amdgpu21.10-card1-mem_info_gtt_total.txt"))
    gpu = env.gpus[0]._replace(gtt_total_bytes=size, vram_total_bytes=size, kfd_memory_bytes=None)
    diags = found(env._replace(gpus=(gpu,), kernel_params=()))
    assert diags["gpu-memory"][0].message.startswith(
        "gfx1151: allocations come from VRAM, 4 GiB allocatable "
        "(carve-out >= GTT; kernel unknown, 6.15+ assumed)"
    )


def test_missing_and_denied_kfd(root: RootBuilder) -> None:
    root.topology("topo-mi210-xgmi-pcie")
    missing = found(detect(Root(root.path), {}))["kfd-missing"][0]
    assert missing.fix == "inside a container, pass --device /dev/kfd --device /dev/dri"
    root.kfd("none")
    denied = found(detect(Root(root.path), {}))["kfd-denied"][0]
    assert denied.fix == "`sudo usermod -aG render,video $USER`, then log in again"


def test_no_gpu_example_reports_no_gpu_and_what_rocminfo_said() -> None:
    diags = found(example("no-gpu"))
    (missing,) = diags["kfd-missing"]
    assert missing.severity == "error"  # doctor's: pytest without --therock-strict lowers it
    assert missing.message.startswith("no AMD GPU found: ")
    assert "modprobe" not in str(missing) and "not loaded" not in str(missing)
    (said,) = diags["rocminfo-failed"]
    assert said.severity == "info" and said.fix is None
    assert said.message == (
        "rocminfo found no GPU agents (it said 'ROCk module is NOT loaded, possibly no GPU "
        "devices')"
    )


def test_wsl_needs_no_kfd() -> None:
    assert not {"kfd-missing", "no-gpu"} & set(found(example("wsl2-rx7900xtx")))


def test_visibility_that_hides_everything_and_mismatched_variables() -> None:
    hidden = found(example("mi210-8x", HIP_VISIBLE_DEVICES=""))
    assert hidden["no-gpu"][0].message == "all 8 GPU(s) hidden by HIP_VISIBLE_DEVICES=''"
    both = found(example("mi210-8x", ROCR_VISIBLE_DEVICES="0,1", HIP_VISIBLE_DEVICES="1"))
    assert both["visibility-mismatch"][0].message.endswith("visible: 1 of 8 GPU(s)")


def test_hsa_override_names_the_real_target() -> None:
    diag = found(example("strix-halo", HSA_OVERRIDE_GFX_VERSION="11.0.0"))["hsa-override"][0]
    assert (
        diag.message == "HSA_OVERRIDE_GFX_VERSION=11.0.0 fakes the GPU target (hardware: gfx1151)"
    )


def test_target_support_from_therocks_list() -> None:
    assert found(example("mi210-8x"))["target-unsupported"][0].message == (
        "gfx90a has builds but is not sanity-tested in TheRock (Linux)"
    )
    assert "target-unsupported" not in found(example("strix-halo"))
    vega = detect(Root(REALDATA / "kfd-topology" / "topology-parsing"), {})
    assert "target-unsupported" not in found(vega)  # no gfx target known: nothing to say


def test_gttsize_on_the_command_line_is_deprecated(root: RootBuilder) -> None:
    root.node(1, "kfd-topology-mi210-node2-properties.txt").kfd()
    root.write(
        "proc/cmdline",
        real("cmdline/gfx1103-780m-arch-xanmod-proc-cmdline-gttsize-ttm-pages-limit.txt"),
    )
    (diag,) = found(detect(Root(root.path), {}))["memory-config"]
    assert diag.message.startswith("amdgpu.gttsize=24576 (MiB, cmdline) is deprecated")
    # That user also set ttm.pages_limit=6291456, the same 24 GiB: nothing else to change.
    assert diag.fix == "remove amdgpu.gttsize (24 GiB allocatable from GTT)"


def test_dkms_ttm_needs_amdttm_parameters(root: RootBuilder) -> None:
    root.node(1, "kfd-topology-mi210-node2-properties.txt").kfd()
    root.write(
        "proc/cmdline",
        real("cmdline/gfx1103-780m-arch-xanmod-proc-cmdline-gttsize-ttm-pages-limit.txt"),
    )
    (root.path / "sys/module/amdttm").mkdir(parents=True)
    (diag,) = found(detect(Root(root.path), {}))["memory-config"]
    assert "ttm.pages_limit=6291456 is set but the amdgpu-dkms driver reads amdttm.pages_limit" in (
        diag.message
    )
    # The fix repeats the size the user chose, for the module that reads it.
    assert diag.fix is not None and diag.fix.startswith("set amdttm.pages_limit=6291456 (24 GiB)")
    assert "remove amdgpu.gttsize" in diag.fix
    assert "kernel-param-ignored" not in found(detect(Root(root.path), {}))


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        (
            "gfx1151-strix-halo-pagefault-mes-failed-gpu-reset.txt",
            ["GPU page fault(s)", "MES failure(s)", "GPU reset(s)"],
        ),
        (
            "gfx1030-rx6900xt-ring-gfx-timeout-mode1-reset.txt",
            ["ring timeout(s)", "GPU reset(s)", "VRAM lost"],
        ),
        ("navi14-kfd-did-missing-in-supported-devices.txt", ["device(s) KFD does not support"]),
        (
            "gfx1151-strix-halo-unknown-param-gtt_size-gttsize-deprecated-gtt-ttm-mismatch.txt",
            ["unknown parameter 'gtt_size' ignored"],
        ),
    ],
)
def test_kernel_log_of_a_snapshot(root: RootBuilder, sample: str, expected: list[str]) -> None:
    root.topology("topo-mi210-xgmi-pcie").kfd()
    root.write(".therock/dmesg.txt", real(f"dmesg/{sample}"))
    messages = " | ".join(d.message for d in found(detect(Root(root.path), {}))["kernel-log"])
    for text in expected:
        assert text in messages


def test_kernel_command_line_from_the_log_when_proc_cmdline_is_absent(root: RootBuilder) -> None:
    root.topology("topo-mi210-xgmi-pcie").kfd()
    root.write(
        ".therock/dmesg.txt",
        real("cmdline/gfx1151-strix-halo-ubuntu-oem-ttm-amdttm-pages-limit-dmesg-head.txt"),
    )
    env = detect(Root(root.path), {})
    assert env.param("ttm.pages_limit").value == "32768000"  # type: ignore[union-attr]


def test_unreadable_sources_are_reported_once_each(root: RootBuilder) -> None:
    root.node(1, "kfd-topology-mi210-node2-properties.txt").kfd()
    (root.path / "proc/meminfo").mkdir(parents=True)
    diags = found(detect(Root(root.path), {}))["source-unreadable"]
    assert [d.message for d in diags] == ["proc/meminfo: is a directory, expected a file"]


def test_group_member_who_has_not_logged_in_again() -> None:
    env = example("mi210-8x")
    kfd = env.kfd._replace(readable=False, writable=False, group="render", relogin=True)
    diag = found(env._replace(kfd=kfd))["kfd-denied"][0]
    assert "you are a member, but not in this login session" in diag.message
    assert diag.fix == "log out and in again (or run `newgrp render`)"


def test_rocminfo_disagreeing_with_the_topology(root: RootBuilder) -> None:
    root.topology("topo-mi210-xgmi-pcie").kfd()
    root.write(".therock/rocminfo.txt", real("rocminfo/gfx90a-4x-mi210-2x-epyc7763-rocm5.7.1.txt"))
    diags = found(detect(Root(root.path), {}))
    assert diags["rocminfo-mismatch"][0].message == (
        "rocminfo lists gfx90a x4 but the KFD topology lists gfx90a x8"
    )
    assert "source-unreadable" not in diags


def test_kernel_log_gtt_ttm_mismatch_is_one_memory_config_diagnostic(root: RootBuilder) -> None:
    root.topology("topo-mi210-xgmi-pcie").kfd()
    sample = "gfx1151-strix-halo-unknown-param-gtt_size-gttsize-deprecated-gtt-ttm-mismatch.txt"
    root.write(".therock/dmesg.txt", real(f"dmesg/{sample}"))
    diags = found(detect(Root(root.path), {}))
    (diag,) = diags["memory-config"]
    assert "the kernel log says GTT size 120 GiB but TTM size 62.2 GiB" in diag.message
    assert not any("GTT size" in d.message for d in diags["kernel-log"])


def test_vram_carve_out_small_and_large() -> None:
    env = example("strix-halo-gtt-raised")  # 4 GiB of carve-out, 125 GiB of RAM
    small = env.gpus[0]._replace(vram_total_bytes=512 << 20)  # the BIOS minimum
    message = found(env._replace(gpus=(small,)))["gpu-memory"][0].message
    assert "; carve-out 512 MiB;" in message
    large = env.gpus[0]._replace(vram_total_bytes=128 << 30, gtt_total_bytes=None)
    diags = found(env._replace(gpus=(large,)))
    # KFD's bank is not the carve-out, so the driver allocates from GTT (96 GiB here).
    (diag,) = diags["memory-config"]
    assert "the 128 GiB carve-out is larger than GTT" in diag.message


def test_gart_is_not_gtt(root: RootBuilder) -> None:
    root.node(1, "kfd-topology-mi210-node2-properties.txt").kfd()
    root.write(
        "proc/cmdline",
        real("cmdline/mi210-arm64-amd-gfx-list-gartsize-vramlimit-gttsize-params.txt"),
    )
    diag = found(detect(Root(root.path), {}))["gart-not-gtt"][0]
    assert diag.message == "amdgpu.gartsize=32 sizes GART (the driver's own mappings), not GTT"


def test_sdk_built_for_another_family(root: RootBuilder) -> None:
    shutil.copytree(EXAMPLES / "strix-halo", root.path, dirs_exist_ok=True)
    versions = {"therock": {"rocm-sdk-libraries-gfx110x-all": "7.10.0a20251124"}, "torch": None}
    root.write(".therock/python-versions.json", json.dumps(versions))
    diag = found(detect(Root(root.path), {}))["rocm-build-mismatch"][0]
    assert diag.message == (
        "gfx1151 is not among the targets TheRock's SDK was installed for (gfx110x-all)"
    )
    versions["therock"] = {"rocm-sdk-libraries-gfx1151": "7.10.0a20251124"}
    root.write(".therock/python-versions.json", json.dumps(versions))
    assert "rocm-build-mismatch" not in found(detect(Root(root.path), {}))
