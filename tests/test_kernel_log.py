"""scan_kernel_log over the real dmesg samples, the other log formats, and any text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_therock.kernel_log import KernelLogFacts, scan_kernel_log

REALDATA = Path(__file__).parent / "realdata"
DMESG = REALDATA / "dmesg"
CMDLINE_HEAD = (
    REALDATA / "cmdline" / "gfx1151-strix-halo-ubuntu-oem-ttm-amdttm-pages-limit-dmesg-head.txt"
)
MIB = 1024 * 1024

# What each real sample must yield: event counts (absent kinds are 0) and facts.
EXPECTED: dict[str, dict[str, Any]] = {
    "gfx1030-rx6900xt-ring-gfx-timeout-mode1-reset.txt": {
        "events": {"ring-timeout": 1, "gpu-reset": 1, "vram-lost": 1},
    },
    "gfx1151-strix-halo-pagefault-mes-failed-gpu-reset.txt": {
        "events": {"page-fault": 10, "mes-failure": 1, "gpu-reset": 1},
    },
    "gfx1151-strix-halo-memory-ready-512M-vram-128000M-gtt.txt": {
        "events": {},
        "vram_ready_bytes": 512 * MIB,
        "gtt_ready_bytes": 128000 * MIB,
    },
    "navi14-kfd-did-missing-in-supported-devices.txt": {
        "events": {"kfd-unsupported-device": 1},
    },
    "gfx1151-strix-halo-unknown-param-gtt_size-gttsize-deprecated-gtt-ttm-mismatch.txt": {
        "events": {"unknown-parameter": 1, "gttsize-deprecated": 1, "gtt-ttm-mismatch": 1},
        "vram_ready_bytes": 1024 * MIB,
        "gtt_ready_bytes": 122880 * MIB,
        "gtt_size_bytes": 128849018880,
        "ttm_size_bytes": 66818834432,
        "unknown_parameters": ("gtt_size",),
        "command_line_has": "amdgpu.gtt_size=122880",
    },
    "gfx1151-strix-halo-debian13-dkms-gttsize-mismatch-pagefaults-gpf-noise.txt": {
        # 77 userspace "general protection fault" lines must not count.
        "events": {"page-fault": 7, "gttsize-deprecated": 1, "gtt-ttm-mismatch": 1},
        "vram_ready_bytes": 98304 * MIB,
        "gtt_ready_bytes": 98304 * MIB,
        "gtt_size_bytes": 103079215104,
        "ttm_size_bytes": 16638816256,
        "command_line_has": "amdgpu.gttsize=98304 ttm.pages_limit=25000000",
    },
    "gfx1151-strix-halo-gtt-ready-63968M-newer-dev_info-format.txt": {
        "events": {},
        "gtt_ready_bytes": 63968 * MIB,
    },
    "gfx1103-780m-32G-ram-8G-carveout-vram-gtt-memory-ready.txt": {
        "events": {},
        "vram_ready_bytes": 8192 * MIB,
        "gtt_ready_bytes": 11867 * MIB,
    },
    "gfx1151-strix-halo-ds4-bios-uma-96G-gtt-15860M.txt": {
        "events": {},
        "gtt_ready_bytes": 15860 * MIB,
    },
    "gfx1151-strix-halo-ubuntu25.10-inkernel-6.17-amdttm-only-gtt-62816M.txt": {
        "events": {},
        "vram_ready_bytes": 512 * MIB,
        "gtt_ready_bytes": 62816 * MIB,
        "command_line_has": "amdttm.pages_limit=32768000",
    },
    "gfx1151-strix-halo-ubuntu25.10-inkernel-6.17-gttsize128000-amdttm-gtt-ttm-unusual.txt": {
        "events": {"gttsize-deprecated": 1, "gtt-ttm-mismatch": 1},
        "vram_ready_bytes": 512 * MIB,
        "gtt_ready_bytes": 128000 * MIB,
        "gtt_size_bytes": 134217728000,
        "ttm_size_bytes": 65867993088,
        "command_line_has": "amdgpu.gttsize=128000",
    },
}


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _counts(facts: KernelLogFacts) -> dict[str, int]:
    return {event.kind: event.count for event in facts.events}


def test_every_dmesg_sample_is_checked() -> None:
    assert sorted(p.name for p in DMESG.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_sample(name: str) -> None:
    text = _read(DMESG / name)
    want = EXPECTED[name]
    facts = scan_kernel_log(text)

    assert _counts(facts) == want["events"]
    for field in ("vram_ready_bytes", "gtt_ready_bytes", "gtt_size_bytes", "ttm_size_bytes"):
        assert getattr(facts, field) == want.get(field), field
    assert facts.unknown_parameters == want.get("unknown_parameters", ())
    if "command_line_has" in want:
        assert facts.command_line is not None
        assert want["command_line_has"] in facts.command_line
    else:
        assert facts.command_line is None
    # last_line is a verbatim (stripped) line of the sample.
    lines = {line.strip() for line in text.splitlines()}
    assert all(event.last_line in lines for event in facts.events)


def test_counts_match_the_lines_in_the_file() -> None:
    text = _read(DMESG / "gfx1151-strix-halo-pagefault-mes-failed-gpu-reset.txt")
    facts = scan_kernel_log(text)
    assert facts.count("page-fault") == text.count("[gfxhub] page fault (")
    faults = [e for e in facts.events if e.kind == "page-fault"]
    assert faults[0].last_line == [x for x in text.splitlines() if "page fault" in x][-1]
    assert facts.count("not-a-kind") == 0


def test_events_come_in_a_stable_order() -> None:
    text = _read(DMESG / "gfx1030-rx6900xt-ring-gfx-timeout-mode1-reset.txt")
    kinds = [event.kind for event in scan_kernel_log(text).events]
    assert kinds == ["ring-timeout", "gpu-reset", "vram-lost"]
    assert kinds == [event.kind for event in scan_kernel_log(text).events]


def test_command_line_from_dmesg_head() -> None:
    text = _read(CMDLINE_HEAD)
    facts = scan_kernel_log(text)
    assert facts.command_line is not None
    assert facts.command_line.startswith("BOOT_IMAGE=/boot/vmlinuz-6.17.0-1009-oem ")
    assert facts.command_line.endswith("amdttm.page_pool_size=32768000")
    assert "ttm.pages_limit=32768000" in facts.command_line
    assert facts.events == ()


def test_first_command_line_wins() -> None:
    text = _read(
        DMESG / "gfx1151-strix-halo-debian13-dkms-gttsize-mismatch-pagefaults-gpf-noise.txt"
    )
    first = text.splitlines()[0]
    assert scan_kernel_log(text).command_line == first.split("Command line: ", 1)[1]


# The same real log in the other shapes a kernel log arrives in.
def _strip_timestamps(text: str) -> str:
    """Lines without their ``[ seconds]`` stamp; a pasted log's wrapped continuation lines
    and its "..." carry none and stay as they are."""
    return "\n".join(line.split("] ", 1)[-1] for line in text.splitlines())


def _as_kmsg(text: str) -> str:
    records = [
        f"6,{n},{1000 * n},-;{line}" for n, line in enumerate(_strip_timestamps(text).splitlines())
    ]
    # /dev/kmsg follows device messages with " KEY=value" dictionary lines.
    return "\n SUBSYSTEM=pci\n DEVICE=+pci:0000:c5:00.0\n".join(records)


def _as_dmesg_t(text: str) -> str:
    return "\n".join(
        f"[Sat Apr 11 21:{n % 60:02d}:00 2026] {line}"
        for n, line in enumerate(_strip_timestamps(text).splitlines())
    )


def _as_journal(text: str) -> str:
    return "\n".join(
        f"Apr 11 21:30:00 evo kernel: {x}" for x in _strip_timestamps(text).splitlines()
    )


@pytest.mark.parametrize("shape", [_strip_timestamps, _as_kmsg, _as_dmesg_t, _as_journal])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_other_log_shapes_give_the_same_facts(shape: Any, name: str) -> None:
    text = _read(DMESG / name)
    plain, shaped = scan_kernel_log(text), scan_kernel_log(shape(text))
    assert _counts(shaped) == _counts(plain)
    assert shaped.vram_ready_bytes == plain.vram_ready_bytes
    assert shaped.gtt_ready_bytes == plain.gtt_ready_bytes
    assert (shaped.gtt_size_bytes, shaped.ttm_size_bytes) == (
        plain.gtt_size_bytes,
        plain.ttm_size_bytes,
    )
    assert shaped.unknown_parameters == plain.unknown_parameters
    assert shaped.command_line == plain.command_line


def test_windows_line_endings() -> None:
    text = _read(DMESG / "gfx1151-strix-halo-memory-ready-512M-vram-128000M-gtt.txt")
    facts = scan_kernel_log(text.replace("\n", "\r\n"))
    assert facts.gtt_ready_bytes == 128000 * MIB


# Wordings below are the kernel's format strings (sources in kernel_log.py), filled in.
@pytest.mark.parametrize(
    ("line", "kind"),
    [
        (
            "amdgpu 0000:03:00.0: amdgpu: ring sdma0 timeout, but soft recovered",
            "ring-soft-recovery",
        ),
        (
            "[drm:amdgpu_job_timedout [amdgpu]] *ERROR* ring gfx timeout, signaled seq=1",
            "ring-timeout",
        ),
        ("amdgpu 0000:03:00.0: amdgpu: GPU reset begin!. Source:  4", "gpu-reset"),
        ("amdgpu 0000:03:00.0: amdgpu: GPU reset(2) failed", "gpu-reset-failed"),
        ("amdgpu 0000:c5:00.0: [drm] device wedged, needs recovery", "device-wedged"),
        (
            "amdgpu 0000:75:00.0: amdgpu: 2 uncorrectable hardware errors detected in umc block",
            "ras-error",
        ),
        ("kfd kfd: amdgpu: GC IP 0b0004  not supported in kfd", "kfd-unsupported-device"),
        ("[drm:amdgpu_mes_init [amdgpu]] *ERROR* MES failed to response msg=3", "mes-failure"),
        (
            "amdgpu 0000:01:00.0: amdgpu: [gfxhub0] retry page fault (src_id:0 ring:0 vmid:1 "
            "pasid:32769, for process python pid 1 thread python pid 1)",
            "page-fault",
        ),
    ],
)
def test_kernel_wordings(line: str, kind: str) -> None:
    facts = scan_kernel_log(line)
    assert [(e.kind, e.count, e.last_line) for e in facts.events] == [(kind, 1, line)]


@pytest.mark.parametrize(
    "line",
    [
        "[drm] radeon: 256M of VRAM memory ready",
        "radeon 0000:01:00.0: GPU fault detected: 146 0x0c80440c",
        "BUG: unable to handle page fault for address: ffffb1c2c0000000",
        "traps: python[2327] general protection fault ip:7f63db8b09df sp:7f613e9fa850 error:0",
        "amdgpu 0000:0b:00.0: amdgpu: 0 uncorrectable hardware errors detected in umc block",
        "amdgpu 0000:0b:00.0: amdgpu: Total 3 uncorrectable hardware errors detected in umc block",
        "amdgpu 0000:c5:00.0: amdgpu: ring gfx_0.0.0 uses VM inv eng 0 on hub 0",
        "amdgpu 0000:c5:00.0: [drm] device wedged, but recovered through reset",
        "snd_hda_intel: unknown parameter 'gtt_size' ignored",
    ],
)
def test_lines_that_are_not_our_events(line: str) -> None:
    facts = scan_kernel_log(line)
    assert facts.events == ()
    assert facts.vram_ready_bytes is None
    assert facts.unknown_parameters == ()


def test_unknown_parameters_of_other_gpu_modules_are_qualified() -> None:
    text = (
        "amdgpu: unknown parameter 'gtt_size' ignored\n"
        "ttm: unknown parameter 'pages-limit' ignored\n"
        "amdgpu: unknown parameter 'gtt_size' ignored\n"
    )
    facts = scan_kernel_log(text)
    assert facts.unknown_parameters == ("gtt_size", "ttm.pages-limit")
    assert facts.count("unknown-parameter") == 3


def test_max_lines_keeps_the_most_recent_lines() -> None:
    text = _read(DMESG / "gfx1151-strix-halo-pagefault-mes-failed-gpu-reset.txt")
    tail = "\n".join(text.splitlines()[-40:])
    assert _counts(scan_kernel_log(text, max_lines=40)) == _counts(scan_kernel_log(tail))
    assert scan_kernel_log(text, max_lines=0).events == ()
    assert scan_kernel_log(text, max_lines=-5).events == ()


def test_empty_and_huge_numbers() -> None:
    assert scan_kernel_log("") == KernelLogFacts((), None, None, None, None, None, ())
    huge = "amdgpu: " + "9" * 5000 + "M of GTT memory ready."
    assert scan_kernel_log(huge).gtt_ready_bytes is None


_FRAGMENTS = st.sampled_from(
    [
        "amdgpu",
        "amdgpu 0000:c5:00.0: amdgpu: ",
        "[drm] ",
        "kfd kfd: ",
        "[    3.634911] ",
        "6,1234,5678,-;",
        "M of GTT memory ready.",
        "M of VRAM memory ready",
        "GTT size has been set as ",
        " but TTM size has been set as ",
        ": unknown parameter '",
        "' ignored",
        "Command line: ",
        "ring gfx_0.0.0 timeout",
        ", but soft recovered",
        "[gfxhub] page fault (",
        "uncorrectable hardware errors detected",
        "9" * 30,
        "0",
        "'",
        ";",
        "]",
        "\n",
        "\r",
        "\x00",
        " ",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_never_raises(text: str) -> None:
    facts = scan_kernel_log(text)
    assert all(event.count > 0 for event in facts.events)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=5)), max_size=40), st.integers(-3, 50))
def test_pattern_soup_never_raises(parts: list[str], max_lines: int) -> None:
    facts = scan_kernel_log("".join(parts), max_lines=max_lines)
    for value in (facts.vram_ready_bytes, facts.gtt_ready_bytes):
        assert value is None or value >= 0
