"""``pytest-therock diff`` and ``fleet`` over the example roots and real snapshots."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, REALDATA

from pytest_therock.cli import main
from pytest_therock.compare import COLUMNS, outliers
from pytest_therock.printable import printable
from pytest_therock.snapshot import take
from pytest_therock.sysroot import Root


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def with_pages_limit(source: Path, dest: Path, pages: str) -> Path:
    """A copy of an example root whose TTM module reports ``pages`` as its limit."""
    shutil.copytree(source, dest)
    param = dest / "sys/module/ttm/parameters/pages_limit"
    param.parent.mkdir(parents=True, exist_ok=True)
    param.write_text(f"{pages}\n")
    return dest


def test_roots_that_differ_only_in_pages_limit_differ_in_exactly_that_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = with_pages_limit(EXAMPLES / "mi210-8x", tmp_path / "a", "25165824")
    b = with_pages_limit(EXAMPLES / "mi210-8x", tmp_path / "b", "31457280")
    code, out, _ = cli(capsys, "diff", str(a), str(b))
    assert code == 1
    changed = [line for line in out.splitlines() if line.startswith("  ")]
    assert changed == [
        "  GTT limit: 96 GiB (ttm.pages_limit=25165824)  vs  120 GiB (ttm.pages_limit=31457280)"
    ]
    assert out.splitlines()[-1] == "1 difference(s)"


def test_a_machine_matches_itself_and_its_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = EXAMPLES / "strix-halo-gtt-raised"
    take(tmp_path / "snap.tar.gz", {}, timeout=5, source=Root(source))
    code, out, _ = cli(capsys, "diff", str(source), str(tmp_path / "snap.tar.gz"))
    assert code == 0
    assert out.splitlines()[-1] == "A and B match in everything compared"


def test_this_machine_matches_a_snapshot_of_it(tmp_path: Path) -> None:
    """A real snapshot of the machine running the tests, through the console script."""
    script = [sys.executable, "-m", "pytest_therock.cli"]
    snapshot = tmp_path / "here.tar.gz"
    taken = subprocess.run([*script, "snapshot", str(snapshot), "--timeout", "10"], check=False)
    assert taken.returncode == 0
    result = subprocess.run(
        [*script, "diff", "/", str(snapshot), "--timeout", "10"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stdout
    assert "match in everything compared" in result.stdout


def test_a_failing_runner_against_a_good_one_is_grouped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(
        capsys, "diff", str(EXAMPLES / "strix-halo"), str(EXAMPLES / "strix-halo-gtt-raised")
    )
    assert code == 1
    lines = out.splitlines()
    assert lines[2:6] == [
        "memory",
        "  VRAM / carve-out: unknown  vs  4 GiB",
        "  GTT (driver): 62.5 GiB (= GTT limit)  vs  96 GiB",
        "  GTT limit: 62.5 GiB (default: 50% of RAM)  vs  96 GiB (ttm.pages_limit=25165824)",
    ]
    # B's live pages_limit is above what KFD took when amdgpu loaded: only B warns.
    assert lines[6:8] == [
        "diagnostics",
        "  memory-config: (absent)  vs  warning: KFD's limit"
        " 62.5 GiB (set when amdgpu loaded) and the live ttm.pages_limit 96 GiB"
        " disagree: a process gets the smaller, KFD's: gfx1151 can allocate"
        " 62.5 GiB from GTT",
    ]
    code, out, _ = cli(capsys, "diff", str(EXAMPLES / "strix-halo"), str(EXAMPLES / "no-gpu"))
    lines = out.splitlines()
    assert code == 1 and lines.index("diagnostics") > lines.index("access")
    assert any(
        line.startswith("  kfd-missing: (absent)  vs  error: no AMD GPU found: /dev/kfd is missing")
        for line in lines
    )


def test_kernel_log_events_and_their_settings_are_grouped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = EXAMPLES / "strix-halo-gtt-raised"
    bad = shutil.copytree(good, tmp_path / "bad")
    (bad / ".therock/dmesg.txt").write_text(
        (
            REALDATA
            / "dmesg/gfx1151-strix-halo-debian13-dkms-gttsize-mismatch-pagefaults-gpf-noise.txt"
        ).read_text()
    )
    code, out, _ = cli(capsys, "diff", str(good), str(bad))
    assert code == 1
    groups = [line for line in out.splitlines()[2:-1] if not line.startswith("  ")]
    assert groups == ["kernel parameters", "diagnostics", "kernel log"]
    assert "  ttm.pages_limit (cmdline): (absent)  vs  25000000" in out
    assert "  page-fault: (absent)  vs  7: " in out


def test_diff_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(
        capsys, "diff", str(EXAMPLES / "mi210-8x"), str(EXAMPLES / "no-gpu"), "--json"
    )
    data = json.loads(out)
    assert code == 1 and data["match"] is False
    found = {(d["group"], d["item"]): (d["a"], d["b"]) for d in data["differences"]}
    assert found[("GPUs", "GPUs")] == ("gfx90a, 104 CU, discrete, device 0x740f x8", "none")
    assert found[("access", "/dev/kfd")] == ("rw", "missing")
    assert found[("diagnostics", "kfd-missing")][0] is None


def test_an_archive_of_a_runner_folder_is_that_runner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tar czf runner.tar.gz runner/` puts the snapshot one folder down."""
    runner = shutil.copytree(EXAMPLES / "strix-halo-gtt-raised", tmp_path / "runner")
    subprocess.run(["tar", "czf", "runner.tar.gz", "runner"], cwd=tmp_path, check=True)
    code, out, _ = cli(capsys, "diff", str(runner), str(tmp_path / "runner.tar.gz"))
    assert (code, out.splitlines()[-1]) == (0, "A and B match in everything compared")
    code, out, _ = cli(capsys, "doctor", "--root", str(tmp_path / "runner.tar.gz"))
    assert out.splitlines()[0] == f"root: {tmp_path / 'runner.tar.gz'}"  # not the temp dir
    assert "gfx1151" in out.splitlines()[1]


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p / "nowhere", "nowhere: no such file or directory"),
        (lambda p: p / "plain", "plain: not a directory or a .tar.gz snapshot"),
        (lambda p: p / "bad.tar.gz", "truncated"),
        (lambda p: p / "empty", "not a machine (it holds none of .therock/, sys/, proc/, dev/)"),
        (lambda p: Path(__file__).parent, "not a machine"),
    ],
)
def test_diff_usage_errors_are_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: object, says: str
) -> None:
    (tmp_path / "bad.tar.gz").write_bytes(b"\x1f\x8b\x08\x00truncated")
    (tmp_path / "empty").mkdir()
    (tmp_path / "plain").write_text("")
    path = make(tmp_path)  # type: ignore[operator]
    code, _, err = cli(capsys, "diff", str(EXAMPLES / "strix-halo"), str(path))
    assert code == 2
    assert err.count("\n") == 1 and says in err and "Traceback" not in err


def fleet_dir(tmp_path: Path) -> Path:
    """Four Strix Halo runners as CI uploads them: three alike, one at the default GTT."""
    fleet = tmp_path / "artifacts"
    fleet.mkdir()
    for k in (1, 2):
        take(
            fleet / f"runner-{k}.tar.gz",
            {},
            timeout=5,
            source=Root(EXAMPLES / "strix-halo-gtt-raised"),
        )
    shutil.copytree(EXAMPLES / "strix-halo-gtt-raised", fleet / "nested" / "runner-3")
    take(fleet / "runner-4.tar.gz", {}, timeout=5, source=Root(EXAMPLES / "strix-halo"))
    return fleet


def test_fleet_marks_the_machine_that_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "fleet", str(fleet_dir(tmp_path)))
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:-1]}
    assert sorted(rows) == ["nested/runner-3", "runner-1", "runner-2", "runner-4"]
    assert "*" not in rows["runner-1"] + rows["runner-2"] + rows["nested/runner-3"]
    assert "unknown *" in rows["runner-4"] and "62.5 GiB *" not in rows["runner-4"]
    # the others warn that KFD did not take their raised pages_limit
    assert "info[gpu-memory] *" in rows["runner-4"]
    assert out.splitlines()[-1] == "* differs from most machines"


def test_fleet_csv_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = fleet_dir(tmp_path)
    _, out, _ = cli(capsys, "fleet", str(fleet), "--csv")
    table = list(csv.DictReader(io.StringIO(out)))
    assert [r["machine"] for r in table] == ["nested/runner-3", "runner-1", "runner-2", "runner-4"]
    assert table[3]["usable GTT"] == "62.5 GiB"
    assert table[3]["differs"] == "VRAM / carve-out worst diagnostic"
    _, out, _ = cli(capsys, "fleet", str(fleet), "--json")
    data = json.loads(out)
    assert data[0]["target"] == "gfx1151" and data[0]["CU"] == "40"
    assert data[3]["differs"] == ["VRAM / carve-out", "worst diagnostic"]


def test_fleet_over_the_example_roots_has_one_row_per_machine(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = cli(capsys, "fleet", str(EXAMPLES), "--json")
    data = json.loads(out)
    assert code == 0
    by_name = {row["machine"]: row for row in data}
    assert sorted(by_name) == sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir())
    assert by_name["mi210-8x"]["target"] == "gfx90a x8"
    assert by_name["no-gpu"]["worst diagnostic"] == "error[kfd-missing]"
    assert by_name["strix-halo-gtt-raised"]["usable GTT"] == "62.5 GiB"  # KFD's, from load
    assert all(row["differs"] == [] for row in data)  # six different machines: no majority


def test_fleet_shows_what_it_can_read_and_names_what_it_cannot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = fleet_dir(tmp_path)
    (fleet / "runner-5.tar.gz").write_bytes(b"not an archive")
    code, out, err = cli(capsys, "fleet", str(fleet))
    assert code == 2
    assert len(out.splitlines()) == 6  # header, four machines, legend
    assert err.startswith("pytest-therock: ") and "runner-5.tar.gz" in err
    assert err.count("\n") == 1


def test_fleet_of_nothing_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in (tmp_path, tmp_path / "nowhere"):
        code, out, err = cli(capsys, "fleet", str(path))
        assert (code, out, err.count("\n")) == (2, "", 1), err


def test_text_from_a_machine_cannot_drive_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = shutil.copytree(EXAMPLES / "strix-halo", tmp_path / "hostile")
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text("6.18\x1b]0;owned\x07\n")
    _, out, _ = cli(capsys, "fleet", str(root), str(EXAMPLES / "strix-halo"))
    assert "\x1b" not in out and "\\x1b]0;owned\\x07" in out
    _, out, _ = cli(capsys, "diff", str(root), str(EXAMPLES / "strix-halo"))
    assert "\x1b" not in out
    assert printable("Radeon™ 8060S") == "Radeon™ 8060S"


def test_no_majority_marks_nothing() -> None:
    rows = [dict.fromkeys(COLUMNS, "x"), dict.fromkeys(COLUMNS, "y")]
    assert outliers(rows) == [[], []]
    rows.append(dict.fromkeys(COLUMNS, "x"))
    assert outliers(rows) == [[], list(COLUMNS), []]


README = Path(__file__).parent.parent / "README.md"


def readme_block(after: str) -> list[str]:
    """The lines of the README's first ``text`` block that starts with the line ``after``."""
    text = README.read_text()
    start = text.index(f"```text\n{after}\n") + len("```text\n")
    return text[start : text.index("```", start)].splitlines()[1:]


def test_the_readme_fleet_example_is_a_real_run_over_the_example_roots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README says how its fleet table was made; making it so gives that very table,
    so the diagnostic codes it shows are current ones."""
    for name in ("runner-1", "runner-2", "runner-3", "runner-4"):
        shutil.copytree(EXAMPLES / "strix-halo", tmp_path / name)
    (tmp_path / "runner-4/.therock/kfd-access").write_text("missing\n")
    (tmp_path / "runner-4/dev/kfd").unlink()
    shutil.copytree(EXAMPLES / "strix-halo-gtt-raised", tmp_path / "runner-5")
    monkeypatch.chdir(tmp_path)
    names = ["runner-1", "runner-2", "runner-3", "runner-4", "runner-5"]
    code, out, _ = cli(capsys, "fleet", *names)
    assert code == 0
    assert out.splitlines() == readme_block(
        "$ pytest-therock fleet runner-1 runner-2 runner-3 runner-4 runner-5"
    )


def test_a_diagnostic_on_both_machines_is_not_a_difference_of_its_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Strix Halo root with only ttm.pages_limit changed: memory-config is raised on
    both (the live limit disagrees with KFD's), with other numbers: one line still."""
    a = with_pages_limit(EXAMPLES / "strix-halo-gtt-raised", tmp_path / "runner-1", "25165824")
    b = with_pages_limit(EXAMPLES / "strix-halo-gtt-raised", tmp_path / "runner-2", "31457280")
    code, out, _ = cli(capsys, "diff", str(a), str(b))
    assert code == 1
    changed = [line for line in out.splitlines() if line.startswith("  ")]
    assert [line.split(":")[0] for line in changed] == ["  GTT limit"]
    assert "memory-config" in cli(capsys, "doctor", "--root", str(b))[1]


@pytest.mark.parametrize("command", ["diff", "fleet"])
@pytest.mark.parametrize("value", ["nan", "-1", "0"])
def test_a_bad_timeout_is_a_usage_error_as_in_doctor(
    capsys: pytest.CaptureFixture[str], command: str, value: str
) -> None:
    """A timeout no tool could meet would make every tool "time out": refused, one line."""
    paths = [str(EXAMPLES / "no-gpu")] * (2 if command == "diff" else 1)
    with pytest.raises(SystemExit) as stop:
        main([command, *paths, "--timeout", value])
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert f"pytest-therock {command}: error: argument --timeout: " in err and value in err
