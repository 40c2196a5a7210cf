"""Hostile input: numbers, machine text, implausible values, and settings that disagree.

Each kind of fault (not each input) has its test: a number from any source (option,
environment variable, ini key, marker argument, visibility variable) that is NaN,
infinite, negative, in other scripts' digits or absurdly large; text from the machine
carrying control sequences; KFD values no kernel prints and snapshot records that are
not one of their tokens; and the places where pytest and ``pytest-therock doctor``
must agree. Every one must end in one clear line naming the source: never a
traceback, an INTERNALERROR, or a GPU that is not there.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from conftest import EXAMPLES, KFD, RootBuilder, real, run
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_therock.cli import main as cli_main
from pytest_therock.detect import detect
from pytest_therock.markers import MarkerError, parse_marker
from pytest_therock.parsing import (
    GIB_SIZE,
    GPU_COUNT,
    GPUS_PER_WORKER,
    TIMEOUT,
    NumberError,
    NumberRule,
    parse_kfd_access,
    parse_number,
)
from pytest_therock.printable import printable, printable_tree
from pytest_therock.sysroot import Root

CLI = str(Path(sys.executable).with_name("pytest-therock"))
PLUGIN_ERRORS = ("Traceback", "INTERNALERROR")
PROPERTY_TESTS = settings(max_examples=300, deadline=None, database=None)
MI210_NODE = real("sysfs/kfd-topology-mi210-node2-properties.txt")


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The real ``pytest-therock`` command, in its own process."""
    return subprocess.run(
        [CLI, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def doctor(*args: str) -> tuple[int, str]:
    """``pytest-therock doctor`` in this process (fast, for parametrized cases)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli_main(["doctor", *args])
    return code, out.getvalue()


def single_gpu(b: RootBuilder, node: str = MI210_NODE) -> Path:
    """A real MI210 KFD node (and a real CPU node), real meminfo, /dev/kfd usable."""
    b.node(0, "kfd-topology-vega10-2018-node0-cpu-properties.txt")
    b.write("proc/meminfo", real("procfs/meminfo-ci-machine-debian12-container-24g.txt"))
    b.write(f"{KFD}/1/properties", node)
    b.kfd("rw")
    return b.path


def errors_in(result: pytest.RunResult) -> list[str]:
    return [ln for ln in result.stderr.lines + result.stdout.lines if "ERROR" in ln]


# --------------------------------------------------------------------------- numbers

RULES = {"timeout": TIMEOUT, "gib": GIB_SIZE, "gpus": GPU_COUNT, "per-worker": GPUS_PER_WORKER}
NUMBER_TEXT = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\s*[+-]?[0-9]{0,400}(\.[0-9]{0,5})?([eE][+-]?[0-9]{1,5})?\s*", fullmatch=True),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "²", "٣", "1_000", "0x10", "1e300", "-0"]),
)
NUMBER_VALUES = st.one_of(
    NUMBER_TEXT,
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**500), max_value=10**500),
    st.booleans(),
    st.none(),
)


@PROPERTY_TESTS
@given(value=NUMBER_VALUES, rule=st.sampled_from(sorted(RULES)))
def test_a_number_is_in_range_or_one_line_naming_its_source(value: object, rule: str) -> None:
    checked: NumberRule = RULES[rule]
    try:
        number = parse_number(value, "SOURCE_NAME", checked)
    except NumberError as exc:
        message = str(exc)
        assert message.startswith("SOURCE_NAME: ") and "\n" not in message
        assert len(message) < 300
        return
    assert math.isfinite(number)
    assert checked.low <= number <= checked.high
    assert not (checked.above and number == checked.low)
    assert not checked.whole or number.is_integer()
    if isinstance(value, str):  # only ASCII decimal text passes
        assert value.strip().isascii() and not {"_", "x", "n", "i"} & set(value.lower())


@PROPERTY_TESTS
@given(value=NUMBER_VALUES, name=st.sampled_from(["requires_gtt_gb", "requires_vram_gb"]))
def test_a_marker_size_is_a_requirement_in_range_or_one_line_naming_the_marker(
    value: object, name: str
) -> None:
    try:
        req = parse_marker(name, (value,), {})
    except MarkerError as exc:
        message = str(exc)
        assert message.startswith(f"{name}(") and "\n" not in message and len(message) < 400
        return
    assert req is not None
    assert req.gtt_bytes is None or 0 < req.gtt_bytes <= 2**52


@pytest.mark.parametrize("text", ["30", "0.5", " 2 ", "1e3", "86400"])
def test_ordinary_timeouts_are_read(text: str) -> None:
    assert parse_number(text, "--therock-timeout", TIMEOUT) == float(text)


BAD_TIMEOUTS = ["nan", "inf", "-1", "0", "1e300", "²", "1_000", ""]


@pytest.mark.parametrize("value", [v for v in BAD_TIMEOUTS if v])
@pytest.mark.parametrize(
    "where", ["--therock-timeout", "PYTEST_THEROCK_TIMEOUT", "ini therock_timeout"]
)
def test_a_bad_timeout_is_one_usage_error_naming_its_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, where: str, value: str
) -> None:
    pytester.makepyfile("def test_ok(): pass")
    args = []
    if where.startswith("--"):
        args.append(f"--therock-timeout={value}")
    elif where.startswith("PYTEST_"):
        monkeypatch.setenv("PYTEST_THEROCK_TIMEOUT", value)
    else:
        pytester.makeini(f"[pytest]\ntherock_timeout = {value}\n")
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    said = errors_in(result)
    assert len(said) == 1 and said[0].startswith(f"ERROR: pytest-therock: {where}: "), said
    assert repr(value) in said[0]
    assert not any(e in result.stdout.str() + result.stderr.str() for e in PLUGIN_ERRORS)


@pytest.mark.parametrize("value", ["²", "-1", "1.5", "nan", "99999999999999999999999"])
def test_a_bad_gpus_per_worker_names_its_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PYTEST_THEROCK_GPUS_PER_WORKER", value)
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    said = errors_in(result)
    assert len(said) == 1 and "PYTEST_THEROCK_GPUS_PER_WORKER: " in said[0], said


def test_an_empty_setting_is_unset(pytester: pytest.Pytester) -> None:
    """``--therock-timeout=`` is the default (30 s), as an empty variable is."""
    pytester.makepyfile("def test_ok(): pass")
    run(pytester, "--therock-timeout=").assert_outcomes(passed=1)


def test_help_prints_whatever_the_environment_says() -> None:
    """A bad PYTEST_THEROCK_* variable fails the run, never ``pytest --help``."""
    env = {**os.environ, "PYTEST_THEROCK_TIMEOUT": "nan", "PYTEST_THEROCK_GPUS_PER_WORKER": "²"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "--therock-timeout=SECONDS" in done.stdout
    failed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--co", "-q", os.devnull],
        capture_output=True,
        text=True,
        env=env,
    )
    assert failed.returncode == pytest.ExitCode.USAGE_ERROR
    assert "PYTEST_THEROCK_TIMEOUT: expected a number of seconds" in failed.stderr


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "²"])
def test_doctor_and_pytest_refuse_the_same_timeouts(pytester: pytest.Pytester, value: str) -> None:
    """The rule is one: what pytest refuses, ``doctor --timeout`` refuses, in one line."""
    done = cli("doctor", "--root", str(EXAMPLES / "strix-halo"), f"--timeout={value}")
    assert done.returncode == 2
    assert done.stdout == ""
    errors = [ln for ln in done.stderr.splitlines() if "error:" in ln]
    assert len(errors) == 1 and "argument --timeout: " in errors[0] and repr(value) in errors[0]
    assert "Traceback" not in done.stderr
    result = run(pytester, f"--therock-timeout={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # the same words after the source
    assert errors[0].split("argument --timeout: ")[1] in result.stderr.str()


def test_snapshot_refuses_a_bad_timeout_before_writing(tmp_path: Path) -> None:
    done = cli("snapshot", str(tmp_path / "snap"), "--timeout", "nan")
    assert done.returncode == 2 and "argument --timeout" in done.stderr
    assert not (tmp_path / "snap").exists()


MARKER_TESTS = """
import pytest

@pytest.mark.requires_gtt_gb({arg})
def test_big():
    pass
"""


@pytest.mark.parametrize(
    ("arg", "says"),
    [
        ("1e300", "must be greater than 0 and at most 4194304 GiB (2**52 bytes), got 1e+300"),
        ("10**400", "got <int of about 401 digits>"),
        ("10**5000", "got <int of about 5001 digits>"),
        ("float('nan')", "expected a number of GiB, e.g. requires_gtt_gb(64), got nan"),
        ("float('-inf')", "must be greater than 0 and at most 4194304 GiB (2**52 bytes), got -inf"),
    ],
)
def test_an_absurd_marker_size_is_a_collection_error_naming_test_and_marker(
    pytester: pytest.Pytester, arg: str, says: str
) -> None:
    pytester.makepyfile(test_sizes=MARKER_TESTS.format(arg=arg))
    result = run(pytester, f"--therock-root={EXAMPLES / 'strix-halo'}")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.assert_outcomes(errors=1)
    line = next(ln for ln in result.stdout.lines if ln.startswith("test_sizes.py::test_big"))
    assert line.startswith("test_sizes.py::test_big: marker requires_gtt_gb(")
    assert line.endswith(says)
    assert not any(e in result.stdout.str() for e in PLUGIN_ERRORS)


@pytest.mark.parametrize("value", ["²", "٣", "0,²", "9" * 5000, "-1", "+0", "0x0"])
def test_a_visibility_variable_that_names_no_device_hides_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """As in the runtimes, the list stops at an entry that is no device index in ASCII
    digits: ``²`` hides the GPU; a leading valid index keeps it."""
    monkeypatch.setenv("ROCR_VISIBLE_DEVICES", value)
    pytester.makepyfile("import pytest\n@pytest.mark.requires_gfx1151\ndef test_gpu(): pass\n")
    result = run(pytester, f"--therock-root={EXAMPLES / 'strix-halo'}", "-rs")
    assert not any(e in result.stdout.str() + result.stderr.str() for e in PLUGIN_ERRORS)
    if value.startswith("0,"):
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(skipped=1)
        result.stdout.fnmatch_lines(["*requires gfx1151, found no visible AMD GPU (1 hidden by*"])


def test_doctor_with_a_non_ascii_visibility_variable_says_the_gpu_is_hidden() -> None:
    done = cli("doctor", "--root", str(EXAMPLES / "strix-halo"), env={"ROCR_VISIBLE_DEVICES": "²"})
    assert done.returncode == 1, done.stderr
    assert "error[no-gpu]: all 1 GPU(s) hidden by ROCR_VISIBLE_DEVICES='²'." in done.stdout
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------- machine text


@PROPERTY_TESTS
@given(st.text())
def test_printable_text_has_no_control_characters_and_keeps_printable_text(text: str) -> None:
    shown = printable(text)
    for char in shown:
        assert unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp"), repr(shown)
    assert len(shown.splitlines()) <= 1
    shown.encode("utf-8")  # no lone surrogate left
    if text.isprintable():
        assert shown == text


@PROPERTY_TESTS
@given(st.text(alphabet=st.characters(codec="utf-8", categories=["L", "M", "N", "P", "S"])))
def test_printable_round_trips_printable_utf8(text: str) -> None:
    assert printable(text) == text
    assert printable(text).encode("utf-8").decode("utf-8") == text


def test_printable_escapes_the_way_python_writes_it() -> None:
    assert printable("Radeon™ 8060S\x1b[2J\n\u202e\x9b\x7f\ud800") == (
        "Radeon™ 8060S\\x1b[2J\\n\\u202e\\x9b\\x7f\\ud800"
    )
    assert printable_tree({"name\x07": ["a\x1b", 1, None, ("b\r",)]}) == {
        "name\\x07": ["a\\x1b", 1, None, ["b\\r"]]
    }


#: An OSC sequence (retitles the terminal), a bidi override and a C1 CSI introducer.
HOSTILE_NAME = "Radeon\x1b]0;pwned\x07 8060S™ Graphics\u202e\x9b"
ESCAPED_NAME = "Radeon\\x1b]0;pwned\\x07 8060S™ Graphics\\u202e\\x9b"


@pytest.fixture
def hostile_root(tmp_path: Path) -> Path:
    """The recorded Strix Halo, its rocminfo's GPU name carrying control sequences."""
    path = tmp_path / "root"
    shutil.copytree(EXAMPLES / "strix-halo", path)
    recorded = path / ".therock/rocminfo.txt"
    text = recorded.read_text()
    assert "Radeon 8060S Graphics" in text
    recorded.write_text(text.replace("Radeon 8060S Graphics", HOSTILE_NAME))
    return path


def no_control(text: str) -> None:
    assert not {"\x1b", "\x07", "\u202e", "\x9b"} & set(text), text


def test_machine_text_reaches_header_skips_and_junit_escaped(
    pytester: pytest.Pytester, hostile_root: Path
) -> None:
    pytester.makepyfile(
        "import pytest\n@pytest.mark.requires_gfx1100\ndef test_other(): pass\n"
        "def test_arch(gpu_arch): pass\n"
    )
    xml = pytester.path / "junit.xml"
    result = run(pytester, f"--therock-root={hostile_root}", "-rs", f"--junitxml={xml}")
    result.assert_outcomes(passed=1, skipped=1)
    out = result.stdout.str()
    no_control(out)
    assert f"therock: GPU 0: gfx1151 ({ESCAPED_NAME})," in out  # the UTF-8 name kept
    [skipped] = [ln for ln in result.stdout.lines if ln.startswith("SKIPPED")]
    assert skipped.endswith(f"requires gfx1100, found gfx1151 ({ESCAPED_NAME})")
    report = xml.read_text(encoding="utf-8")
    no_control(report)
    assert 'value="gfx1151"' in report and f'value="{ESCAPED_NAME}"' in report


def test_machine_text_reaches_doctor_text_and_json_escaped(hostile_root: Path) -> None:
    text = cli("doctor", "--root", str(hostile_root))
    no_control(text.stdout)
    assert f"GPU 0: gfx1151 ({ESCAPED_NAME})," in text.stdout
    done = cli("doctor", "--root", str(hostile_root), "--json")
    data = json.loads(done.stdout)
    name = data["gpus"][0]["marketing_name"]
    no_control(name)
    assert name == ESCAPED_NAME


def test_a_report_header_hook_may_return_one_line_as_a_str(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        def pytest_therock_report_header(env, config):
            return "lab runner: \\x1b[31mred"
        """
    )
    pytester.makepyfile("def test_ok(): pass")
    result = run(pytester, f"--therock-root={EXAMPLES / 'strix-halo'}")
    lines = [ln for ln in result.stdout.lines if ln.startswith("therock: lab")]
    assert lines == ["therock: lab runner: \\x1b[31mred"]
    assert "therock: l" not in result.stdout.lines


def test_a_report_header_hook_may_return_a_list_or_nothing(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_therock_report_header(env, config):
            return ["one", "two"]

        class Quiet:
            def pytest_therock_report_header(self, env, config):
                return None

        class Number:
            def pytest_therock_report_header(self, env, config):
                return 3

        def pytest_configure(config):
            config.pluginmanager.register(Quiet())
            config.pluginmanager.register(Number())
        """
    )
    pytester.makepyfile("def test_ok(): pass")
    result = run(pytester, f"--therock-root={EXAMPLES / 'strix-halo'}")
    lines = [ln for ln in result.stdout.lines if ln in ("therock: one", "therock: two")]
    assert lines == ["therock: one", "therock: two"]
    assert "therock: 3" in result.stdout.lines
    result.assert_outcomes(passed=1)


# --------------------------------------------------------------------------- lies

U64_MAX = str(2**64 - 1)


def _mi210_node_with(field: str, value: str) -> str:
    """The real MI210 node's properties with one value replaced (in test code: the
    sample itself stays as recorded)."""
    lines = MI210_NODE.splitlines(keepends=True)
    edited = [f"{field} {value}\n" if ln.split()[:1] == [field] else ln for ln in lines]
    assert edited != lines, field
    return "".join(edited)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("simd_count", U64_MAX),
        ("simd_count", str(2**32)),
        ("simd_per_cu", U64_MAX),
        ("gfx_target_version", U64_MAX),
        ("device_id", str(2**32 - 1)),
        ("wave_front_size", "4096"),
    ],
)
def test_an_implausible_kfd_value_makes_the_node_a_problem_not_a_gpu(
    pytester: pytest.Pytester, root: RootBuilder, field: str, value: str
) -> None:
    path = single_gpu(root, _mi210_node_with(field, value))
    env = detect(Root(path), {})
    assert env.gpus == () and not env.usable
    pytester.makepyfile("import pytest\n@pytest.mark.requires_gfx90a\ndef test_gpu(): pass\n")
    result = run(pytester, f"--therock-root={path}", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(  # the node may be a GPU: unknown, said once, never "none"
        [
            f"therock: GPUs: unknown (could not read {KFD}/1/properties: {field} {value} is "
            "implausible (at most *): not counted as a GPU)"
        ]
    )
    assert "none found" not in result.stdout.str()
    header = [ln for ln in result.stdout.lines if ln.startswith("therock:")]
    assert sum("is implausible" in ln for ln in header) == 1, header
    code, said = doctor("--root", str(path))
    assert code == 1 and f"{field} {value} is implausible" in said


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("gfx_target_version", "-90010", "'-90010' is not an unsigned number"),
        ("gfx_target_version", "0", "0 decodes to no gfx target"),
        ("gfx_target_version", "999999", "999999 decodes to no gfx target"),
        ("gfx_target_version", "91600", "91600 decodes to no gfx target"),
        ("local_mem_size", "-1", "'-1' is not an unsigned number"),
        ("wave_front_size", "0", "0 is implausible (at least 1)"),
        ("simd_per_cu", "0", "0 is implausible (at least 1)"),
    ],
)
def test_a_negative_zero_or_undecodable_kfd_value_is_a_problem_not_a_gpu(
    root: RootBuilder, field: str, value: str, why: str
) -> None:
    path = single_gpu(root, _mi210_node_with(field, value))
    env = detect(Root(path), {})
    assert env.gpus == () and not env.usable
    said = f"{KFD}/1/properties: {field} {why}: not counted as a GPU"
    assert said in [str(p) for p in env.problems]
    code, out = doctor("--root", str(path))
    assert code == 1 and said in out


def test_a_real_node_is_within_every_bound(root: RootBuilder) -> None:
    """The control: the same node, unedited, is a GPU."""
    env = detect(Root(single_gpu(root)), {})
    assert [g.gfx_target for g in env.gpus] == ["gfx90a"] and not env.problems


def test_an_implausible_memory_bank_is_reported_and_not_counted(root: RootBuilder) -> None:
    path = single_gpu(root)
    bank = real("sysfs/kfd-topology-vega10-2018-node1-mem_banks-0-properties.txt")
    size = next(ln for ln in bank.splitlines() if ln.startswith("size_in_bytes"))
    root.write(f"{KFD}/1/mem_banks/0/properties", bank.replace(size, f"size_in_bytes {U64_MAX}"))
    env = detect(Root(path), {})
    assert [str(p) for p in env.problems] == [
        f"{KFD}/1/mem_banks/0/properties: size_in_bytes {U64_MAX} is implausible (at most {2**52})"
    ]
    assert env.gpus[0].vram_total_bytes is None  # unknown, not 16 EiB


def test_an_implausible_drm_memory_size_is_unknown(root: RootBuilder) -> None:
    path = single_gpu(root)
    root.card("card0", "0000:63:00.0")
    root.write("sys/class/drm/card0/device/mem_info_vram_total", f"{2**63}\n")
    env = detect(Root(path), {})
    assert env.gpus[0].vram_total_bytes is None
    assert [p.reason for p in env.problems] == [f"{2**63} bytes is implausible (at most 2**52)"]


@pytest.mark.parametrize(
    ("token", "access"),
    [
        ("rw\n", (True, True, True)),
        ("r", (True, True, False)),
        ("w\n", (True, False, True)),
        ("none\n", (True, False, False)),
        ("missing\n", (False, False, False)),
    ],
)
def test_the_kfd_access_tokens_the_snapshot_writes(
    root: RootBuilder, token: str, access: tuple[bool, bool, bool]
) -> None:
    assert parse_kfd_access(token) == access
    path = single_gpu(root)
    root.write(".therock/kfd-access", token)
    kfd = detect(Root(path), {}).kfd
    assert (kfd.present, kfd.readable, kfd.writable, kfd.known) == (*access, True)


@pytest.mark.parametrize("text", ["wr", "read-write", "rwx\n", "", "RW", "r w", "\x00rw"])
def test_any_other_kfd_access_text_is_a_malformed_source(
    pytester: pytest.Pytester, root: RootBuilder, text: str
) -> None:
    path = single_gpu(root)
    root.write(".therock/kfd-access", text)
    env = detect(Root(path), {})
    assert not env.kfd.known and not env.usable
    [problem] = env.problems
    assert problem.source == ".therock/kfd-access" and problem.reason.startswith("malformed")
    pytester.makepyfile("def test_ok(): pass")
    result = run(pytester, f"--therock-root={path}")
    header = [ln for ln in result.stdout.lines if ln.startswith("therock:")]
    unknown = "/dev/kfd: unknown (could not read .therock/kfd-access: malformed: expected rw, "
    said_once = [ln for ln in header if "kfd-access" in ln]  # on the fact's line, once
    assert len(said_once) == 1 and said_once[0].startswith(f"therock: {unknown}"), header
    assert not [ln for ln in header if "kfd-denied" in ln]  # no claim about the user
    code, said = doctor("--root", str(path))
    assert code == 1
    assert next(ln for ln in said.splitlines() if "kfd-access" in ln).startswith(unknown), said


@pytest.mark.parametrize(
    ("broken", "kind"),
    [
        (f"{KFD}/1/mem_banks", "file"),
        (f"{KFD}/1/mem_banks/0/properties", "dir"),
        (KFD, "loop"),
    ],
)
def test_an_unreadable_bank_or_node_list_is_a_warning_naming_the_path(
    root: RootBuilder, broken: str, kind: str
) -> None:
    path = single_gpu(root)
    root.write(
        f"{KFD}/1/mem_banks/0/properties",
        real("sysfs/kfd-topology-vega10-2018-node1-mem_banks-0-properties.txt"),
    )
    target = path / broken
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    if kind == "file":
        target.write_text("")
    elif kind == "dir":
        target.mkdir()
    else:
        target.symlink_to(target.name)
    env = detect(Root(path), {})
    assert [p.source for p in env.problems] == [broken], env.problems
    code, said = doctor("--root", str(path))
    if broken == KFD:  # the GPUs are unknown, said once on their line: not "none found"
        assert f"GPUs: unknown (could not read {broken}: symlink loop)" in said, said
        assert "GPUs: none found" not in said and "no AMD GPU in the KFD topology" not in said
    else:
        assert f"warning[source-unreadable]: {broken}: " in said
    assert code == (1 if broken == KFD else 0), said  # a bank lost is VRAM unknown, not the GPU


# --------------------------------------------------------------------------- agreement


def test_an_empty_root_is_the_live_machine_in_pytest_and_doctor(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Empty is unset, everywhere: ``/``, never the current directory."""
    here = EXAMPLES / "strix-halo"  # a root, were "" the current directory
    for env in ({}, {"PYTEST_THEROCK_ROOT": ""}):
        done = cli("doctor", "--root", "", "--json", "--timeout", "5", env=env, cwd=here)
        assert json.loads(done.stdout)["root"] == "/", done.stderr
    monkeypatch.setenv("PYTEST_THEROCK_ROOT", "")
    pytester.makepyfile("def test_ok(): pass")
    result = run(pytester, "--therock-root=")
    assert not [ln for ln in result.stdout.lines if ln.startswith("therock: root:")]
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("where", "typo", "says"),
    [
        ("--therock-ignore", "kfd-mising", "did you mean kfd-missing?"),
        ("PYTEST_THEROCK_IGNORE", "memory-confg", "did you mean memory-config"),
        ("ini therock_ignore", "no-such-code", "codes: kfd-missing, kfd-denied,"),
    ],
)
def test_an_unknown_ignored_code_is_a_usage_error_naming_its_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, where: str, typo: str, says: str
) -> None:
    pytester.makepyfile("def test_ok(): pass")
    args = []
    if where.startswith("--"):
        args.append(f"--therock-ignore={typo}")
    elif where.startswith("PYTEST_"):
        monkeypatch.setenv("PYTEST_THEROCK_IGNORE", f"gpu-memory,{typo}")
    else:
        pytester.makeini(f"[pytest]\ntherock_ignore = {typo}\n")
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    [said] = errors_in(result)
    assert said.startswith(f"ERROR: pytest-therock: {where}: unknown diagnostic code {typo!r}; ")
    assert says in said


def test_a_projects_own_code_may_be_ignored(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        from pytest_therock import Diagnostic

        def pytest_therock_diagnostics(env, config):
            return [Diagnostic("lab-ram", "warning", "the 405B model needs 256 GiB")]
        """
    )
    pytester.makepyfile("def test_ok(): pass")
    root = f"--therock-root={EXAMPLES / 'strix-halo'}"
    assert "lab-ram" in run(pytester, root).stdout.str()
    result = run(pytester, root, "--therock-ignore=lab-ram")
    result.assert_outcomes(passed=1)
    assert "lab-ram" not in result.stdout.str()
    typo = run(pytester, root, "--therock-ignore=kfd-mising")  # still a typo of a built-in
    assert typo.ret == pytest.ExitCode.USAGE_ERROR


def test_doctor_refuses_an_unknown_ignored_code() -> None:
    done = cli("doctor", "--root", str(EXAMPLES / "strix-halo"), "--ignore", "kfd-mising")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "pytest-therock: --ignore: unknown diagnostic code 'kfd-mising'; did you mean kfd-missing?"
    ]


@pytest.mark.parametrize("pattern", ["gfx[", "gfx11[0-5", "gfx11 *", "gfx]*"])
def test_a_glob_that_can_never_match_is_refused(pytester: pytest.Pytester, pattern: str) -> None:
    """``gfx[`` is no pattern that never matches, but a collection (or usage) error."""
    pytester.makepyfile(
        f"import pytest\n@pytest.mark.requires_gfx({pattern!r})\ndef test_gpu(): pass\n"
    )
    root = f"--therock-root={EXAMPLES / 'strix-halo'}"
    result = run(pytester, root)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*::test_gpu: marker requires_gfx(*): *is not a valid glob*"])
    expect = run(pytester, root, f"--therock-expect={pattern}")
    assert expect.ret == pytest.ExitCode.USAGE_ERROR
    [said] = errors_in(expect)
    assert said.startswith("ERROR: pytest-therock: --therock-expect: '") and "is not a" in said


def test_a_valid_glob_still_matches(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import pytest\n@pytest.mark.requires_gfx('gfx11[05]*')\ndef test_gpu(): pass\n"
    )
    run(pytester, f"--therock-root={EXAMPLES / 'strix-halo'}").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    "variable",
    [
        ("PYTEST_THEROCK_EXPECT", "gfx["),
        ("PYTEST_THEROCK_ROOT", "/no/such/dir"),
        ("PYTEST_THEROCK_STRICT", "maybe"),
        ("PYTEST_THEROCK_IGNORE", "no-such-code"),
    ],
)
def test_help_prints_whatever_any_variable_says(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, variable: tuple[str, str]
) -> None:
    monkeypatch.setenv(*variable)
    helped = run(pytester, "--help")
    assert helped.ret == pytest.ExitCode.OK
    helped.stdout.fnmatch_lines(["*--therock-timeout=SECONDS*"])
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    [said] = errors_in(result)
    assert variable[0] in said


def test_a_marker_argument_whose_repr_raises_is_a_marker_error(pytester: pytest.Pytester) -> None:
    """Not an INTERNALERROR: the argument is shown as what it is, the marker refused."""
    evil = "import pytest\nclass Evil:\n    def __repr__(self):\n        raise RuntimeError('no')\n"
    pytester.makepyfile(
        # a generic marker in a module that uses the plugin: an error of its test
        test_generic=evil + "@pytest.mark.requires_vram_gb(Evil())\n"
        "@pytest.mark.requires_gfx90a\ndef test_a(): pass\n",
        # one of the plugin's own: a collection error
        test_own=evil + "@pytest.mark.skip_on_gfx('gfx90a', reason=Evil())\ndef test_b(): pass\n",
    )
    result = run(pytester)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        ["*test_b: marker skip_on_gfx('gfx90a', reason=<Evil: repr raised RuntimeError>)*"]
    )
    generic = run(pytester, "test_generic.py")
    assert "INTERNALERROR" not in generic.stdout.str() + generic.stderr.str()
    generic.assert_outcomes(errors=1)
    generic.stdout.fnmatch_lines(
        ["*invalid marker requires_vram_gb(<Evil: repr raised RuntimeError>)*"]
    )
