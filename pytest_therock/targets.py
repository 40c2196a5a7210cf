"""GPU target names, patterns and families.

The table of targets and families is rocm-bootstrap's (imported only when a
marker names one); detection decodes ``gfx_target_version`` by itself, so a
target newer than that table is still reported.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

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


def parse_target_pattern(text: str) -> TargetPattern:
    """Parse ``gfx1151``, ``gfx110*``, ``gfx11``, ``gfx115x``, ``gfx110X-all``, ``gfx11-generic``.

    Raises ValueError naming the closest known names when ``text`` is none of them.
    """
    from rocm_bootstrap import targets as rb

    name = _THEROCK_SUFFIX.sub("", text.strip()).lower()
    if any(c in name for c in "*?["):
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
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise ValueError(f"unknown gfx target or family {text!r}{hint}")


def known_marker_targets() -> list[str]:
    """Every target and family key, for registering ``requires_gfx<name>`` markers."""
    from rocm_bootstrap import targets as rb

    names = {t.name for t in rb.ALL_TARGETS} | {b.key.lower() for b in rb.all_bundles()}
    return sorted(n for n in names if re.fullmatch(r"gfx\w+", n))
