"""Marker arguments and their evaluation, without pytest machinery."""

from __future__ import annotations

import pytest
from conftest import REALDATA, RootBuilder, real

from pytest_therock.detect import detect
from pytest_therock.environment import GIB, Environment, KernelParam
from pytest_therock.markers import MarkerError, parse_marker, requirements
from pytest_therock.memory import DEFAULT_SOURCE, gtt_info
from pytest_therock.sysroot import Root


def mi210() -> Environment:
    return detect(Root(REALDATA / "kfd-topology" / "topo-mi210-xgmi-pcie"), {})


def no_gpu(root: RootBuilder) -> Environment:
    root.write(
        "proc/cmdline", real("cmdline/gfx1152-krackan-cachyos-proc-cmdline-cwsr-enable-0.txt")
    )
    return detect(Root(root.path), {})


def strix_halo_like(gtt_total: int, ram: int, pages_limit: str | None) -> Environment:
    """The MI210 topology re-labelled as a gfx1151 APU, with a real Strix Halo's memory values."""
    env = mi210()
    gpu = env.gpus[0]._replace(
        gfx_target="gfx1151",
        is_apu=True,
        vram_total_bytes=int(
            real("sysfs/gfx1151-strix-halo-128G-uma512M-card1-mem_info_vram_total.txt")
        ),
        gtt_total_bytes=gtt_total,
    )
    params = (KernelParam("ttm.pages_limit", pages_limit, "cmdline"),) if pages_limit else ()
    return env._replace(gpus=(gpu,), system_memory_bytes=ram, kernel_params=params)


def check(marker: str, env: Environment, *args: object, **kwargs: object) -> str | None:
    req = parse_marker(marker, args, kwargs)
    assert req is not None
    return req.check(env)


def test_target_marker_met_and_unmet() -> None:
    env = mi210()
    assert check("requires_gfx90a", env) is None
    assert check("requires_gfx9", env) is None  # the family
    assert check("requires_gfx", env, "gfx1151", "gfx90*") is None
    assert check("requires_gfx1151", env) == "requires gfx1151, found gfx90a x8"
    assert check("requires_gfx", env, "gfx110X-all", "gfx115x") == (
        "requires gfx110X-all or gfx115x, found gfx90a x8"
    )


def test_reason_without_gpu_says_why(root: RootBuilder) -> None:
    reason = check("requires_gfx1151", no_gpu(root))
    assert reason == "requires gfx1151, found no AMD GPU (no /dev/kfd)"  # no driver advice


def test_hidden_gpus_are_named_in_the_reason() -> None:
    env = mi210()._replace(env_vars={"HIP_VISIBLE_DEVICES": "-1"})
    assert check("requires_gpus", env, 1) == (
        "requires 1 AMD GPU, found 0: no visible AMD GPU (8 hidden by HIP_VISIBLE_DEVICES='-1')"
    )


def test_gpu_count() -> None:
    assert check("requires_gpus", mi210(), 8) is None
    assert check("requires_gpus", mi210(), 9) == "requires 9 AMD GPUs, found 8 (gfx90a x8)"


def test_apu() -> None:
    assert check("requires_apu", mi210()) == "requires an APU, found discrete gfx90a x8"
    assert check("requires_apu", strix_halo_like(96 * GIB, 128 * GIB, "25165824")) is None


def test_gtt_default_half_of_ram_names_the_fix() -> None:
    # The gfx1151 rocminfo sample: 131015868 KB of RAM, GPU pool 65507932 KB (half).
    ram = 131015868 * 1024
    env = strix_halo_like(65507932 * 1024, ram, None)
    info = gtt_info(env, env.gpus[0])
    assert info.limit_source == DEFAULT_SOURCE
    assert check("requires_gtt_gb", env, 64) == (
        "requires 64 GiB GTT, found 62.5 GiB on gfx1151 "
        "(GTT defaults to 50% of RAM; raise ttm.pages_limit)"
    )
    assert check("requires_gtt_gb", env, 62) is None


def test_gtt_raised_by_pages_limit() -> None:
    env = strix_halo_like(96 * GIB, 128 * GIB, "25165824")
    info = gtt_info(env, env.gpus[0])
    assert (info.limit_bytes, info.limit_source, info.usable_bytes) == (
        96 * GIB,
        "ttm.pages_limit",
        96 * GIB,
    )
    assert info.exceeds_vram
    assert check("requires_gtt_gb", env, 96) is None
    assert check("requires_gtt_gb", env, 96.5) is not None


def test_usable_gtt_is_the_smaller_of_driver_size_and_ttm_limit() -> None:
    # The kernel's "GTT size has been set as 128849018880 but TTM size has been set as 66818834432".
    env = strix_halo_like(128849018880, 133637668864, "16313192")
    info = gtt_info(env, env.gpus[0])
    assert info.disagrees
    assert info.usable_bytes == 16313192 * 4096 == 66818834432
    assert check("requires_gtt_gb", env, 100) == (
        "requires 100 GiB GTT, found 62.2 GiB on gfx1151 "
        "(TTM limit set by ttm.pages_limit; raise ttm.pages_limit)"
    )


def test_vram_on_an_apu_explains_the_carve_out() -> None:
    env = strix_halo_like(96 * GIB, 128 * GIB, "25165824")
    assert check("requires_vram_gb", env, 4) is None
    assert check("requires_vram_gb", env, 16) == (
        "requires 16 GiB VRAM, found 4 GiB on gfx1151 "
        "(an APU's VRAM is the BIOS carve-out; requires_gpu_memory_gb counts either pool)"
    )


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "message"),
    [
        ("requires_gtt_gb", ("lots",), {}, "expected a number of GiB, got 'lots'"),
        ("requires_gtt_gb", (-1,), {}, "must be greater than 0"),
        (
            "requires_gtt_gb",
            (float("nan"),),
            {},
            "expected a number of GiB, e.g. requires_gtt_gb(64), got nan",
        ),
        ("requires_gtt_gb", (1e300,), {}, "must be greater than 0 and at most 4194304 GiB"),
        ("requires_gtt_gb", (10**400,), {}, "got <int of about 401 digits>"),
        ("requires_vram_gb", (float("inf"),), {}, "GiB (2..52 bytes), got inf"),
        ("requires_gtt_gb", (True,), {}, "expected a number of GiB"),
        ("requires_gtt_gb", (), {}, "takes exactly one number"),
        ("requires_gtt_gb", (64, 2), {}, "takes exactly one number"),
        ("requires_gtt_gb", (64,), {"unit": "GB"}, "unknown keyword 'unit'"),
        ("requires_vram_gb", ("16G",), {}, "expected a number of GiB"),
        ("requires_gpus", (1.5,), {}, "expected a whole number"),
        ("requires_gpus", (0,), {}, "must be at least 1 and at most 65536, got 0"),
        ("requires_gpus", (10**5000,), {}, "got <int of about 5001 digits>"),
        ("requires_apu", (1,), {}, "takes no arguments"),
        ("requires_gfx1151", ("gfx1100",), {}, "takes no arguments"),
        ("requires_gfx1115", (), {}, "unknown gfx target or family 'gfx1115'; did you mean"),
        ("requires_gfx", (), {}, "name at least one target"),
        ("requires_gfx", (1151,), {}, "targets are strings"),
        ("requires_gfx", ("radeon",), {}, "unknown gfx target or family 'radeon'"),
        ("requires_gfx", ("gfx1151",), {"strict": True}, "unknown keyword 'strict'"),
    ],
)
def test_misuse_says_what_is_wrong(
    name: str, args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(MarkerError, match=message.replace("(", r"\(").replace(")", r"\)")) as info:
        parse_marker(name, args, kwargs)
    assert str(info.value).startswith(name)


def test_markers_of_other_plugins_are_left_alone() -> None:
    assert requirements([("requires_network", (), {}), ("skipif", (True,), {})]) == []


def test_unknown_size_names_the_file_that_was_wrong(root: RootBuilder) -> None:
    assert check("requires_vram_gb", mi210(), 1) == (
        "requires 1 GiB VRAM; how much VRAM gfx90a can allocate is unknown (no DRM card found for "
        "this GPU, so no "
        "mem_info_vram_total)"
    )
    root.node(1, "kfd-topology-mi210-node2-properties.txt")  # PCI 0000:63:00.0
    root.card("card0", "0000:63:00.0")
    (root.path / "sys/class/drm/card0/device/mem_info_vram_total").mkdir()
    env = detect(Root(root.path), {})
    assert check("requires_vram_gb", env, 1) == (
        "requires 1 GiB VRAM; how much VRAM gfx90a can allocate is unknown "
        "(mem_info_vram_total: is a directory, expected a file)"
    )
