"""All I/O of the plugin: files under a filesystem root, and external tools.

Everything else is pure functions over the text read here, so a recorded snapshot
of a machine (a directory laid out like ``/``) replays exactly like the machine.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import subprocess

#: Largest file we read: sysfs attributes are tiny; a 100 MB "file" is a fault.
MAX_FILE_BYTES = 1 << 20
#: Largest tool output we keep.
MAX_TOOL_OUTPUT = 16 << 20

RECORD_DIR = ".therock"
_O_PATH: int = getattr(os, "O_PATH", 0)


class SourceError(Exception):
    """A source could not be read; ``reason`` is short and meant for users."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def os_reason(exc: OSError) -> str:
    """A short, lower-case reason for an OSError: ``permission denied``, ``symlink loop``."""
    if exc.errno == errno.ELOOP:
        return "symlink loop"
    if exc.errno == errno.EISDIR:
        return "is a directory, expected a file"
    return (exc.strerror or type(exc).__name__).lower()


def relative(rel: str) -> str:
    """``rel`` as a relative path under a root, the way a chroot takes it: ``..`` and
    leading slashes stop at the root. Never absolute: ``os.path.normpath`` keeps two
    leading slashes (POSIX leaves ``//x`` to the implementation), so they are stripped
    after normalising; ``""`` is the root itself."""
    return os.path.normpath("/" + rel).lstrip("/")


def root_problem(root: str) -> str | None:
    """Why the directory ``root`` cannot be read as a machine's root, in a few words
    (``permission denied (cannot list or enter it)``, ``not a directory``), or None."""
    try:
        st = os.stat(root)
    except OSError as exc:
        return os_reason(exc)
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if not os.access(root, os.R_OK | os.X_OK):
        return "permission denied (cannot list or enter it)"
    return None


#: What a machine's root holds (a snapshot, or ``/``): at least one of these entries.
MACHINE_DIRS = (RECORD_DIR, "sys", "proc", "dev")


def not_a_machine(root: str) -> str | None:
    """Why the directory ``root`` is no machine's root: ``not a machine (it holds none of
    .therock/, sys/, proc/, dev/)``; None when it holds one of :data:`MACHINE_DIRS`, of
    any kind (a ``sys`` that is a file belongs to a machine whose ``sys`` cannot be read,
    which detection reports). So ``/usr/share``, an empty directory or a directory of
    snapshots is refused, not read as a machine without a GPU."""
    if any(os.path.lexists(os.path.join(root, name)) for name in MACHINE_DIRS):
        return None
    return f"not a machine (it holds none of {', '.join(f'{d}/' for d in MACHINE_DIRS)})"


class Root:
    """A filesystem root: ``/`` on a live machine, a snapshot directory in tests.

    Every path is taken relative to the root, the way a chroot takes it: ``..`` and a
    leading ``/`` stop at the root (so ``$ROCM_PATH=../../etc`` cannot leave it), and in
    a snapshot a symlink that resolves outside the root is read as ``outside the root``,
    never followed: a snapshot is untrusted, its links must not read this machine.
    """

    __slots__ = ("_dirs", "_real_path", "_ways", "is_live", "path")

    def __init__(self, path: str | os.PathLike[str] = Path("/")) -> None:
        """``path``: a directory (str or path-like); ``/`` is this machine."""
        self.path = path if isinstance(path, Path) else Path(path)
        self.is_live = self.path == Path("/")
        #: Directories already resolved (a snapshot does not change while it is read).
        self._dirs: dict[str, str] = {}
        self._real_path: str | None = None
        #: What :func:`blocked` found at each directory on the way to a file.
        self._ways: dict[str, SourceError | str] = {}

    def __repr__(self) -> str:
        return f"Root(path={self.path!r})"

    def __eq__(self, other: object) -> bool:
        return self.path == other.path if isinstance(other, Root) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.path)

    @property
    def _real(self) -> str:
        """The root with its own symlinks resolved: what resolved paths must stay under."""
        if self._real_path is None:
            self._real_path = os.path.realpath(self.path)
        return self._real_path

    def _abs(self, rel: str) -> str:
        # str, not Path: detection joins hundreds.
        if self.is_live:  # the kernel resolves "..", after symlinks, as it always does
            return "/" + rel.lstrip("/")
        return os.path.join(self.path, relative(rel))

    def _within(self, real: str) -> bool:
        return real == self._real or real.startswith(self._real.rstrip("/") + "/")

    def _checked(self, rel: str) -> str:
        """``rel`` under the root, symlinks resolved; raises :class:`SourceError` when a
        symlink leads outside a snapshot root. A directory is resolved once, so a read
        costs one ``lstat`` more than on a live machine."""
        path = self._abs(rel)
        if self.is_live:
            return path
        real = self._resolve(path)
        if not self._within(real):
            raise SourceError(rel, "a symlink that leads outside the root")
        return real

    def _resolve(self, path: str) -> str:
        """``path`` (under the root) with symlinks resolved; each directory is resolved
        once, one ``lstat`` a component."""
        if path == str(self.path):
            return self._real
        parent, name = os.path.split(path)
        if parent == path:  # "/": not under the root after all
            return path
        if not name:  # a trailing "/"
            return self._resolve(parent)
        real = self._dirs.get(parent)
        if real is None:
            real = self._dirs[parent] = self._resolve(parent)
        real = os.path.join(real, name)
        return os.path.realpath(real) if os.path.islink(real) else real

    def _open(self, rel: str, flags: int) -> int:
        """A file descriptor for ``rel``; in a snapshot, only once the file it names is
        known to lie inside the root. Opened first with ``O_PATH`` (which touches no
        device) and checked through ``/proc/self/fd``: one path walk, not one ``lstat``
        a component; without those (not Linux), :meth:`_checked` walks the path."""
        if self.is_live or not _O_PATH:
            return os.open(self._checked(rel), flags)
        handle = os.open(self._abs(rel), _O_PATH)
        try:
            try:
                real = os.readlink(f"/proc/self/fd/{handle}")
            except OSError:  # no /proc
                return os.open(self._checked(rel), flags)
            if not self._within(real):
                raise SourceError(rel, "a symlink that leads outside the root")
            return os.open(f"/proc/self/fd/{handle}", flags)
        finally:
            os.close(handle)

    def read_text(self, rel: str, limit: int | None = None) -> str:
        """The text of ``rel``, at most ``limit`` bytes (default :data:`MAX_FILE_BYTES`).

        The limit holds while reading: a larger file is refused after ``limit + 1``
        bytes, whatever its size. Raises :class:`SourceError` with a one-line reason.
        """
        limit = MAX_FILE_BYTES if limit is None else limit
        try:
            # O_NONBLOCK: a FIFO in a broken root must not hang the session.
            fd = self._open(rel, os.O_RDONLY | os.O_NONBLOCK)
            with open(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise SourceError(rel, "not a regular file")
                data = f.read(limit + 1)
        except FileNotFoundError:
            raise self._missing(rel) from None
        except OSError as exc:
            raise _blocker(self, rel, exc) from None
        if len(data) > limit:
            raise SourceError(rel, f"larger than {limit} bytes")
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise SourceError(rel, "not UTF-8 text") from None

    def read_json(self, rel: str) -> object:
        """The JSON document in ``rel`` (read as :meth:`read_text`). Raises
        :class:`SourceError` for any file that cannot be read or parsed, including JSON
        nested deeper than Python recurses (``[`` * 100,000 raises RecursionError)."""
        import json

        text = self.read_text(rel)
        try:
            return json.loads(text)
        except (ValueError, RecursionError, MemoryError) as exc:
            why = "nested too deep" if isinstance(exc, RecursionError) else "malformed"
            raise SourceError(rel, f"not valid JSON ({why})") from None

    def exists(self, rel: str) -> bool:
        try:
            return os.path.lexists(self._checked(rel))
        except SourceError:
            return False

    def is_dir(self, rel: str) -> bool:
        try:
            return os.path.isdir(self._checked(rel))
        except SourceError:
            return False

    def listdir(self, rel: str) -> list[str]:
        """Entry names of a directory, or [] when it is missing or unreadable."""
        try:
            fd = self._open(rel, os.O_RDONLY | os.O_DIRECTORY)
        except (OSError, SourceError):
            return []
        try:
            return sorted(os.listdir(fd))
        except OSError:
            return []
        finally:
            os.close(fd)

    def _missing(self, rel: str) -> SourceError:
        """The error for ``rel`` that does not exist: ``missing``, unless a snapshot's
        symlink on its way leads outside the root (``sys -> /sys``): then what it names
        is unknown, whatever this machine has there."""
        stop = None if self.is_live else blocked(self, rel)
        return stop if stop is not None else SourceError(rel, "missing")

    def entries(self, rel: str) -> list[str]:
        """Entry names of a directory, [] when it is missing; raises :class:`SourceError`
        when it exists but cannot be listed (not a directory, permission, symlink loop,
        a symlink that leads outside a snapshot root). Names that are not UTF-8 are
        kept, surrogate-escaped (``os.listdir``), for the caller to report."""
        try:
            fd = self._open(rel, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            error = self._missing(rel)
            if error.reason == "missing":
                return []
            raise error from None
        except OSError as exc:
            raise _blocker(self, rel, exc) from None
        try:
            return sorted(os.listdir(fd))
        except OSError as exc:
            raise _blocker(self, rel, exc) from None
        finally:
            os.close(fd)

    def access(self, rel: str, mode: int) -> bool:
        try:
            return os.access(self._checked(rel), mode)
        except SourceError:
            return False

    def realpath(self, rel: str) -> str:
        """Resolve symlinks below the root; returns a path relative to the root."""
        try:
            return os.path.relpath(os.path.realpath(self._checked(rel)), self._real)
        except (OSError, ValueError, SourceError):
            return rel


def blocked(root: Root, rel: str) -> SourceError | None:
    """The first directory on the way to ``rel`` that cannot be passed: a file (or
    anything else) where a directory should be, a directory this user may not enter,
    a symlink loop or one leading outside a snapshot root; None when the way is open
    or merely ends (a missing directory is an absence, not a fault).

    So a snapshot whose ``sys`` is a file is reported once, as ``sys: not a
    directory``, not once for each file under it, and a file under it is unknown,
    never "missing" (``open(2)``: ``ENOTDIR``, "a component used as a directory in
    pathname is not, in fact, a directory"; ``EACCES``, "search permission is denied
    for one of the directories in the path prefix").
    """
    parts = relative(rel).split("/")
    for end in range(1, len(parts)):
        prefix = "/".join(parts[:end])
        way = root._ways.get(prefix)
        if way is None:  # each directory is looked at once: a snapshot does not change
            way = root._ways[prefix] = _way(root, prefix)
        if isinstance(way, SourceError):
            return way
        if way == "ends":
            return None
    return None


def _way(root: Root, prefix: str) -> SourceError | str:
    """Whether the way goes on through directory ``prefix``: ``"open"``, ``"ends"``
    (missing), or the error that stops it (see :func:`blocked`)."""
    try:
        path = root._checked(prefix)
        st = os.stat(path)
    except SourceError as exc:
        return exc
    except FileNotFoundError:
        return "ends"
    except OSError as exc:
        return SourceError(prefix, os_reason(exc))
    if not stat.S_ISDIR(st.st_mode):
        return SourceError(prefix, "not a directory")
    if not os.access(path, os.X_OK):
        return SourceError(prefix, "permission denied (cannot enter it)")
    return "open"


def _blocker(root: Root, rel: str, exc: OSError) -> SourceError:
    """The error for ``rel`` that failed with ``exc``: named after the directory on its
    way that stopped it (:func:`blocked`), else after ``rel`` itself."""
    if exc.errno in (errno.ENOTDIR, errno.EACCES, errno.EPERM, errno.ELOOP):
        found = blocked(root, rel)
        if found is not None:
            return found
    return SourceError(rel, "not a directory" if exc.errno == errno.ENOTDIR else os_reason(exc))


class ToolResult(NamedTuple):
    """What a tool run returned."""

    argv: tuple[str, ...]
    returncode: int | None  # None: did not run or timed out
    output: str  # stdout and stderr together, decoded with errors="replace"
    error: str | None = None  # why it did not run or did not finish

    @property
    def ok(self) -> bool:
        return self.error is None and self.returncode == 0


#: Environment variable set, with a fresh token, in every tool's environment: how the
#: processes a tool started are found again after they left its process group and
#: session (``setsid``) or were orphaned (Jenkins' ProcessTreeKiller does the same).
TOOL_MARKER = "PYTEST_THEROCK_TOOL_RUN"
#: How long a tool that exited may still take to close its output, in seconds: a
#: grandchild that keeps the pipe open is not waited for beyond this.
EXIT_GRACE = 0.2
_CHUNK = 1 << 20


def run_tool(argv: list[str], timeout: float, max_output: int = MAX_TOOL_OUTPUT) -> ToolResult:
    """Run a tool for at most ``timeout`` seconds; never raises (but lets interrupts through).

    stdout and stderr are read together as they stream; past ``max_output`` bytes the
    rest is read and dropped, so memory stays bounded whatever the tool prints. The
    tool runs in a session of its own; when it ends (exited, timed out, or this
    process interrupted by Ctrl-C, SIGTERM or pytest-timeout) every process it started
    is killed: its process group and session, its descendants, and any process that
    inherited its :data:`TOOL_MARKER` (a daemon that called ``setsid`` and was
    orphaned). A tool that exited but left a process holding its output is reported
    as it exited, with the output it printed.
    """
    import secrets
    import subprocess  # only tools need it: not imported at start-up

    args = tuple(argv)
    timeout = timeout if timeout > 0 else 0.0  # NaN and negatives: no time at all
    token = secrets.token_hex(8)
    proc: subprocess.Popen[bytes] | None = None
    started = 0
    with _terminate_raises():
        try:
            # Not with signals blocked: the tool would inherit the blocked mask.
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, TOOL_MARKER: token},
            )
            started = _start_time(proc.pid)
            out, finished = _collect(proc, timeout, max_output)
        except OSError as exc:
            why = f"cannot run {argv[0]}" if proc is None else f"{argv[0]}: output unreadable"
            return ToolResult(args, None, "", f"{why}: {os_reason(exc)}")
        except BaseException:
            if proc is None:  # interrupted inside Popen, maybe after the fork: no pid
                _kill_unbound(token)
            raise
        finally:
            if proc is not None:
                _kill_tool(proc, token, started)
    if not finished:
        return ToolResult(args, None, "", f"{argv[0]} did not finish within {timeout:g} s")
    text = out.decode(errors="replace")
    code = proc.returncode
    if code < 0:
        import signal

        try:  # real-time signals (SIGRTMIN+n) have no name in signal.Signals
            sig: str = signal.Signals(-code).name
        except ValueError:
            sig = f"signal {-code}"
        return ToolResult(args, code, text, f"{argv[0]} was killed by {sig}")
    return ToolResult(args, code, text)


def _collect(proc: subprocess.Popen[bytes], timeout: float, limit: int) -> tuple[bytes, bool]:
    """The tool's output (at most ``limit`` bytes), and whether it exited in time."""
    import selectors
    import time

    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    with contextlib.suppress(OSError, AttributeError):  # fewer wake-ups for a flood
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _CHUNK)
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    kept = 0
    exited_at: float | None = None
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            if proc.poll() is not None:
                exited_at = exited_at or now
                if now - exited_at >= EXIT_GRACE:
                    break  # exited; whoever still holds the pipe is not waited for
            if now >= deadline:
                return b"", False
            wait = min(deadline - now, 0.05)  # poll the exit status at 20 Hz
            if exited_at is not None:
                wait = min(wait, exited_at + EXIT_GRACE - now)
            if not sel.select(max(wait, 0)):
                continue
            try:
                data = os.read(fd, _CHUNK)
            except BlockingIOError:
                continue
            if not data:  # end of output: wait for the exit status
                try:
                    proc.wait(max(deadline - time.monotonic(), 0))
                except subprocess.TimeoutExpired:
                    return b"", False
                break
            if kept < limit:
                chunks.append(data[: limit - kept])
                kept += len(chunks[-1])
    return b"".join(chunks), True


def _start_time(pid: int) -> int:
    """The start time of ``pid`` in clock ticks since boot, or 0 when unknown."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else 0


def _stat_fields(pid: int | str) -> list[bytes] | None:
    """``/proc/PID/stat`` from its third field (state) on, or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return fields if len(fields) > 19 else None


def _tool_processes(pid: int, token: str, started: int, unreaped: bool) -> set[int]:
    """Live processes the tool ``pid`` started: its group, its session, those carrying
    its marker, and their descendants, found through /proc. The tool's own children
    count only while it is ``unreaped``: a reaped tool's pid may belong to another."""
    marker = f"{TOOL_MARKER}={token}".encode()
    found: set[int] = set()
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        fields = _stat_fields(name)
        if fields is None or fields[0] in (b"Z", b"X"):
            continue  # gone, or a zombie: runs nothing
        other = int(name)
        ppid, group, session = int(fields[1]), int(fields[2]), int(fields[3])
        children.setdefault(ppid, []).append(other)
        if pid in (group, session) or (int(fields[19]) >= started and _has_marker(other, marker)):
            found.add(other)
    todo = [pid, *found] if unreaped else list(found)
    while todo:  # descendants, whatever group or session they moved to
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    found.discard(os.getpid())
    return found


def _kill_unbound(token: str) -> None:
    """SIGKILL and reap a tool whose ``Popen`` was interrupted after its fork (Ctrl-C
    lands in ``Popen``'s own wait for the exec): found by its marker once it has
    exec'd; a child still a copy of this process (its command line ours) has not yet,
    and is waited for (at most 2 s)."""
    import signal
    import time

    me = os.getpid()
    ours = _cmdline(me)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and any(_cmdline(child) == ours for child in _children(me)):
        time.sleep(0.005)
    pids = _tool_processes(-1, token, 0, False)
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids & set(_children(me, zombies=True)):
        with contextlib.suppress(OSError):
            os.waitpid(pid, 0)


def _children(parent: int, zombies: bool = False) -> list[int]:
    """The processes whose parent is ``parent`` (zombies only when asked)."""
    found = []
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            fields = _stat_fields(name) if name.isdigit() else None
            if fields and int(fields[1]) == parent and (zombies or fields[0] not in b"ZX"):
                found.append(int(name))
    return found


def _cmdline(pid: int) -> bytes | None:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read(1 << 16)
    except OSError:
        return None


def _has_marker(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in f.read(1 << 20).split(b"\0")
    except OSError:
        return False


def _kill_tool(proc: subprocess.Popen[bytes], token: str, started: int) -> None:
    """SIGKILL the tool and every process it started; reap the tool."""
    import signal

    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    for _ in range(20):  # a fork bomb may start more while we kill: look again
        unreaped = proc.returncode is None
        pids = _tool_processes(proc.pid, token, started, unreaped) if started else set()
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        proc.kill()
    with contextlib.suppress(Exception):
        proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP back (main thread) until the block ends, then deliver
    them: for what must not be cut in two, such as starting a tool and arming its
    cleanup, or creating and removing a temporary directory."""
    import signal
    import threading

    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Terminated(BaseException):
    """SIGTERM (or SIGHUP) arrived: raised by the handlers that turn the signal into
    cleanup; ``args[0]``, when given, is the signal number."""


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while a tool runs, so that the tool
    is killed before this process dies of the signal as it would have.

    Only where SIGTERM would kill this process outright (the default handler, main
    thread); a handler someone installed (the CLI's) is left to do its work.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise Terminated

    signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    except Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)  # die of it, as without us
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
