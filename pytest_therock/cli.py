"""``pytest-therock``: the plugin's report without running pytest.

Exit status: 0 when an AMD GPU is usable, 1 when not, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pytest-therock",
        description="Report the ROCm / TheRock environment the way the pytest plugin sees it.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    doctor = sub.add_parser("doctor", help="print the environment and its diagnostics")
    doctor.add_argument(
        "--root",
        default=os.environ.get("PYTEST_THEROCK_ROOT", "/"),
        metavar="DIR",
        help="filesystem root to read: a snapshot directory or .tar.gz "
        "(default: $PYTEST_THEROCK_ROOT or /)",
    )
    doctor.add_argument("--json", action="store_true", help="print the environment as JSON")
    doctor.add_argument("--explain", metavar="CODE", help="explain one diagnostic code and exit")
    doctor.add_argument(
        "--ignore", action="append", default=[], metavar="CODE", help="silence a code"
    )
    doctor.add_argument("-v", "--verbose", action="count", default=0, help="show details")
    doctor.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="tool timeout (default 30)"
    )
    snap = sub.add_parser(
        "snapshot",
        help="record what the plugin reads on this machine, to replay with --root",
        description="Record the sysfs/procfs files the plugin reads and the outputs of "
        "rocminfo, amd-smi, rocm-smi and dmesg into PATH (a directory, or a .tar.gz). "
        "Replay it with `pytest-therock doctor --root PATH` or `pytest --therock-root=PATH`.",
    )
    snap.add_argument("path", type=Path, help="directory or .tar.gz to create")
    snap.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="tool timeout (default 30)"
    )
    return parser


def environment_json(
    root: str, ignore: frozenset[str] = frozenset(), timeout: float = 30.0
) -> dict[str, object]:
    """The doctor's JSON: the environment, each GPU's GTT, and the diagnostics."""
    from .detect import detect
    from .diagnostics import run_checks
    from .environment import to_dict
    from .gtt import gtt_info
    from .sysroot import Root

    env = detect(Root(Path(root)), run_tools=True, timeout=timeout)
    data: dict[str, object] = to_dict(env)
    position = {id(g): i for i, g in enumerate(env.gpus)}  # not .index(): quadratic
    data["visible_gpus"] = [position[id(g)] for g in env.visible_gpus]
    data["gtt"] = [
        {**to_dict(info), "usable_bytes": info.usable_bytes, "is_default": info.is_default}
        for info in (gtt_info(env, g) for g in env.gpus)
    ]
    data["diagnostics"] = [to_dict(d) for d in run_checks(env, ignore)]
    data["usable"] = env.usable
    return data


def _root_problem(root: str) -> str | None:
    """Why ``root`` cannot be read as a machine's root, in a few words, or None."""
    from .sysroot import os_reason

    try:
        st = os.stat(root)
    except OSError as exc:
        return os_reason(exc)
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if not os.access(root, os.R_OK | os.X_OK):
        return "permission denied (cannot list or enter it)"
    return None


def _is_archive(root: str) -> bool:
    from .snapshot import ARCHIVE_SUFFIXES

    try:
        return root.endswith(ARCHIVE_SUFFIXES) and stat.S_ISREG(os.stat(root).st_mode)
    except OSError:
        return False


def doctor(args: argparse.Namespace) -> int:
    from .detect import detect
    from .diagnostics import CHECKS, run_checks
    from .report import summary_lines
    from .sysroot import Root

    if args.explain:
        check = CHECKS.get(args.explain)
        if check is None:
            print(
                f"pytest-therock: unknown code {args.explain!r}; codes: {', '.join(CHECKS)}",
                file=sys.stderr,
            )
            return 2
        print(f"{check.code} ({check.severity})")
        if check.faq:
            print(f"FAQ: {check.faq}")
        print(f"\n{check.explanation}")
        return 0
    if _is_archive(args.root):  # a snapshot attached to a bug report
        from .snapshot import SnapshotError, extract, temporary_directory

        with temporary_directory("pytest-therock-") as tmp:
            try:
                skipped = extract(Path(args.root), tmp)
            except SnapshotError as exc:
                print(f"pytest-therock: --root {args.root}: {exc}", file=sys.stderr)
                return 2
            if skipped:
                print(
                    f"pytest-therock: --root {args.root}: skipped {skipped} member(s) that are "
                    "not plain files or directories (links, devices, FIFOs)",
                    file=sys.stderr,
                )
            args.root = str(tmp)
            return doctor(args)
    problem = _root_problem(args.root)
    if problem is not None:
        print(f"pytest-therock: --root {args.root}: {problem}", file=sys.stderr)
        return 2
    ignore = frozenset(args.ignore)
    if args.json:
        data = environment_json(args.root, ignore, args.timeout)
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0 if data["usable"] else 1
    env = detect(Root(Path(args.root)), run_tools=True, timeout=args.timeout)
    for line in summary_lines(env, run_checks(env, ignore), verbose=1 + args.verbose):
        print(line)
    return 0 if env.usable else 1


def snapshot(args: argparse.Namespace) -> int:
    from .snapshot import SnapshotError, take
    from .sysroot import os_reason

    path: Path = args.path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = take(path, os.environ, args.timeout)
    except SnapshotError as exc:
        print(f"pytest-therock: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"pytest-therock: cannot write {path}: {os_reason(exc)}", file=sys.stderr)
        return 2
    print(f"pytest-therock: recorded {len(written)} files into {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; Ctrl-C and SIGTERM stop it with one line (exit 130, 143) after
    killing any tool it runs and removing its temporary files."""
    from .sysroot import Terminated

    args = _parser().parse_args(argv)
    try:
        with _sigterm_raises(Terminated):
            return doctor(args) if args.command == "doctor" else snapshot(args)
    except BrokenPipeError:  # `pytest-therock doctor | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("pytest-therock: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("pytest-therock: terminated", file=sys.stderr)
        return 143


@contextlib.contextmanager
def _sigterm_raises(exception: type[BaseException]) -> Iterator[None]:
    """SIGTERM raises ``exception`` (in the main thread), so cleanup runs as for Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise exception

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
