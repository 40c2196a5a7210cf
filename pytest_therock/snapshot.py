"""``pytest-therock snapshot``: record what the probes read, to replay it elsewhere.

The snapshot is a directory laid out like ``/`` (or a ``.tar.gz`` of one) holding
only the files the plugin reads, plus the tools' outputs under ``.therock/``.
Writing is atomic (a temporary sibling, renamed into place); reading an archive
is bounded, since a snapshot attached to a bug report is untrusted input.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, tools
from .detect import DRM, DRM_MEMORY, KFD_NODES, MODULE_PARAMS
from .sysroot import (
    MAX_TOOL_OUTPUT,
    RECORD_DIR,
    Root,
    SourceError,
    ToolResult,
    not_a_machine,
    os_reason,
    relative,
    root_problem,
    run_tool,
    signals_blocked,
)
from .versions import THEROCK_DISTRIBUTIONS, python_distributions

if TYPE_CHECKING:
    import gzip

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
#: Caps on an archive to replay. A real snapshot holds a few hundred files and a few
#: MB: a 63-partition MI300X (tests/realdata/kfd-topology/topo-mi300-cpx, 65 nodes)
#: records 3 files a node and 2 a memory bank, under 1,000 files with DRM and tools,
#: about twice that as members of `tar czf` (which adds directories). 5,000 leaves
#: room and keeps a bomb of empty members to seconds (each member is a few syscalls).
MAX_ARCHIVE_MEMBERS = 5_000
MAX_ARCHIVE_BYTES = 64 << 20  # the files, uncompressed
MAX_MEMBER_BYTES = MAX_TOOL_OUTPUT  # more than any read accepts is of no use
#: The whole uncompressed stream: the files, and for each member its headers and padding.
MAX_STREAM_BYTES = MAX_ARCHIVE_BYTES + 2048 * MAX_ARCHIVE_MEMBERS


class SnapshotError(Exception):
    """A snapshot cannot be written or read; the message is one line, for users."""


FILES = (
    "proc/cmdline",
    "proc/meminfo",
    "proc/version",
    "proc/sys/kernel/osrelease",
    "sys/module/amdgpu/version",
    "opt/rocm/.info/version",
)


def _kfd_files(root: Root) -> Iterator[str]:
    top = KFD_NODES.rsplit("/", 1)[0]
    yield f"{top}/generation_id"
    yield f"{top}/system_properties"
    for node in root.listdir(KFD_NODES):
        for name in ("properties", "name", "gpu_id"):
            yield f"{KFD_NODES}/{node}/{name}"
        for bank in root.listdir(f"{KFD_NODES}/{node}/mem_banks"):
            for name in ("properties", "used_memory"):
                yield f"{KFD_NODES}/{node}/mem_banks/{bank}/{name}"


def _drm_files(root: Root) -> Iterator[str]:
    for card in root.listdir(DRM):
        if card.startswith("card") and card[4:].isdigit():
            for name in ("uevent", "product_name", *(f"mem_info_{m}" for m in DRM_MEMORY)):
                yield f"{DRM}/{card}/device/{name}"


def inside(tree: Path, rel: str) -> Path:
    """Where ``rel`` goes in the snapshot ``tree``: ``..`` and leading slashes stop at
    the root (``$ROCM_PATH=/opt/x`` is recorded at ``opt/x``, never written to
    ``/opt/x``). Raises :class:`SnapshotError` if the result is not strictly under
    ``tree``."""
    target = tree / relative(rel)
    if not rel.strip("/") or os.path.commonpath([tree, target]) != str(tree) or target == tree:
        raise SnapshotError(f"{rel!r} does not name a file under the snapshot")
    return target


def recorded_files(root: Root, environ: Mapping[str, str]) -> Iterator[str]:
    """Every file the probes read, relative to the root."""
    yield from FILES
    if environ.get("ROCM_PATH"):
        yield relative(os.path.join(environ["ROCM_PATH"], ".info/version"))
    yield from (f"sys/module/{item.replace('/', '/parameters/')}" for item in MODULE_PARAMS)
    yield from _kfd_files(root)
    yield from _drm_files(root)


def _record_tool(dest: Path, name: str, result: ToolResult) -> None:
    (dest / f"{name}.txt").write_text(result.output)
    status = str(result.returncode) if result.error is None else result.error
    (dest / f"{name}.exit").write_text(status + "\n")


def take(
    destination: Path,
    environ: Mapping[str, str],
    timeout: float = 30.0,
    source: Root | None = None,
) -> list[str]:
    """Record this machine (or ``source``) into ``destination``: a new directory (or an
    empty one) or a new ``.tar.gz``. Returns every file written, relative to the root.

    Atomic: everything is written into a temporary sibling (``.NAME.*.partial``) that
    is renamed into place last, so a failure (a full disk) or an interrupt leaves
    nothing behind and a retry works. An existing destination is never replaced and
    a symlink there never followed. Raises :class:`SnapshotError` (one line) or
    ``OSError`` when writing fails.
    """
    archive = archive_stem(destination.name) is not None
    _check_destination(destination, archive)
    partial = f".{destination.name}."
    with temporary_directory(partial, ".partial", destination.parent) as work:
        tree = work / "root"
        tree.mkdir()
        written = _record(tree, environ, timeout, source or Root())
        if archive:
            packed = work / destination.name
            _pack(tree, written, packed)
            _place_file(packed, destination)
        else:
            os.rename(tree, destination)  # refused if a non-empty directory appeared
        return written


@contextlib.contextmanager
def temporary_directory(
    prefix: str, suffix: str = "", parent: Path | None = None
) -> Iterator[Path]:
    """A new directory, removed on every exit. Unlike ``tempfile.TemporaryDirectory``,
    Ctrl-C or SIGTERM cannot land between its creation and the cleanup's registration,
    nor stop the removal half-way: both run with those signals blocked (and delivered
    right after)."""
    path = None
    try:
        with signals_blocked():
            path = Path(tempfile.mkdtemp(suffix, prefix, parent))
        yield path
    finally:
        if path is not None:
            with signals_blocked():
                shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def opened(path: str) -> Iterator[tuple[Path, int]]:
    """A snapshot ``.tar.gz`` extracted into a temporary directory (removed on every
    exit), or the directory ``path`` itself; with how many archive members were
    skipped (see :func:`extract`). Raises :class:`SnapshotError` for a broken archive."""
    if not is_archive(path):
        yield Path(path), 0
        return
    with temporary_directory("pytest-therock-") as tmp:
        skipped = extract(Path(path), tmp)
        yield _machine_in(tmp), skipped


def looks_like_machine(directory: Path) -> bool:
    """``directory`` holds one of :data:`~pytest_therock.sysroot.MACHINE_DIRS` (a
    snapshot, or ``/``): :func:`~pytest_therock.sysroot.not_a_machine`'s rule."""
    return not_a_machine(str(directory)) is None


#: A path that is neither, in the words ``doctor``, ``diff`` and ``fleet`` all use.
NOT_A_DIRECTORY = "not a directory or a .tar.gz snapshot"


def machine_problem(path: str) -> str | None:
    """Why ``path`` cannot be read as a machine, in one phrase for ``doctor``, ``diff``
    and ``fleet`` alike: ``not a directory or a .tar.gz snapshot`` (a file, a FIFO named
    ``*.tar.gz``), ``no such file or directory``, ``permission denied (...)``, ``not a
    machine (...)``; None for a directory that is one, or a ``.tar.gz`` (its contents are
    checked when it is opened)."""
    if is_archive(path):
        return None
    problem = root_problem(path)
    if problem == "not a directory":
        return NOT_A_DIRECTORY
    return problem if problem is not None else not_a_machine(path)


def _machine_in(tree: Path) -> Path:
    """The machine's root in an extracted archive: the tree itself, or its one folder
    (``tar czf runner.tar.gz runner/`` puts the snapshot one level down)."""
    if looks_like_machine(tree):
        return tree
    entries = list(tree.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return tree


def archive_stem(name: str) -> str | None:
    """``name`` without its archive suffix (``.tar.gz`` or ``.tgz``, in any case:
    ``RUNNER.TAR.GZ``), or None when it has none. The one test of an archive's name."""
    lower = name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix):
            return name[: len(name) - len(suffix)]
    return None


def unfinished(path: str) -> str | None:
    """The one line that says ``path`` is a snapshot's temporary sibling
    (``.NAME.*.partial``, see :func:`take`) that was never renamed into place, or None.
    Such a directory is left only by a snapshot killed outright (SIGKILL, power loss)
    or one still being written: never read as a machine, never removed by the plugin."""
    name = path.rstrip("/").rpartition("/")[2]
    if not (name.startswith(".") and name.endswith(".partial") and len(name) > 9):
        return None
    return (
        f"skipped {path}: an unfinished snapshot (its `pytest-therock snapshot` was "
        "killed before it finished); delete it, unless a snapshot is being written now"
    )


def is_archive(path: str) -> bool:
    """``path`` names a regular file ending in ``.tar.gz`` or ``.tgz`` (any case)."""
    try:
        return archive_stem(path) is not None and stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _check_destination(destination: Path, archive: bool) -> None:
    try:
        st = os.lstat(destination)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise SnapshotError(f"{destination}: {os_reason(exc)}") from None
    if stat.S_ISLNK(st.st_mode):
        raise SnapshotError(f"{destination} is a symbolic link; name a new file or directory")
    if stat.S_ISDIR(st.st_mode) and not archive:
        try:
            empty = not os.listdir(destination)
        except OSError as exc:
            raise SnapshotError(f"{destination}: {os_reason(exc)}") from None
        if empty:
            return
        raise SnapshotError(f"{destination} exists and is not empty")
    raise SnapshotError(f"{destination} exists")


def _record(tree: Path, environ: Mapping[str, str], timeout: float, root: Root) -> list[str]:
    for rel in dict.fromkeys(recorded_files(root, environ)):
        try:
            text = root.read_text(rel)
        except SourceError:
            continue
        target = inside(tree, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    record = tree / RECORD_DIR
    record.mkdir(parents=True, exist_ok=True)
    for device in ("dev/kfd", "dev/dxg"):
        if root.exists(device):
            (tree / "dev").mkdir(exist_ok=True)
            (tree / device).touch()
    from .detect import kfd_access

    kfd = kfd_access(root)
    access = "".join(m for m, ok in (("r", kfd.readable), ("w", kfd.writable)) if ok)
    (record / "kfd-access").write_text((access or "none") if kfd.present else "missing")
    for argv in tools.RECORDS:  # every tool run a snapshot records
        name = tools.record_name(argv)
        recorded = (root.exists(f"{RECORD_DIR}/{name}.{ext}") for ext in ("txt", "exit"))
        if not root.is_live and not any(recorded):
            continue  # re-recording a snapshot: what it did not record stays so
        result = tools.run(root, argv, timeout=timeout, environ=environ)
        # Also a tool that hung or is missing: its .exit says why, for whoever replays.
        _record_tool(record, name, result)
    if root.is_live:
        _record_tool(record, "dmesg", run_tool(["dmesg"], timeout))
        versions = {
            "therock": python_distributions(THEROCK_DISTRIBUTIONS),
            "torch": python_distributions(("torch",)).get("torch"),
        }
        (record / "python-versions.json").write_text(json.dumps(versions, indent=2) + "\n")
    else:  # re-recording a snapshot: keep what it recorded
        for name in ("dmesg.txt", "dmesg.exit", "python-versions.json"):
            with contextlib.suppress(SourceError):
                limit = MAX_TOOL_OUTPUT if name.endswith(".txt") else None
                text = root.read_text(f"{RECORD_DIR}/{name}", limit)
                (record / name).write_text(text)
    meta_rel = f"{RECORD_DIR}/snapshot.json"
    written = sorted([*_files_under(tree), meta_rel])
    meta = {"pytest_therock": __version__, "files": written}
    (tree / meta_rel).write_text(json.dumps(meta, indent=2) + "\n")
    return written


def _files_under(tree: Path) -> Iterator[str]:
    for dirpath, _, names in os.walk(tree):
        for name in names:
            yield os.path.relpath(os.path.join(dirpath, name), tree)


def _pack(tree: Path, files: list[str], packed: Path) -> None:
    """A ``.tar.gz`` of ``tree``'s files, owned by nobody in particular (no user names)."""

    def anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(packed, "w:gz") as tar:
        for rel in files:
            tar.add(tree / rel, arcname=rel, recursive=False, filter=anonymous)


def _place_file(packed: Path, destination: Path) -> None:
    """Move ``packed`` to ``destination`` unless something is there (a file, a symlink)."""
    try:
        os.link(packed, destination)  # fails on anything at the destination
    except FileExistsError:
        raise SnapshotError(f"{destination} exists") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(destination):  # a file system without hard links
            raise SnapshotError(f"{destination} exists") from None
        os.rename(packed, destination)


class _Bounded:
    """An archive's uncompressed stream that refuses to go past ``limit`` bytes, and
    refuses outright a read larger than any member may be: tarfile reads a pax or GNU
    long-name header whole, so a header claiming 4 GiB must fail before it is read."""

    def __init__(self, stream: gzip.GzipFile, limit: int, files_limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._files_limit = files_limit  # the cap the user knows: named in the refusal

    def _refuse(self, end: int) -> None:
        if end > self._limit:  # files and their tar headers: so more than the files' cap
            raise SnapshotError(f"expands to more than {self._files_limit} bytes")

    def read(self, size: int = -1) -> bytes:
        here = self._stream.tell()
        if size < 0:
            size = self._limit - here + 1
        elif size > MAX_MEMBER_BYTES + (1 << 20):
            raise SnapshotError(f"a header or member of {size} bytes: not a snapshot")
        data = self._stream.read(size)
        self._refuse(here + len(data))
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        target = offset if whence == 0 else self._stream.tell() + offset
        if whence not in (0, 1):
            raise OSError("cannot seek from the end of a compressed stream")
        self._refuse(target)
        return self._stream.seek(target)

    def tell(self) -> int:
        return self._stream.tell()


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, into: Path) -> None:
    """One plain file or directory, checked by tarfile's ``data`` filter (PEP 706: no
    absolute path, nothing outside ``into``), written without the owner, mode and time
    tarfile would also set: a snapshot needs only the bytes, and each member stays cheap."""
    safe = tarfile.data_filter(member, str(into))
    target = os.path.join(into, safe.name)
    if member.isdir():
        os.makedirs(target, exist_ok=True)
        return
    os.makedirs(os.path.dirname(target) or into, exist_ok=True)
    source = tar.extractfile(member)
    if source is None:
        return
    # "into" is new and only ever gets files and directories: no link to follow.
    with source, open(target, "wb") as out:
        shutil.copyfileobj(source, out)


def extract(archive: Path, into: Path) -> int:
    """Unpack a snapshot ``.tar.gz`` into the directory ``into``; returns how many
    members were skipped for not being plain files or directories (links, devices,
    FIFOs: a snapshot has none, and they are never followed or created).

    Uses tarfile's ``data`` filter (PEP 706: no absolute paths, nothing outside
    ``into``, no special modes), caps the member count, each member's size and the
    total, and reads the gzip stream to its end so a CRC or length error is caught.
    Raises :class:`SnapshotError` with a one-line reason; a Python whose tarfile has
    no ``data`` filter (before 3.10.12 / 3.11.4) is refused, never extracted unsafely.
    """
    import gzip
    import zlib

    if not hasattr(tarfile, "data_filter"):
        raise SnapshotError(
            "this Python cannot extract archives safely (tarfile has no data filter: "
            "Python 3.10.12+ or 3.11.4+ needed); extract it yourself and pass the directory"
        )
    members = skipped = total = 0
    try:
        with (
            open(archive, "rb") as raw,
            gzip.GzipFile(fileobj=raw) as unpacked,
        ):
            stream = _Bounded(unpacked, MAX_STREAM_BYTES, MAX_ARCHIVE_BYTES)
            with tarfile.open(fileobj=stream, mode="r:") as tar:  # type: ignore[call-overload]
                for member in tar:
                    members += 1
                    if members > MAX_ARCHIVE_MEMBERS:
                        raise SnapshotError(
                            f"more than {MAX_ARCHIVE_MEMBERS} members: not a snapshot"
                        )
                    if not (member.isreg() or member.isdir()):
                        skipped += 1
                        continue
                    total += member.size
                    if member.size > MAX_MEMBER_BYTES:
                        raise SnapshotError(
                            f"member {member.name!r} holds {member.size} bytes, "
                            f"more than {MAX_MEMBER_BYTES}: not a snapshot"
                        )
                    if total > MAX_ARCHIVE_BYTES:
                        raise SnapshotError(f"expands to more than {MAX_ARCHIVE_BYTES} bytes")
                    _extract_member(tar, member, into)
            while stream.read(1 << 20):  # to the end, so that gzip checks its CRC
                pass
    except SnapshotError:
        raise
    except EOFError:
        raise SnapshotError("truncated (the compressed data ends early)") from None
    except (zlib.error, gzip.BadGzipFile) as exc:
        raise SnapshotError(f"corrupt: {exc}") from None
    except tarfile.TarError as exc:
        raise SnapshotError(f"not a snapshot archive: {exc}") from None
    except OSError as exc:
        raise SnapshotError(os_reason(exc)) from None
    return skipped
