"""Per-session state: settings and the lazily detected environment."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from .settings import Settings

if TYPE_CHECKING:
    from .diagnostics import Diagnostic
    from .environment import Environment, ToolStatus
    from .markers import Requirement
    from .proof import RuntimeProof
    from .rocminfo import RocminfoReport
    from .versions import Versions
    from .workers import SliceBook


class SkipTally:
    """Tests with hardware requirements, and why the unmet ones did not run."""

    def __init__(self) -> None:
        self.marked = 0
        self.unmet: Counter[str] = Counter()
        self.strict_failures = 0
        #: The most an unmet marker asked for, in bytes: "gtt" (requires_gtt_gb) and
        #: "gpu" (requires_gpu_memory_gb).
        self.memory_needed: dict[str, int] = {}

    def record(self, reason: str | None, skipped: bool) -> None:
        self.marked += 1
        if reason is not None:
            self.unmet[reason] += 1
            self.strict_failures += not skipped

    def summary(self) -> list[str]:
        """``12 skipped: requires gfx1151, found gfx1100``, most frequent first."""
        if not self.unmet:
            return []
        verb = "failed" if self.strict_failures else "skipped"
        lines = [f"{n} {verb}: {reason}" for reason, n in self.unmet.most_common()]
        total = sum(self.unmet.values())
        if total == self.marked:
            lines.append(f"every hardware-marked test ({total}) {verb}: none of them ran")
        else:
            lines.append(f"{self.marked - total} of {self.marked} hardware-marked tests ran")
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
        self.parsed: dict[str, Requirement | None] = {}  # marker as written -> requirement
        self._unmet: dict[str, str | None] = {}  # marker as written -> unmet reason
        self.runtime: RuntimeProof | None = None  # --therock-expect-runtime's outcome
        self._stop: list[str] | None = None  # why the session must stop before any test

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
                from . import detect as probe  # the module: tests may wrap probe.detect
                from .sysroot import Root

                self._env = probe.detect(Root(Path(self.settings.root)), os.environ)
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
            self._rocminfo = run_rocminfo(root, os.environ, timeout, explicit=path)
        return self._rocminfo

    def diagnostics(self) -> list[Diagnostic]:
        if self._diagnostics is None:
            from .diagnostics import SEVERITIES, run_checks

            found = run_checks(self.env(), self.settings.ignore)
            extra = self.extra_diagnostics or []
            found += [d for d in extra if d.code not in self.settings.ignore]
            self._diagnostics = sorted(found, key=lambda d: SEVERITIES.index(d.severity))
        return self._diagnostics
