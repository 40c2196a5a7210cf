"""The worst inputs tried against processes, files and archives (issue 10): wall time and
peak RSS of each, every one in a fresh process.

    python benchmarks/hostile.py [WORKDIR]

WORKDIR (default: a new temporary directory) receives the inputs: a tool printing 1 GiB,
a tool that exits while a setsid daemon holds its output, a root with 3 GiB (sparse)
files, 1 MB of proc/cmdline, 10,000 KFD nodes, a 4 MB archive expanding to 4 GiB, and
archives whose headers claim 4 GiB or 1 GiB. Building them takes a minute.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
STRIX = HERE / "examples/roots/strix-halo"
MI210 = HERE / "tests/realdata/sysfs/kfd-topology-mi210-node2-properties.txt"
MEMINFO = HERE / "tests/realdata/procfs/meminfo-ci-machine-debian12-container-24g.txt"
RSS = (
    "import resource, sys\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
)


def measure(label: str, code: str, env: dict[str, str] | None = None) -> None:
    """One row: wall time, peak RSS, and what the process said (its error, else its result)."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{RSS}"], capture_output=True, text=True, env=env
    )
    elapsed = time.monotonic() - start
    *errors, rss = done.stderr.splitlines() or ["nan"]
    said = " ".join([*errors, *done.stdout.splitlines()[-1:]])
    print(f"| {label} | {elapsed:.2f} s | {float(rss) / 1024:.0f} MB | {said[:120]} |")


def doctor(root: Path, *args: str) -> str:
    return (
        "import contextlib, io\nfrom pytest_therock.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    status = main(['doctor', '--root', {str(root)!r}, *{list(args)!r}])\n"
        "print('exit status', status)"
    )


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def build(work: Path) -> dict[str, Path]:
    made = {
        "flood": script(work / "flood", "head -c 1073741824 /dev/zero\n"),
        "daemon": script(
            work / "daemon",
            "echo hello\nsetsid sh -c 'trap \"\" TERM; exec sleep 60' &\nexit 0\n",
        ),
    }
    big = work / "big-files"
    shutil.copytree(STRIX, big, dirs_exist_ok=True)
    for rel in (".therock/kfd-access", "proc/cmdline", ".therock/rocminfo.txt"):
        (big / rel).parent.mkdir(parents=True, exist_ok=True)
        with open(big / rel, "wb") as f:
            f.truncate(3 << 30)
    made["big-files"] = big
    for name, text in (("cmdline-word", "x" * 10**6), ("cmdline-words", "a=b " * 250_000)):
        root = work / name
        shutil.copytree(STRIX, root, dirs_exist_ok=True)
        (root / "proc").mkdir(exist_ok=True)
        (root / "proc/cmdline").write_text(text + "\n")
        made[name] = root
    nodes = work / "10k"
    kfd = nodes / "sys/class/kfd/kfd/topology/nodes"
    for node in range(10_000):
        (kfd / str(node) / "mem_banks/0").mkdir(parents=True, exist_ok=True)
        (kfd / str(node) / "properties").write_text(MI210.read_text())
        bank = "heap_type 1\nsize_in_bytes 68702699520\n"
        (kfd / str(node) / "mem_banks/0/properties").write_text(bank)
    (nodes / "dev").mkdir(exist_ok=True)
    (nodes / "dev/kfd").write_text("")
    (nodes / "proc").mkdir(exist_ok=True)
    (nodes / "proc/meminfo").write_text(MEMINFO.read_text())
    made["10k"] = nodes
    bomb = work / "bomb.tar.gz"
    with tarfile.open(bomb, "w:gz", compresslevel=9) as tar:
        zero = bytes(16 << 20)
        for i in range(256):  # 4 GiB of zeros
            info = tarfile.TarInfo(f"f{i}")
            info.size = len(zero)
            tar.addfile(info, io.BytesIO(zero))
    made["bomb"] = bomb
    info = tarfile.TarInfo("proc/meminfo")
    info.size = 4 << 30
    made["declared"] = work / "declared.tar.gz"
    made["declared"].write_bytes(gzip.compress(info.tobuf(format=tarfile.GNU_FORMAT)))
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type = tarfile.XHDTYPE
    pax.size = 1 << 30
    made["pax"] = work / "pax.tar.gz"
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(made["pax"], "wb") as f:
        f.write(packer.compress(pax.tobuf(format=tarfile.USTAR_FORMAT)))
        for _ in range(1024):
            f.write(packer.compress(bytes(1 << 20)))
        f.write(packer.flush())
    return made


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    made = build(work)
    run = (
        "from pytest_therock.sysroot import run_tool\nr = run_tool([{!r}], 60)\n"
        "print('exit', r.returncode, len(r.output), 'bytes kept', r.error or '')"
    )
    print("| input | wall | peak RSS | said |\n| --- | --- | --- | --- |")
    measure("tool printing 1 GiB", run.format(str(made["flood"])))
    measure("tool exiting 0, setsid daemon holding stdout", run.format(str(made["daemon"])))
    measure("3 GiB kfd-access, cmdline, rocminfo.txt", doctor(made["big-files"]))
    measure("1 MB proc/cmdline, one word", doctor(made["cmdline-word"]))
    measure("1 MB proc/cmdline, 250,000 words", doctor(made["cmdline-words"]))
    measure("doctor --json, 10,000 KFD nodes", doctor(made["10k"], "--json"))
    env = {**os.environ, "ROCR_VISIBLE_DEVICES": ",".join(map(str, range(10_000)))}
    measure("same, ROCR_VISIBLE_DEVICES=0..9999", doctor(made["10k"], "--json"), env)
    measure(f"4 GiB in a {made['bomb'].stat().st_size // 2**20} MB .tar.gz", doctor(made["bomb"]))
    measure("a member claiming 4 GiB", doctor(made["declared"]))
    measure("a 1 MB archive whose pax header claims 1 GiB", doctor(made["pax"]))


if __name__ == "__main__":
    main()
