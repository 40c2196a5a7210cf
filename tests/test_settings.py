"""Settings from the option, the environment and the ini file: every bad value is one
usage error naming where it came from, and the commands that explain them still work."""

from __future__ import annotations

import fnmatch
from typing import NamedTuple

import pytest
from conftest import EXAMPLES, run

MI210 = EXAMPLES / "mi210-8x"


class Bad(NamedTuple):
    how: str  # "option", "env", "ini" or "toml" (pyproject.toml, value written as TOML)
    name: str  # --therock-..., PYTEST_THEROCK_..., therock_...
    value: str
    line: str  # the one line expected on stderr (fnmatch)


#: One bad value of each kind (bool, number, choice, path, pattern, code list), from
#: each source that can carry it (a flag like --therock-strict takes no value).
BAD = [
    Bad("ini", "therock_strict", "maybe", "ERROR: pytest-therock: ini therock_strict: *'maybe'*"),
    Bad("env", "PYTEST_THEROCK_STRICT", "maybe", "ERROR: pytest-therock: PYTEST_THEROCK_STRICT: *"),
    Bad(
        "ini",
        "therock_expect_runtime",
        "2",
        "ERROR: pytest-therock: ini therock_expect_runtime: *'2'*; expected true or false",
    ),
    Bad(
        "env",
        "PYTEST_THEROCK_EXPECT_RUNTIME",
        "2",
        "ERROR: pytest-therock: PYTEST_THEROCK_EXPECT_RUNTIME: expected true or false, got '2'",
    ),
    Bad(
        "env",
        "PYTEST_THEROCK_EXPECT",
        "gfx9999",
        "ERROR: pytest-therock: PYTEST_THEROCK_EXPECT: unknown gfx target or family 'gfx9999'*",
    ),
    Bad(
        "ini",
        "therock_expect",
        "gfx[",
        "ERROR: pytest-therock: ini therock_expect: 'gfx[' is not a valid glob*",
    ),
    Bad(
        "option",
        "--therock-expect",
        "gfx1115",
        "ERROR: pytest-therock: --therock-expect: unknown gfx target or family 'gfx1115'*",
    ),
    Bad(
        "ini",
        "therock_expect",
        '"gfx1151',
        "ERROR: pytest-therock: ini therock_expect: No closing quotation",
    ),
    Bad(
        "ini",
        "therock_timeout",
        "nan",
        "ERROR: pytest-therock: ini therock_timeout: expected a number of seconds*'nan'",
    ),
    Bad(
        "option",
        "--therock-timeout",
        "-1",
        "ERROR: pytest-therock: --therock-timeout: must be greater than 0 * got '-1'",
    ),
    Bad(
        "env",
        "PYTEST_THEROCK_GPUS_PER_WORKER",
        "two",
        "ERROR: pytest-therock: PYTEST_THEROCK_GPUS_PER_WORKER: *'two'",
    ),
    Bad(
        "ini",
        "therock_generic_markers",
        "maybe",
        "ERROR: pytest-therock: ini therock_generic_markers: expected auto, on or off, got 'maybe'",
    ),
    Bad(
        "ini",
        "therock_root",
        "/nonexistent-root",
        "ERROR: pytest-therock: ini therock_root: /nonexistent-root is not a directory",
    ),
    Bad(
        "toml",
        "therock_expect",
        "[1151]",
        "ERROR: pytest-therock: ini therock_expect: expected words, got 1151 (int)",
    ),
    Bad(
        "toml",
        "therock_ignore",
        '["kfd-missing", 1]',
        "ERROR: pytest-therock: ini therock_ignore: expected words, got 1 (int)",
    ),
    Bad(
        "env",
        "PYTEST_THEROCK_IGNORE",
        "kfd-mising",
        "ERROR: pytest-therock: PYTEST_THEROCK_IGNORE: unknown diagnostic code 'kfd-mising'*",
    ),
]


def _session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, bad: Bad, *args: str
) -> pytest.RunResult:
    with monkeypatch.context() as patch:
        option: tuple[str, ...] = ()
        if bad.how == "env":
            patch.setenv(bad.name, bad.value)
        elif bad.how == "ini":
            pytester.makeini(f"[pytest]\n{bad.name} = {bad.value}\n")
        elif bad.how == "toml":
            pytester.makepyprojecttoml(f"[tool.pytest.ini_options]\n{bad.name} = {bad.value}\n")
        else:
            option = (f"{bad.name}={bad.value}",)
        result = run(pytester, *option, *args)
    (pytester.path / "pytest.ini").unlink(missing_ok=True)
    (pytester.path / "pyproject.toml").unlink(missing_ok=True)
    return result


def _one_line(result: pytest.RunResult, pattern: str) -> bool:
    errors = [line for line in result.stderr.lines if line.strip()]
    return (
        result.ret == pytest.ExitCode.USAGE_ERROR
        and len(errors) == 1
        and fnmatch.fnmatch(errors[0], pattern)
    )


@pytest.mark.parametrize("bad", BAD, ids=lambda b: f"{b.how}-{b.name}={b.value}")
def test_a_bad_setting_is_named_with_its_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, bad: Bad
) -> None:
    pytester.makepyfile("def test_a(): pass")
    result = _session(pytester, monkeypatch, bad)
    assert _one_line(result, bad.line), (result.ret, result.stderr.lines)


@pytest.mark.parametrize("ask", ["--help", "--markers", "--fixtures"])
def test_help_markers_and_fixtures_work_whatever_the_bad_setting(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ask: str
) -> None:
    broken = [
        bad.name
        for bad in BAD
        if _session(pytester, monkeypatch, bad, ask).ret != pytest.ExitCode.OK
    ]
    assert broken == []


@pytest.mark.parametrize("word", ["on", "ON", "yes", "True", "1", "y"])
def test_generic_markers_on_takes_the_yes_words_of_the_other_settings(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, word: str
) -> None:
    """``on`` may be written as any yes word therock_strict takes (README, "Options")."""
    pytester.makeini("[pytest]\nmarkers =\n    requires_gpus(n): the project's own\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gpus(99)
        def test_many():
            pass
        """
    )
    monkeypatch.setenv("PYTEST_THEROCK_GENERIC_MARKERS", word)
    run(pytester, f"--therock-root={MI210}").assert_outcomes(skipped=1)
    monkeypatch.setenv("PYTEST_THEROCK_STRICT", word)  # the same word, the same meaning
    run(pytester, f"--therock-root={MI210}").assert_outcomes(errors=1)


@pytest.mark.parametrize("word", ["off", "OFF", "no", "False", "0", "n"])
def test_generic_markers_off_takes_the_no_words(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, word: str
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.requires_gpus(99)
        def test_many():
            pass
        """
    )
    pytester.makeini(f"[pytest]\ntherock_generic_markers = {word}\ntherock_strict = {word}\n")
    run(pytester, f"--therock-root={MI210}").assert_outcomes(passed=1)


def test_gpus_per_worker_error_names_its_source(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An impossible split (9 GPUs a worker, 8 visible) names the environment variable
    it came from, not the option."""
    pytest.importorskip("xdist")
    monkeypatch.setenv("PYTEST_THEROCK_GPUS_PER_WORKER", "9")
    pytester.makepyfile("def test_a(): pass")
    result = run(pytester, "-n", "1", f"--therock-root={MI210}", xdist=True)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: pytest-therock: PYTEST_THEROCK_GPUS_PER_WORKER: 9 GPU(s) per worker need 9 GPUs*"]
    )
