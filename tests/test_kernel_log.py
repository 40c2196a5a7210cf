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
    # One copy, one line, ended by its newline and the next record short of any width
    # the paste was cut at: its last word is whole and read.
    assert facts.command_line.endswith(
        " amdttm.pages_limit=32768000 amdttm.page_pool_size=32768000"
    )
    assert "ttm.pages_limit=32768000" in facts.command_line
    assert facts.cut_parameters == ()
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
            # (it fills the width), or ending a piece one column short of a width only
            # one line shows (a lost space, or a cut?), may be cut: flagged, never read.
            flagged = {w.partition("=")[0] for w in facts.cut_parameters}
            assert set(facts.cut_parameters) <= set(logged.split()), width
            assert last in facts.cut_parameters or not keep_space, width
            assert _gpu_params(facts.command_line) == {
                k: v for k, v in gpu_params.items() if k not in flagged
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


def _dmesg_t(records: list[str]) -> list[str]:
    """The records as ``dmesg -t`` prints them: without the ``[ seconds]`` stamp."""
    return [r.split("] ", 1)[1] if r.startswith("[") else r for r in records]


@pytest.mark.parametrize("name", WRAPPED)
@pytest.mark.parametrize("keep_space", [True, False])
def test_a_wrapped_dmesg_t_command_line_is_rejoined(name: str, keep_space: bool) -> None:
    # The real sample unwrapped, its stamps dropped as `dmesg -t` prints it, then wrapped
    # at every terminal width (all done here, from the real file): no prefix tells a
    # wrapped piece from a record, yet the command line is the one the kernel logged.
    records = _dmesg_t(_unwrapped(_read(DMESG / name)))
    logged = next(r for r in records if r.startswith("Command line: "))[len("Command line: ") :]
    gpu_params = _gpu_params(logged)
    last = logged.split()[-1]
    for width in range(40, 260):
        facts = scan_kernel_log(_wrapped(records, width, keep_space))
        assert facts.command_line is not None, width
        read = _gpu_params(facts.command_line)
        if facts.cut_parameters:
            # the record's last word, where its last piece fills the width (the paste
            # may have lost the piece after it), or (spaces lost) a word ending a piece
            # one short of a width only one line shows: whole words, flagged, not read
            flagged = {w.partition("=")[0] for w in facts.cut_parameters}
            assert set(facts.cut_parameters) <= set(logged.split()), width
            assert last in facts.cut_parameters or not keep_space, width
            assert read == {k: v for k, v in gpu_params.items() if k not in flagged}, width
            continue
        assert read == gpu_params, width
        if keep_space:
            assert facts.command_line == logged.strip(), width


@pytest.mark.parametrize("keep_space", [True, False])
def test_a_wrapped_dmesg_t_event_log_loses_no_event(keep_space: bool) -> None:
    # The #5443 page-fault log as `dmesg -t` prints it (stamps dropped here, from the
    # real file), wrapped at every terminal width: the same counts as the log itself,
    # and each quoted line a whole record.
    records = _dmesg_t([r for r in _read(DMESG / PAGE_FAULTS).splitlines() if r.strip()])
    whole = scan_kernel_log("\n".join(records))
    assert _counts(whole) == _counts(scan_kernel_log(_read(DMESG / PAGE_FAULTS)))
    for width in range(40, 200):
        facts = scan_kernel_log(_wrapped(records, width, keep_space))
        assert _counts(facts) == _counts(whole), width
        for event in facts.events:
            assert event.last_line in records, (width, event.last_line)


@pytest.mark.parametrize("name", sorted(set(EXPECTED) - set(WRAPPED)))
def test_an_unwrapped_dmesg_t_log_is_not_joined(name: str) -> None:
    # A log without stamps and without wraps: lines that happen to share the longest
    # length are records, not pieces; the same facts as the stamped log.
    text = _read(DMESG / name)
    plain = scan_kernel_log(text)
    shaped = scan_kernel_log("\n".join(_dmesg_t(text.splitlines())) + "\n")
    assert _counts(shaped) == _counts(plain)
    assert shaped.command_line == plain.command_line
    assert shaped.cut_parameters == ()


@pytest.mark.parametrize("name", WRAPPED)
def test_a_wrap_that_cannot_be_rejoined_is_flagged_never_read_as_a_name(name: str) -> None:
    # `dmesg -t`, the command line broken into two lines at every column (the break made
    # here from the real record): where the break is a terminal's wrap (the first piece
    # is the longest line) it is rejoined; where nothing explains it, what the break
    # leaves is flagged. A GPU setting is never read with a cut name or value.
    records = _dmesg_t(_unwrapped(_read(DMESG / name)))
    logged = next(r for r in records if r.startswith("Command line: "))
    gpu_params = _gpu_params(logged.split(": ", 1)[1])
    rest = [r for r in records if not r.startswith(("Linux version", "Command line"))]
    for cut in range(len("Command line: ") + 1, len(logged)):
        text = "\n".join([logged[:cut], logged[cut:], *rest])
        facts = scan_kernel_log(text)
        assert facts.command_line is not None
        for word in facts.command_line.split():
            name = word.partition("=")[0]
            assert not name.endswith((".", "_", "-")), (cut, word)
            if name.startswith(("amdttm.", "ttm.", "amdgpu.")) and "=" not in word:
                pytest.fail(f"cut {cut}: {word!r} read as a parameter without its value")
        read = _gpu_params(facts.command_line)
        assert all(gpu_params.get(k) == v for k, v in read.items()), (cut, read)
        if cut >= len(logged) - cut:  # a terminal's wrap: rejoined
            assert read.keys() | {w.partition("=")[0] for w in facts.cut_parameters} >= set(
                gpu_params
            ), cut


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

    # `dmesg -t` of the Ubuntu log (stamps dropped here, from the real file), broken
    # after "amdttm." where no terminal width explains the break (the first piece is
    # shorter than the rest): the cut name is flagged, nothing after it read.
    name = "gfx1151-strix-halo-ubuntu25.10-inkernel-6.17-amdttm-only-gtt-62816M.txt"
    logged = next(r for r in _dmesg_t(_unwrapped(_read(DMESG / name))) if "Command line: " in r)
    cut = logged.index("amdttm.pages_limit") + len("amdttm.")
    assert cut < len(logged) - cut
    (tmp_path / ".therock").mkdir()
    (tmp_path / ".therock/dmesg.txt").write_text("\n".join([logged[:cut], logged[cut:]]))
    env = detect(Root(tmp_path), {})
    assert not {p.name for p in env.kernel_params if p.name.startswith("amdttm")}
    messages = [d.message for d in run_checks(env) if d.code == "source-unreadable"]
    assert (
        "kernel log: Command line: 'amdttm.' is or may be cut short (a wrapped or cut "
        "paste?): not read as a setting"
    ) in messages


ROCM_5562 = "gfx1151-strix-halo-ubuntu25.10-inkernel-6.17-gttsize128000-amdttm-gtt-ttm-unusual.txt"


def test_a_complete_command_line_is_read_to_its_last_word() -> None:
    # A pasted command line that ends (with its newline, at the end of the text without
    # one, or before the next record) short of any width the paste was cut at is whole:
    # its last setting is read. The ROCm#5562 record unwrapped, and the /proc/cmdline
    # samples as a dmesg `Command line:` record (both derived here from the real files).
    records = _unwrapped(_read(DMESG / ROCM_5562))
    index = next(i for i, r in enumerate(records) if "Command line: " in r)
    proc = [
        "Command line: " + _read(REALDATA / "cmdline" / name).strip()
        for name in (
            "gfx1103-780m-arch-xanmod-proc-cmdline-gttsize-ttm-pages-limit.txt",
            "mi210-arm64-amd-gfx-list-gartsize-vramlimit-gttsize-params.txt",
        )
    ]
    for record in [records[index], *proc]:
        logged = record.split("Command line: ", 1)[1]
        for text in (record, record + "\n", "\n".join([record, *records[index + 1 :]])):
            facts = scan_kernel_log(text)
            assert facts.cut_parameters == (), text
            assert facts.command_line == logged, text
    # the ends read: amdgpu.gttsize=32 ends the MI210 list, ttm.pages_limit the 780M's
    facts = scan_kernel_log(proc[1])
    assert _gpu_params(facts.command_line or "")["amdgpu.gttsize"] == "32"


def test_doctor_reads_the_last_setting_of_a_single_pasted_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The whole kernel log is one pasted `Command line:` (the MI210 list of settings,
    # made a dmesg record here), without its newline: `doctor` reads amdgpu.gttsize at
    # its end and says nothing of a cut.
    import json

    from pytest_therock.cli import main

    listed = _read(
        REALDATA / "cmdline/mi210-arm64-amd-gfx-list-gartsize-vramlimit-gttsize-params.txt"
    )
    (tmp_path / ".therock").mkdir()
    (tmp_path / ".therock/dmesg.txt").write_text("Command line: " + listed.strip())
    main(["doctor", "--root", str(tmp_path), "--json"])
    data = json.loads(capsys.readouterr().out)
    params = {p["name"]: p["value"] for p in data["kernel_params"]}
    assert params["amdgpu.gttsize"] == "32" and params["amdgpu.vramlimit"] == "32"
    assert "cut short" not in json.dumps(data)


def test_a_command_line_cut_at_the_logs_width_is_flagged_not_read() -> None:
    # The ROCm#5562 log with every line cut at one column (as `dmesg | cut -c1-N`, a
    # terminal that does not wrap, or a paste that lost the wrapped pieces; cut here from
    # the real records), at every column: the command line's last piece fills the
    # width, so its last word may be cut: when it is or may start a GPU setting it is
    # flagged, never read; every setting read is whole.
    records = [r for r in _unwrapped(_read(DMESG / ROCM_5562)) if r != "..."]
    index = next(i for i, r in enumerate(records) if "Command line: " in r)
    record = records[index]
    start = record.index("Command line: ") + len("Command line: ")
    gpu_params = _gpu_params(record[start:])
    for width in range(start + 1, len(records[0])):
        text = "\n".join(r[:width] for r in records) + "\n"
        facts = scan_kernel_log(text)
        assert facts.command_line is not None
        read = _gpu_params(facts.command_line)
        assert all(gpu_params.get(k) == v for k, v in read.items()), (width, read)
        last = record[:width].split()[-1]
        gpu = any(
            f"{m}.".startswith(last.partition("=")[0]) or last.startswith(f"{m}.")
            for m in ("amdgpu", "amdttm", "ttm", "amdkfd", "drm")
        )
        if gpu:
            assert last in facts.cut_parameters, width


def test_a_command_line_confirmed_by_its_second_copy_keeps_its_last_word() -> None:
    # x86 logs the command line twice (Command line:, Kernel command line:): a first
    # copy that fills the column the paste cut lines at keeps its last word when the
    # second copy holds the same words and goes on. The real ROCm#5595 log, its lines
    # cut here at one column (the second copy kept whole, or cut too).
    name = "gfx1151-strix-halo-unknown-param-gtt_size-gttsize-deprecated-gtt-ttm-mismatch.txt"
    lines = _read(DMESG / name).splitlines()
    facts = scan_kernel_log("\n".join(lines))
    assert facts.cut_parameters == () and facts.command_line is not None
    assert facts.command_line.endswith("amdgpu.gtt_size=122880 vt.handoff=7")
    first = lines[0]
    for end, confirmed in (("amdgpu.gtt_size=122880", True), ("amdgpu.gtt_size=12", False)):
        width = first.rindex("amdgpu.gtt_size=") + len(end)
        cut = [line[:width] for line in lines]
        assert len([line for line in cut if len(line) == width]) >= 2
        for second in (lines[1], cut[1]):
            facts = scan_kernel_log("\n".join([cut[0], second, *cut[2:]]))
            whole = confirmed and second == lines[1]
            assert facts.cut_parameters == (() if whole else (end,)), (end, second)
            assert facts.command_line is not None
            assert facts.command_line.endswith(" splash" + (f" {end}" if whole else ""))


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
