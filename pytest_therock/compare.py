"""Compare machines: ``pytest-therock diff A B`` and ``pytest-therock fleet PATH...``.

A machine is this one (``/``), a snapshot directory, or a snapshot ``.tar.gz``.
Each is reduced to *facts*: one line per thing that matters on a ROCm runner
(GPUs, memory, kernel parameters, versions, ``/dev/kfd``, rocminfo, diagnostics,
kernel-log events). A fact derived from another (usable GTT from the GTT size and
its limit) is not a fact of its own, so one changed setting is one changed line.

Exit status of ``diff``: 0 when the machines match, 1 when they differ, 2 on usage
errors (a path that is not a machine, a corrupt archive). ``fleet``: 0, or 2 when
a path could not be read (the others are still shown).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import stat
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .environment import Environment, Gpu, fmt_bytes
from .printable import printable
from .snapshot import archive_stem, looks_like_machine
from .sysroot import root_problem

if TYPE_CHECKING:
    from .diagnostics import Diagnostic
    from .versions import Versions


class MachineError(ValueError):
    """A path that is not a machine to compare; the message is one line."""


@dataclass(frozen=True)
class MemoryFigures:
    """One GPU's memory as diff and fleet show it; bytes, None where unknown."""

    vram_bytes: int | None  # on an APU, the BIOS carve-out
    gtt_bytes: int | None  # the driver's GTT size (mem_info_gtt_total)
    gtt_derived: bool  # not measured: the size the driver takes from TTM's limit
    gtt_limit_bytes: int | None  # where TTM stops allocations
    gtt_limit_source: str  # "ttm.pages_limit", "default: 50% of RAM", ...
    usable_gtt_bytes: int | None  # what a process can allocate


def memory_figures(env: Environment, gpu: Gpu) -> MemoryFigures:
    """The one place diff and fleet take memory numbers from: the memory model
    (:func:`pytest_therock.memory.gpu_memory`)."""
    from .memory import gpu_memory

    info = gpu_memory(env, gpu)
    return MemoryFigures(
        vram_bytes=info.vram_total_bytes,
        gtt_bytes=info.total_bytes,
        gtt_derived=info.gtt_source.startswith("="),
        gtt_limit_bytes=info.limit_bytes,
        gtt_limit_source=info.limit_source,
        usable_gtt_bytes=info.usable_bytes,
    )


@dataclass(frozen=True)
class Machine:
    name: str
    env: Environment
    diagnostics: tuple[Diagnostic, ...]
    versions: Versions


@contextlib.contextmanager
def opened(path: str) -> Iterator[Path]:
    """The root directory of a machine: ``/``, a snapshot directory, or an extracted
    ``.tar.gz`` (removed afterwards). Raises :class:`MachineError`."""
    from .snapshot import SnapshotError, machine_problem, opened, unfinished
    from .sysroot import not_a_machine

    stale = unfinished(path)
    if stale is not None:
        raise MachineError(stale)
    problem = machine_problem(path)  # as doctor says it
    if problem is not None:
        raise MachineError(f"{path}: {problem}")
    try:
        with opened(path) as (root, _skipped):  # links, devices: never extracted
            problem = not_a_machine(str(root))  # what an archive held
            if problem is not None:
                raise MachineError(f"{path}: {problem}")
            yield root
    except SnapshotError as exc:
        raise MachineError(f"{path}: {exc}") from None


def load(path: str, name: str, timeout: float = 30.0) -> Machine:
    """Detect one machine. A snapshot is read as recorded (no variable of this shell
    applies to it); ``/`` is this machine, whose tools run with ``timeout``."""
    from .detect import detect
    from .diagnostics import run_checks
    from .sysroot import Root
    from .versions import detect_versions

    with opened(path) as directory:
        root = Root(directory)
        environ = os.environ if root.is_live else {}
        env = detect(root, environ, run_tools=root.is_live, timeout=timeout)
        versions = env.versions or detect_versions(root, environ)
    return Machine(name, env, tuple(run_checks(env)), versions)


# --- facts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    group: str
    item: str
    value: str  # what is compared
    shown: str  # what is printed (a diagnostic compares by presence, shows its message)


def _counted(values: Sequence[str]) -> str:
    counts = Counter(values)
    return "; ".join(f"{v} x{n}" if n > 1 else v for v, n in counts.items())


def _gpu_text(gpu: Gpu) -> str:
    cu = f"{gpu.compute_units} CU" if gpu.compute_units else "CU unknown"
    kind = "APU" if gpu.is_apu else "discrete"
    return f"{gpu.label}, {cu}, {kind}, device 0x{gpu.device_id:04x}"


def _kfd_access(env: Environment) -> str:
    from .absence import unknown_kfd, unknown_line

    kfd = env.kfd
    if not kfd.known:  # as the header says it: never "missing"
        why = unknown_kfd(env)
        return unknown_line(why) if why else "unknown"
    if not kfd.present:
        return "missing"
    return "".join(m for m, ok in (("r", kfd.readable), ("w", kfd.writable)) if ok) or "none"


def facts(machine: Machine) -> list[Fact]:
    """What matters about a machine, one fact a line, in display order."""
    env, versions = machine.env, machine.versions
    gpus = env.visible_gpus
    found: list[Fact] = []

    def add(group: str, item: str, value: str | None, shown: str | None = None) -> None:
        text = value if value is not None else "unknown"
        found.append(Fact(group, item, text, shown if shown is not None else text))

    from .absence import unknown_gpus, unknown_line

    unread = unknown_gpus(env)  # as the header says it: never "none"
    none = unknown_line(unread) if unread else "none"
    add("GPUs", "GPUs", _counted([_gpu_text(g) for g in gpus]) or none)
    if len(gpus) < len(env.gpus):
        add("GPUs", "hidden", f"{len(env.gpus) - len(gpus)} by the visibility variables")
    figures = [memory_figures(env, g) for g in gpus]
    limit_param = env.param(f"{env.ttm_module}.pages_limit")
    if figures:
        add("memory", "VRAM / carve-out", _counted([fmt_bytes(f.vram_bytes) for f in figures]))
        # A size the driver takes from TTM's limit compares as that rule, not as a number:
        # it differs only where the limit does, and the limit has its own line.
        sizes = [fmt_bytes(f.gtt_bytes) for f in figures]
        derived = [f.gtt_derived for f in figures]
        rules = ["= GTT limit" if d else size for d, size in zip(derived, sizes, strict=True)]
        shown = [f"{s} (= GTT limit)" if d else s for d, s in zip(derived, sizes, strict=True)]
        add("memory", "GTT (driver)", _counted(rules), _counted(shown))
        first = figures[0]
        source = first.gtt_limit_source
        if limit_param is not None:  # the setting itself, and the rule it was read by
            setting = f"{limit_param.name}={limit_param.value}"
            source = setting if source == limit_param.name else f"{setting}, {source}"
        add("memory", "GTT limit", f"{fmt_bytes(first.gtt_limit_bytes)} ({source})")
    add("memory", "RAM", fmt_bytes(env.system_memory_bytes))
    for p in env.kernel_params:
        if figures and p == limit_param:
            continue  # shown as the GTT limit
        add("kernel parameters", f"{p.name} ({p.origin})", p.value)
    add("versions", "kernel", versions.kernel)
    add("versions", "amdgpu", versions.amdgpu or "in-tree")
    add("versions", "ROCm", versions.rocm or "none found")
    for name, version in sorted(versions.therock.items()):
        add("versions", name, version)
    if versions.torch:
        add("versions", "torch", versions.torch)
    if env.smi is not None and env.smi.status.ok:
        add("versions", env.smi.tool, env.smi.tool_version)
    add("access", "/dev/kfd", _kfd_access(env))
    if env.wsl:
        add("access", "WSL", "/dev/dxg")
    if env.rocminfo is not None:
        add("runtime", "rocminfo", env.rocminfo.code)  # its message: the diagnostics
    for diag in machine.diagnostics:
        add("diagnostics", diag.code, diag.severity, f"{diag.severity}: {diag.message}")
    if env.kernel_log is not None:
        for event in env.kernel_log.events:
            add("kernel log", event.kind, str(event.count), f"{event.count}: {event.last_line}")
    return found


#: The groups of facts, in display order.
GROUPS = (
    "GPUs",
    "memory",
    "kernel parameters",
    "versions",
    "access",
    "runtime",
    "diagnostics",
    "kernel log",
)
#: Items every machine may have, in display order (the others follow in the order found).
FIXED_ITEMS = ("GPUs", "hidden", "VRAM / carve-out", "GTT (driver)", "GTT limit", "RAM")


@dataclass(frozen=True)
class Difference:
    group: str
    item: str
    a: str | None  # None: absent on that machine
    b: str | None


def differences(a: Machine, b: Machine) -> list[Difference]:
    """Facts that differ, grouped in display order; a fact on one machine only counts."""
    fa = {(f.group, f.item): f for f in facts(a)}
    fb = {(f.group, f.item): f for f in facts(b)}
    order = list(dict.fromkeys([*fa, *fb]))

    def rank(key: tuple[str, str]) -> tuple[int, int, int]:
        fixed = FIXED_ITEMS.index(key[1]) if key[1] in FIXED_ITEMS else len(FIXED_ITEMS)
        return GROUPS.index(key[0]), fixed, order.index(key)

    found = []
    for group, item in sorted(order, key=rank):
        x, y = fa.get((group, item)), fb.get((group, item))
        if x is None or y is None or x.value != y.value:
            found.append(Difference(group, item, x.shown if x else None, y.shown if y else None))
    return found


def diff_lines(a: Machine, b: Machine, found: list[Difference]) -> list[str]:
    lines = [f"A: {printable(a.name)}", f"B: {printable(b.name)}"]
    if not found:
        return [*lines, "A and B match in everything compared"]
    group = None
    for d in found:
        if d.group != group:
            group = d.group
            lines.append(group)
        shown = [printable(v) if v is not None else "(absent)" for v in (d.a, d.b)]
        lines.append(f"  {printable(d.item)}: {shown[0]}  vs  {shown[1]}")
    lines.append(f"{len(found)} difference(s)")
    return lines


# --- fleet -------------------------------------------------------------------------------------

COLUMNS = ("target", "CU", "VRAM / carve-out", "usable GTT", "kernel", "ROCm", "worst diagnostic")


def fleet_row(machine: Machine) -> dict[str, str]:
    """One machine as a fleet row: display text for each of :data:`COLUMNS`."""
    from .absence import unknown_gpus

    env, versions = machine.env, machine.versions
    gpus = env.visible_gpus
    figures = [memory_figures(env, g) for g in gpus]
    worst = machine.diagnostics[0] if machine.diagnostics else None
    return {
        "target": _counted([g.gfx_target or "unknown" for g in gpus])
        or ("unknown" if unknown_gpus(env) else "none"),
        "CU": "/".join(dict.fromkeys(str(g.compute_units or "?") for g in gpus)) or "-",
        "VRAM / carve-out": "/".join(dict.fromkeys(fmt_bytes(f.vram_bytes) for f in figures))
        or "-",
        "usable GTT": "/".join(dict.fromkeys(fmt_bytes(f.usable_gtt_bytes) for f in figures))
        or "-",
        "kernel": versions.kernel or "unknown",
        "ROCm": versions.rocm or "none found",
        "worst diagnostic": f"{worst.severity}[{worst.code}]" if worst else "none",
    }


def outliers(rows: Sequence[dict[str, str]]) -> list[list[str]]:
    """For each row, the columns whose value differs from the majority's.

    A column where no value is held by more than half of the machines has no
    majority, so nothing in it is marked.
    """
    marked: list[list[str]] = [[] for _ in rows]
    for column in COLUMNS:
        counts = Counter(row[column] for row in rows)
        if len(counts) < 2:
            continue
        value, n = counts.most_common(1)[0]
        if n * 2 <= len(rows):
            continue
        for marks, row in zip(marked, rows, strict=True):
            if row[column] != value:
                marks.append(column)
    return marked


def discover(
    paths: Sequence[str], depth: int = 3, unfinished: list[str] | None = None
) -> list[tuple[str, str]]:
    """``(name, path)`` of each machine: a snapshot (directory or archive) is one; a
    directory of them is searched ``depth`` levels down. A machine is named after
    its path (``runner-3.tar.gz`` is ``runner-3``; in a directory, the path below it).
    Hidden entries are skipped; a snapshot's unfinished ``.NAME.*.partial`` among
    them is added to ``unfinished``, to be said."""
    from .snapshot import unfinished as stale

    found: list[tuple[str, str]] = []

    def stem(text: str) -> str:
        return archive_stem(text) or text

    def walk(directory: Path, top: Path, level: int) -> None:
        try:
            entries = sorted(directory.iterdir())
        except OSError:
            found.append((str(directory.relative_to(top)), str(directory)))  # load says why
            return
        for entry in entries:
            if entry.name.startswith("."):  # hidden, and a snapshot's .NAME.*.partial
                if unfinished is not None and stale(str(entry)) is not None:
                    unfinished.append(str(entry))
                continue
            name = str(entry.relative_to(top))
            try:
                mode = entry.lstat().st_mode
            except OSError:
                found.append((name, str(entry)))  # load says why
                continue
            if stat.S_ISLNK(mode):
                continue
            if not stat.S_ISDIR(mode):
                if archive_stem(entry.name) is not None:  # a FIFO too: load says it is not one
                    found.append((stem(name), str(entry)))
            elif root_problem(str(entry)) is not None or looks_like_machine(entry):
                found.append((name, str(entry)))  # unreadable: load says why
            elif level < depth:
                walk(entry, top, level + 1)

    for path in paths:
        p = Path(path)
        if stale(path) is not None:  # named, never walked into: load says what it is
            found.append((p.name, path))
        elif root_problem(path) is None and not looks_like_machine(p):
            walk(p, p, 1)
        else:
            found.append((stem(p.name) or str(p), path))
    names = Counter(name for name, _ in found)
    return [(name if names[name] == 1 else f"{name} ({path})", path) for name, path in found]


def fleet_table(names: Sequence[str], rows: Sequence[dict[str, str]]) -> list[str]:
    marked = outliers(rows)
    header = ["machine", *COLUMNS]
    cells = [
        [printable(name)] + [printable(row[c]) + (" *" if c in marks else "") for c in COLUMNS]
        for name, row, marks in zip(names, rows, marked, strict=True)
    ]
    widths = [max(len(r[i]) for r in [header, *cells]) for i in range(len(header))]
    lines = [
        "  ".join(text.ljust(w) for text, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *cells]
    ]
    if any(marked):
        lines.append("* differs from most machines")
    return lines


# --- commands ----------------------------------------------------------------------------------


def add_commands(sub: Any) -> None:
    """The ``diff`` and ``fleet`` subcommands of ``pytest-therock``."""
    from .cli import seconds  # the one check of --timeout, as in doctor

    diff = sub.add_parser(
        "diff",
        help="compare two machines (this one, snapshots): what differs that matters",
        description="Compare two machines, each `/` (this one), a snapshot directory or a "
        ".tar.gz: one line per difference, grouped. Exit status 0 when they match, "
        "1 when they differ, 2 on usage errors.",
    )
    diff.add_argument("a", help="the first machine: /, a snapshot directory or .tar.gz")
    diff.add_argument("b", help="the second machine")
    diff.add_argument("--json", action="store_true", help="print the differences as JSON")
    diff.add_argument(
        "--timeout", type=seconds, default=30.0, metavar="SECONDS", help="tool timeout (default 30)"
    )
    diff.set_defaults(handler=diff_command)
    fleet = sub.add_parser(
        "fleet",
        help="one row per machine from many snapshots, marking where one differs",
        description="Read snapshots (directories, .tar.gz, or directories holding them) "
        "and print one row per machine, marking values that differ from most machines.",
    )
    fleet.add_argument("paths", nargs="+", metavar="PATH", help="snapshots or directories")
    output = fleet.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the rows as JSON")
    output.add_argument("--csv", action="store_true", help="print the rows as CSV")
    fleet.add_argument(
        "--timeout", type=seconds, default=30.0, metavar="SECONDS", help="tool timeout (default 30)"
    )
    fleet.set_defaults(handler=fleet_command)


def _error(message: str) -> None:
    print(f"pytest-therock: {printable(message)}", file=sys.stderr)


def diff_command(args: argparse.Namespace) -> int:
    try:
        a = load(args.a, args.a, args.timeout)
        b = load(args.b, args.b, args.timeout)
    except MachineError as exc:
        _error(str(exc))
        return 2
    found = differences(a, b)
    if args.json:
        data = {
            "a": a.name,
            "b": b.name,
            "match": not found,
            "differences": [d.__dict__ for d in found],
        }
        print(json.dumps(data, indent=2))
    else:
        print("\n".join(diff_lines(a, b, found)))
    return 1 if found else 0


def fleet_command(args: argparse.Namespace) -> int:
    from .snapshot import unfinished

    machines: list[Machine] = []
    status = 0
    skipped: list[str] = []
    found = discover(args.paths, unfinished=skipped)
    for path in skipped:  # said, not removed: it may be a snapshot being written now
        _error(unfinished(path) or path)
    for name, path in found:
        try:
            machines.append(load(path, name, args.timeout))
        except MachineError as exc:
            _error(str(exc))
            status = 2
    if not machines:
        if not status:  # else each path already said what was wrong with it
            _error("no snapshot found in " + ", ".join(args.paths))
        return 2
    rows = [fleet_row(m) for m in machines]
    marked = outliers(rows)
    if args.json:
        data = [
            {"machine": m.name, **row, "differs": marks}
            for m, row, marks in zip(machines, rows, marked, strict=True)
        ]
        print(json.dumps(data, indent=2))
    elif args.csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["machine", *COLUMNS, "differs"])
        for m, row, marks in zip(machines, rows, marked, strict=True):
            values = [printable(m.name), *(printable(row[c]) for c in COLUMNS)]
            writer.writerow([*values, " ".join(marks)])
        print(out.getvalue(), end="")
    else:
        print("\n".join(fleet_table([m.name for m in machines], rows)))
    return status
