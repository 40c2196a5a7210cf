"""Proof, before any test, that the expected GPUs can be used by this process.

``--therock-expect TARGET`` holds when a GPU of that target is in the KFD topology,
not hidden by the visibility variables, and reachable: ``/dev/kfd`` present,
readable and writable (ROCr opens it read-write, ``ROCR-Runtime``
``libhsakmt/src/openclose.c``: ``open("/dev/kfd", O_RDWR | O_CLOEXEC)``), or, under
WSL, ``/dev/dxg``. ``--therock-expect-runtime`` adds the runtime's own word:
``rocminfo`` must list the same targets as GPU agents. ``rocminfo`` honours
``ROCR_VISIBLE_DEVICES`` (it enumerates agents through ROCr, which applies the
variable: https://rocm.docs.amd.com/en/latest/conceptual/gpu-isolation.html), so
it is compared with the GPUs left visible by that variable.

Everything here is a pure function of the detected :class:`Environment` (and the
``rocminfo`` report): the plugin's hooks decide when to call them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .environment import VISIBILITY_VARIABLES, Environment, Gpu, ToolStatus
from .targets import TargetPattern, parse_target_pattern

if TYPE_CHECKING:
    from .markers import Requirement
    from .rocminfo import RocminfoReport
    from .versions import Versions


EXPLAIN = "`pytest-therock doctor --explain kfd-missing`"


@dataclass(frozen=True)
class Blocker:
    """Why this process cannot use the GPUs it sees, and the one fix."""

    what: str  # "/dev/kfd is missing although the KFD topology lists 8 GPU(s)"
    fix: str  # "inside a container, pass --device /dev/kfd --device /dev/dri"


def blocker(env: Environment) -> Blocker | None:
    """What stops this process from using any GPU; None when nothing does.

    Decided by :attr:`Environment.reachable`, as ``pytest-therock doctor``'s
    ``usable`` is. The wording and the fix are the ``kfd-missing`` and ``kfd-denied``
    diagnostics', so the header and this never disagree.
    """
    if env.reachable:
        return None
    from .diagnostics import CHECKS

    for code in ("kfd-missing", "kfd-denied"):
        for diag in CHECKS[code].run(env, None):
            return Blocker(diag.message, diag.fix or "")
    if not env.kfd.known:
        from .absence import unknown_kfd, unknown_line

        why = unknown_kfd(env)
        return Blocker(
            f"/dev/kfd access is {unknown_line(why) if why else 'unknown'}",
            "record the snapshot again with `pytest-therock snapshot` on the machine",
        )
    return Blocker("/dev/kfd is not usable", "check `ls -l /dev/kfd` and `dmesg | grep kfd`")


def _counted(gpus: Sequence[Gpu]) -> str:
    counts = Counter(g.label for g in gpus)
    return ", ".join(f"{label} x{n}" if n > 1 else label for label, n in counts.items())


def _visibility(env: Environment) -> str:
    return ", ".join(f"{k}={env.env_vars[k]!r}" for k in VISIBILITY_VARIABLES if k in env.env_vars)


def expect_failure(env: Environment, targets: Sequence[str]) -> str | None:
    """Why ``--therock-expect targets`` does not hold here; None when it does.

    One line: what was found, and the one fix. ``targets`` were validated by
    :func:`pytest_therock.targets.parse_target_pattern` (at configure time).
    """
    from .markers import describe_found

    for target in targets:
        pattern = parse_target_pattern(target)
        present = [g for g in env.gpus if pattern.matches(g.gfx_target)]
        visible = [g for g in env.visible_gpus if pattern.matches(g.gfx_target)]
        stop = blocker(env)
        if not present:
            from .absence import no_amd_gpu, unknown_fix, unknown_gpus

            elsewhere = (
                f"run on a machine with a {target} GPU (in CI: the job ran on a runner "
                "without one; check its runs-on labels)"
            )
            if no_amd_gpu(env):  # no GPU, or amdgpu not loaded: nothing here tells which
                fix = f"{elsewhere}; if this machine has one: {EXPLAIN}"
            elif unknown_gpus(env) is not None and (stop is None or not stop.fix):
                fix = unknown_fix(env)  # what could not be read hides the GPUs
            else:
                fix = stop.fix if stop is not None and stop.fix and not env.gpus else elsewhere
            found = describe_found(env)
            return f"expected a {target} GPU (--therock-expect), found {found}; fix: {fix}"
        if not visible:
            positions = ",".join(str(env.gpus.index(g)) for g in present)
            return (
                f"expected a {target} GPU (--therock-expect), found {_counted(present)} "
                f"(GPU {positions}) hidden by {_visibility(env)}; fix: include GPU {positions} "
                "in the variable, or unset it"
            )
        if stop is not None:
            return (
                f"expected a usable {target} GPU (--therock-expect), found {_counted(visible)}, "
                f"but {stop.what}; fix: {stop.fix}"
            )
    return None


def unusable(
    requirement: Requirement, env: Environment, versions: Callable[[], Versions]
) -> str | None:
    """Strict mode: why a requirement met only by GPUs this process cannot use is unmet.

    None when the GPUs are usable, or when the requirement does not need a GPU
    (``requires_rocm``, ``requires_torch_rocm``).
    """
    stop = blocker(env)
    if stop is None or not env.visible_gpus:
        return None
    if requirement.check(env._replace(gpus=()), versions) is None:
        return None  # met without any GPU
    return (
        f"{requirement.marker}: found {_counted(env.visible_gpus)}, but it cannot be used: "
        f"{stop.what} (fix: {stop.fix})"
    )


@dataclass(frozen=True)
class RuntimeProof:
    """The outcome of ``--therock-expect-runtime``: one line for the header and JUnit."""

    ok: bool
    message: str  # "rocminfo lists gfx1151 (Radeon 8060S Graphics)" or why the proof failed


def _expected(env: Environment, targets: Sequence[str]) -> list[tuple[str, TargetPattern]]:
    if targets:
        return [(t, parse_target_pattern(t)) for t in targets]
    kernel = dict.fromkeys(g.gfx_target for g in env.visible_gpus if g.gfx_target)
    return [(t, parse_target_pattern(t)) for t in kernel]


def runtime_proof(
    env: Environment,
    report: RocminfoReport | None,
    status: ToolStatus,
    targets: Sequence[str],
) -> RuntimeProof:
    """Does the ROCm runtime (``rocminfo``) list the expected GPUs the kernel shows?

    ``targets`` are ``--therock-expect``'s, or none: then every visible GPU of the
    KFD topology must be listed. For each target, ``rocminfo`` must list at least
    one GPU agent of it, and no fewer than the kernel shows.
    """
    if report is None or not status.ok:
        from .absence import found_nothing  # no AMD GPU here: what it found, no driver advice

        return RuntimeProof(False, found_nothing(env, "rocminfo", status) or status.message)
    agents = report.gpus
    listed = ", ".join(
        f"{t} x{n}" if n > 1 else str(t)
        for t, n in Counter(a.gfx_target or "?" for a in agents).items()
    )
    expected = _expected(env, targets)
    if not expected:
        shown = f"GPU agents {listed}" if listed else "no GPU agent"
        return RuntimeProof(
            False, f"no GPU to prove: the kernel shows none, rocminfo lists {shown}"
        )
    for text, pattern in expected:
        runtime = sum(pattern.matches(a.gfx_target) for a in agents)
        kernel = sum(pattern.matches(g.gfx_target) for g in env.visible_gpus)
        if runtime == 0:
            return RuntimeProof(
                False,
                f"rocminfo lists {'GPU agents ' + listed if listed else 'no GPU agent'}, "
                f"expected {text}",
            )
        if runtime < kernel:
            return RuntimeProof(
                False, f"rocminfo lists {runtime} {text} GPU(s), the KFD topology {kernel}"
            )
    return RuntimeProof(True, f"rocminfo lists {listed}")
