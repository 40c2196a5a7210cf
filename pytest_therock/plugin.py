"""pytest-therock: options, hooks and fixtures. The logic lives in plain modules."""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from .settings import Settings, resolve
from .state import TheRock

if TYPE_CHECKING:
    from .environment import Environment
    from .markers import Requirement
    from .memory import GpuMemory
    from .rocminfo import RocminfoReport

STATE = pytest.StashKey[TheRock]()
REQUIREMENTS = pytest.StashKey[list["Requirement"]]()
WORKER_KEY = "therock_env"
VARIABLES_KEY = "therock_visible_devices"


#: name -> (argument help, description) for ``pytest --markers``.
MARKERS: dict[str, tuple[str, str]] = {
    "requires_gfx": (
        "*targets",
        "run only on a GPU matching one of the targets, globs or families, "
        "e.g. requires_gfx('gfx1151', 'gfx110*', 'gfx94X-dcgpu').",
    ),
    "requires_gfx<target>": (
        "",
        "shorthand for requires_gfx('<target>'): requires_gfx1151, requires_gfx942, "
        "requires_gfx90a, requires_gfx11 (family), requires_gfx115x (sub-family).",
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
}


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
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


_SETTING_NAMES = (
    "root",
    "strict",
    "expect",
    "expect_runtime",
    "timeout",
    "rocminfo",
    "ignore",
    "gpus_per_worker",
)


def _settings(config: pytest.Config) -> Settings:
    cli = {name: config.getoption(f"therock_{name}") for name in _SETTING_NAMES}
    ini = {name: config.getini(f"therock_{name}") for name in _SETTING_NAMES}
    try:
        settings = resolve(cli, os.environ, ini)
        if settings.ignore:
            from .diagnostics import check_codes

            # A project's pytest_therock_diagnostics hook may add codes of its own.
            hook = config.pluginmanager.hook.pytest_therock_diagnostics
            source = settings.sources.get("ignore", "--therock-ignore")
            check_codes(settings.ignore, source, others=bool(hook.get_hookimpls()))
    except ValueError as exc:
        raise pytest.UsageError(f"pytest-therock: {exc}") from None
    if settings.expect:
        from .targets import parse_target_pattern

        for target in settings.expect:
            try:
                parse_target_pattern(target)
            except ValueError as exc:
                source = settings.sources.get("expect", "--therock-expect")
                raise pytest.UsageError(f"{source}: {exc}") from None
    return settings


def pytest_configure(config: pytest.Config) -> None:
    for name, (args, doc) in MARKERS.items():
        config.addinivalue_line("markers", f"{name}({args}): {doc}" if args else f"{name}: {doc}")
    # Every target and family, so --strict-markers accepts them and no test warns. (Costs
    # the import of rocm-bootstrap's table, ~4 ms; an ini filterwarnings line instead would
    # cost ~20 us per test, since pytest parses those filters for every item.)
    from .targets import known_marker_targets

    for target in known_marker_targets():
        config.addinivalue_line("markers", f"requires_{target}: requires_gfx('{target}')")
    try:
        settings = _settings(config)
    except pytest.UsageError:
        if not config.getoption("help", False):
            raise
        settings = Settings()  # `pytest --help` must print whatever the environment says
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
    config.pluginmanager.register(HardwareSummary(state), "therock-summary")


def _assign_gpus(state: TheRock, tx: list[str]) -> None:
    from .workers import SliceBook, gpu_slices, worker_ids

    ids = worker_ids(tx)
    try:
        visible = len(state.env().visible_gpus)
        slices = gpu_slices(visible, state.settings.gpus_per_worker, len(ids))
    except ValueError as exc:
        raise pytest.UsageError(f"--therock-gpus-per-worker: {exc}") from None
    state.gpu_slices = SliceBook(ids, slices)


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
        return len(state.env().visible_gpus) // per_worker if per_worker else None

    def pytest_configure_node(self, node: Any) -> None:
        """Detect once in the controller; hand the result and its GPU slice to each worker."""
        state = state_of(node.config)
        env = state.env()
        node.workerinput[WORKER_KEY] = env.to_json()
        if state.gpu_slices is not None:
            from .workers import worker_variables

            worker_id = str(node.workerinput["workerid"])
            try:
                positions = state.gpu_slices.take(worker_id)
            except ValueError as exc:
                raise pytest.UsageError(f"--therock-gpus-per-worker: {exc}") from None
            node.workerinput[VARIABLES_KEY] = worker_variables(env, positions)

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """A worker finished or crashed: its GPUs go to the worker that replaces it."""
        state = state_of(node.config)
        if state.gpu_slices is not None:
            state.gpu_slices.release(str(node.workerinput["workerid"]))


def pytest_plugin_registered(plugin: object, manager: Any) -> None:
    # xdist's plugin module, however it was loaded (entry point "xdist", -p xdist.plugin).
    # (pytest 8.1 added a plugin_name argument; pytest 7.4 has only these two.)
    if getattr(plugin, "__name__", None) == "xdist.plugin" and not manager.has_plugin(
        "therock-xdist"
    ):
        manager.register(XdistHooks(), "therock-xdist")


def pytest_report_header(config: pytest.Config) -> list[str]:
    from .report import header_lines

    state = state_of(config)
    env = state.env()
    _collect_extra_diagnostics(config, state)
    lines = header_lines(env, state.diagnostics(), int(config.getoption("verbose")))
    if state.gpu_slices is not None:
        shown = "; ".join(
            f"{worker} -> GPU {','.join(map(str, s))}"
            for worker, s in state.gpu_slices.planned.items()
        )
        lines.append(f"therock: xdist: {state.settings.gpus_per_worker} GPU(s) per worker: {shown}")
    if state.runtime is not None:
        verdict = "runtime" if state.runtime.ok else "runtime proof failed"
        lines.append(f"therock: {verdict}: {state.runtime.message}")
    for extra in config.hook.pytest_therock_report_header(env=env, config=config):
        # A str (or any single value) is one line, as in pytest's own pytest_report_header.
        extra = extra if isinstance(extra, list | tuple) else [extra]
        lines += [f"therock: {line}" for line in extra]
    from .printable import printable

    return [printable(line) for line in lines]


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


def _stop(reasons: list[str]) -> None:
    from .printable import printable

    pytest.exit(
        printable("; ".join(f"pytest-therock: {r}" for r in reasons) + "; no test was run"),
        returncode=pytest.ExitCode.INTERRUPTED,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """``--therock-expect``, ``--therock-expect-runtime``: stop before collecting, after
    the header (and, with ``--junitxml``, the report) shows what was found."""
    if _proofs_asked(session.config):
        reasons = state_of(session.config).prove()
        if reasons:
            _stop(reasons)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    """Check the ``requires_*`` markers of collected tests: misuse is a collection error."""
    outcome = yield
    report = outcome.get_result()
    if not report.passed:
        return
    errors: dict[str, None] = {}
    inherited = [m for m in collector.iter_markers() if m.name.startswith("requires_")]
    state = state_of(collector.config)
    for item in report.result:
        if not isinstance(item, pytest.Item):
            continue
        own = [m for m in item.own_markers if m.name.startswith("requires_")]
        if not own and not inherited:
            continue
        marks = [(m.name, m.args, m.kwargs) for m in own + inherited]  # closest first
        from .markers import MarkerError, requirements

        try:
            item.stash[REQUIREMENTS] = requirements(marks, state.parsed)
        except MarkerError as exc:
            errors[f"{item.nodeid}: marker {exc}"] = None
    if errors:
        report.outcome = "failed"
        report.longrepr = "pytest-therock: invalid marker\n" + "\n".join(errors)


REQUIRES_PROPERTY = "therock_requires"
SKIPPED_PROPERTY = "therock_unmet"
GTT_NEED_PROPERTY = "therock_gtt_needed_bytes"
GPU_MEMORY_NEED_PROPERTY = "therock_gpu_memory_needed_bytes"


def _unmet(config: pytest.Config, reason: str) -> None:
    from .printable import printable

    reason = printable(reason)  # it names GPUs and quotes tools: machine text
    if state_of(config).settings.strict:
        pytest.fail(f"{reason} [--therock-strict]", pytrace=False)
    # Reported at the test's location, as pytest's own skipif markers are.
    raise pytest.skip.Exception(reason, _use_item_location=True)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    reqs = item.stash.get(REQUIREMENTS, None)
    if not reqs:
        return
    state = state_of(item.config)
    env = state.env()
    # Properties travel with the reports (to the xdist controller, into JUnit XML).
    item.user_properties.append((REQUIRES_PROPERTY, " ".join(r.marker for r in reqs)))
    for req in reqs:
        reason = state.unmet(req, env)
        if reason is not None:
            from .printable import printable

            item.user_properties.append((SKIPPED_PROPERTY, printable(reason)))
            if req.gtt_bytes:
                item.user_properties.append((GTT_NEED_PROPERTY, req.gtt_bytes))
            if req.gpu_memory_bytes:
                item.user_properties.append((GPU_MEMORY_NEED_PROPERTY, req.gpu_memory_bytes))
            _unmet(item.config, reason)


class HardwareSummary:
    """Counts hardware-marked tests from their reports (also those of xdist workers)."""

    def __init__(self, state: TheRock) -> None:
        self.state = state
        self.tally = state.tally

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "setup":
            return
        props = {name: str(value) for name, value in report.user_properties}
        if REQUIRES_PROPERTY in props:
            self.tally.record(props.get(SKIPPED_PROPERTY), report.skipped)
        for kind, name in (("gtt", GTT_NEED_PROPERTY), ("gpu", GPU_MEMORY_NEED_PROPERTY)):
            if name in props:
                from .parsing import decimal

                need = decimal(props[name])
                needed = self.tally.memory_needed
                if need is not None:
                    needed[kind] = max(needed.get(kind, 0), need)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        lines = self.tally.summary()
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
    report, status = state_of(pytestconfig).rocminfo()
    if report is None or not status.ok:
        _unmet(pytestconfig, status.message)
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
