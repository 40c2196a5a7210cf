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
    # Pasted from a 184-column terminal: "Linux version" and "Command line:" wrap mid-word.
    "gfx1151-strix-halo-ubuntu25.10-inkernel-6.17-amdttm-only-gtt-62816M.txt": {
        "events": {},
        "vram_ready_bytes": 512 * MIB,
        "gtt_ready_bytes": 62816 * MIB,
        "command_line_has": "amdttm.pages_limit=32768000 amdttm.page_pool_size=32768000 "
        "numa_balancing=disable",
        "wrapped": True,
    },
    "gfx1151-strix-halo-ubuntu25.10-inkernel-6.17-gttsize128000-amdttm-gtt-ttm-unusual.txt": {
        "events": {"gttsize-deprecated": 1, "gtt-ttm-mismatch": 1},
        "vram_ready_bytes": 512 * MIB,
        "gtt_ready_bytes": 128000 * MIB,
        "gtt_size_bytes": 134217728000,
        "ttm_size_bytes": 65867993088,
        "command_line_has": "amdgpu.gttsize=128000 amdttm.pages_limit=32768000 "
        "amdttm.page_pool_size=32768000",
        "wrapped": True,
    },
    "gfx1151-strix-halo-debian13-inkernel-6.12-amdttm-only-gtt-63973M.txt": {
        "events": {},
        "vram_ready_bytes": 512 * MIB,
        "gtt_ready_bytes": 63973 * MIB,
        "command_line_has": "numa_balancing=disable amdttm.pages_limit=32768000 "
        "amdttm.page_pool_size=32768000",
        "wrapped": True,
    },
}
WRAPPED = sorted(name for name, want in EXPECTED.items() if want.get("wrapped"))


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
    assert facts.cut_parameters == ()
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
    assert facts.command_line.endswith(" amdttm.pages_limit=32768000")
    assert "ttm.pages_limit=32768000" in facts.command_line
    # One copy, one line: its last word may be where the paste ended; flagged, not read.
    assert facts.cut_parameters == ("amdttm.page_pool_size=32768000",)
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
@pytest.mark.parametrize("name", sorted(set(EXPECTED) - set(WRAPPED)))  # shapes of records
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


# --------------------------------------------------------------------------- wrapped pastes


def _unwrapped(text: str) -> list[str]:
    """The sample's records as the kernel logged them: each wrapped line rejoined (the
    terminal cut at column 184, so a piece that long continues on the next line)."""
    records: list[str] = []
    for line in text.splitlines():
        if records and len(records[-1]) % 184 == 0 and not line.startswith(("[", "...")):
            records[-1] += line
        else:
            records.append(line)
    return records


def _wrapped(records: list[str], width: int, keep_space: bool = True) -> str:
    """What a terminal ``width`` columns wide shows, copied: every record cut at the last
    column; ``keep_space=False``: the paste also drops the trailing space of a piece."""
    out = []
    for record in records:
        pieces = [record[i : i + width] for i in range(0, len(record), width)] or [""]
        out += (
            pieces if keep_space else [p.rstrip(" ") if p is not pieces[-1] else p for p in pieces]
        )
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("name", WRAPPED)
def test_wrapped_command_line_is_rejoined(name: str) -> None:
    facts = scan_kernel_log(_read(DMESG / name))
    records = _unwrapped(_read(DMESG / name))
    logged = next(r for r in records if "Command line: " in r).split("Command line: ", 1)[1]
    assert facts.command_line == logged.strip()
    assert facts.cut_parameters == ()
    assert not any(w.endswith((".", "_")) for w in facts.command_line.split())


@pytest.mark.parametrize("name", WRAPPED)
@pytest.mark.parametrize("keep_space", [True, False])
def test_every_wrap_column_gives_the_same_command_line(name: str, keep_space: bool) -> None:
    records = _unwrapped(_read(DMESG / name))
    logged = next(r for r in records if "Command line: " in r).split("Command line: ", 1)[1]
    gpu_params = _gpu_params(logged)
    last = logged.split()[-1]
    for width in range(60, 260):
        facts = scan_kernel_log(_wrapped(records, width, keep_space))
        assert facts.command_line is not None, width
        if facts.cut_parameters:
            # A GPU setting ending the record where no wrap shows the record ended there
            # (it fits one line, or fills it) may be cut: flagged, never read.
            assert facts.cut_parameters == (last,) and "=" in last, width
            assert _gpu_params(facts.command_line) == {
                k: v for k, v in gpu_params.items() if k != last.partition("=")[0]
            }, width
            continue
        assert _gpu_params(facts.command_line) == gpu_params, width
        if keep_space:  # nothing lost: the very same command line
            assert facts.command_line == logged.strip(), width


def _gpu_params(command_line: str) -> dict[str, str]:
    from pytest_therock.parsing import parse_cmdline

    params = parse_cmdline(command_line)
    return {k: v for k, v in params.items() if k.startswith(("amdgpu.", "ttm.", "amdttm."))}


@pytest.mark.parametrize("name", WRAPPED)
@pytest.mark.parametrize("shape", [_as_dmesg_t, _as_journal])
def test_wrapped_logs_of_other_shapes(name: str, shape: Any) -> None:
    records = shape(
        "\n".join(r for r in _unwrapped(_read(DMESG / name)) if r != "...")
    ).splitlines()
    logged = next(r for r in records if "Command line: " in r).split("Command line: ", 1)[1]
    for width in (80, 120, 133, 200):
        assert scan_kernel_log(_wrapped(records, width)).command_line == logged.strip(), width


@pytest.mark.parametrize("name", WRAPPED)
def test_a_wrap_that_cannot_be_rejoined_is_flagged_never_read_as_a_name(name: str) -> None:
    # Without a record prefix (`dmesg -t`) and with no other line as wide, a wrapped
    # line cannot be told from the next message: what the cut leaves is flagged.
    records = [r.split("] ", 1)[1] for r in _unwrapped(_read(DMESG / name)) if r.startswith("[")]
    logged = next(r for r in records if r.startswith("Command line: "))
    names = {w.partition("=")[0] for w in logged.split()}
    for cut in range(len("Command line: ") + 1, len(logged)):
        text = "\n".join([logged[:cut], logged[cut:], *records[2:]])
        facts = scan_kernel_log(text)
        assert facts.command_line is not None
        for word in facts.command_line.split():
            name = word.partition("=")[0]
            assert not name.endswith((".", "_", "-")), (cut, word)
            if name.startswith(("amdttm.", "ttm.", "amdgpu.")) and "=" not in word:
                pytest.fail(f"cut {cut}: {word!r} read as a parameter without its value")
        ends = logged[:cut].split()[-1]  # the paste's first line ends in this word
        for word in facts.cut_parameters:
            whole = word.partition("=")[0] in names and "=" in word
            assert not whole or word == ends, (cut, word)
        if "=" in ends and ends.startswith(("amdttm.", "ttm.", "amdgpu.")):
            assert ends in facts.cut_parameters, cut  # a value maybe cut is not read


@pytest.mark.parametrize("name", WRAPPED)
def test_doctor_over_a_wrapped_log_reads_the_right_parameters(name: str, tmp_path: Path) -> None:
    from pytest_therock.detect import detect
    from pytest_therock.diagnostics import run_checks
    from pytest_therock.sysroot import Root

    (tmp_path / ".therock").mkdir()
    (tmp_path / ".therock/dmesg.txt").write_text(_read(DMESG / name))
    env = detect(Root(tmp_path), {})
    names = {p.name for p in env.kernel_params}
    assert {"amdttm.pages_limit", "amdttm.page_pool_size"} <= names
    assert not any(n.endswith((".", "_")) for n in names)
    found = run_checks(env)
    assert not [d for d in found if d.code == "kernel-param-ignored"]  # none misspelled
    said = " ".join(f"{d.message} {d.fix}" for d in found)
    assert not any(cut in said for cut in ("ttm. ", "ttm.=", "ttm.pages_ ", "ttm.pa "))


def test_a_cut_parameter_is_reported_where_the_log_gives_the_command_line(tmp_path: Path) -> None:
    from pytest_therock.detect import detect
    from pytest_therock.diagnostics import run_checks
    from pytest_therock.sysroot import Root

    # `dmesg -t` of the Ubuntu log (no prefix to tell a wrap from a record), cut where
    # the paste cut it: after "amdttm.".
    name = "gfx1151-strix-halo-ubuntu25.10-inkernel-6.17-amdttm-only-gtt-62816M.txt"
    records = [r.split("] ", 1)[1] for r in _unwrapped(_read(DMESG / name)) if r.startswith("[")]
    logged = next(r for r in records if r.startswith("Command line: "))
    cut = logged.index("amdttm.page_pool_size") + len("amdttm.")
    (tmp_path / ".therock").mkdir()
    (tmp_path / ".therock/dmesg.txt").write_text("\n".join([logged[:cut], logged[cut:]]))
    env = detect(Root(tmp_path), {})
    assert {p.name for p in env.kernel_params} == {"amdttm.pages_limit"}
    messages = [d.message for d in run_checks(env) if d.code == "source-unreadable"]
    assert (
        "kernel log: Command line: 'amdttm.' is or may be cut short (a wrapped or cut "
        "paste?): not read as a setting"
    ) in messages


ROCM_5562 = "gfx1151-strix-halo-ubuntu25.10-inkernel-6.17-gttsize128000-amdttm-gtt-ttm-unusual.txt"


def test_a_paste_cut_inside_the_last_value_or_name_is_flagged_not_read() -> None:
    # The ROCm#5562 Command line, unwrapped, cut at every column: with the newline or
    # without, at the end of the log or followed by the log's next record. The last
    # word is never read as a setting when it is or may start a GPU parameter (the
    # reviewer's `amdttm.pages_limit=32`, `a`, `amdgpu.gtts`); it is flagged instead.
    records = _unwrapped(_read(DMESG / ROCM_5562))
    index = next(i for i, r in enumerate(records) if "Command line: " in r)
    record = records[index]
    start = record.index("Command line: ") + len("Command line: ")
    whole = set(record[start:].split())
    for cut in range(start + 1, len(record)):
        piece = record[:cut]
        last = piece.split()[-1]
        for text in (piece, piece + "\n", "\n".join([piece, *records[index + 1 :]])):
            facts = scan_kernel_log(text)
            assert facts.command_line is not None
            read = facts.command_line.split()
            if last.startswith(("a", "t", "d")) and not last.startswith("BOOT"):
                gpu = any(
                    f"{m}.".startswith(last.partition("=")[0]) or last.startswith(f"{m}.")
                    for m in ("amdgpu", "amdttm", "ttm", "amdkfd", "drm")
                )
                if gpu:
                    assert last not in read and last in facts.cut_parameters, (cut, text)
            # every word read is a whole word of the record
            assert all(w in whole for w in read[:-1]), cut


def test_a_command_line_confirmed_by_its_second_copy_keeps_its_last_word() -> None:
    # x86 logs the command line twice (Command line:, Kernel command line:): when both
    # copies agree, the last word is whole.
    name = "gfx1151-strix-halo-unknown-param-gtt_size-gttsize-deprecated-gtt-ttm-mismatch.txt"
    text = _read(DMESG / name)
    first = text.splitlines()[0]
    cut = first[: first.rindex("amdgpu.gtt_size=") + len("amdgpu.gtt_size=12")]
    facts = scan_kernel_log(text)
    assert facts.cut_parameters == () and facts.command_line is not None
    assert facts.command_line.endswith("amdgpu.gtt_size=122880 vt.handoff=7")
    alone = scan_kernel_log(cut + "\n" + "\n".join(text.splitlines()[2:]))
    assert alone.cut_parameters == ("amdgpu.gtt_size=12",)
    assert alone.command_line is not None and alone.command_line.endswith(" splash")


def test_a_command_line_of_many_cut_words_stays_bounded() -> None:
    import time

    words = " ".join(f"amdttm.p{i}." for i in range(100_000))
    start = time.perf_counter()
    facts = scan_kernel_log(f"[    0.000000] Command line: ro {words}\n")
    assert time.perf_counter() - start < 5
    assert facts.command_line == "ro" and len(facts.cut_parameters) == 20


PAGE_FAULTS = "gfx1151-strix-halo-pagefault-mes-failed-gpu-reset.txt"  # ROCm#5443


@pytest.mark.parametrize("keep_space", [True, False])
def test_a_wrapped_event_log_loses_no_event_and_quotes_no_fragment(keep_space: bool) -> None:
    # The real #5443 page-fault log wrapped at every terminal width (60 columns lost
    # its 10 page faults and its MES failure; 80 quoted `pasid:3277.` as a whole line):
    # the same counts as the log itself, and each "last" line is a whole record.
    text = _read(DMESG / PAGE_FAULTS)
    records = [r for r in text.splitlines() if r.strip()]
    whole = scan_kernel_log(text)
    assert whole.count("page-fault") == 10 and whole.count("mes-failure") == 1
    for width in range(40, 200):
        facts = scan_kernel_log(_wrapped(records, width, keep_space))
        assert _counts(facts) == _counts(whole), width
        for event in facts.events:
            assert event.last_line in records, (width, event.last_line)
        # a paste that also dropped the spaces at the wrap may leave a piece a few
        # columns short: it is still joined or flagged, never silently split
        assert facts.unjoined_lines == 0 or not keep_space, width


def test_a_wrap_no_width_explains_is_said(tmp_path: Path) -> None:
    from pytest_therock.detect import detect
    from pytest_therock.sysroot import Root

    # The #5443 log wrapped at 60 columns, then one wrapped piece pasted a column short
    # of the rest: no learnt width explains it, so the log is said to look wrapped.
    records = [r for r in _read(DMESG / PAGE_FAULTS).splitlines() if r.strip()]
    lines = _wrapped(records, 60).splitlines()
    piece = next(i for i, line in enumerate(lines) if "page f" in line)
    lines[piece] = lines[piece][:-3]
    (tmp_path / ".therock").mkdir()
    (tmp_path / ".therock/dmesg.txt").write_text("\n".join(lines) + "\n")
    env = detect(Root(tmp_path), {})
    said = [p.reason for p in env.problems if p.source == "kernel log"]
    assert any("looks wrapped" in m for m in said), env.problems
