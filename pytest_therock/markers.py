"""The ``requires_*`` markers: argument checking and evaluation, as pure functions.

A marker is parsed into a :class:`Requirement` when the test is collected (bad
arguments become a collection error) and evaluated against the environment
when the test is set up (unmet: skip, or fail in strict mode).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .environment import GIB, Environment, Gpu, fmt_bytes
from .parsing import GIB_SIZE, GPU_COUNT, NumberError, NumberRule, parse_number
from .parsing import shown as show
from .targets import TargetPattern, parse_target_pattern

if TYPE_CHECKING:
    from .memory import GpuMemory
    from .versions import Versions


class MarkerError(ValueError):
    """A marker used with the wrong arguments."""


def _no_versions() -> Versions:
    raise LookupError("versions were not provided")


@dataclass(frozen=True)
class Requirement:
    """A ``requires_*`` marker, parsed: evaluated against an environment at setup."""

    marker: (
        str  # its name and targets: "skip_on_gfx('gfx1151')", for messages: "requires_gtt_gb(64)"
    )
    evaluate: Callable[[Environment, Callable[[], Versions]], str | None]
    gtt_bytes: int | None = None  # what requires_gtt_gb asks for
    gpu_memory_bytes: int | None = None  # what requires_gpu_memory_gb asks for
    #: For a requirement about one GPU (its target, memory, being an APU): None when
    #: ``gpu`` meets it, else what that GPU has instead. See :func:`unmet_on_one_gpu`.
    on_gpu: Callable[[Environment, Gpu], str | None] | None = None

    def check(
        self, env: Environment, versions: Callable[[], Versions] = _no_versions
    ) -> str | None:
        """None when met, else what was required and what was found."""
        return self.evaluate(env, versions)


def _call_repr(name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    # parsing.shown: repr() itself fails on an int of more than 4300 digits
    parts = [show(a, 80) for a in args] + [f"{k}={show(v, 80)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})" if parts else name


@dataclass(frozen=True)
class Exclusion:
    """``skip_on_gfx`` / ``xfail_on_gfx``: the test does not hold on these GPUs."""

    marker: str  # its name and targets: "skip_on_gfx('gfx1151')"
    patterns: tuple[TargetPattern, ...]
    reason: str | None
    xfail: bool
    strict: bool | None = None  # xfail only; None: pytest's xfail_strict
    raises: Any = None  # xfail only: an exception type or a tuple of them

    def applies(self, env: Environment) -> str | None:
        """Why it applies here, ``reason (skip_on_gfx('gfx1151') on gfx1151 (...))``; else None."""
        for gpu in env.visible_gpus:
            if any(p.matches(gpu.gfx_target) for p in self.patterns):
                where = f"{self.marker} on {gpu.label}"
                return f"{self.reason} ({where})" if self.reason else where
        return None


EXCLUSIONS = ("skip_on_gfx", "xfail_on_gfx")


class Xfail(Protocol):
    """An xfail as pytest reads one mark (``_pytest.skipping.Xfail``)."""

    @property
    def reason(self) -> str: ...
    @property
    def run(self) -> bool: ...
    @property
    def strict(self) -> bool: ...
    @property
    def raises(self) -> Any: ...


class XfailMark(NamedTuple):
    """An :class:`Xfail` of one's own: one of the xfails :func:`combine_xfails` keeps."""

    reason: str
    run: bool
    strict: bool
    raises: Any  # an exception type, a tuple of them, or None: any exception


def combine_xfails(xfails: Sequence[Xfail]) -> dict[str, Any]:
    """The keywords of one ``pytest.mark.xfail`` that keeps every xfail that applies.

    pytest's own rule for several xfail marks is that the first one that applies wins
    (``_pytest.skipping.evaluate_xfail_marks``, in ``iter_markers`` order), so marks
    written in another order would drop an ``xfail_on_gfx(strict=True)`` or a plain
    ``xfail``. Here none is dropped: the test is expected to fail; an XPASS fails the
    test if any of them is strict; any exception one of them expects is expected
    (``raises`` unset in any: every exception); it is not run if any says
    ``run=False``; the reason names each, in order. ``xfails`` is not empty.
    """
    reasons = [x.reason for x in xfails if x.reason] or [""]
    kinds: list[type[BaseException]] = []
    for x in xfails:
        kinds += x.raises if isinstance(x.raises, tuple) else [x.raises]
    options: dict[str, Any] = {
        "reason": "; ".join(dict.fromkeys(reasons)),
        "strict": any(x.strict for x in xfails),
        "run": all(x.run for x in xfails),
    }
    if all(kind is not None for kind in kinds):
        unique = tuple(dict.fromkeys(kinds))
        options["raises"] = unique[0] if len(unique) == 1 else unique
    return options


def parse_exclusion(name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Exclusion:
    """``skip_on_gfx(*patterns, reason=...)``; ``xfail_on_gfx`` also takes ``strict``, ``raises``.

    The patterns are those of ``requires_gfx``. Raises :class:`MarkerError`.
    """
    shown = _call_repr(name, args, kwargs)
    xfail = name == "xfail_on_gfx"
    allowed = ("reason", "strict", "raises") if xfail else ("reason",)
    unknown = [k for k in kwargs if k not in allowed]
    if unknown:
        raise MarkerError(f"{shown}: unknown keyword {unknown[0]!r} (takes {', '.join(allowed)})")
    if not args:
        raise MarkerError(f"{shown}: name at least one target, e.g. {name}('gfx1151')")
    reason = kwargs.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise MarkerError(f"{shown}: reason must be a string, got {show(reason)}")
    strict = kwargs.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise MarkerError(f"{shown}: strict must be True or False, got {show(strict)}")
    raises = kwargs.get("raises")
    types = raises if isinstance(raises, tuple) else (raises,)
    if raises is not None and not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in types
    ):
        raise MarkerError(f"{shown}: raises must be an exception type or a tuple of them")
    patterns = tuple(_pattern(shown, a) for a in args)
    # Shown with its targets only: the reason is said once, before it.
    return Exclusion(_call_repr(name, args, {}), patterns, reason, xfail, strict, raises)


def parse_marker(name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Requirement | None:
    """The requirement a marker states; None when the marker is not ours.

    Raises :class:`MarkerError` saying what is wrong and how to write it.
    """
    if not name.startswith("requires_"):
        return None
    shown = _call_repr(name, args, kwargs)
    if name == "requires_gfx":
        if not args:
            raise MarkerError(f"{shown}: name at least one target, e.g. requires_gfx('gfx1151')")
        return _gfx(shown, [_pattern(shown, a) for a in args], kwargs)
    if name.startswith("requires_gfx"):
        if args:
            raise MarkerError(f"{shown}: takes no arguments; use requires_gfx(...) for a list")
        return _gfx(shown, [_pattern(shown, name[len("requires_") :], marker=True)], kwargs)
    parser = _PARSERS.get(name)
    if parser is None:
        return None
    _no_keywords(shown, kwargs)
    return parser(shown, args)


def _no_keywords(shown: str, kwargs: Mapping[str, Any]) -> None:
    if kwargs:
        raise MarkerError(f"{shown}: unknown keyword {next(iter(kwargs))!r}")


def _pattern(shown: str, value: Any, marker: bool = False) -> TargetPattern:
    """A target pattern; ``marker``: ``value`` is taken from the marker's name (the
    suggestions for a typo are then markers, see parse_target_pattern)."""
    if not isinstance(value, str):
        raise MarkerError(f"{shown}: targets are strings such as 'gfx1151', got {show(value)}")
    try:
        return parse_target_pattern(value, marker=marker)
    except ValueError as exc:
        raise MarkerError(f"{shown}: {exc}") from None


def _number(shown: str, args: Sequence[Any], example: str, rule: NumberRule) -> float:
    """The one number argument, checked by the parser every setting uses."""
    if len(args) != 1:
        raise MarkerError(f"{shown}: takes exactly one number, e.g. {example}")
    value = args[0]
    if isinstance(value, str) or (rule.whole and isinstance(value, float)):  # 2 is not "2"
        raise MarkerError(f"{shown}: expected {rule.what}, got {show(value)}; e.g. {example}")
    try:
        return parse_number(value, shown, rule._replace(example=example))
    except NumberError as exc:
        raise MarkerError(str(exc)) from None


def _gib(value: float) -> str:
    """``24 GiB``, ``0.5 GiB``, ``4194304 GiB``: never ``4.1943e+06 GiB``."""
    return f"{value:.10g} GiB"


def describe_found(env: Environment) -> str:
    """What a requirement found: ``gfx1100 (Radeon RX 7900 XTX)``, or why there is no GPU."""
    gpus = env.visible_gpus
    if gpus:
        counts = Counter(g.label for g in gpus)  # in order of first appearance
        found = ", ".join(f"{label} x{n}" if n > 1 else label for label, n in counts.items())
        if env.unknown_nodes:  # KFD nodes that could not be read may be more GPUs
            from .absence import unknown_line

            unread = env.unknown_nodes
            return f"{found}, {len(unread)} more {unknown_line(unread[0])}"
        return found
    if env.gpus:
        shown = ", ".join(f"{k}={v!r}" for k, v in env.env_vars.items() if "VISIBLE" in k)
        return f"no visible AMD GPU ({len(env.gpus)} hidden by {shown})"
    from .absence import describe_absence  # no driver advice; unknown when unreadable

    return describe_absence(env)


def _gfx(shown: str, patterns: list[TargetPattern], kwargs: Mapping[str, Any]) -> Requirement:
    _no_keywords(shown, kwargs)
    wanted = " or ".join(p.text for p in patterns)

    def check(env: Environment, versions: Callable[[], Versions]) -> str | None:
        if any(p.matches(g.gfx_target) for g in env.visible_gpus for p in patterns):
            return None
        return f"requires {wanted}, found {describe_found(env)}"

    def on_gpu(env: Environment, gpu: Gpu) -> str | None:
        return None if any(p.matches(gpu.gfx_target) for p in patterns) else f"not {wanted}"

    return Requirement(shown, check, on_gpu=on_gpu)


def _memory(
    kind: str,
    size: Callable[[Environment, Gpu], int | None],
    hint: Callable[[Environment, Gpu, float], str],
    example: str,
) -> Callable[[str, Sequence[Any]], Requirement]:
    def parse(shown: str, args: Sequence[Any]) -> Requirement:
        gib = _number(shown, args, example, GIB_SIZE)

        def check(env: Environment, versions: Callable[[], Versions]) -> str | None:
            gpus = env.visible_gpus
            if not gpus:
                return f"requires {_gib(gib)} {kind}, found {describe_found(env)}"
            sizes = [(size(env, g), g) for g in gpus]
            if any(s is not None and s >= gib * GIB for s, _ in sizes):
                return None
            best, gpu = max(sizes, key=lambda sg: sg[0] or -1)
            planned = _planned_gpu(env, kind, math.ceil(gib * GIB))
            if planned is not None:  # the GPU the machine's plan is about comes first
                best, gpu = next(((s, g) for s, g in sizes if g is planned), (best, gpu))
            on = f"on {gpu.gfx_target or gpu.label}"
            if kind == "GPU memory":
                on = f"from {_model(env, gpu).pool_name} {on}"
            if best is None:  # neither enough nor too little: say what is unknown
                name = gpu.gfx_target or gpu.label
                if kind == "GPU memory":
                    what = f"how much {name} can allocate from {_model(env, gpu).pool_name}"
                else:
                    what = f"how much {kind} {name} can allocate"
                why = _unknown(env, gpu, kind)
                return f"requires {_gib(gib)} {kind}; {what} is unknown ({why})"
            why = hint(env, gpu, gib)
            return f"requires {_gib(gib)} {kind}, found {fmt_bytes(best)} {on} ({why})"

        def on_gpu(env: Environment, gpu: Gpu) -> str | None:
            found = size(env, gpu)
            if found is not None and found >= gib * GIB:
                return None
            pool = f" from {_model(env, gpu).pool_name}" if kind == "GPU memory" else ""
            if found is None:  # not "below": unknown
                return f"{kind}{pool} unknown, {_gib(gib)} needed ({_unknown(env, gpu, kind)})"
            return f"{fmt_bytes(found)} {kind}{pool}, not {_gib(gib)} ({hint(env, gpu, gib)})"

        need = math.ceil(gib * GIB)
        return Requirement(
            shown,
            check,
            need if kind == "GTT" else None,
            need if kind == "GPU memory" else None,
            on_gpu,
        )

    return parse


def _planned_gpu(env: Environment, kind: str, need: int) -> Gpu | None:
    """The visible GPU the machine's plan for ``need`` is about (memory.machine_plan), so a
    skip reason and the session summary speak of the same GPU; None for VRAM (no plan)."""
    if kind == "VRAM" or len(env.visible_gpus) < 2:
        return None
    from .memory import machine_plan

    steps = machine_plan(env, need, "gpu" if kind == "GPU memory" else "gtt")
    if steps is None:
        return None
    return next((g for g in env.visible_gpus if g.gfx_target == steps.gfx_target), None)


def _model(env: Environment, gpu: Gpu) -> GpuMemory:
    from .memory import gpu_memory

    return gpu_memory(env, gpu)


def _unknown(env: Environment, gpu: Gpu, kind: str) -> str:
    """Why a GPU's memory size is unknown: the problem with its sysfs file, if one was seen."""
    if kind == "GPU memory":
        model = _model(env, gpu)
        if model.pool == "unknown":
            return f"pool unknown: {model.pool_reason}"
        if model.pool == "GTT" and model.limit_bytes is None:
            return f"TTM limit unknown: {model.limit_why}"
        kind = model.pool
    name = f"mem_info_{kind.lower()}_total"
    if kind == "GTT":
        gtt = _model(env, gpu)
        if gtt.total_bytes is not None and gtt.limit_bytes is None:
            return f"TTM limit unknown: {gtt.limit_why}"
    if gpu.card is not None:
        for problem in env.problems:
            if problem.source.endswith(f"/{gpu.card}/device/{name}"):
                return f"{name}: {problem.reason}"
        return f"{gpu.card} has no readable {name}"
    return f"no DRM card found for this GPU, so no {name}"


def _plan_hint(env: Environment, gpu: Gpu, gib: float, kind: str) -> str:
    """Why the size is what it is, and the kind of change that raises it. The exact
    value is left to the session summary and ``pytest-therock doctor --need``, so one
    machine shows one number (memory.plan_hint)."""
    from .memory import plan_hint

    return plan_hint(env, gpu, math.ceil(gib * GIB), kind)


def _gtt_hint(env: Environment, gpu: Gpu, gib: float) -> str:
    return _plan_hint(env, gpu, gib, "gtt")


def _gpu_memory_hint(env: Environment, gpu: Gpu, gib: float) -> str:
    return _plan_hint(env, gpu, gib, "gpu")


def _vram_hint(env: Environment, gpu: Gpu, gib: float) -> str:
    if gpu.is_apu:
        return "an APU's VRAM is the BIOS carve-out; requires_gpu_memory_gb counts either pool"
    return "discrete GPU"


def _gpus(shown: str, args: Sequence[Any]) -> Requirement:
    count = int(_number(shown, args, "requires_gpus(2)", GPU_COUNT))

    def check(env: Environment, versions: Callable[[], Versions]) -> str | None:
        found = len(env.visible_gpus)
        if found >= count:
            return None
        gpus = "AMD GPU" if count == 1 else "AMD GPUs"
        return f"requires {count} {gpus}, found {found}" + (
            f" ({describe_found(env)})" if found else f": {describe_found(env)}"
        )

    return Requirement(shown, check)


def _apu(shown: str, args: Sequence[Any]) -> Requirement:
    if args:
        raise MarkerError(f"{shown}: takes no arguments")

    def check(env: Environment, versions: Callable[[], Versions]) -> str | None:
        if any(g.is_apu for g in env.visible_gpus):
            return None
        found = describe_found(env)
        return f"requires an APU, found {'discrete ' if env.visible_gpus else ''}{found}"

    return Requirement(shown, check, on_gpu=lambda env, g: None if g.is_apu else "discrete")


def _specifier(shown: str, args: Sequence[Any], optional: bool) -> Any:
    if not args and optional:
        return None
    if len(args) != 1 or not isinstance(args[0], str):
        raise MarkerError(f"{shown}: takes one version specifier string, e.g. '>=7.0'")
    if not args[0].strip():  # packaging reads "" as "any version": a slip, not a choice
        omit = "leave it out to accept any ROCm, or " if optional else ""
        raise MarkerError(f"{shown}: an empty version specifier; {omit}name one, e.g. '>=7.0'")
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    try:
        return SpecifierSet(args[0], prereleases=True)  # TheRock nightlies are pre-releases
    except InvalidSpecifier:
        raise MarkerError(
            f"{shown}: {show(args[0])} is not a version specifier, e.g. '>=7.0'"
        ) from None


def _version_matches(spec: Any, version: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return bool(spec.contains(Version(version), prereleases=True))
    except InvalidVersion:
        return False


def _rocm(shown: str, args: Sequence[Any]) -> Requirement:
    spec = _specifier(shown, args, optional=False)

    def check(env: Environment, versions: Callable[[], Versions]) -> str | None:
        found = versions()
        if found.rocm is None:
            where = "no /opt/rocm/.info/version, no rocm-sdk-core"
            return f"requires ROCm {spec}, found no ROCm ({where})"
        if _version_matches(spec, found.rocm):
            return None
        return f"requires ROCm {spec}, found {found.rocm} ({found.rocm_source})"

    return Requirement(shown, check)


def _torch_rocm(shown: str, args: Sequence[Any]) -> Requirement:
    spec = _specifier(shown, args, optional=True)
    wanted = f"a ROCm build of torch{f' for ROCm {spec}' if spec else ''}"

    def check(env: Environment, versions: Callable[[], Versions]) -> str | None:
        found = versions()
        if found.torch is None:
            return f"requires {wanted}, found no torch"
        rocm = found.torch_rocm
        if rocm is not None and (spec is None or _version_matches(spec, rocm)):
            return None
        return f"requires {wanted}, found torch {found.torch}"

    return Requirement(shown, check)


_PARSERS: dict[str, Callable[[str, Sequence[Any]], Requirement]] = {
    "requires_rocm": _rocm,
    "requires_torch_rocm": _torch_rocm,
    "requires_gtt_gb": _memory(
        "GTT", lambda env, g: _model(env, g).usable_bytes, _gtt_hint, "requires_gtt_gb(64)"
    ),
    "requires_gpu_memory_gb": _memory(
        "GPU memory",
        lambda env, g: _model(env, g).allocatable_bytes,
        _gpu_memory_hint,
        "requires_gpu_memory_gb(64)",
    ),
    "requires_vram_gb": _memory(
        "VRAM", lambda env, g: _model(env, g).vram_total_bytes, _vram_hint, "requires_vram_gb(16)"
    ),
    "requires_gpus": _gpus,
    "requires_apu": _apu,
}


def unmet_on_one_gpu(reqs: Sequence[Requirement], env: Environment) -> str | None:
    """Why no single visible GPU meets every per-GPU requirement of a test together
    (``requires_gfx1100`` and ``requires_gpu_memory_gb(24)`` are met by one GPU, not
    by a gfx1100 and another GPU's memory); None when one does, or when fewer than two
    such requirements apply. Each one alone is checked by :meth:`Requirement.check`."""
    scoped = [r for r in reqs if r.on_gpu is not None]
    if len(scoped) < 2 or len(env.visible_gpus) < 2:  # one GPU: each check already says
        return None
    lacks = []
    kinds = set()
    for gpu in env.visible_gpus:
        misses = [why for r in scoped if r.on_gpu is not None and (why := r.on_gpu(env, gpu))]
        if not misses:
            return None
        kinds.add(tuple(misses))
        lacks.append(f"{gpu.gfx_target or gpu.label}: {', '.join(misses)}")
    if len(kinds) == 1:  # every GPU lacks the same: each requirement's own reason says it
        return None
    wanted = " and ".join(r.marker for r in scoped)
    every = "both" if len(scoped) == 2 else "all of them"
    return f"{wanted} need one GPU meeting {every}, found {'; '.join(dict.fromkeys(lacks))}"


def requirements(
    marks: Iterable[tuple[str, Sequence[Any], Mapping[str, Any]]],
    cache: dict[str, Requirement | None] | None = None,
) -> list[Requirement]:
    """Parse every marker of a test; raises MarkerError on the first bad one.

    ``cache`` keeps each distinct marker parsed once per session: a suite marks
    thousands of tests with the same few markers.
    """
    found = []
    for name, args, kwargs in marks:
        key = _call_repr(name, args, kwargs)
        if cache is not None and key in cache:
            req = cache[key]
        else:
            req = parse_marker(name, args, kwargs)
            if cache is not None:
                cache[key] = req
        if req is not None:
            found.append(req)
    return found


def parse_any(
    name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> Requirement | Exclusion | None:
    """A ``requires_*`` requirement, a ``skip_on_gfx``/``xfail_on_gfx`` exclusion, or None."""
    if name in EXCLUSIONS:
        return parse_exclusion(name, args, kwargs)
    return parse_marker(name, args, kwargs)


def marker_key(name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """The marker as written: one cache entry per distinct marker in a session."""
    return _call_repr(name, args, kwargs)
