"""``pytest-therock``: the plugin's report without running pytest.

Exit status: 0 when an AMD GPU is usable, 1 when not, 2 on usage errors.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not `typing`: imports wait until main() guards them
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from signal import Signals
    from typing import Any

    from .diagnostics import Diagnostic
    from .environment import Environment


def seconds(text: str) -> float:
    """``--timeout``: checked as ``--therock-timeout`` is (argparse names the option)."""
    import argparse

    from .parsing import TIMEOUT, NumberError, parse_number

    try:
        return parse_number(text, "--timeout", TIMEOUT)
    except NumberError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--timeout: ")) from None


def _parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="pytest-therock",
        description="Report the ROCm / TheRock environment the way the pytest plugin sees it.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    doctor = sub.add_parser("doctor", help="print the environment and its diagnostics")
    doctor.add_argument(
        "--root",
        default="",
        metavar="DIR",
        help="filesystem root to read: a snapshot directory or .tar.gz "
        "(default: $PYTEST_THEROCK_ROOT or /; empty means the default, as in pytest)",
    )
    doctor.add_argument("--json", action="store_true", help="print the environment as JSON")
    doctor.add_argument("--explain", metavar="CODE", help="explain one diagnostic code and exit")
    doctor.add_argument(
        "--ignore", action="append", default=[], metavar="CODE", help="silence a code"
    )
    doctor.add_argument(
        "--need",
        type=_gib,
        metavar="GIB",
        help="GiB (2**30 bytes) of GPU memory you need: print the one change that reaches it",
    )
    doctor.add_argument("-v", "--verbose", action="count", default=0, help="show details")
    doctor.add_argument(
        "--timeout",
        type=seconds,
        default=30.0,
        metavar="SECONDS",
        help="tool timeout (default 30)",
    )
    snap = sub.add_parser(
        "snapshot",
        help="record what the plugin reads on this machine, to replay with --root",
        description="Record the sysfs/procfs files the plugin reads and the outputs of "
        "rocminfo, amd-smi, rocm-smi and dmesg into PATH (a directory, or a .tar.gz). "
        "Replay it with `pytest-therock doctor --root PATH` or `pytest --therock-root=PATH`.",
    )
    snap.add_argument("path", help="directory or .tar.gz to create")
    snap.add_argument(
        "--timeout",
        type=seconds,
        default=30.0,
        metavar="SECONDS",
        help="tool timeout (default 30)",
    )
    from .compare import add_commands

    add_commands(sub)  # diff, fleet
    return parser


def _gib(text: str) -> int:
    """``--need 96`` (GiB) as bytes, checked as a ``requires_gpu_memory_gb`` size is."""
    import argparse
    import math

    from .parsing import GIB_SIZE, NumberError, parse_number

    try:
        return math.ceil(parse_number(text, "--need", GIB_SIZE) * (1 << 30))
    except NumberError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--need: ")) from None


def environment_json(
    root: str,
    ignore: frozenset[str] = frozenset(),
    timeout: float = 30.0,
    need: int | None = None,
    shown: str | None = None,
) -> dict[str, object]:
    """The doctor's JSON: the environment, each GPU's memory model, the plan, the diagnostics."""

    from .environment import to_dict
    from .memory import gpu_memory, machine_plan

    env = _detect(root, timeout, shown)
    data: dict[str, object] = to_dict(env)
    position = {id(g): i for i, g in enumerate(env.gpus)}  # not .index(): quadratic
    data["visible_gpus"] = [position[id(g)] for g in env.visible_gpus]
    data["memory"] = [
        {
            **to_dict(m),
            "usable_bytes": m.usable_bytes,
            "free_bytes": m.free_bytes,
            "exceeds_vram": m.exceeds_vram,
            "is_default": m.is_default,
            "kfd_conflict": m.kfd_conflict,
        }
        for m in (gpu_memory(env, g) for g in env.gpus)
    ]
    plan = machine_plan(env, need)
    data["plan"] = {**to_dict(plan), "change": plan.change} if plan is not None else None
    data["diagnostics"] = [to_dict(d) for d in _diagnose(env, ignore, need)]
    data["usable"] = env.usable
    # What could not be read, as the text report says it (absence.py): null when known.
    from .absence import (
        could_not_read,
        found_nothing,
        no_amd_gpu,
        unknown_gpus,
        unknown_kfd,
        unknown_rocm,
    )

    unknown = {"gpus": unknown_gpus(env), "kfd": unknown_kfd(env), "rocm": unknown_rocm(env)}
    data["unknown"] = {k: could_not_read(p) if p else None for k, p in unknown.items()}
    data["no_amd_gpu"] = no_amd_gpu(env)
    # A tool's failure on a machine without an AMD GPU, as the text says it: what it
    # found, without the advice to load a driver (absence.found_nothing).
    rocminfo, smi = data["rocminfo"], data["smi"]
    if env.rocminfo is not None and isinstance(rocminfo, dict):
        rocminfo["message"] = found_nothing(env, "rocminfo", env.rocminfo) or rocminfo["message"]
    if env.smi is not None and isinstance(smi, dict):
        status = smi["status"]
        status["message"] = found_nothing(env, env.smi.tool, env.smi.status) or status["message"]
    return data


def _detect(root: str, timeout: float, shown: str | None = None) -> Environment:
    """The machine at ``root``, named ``shown`` (a snapshot archive's path, not the
    temporary directory it was extracted into)."""
    from pathlib import Path

    from .detect import detect
    from .sysroot import Root

    env = detect(Root(Path(root)), run_tools=True, timeout=timeout)
    return env._replace(root=shown) if shown else env


def _diagnose(env: Environment, ignore: frozenset[str], need: int | None) -> list[Diagnostic]:
    """The checks, and for ``--need`` how far the machine is from it; most severe first."""
    from .diagnostics import SEVERITIES, memory_below_need, run_checks

    found = run_checks(env, ignore, need)
    below = memory_below_need(env, need) if need else None
    if below is not None and below.code not in ignore:
        found.append(below)
    return sorted(found, key=lambda d: SEVERITIES.index(d.severity))


def doctor(args: argparse.Namespace) -> int:
    import json
    import os

    from .diagnostics import CHECKS, check_codes
    from .report import summary_lines

    # Empty is unset, as in pytest: --root, then $PYTEST_THEROCK_ROOT, then /.
    args.root = args.root or os.environ.get("PYTEST_THEROCK_ROOT") or "/"
    args.shown_root = getattr(args, "shown_root", None) or args.root  # an archive's name
    try:
        check_codes(args.ignore, "--ignore")
    except ValueError as exc:
        _error(str(exc))
        return 2

    if args.explain:
        check = CHECKS.get(args.explain)
        if check is None:
            _error(f"unknown code {args.explain!r}; codes: {', '.join(CHECKS)}")
            return 2
        print(f"{check.code} ({check.severity})")
        if check.faq:
            print(f"FAQ: {check.faq}")
        print(f"\n{check.explanation}")
        return 0
    from .snapshot import is_archive

    if is_archive(args.root):  # a snapshot attached to a bug report
        from .snapshot import SnapshotError, opened

        try:
            with opened(args.root) as (tmp, skipped):
                if skipped:
                    _error(
                        f"--root {args.root}: skipped {skipped} member(s) that "
                        "are not plain files or directories (links, devices, FIFOs)"
                    )
                args.shown_root, args.root = args.root, str(tmp)
                return doctor(args)
        except SnapshotError as exc:
            _error(f"--root {args.root}: {exc}")
            return 2
    from .snapshot import machine_problem

    problem = machine_problem(args.root)  # in diff's and fleet's words
    if problem is not None:
        _error(f"--root {args.shown_root}: {problem}")
        return 2
    ignore = frozenset(args.ignore)
    if args.json:
        data = environment_json(args.root, ignore, args.timeout, args.need, args.shown_root)
        from .printable import printable_tree

        print(json.dumps(printable_tree(data), indent=2, sort_keys=True))
        return 0 if data["usable"] else 1
    env = _detect(args.root, args.timeout, args.shown_root)
    diagnostics = _diagnose(env, ignore, args.need)
    for line in summary_lines(env, diagnostics, verbose=1 + args.verbose):
        print(line)
    if args.need:
        from .memory import machine_plan

        plan = machine_plan(env, args.need)
        print(plan.line() if plan is not None else "plan: no visible AMD GPU")
    return 0 if env.usable else 1


def _error(message: str) -> None:
    """One line on stderr; paths the user typed may hold control characters."""
    from .printable import printable

    print(f"pytest-therock: {printable(message)}", file=sys.stderr)


def snapshot(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from .printable import printable
    from .snapshot import SnapshotError, take
    from .sysroot import os_reason

    path = Path(args.path)
    if not args.path or path.name in ("", ".."):  # '' is '.': it would write into '.'
        _error(f"snapshot {args.path!r}: name a new directory or .tar.gz to create")
        return 2
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = take(path, os.environ, args.timeout)
    except SnapshotError as exc:
        _error(str(exc))
        return 2
    except OSError as exc:
        _error(f"cannot write {path}: {os_reason(exc)}")
        return 2
    print(f"pytest-therock: recorded {len(written)} files into {printable(str(path))}")
    import glob

    from .snapshot import unfinished

    # A snapshot killed outright (SIGKILL, power loss) leaves its temporary sibling;
    # not knowing whether another snapshot is writing it now, say so, do not remove it.
    for stale in sorted(
        glob.glob(f"{glob.escape(str(path.parent))}/.{glob.escape(path.name)}.*.partial")
    ):
        _error(unfinished(stale) or stale)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; Ctrl-C, SIGTERM and SIGHUP (the terminal or ssh session closed)
    stop it with one line (exit 130, 143, 129) after killing any tool it runs and
    removing its temporary files. Everything, imports included, runs inside that
    guard (the module itself imports only ``sys``), so Ctrl-C at once is one line too,
    not a traceback."""
    try:
        import signal

        from .sysroot import Terminated

        ending = _sigterm_raises(Terminated)
        try:
            args = _parser().parse_args(argv)
            if hasattr(args, "handler"):  # diff, fleet (pytest_therock/compare.py)
                return int(args.handler(args))
            return doctor(args) if args.command == "doctor" else snapshot(args)
        finally:
            for sig, handler in ending.items():
                signal.signal(sig, handler)
    except BrokenPipeError:  # `pytest-therock doctor | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("pytest-therock: interrupted", file=sys.stderr)
        return 130
    except BaseException as exc:
        if interrupted(exc):
            print("pytest-therock: interrupted", file=sys.stderr)
            return 130
        terminated = getattr(sys.modules.get(f"{__package__}.sysroot"), "Terminated", ())
        if not isinstance(exc, terminated):
            raise
        import signal

        signum = exc.args[0] if exc.args else signal.SIGTERM
        said = "hung up" if signum == signal.SIGHUP else "terminated"
        print(f"pytest-therock: {said}", file=sys.stderr)
        return 128 + int(signum)


def interrupted(exc: BaseException | None) -> bool:
    """Whether ``exc`` is Ctrl-C's KeyboardInterrupt, or was caused by it: Python 3.11
    wraps one raised in a ``__set_name__`` (while a module being imported creates a
    class) in a RuntimeError."""
    for _ in range(32):
        if exc is None:
            return False
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _sigterm_raises(exception: type[BaseException]) -> dict[Signals, Any]:
    """Make SIGTERM, and SIGHUP (whose default action would kill the command with its
    tool and temporary files left behind), raise ``exception(signum)`` in the main
    thread, so cleanup runs as for Ctrl-C; the handlers replaced, to restore."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}

    def terminate(signum: int, frame: object) -> None:
        raise exception(signum)

    return {sig: signal.signal(sig, terminate) for sig in (signal.SIGTERM, signal.SIGHUP)}


if __name__ == "__main__":
    sys.exit(main())
