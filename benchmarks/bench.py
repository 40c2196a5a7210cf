#!/usr/bin/env python3
"""Measure what pytest-therock costs a test run.

Run from the repository, in the venv where the plugin is installed::

    python benchmarks/bench.py            # full mode: a few minutes on 2 cores
    python benchmarks/bench.py --quick    # fewer repeats and smaller suites: ~40 s
    python benchmarks/bench.py --json results.json

Every subprocess measurement times ``python -m pytest ...`` on a generated suite in a
temporary directory, once with the plugin and once without it (``-p no:therock``),
``N`` times each. The two variants alternate (A B, B A, A B, ...) so that drift on a
busy machine hits both alike, and one discarded warm-up run per variant fills the
bytecode caches first. Each figure is the median of the ``N`` runs; the table shows
``N`` as ``reps``. Both variants pass ``-p no:hypothesispytest``: hypothesis's pytest
plugin (installed with the test extras) imports hypothesis at the end of every run,
a second of fixed cost that only dilutes the comparison.

How to read the table:

- ``plugin`` and ``baseline``: median wall time with and without the plugin.
- ``delta``: plugin - baseline, then ``±`` half the interquartile range of the
  paired (same-iteration) differences: a delta well inside its ``±`` is noise.
- ``relative``: the delta as % of the baseline (the ratio plugin / baseline, minus
  1), or per test in microseconds (delta / number of tests) where the row says so.
  ``net`` subtracts the plugin's fixed start-up cost (the first start-up row) first,
  which matters when the suite is small (``--quick``).
- ``goal`` / ``status``: the target this row is judged against, ``ok`` or ``MISSED``.

Each start-up row also has a note with the runs' CPU time (user and system, from
``getrusage(RUSAGE_CHILDREN)``), medians and spread as above: on a shared or virtual
machine, wall time also holds the time spent waiting for a CPU, which the plugin does
not cause; CPU time leaves that out (though not the time a virtual machine loses to
its host, which makes both noisy there).

Goals:

1. Start-up (``--collect-only -q`` of 2,000 trivial tests): overhead <= 3% of the
   run without the plugin, for the default root and for a GPU root. Note that ``-q``
   hides the report header, which is what triggers detection at start-up; the row
   "header shown" runs without ``-q`` so that detection really happens.
2. Detection (``detect(Root(path), {})`` in-process): under 5 ms per root.
3. Markers: under 20 us per ``requires_*``-marked test beyond what pytest's own
   ``skip`` marker costs. The unmarked row (cost per test that has no marker) and
   the xdist row (plugin's share of a ``-n 4`` run) have no goal; they are reported.

The import rows come from ``python -X importtime``: the plugin module after ``import
pytest`` (median of several runs, in ms); then, in real ``pytest --collect-only`` runs
of the start-up suite with the header shown (default root, GPU root), the sum of the
plugin's own modules' self times, as % of the baseline run's median wall time. That
sum is steadier than the wall-clock ratio on a busy machine. The notes name the
costliest modules the plugin alone imports.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOTS = REPO / "examples" / "roots"
CAPTURES = REPO / "tests" / "realdata" / "kfd-topology"
GPU_ROOT = ROOTS / "strix-halo"
SKIP_ROOT = ROOTS / "mi210-8x"  # 8x gfx90a: every requires_gfx1151 test is skipped

#: Passed to every pytest run, with and without the plugin.
COMMON = ["-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
NO_PLUGIN = ["-p", "no:therock"]

STARTUP_GOAL_PCT = 3.0
DETECT_GOAL_MS = 5.0
MARKER_GOAL_US = 20.0


@dataclass(frozen=True)
class Mode:
    reps: int  # timed runs per variant: start-up and xdist
    marker_reps: int  # the same for the (longer) marker suites
    startup_tests: int
    marker_tests: int
    xdist_tests: int
    import_reps: int
    detect_repeat: int  # timeit repeats per root
    detect_seconds: float  # length of one repeat


FULL = Mode(
    reps=9,
    marker_reps=5,
    startup_tests=2000,
    marker_tests=10000,
    xdist_tests=2000,
    import_reps=7,
    detect_repeat=7,
    detect_seconds=0.1,
)
QUICK = Mode(
    reps=3,
    marker_reps=3,
    startup_tests=2000,
    marker_tests=1000,
    xdist_tests=400,
    import_reps=3,
    detect_repeat=3,
    detect_seconds=0.02,
)


@dataclass
class Row:
    """One line of the table."""

    section: str
    name: str
    plugin: str = ""
    baseline: str = ""
    delta: str = ""
    relative: str = ""
    goal: str = ""
    status: str = ""
    reps: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    data: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    startup_overhead: float = 0.0  # seconds: the plugin's fixed cost per run (-q, default root)
    baselines: dict[str, float] = field(default_factory=dict)  # start-up case -> baseline s


# ---------------------------------------------------------------------------
# Generated suites and timed subprocess runs
# ---------------------------------------------------------------------------


def write_suite(directory: Path, files: int, per_file: int, decorator: str | None) -> Path:
    """``files`` modules of ``per_file`` trivial tests, each under ``decorator``."""
    directory.mkdir(parents=True)
    (directory / "pytest.ini").write_text("[pytest]\n")  # pins the rootdir and its config
    mark = f"{decorator}\n" if decorator else ""
    header = "import pytest\n\n\n" if decorator else ""
    body = "\n\n".join(f"{mark}def test_{i}():\n    pass\n" for i in range(per_file))
    for k in range(files):
        (directory / f"test_gen_{k:02d}.py").write_text(header + body)
    return directory


def child_env() -> dict[str, str]:
    """This environment, less what changes pytest's plugins or stops bytecode caching."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST_THEROCK_")
        and k
        not in {
            "PYTEST_ADDOPTS",
            "PYTEST_PLUGINS",
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
            "PYTHONDONTWRITEBYTECODE",
            "PYTEST_XDIST_AUTO_NUM_WORKERS",
        }
    }


def run_pytest(cwd: Path, args: Sequence[str], cpu: list[float] | None = None) -> float:
    """Wall time of one ``python -m pytest`` run, in seconds; its CPU time (user and
    system, from ``getrusage(RUSAGE_CHILDREN)``) is appended to ``cpu`` when given."""
    argv = [sys.executable, "-m", "pytest", *COMMON, *args]
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=child_env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if cpu is not None:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - used.ru_utime + after.ru_stime - used.ru_stime)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise RuntimeError(f"{' '.join(argv)} (in {cwd}) exited {proc.returncode}:\n{tail}")
    return elapsed


@dataclass(frozen=True)
class Timing:
    plugin: float  # median seconds
    baseline: float
    reps: int
    plugin_runs: tuple[float, ...]
    baseline_runs: tuple[float, ...]

    @property
    def delta(self) -> float:
        return self.plugin - self.baseline

    @property
    def ratio(self) -> float:
        return self.plugin / self.baseline

    @property
    def spread(self) -> float:
        """Half the interquartile range of the paired differences: the noise on ``delta``."""
        diffs = [a - b for a, b in zip(self.plugin_runs, self.baseline_runs, strict=True)]
        if len(diffs) < 2:
            return 0.0
        q1, _, q3 = statistics.quantiles(diffs, n=4)
        return (q3 - q1) / 2

    def delta_text(self) -> str:
        return f"{self.delta * 1000:+.0f} ±{self.spread * 1000:.0f} ms"


def compare(
    reps: int, plugin: Callable[[], float], baseline: Callable[[], float], label: str
) -> Timing:
    """Median of ``reps`` interleaved runs of each variant, after one warm-up of each."""
    progress(f"{label}: warm-up")
    plugin()
    baseline()
    a: list[float] = []
    b: list[float] = []
    for i in range(reps):
        progress(f"{label}: {i + 1}/{reps}")
        if i % 2 == 0:
            a.append(plugin())
            b.append(baseline())
        else:
            b.append(baseline())
            a.append(plugin())
    return Timing(statistics.median(a), statistics.median(b), reps, tuple(a), tuple(b))


def progress(text: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r\x1b[K{text}")
        sys.stderr.flush()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def verdict(met: bool) -> str:
    return "ok" if met else "MISSED"


# ---------------------------------------------------------------------------
# 1. Start-up
# ---------------------------------------------------------------------------


def bench_startup(mode: Mode, work: Path, report: Report) -> None:
    files = 20
    suite = write_suite(work / "startup", files, mode.startup_tests // files, None)
    gpu_root = f"--therock-root={GPU_ROOT}"
    cases = [
        ("default root (/), -q", ["--collect-only", "-q"], []),
        ("default root (/), header shown", ["--collect-only"], []),
        ("GPU root strix-halo, -q", ["--collect-only", "-q"], [gpu_root]),
        ("GPU root strix-halo, header shown", ["--collect-only"], [gpu_root]),
    ]
    for name, args, extra in cases:
        cpu_plugin: list[float] = []
        cpu_baseline: list[float] = []
        t = compare(
            mode.reps,
            partial(run_pytest, suite, [*args, *extra], cpu_plugin),
            partial(run_pytest, suite, [*args, *NO_PLUGIN], cpu_baseline),
            f"start-up {name}",
        )
        # CPU time is what the plugin costs, and a busy machine's waiting is not in it.
        cpu = Timing(
            statistics.median(cpu_plugin[1:]),  # the warm-up run left out, as in `t`
            statistics.median(cpu_baseline[1:]),
            t.reps,
            tuple(cpu_plugin[1:]),
            tuple(cpu_baseline[1:]),
        )
        report.notes.append(
            f"{name}: CPU time (user + system) {ms(cpu.plugin)} against {ms(cpu.baseline)}, "
            f"{cpu.delta_text()}, {(cpu.ratio - 1) * 100:+.1f}%"
        )
        pct = (t.ratio - 1) * 100
        report.rows.append(
            Row(
                "start-up",
                f"collect {mode.startup_tests} tests, {name}",
                ms(t.plugin),
                ms(t.baseline),
                t.delta_text(),
                f"{pct:+.1f}%",
                f"<= {STARTUP_GOAL_PCT:g}%",
                verdict(pct <= STARTUP_GOAL_PCT),
                str(t.reps),
            )
        )
        if not report.startup_overhead:
            report.startup_overhead = max(t.delta, 0.0)
        report.data[f"startup: {name}"] = asdict(t) | {
            "overhead_pct": pct,
            "spread": t.spread,
            "cpu": asdict(cpu) | {"overhead_pct": (cpu.ratio - 1) * 100, "spread": cpu.spread},
        }
        report.baselines[name] = t.baseline


# ---------------------------------------------------------------------------
# 1b. Import cost (python -X importtime)
# ---------------------------------------------------------------------------

IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")
MARK = "--bench-mark--"
PLUGIN_IMPORT = "import pytest_therock.plugin"


def importtime(before: str, measured: str) -> tuple[float, dict[str, tuple[int, int, int]]]:
    """Total µs of ``measured`` after ``before``; per module: (self µs, cumulative µs, depth)."""
    code = f"{before}; import sys; sys.stderr.write({MARK!r} + '\\n'); {measured}"
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        cwd=REPO,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    lines = proc.stderr.split(MARK + "\n", 1)[1].splitlines()
    modules: dict[str, tuple[int, int, int]] = {}
    total = 0
    for line in lines:
        m = IMPORT_LINE.match(line)
        if not m:
            continue
        depth = len(m[3]) // 2
        modules[m[4]] = (int(m[1]), int(m[2]), depth)
        if depth == 0:
            total += int(m[2])
    return total, modules


def third_party(name: str) -> bool:
    top = name.split(".")[0]
    ours = {"pytest_therock", "pytest", "_pytest", "pluggy", "iniconfig"}
    return top not in sys.stdlib_module_names and top not in ours


def median_imports(
    reps: int, before: str, measured: str
) -> tuple[float, dict[str, tuple[float, float]]]:
    runs = [importtime(before, measured) for _ in range(reps)]
    total = statistics.median(r[0] for r in runs)
    names = {n for _, mods in runs for n in mods}
    per: dict[str, tuple[float, float]] = {}
    for n in names:
        selfs = [mods[n][0] for _, mods in runs if n in mods]
        cums = [mods[n][1] for _, mods in runs if n in mods]
        per[n] = (statistics.median(selfs), statistics.median(cums))
    return total, per


def top_level_third_party(modules: dict[str, tuple[float, float]]) -> list[tuple[str, float]]:
    """Third-party packages imported, each with the cumulative time of its outermost import."""
    found: dict[str, float] = {}
    for name, (_, cum) in modules.items():
        if third_party(name):
            top = name.split(".")[0]
            found[top] = max(found.get(top, 0.0), cum)
    return sorted(found.items(), key=lambda kv: -kv[1])


def session_imports(suite: Path, args: Sequence[str]) -> dict[str, int]:
    """Self µs of each module a real ``python -X importtime -m pytest`` run imports."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pytest", *COMMON, *args],
        cwd=suite,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, int] = {}
    for line in proc.stderr.splitlines():
        m = IMPORT_LINE.match(line)
        if m:
            found[m[4]] = int(m[1])
    return found


def bench_imports(mode: Mode, work: Path, report: Report) -> None:
    """The plugin's import cost: its module alone, then the sum of its own self times in
    real sessions (stable where wall-clock ratios are noisy), as % of the baseline run."""
    progress("import times")
    total, per = median_imports(mode.import_reps, "import pytest", PLUGIN_IMPORT)
    ours = sorted(
        ((n, s) for n, (s, _) in per.items() if n.startswith("pytest_therock")),
        key=lambda kv: -kv[1],
    )
    others = ", ".join(f"{n} {c / 1000:.1f}" for n, c in top_level_third_party(per)) or "none"
    report.rows.append(
        Row(
            "imports",
            "import pytest_therock.plugin (after pytest)",
            f"{total / 1000:.1f} ms",
            goal="(in start-up)",
            reps=str(mode.import_reps),
        )
    )
    report.notes.append(
        f"import pytest_therock.plugin: {total / 1000:.1f} ms; ours (self ms): "
        + ", ".join(f"{n.removeprefix('pytest_therock.')} {s / 1000:.1f}" for n, s in ours[:4])
        + f"; third-party (cum ms): {others}"
    )
    suite = work / "startup"
    cases = [
        ("default root (/), header shown", []),
        ("GPU root strix-halo, header shown", [f"--therock-root={GPU_ROOT}"]),
    ]
    for name, extra in cases:
        own: list[int] = []
        added: list[int] = []
        modules: dict[str, int] = {}
        for i in range(mode.import_reps):
            progress(f"import times, {name}: {i + 1}/{mode.import_reps}")
            with_plugin = session_imports(suite, ["--collect-only", *extra])
            without = session_imports(suite, ["--collect-only", *NO_PLUGIN])
            modules = {n: t for n, t in with_plugin.items() if n not in without}
            own.append(sum(t for n, t in with_plugin.items() if n.startswith("pytest_therock")))
            added.append(sum(modules.values()))
        own_ms, added_ms = statistics.median(own) / 1000, statistics.median(added) / 1000
        baseline = report.baselines.get(name)
        pct = own_ms / (baseline * 1000) * 100 if baseline else None
        report.rows.append(
            Row(
                "imports",
                f"collect {mode.startup_tests} tests, {name}: the plugin's own self times",
                f"{own_ms:.1f} ms",
                ms(baseline) if baseline else "",
                "",
                f"{pct:+.1f}%" if pct is not None else "",
                f"<= {STARTUP_GOAL_PCT:g}%",
                verdict(pct <= STARTUP_GOAL_PCT) if pct is not None else "",
                str(mode.import_reps),
            )
        )
        costly = sorted(modules.items(), key=lambda kv: -kv[1])[:6]
        report.notes.append(
            f"{name}: modules only the plugin imports, self ms summed: {added_ms:.1f} "
            "(" + ", ".join(f"{n} {t / 1000:.1f}" for n, t in costly) + ")"
        )
        report.data[f"imports: {name}"] = {
            "own_self_us": own,
            "added_self_us": added,
            "baseline_s": baseline,
            "modules_us": modules,
        }


# ---------------------------------------------------------------------------
# 2. Detection, in-process
# ---------------------------------------------------------------------------


def bench_detect(mode: Mode, report: Report) -> None:
    from pytest_therock.detect import detect
    from pytest_therock.sysroot import Root

    roots = sorted(p for p in ROOTS.iterdir() if p.is_dir())
    roots += sorted(p for p in CAPTURES.iterdir() if p.is_dir())
    for path in roots:
        progress(f"detect {path.name}")
        root = Root(path)
        env = detect(root, {})  # warm-up: lazy imports (psutil, the rocminfo parser)
        timer = timeit.Timer(partial(detect, root, {}))
        number = loops_for(timer, mode.detect_seconds)
        per_call = statistics.median(
            t / number for t in timer.repeat(repeat=mode.detect_repeat, number=number)
        )
        targets = ", ".join(sorted({str(g.gfx_target) for g in env.gpus})) or "no GPU"
        kind = "root" if path.parent == ROOTS else "capture"
        report.rows.append(
            Row(
                "detect",
                f"{kind} {path.name} ({len(env.gpus)} GPU: {targets})",
                f"{per_call * 1000:.2f} ms",
                goal=f"< {DETECT_GOAL_MS:g} ms",
                status=verdict(per_call * 1000 < DETECT_GOAL_MS),
                reps=f"{mode.detect_repeat}x{number}",
            )
        )
        report.data[f"detect: {path.name}"] = {"ms_per_call": per_call * 1000, "loops": number}
    bench_rocminfo(report)


def loops_for(timer: timeit.Timer, seconds: float) -> int:
    """How many calls fill about ``seconds``, so that a repeat is long enough to time."""
    once = timer.timeit(number=1)
    return max(1, min(100_000, int(seconds / max(once, 1e-7))))


def bench_rocminfo(report: Report) -> None:
    from pytest_therock.rocminfo_env import run_rocminfo
    from pytest_therock.sysroot import Root
    from pytest_therock.tools import find_tool

    path = find_tool("rocminfo", os.environ)
    if path is None:
        report.rows.append(Row("detect", "rocminfo (live)", "not installed", status="n/a"))
        report.notes.append("rocminfo: not found in $ROCM_PATH/bin, /opt/rocm/bin or PATH")
        return
    progress("rocminfo")
    times = []
    status = None
    for _ in range(5):
        start = time.perf_counter()
        _, status = run_rocminfo(Root(Path("/")), os.environ, timeout=30)
        times.append(time.perf_counter() - start)
    assert status is not None
    median = statistics.median(times)
    report.rows.append(
        Row(
            "detect",
            f"run_rocminfo (live, {path})",
            f"{median * 1000:.1f} ms",
            relative=f"ok={status.ok} {status.code}",
            goal="(doctor / WSL only)",
            reps="5",
        )
    )
    reason = " ".join(status.message.split())[:160]
    report.notes.append(
        f"rocminfo ({path}): {median * 1000:.1f} ms, status {status.code}: {reason}"
    )
    report.data["rocminfo"] = {"path": path, "ms": median * 1000, "status": status._asdict()}


# ---------------------------------------------------------------------------
# 3. Marker evaluation
# ---------------------------------------------------------------------------


def bench_markers(mode: Mode, work: Path, report: Report) -> None:
    files = 10
    n = mode.marker_tests
    per_file = n // files
    marked = write_suite(work / "marked", files, per_file, "@pytest.mark.requires_gfx1151")
    skipped = write_suite(work / "skipped", files, per_file, '@pytest.mark.skip(reason="x")')
    plain = write_suite(work / "plain", files, per_file, None)
    root = f"--therock-root={SKIP_ROOT}"
    # The plugin's fixed start-up cost (section 1, -q), to show the per-test cost net of it.
    fixed = report.startup_overhead

    def per_test(
        name: str, plugin: Path, baseline: Path, baseline_args: list[str], goal: bool
    ) -> None:
        t = compare(
            mode.marker_reps,
            partial(run_pytest, plugin, ["-q", root]),
            partial(run_pytest, baseline, ["-q", *baseline_args]),
            f"markers: {name}",
        )
        us = t.delta / n * 1e6
        net = (t.delta - fixed) / n * 1e6
        report.rows.append(
            Row(
                "markers",
                name,
                ms(t.plugin),
                ms(t.baseline),
                t.delta_text(),
                f"{us:+.1f} us/test ({net:+.1f} net)",
                f"< {MARKER_GOAL_US:g} us/test" if goal else "",
                verdict(us < MARKER_GOAL_US) if goal else "",
                str(t.reps),
            )
        )
        report.data[f"markers: {name}"] = asdict(t) | {
            "us_per_test": us,
            "us_per_test_net_of_startup": net,
            "spread": t.spread,
        }

    per_test(
        f"{n} x requires_gfx1151 (skipped on mi210-8x) vs {n} x skip, no plugin",
        marked,
        skipped,
        NO_PLUGIN,
        goal=True,
    )
    per_test(
        f"{n} unmarked passing tests, plugin vs no plugin", plain, plain, NO_PLUGIN, goal=False
    )


# ---------------------------------------------------------------------------
# 4. xdist
# ---------------------------------------------------------------------------


def bench_xdist(mode: Mode, work: Path, report: Report) -> None:
    files = 20
    suite = write_suite(work / "xdist", files, mode.xdist_tests // files, None)
    t = compare(
        mode.reps,
        partial(run_pytest, suite, ["-q", "-n", "4"]),
        partial(run_pytest, suite, ["-q", "-n", "4", *NO_PLUGIN]),
        "xdist",
    )
    share = t.delta / t.baseline * 100
    report.rows.append(
        Row(
            "xdist",
            f"-n 4, {mode.xdist_tests} passing tests (detection runs in the controller)",
            ms(t.plugin),
            ms(t.baseline),
            t.delta_text(),
            f"{share:+.1f}% of wall",
            reps=str(t.reps),
        )
    )
    report.data["xdist"] = asdict(t) | {"share_pct": share, "spread": t.spread}


# ---------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------

COLUMNS = ("name", "plugin", "baseline", "delta", "relative", "goal", "status", "reps")


def print_table(report: Report) -> None:
    width = {c: max(len(c), *(len(getattr(r, c)) for r in report.rows)) for c in COLUMNS}
    line = "  ".join(c.ljust(width[c]) for c in COLUMNS)
    print(line)
    print("-" * len(line))
    section = None
    for row in report.rows:
        if row.section != section:
            section = row.section
            print(f"[{section}]")
        print("  ".join(getattr(row, c).ljust(width[c]) for c in COLUMNS).rstrip())
    print()
    for note in report.notes:
        print(f"* {note}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller suites")
    parser.add_argument("--json", metavar="FILE", type=Path, help="also write the results here")
    parser.add_argument(
        "--only",
        action="append",
        choices=("startup", "detect", "markers", "xdist"),
        help="run only these sections (repeatable; 'startup' includes the import rows)",
    )
    args = parser.parse_args(argv)
    only = set(args.only or ("startup", "detect", "markers", "xdist"))
    mode = QUICK if args.quick else FULL
    report = Report()
    report.data["mode"] = asdict(mode) | {"quick": args.quick}
    report.data["python"] = sys.version.split()[0]
    report.data["cpus"] = os.cpu_count()
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="therock-bench-"))
    try:
        if "startup" in only:
            bench_startup(mode, work, report)
            bench_imports(mode, work, report)
        if "detect" in only:
            bench_detect(mode, report)
        if "markers" in only:
            bench_markers(mode, work, report)
        if "xdist" in only:
            bench_xdist(mode, work, report)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    progress("")
    elapsed = time.perf_counter() - started
    report.data["elapsed_s"] = elapsed
    print(
        f"pytest-therock benchmark ({'quick' if args.quick else 'full'} mode, "
        f"{os.cpu_count()} CPUs, Python {report.data['python']}, {elapsed:.0f} s)\n"
    )
    print_table(report)
    if args.json:
        payload = report.data | {"rows": [asdict(r) for r in report.rows], "notes": report.notes}
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
