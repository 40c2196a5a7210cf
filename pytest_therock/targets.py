"""GPU target names, patterns and families.

The table of targets and families is rocm-bootstrap's (imported only when a
marker names one); detection decodes ``gfx_target_version`` by itself, so a
target newer than that table is still reported.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

#: TheRock's family names: ``gfx110X-all``, ``gfx94X-dcgpu``, ``gfx120X-all``, ``gfx950-dcgpu``.
_THEROCK_SUFFIX = re.compile(r"-(all|dgpu|dcgpu|igpu)$", re.IGNORECASE)
_PREFIX_FAMILY = re.compile(r"^(gfx\d+)x$")
#: A glob over target names: letters, digits, ``*``, ``?`` and complete ``[...]`` sets.
_GLOB = re.compile(r"(?:[a-z0-9*?_-]|\[!?\]?[^\]\[]*\])+")


@dataclass(frozen=True)
class TargetPattern:
    """What a ``requires_gfx`` argument accepts: a target, a glob or a family."""

    text: str  # as the user wrote it
    members: frozenset[str] = frozenset()  # exact targets (a target or a named family)
    glob: str | None = None  # "gfx110*", and TheRock "gfx110X" as "gfx110*"

    def matches(self, gfx_target: str | None) -> bool:
        if gfx_target is None:
            return False
        target = gfx_target.lower()
        if self.glob is not None:
            return fnmatch.fnmatchcase(target, self.glob)
        return target in self.members


def parse_target_pattern(text: str, marker: bool = False) -> TargetPattern:
    """Parse ``gfx1151``, ``gfx110*``, ``gfx11``, ``gfx115x``, ``gfx110X-all``, ``gfx11-generic``.

    Raises ValueError naming the closest known names when ``text`` is none of them;
    with ``marker`` (``text`` comes from a ``requires_gfx<target>`` marker name), as
    markers one can write: ``requires_gfx1151``, and ``requires_gfx('gfx11-generic')``
    for a name that cannot be part of a marker name.
    """
    from rocm_bootstrap import targets as rb

    name = _THEROCK_SUFFIX.sub("", text.strip()).lower()
    if any(c in name for c in "*?[]"):
        if not name.startswith("gfx"):
            raise ValueError(f"{text!r} is not a gfx target pattern (e.g. 'gfx110*')")
        if not _GLOB.fullmatch(name):  # 'gfx[' would be a literal '[': it never matches
            raise ValueError(
                f"{text!r} is not a valid glob: an unclosed '[' or a character no target "
                "name has (e.g. 'gfx110*', 'gfx11[05]*')"
            )
        return TargetPattern(text, glob=name)
    if name in {t.name for t in rb.ALL_TARGETS}:
        return TargetPattern(text, members=frozenset({name}))
    bundles = {b.key.lower(): b for b in rb.all_bundles()}
    bundles.update({b.llvm_generic: b for b in rb.all_bundles() if b.llvm_generic})
    bundles.update({"gfx11_0": rb.lookup_bundle("gfx11_0"), "gfx11_5": rb.lookup_bundle("gfx11_5")})
    if name in bundles:
        return TargetPattern(text, members=frozenset(t.name for t in bundles[name].members))
    prefix = _PREFIX_FAMILY.match(name)
    if prefix and any(t.name.startswith(prefix[1]) for t in rb.ALL_TARGETS):
        return TargetPattern(text, glob=prefix[1] + "*")
    known = sorted({t.name for t in rb.ALL_TARGETS} | set(bundles))
    import difflib

    close = difflib.get_close_matches(name, known, n=3)
    if marker:
        close = [_as_marker(c) for c in close]
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise ValueError(f"unknown gfx target or family {text!r}{hint}")


def _as_marker(name: str) -> str:
    """``requires_gfx1151``; ``requires_gfx('gfx11-generic')``: a marker name is a
    Python identifier (``pytest.mark.<name>``), and ``-`` cannot be in one."""
    shorthand = f"requires_{name}"
    return shorthand if shorthand.isidentifier() else f"requires_gfx({name!r})"


#: A gfx target as the runtime names one: ``gfx1151``, ``gfx90a``; PyTorch's
#: ``gcnArchName`` adds features after a ``:`` (``gfx942:sramecc+:xnack-``).
_TARGET = re.compile(r"gfx[0-9a-f]+")


def _target(gfx_target: object) -> str | None:
    """``gfx_target`` as a target name (lower case, features dropped), or None (no GPU);
    raises TypeError or ValueError for anything that is not a gfx target."""
    if gfx_target is None:
        return None
    if not isinstance(gfx_target, str):
        raise TypeError(
            f"per_target: gfx_target must be a str such as 'gfx1151' (or None: no GPU), "
            f"got {type(gfx_target).__name__} {gfx_target!r}"
        )
    target = gfx_target.split(":", 1)[0].strip().lower()
    from rocm_bootstrap import targets as rb

    if target in {t.name for t in rb.ALL_TARGETS}:
        return target
    if not _TARGET.fullmatch(target):
        raise ValueError(f"per_target: {gfx_target!r} is not a gfx target (e.g. 'gfx1151')")
    try:
        family = parse_target_pattern(target)
    except ValueError:
        return target  # a target newer than rocm-bootstrap's table
    if family.members != {target}:
        raise ValueError(
            f"per_target: {gfx_target!r} is a family, not a target: pass the GPU's own "
            "target (the gpu_arch fixture's value, e.g. 'gfx1151')"
        )
    return target


def _covers(pattern: TargetPattern) -> frozenset[str]:
    """The known targets (rocm-bootstrap's table) ``pattern`` matches."""
    from rocm_bootstrap import targets as rb

    return frozenset(t.name for t in rb.ALL_TARGETS if pattern.matches(t.name))


def per_target(table: Mapping[str, T], gfx_target: str | None) -> T:
    """The entry of ``table`` for ``gfx_target``: the most specific key that covers it.

    ``table`` maps patterns to values, ``{"gfx1151": 1e-3, "gfx115x": 2e-3, "gfx11": 5e-3,
    "default": 1e-2}``. A key is written as for the markers (``requires_gfx``, read by
    :func:`parse_target_pattern`): a target, a glob (``gfx11*``), a family or
    sub-family (``gfx11``, ``gfx115x``, ``gfx94x``), an LLVM generic (``gfx11-generic``),
    a TheRock family name (``gfx94X-dcgpu``), in any case; or ``"default"``. The
    target's own key wins; otherwise the key that covers the fewest of rocm-bootstrap's
    targets (``gfx115x`` before ``gfx11``); then ``"default"``.

    ``gfx_target`` is a target as the runtime names it (``"gfx1151"``, or PyTorch's
    ``"gfx942:sramecc+:xnack-"``: the target before the ``:``), or None: no GPU. A
    target newer than rocm-bootstrap's table is matched by globs and its own key only.

    Raises TypeError when ``table`` is not a mapping, a key is not a str, or
    ``gfx_target`` is neither a str nor None; ValueError for a key that is no known
    target, family or well-formed glob (a typo would never be chosen), for two keys
    that are one key in another case (``"gfx1151"`` and ``"GFX1151"``) or that cover
    the same targets (``"gfx11"`` and ``"gfx11-generic"``), and for a ``gfx_target``
    that is not a gfx target (``""``, ``"nonsense"``, a family such as ``"gfx11"``);
    LookupError when no key covers ``gfx_target`` and there is no ``"default"``.
    """
    if not isinstance(table, Mapping):
        raise TypeError(
            "per_target: table must be a mapping of gfx targets or families to values "
            f"(per_target({{'gfx1151': ..., 'default': ...}}, gpu_arch)), "
            f"got {type(table).__name__}"
        )
    target = _target(gfx_target)
    default: str | None = None
    entries: list[tuple[str, TargetPattern, frozenset[str]]] = []
    for key in table:
        if not isinstance(key, str):
            raise TypeError(
                f"per_target: keys must be str gfx targets or families, got "
                f"{type(key).__name__} {key!r}"
            )
        if key.strip().lower() == "default":
            if default is not None:
                raise ValueError(f"per_target: keys {default!r} and {key!r} are the same key")
            default = key
            continue
        try:
            pattern = _cached_pattern(key)
        except ValueError as exc:
            raise ValueError(f"per_target: {exc}") from None
        covers = _covers(pattern)
        for other, _, other_covers in entries:
            if key.strip().lower() == other.strip().lower():
                raise ValueError(f"per_target: keys {other!r} and {key!r} are the same key")
            if covers and covers == other_covers:
                raise ValueError(
                    f"per_target: keys {other!r} and {key!r} cover the same targets: keep one"
                )
        entries.append((key, pattern, covers))
    # The target's own key first, then the key that covers the fewest targets.
    found = sorted(
        (pattern.members != {target}, len(covers), key)
        for key, pattern, covers in entries
        if target is not None and pattern.matches(target)
    )
    if len(found) > 1 and found[0][:2] == found[1][:2]:
        raise ValueError(
            f"per_target: keys {found[0][2]!r} and {found[1][2]!r} both cover {target} "
            "as closely: keep one"
        )
    if found:
        return table[found[0][2]]
    if default is not None:
        return table[default]
    keys = ", ".join(repr(k) for k in table) or "none"
    raise LookupError(
        f"per_target: no entry for {target or 'no GPU'} (keys: {keys}; add one that "
        "covers it, or 'default')"
    )


@functools.lru_cache(maxsize=256)
def _cached_pattern(text: str) -> TargetPattern:
    return parse_target_pattern(text)
