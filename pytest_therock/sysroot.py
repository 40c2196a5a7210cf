"""All I/O of the plugin: files under a filesystem root, and external tools.

Everything else is pure functions over the text read here, so a recorded snapshot
of a machine (a directory laid out like ``/``) replays exactly like the machine.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import subprocess

#: Largest file we read: sysfs attributes are tiny; a 100 MB "file" is a fault.
MAX_FILE_BYTES = 1 << 20
#: Largest tool output we keep.
MAX_TOOL_OUTPUT = 16 << 20

RECORD_DIR = ".therock"


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


@dataclass(frozen=True)
class Root:
    """A filesystem root: ``/`` on a live machine, a snapshot directory in tests."""

    path: Path = Path("/")

    @property
    def is_live(self) -> bool:
        return self.path == Path("/")

    def _abs(self, rel: str) -> str:
        return os.path.join(self.path, rel.lstrip("/"))  # str: detection joins hundreds

    def read_text(self, rel: str) -> str:
        """The text of ``rel``; raises :class:`SourceError` with a one-line reason."""
        try:
            # O_NONBLOCK: a FIFO in a broken root must not hang the session.
            fd = os.open(self._abs(rel), os.O_RDONLY | os.O_NONBLOCK)
            with open(fd, "rb") as f:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise SourceError(rel, "not a regular file")
                data = f.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            raise SourceError(rel, "missing") from None
        except OSError as exc:
            raise SourceError(rel, os_reason(exc)) from None
        if len(data) > MAX_FILE_BYTES:
            raise SourceError(rel, f"larger than {MAX_FILE_BYTES} bytes")
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise SourceError(rel, "not UTF-8 text") from None

    def exists(self, rel: str) -> bool:
        return os.path.lexists(self._abs(rel))

    def is_dir(self, rel: str) -> bool:
        return os.path.isdir(self._abs(rel))

    def listdir(self, rel: str) -> list[str]:
        """Entry names of a directory, or [] when it is missing or unreadable."""
        try:
            return sorted(os.listdir(self._abs(rel)))
        except OSError:
            return []

    def access(self, rel: str, mode: int) -> bool:
        return os.access(self._abs(rel), mode)

    def realpath(self, rel: str) -> str:
        """Resolve symlinks below the root; returns a path relative to the root."""
        try:
            return os.path.relpath(os.path.realpath(self._abs(rel)), self.path)
        except (OSError, ValueError):
            return rel


@dataclass(frozen=True)
class ToolResult:
    """What a tool run returned."""

    argv: tuple[str, ...]
    returncode: int | None  # None: did not run or timed out
    output: str  # stdout and stderr together, decoded with errors="replace"
    error: str | None = None  # why it did not run or did not finish

    @property
    def ok(self) -> bool:
        return self.error is None and self.returncode == 0


def run_tool(argv: list[str], timeout: float) -> ToolResult:
    """Run a tool with a timeout that kills it and its children; never raises."""
    import signal
    import subprocess  # only tools need these: not imported at start-up

    args = tuple(argv)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return ToolResult(args, None, "", f"cannot run {argv[0]}: {os_reason(exc)}")
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return ToolResult(args, None, "", f"{argv[0]} did not finish within {timeout:g} s")
    text = out[:MAX_TOOL_OUTPUT].decode(errors="replace")
    if proc.returncode < 0:
        sig = (
            signal.Signals(-proc.returncode).name
            if -proc.returncode in signal.valid_signals()
            else proc.returncode
        )
        return ToolResult(args, proc.returncode, text, f"{argv[0]} was killed by {sig}")
    return ToolResult(args, proc.returncode, text)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()
    proc.communicate()
