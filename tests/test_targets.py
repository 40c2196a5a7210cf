"""``per_target``: the markers' pattern language, and clear errors for what is not a table
or a target."""

from __future__ import annotations

import pytest
from conftest import EXAMPLES, run

from pytest_therock import per_target


@pytest.mark.parametrize(
    ("key", "target"),
    [
        ("gfx94x", "gfx942"),  # a family as requires_gfx94x names it
        ("gfx94X-dcgpu", "gfx942"),  # TheRock's family name
        ("gfx11-generic", "gfx1151"),  # an LLVM generic
        ("gfx110*", "gfx1101"),  # a glob
        ("gfx13*", "gfx1300"),  # a glob also covers a target newer than the table
    ],
)
def test_keys_are_the_patterns_requires_gfx_takes(key: str, target: str) -> None:
    assert per_target({key: "hit", "default": "miss"}, target) == "hit"


def test_the_most_specific_key_wins_whatever_their_order() -> None:
    table = {"gfx11-generic": 3, "default": 0, "gfx115x": 2, "gfx1151": 1, "gfx11*": 4}
    with pytest.raises(ValueError, match="'gfx11-generic' and 'gfx11\\*' cover the same"):
        per_target(table, "gfx1151")
    del table["gfx11*"]
    assert [per_target(table, t) for t in ("gfx1151", "gfx1150", "gfx1100", "gfx942")] == [
        1,
        2,
        3,
        0,
    ]


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"gfx1151": 1, "GFX1151": 2}, "'gfx1151' and 'GFX1151' are the same key"),
        ({"default": 1, "DEFAULT": 2}, "'default' and 'DEFAULT' are the same key"),
        ({"gfx94x": 1, "gfx94X-dcgpu": 2}, "'gfx94x' and 'gfx94X-dcgpu' cover the same targets"),
    ],
)
def test_keys_that_are_one_key_are_an_error_naming_both(table: dict[str, int], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        per_target(table, "gfx1151")


@pytest.mark.parametrize(
    ("target", "error", "says"),
    [
        (b"gfx1151", TypeError, "gfx_target must be a str such as 'gfx1151'.*got bytes"),
        (1151, TypeError, "gfx_target must be a str.*got int 1151"),
        ("nonsense", ValueError, "'nonsense' is not a gfx target"),
        ("", ValueError, "'' is not a gfx target"),
        ("gfx11", ValueError, "'gfx11' is a family, not a target"),
        ("gfx11*", ValueError, "'gfx11\\*' is not a gfx target"),
    ],
)
def test_a_target_that_is_not_one_is_an_error(target: object, error: type, says: str) -> None:
    with pytest.raises(error, match=says):
        per_target({"default": 0}, target)  # type: ignore[arg-type]


def test_a_table_that_is_not_a_mapping_of_str_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"table must be a mapping.*got str"):
        per_target("gfx1151", {"default": 0})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="keys must be str gfx targets or families, got int 1151"):
        per_target({1151: 1}, "gfx1151")  # type: ignore[dict-item]


def test_none_is_no_gpu_and_gets_the_default() -> None:
    assert per_target({"gfx11": 1, "default": 0}, None) == 0
    with pytest.raises(LookupError, match="no entry for no GPU"):
        per_target({"gfx11": 1}, None)


def test_in_a_session_a_family_key_as_the_markers_write_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_therock import per_target

        @pytest.mark.requires_gfx("gfx90X-dcgpu")
        def test_tolerance(gpu_arch):
            assert per_target({"gfx90X-dcgpu": 1e-4, "gfx11": 1e-3, "default": 1e-2}, gpu_arch) == 1e-4
        """
    )
    run(pytester, f"--therock-root={EXAMPLES / 'mi210-8x'}").assert_outcomes(passed=1)
