"""The public entry points, used from plain Python as the README shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import EXAMPLES, run

import pytest_therock
from pytest_therock import Root, detect_environment, gtt_info

REPO = Path(__file__).parent.parent
STRIX = EXAMPLES / "strix-halo"


def _readme_example() -> tuple[str, str]:
    """The code of the README's "Detection from plain Python" and the output it shows."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Detection from plain Python", 1)[1].split("\n## ", 1)[0]
    code, output = re.findall(r"```(?:python|text)\n(.*?)```", section, re.DOTALL)[:2]
    return code, output


def test_the_readme_example_runs_and_prints_what_it_shows() -> None:
    code, shown = _readme_example()
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown


@pytest.mark.parametrize("how", [str, Path, Root, os.fsencode])
def test_detect_environment_takes_the_root_a_user_would_pass(how: object) -> None:
    if how is os.fsencode:
        with pytest.raises(TypeError, match=r"root must be a directory .*got bytes"):
            detect_environment(os.fsencode(str(STRIX)))  # type: ignore[arg-type]
        return
    env = detect_environment(how(str(STRIX)))  # type: ignore[operator]
    assert [g.gfx_target for g in env.gpus] == ["gfx1151"]
    assert env == detect_environment(Root(STRIX))


def test_this_machine_by_any_name() -> None:
    assert detect_environment("/").root == detect_environment().root == "/"
    assert Root("/").is_live and Root(Path("/")).is_live


def test_gtt_info_takes_none_as_the_first_visible_gpu() -> None:
    env = detect_environment(STRIX)
    assert gtt_info(env, None) == gtt_info(env) == gtt_info(env, env.gpus[0])
    with pytest.raises(ValueError, match="no visible AMD GPU"):
        gtt_info(detect_environment(EXAMPLES / "no-gpu"))
    with pytest.raises(TypeError, match="gpu must be a Gpu"):
        gtt_info(env, "gfx1151")  # type: ignore[arg-type]


def test_every_public_name_is_importable_and_documented() -> None:
    readme = (REPO / "README.md").read_text()
    for name in pytest_therock.__all__:
        assert getattr(pytest_therock, name) is not None
        assert name in readme, name


def test_a_rocminfo_setting_that_cannot_run_is_named_when_it_is_needed(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """Checked lazily (a shared ini must not break a laptop's run): the skip names the key."""
    pytester.makeini(f"[pytest]\ntherock_rocminfo = {tmp_path / 'no' / 'rocminfo'}\n")
    pytester.makepyfile("def test_a(rocminfo): pass\ndef test_b(): pass")
    result = run(pytester, "--therock-root=/", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [f"SKIPPED*cannot run {tmp_path / 'no' / 'rocminfo'} (ini therock_rocminfo): no such file*"]
    )


def test_records_built_without_a_mapping_share_no_mutable_default() -> None:
    """``Environment.env_vars`` and ``Versions.therock`` default to read-only mappings:
    a record built later never sees what was done to one built before."""
    from pytest_therock import Environment
    from pytest_therock.versions import Versions

    kfd = detect_environment(str(EXAMPLES / "strix-halo")).kfd
    first = Environment("/", (), None, 4096, (), kfd)
    with pytest.raises(TypeError):
        first.env_vars["ROCR_VISIBLE_DEVICES"] = "-1"  # type: ignore[index]
    with pytest.raises(TypeError):
        Versions(None, None).therock["rocm"] = "7.0"  # type: ignore[index]
    assert Environment("/x", (), None, 4096, (), kfd).env_vars == {}


def test_a_directory_that_is_no_machine_is_a_problem_not_a_machine_without_gpu(
    tmp_path: Path,
) -> None:
    """pytest and doctor refuse such a root; from Python it is said in ``problems``, so a
    script cannot take an empty directory for a machine without a GPU."""
    env = detect_environment(tmp_path)
    assert env.gpus == ()
    assert [str(p) for p in env.problems] == [
        f"{tmp_path}: not a machine (it holds none of .therock/, sys/, proc/, dev/)"
    ]
