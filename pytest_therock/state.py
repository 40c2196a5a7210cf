"""Per-session state: settings and the lazily detected environment."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .settings import Settings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .diagnostics import Diagnostic
    from .environment import Environment, ToolStatus
    from .markers import Exclusion, MarkerError, Requirement
    from .proof import RuntimeProof
    from .rocminfo import RocminfoReport
    from .versions import Versions
    from .workers import SliceBook


#: What pytest calls a test's setup outcome, one and several (its summary line's words).
OUTCOME_WORDS = {
    "passed": ("passed", "passed"),
    "skipped": ("skipped", "skipped"),
    "xfailed": ("xfailed", "xfailed"),
    "error": ("error", "errors"),
    "rerun": ("rerun", "rerun"),
}


def setup_outcome(passed: bool, skipped: bool, outcome: str, wasxfail: bool) -> str:
    """pytest's category for a setup report: ``passed`` (the test then ran),
    ``skipped``, ``xfailed`` (skipped with ``wasxfail``), ``error`` (a setup that
    failed: pytest counts an error, not a failure), or ``rerun``
    (pytest-rerunfailures: set up again later)."""
    if passed:
        return "passed"
    if skipped:
        return "xfailed" if wasxfail else "skipped"
    return "rerun" if outcome == "rerun" else "error"


class SkipTally:
    """Tests with hardware requirements, and why the unmet ones did not run."""

    def __init__(self) -> None:
        #: test id -> (unmet reason or ``invalid marker ...``, setup outcome in pytest's
        #: words: :func:`setup_outcome`)
        self.tests: dict[str, tuple[str | None, str]] = {}
        #: The most an unmet marker asked for, in bytes: "gtt" (requires_gtt_gb) and
        #: "gpu" (requires_gpu_memory_gb).
        self.memory_needed: dict[str, int] = {}

    def record(self, reason: str | None, outcome: str, test: str | None = None) -> None:
        """A hardware-marked test's setup; a later setup of the same test (a rerun) replaces it."""
        self.tests[test if test is not None else str(len(self.tests))] = (reason, outcome)

    @property
    def marked(self) -> int:
        return len(self.tests)

    @property
    def unmet(self) -> Counter[tuple[str, str]]:
        """(outcome, unmet reason) -> tests."""
        return Counter((out, why) for why, out in self.tests.values() if why is not None)

    def summary(self) -> list[str]:
        """``12 skipped: requires gfx1151, found gfx1100``, most frequent first; under
        --therock-strict ``2 errors: ...``: pytest's words for what happened at setup.
        A misused marker is a reason too (``1 error: invalid marker requires_gpus('two'):
        ...``), so the counts here add up to pytest's."""
        unmet = self.unmet
        if not unmet:
            return []
        lines = [
            f"{n} {OUTCOME_WORDS[out][n != 1]}: {why}" for (out, why), n in unmet.most_common()
        ]
        total = sum(unmet.values())
        ran = sum(1 for _, out in self.tests.values() if out == "passed")
        if total == self.marked:
            said = {"skipped": "skipped", "error": "is an error at setup"}
            kinds = {out for out, _ in unmet}
            did = " or ".join(said[kind] for kind in said if kind in kinds)
            if kinds - said.keys():
                did = "had an unmet requirement"
            lines.append(f"every hardware-marked test ({total}) {did}: none of them ran")
        else:
            lines.append(f"{ran} of {self.marked} hardware-marked tests ran")
        return lines


class TheRock:
    """What one pytest process knows; detection runs at most once, on first use."""

    def __init__(
        self,
        settings: Settings,
        env_json: str | None = None,
        worker_variables: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self._env_json = env_json  # handed over by the xdist controller
        self.worker_variables = worker_variables or {}  # this worker's GPU slice
        self.gpu_slices: SliceBook | None = None  # controller: each worker's GPUs, by worker id
        self._env: Environment | None = None
        self._diagnostics: list[Diagnostic] | None = None
        self.extra_diagnostics: list[Diagnostic] | None = None  # from the project's hook
        self._versions: Versions | None = None
        self._rocminfo: tuple[RocminfoReport | None, ToolStatus] | None = None
        self.tally = SkipTally()
        # marker as written -> what it means (or why it is wrong), parsed once per session
        self.parsed: dict[str, Requirement | Exclusion | MarkerError | None] = {}
        self.by_mark: dict[int, tuple[object, str, Any]] = {}  # id(Mark) -> (Mark, kind, parsed)
        self._unmet: dict[str, str | None] = {}  # marker as written -> unmet reason
        self._together: dict[tuple[str, ...], str | None] = {}  # a test's marker set -> reason
        self.runtime: RuntimeProof | None = None  # --therock-expect-runtime's outcome
        self._stop: list[str] | None = None  # why the session must stop before any test
        self.marker_lines: dict[str, str] = {}  # marker name -> the `markers` line we added
        self.marker_lines_seen = -1  # length of the ini `markers` list when owners were checked
        self.stepped_aside: set[str] = set()  # generic marker names the project registered
        self.stepped_aside_said: set[str] = set()  # of those, the ones already reported
        self.gfx_names_seen: set[str] = set()  # requires_gfx<target> names found in sources
        #: test module path -> whether it uses the plugin (its markers, fixtures, package)
        self.module_uses_plugin: dict[str, bool] = {}

    def quiet(self, verbose: int) -> bool:
        """No AMD GPU here and nobody asked for one: the header is one line, no summary.

        No AMD GPU: none found, no /dev/kfd, and nothing that could not be read. A
        machine whose KFD topology lists GPUs it cannot use is not quiet, nor one with
        a half-written topology.
        """
        settings = self.settings
        if verbose > 0 or settings.strict or settings.expect or settings.expect_runtime:
            return False
        from .absence import no_amd_gpu

        env = self.env()
        # A rocminfo consulted (WSL, a snapshot) that saw more than "no AMD GPU here"
        # (the driver not loaded, /dev/kfd missing, nothing recorded) deserves the header.
        return no_amd_gpu(env) and not env.problems

    def no_gpu_line(self) -> str:
        """The whole header when :meth:`quiet` (a laptop, an NVIDIA box)."""
        env = self.env()
        why = "none through /dev/dxg" if env.wsl else "no /dev/kfd"
        where = f" in {env.root}" if env.root != "/" else ""  # a snapshot, named
        return f"no AMD GPU{where} ({why}): tests that need one will skip; -v for details"

    @property
    def detected(self) -> bool:
        return self._env is not None

    def env(self) -> Environment:
        if self._env is None:
            from .environment import Environment

            if self._env_json is not None:
                from .workers import for_worker

                env = Environment.from_json(self._env_json)
                self._env = for_worker(env, self.worker_variables) if self.worker_variables else env
            else:
                # `from .detect import`, not `from . import detect`: the latter would take a
                # module that pytester dropped from sys.modules after an earlier in-process
                # session, whose exception classes are not this session's.
                from .detect import detect
                from .sysroot import Root

                self._env = detect(Root(Path(self.settings.root)), os.environ)
        return self._env

    def unmet(self, requirement: Requirement, env: Environment) -> str | None:
        """Why ``requirement`` is not met here (None if it is), worked out once per session."""
        key = requirement.marker
        if key not in self._unmet:
            reason = requirement.check(env, self.versions)
            if reason is None and self.settings.strict:  # a GPU that cannot be used is absent
                from .proof import unusable

                reason = unusable(requirement, env, self.versions)
            self._unmet[key] = reason
        return self._unmet[key]

    def unmet_together(self, reqs: Sequence[Requirement], env: Environment) -> str | None:
        """Why no one GPU meets ``reqs`` together (markers.unmet_on_one_gpu), worked out
        once per distinct set of markers."""
        key = tuple(sorted({r.marker for r in reqs}))
        if key not in self._together:
            from .markers import unmet_on_one_gpu

            self._together[key] = unmet_on_one_gpu(reqs, env)
        return self._together[key]

    def prove(self) -> list[str]:
        """``--therock-expect`` and ``--therock-expect-runtime``, checked once.

        Returns why the session must stop (one line each), or [] when it may run.
        The runtime proof runs ``rocminfo`` once, only when asked.
        """
        if self._stop is None:
            from .proof import expect_failure, runtime_proof

            stop = []
            env = self.env()
            if self.settings.expect:
                failure = expect_failure(env, self.settings.expect)
                stop += [failure] if failure else []
            if self.settings.expect_runtime:
                report, status = self.rocminfo()
                self.runtime = runtime_proof(env, report, status, self.settings.expect)
                if not self.runtime.ok:
                    stop.append(f"runtime proof (--therock-expect-runtime): {self.runtime.message}")
            self._stop = stop
        return self._stop

    def versions(self) -> Versions:
        """Installed versions, looked up on first use (no import of torch or ROCm)."""
        if self._versions is None and self.env().versions is not None:
            self._versions = self.env().versions
        if self._versions is None:
            from .sysroot import Root
            from .versions import detect_versions

            self._versions = detect_versions(Root(Path(self.settings.root)), os.environ)
        return self._versions

    def rocminfo(self) -> tuple[RocminfoReport | None, ToolStatus]:
        """rocminfo, run (or replayed from a snapshot) once, on first use."""
        if self._rocminfo is None:
            from .rocminfo_env import run_rocminfo
            from .sysroot import Root

            root = Root(Path(self.settings.root))
            timeout, path = self.settings.timeout, self.settings.rocminfo
            source = self.settings.sources.get("rocminfo")
            self._rocminfo = run_rocminfo(root, os.environ, timeout, path, source)
        return self._rocminfo

    def diagnostics(self) -> list[Diagnostic]:
        if self._diagnostics is None:
            from .absence import no_amd_gpu, unknown_gpus
            from .diagnostics import SEVERITIES, run_checks

            found = run_checks(self.env(), self.settings.ignore)
            env, settings = self.env(), self.settings
            # none found, or unknown (said by the GPUs line): a GPU test skips, nothing more
            absent = no_amd_gpu(env) or (unknown_gpus(env) is not None and not env.kfd.present)
            if absent and not (settings.strict or settings.expect or settings.expect_runtime):
                found = [_no_gpu_is_not_an_error(d) for d in found]
            extra = self.extra_diagnostics or []
            found += [d for d in extra if d.code not in self.settings.ignore]
            self._diagnostics = sorted(found, key=lambda d: SEVERITIES.index(d.severity))
        return self._diagnostics


def _no_gpu_is_not_an_error(diag: Diagnostic) -> Diagnostic:
    """A machine with no AMD GPU (:func:`~pytest_therock.absence.no_amd_gpu`) is not
    broken: in a pytest run that did not ask for a GPU (no --therock-strict,
    --therock-expect or --therock-expect-runtime), its kfd-missing is information,
    without a fix; so is one without /dev/kfd whose topology could not be read (the
    GPUs line says unknown). ``pytest-therock doctor`` keeps them errors, and so does a
    machine with /dev/kfd (the driver is loaded) whose topology lists no usable GPU or
    could not be read."""
    if diag.code not in ("kfd-missing", "no-gpu"):
        return diag

    return diag._replace(severity="info", fix=None)
