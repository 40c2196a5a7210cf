"""Settings: command-line option, then environment variable, then ini key, then default."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

DEFAULT_TIMEOUT = 30.0


class Settings(NamedTuple):
    """The resolved settings of one session (a NamedTuple: every run defines this class,
    and a frozen dataclass costs about six times as much to define)."""

    root: str = "/"
    strict: bool = False
    expect: tuple[str, ...] = ()
    expect_runtime: bool = False  # also prove, with rocminfo, that the ROCm runtime sees them
    timeout: float = DEFAULT_TIMEOUT
    rocminfo: str | None = None
    ignore: frozenset[str] = frozenset()
    gpus_per_worker: int = 0
    # requires_gpus, requires_rocm, ...: "auto" (the plugin's unless the project registers
    # the name; misuse is an error only in modules that use the plugin), "on", "off"
    generic_markers: str = "auto"
    #: where each setting given came from: ``{"ignore": "PYTEST_THEROCK_IGNORE"}``
    sources: Mapping[str, str] = {}  # never mutated: resolve() gives each its own


#: The yes/no words, in any case: those pytest's own ``bool`` ini values take
#: (``_pytest.config._strtobool``), so an environment variable and an ini key agree.
TRUE = ("1", "true", "t", "yes", "y", "on")
FALSE = ("0", "false", "f", "no", "n", "off")


def _bool(text: str, name: str) -> bool:
    value = text.strip().lower()
    if value in TRUE:
        return True
    if value in ("", *FALSE):
        return False
    raise ValueError(f"{name}: expected true or false, got {text!r}")


def _timeout(value: object, source: str) -> float:
    from .parsing import TIMEOUT, parse_number  # imported only when a value is given

    return parse_number(str(value), source, TIMEOUT)


def _per_worker(value: object, source: str) -> int:
    from .parsing import GPUS_PER_WORKER, parse_whole

    return parse_whole(str(value), source, GPUS_PER_WORKER)


def _words(values: Sequence[str]) -> tuple[str, ...]:
    return tuple(w for v in values for w in v.replace(",", " ").split())


def _word_list(value: object | None, source: str) -> tuple[str, ...]:
    """A list setting's words: from a text (split on commas and blanks) or a list of
    texts (an ini ``linelist``, a TOML array); ValueError naming ``source`` for anything
    else, such as a number in a TOML array (``therock_expect = [1151]``)."""
    if value is None:
        return ()
    texts: list[str] = []
    for text in list(value) if isinstance(value, (list, tuple)) else [value]:
        if not isinstance(text, str):
            raise ValueError(f"{source}: expected words, got {text!r} ({type(text).__name__})")
        texts.append(text)
    return _words(texts)


LISTS = ("expect", "ignore")  # settings that are lists of words


def _blank(value: object | None, key: str) -> bool:
    """No value: None, blank text, or, for a list setting (:data:`LISTS`, split on commas
    and blanks), text holding no words (``","``). A blank source falls through to the
    next one: it never switches a setting off."""
    if value is None or isinstance(value, bool):
        return value is None
    texts = [str(v) for v in value] if isinstance(value, (list, tuple)) else [str(value)]
    if key in LISTS:
        return not _words(texts)
    return not "".join(texts).strip()


def resolve(
    cli: Mapping[str, object | None],
    environ: Mapping[str, str],
    ini: Mapping[str, object],
) -> Settings:
    """Merge the three sources; raises ValueError naming the bad setting and its source
    (``PYTEST_THEROCK_STRICT: expected true or false, got 'maybe'``).

    An empty value counts as unset, so ``--therock-root=`` and an empty
    ``PYTEST_THEROCK_ROOT`` mean the default, ``/``, as in ``pytest-therock doctor``.
    A value holding no words (``""``, ``" "``, ``","``) is empty: the next source
    decides, so ``PYTEST_THEROCK_EXPECT=,`` never switches off an ini ``therock_expect``.
    """
    sources: dict[str, str] = {}

    def pick(key: str, env_name: str | None) -> tuple[object | None, str]:
        value: object | None = None
        if not _blank(cli.get(key), key):
            value, source = cli[key], f"--therock-{key.replace('_', '-')}"
        elif env_name and not _blank(environ.get(env_name), key):
            value, source = environ[env_name], env_name
        elif not _blank(ini.get(key), key):
            value, source = ini[key], f"ini therock_{key}"
        else:
            return None, key
        sources[key] = source
        return value, source

    root, root_src = pick("root", "PYTEST_THEROCK_ROOT")
    if root and not os.path.isdir(str(root)):
        raise ValueError(f"{root_src}: {root} is not a directory")
    if root:  # a stray setting must not turn a GPU runner into a machine without one
        from .sysroot import not_a_machine, root_problem

        why = None if root_problem(str(root)) else not_a_machine(str(root))
        if why is not None:
            raise ValueError(f"{root_src}: {root} is {why}")
    strict, strict_src = pick("strict", "PYTEST_THEROCK_STRICT")
    expect, expect_src = pick("expect", "PYTEST_THEROCK_EXPECT")
    runtime, runtime_src = pick("expect_runtime", "PYTEST_THEROCK_EXPECT_RUNTIME")
    timeout, timeout_src = pick("timeout", "PYTEST_THEROCK_TIMEOUT")
    rocminfo, _ = pick("rocminfo", "PYTEST_THEROCK_ROCMINFO")
    ignore, ignore_src = pick("ignore", "PYTEST_THEROCK_IGNORE")
    per_worker, per_worker_src = pick("gpus_per_worker", "PYTEST_THEROCK_GPUS_PER_WORKER")
    generic, generic_src = pick("generic_markers", "PYTEST_THEROCK_GENERIC_MARKERS")
    expected = _word_list(expect, expect_src)
    if expected:
        from .targets import parse_target_pattern  # the markers' pattern language

        for target in expected:
            try:
                parse_target_pattern(target)
            except ValueError as exc:
                raise ValueError(f"{expect_src}: {exc}") from None
    return Settings(
        root=str(root) if root else "/",
        strict=strict
        if isinstance(strict, bool)
        else bool(strict and _bool(str(strict), strict_src)),
        expect=expected,
        expect_runtime=runtime
        if isinstance(runtime, bool)
        else bool(runtime and _bool(str(runtime), runtime_src)),
        timeout=_timeout(timeout, timeout_src) if timeout is not None else DEFAULT_TIMEOUT,
        rocminfo=str(rocminfo) if rocminfo else None,
        ignore=frozenset(_word_list(ignore, ignore_src)),
        gpus_per_worker=_per_worker(per_worker, per_worker_src) if per_worker is not None else 0,
        generic_markers=_generic(generic, generic_src),
        sources=sources,
    )


def _generic(value: object | None, name: str) -> str:
    """``auto``, ``on`` or ``off``, in any case; ``on`` and ``off`` may also be written as
    the yes/no words the other settings take (:data:`TRUE`, :data:`FALSE`)."""
    word = "auto" if value is None else str(value).strip().lower()
    if word == "auto":
        return word
    if word in TRUE or word in FALSE:
        return "on" if _bool(word, name) else "off"
    raise ValueError(f"{name}: expected auto, on or off, got {str(value)!r}")


#: The settings, each an option ``--therock-<name>``, a variable and an ini key ``therock_<name>``.
NAMES = (
    "root",
    "strict",
    "expect",
    "expect_runtime",
    "timeout",
    "rocminfo",
    "ignore",
    "gpus_per_worker",
    "generic_markers",
)
#: What pytest's ini types mean, for a value it refuses.
_INI_EXPECTED = {"strict": "true or false", "expect_runtime": "true or false"}


def read_ini(getini: Callable[[str], object]) -> dict[str, object]:
    """Each ``therock_<name>`` ini value, as ``config.getini`` converts it.

    Raises ValueError naming the key (``ini therock_strict: ...``) when pytest refuses
    the value: ``therock_strict = maybe`` (pytest raises ValueError, or UsageError since
    pytest 9), an unclosed quote in a list, a TOML value of the wrong type.
    """
    from pytest import UsageError  # pytest is loaded: the plugin runs inside it

    values: dict[str, object] = {}
    for name in NAMES:
        try:
            values[name] = getini(f"therock_{name}")
        except (ValueError, TypeError, UsageError) as exc:
            expected = _INI_EXPECTED.get(name)
            hint = f"; expected {expected}" if expected else ""
            raise ValueError(f"ini therock_{name}: {exc}{hint}") from None
    return values
