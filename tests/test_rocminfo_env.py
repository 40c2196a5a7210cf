"""rocminfo as a source of GPUs and as a check, through detection, doctor and pytest.

Cut outputs must never count GPUs; a crash in the WSL thunk gets a WSL fix; a target
that is not the chip's own (HSA_OVERRIDE_GFX_VERSION) is flagged from the KFD topology
or from the GPU's Chip ID. Every input is a real sample from realdata/ (or a cut or
substitution of one, named at the test).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from conftest import REALDATA, RootBuilder, real, run

from pytest_therock.cli import main as cli_main
from pytest_therock.detect import detect
from pytest_therock.diagnostics import Diagnostic, run_checks
from pytest_therock.environment import Environment, Problem
from pytest_therock.pci_targets import chip_targets
from pytest_therock.rocminfo import parse_rocminfo
from pytest_therock.rocminfo_env import consult_rocminfo, run_rocminfo
from pytest_therock.sysroot import Root

MI300A = "rocminfo/gfx942-mi300a-4socket-apu-rocm6.3.1.txt"  # 4 GPU agents
STRIX = "rocminfo/gfx1151-strix-halo-rocm7.11-nightly-kfd6.16.6.txt"  # Chip ID 0x1586
OVERRIDDEN_780M = (
    "rocminfo/gfx1103-780m-chip-0x15bf-listed-as-gfx1102-override-rocm6.2.2-kfd6.8.5.txt"
)
WSL_CRASH = "rocminfo/error-wsl-thunk-proxy-queryadapterinfo-assertion-rx7900xt-plus-gtx1080ti-rocm6.3.4.txt"


def found(env: Environment) -> dict[str, list[Diagnostic]]:
    result: dict[str, list[Diagnostic]] = {}
    for diag in run_checks(env):
        result.setdefault(diag.code, []).append(diag)
    return result


def snapshot(root: RootBuilder, rocminfo: str, exit_status: int = 0) -> Root:
    """A snapshot that recorded only rocminfo (a WSL machine, or a pasted output)."""
    root.kfd("missing").write(".therock/rocminfo.txt", rocminfo)
    root.write(".therock/rocminfo.exit", f"{exit_status}\n")
    return Root(root.path)


def doctor(path: Path, *args: str) -> tuple[int, str]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli_main(["doctor", "--root", str(path), *args])
    return code, out.getvalue()


# --------------------------------------------------------------------------- cut outputs


def _cut_after_first_gpu(text: str) -> str:
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == "Agent 6"]
    return "".join(lines[: starts[0] - 1])  # agents 1-5: 4 CPUs and the first GPU


def test_a_cut_4_gpu_output_does_not_read_as_1_gpu(root: RootBuilder) -> None:
    cut = _cut_after_first_gpu(real(MI300A))
    assert len(parse_rocminfo(cut).gpus) == 1  # what the parser can still read
    env = detect(snapshot(root, cut), {})
    assert env.gpus == () and not env.usable
    (diag,) = found(env)["rocminfo-incomplete"]
    assert diag.severity == "error"
    assert "missing its end (no `*** Done ***`)" in diag.message
    assert "lists 1 GPU agent(s) but cannot tell how many GPUs there are" in diag.message
    assert diag.fix is not None and "*** Done ***" in diag.fix
    assert "rocminfo-failed" not in found(env)

    code, out = doctor(root.path)
    assert code == 1
    assert "error[rocminfo-incomplete]" in out and "GPU 0" not in out
    code, out = doctor(root.path, "--json")
    data = json.loads(out)
    assert (code, data["gpus"], data["usable"]) == (1, [], False)


def test_a_paste_starting_mid_output_is_incomplete(root: RootBuilder) -> None:
    lines = real(MI300A).splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip() == "Agent 7")
    env = detect(snapshot(root, "".join(lines[start - 1 :])), {})
    assert env.gpus == ()
    (diag,) = found(env)["rocminfo-incomplete"]
    assert "missing its beginning" in diag.message and "lists 2 GPU agent(s)" in diag.message


SUCCESSFUL = sorted(
    p.name for p in (REALDATA / "rocminfo").glob("*.txt") if not p.name.startswith("error-")
)


@pytest.mark.parametrize("name", SUCCESSFUL)
def test_every_line_cut_of_every_real_output_is_incomplete_never_failed(
    root: RootBuilder, name: str
) -> None:
    # Every line boundary, from either side (a paste that stops early or starts
    # mid-output), through the replay of a snapshot: the GPU count is the whole
    # output's (only padding lost) or nothing with code "incomplete"; never a part of
    # it, never rocminfo-failed with driver advice (`head -50` of the 4x MI210 output
    # stops inside the first CPU agent, and was reported as a driver failure).
    lines = real(f"rocminfo/{name}").splitlines(keepends=True)
    whole = len(parse_rocminfo("".join(lines)).gpus)
    path = snapshot(root, "")
    for cut in range(1, len(lines)):
        for part in ("".join(lines[:cut]), "".join(lines[cut:])):
            (root.path / ".therock/rocminfo.txt").write_text(part)
            problems: list[Problem] = []
            gpus, status, _ = consult_rocminfo(path, [], problems, {}, 1.0)
            if status.ok:
                assert len(gpus) == whole, cut
                continue
            assert gpus == [], cut
            if not any(c.isalnum() for c in part):  # a blank first line
                assert status.code == "empty" and "dmesg" not in status.message, cut
            else:
                assert status.code == "incomplete", (cut, status)
                assert "dmesg" not in status.message, cut


def test_a_cut_with_no_whole_agent_is_incomplete_in_doctor(root: RootBuilder) -> None:
    # The reviewer's `head -50` of the 4x MI210 output: ROCm 5's "ROCk module is
    # loaded", the system attributes and half of the first CPU agent.
    cut = "".join(real("rocminfo/gfx90a-4x-mi210-2x-epyc7763-rocm5.7.1.txt").splitlines(True)[:50])
    for part in (cut, "".join(cut.splitlines(True)[:8])):
        snapshot(root, part)
        _, out = doctor(root.path)
        assert "rocminfo-incomplete" in out and "rocminfo-failed" not in out, out
        assert "dmesg" not in out and "missing its end" in out, out
        assert "lists 0 GPU agent(s)" in out, out


def test_the_pytest_header_and_fixture_say_the_output_is_cut(
    pytester: pytest.Pytester, root: RootBuilder
) -> None:
    snapshot(root, _cut_after_first_gpu(real(MI300A)))
    pytester.makepyfile(
        """
        def test_uses_rocminfo(rocminfo):
            assert rocminfo.gpus
        """
    )
    result = run(pytester, f"--therock-root={root.path}", "-rs")
    result.assert_outcomes(skipped=1)
    header = [line for line in result.outlines if line.startswith("therock:")]
    assert any("error[rocminfo-incomplete]" in line for line in header), header
    assert "therock: GPUs: none found" in header, header
    # The snapshot's record of /dev/kfd (missing) wins over its rocminfo, which ran: the
    # header says both, and does not blame amdgpu. A rocminfo that ran is not a machine
    # without an AMD GPU: the missing /dev/kfd stays an error.
    kfd = [line for line in header if "kfd-missing" in line]
    assert kfd == [
        "therock: error[kfd-missing]: /dev/kfd is missing although the recorded rocminfo ran"
    ], header
    assert any("kfd-record-disagrees" in line for line in header), header
    result.stdout.fnmatch_lines(["*SKIPPED*rocminfo output is incomplete*"])
    strict = run(pytester, f"--therock-root={root.path}", "--therock-strict")
    strict.assert_outcomes(errors=1)  # a fixture failing in setup


def test_a_cut_output_next_to_the_kfd_topology_is_not_a_mismatch(root: RootBuilder) -> None:
    # The KFD topology counts the GPUs; a cut rocminfo neither adds nor disputes any.
    root.topology("topo-mi210-xgmi-pcie").kfd()
    full = real("rocminfo/gfx90a-4x-mi210-2x-epyc7763-rocm5.7.1.txt")
    root.write(".therock/rocminfo.txt", full[: full.index("*** Done ***")])
    diags = found(detect(Root(root.path), {}))
    assert "rocminfo-mismatch" not in diags and "rocminfo-incomplete" in diags
    assert len(detect(Root(root.path), {}).gpus) == 8


# --------------------------------------------------------------------------- WSL crash


def test_a_recorded_wsl_thunk_crash_gets_the_wsl_fix(root: RootBuilder) -> None:
    root.write("dev/dxg", "")
    env = detect(snapshot(root, real(WSL_CRASH), exit_status=134), {})
    (diag,) = found(env)["rocminfo-failed"]
    assert env.rocminfo is not None and env.rocminfo.code == "wsl-driver-mismatch"
    assert "Adrenalin" in diag.message and "thunk_proxy.cpp:111" in diag.message
    assert "dmesg | grep" not in diag.message and "Aborted" not in diag.message


def test_a_live_rocminfo_aborting_in_the_wsl_thunk(tmp_path: Path) -> None:
    # A real process: the assertion on stderr, then SIGABRT (what the shell reports as
    # "Aborted (core dumped)"); the runtime's own line decides, not the signal.
    assertion = real(WSL_CRASH).splitlines()[1]
    script = tmp_path / "rocminfo"
    script.write_text(
        "#!/bin/sh\necho 'WSL environment detected.'\necho \"$1\" >&2\nkill -ABRT $$\n"
    )
    script.chmod(0o755)
    wrapper = tmp_path / "rocminfo-wrapper"
    wrapper.write_text(f"#!/bin/sh\nexec {script} {shlex.quote(assertion)}\n")
    wrapper.chmod(0o755)
    report, status = run_rocminfo(Root(Path("/")), {}, 10.0, explicit=str(wrapper))
    assert report is None and status.code == "wsl-driver-mismatch"
    assert "QueryAdapterInfo" in status.message and "SIGABRT" not in status.message


def test_a_live_rocminfo_dying_silently_under_wsl_gets_no_dmesg_advice(tmp_path: Path) -> None:
    script = tmp_path / "rocminfo"
    script.write_text("#!/bin/sh\necho 'WSL environment detected.'\nkill -SEGV $$\n")
    script.chmod(0o755)
    report, status = run_rocminfo(Root(Path("/")), {}, 10.0, explicit=str(script))
    assert report is None and status.code == "crashed"
    assert "SIGSEGV" in status.message and "Adrenalin" in status.message
    assert "dmesg" not in status.message


# --------------------------------------------------------------------------- overrides


def test_the_780m_listed_as_gfx1102_is_flagged_from_its_chip_id(root: RootBuilder) -> None:
    env = detect(snapshot(root, real(OVERRIDDEN_780M)), {})
    assert [g.gfx_target for g in env.gpus] == ["gfx1102"]  # what the runtime lists
    (diag,) = found(env)["hsa-override"]
    assert diag.severity == "warning"
    assert diag.message == (
        "GPU 0 (AMD Radeon Graphics): rocminfo lists gfx1102, but its chip (PCI device "
        "0x15bf) is a gfx1103: the target is overridden (HSA_OVERRIDE_GFX_VERSION)"
    )
    assert "source-unreadable" not in found(env)


@pytest.mark.parametrize(
    "sample",
    sorted(
        p.relative_to(REALDATA).as_posix()
        for p in (REALDATA / "rocminfo").iterdir()
        if not p.name.startswith("error-") and "override" not in p.name
    ),
)
def test_no_real_sample_without_override_is_flagged(sample: str, root: RootBuilder) -> None:
    env = detect(snapshot(root, real(sample)), {})
    assert "hsa-override" not in found(env)


def _with_target(text: str, old: str, new: str) -> str:
    """A real output as the runtime prints it under HSA_OVERRIDE_GFX_VERSION: the agent
    name and the ISA name carry the faked target; Chip ID stays the chip's."""
    return re.sub(rf"\b{old}\b", new, text)


OTHER_TARGETS = [
    "gfx900",
    "gfx906",
    "gfx90a",
    "gfx942",
    "gfx1030",
    "gfx1100",
    "gfx1101",
    "gfx1102",
    "gfx1103",
    "gfx1150",
    "gfx1151",
    "gfx1152",
    "gfx1200",
    "gfx1201",
]


@pytest.mark.parametrize(
    ("sample", "native"),
    [
        (STRIX, "gfx1151"),
        ("rocminfo/gfx1100-rx7900xtx-wsl2-rocm6.3.txt", "gfx1100"),
        ("rocminfo/gfx1102-rx7600xt-rocm6.3-kfd6.10.5-trademark-symbol.txt", "gfx1102"),
        ("rocminfo/gfx1150-radeon890m-hx370-debian-kernel6.18-with-npu-agent.txt", "gfx1150"),
        (OVERRIDDEN_780M, "gfx1102"),  # listed as gfx1102; the chip is a gfx1103
    ],
)
@pytest.mark.parametrize("faked", OTHER_TARGETS)
def test_other_override_pairs(sample: str, native: str, faked: str, root: RootBuilder) -> None:
    text = _with_target(real(sample), native, faked)
    (gpu,) = parse_rocminfo(text).gpus
    assert gpu.gfx_target == faked and gpu.chip_id
    faked_here = faked not in chip_targets(gpu.chip_id)
    diags = found(detect(snapshot(root, text), {})).get("hsa-override", [])
    assert bool(diags) == faked_here, (sample, faked)
    if diags:
        assert f"rocminfo lists {faked}" in diags[0].message
        assert f"0x{gpu.chip_id:04x}" in diags[0].message


def test_kfd_topology_and_rocminfo_disagreeing_on_a_node(root: RootBuilder) -> None:
    # Live-machine side: the kernel's target for node 1 (a Krackan gfx1152, PCI 0x1114)
    # and the runtime's (the Strix Halo output, also node 1, with the variable set).
    root.topology("lenovo-p16s-gfx1152").kfd()
    root.write(".therock/rocminfo.txt", _with_target(real(STRIX), "gfx1151", "gfx1100"))
    env = detect(Root(root.path), {"HSA_OVERRIDE_GFX_VERSION": "11.0.0"})
    assert [g.gfx_target for g in env.gpus] == ["gfx1152"]  # the hardware, from KFD
    diags = found(env)
    (diag,) = diags["hsa-override"]
    assert diag.message == (
        "node 1: the KFD topology says gfx1152, PCI device 0x1114, but the ROCm runtime "
        "(rocminfo) lists gfx1100: the target is overridden (HSA_OVERRIDE_GFX_VERSION); "
        "HSA_OVERRIDE_GFX_VERSION=11.0.0"
    )
    assert "rocminfo-mismatch" not in diags  # one fact, one line


def test_the_pci_table_knows_the_targets_of_the_real_samples() -> None:
    # Chip IDs of the real outputs against the targets they list natively.
    for sample, native in [
        (STRIX, "gfx1151"),
        ("rocminfo/gfx1201-rx9070xt-plus-gfx1036-igpu-9950x-rocm7.0-kfd6.14.14.txt", "gfx1201"),
        ("rocminfo/gfx90a-4x-mi210-2x-epyc7763-rocm5.7.1.txt", "gfx90a"),
        ("rocminfo/gfx906-radeon-vii-fx9590-rocm5.6.txt", "gfx906"),
    ]:
        gpu = parse_rocminfo(real(sample)).gpus[0]
        assert native in chip_targets(gpu.chip_id), sample
    assert chip_targets(0x15BF) == {"gfx1103"}  # the 780M of the overridden sample
    assert chip_targets(0) == chip_targets(None) == chip_targets(0xFFFF) == frozenset()


def test_without_a_chip_id_the_pci_id_of_the_drm_card_is_used(root: RootBuilder) -> None:
    # The 780M output with its Chip ID line gone; the DRM card at its BDFID (50176:
    # 0000:c4:00.0) says what the chip is, in the kernel's uevent format.
    text = re.sub(r"(?m)^ *Chip ID: +5567\(0x15bf\) *\n", "", real(OVERRIDDEN_780M))
    assert parse_rocminfo(text).gpus[0].chip_id is None
    path = snapshot(root, text)
    assert "hsa-override" not in found(detect(path, {}))  # nothing to check against
    root.write(
        "sys/class/drm/card0/device/uevent",
        "DRIVER=amdgpu\nPCI_CLASS=30000\nPCI_ID=1002:15BF\nPCI_SLOT_NAME=0000:c4:00.0\n",
    )
    (diag,) = found(detect(path, {}))["hsa-override"]
    assert "rocminfo lists gfx1102, but its chip (PCI device 0x15bf) is a gfx1103" in diag.message


@pytest.mark.parametrize("recorded", ["²", "99999999999999999999", "-", "1e3", "0x1"])
def test_a_recorded_exit_status_that_is_not_one_is_reported_not_raised(
    root: RootBuilder, capsys: pytest.CaptureFixture[str], recorded: str
) -> None:
    """``.therock/rocminfo.exit`` holds what the snapshot says the tool exited with; any
    other text is shown as what the snapshot recorded, never parsed by int()."""
    root.write(".therock/rocminfo.txt", real(STRIX)).write(".therock/rocminfo.exit", recorded)
    assert cli_main(["doctor", "--root", str(root.path)]) in (0, 1)
    out, err = capsys.readouterr()
    assert err == "" and f"rocminfo failed: rocminfo: {recorded}" in out.replace(
        "listed agents but failed", "failed"
    )
