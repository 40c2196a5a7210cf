"""``pytest-therock``: the plugin's report without running pytest.

Exit status: 0 when an AMD GPU is usable, 1 when not, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
import tempfile
from collections.abc import Sequence
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
    doctor.add_argument(
        "--need",
        type=_gib,
        metavar="GIB",
        help="GiB (2**30 bytes) of GPU memory you need: print the one change that reaches it",
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


def _gib(text: str) -> int:
    """``--need 96`` (GiB) as bytes; a clear usage error otherwise."""
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of GiB, e.g. 96") from None
    if not math.isfinite(value) or value <= 0 or value > 1 << 20:
        raise argparse.ArgumentTypeError(f"{text!r}: give a size in GiB above 0, e.g. 96")
    return int(value * (1 << 30))


def environment_json(
    root: str,
    ignore: frozenset[str] = frozenset(),
    timeout: float = 30.0,
    need: int | None = None,
) -> dict[str, object]:
    """The doctor's JSON: the environment, each GPU's memory model, the plan, the diagnostics."""
    import dataclasses

    from .detect import detect
    from .diagnostics import memory_below_need, run_checks
    from .environment import to_dict
    from .memory import gpu_memory, machine_plan
    from .sysroot import Root

    env = detect(Root(Path(root)), run_tools=True, timeout=timeout)
    data: dict[str, object] = to_dict(env)
    data["visible_gpus"] = [env.gpus.index(g) for g in env.visible_gpus]
    data["memory"] = [
        {**to_dict(m), "usable_bytes": m.usable_bytes, "is_default": m.is_default}
        for m in (gpu_memory(env, g) for g in env.gpus)
    ]
    plan = machine_plan(env, need, exact=True)
    data["plan"] = {**dataclasses.asdict(plan), "change": plan.change} if plan is not None else None
    diagnostics = run_checks(env, ignore, need)
    below = memory_below_need(env, need, exact=True) if need else None
    if below is not None and below.code not in ignore:
        diagnostics.append(below)
    data["diagnostics"] = [to_dict(d) for d in diagnostics]
    data["usable"] = env.usable
    return data


def _extract(archive: Path, into: Path) -> None:
    """Unpack a snapshot; no member may land outside ``into``."""
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.10.12+, 3.11.4+
            tar.extractall(into, filter="data")
            return
        for member in tar.getmembers():
            target = (into / member.name).resolve()
            if not (member.isfile() or member.isdir()) or into.resolve() not in target.parents:
                raise ValueError(f"refusing to extract {member.name!r}")
        tar.extractall(into)  # members checked above


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
    if args.root.endswith((".tar.gz", ".tgz")) and Path(args.root).is_file():
        with tempfile.TemporaryDirectory() as tmp:  # a snapshot attached to a bug report
            try:
                _extract(Path(args.root), Path(tmp))
            except (OSError, tarfile.TarError, ValueError) as exc:
                print(f"pytest-therock: --root {args.root}: {exc}", file=sys.stderr)
                return 2
            args.root = tmp
            return doctor(args)
    if not Path(args.root).is_dir():
        print(f"pytest-therock: --root {args.root}: not a directory", file=sys.stderr)
        return 2
    ignore = frozenset(args.ignore)
    if args.json:
        data = environment_json(args.root, ignore, args.timeout, args.need)
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0 if data["usable"] else 1
    env = detect(Root(Path(args.root)), run_tools=True, timeout=args.timeout)
    diagnostics = run_checks(env, ignore, args.need)
    if args.need:
        from .diagnostics import SEVERITIES, memory_below_need

        below = memory_below_need(env, args.need, exact=True)
        if below is not None and below.code not in ignore:
            diagnostics.append(below)
            diagnostics.sort(key=lambda d: SEVERITIES.index(d.severity))
    for line in summary_lines(env, diagnostics, verbose=1 + args.verbose):
        print(line)
    if args.need:
        from .memory import machine_plan

        plan = machine_plan(env, args.need, exact=True)
        print(plan.line() if plan is not None else "plan: no visible AMD GPU")
    return 0 if env.usable else 1


def snapshot(args: argparse.Namespace) -> int:
    from .snapshot import take

    path: Path = args.path
    if path.exists() and (path.is_file() or any(path.iterdir())):
        print(f"pytest-therock: {path} exists and is not empty", file=sys.stderr)
        return 2
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.name.endswith((".tar.gz", ".tgz")):
            path.mkdir(exist_ok=True)
        written = take(path, os.environ, args.timeout)
    except OSError as exc:
        print(f"pytest-therock: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"pytest-therock: recorded {len(written)} files into {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return doctor(args) if args.command == "doctor" else snapshot(args)
    except BrokenPipeError:  # `pytest-therock doctor | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
