"""GPU target names, patterns and families.

The table of targets and families is rocm-bootstrap's (imported only when a
marker names one); detection decodes ``gfx_target_version`` by itself, so a
target newer than that table is still reported.
"""

from __future__ import annotations

import fnmatch
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


def parse_target_pattern(text: str) -> TargetPattern:
    """Parse ``gfx1151``, ``gfx110*``, ``gfx11``, ``gfx115x``, ``gfx110X-all``, ``gfx11-generic``.

    Raises ValueError naming the closest known names when ``text`` is none of them.
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
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    raise ValueError(f"unknown gfx target or family {text!r}{hint}")


def known_marker_targets() -> list[str]:
    """Every target and family key, for registering ``requires_gfx<name>`` markers."""
    from rocm_bootstrap import targets as rb

    names = {t.name for t in rb.ALL_TARGETS} | {b.key.lower() for b in rb.all_bundles()}
    return sorted(n for n in names if re.fullmatch(r"gfx\w+", n))


def per_target(table: Mapping[str, T], gfx_target: str | None) -> T:
    """The entry of ``table`` for ``gfx_target``: the most specific key that covers it.

    Keys are looked up along rocm-bootstrap's packaging chain (its
    ``packaging_chain``): the target (``"gfx1151"``), its sub-family (``"gfx115x"``),
    its family (``"gfx11"``), then ``"default"``. Keys are case-insensitive. A target
    newer than that table (or None: no GPU) has no families, so it gets its own entry
    or ``"default"``.

    Raises ValueError for a key that is no known target or family (a typo would never
    be chosen), and LookupError when nothing covers ``gfx_target`` and there is no
    ``"default"``.
    """
    from rocm_bootstrap import targets as rb

    known = {t.name for t in rb.ALL_TARGETS} | {b.key.lower() for b in rb.all_bundles()}
    keys = {key.lower(): key for key in table}
    unknown = sorted(k for k in keys if k not in known and k != "default")
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], sorted(known), n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ValueError(f"per_target: unknown gfx target or family {keys[unknown[0]]!r}{hint}")
    chain: list[str] = []
    if gfx_target is not None:
        # PyTorch's gcnArchName, "gfx942:sramecc+:xnack-": the target is before the ':'.
        target = str(gfx_target).split(":", 1)[0].strip().lower()
        try:
            chain = [b.key.lower() for b in rb.packaging_chain(target)]
        except (ValueError, KeyError):
            chain = [target]
    for key in [*chain, "default"]:
        if key in keys:
            return table[keys[key]]
    raise LookupError(
        f"per_target: no entry for {gfx_target or 'no GPU'} "
        f"(looked up {', '.join([*chain, 'default'])})"
    )
