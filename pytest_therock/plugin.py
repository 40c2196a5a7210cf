"""pytest-therock: options, hooks and fixtures. The logic lives in plain modules."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from . import _skip_assert_rewrite
from .settings import NAMES, Settings, read_ini, resolve
from .state import TheRock

if TYPE_CHECKING:
    from .environment import Environment
    from .markers import Exclusion, Requirement
    from .memory import GpuMemory
    from .rocminfo import RocminfoReport

STATE = pytest.StashKey[TheRock]()
XFAIL_ADDED = pytest.StashKey[bool]()  # an xfail_on_gfx already added its xfail (reruns)
WORKER_KEY = "therock_env"
VARIABLES_KEY = "therock_visible_devices"
STEPPED_ASIDE_KEY = "therock_stepped_aside"  # worker to controller: names left to the project


#: name -> (argument help, description) for ``pytest --markers``.
MARKERS: dict[str, tuple[str, str]] = {
    "requires_gfx": (
        "*targets",
        "run only on a GPU matching one of the targets, globs or families, "
        "e.g. requires_gfx('gfx1151', 'gfx110*', 'gfx94X-dcgpu').",
    ),
    "requires_gfx<target>": (
        "",
        "shorthand for requires_gfx('<target>'), for every target and family in "
        "rocm-bootstrap's table: requires_gfx1151, requires_gfx942, requires_gfx90a, "
        "requires_gfx11 (family), requires_gfx115x, requires_gfx94x (sub-family).",
    ),
    "requires_gtt_gb": (
        "n",
        "run only if a GPU can allocate at least n GiB (2**30 bytes) of GTT: the smaller "
        "of the driver's GTT size and the TTM limit.",
    ),
    "requires_gpu_memory_gb": (
        "n",
        "run only if a GPU can allocate at least n GiB (2**30 bytes) from the pool its "
        "allocations come from: VRAM on a discrete GPU; on an APU the carve-out or GTT, "
        "as the driver decides.",
    ),
    "requires_vram_gb": ("n", "run only if a GPU has at least n GiB (2**30 bytes) of VRAM."),
    "requires_gpus": ("n", "run only if at least n AMD GPUs are visible."),
    "requires_apu": ("", "run only on an APU (integrated GPU sharing system RAM)."),
    "requires_rocm": (
        "specifier",
        "run only if the installed ROCm (/opt/rocm or TheRock's Python SDK) matches a "
        "version specifier, e.g. requires_rocm('>=7.0').",
    ),
    "requires_torch_rocm": (
        "[specifier]",
        "run only if torch is a ROCm build (its version ends in +rocmX.Y), optionally "
        "for a ROCm matching the specifier, e.g. requires_torch_rocm('>=6.4').",
    ),
    "skip_on_gfx": (
        "*targets, reason=None",
        "skip on a GPU matching one of the targets (the patterns of requires_gfx).",
    ),
    "xfail_on_gfx": (
        "*targets, reason=None, strict=xfail_strict, raises=None",
        "expect the test to fail on a GPU matching one of the targets.",
    ),
}

#: Marker names the plugin reads; which of them are its own is decided per session.
WATCHED = ("requires_", "skip_on_gfx", "xfail_on_gfx")
OWN = ("requires_gtt_gb", "skip_on_gfx", "xfail_on_gfx")
_GFX_MARKER = re.compile(rb"\brequires_(gfx\w+)")


def is_own(name: str) -> bool:
    """Always the plugin's: ``requires_gfx*``, ``requires_gtt_gb``, ``*_on_gfx``."""
    return name.startswith("requires_gfx") or name in OWN


def is_generic(name: str) -> bool:
    """A ``requires_*`` name other projects use too (``requires_gpus``, ``requires_rocm``, ...):
    the plugin's unless the project registers it, or ``therock_generic_markers`` is off."""
    return name.startswith("requires_") and not is_own(name)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    _forget_dropped_modules()  # the first hook of each session: before any lazy import
    _skip_assert_rewrite([getattr(pluginmanager, "rewrite_hook", None)])
    from . import newhooks

    pluginmanager.add_hookspecs(newhooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("therock", "ROCm / TheRock environment (pytest-therock)")

    def add(name: str, ini_type: Any, help: str, **kwargs: Any) -> None:
        group.addoption(
            f"--therock-{name.replace('_', '-')}", dest=f"therock_{name}", help=help, **kwargs
        )
        parser.addini(f"therock_{name}", help=help, type=ini_type)

    add(
        "root",
        "string",
        "filesystem root to detect from, e.g. a snapshot (env PYTEST_THEROCK_ROOT; default /)",
        metavar="DIR",
    )
    add(
        "strict",
        "bool",
        "fail, not skip, tests whose hardware requirement is unmet (env PYTEST_THEROCK_STRICT)",
        action="store_true",
        default=None,
    )
    add(
        "expect",
        "args",
        "stop before any test unless a GPU of this target is present; repeatable "
        "(env PYTEST_THEROCK_EXPECT)",
        action="append",
        metavar="TARGET",
    )
    add(
        "expect_runtime",
        "bool",
        "run rocminfo once at session start and stop unless the ROCm runtime lists the "
        "expected GPUs (--therock-expect's, else the KFD topology's) "
        "(env PYTEST_THEROCK_EXPECT_RUNTIME)",
        action="store_true",
        default=None,
    )
    add(
        "timeout",
        "string",
        "seconds before a hung rocminfo is killed (env PYTEST_THEROCK_TIMEOUT; default 30)",
        metavar="SECONDS",
    )
    add(
        "rocminfo",
        "string",
        "path of rocminfo (env PYTEST_THEROCK_ROCMINFO; default: $ROCM_PATH/bin, "
        "/opt/rocm/bin, then PATH)",
        metavar="PATH",
    )
    add(
        "ignore",
        "args",
        "silence a diagnostic code; repeatable (env PYTEST_THEROCK_IGNORE)",
        action="append",
        metavar="CODE",
    )
    add(
        "gpus_per_worker",
        "string",
        "under pytest-xdist, give each worker its own N GPUs "
        "(env PYTEST_THEROCK_GPUS_PER_WORKER; default 0: off)",
        metavar="N",
    )
    add(
        "generic_markers",
        "string",  # not "bool": unset must differ from false
        "whether requires_gpus, requires_vram_gb, requires_apu, requires_rocm and "
        "requires_torch_rocm are pytest-therock's: auto (default: yes, unless the project "
        "registers the name itself), on, off (env PYTEST_THEROCK_GENERIC_MARKERS)",
        metavar="auto|on|off",
    )


def _asks_for_help(config: pytest.Config) -> bool:
    """``--help``, ``--markers``, ``--fixtures``: how a user finds out what to fix."""
    option = config.option
    return bool(
        getattr(option, "help", False)
        or getattr(option, "markers", False)
        or getattr(option, "showfixtures", False)
    )


def _settings(config: pytest.Config) -> Settings:
    """The session's settings; a bad value is one usage error naming its source."""
    try:
        cli = {name: config.getoption(f"therock_{name}") for name in NAMES}
        settings = resolve(cli, os.environ, read_ini(config.getini))
        if settings.ignore:
            from .diagnostics import check_codes

            # A project's pytest_therock_diagnostics hook may add codes of its own.
            hook = config.pluginmanager.hook.pytest_therock_diagnostics
            source = settings.sources.get("ignore", "--therock-ignore")
            check_codes(settings.ignore, source, others=bool(hook.get_hookimpls()))
    except ValueError as exc:
        if _asks_for_help(config):  # `pytest --help` must work, to show how to fix it
            return Settings()
        from .printable import printable  # --therock-root as typed: no control sequences

        raise pytest.UsageError(f"pytest-therock: {printable(str(exc))}") from None
    return settings


def _forget_dropped_modules() -> None:
    """Unlink submodules that are no longer in ``sys.modules`` from the package.

    pytester's in-process runs drop the modules first imported during a run. The
    package keeps them as attributes, and ``from . import x`` would take that stale
    module (with exception classes other than this session's) instead of importing
    it again.
    """
    package = sys.modules[__package__]
    for name, value in list(vars(package).items()):
        module = getattr(value, "__name__", None)
        if type(value) is type(sys) and module and sys.modules.get(module) is not value:
            delattr(package, name)


def pytest_configure(config: pytest.Config) -> None:
    settings = _settings(config)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        variables = workerinput.get(VARIABLES_KEY, {})
        os.environ.update(variables)  # before any test, and before HIP is initialised
        state = TheRock(settings, workerinput.get(WORKER_KEY), variables)
    else:
        # pytest_xdist_auto_num_workers (before configure) may have detected already.
        state = config.stash.get(STATE, None) or TheRock(settings)
        tx = getattr(config.option, "tx", None)
        if settings.gpus_per_worker and tx and getattr(config.option, "dist", "no") != "no":
            _assign_gpus(state, tx)
    config.stash[STATE] = state
    _register_markers(config, state)
    config.pluginmanager.register(HardwareSummary(config, state), "therock-summary")


def _marker_line(name: str, args: str, doc: str) -> str:
    return f"{name}({args}): {doc}" if args else f"{name}: {doc}"


def _register_markers(config: pytest.Config, state: TheRock) -> None:
    """Register the plugin's markers, and step aside for the generic names a project owns.

    ``requires_gfx<target>`` is listed once, as a pattern; the names themselves are
    registered when a test module or conftest mentions them (:func:`_register_gfx_names`),
    so ``--strict-markers`` accepts them and ``pytest --markers`` stays short.
    """
    project = _project_marker_names(config, state)
    for name, (args, doc) in MARKERS.items():
        generic = state.settings.generic_markers
        if is_generic(name) and (generic == "off" or (generic == "auto" and name in project)):
            continue
        line = _marker_line(name, args, doc)
        config.addinivalue_line("markers", line)
        state.marker_lines[name] = line
    if not config.option.markers:
        for plugin in config.pluginmanager.get_plugins():
            _scan_conftest(config, state, plugin)
    # `-m "not requires_gfx1151"` under --strict-markers: pytest checks the names it uses.
    expression = getattr(config.option, "markexpr", "") or ""
    _register_gfx_names(config, state, expression.encode())


def _project_marker_names(config: pytest.Config, state: TheRock) -> set[str]:
    """Generic marker names registered by someone else (ini ``markers``, ``addinivalue_line``)."""
    lines: list[str] = config.getini("markers")
    ours = set(state.marker_lines.values())
    names = {line.split(":")[0].split("(")[0].strip() for line in lines if line not in ours}
    return {name for name in names if is_generic(name)}


def _refresh_owners(config: pytest.Config, state: TheRock) -> None:
    """Step aside for generic names the project registered since (conftests load late)."""
    if state.settings.generic_markers != "auto":
        return
    lines: list[str] = config.getini("markers")
    if len(lines) == state.marker_lines_seen:
        return
    for name in _project_marker_names(config, state) - state.stepped_aside:
        state.stepped_aside.add(name)
        line = state.marker_lines.pop(name, None)
        if line in lines:
            lines.remove(line)  # the ini list pytest keeps: --markers shows theirs only
    state.marker_lines_seen = len(lines)


def _is_ours(name: str, state: TheRock) -> bool:
    if is_own(name):
        return True
    generic = state.settings.generic_markers
    return generic == "on" or (generic == "auto" and name not in state.stepped_aside)


def _register_gfx_names(config: pytest.Config, state: TheRock, source: bytes) -> None:
    """Register the ``requires_gfx<target>`` names ``source`` uses, before it is imported."""
    if b"requires_gfx" not in source:
        return
    wanted = {m.decode() for m in _GFX_MARKER.findall(source)} - state.gfx_names_seen
    if not wanted:
        return
    state.gfx_names_seen |= wanted
    from .targets import parse_target_pattern

    for target in sorted(wanted):
        try:
            parse_target_pattern(target)
        except ValueError:
            continue  # a typo stays unknown: its collection error says what was meant
        config.addinivalue_line("markers", f"requires_{target}: requires_gfx('{target}')")


def _scan_conftest(config: pytest.Config, state: TheRock, plugin: object) -> None:
    path = getattr(plugin, "__file__", None)
    if path and os.path.basename(path) == "conftest.py":
        with contextlib.suppress(OSError):
            _register_gfx_names(config, state, Path(path).read_bytes())


def _conftest_registered(plugin: object, manager: pytest.PytestPluginManager) -> None:
    """A conftest loaded during collection: register the target markers it names."""
    config = manager.get_plugin("pytestconfig")
    if not isinstance(config, pytest.Config):
        return
    state = config.stash.get(STATE, None)
    if state is not None and not config.option.markers:
        _scan_conftest(config, state, plugin)


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> None:
    """Before a test module is imported: register the ``requires_gfx<target>`` names it uses."""
    state = parent.config.stash.get(STATE, None)
    if state is None:
        return
    try:
        source = module_path.read_bytes()
    except OSError:
        return
    _register_gfx_names(parent.config, state, source)


def _assign_gpus(state: TheRock, tx: list[str]) -> None:
    from .workers import SliceBook, gpu_slices, worker_ids

    ids = worker_ids(tx)
    try:
        visible = len(state.env().visible_gpus)
        slices = gpu_slices(visible, state.settings.gpus_per_worker, len(ids))
    except ValueError as exc:
        raise _per_worker_error(state, exc) from None
    state.gpu_slices = SliceBook(ids, slices)


def _per_worker_error(state: TheRock, exc: ValueError) -> pytest.UsageError:
    source = state.settings.sources.get("gpus_per_worker", "--therock-gpus-per-worker")
    return pytest.UsageError(f"pytest-therock: {source}: {exc}")


def state_of(config: pytest.Config) -> TheRock:
    return config.stash[STATE]


class XdistHooks:
    """pytest-xdist's hooks, registered only when xdist is (as pytest-randomly does)."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_auto_num_workers(self, config: pytest.Config) -> int | None:
        """``-n auto`` with ``--therock-gpus-per-worker=N``: one worker per N visible GPUs.

        Leaves the count to xdist (CPUs) without the setting, or when
        ``PYTEST_XDIST_AUTO_NUM_WORKERS`` names it.
        """
        if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
            return None
        state = config.stash.get(STATE, None)
        if state is None:  # called before pytest_configure
            state = config.stash[STATE] = TheRock(_settings(config))
        per_worker = state.settings.gpus_per_worker
        if not per_worker:
            return None
        visible = len(state.env().visible_gpus)
        if 0 < visible < per_worker:  # not one worker's worth: say so, as -n 1 does
            from .workers import gpu_slices

            try:
                gpu_slices(visible, per_worker, 1)
            except ValueError as exc:
                raise _per_worker_error(state, exc) from None
        return visible // per_worker

    def pytest_configure_node(self, node: Any) -> None:
        """Detect once in the controller; hand the result and its GPU slice to each worker."""
        state = node.config.stash.get(STATE, None)
        if state is None:  # a config this plugin did not configure (xdist's own tests make some)
            return
        env = state.env()
        node.workerinput[WORKER_KEY] = env.to_json()
        if state.gpu_slices is not None:
            from .workers import worker_variables

            worker_id = str(node.workerinput["workerid"])
            try:
                positions = state.gpu_slices.take(worker_id)
            except ValueError as exc:
                raise _per_worker_error(state, exc) from None
            node.workerinput[VARIABLES_KEY] = worker_variables(env, positions)

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """A worker finished or crashed: its GPUs go to the worker that replaces it; the
        marker names its conftests registered are reported by the controller."""
        state = node.config.stash.get(STATE, None)
        if state is None:
            return
        if state.gpu_slices is not None:
            state.gpu_slices.release(str(node.workerinput["workerid"]))
        output = getattr(node, "workeroutput", None) or {}
        state.stepped_aside.update(str(name) for name in output.get(STEPPED_ASIDE_KEY, ()))


def pytest_plugin_registered(plugin: object, manager: pytest.PytestPluginManager) -> None:
    # xdist's plugin module, however it was loaded (entry point "xdist", -p xdist.plugin).
    # (pytest 8.1 added a plugin_name argument; pytest 7.4 has only these two.)
    if getattr(plugin, "__name__", None) == "xdist.plugin" and not manager.has_plugin(
        "therock-xdist"
    ):
        manager.register(XdistHooks(), "therock-xdist")
    if type(plugin).__name__ == "DSession":
        _stop_workers_before_they_start(plugin, manager)
    _conftest_registered(plugin, manager)


def _stop_workers_before_they_start(dsession: object, manager: pytest.PytestPluginManager) -> None:
    """``-n`` with a proof that fails: take xdist's controller out before it starts any
    worker (it starts them at session start), so the session stops as without ``-n``:
    the header, one stop line, and the JUnit report saying why."""
    config = manager.get_plugin("pytestconfig")
    state = config.stash.get(STATE, None) if isinstance(config, pytest.Config) else None
    if state is None or not isinstance(config, pytest.Config) or not _proofs_asked(config):
        return
    if state.prove():
        for name in ("terminaldistreporter",):
            other = manager.get_plugin(name)
            if other is not None:
                manager.unregister(other)
        manager.unregister(dsession)


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = state_of(config)
    env = state.env()
    verbose = int(config.getoption("verbose"))
    extra = [
        f"therock: {line}"
        for lines in config.hook.pytest_therock_report_header(env=env, config=config)
        # A str (or any single value) is one line, as in pytest's own pytest_report_header.
        for line in (lines if isinstance(lines, list | tuple) else [lines])
    ]
    if state.quiet(verbose):  # imports nothing more than detection did
        return _printable([f"therock: {state.no_gpu_line()}", *extra])
    from .report import header_lines

    _collect_extra_diagnostics(config, state)
    lines = header_lines(env, state.diagnostics(), verbose)
    if state.gpu_slices is not None:
        from .workers import worker_variables

        # The GPU numbers the worker gets (its ROCR_VISIBLE_DEVICES), those of the lines above,
        # not positions among the visible ones: they differ under a user's filter.
        shown = "; ".join(
            f"{worker} -> GPU {worker_variables(env, s)['ROCR_VISIBLE_DEVICES']}"
            for worker, s in state.gpu_slices.planned.items()
        )
        lines.append(f"therock: xdist: {state.settings.gpus_per_worker} GPU(s) per worker: {shown}")
    if state.runtime is not None:
        verdict = "runtime" if state.runtime.ok else "runtime proof failed"
        lines.append(f"therock: {verdict}: {state.runtime.message}")
    if verbose > 0:
        lines += _marker_owner_lines(config, state)
    return _printable(lines + extra)


def _printable(lines: list[str]) -> list[str]:
    from .printable import printable

    return [printable(line) for line in lines]


def _marker_owner_lines(config: pytest.Config, state: TheRock) -> list[str]:
    """Which generic marker names the plugin left to the project (header, ``-v``)."""
    if state.settings.generic_markers == "off":
        generic = ", ".join(name for name in MARKERS if is_generic(name))
        return [f"therock: generic markers off (therock_generic_markers): {generic}"]
    line = _stepped_aside_line(config, state)
    return [f"therock: {line}"] if line else []


def _stepped_aside_line(config: pytest.Config, state: TheRock) -> str | None:
    """``markers registered by this project, left to it: requires_gpus``, for the names
    not reported yet: each once, in the header if registered by then, else at the end
    (a subdirectory's conftest registers its markers during collection)."""
    _refresh_owners(config, state)
    names = sorted(state.stepped_aside - state.stepped_aside_said)
    if not names:
        return None
    state.stepped_aside_said.update(names)
    return f"markers registered by this project, left to it: {', '.join(names)}"


def _collect_extra_diagnostics(config: pytest.Config, state: TheRock) -> None:
    """Ask ``pytest_therock_diagnostics`` implementations once; keep what is well formed."""
    if state.extra_diagnostics is not None:
        return
    from .diagnostics import checked

    found = config.hook.pytest_therock_diagnostics(env=state.env(), config=config)
    state.extra_diagnostics = [checked(d) for batch in found for d in batch or ()]


def _proofs_asked(config: pytest.Config) -> bool:
    settings = state_of(config).settings
    return not hasattr(config, "workerinput") and bool(settings.expect or settings.expect_runtime)


def _stop_message(reasons: list[str]) -> str:
    """``pytest-therock: A; B; no test was run``: one prefix, however many checks failed."""
    return "pytest-therock: " + "; ".join(reasons) + "; no test was run"


def _stop(reasons: list[str]) -> None:
    from .printable import printable

    pytest.exit(printable(_stop_message(reasons)), returncode=pytest.ExitCode.INTERRUPTED)


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """``--therock-expect``, ``--therock-expect-runtime``: stop before collecting, after
    the header (and, with ``--junitxml``, the report) shows what was found."""
    if _proofs_asked(session.config):
        reasons = state_of(session.config).prove()
        if reasons:
            _junit_stopped(session.config, reasons)
            _stop(reasons)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    """Check the plugin's own markers of collected tests: misuse is a collection error.

    Only its own names (:func:`is_own`): whether a generic name is the plugin's is
    decided at setup, once every conftest (a subdirectory's too) could register it.
    What a test requires is read again at setup (:func:`pytest_runtest_setup`), so a
    marker added later (``pytest_collection_modifyitems``) counts too.
    """
    report = yield
    if not report.passed:
        return report
    inherited = [m for m in collector.iter_markers() if m.name.startswith(WATCHED)]
    errors: dict[str, None] = {}
    state = state_of(collector.config)
    for item in report.result:
        if not isinstance(item, pytest.Item):
            continue
        own = [m for m in item.own_markers if m.name.startswith(WATCHED)]
        if _carries_plugin(item, own + inherited):
            state.module_uses_plugin[str(item.path)] = True
        if not own and not inherited:
            continue
        try:
            read_marks(item, own + inherited, state)  # closest first
        except ValueError as exc:  # a MarkerError
            errors[f"{item.nodeid}: marker {exc}"] = None
    if errors:
        report.outcome = "failed"
        report.longrepr = "pytest-therock: invalid marker\n" + "\n".join(errors)
    return report


def read_marks(
    item: pytest.Item, marks: list[pytest.Mark], state: TheRock, at_setup: bool = False
) -> tuple[list[Requirement], list[Exclusion]]:
    """The plugin's requirements and exclusions among ``marks``, each parsed once per session.

    Raises :class:`pytest_therock.markers.MarkerError` for a misused marker of the plugin.
    At collection (not ``at_setup``) only the plugin's own names are read. At setup,
    when every conftest has had its say, a generic marker (``requires_gpus``, ...) is
    the plugin's unless the project registered the name; one the plugin cannot read is
    misuse where the test's module uses the plugin (:func:`_uses_plugin`), else left
    alone, as another project's (:func:`_unread_generic`).
    """
    __tracebackhide__ = True
    if at_setup:
        _refresh_owners(item.config, state)
    reqs: list[Requirement] = []
    exclusions: list[Exclusion] = []
    for mark in marks:
        if not (is_own(mark.name) if not at_setup else _is_ours(mark.name, state)):
            continue
        # By the Mark object first (kept, so its id stays unique): thousands of tests
        # share a decorator, and this spares them the marker's repr.
        seen = state.by_mark.get(id(mark))
        kind, found = seen[1:] if seen is not None and seen[0] is mark else _parse(mark, state)
        if kind == "error":
            auto = state.settings.generic_markers == "auto"
            if auto and is_generic(mark.name) and not _uses_plugin(item, state):
                _unread_generic(item, mark.name, found, state)  # left alone, but not silently
                continue
            raise found
        if kind == "requirement":
            reqs.append(found)
        elif kind == "exclusion":
            exclusions.append(found)
    return reqs, exclusions


class MarkerWarning(pytest.PytestWarning):
    """A generic marker pytest-therock could not read, and left alone (the test runs)."""


def _where(item: pytest.Item) -> str:
    """``tests/test_x.py:12``: where the test is defined (its marks carry no place)."""
    path, line, _ = item.location
    return f"{path}:{line + 1}" if line is not None else path


def _unread_generic(item: pytest.Item, name: str, error: Exception, state: TheRock) -> None:
    """A generic marker no one registered, that the plugin cannot read, in a module that
    does not otherwise use the plugin: maybe another project's, maybe a typo of ours.

    Decided at setup, once every conftest (a subdirectory's too) could register the
    name. Under ``--therock-strict`` (a runner that must not go green by accident) it is
    an error of that test; else a warning at that test's line, and the test runs. Each
    such test warns: with ``-W error::...MarkerWarning`` each is an error, and with
    ``-n`` the count is the same as without (workers share no memory of what was said).
    """
    __tracebackhide__ = True
    from .markers import MarkerError

    if state.settings.strict:
        raise MarkerError(
            f"{error} ({_where(item)}; under --therock-strict an unregistered {name} is "
            f"pytest-therock's: register it in the ini `markers` if it is your project's)"
        ) from error
    item.warn(
        MarkerWarning(
            f"pytest-therock: {error}; not read, so not applied "
            f"(register {name} in the ini `markers` if it is your project's; "
            f"an error under --therock-strict)"
        )
    )


def _parse(mark: pytest.Mark, state: TheRock) -> tuple[str, Any]:
    """Parse a marker once per distinct marker (by its repr) and remember it by object."""
    from .markers import Exclusion, MarkerError, Requirement, marker_key, parse_any

    key = marker_key(mark.name, mark.args, mark.kwargs)
    if key not in state.parsed:
        try:
            state.parsed[key] = parse_any(mark.name, mark.args, mark.kwargs)
        except MarkerError as exc:
            state.parsed[key] = exc
    found = state.parsed[key]
    kind = (
        "error"
        if isinstance(found, MarkerError)
        else "requirement"
        if isinstance(found, Requirement)
        else "exclusion"
        if isinstance(found, Exclusion)
        else "none"
    )
    state.by_mark[id(mark)] = (mark, kind, found)
    return kind, found


#: The plugin's fixtures: a test that requests one (directly or through another
#: fixture) uses the plugin.
FIXTURES = ("therock_env", "gpu_arch", "rocminfo", "gtt_info")


def _carries_plugin(item: pytest.Item, marks: list[pytest.Mark]) -> bool:
    """The test carries one of the plugin's own markers or requests one of its fixtures
    (the one that serves it, not a project's fixture of the same name)."""
    if any(is_own(m.name) for m in marks):
        return True
    info = getattr(item, "_fixtureinfo", None)
    defs = getattr(info, "name2fixturedefs", None) or {}
    for name in FIXTURES:
        chain = defs.get(name)
        if chain and getattr(chain[-1].func, "__module__", None) == __name__:
            return True
    return False


def _holds_plugin(namespace: dict[str, Any]) -> bool:
    """A module's namespace holds something from pytest_therock (``import pytest_therock``,
    ``from pytest_therock import per_target``)."""
    for value in list(namespace.values()):
        try:
            name = value.__name__ if type(value) is type(sys) else value.__module__
        except Exception:  # a lazy proxy may raise anything: it is not ours
            continue
        if isinstance(name, str) and (name == __package__ or name.startswith(f"{__package__}.")):
            return True
    return False


def _uses_plugin(item: pytest.Item, state: TheRock) -> bool:
    """Whether the test's module uses pytest-therock: one of its tests carries the
    plugin's own markers or requests its fixtures (seen at collection; this test's
    late markers too), or its namespace holds something from the package."""
    path = str(item.path)
    if not state.module_uses_plugin.get(path):
        module = item.getparent(pytest.Module)
        namespace = getattr(module, "obj", None) if module is not None else None
        held = _holds_plugin(vars(namespace)) if namespace is not None else False
        state.module_uses_plugin[path] = held or _carries_plugin(item, list(item.iter_markers()))
    return state.module_uses_plugin[path]


REQUIRES_PROPERTY = "therock_requires"
SKIPPED_PROPERTY = "therock_unmet"
INVALID_PROPERTY = "therock_invalid_marker"
GTT_NEED_PROPERTY = "therock_gtt_needed_bytes"
GPU_MEMORY_NEED_PROPERTY = "therock_gpu_memory_needed_bytes"


def _unmet(config: pytest.Config, reason: str) -> None:
    from .printable import printable

    reason = printable(reason)  # it names GPUs and quotes tools: machine text
    if state_of(config).settings.strict:
        pytest.fail(f"{reason} [--therock-strict]", pytrace=False)
    # Reported at the test's location, as pytest's own skipif markers are.
    raise pytest.skip.Exception(reason, _use_item_location=True)


def _property(item: pytest.Item, name: str, value: object) -> None:
    """Once per test, however often it is set up (pytest-rerunfailures)."""
    if (name, value) not in item.user_properties:
        item.user_properties.append((name, value))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    __tracebackhide__ = True  # a MarkerWarning made an error (-W error): the test, not us
    marks = [m for m in item.iter_markers() if m.name.startswith(WATCHED)]
    if not marks:
        return
    state = state_of(item.config)
    invalid: str | None = None
    try:
        reqs, exclusions = read_marks(item, marks, state, at_setup=True)
    except ValueError as exc:  # a MarkerError: added after collection, or decided at setup
        invalid = _invalid_marker(item, marks, state, exc)
    if invalid is not None:  # outside the except clause: one line, no chained traceback
        pytest.fail(invalid, pytrace=False)
    if not reqs and not exclusions:
        return
    env = state.env()
    if reqs:
        reqs.sort(key=lambda r: r.marker)  # the reason does not depend on decorator order
        # Properties travel with the reports (to the xdist controller, into JUnit XML).
        _property(item, REQUIRES_PROPERTY, " ".join(dict.fromkeys(r.marker for r in reqs)))
        unmet = [(r, state.unmet(r, env)) for r in reqs]
        reasons = [reason for _, reason in unmet if reason is not None]
        # Requirements about a GPU are met by one GPU together: where some are met (by
        # some GPU) and not all by one, each GPU says what it lacks.
        some_met = any(why is None for r, why in unmet if r.on_gpu is not None)
        together = state.unmet_together(reqs, env) if some_met else None
        if together is not None:
            unmet = [(r, together if r.on_gpu is not None else why) for r, why in unmet]
            reasons = [reason for _, reason in unmet if reason is not None]
        if reasons:
            _skipped_by_project(item)  # the project's own skip comes first
            from .printable import printable

            reason = "; ".join(dict.fromkeys(reasons))
            _property(item, SKIPPED_PROPERTY, printable(reason))
            gtt = max((r.gtt_bytes or 0 for r, why in unmet if why is not None), default=0)
            if gtt:
                _property(item, GTT_NEED_PROPERTY, gtt)
            memory = max(
                (r.gpu_memory_bytes or 0 for r, why in unmet if why is not None), default=0
            )
            if memory:
                _property(item, GPU_MEMORY_NEED_PROPERTY, memory)
            _unmet(item.config, reason)
    xfails: list[pytest.Mark] = []
    for exclusion in exclusions:
        why = exclusion.applies(env)
        if why is None:
            continue
        if not exclusion.xfail:
            _skipped_by_project(item)
            raise pytest.skip.Exception(why, _use_item_location=True)
        options: dict[str, Any] = {"reason": why}
        if exclusion.strict is not None:
            options["strict"] = exclusion.strict
        if exclusion.raises is not None:
            options["raises"] = exclusion.raises
        xfails.append(pytest.mark.xfail(**options).mark)
    if xfails and not item.stash.get(XFAIL_ADDED, False):  # once, however often it is set up
        item.stash[XFAIL_ADDED] = True
        _add_xfail(item, xfails)


def _skipped_by_project(item: pytest.Item) -> None:
    """Skip the test as the project asks, if it does: ``skip``, a ``skipif`` whose
    condition holds, or ``xfail(run=False)`` (not under ``--runxfail``), with its own
    reason, as pytest's skipping plugin would (``_pytest.skipping.pytest_runtest_setup``).

    Called before the plugin skips (or, under ``--therock-strict``, fails) a test. Both
    setup hooks are ``tryfirst`` and the plugin's runs first, so without this an unmet
    requirement would hide the project's reason, and fail a test the project does not
    run; where the requirement is met, pytest's hook decides as it always does.
    """
    from _pytest.skipping import evaluate_skip_marks, evaluate_xfail_marks, xfailed_key

    skipped = evaluate_skip_marks(item)
    if skipped is not None:
        raise pytest.skip.Exception(skipped.reason, _use_item_location=True)
    if item.config.option.runxfail:
        return
    xfailed = evaluate_xfail_marks(item)
    if xfailed is not None and not xfailed.run:
        item.stash[xfailed_key] = xfailed
        raise pytest.xfail.Exception("[NOTRUN] " + xfailed.reason, pytrace=False)


def _invalid_marker(
    item: pytest.Item, marks: list[pytest.Mark], state: TheRock, exc: ValueError
) -> str:
    """The setup error of a test with a misused marker (a MarkerError), and its
    properties: ``therock_requires`` and ``therock_invalid_marker`` (the marker's own
    error, without the test's place, so tests sharing a misused marker share a line in
    the end-of-run block), so the block and JUnit count it as pytest does: an error."""
    from .markers import marker_key
    from .printable import printable

    message = str(exc)
    if f"({_where(item)}" not in message:  # marks carry no place: the test's
        message += f" ({_where(item)})"
    written = {
        marker_key(m.name, m.args, m.kwargs)
        for m in marks
        if m.name.startswith("requires_") and _is_ours(m.name, state)
    }
    if written:
        _property(item, REQUIRES_PROPERTY, " ".join(sorted(written)))
    # _unread_generic raises its --therock-strict error from the marker's own error
    _property(item, INVALID_PROPERTY, printable(str(exc.__cause__ or exc)))
    return f"pytest-therock: invalid marker {message}"


class _OneMark:
    """An item that shows pytest's skipping plugin one mark: how pytest reads it alone."""

    def __init__(self, item: pytest.Item, mark: pytest.Mark) -> None:
        self.config = item.config
        self.mark = mark

    def iter_markers(self, name: str | None = None) -> list[pytest.Mark]:
        return [self.mark]


def _add_xfail(item: pytest.Item, ours: list[pytest.Mark]) -> None:
    """Put the ``xfail_on_gfx`` marks that apply, with the test's own xfail that applies,
    as one xfail first on the test: pytest's first matching xfail mark is the one it
    evaluates (``_pytest.skipping.evaluate_xfail_marks``), and no mark is dropped
    (:func:`pytest_therock.markers.combine_xfails`)."""
    from _pytest.skipping import evaluate_xfail_marks, xfailed_key

    from .markers import XfailMark, combine_xfails

    read = [evaluate_xfail_marks(_OneMark(item, m)) for m in ours]  # type: ignore[arg-type]
    xfails: list[Any] = [x for x in read if x is not None]
    theirs = evaluate_xfail_marks(item)  # the test's own xfail marks, as pytest reads them
    if theirs is not None:
        reason = f"xfail: {theirs.reason}" if theirs.reason else "xfail"
        xfails.append(XfailMark(reason, theirs.run, theirs.strict, theirs.raises))
    item.add_marker(pytest.mark.xfail(**combine_xfails(xfails)), append=False)
    # pytest's skipping plugin reads the marks at setup; its hook may have run before ours.
    item.stash[xfailed_key] = evaluate_xfail_marks(item)


class HardwareSummary:
    """Counts hardware-marked tests from their reports (also those of xdist workers).

    A test counts once, by its last setup: a rerun (pytest-rerunfailures) is the same test.
    """

    def __init__(self, config: pytest.Config, state: TheRock) -> None:
        self.config = config
        self.state = state
        self.tally = state.tally

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "setup":
            return
        props = {name: str(value) for name, value in report.user_properties}
        if REQUIRES_PROPERTY in props:
            from .state import setup_outcome

            outcome = setup_outcome(
                report.passed, report.skipped, report.outcome, hasattr(report, "wasxfail")
            )
            reason = props.get(SKIPPED_PROPERTY)
            if INVALID_PROPERTY in props:
                reason = f"invalid marker {props[INVALID_PROPERTY]}"
            self.tally.record(reason, outcome, report.nodeid)
        for kind, name in (("gtt", GTT_NEED_PROPERTY), ("gpu", GPU_MEMORY_NEED_PROPERTY)):
            if name in props:
                from .parsing import decimal

                need = decimal(props[name])
                needed = self.tally.memory_needed
                if need is not None:
                    needed[kind] = max(needed.get(kind, 0), need)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        verbose = int(self.config.getoption("verbose"))
        if self.state.detected and self.state.quiet(verbose):
            return  # no AMD GPU here, and nobody asked: the header said so
        lines = self.tally.summary()
        late = _stepped_aside_line(self.config, self.state) if verbose > 0 else None
        lines += [late] if late else []
        needed = self.tally.memory_needed
        if needed and self.state.detected:
            from .diagnostics import memory_below_need

            env = self.state.env()
            found = [(n, memory_below_need(env, n, k)) for k, n in needed.items()]
            unmet = [(n, d) for n, d in found if d is not None]  # one plan: the largest need
            diag = max(unmet, key=lambda nd: nd[0])[1] if unmet else None
            if diag is not None and diag.code not in self.state.settings.ignore:
                lines.append(str(diag))
        if lines:
            terminalreporter.write_sep("=", "therock: hardware requirements")
            from .printable import printable

            for line in lines:
                terminalreporter.write_line(printable(line))


@pytest.hookimpl(hookwrapper=True)
def pytest_sessionstart(session: pytest.Session) -> Generator[None, None, None]:
    """Prove the expected GPUs before the header; under xdist, stop before workers start."""
    config = session.config
    if _proofs_asked(config):
        reasons = state_of(config).prove()  # the runtime proof's outcome goes in the header
        if reasons and config.pluginmanager.has_plugin("dsession"):
            reporter = config.pluginmanager.get_plugin("terminalreporter")
            if reporter is not None:
                for line in pytest_report_header(config):
                    reporter.write_line(line)
            _stop(reasons)
    yield
    _junit_properties(config, state_of(config))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker: the generic names its conftests registered, for the controller's
    ``-v`` summary (it collects nothing, so it never loads a subdirectory's conftest)."""
    config = session.config
    output = getattr(config, "workeroutput", None)
    state = config.stash.get(STATE, None)
    if output is not None and state is not None:
        _refresh_owners(config, state)
        output[STEPPED_ASIDE_KEY] = sorted(state.stepped_aside)


STOPPED_PROPERTY = "therock_stopped"


def _junit_stopped(config: pytest.Config, reasons: list[str]) -> None:
    """A session stopped before any test still says why in its JUnit report: the
    ``therock_stopped`` property, and one error entry (``pytest-therock::expect``) so
    a dashboard counts a failure, not an empty green run."""
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is None:
        return
    from .printable import printable

    reason = printable(_stop_message(reasons))
    xml.add_global_property(STOPPED_PROPERTY, reason)
    report = pytest.CollectReport("pytest-therock::expect", "failed", reason, [])
    xml.pytest_collectreport(report)


def _junit_properties(config: pytest.Config, state: TheRock) -> None:
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is None or hasattr(config, "workerinput"):
        return
    from .report import junit_properties

    _collect_extra_diagnostics(config, state)
    for name, value in junit_properties(state.env(), state.diagnostics(), state.versions()):
        xml.add_global_property(name, value)
    if state.runtime is not None:
        verdict = "ok" if state.runtime.ok else "failed"
        xml.add_global_property("therock_runtime", f"{verdict}: {state.runtime.message}")


@pytest.fixture(scope="session")
def therock_env(pytestconfig: pytest.Config) -> Environment:
    """The detected ROCm environment (:class:`pytest_therock.Environment`)."""
    return state_of(pytestconfig).env()


@pytest.fixture(scope="session")
def gpu_arch(pytestconfig: pytest.Config, therock_env: Environment) -> str:
    """The gfx target of the first visible AMD GPU, e.g. ``"gfx1151"``."""
    from .markers import describe_found

    gpus = therock_env.visible_gpus
    if not gpus or gpus[0].gfx_target is None:
        found = describe_found(therock_env) if not gpus else f"{gpus[0].label} without a gfx target"
        _unmet(pytestconfig, f"gpu_arch needs an AMD GPU, found {found}")
    return str(gpus[0].gfx_target)


@pytest.fixture(scope="session")
def rocminfo(pytestconfig: pytest.Config) -> RocminfoReport:
    """``rocminfo``, parsed (:class:`pytest_therock.rocminfo.RocminfoReport`); run once, lazily.

    Skips (fails in strict mode) with the tool's own reason when it is missing or fails.
    """
    state = state_of(pytestconfig)
    report, status = state.rocminfo()
    if report is None or not status.ok:
        from .absence import found_nothing  # no AMD GPU here: no advice to load a driver

        _unmet(pytestconfig, found_nothing(state.env(), "rocminfo", status) or status.message)
    assert report is not None
    return report


@pytest.fixture(scope="session")
def gtt_info(pytestconfig: pytest.Config, therock_env: Environment) -> GpuMemory:
    """The memory of the first visible AMD GPU (:class:`pytest_therock.GttInfo`), in bytes:
    ``pool`` ("VRAM", "GTT", "unknown") and ``allocatable_bytes`` (what a process can
    allocate from it), ``usable_bytes`` (GTT: the smaller of the driver's GTT size
    ``total_bytes`` and TTM's ``limit_bytes``), ``vram_total_bytes`` (an APU's carve-out),
    ``system_memory_bytes`` (RAM the OS sees), ``installed_ram_bytes``; None when unknown."""
    from .markers import describe_found
    from .memory import gpu_memory

    if not therock_env.visible_gpus:
        _unmet(pytestconfig, f"gtt_info needs an AMD GPU, found {describe_found(therock_env)}")
    return gpu_memory(therock_env, therock_env.visible_gpus[0])
