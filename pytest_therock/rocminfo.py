"""Parse the text ``rocminfo`` prints (stdout and stderr together).

rocminfo (ROCm/rocminfo ``rocminfo.cc``) prints ``label`` padded to 25 columns and
``value`` padded to 35 (``%-25s%-35s``), indented 2 spaces a level. A label longer than
25 columns runs into its value (``WatchPts on Addr. Ranges:1``), a few labels end in
``::``, padding counts bytes (so a ``™`` shifts it) and pastes often lose it. So this
parser splits each line at its first colon and tracks the section it is in; it never
relies on columns or indentation.

Failures (``ROCk module is NOT loaded``, ``Unable to open /dev/kfd ...``,
``hsa api call failure`` / ``HSA_STATUS_ERROR_*``) raise :class:`RocminfoError`, even
when a header line such as ``ROCk module version 6.10.5 is loaded`` came first.

Output cut short still parses, even with no whole agent left (a report with no agents,
``complete`` False), as long as what is there is rocminfo's normal output (its first
line, headings, ``Agent N`` or its labels) rather than an error: an agent counts once
its ``ISA Info:`` line arrived (all its pools came before it); the agent being printed
when the text stops is dropped.
But a cut output cannot say how many GPUs the machine has, so the report says what is
missing (``RocminfoReport.missing``, ``complete``): its end (no ``*** Done ***``, which
rocminfo prints last), its beginning (no ``HSA Agents`` banner and the first agent is not
``Agent 1``: a paste that starts mid-output), or agents in between (``Agent N`` headers,
numbered from 1 by rocminfo, that skip a number). Any input raises nothing but
:class:`RocminfoError`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

__all__ = ["Agent", "Pool", "RocminfoError", "RocminfoReport", "parse_rocminfo"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # CSI sequences: rocminfo colours errors
# Digits are bounded: int() refuses strings over 4300 digits.
_INT = re.compile(r"([0-9]{1,20})\s*(?:\(0x[0-9a-fA-F]{1,16}\))?", re.ASCII)  # "5510(0x1586)"
_SIZE = re.compile(r"([0-9]{1,20})\s*(?:\(0x[0-9a-fA-F]{1,16}\))?\s*KB", re.ASCII)
_GFX = re.compile(r"gfx[0-9a-f]{2,6}", re.ASCII)
_KFD = re.compile(r"ROCk module version (\S+) is loaded")
#: rocminfo's first line: "ROCk module is loaded" (ROCm 5 and older), "ROCk module version
#: 6.10.5 is loaded" (rocminfo.cc ``CheckInitialState()``), or under WSL "WSL environment
#: detected." instead.
_FIRST = re.compile(r"ROCk module (?:version \S+ )?is loaded|WSL environment detected\.")
#: Labels rocminfo.cc prints for the system, an agent, a pool or an ISA (a sample): a text
#: made of them is rocminfo's normal output even when it holds no whole agent.
_LABELS = frozenset(
    (
        "Runtime Version",
        "Runtime Ext Version",
        "System Timestamp Freq.",
        "Sig. Max Wait Duration",
        "Machine Model",
        "System Endianness",
        "Mwaitx",
        "XNACK enabled",
        "DMAbuf Support",
        "VMM Support",
        "Name",
        "Uuid",
        "Marketing Name",
        "Vendor Name",
        "Feature",
        "Profile",
        "Float Round Mode",
        "Max Queue Number",
        "Queue Min Size",
        "Queue Max Size",
        "Queue Type",
        "Node",
        "Device Type",
        "Cache Info",
        "Chip ID",
        "ASIC Revision",
        "Cacheline Size",
        "Max Clock Freq. (MHz)",
        "BDFID",
        "Internal Node ID",
        "Compute Unit",
        "SIMDs per CU",
        "Shader Engines",
        "Shader Arrs. per Eng.",
        "WatchPts on Addr. Ranges",
        "Memory Properties",
        "Features",
        "Pool Info",
        "Segment",
        "Size",
        "Allocatable",
        "Alloc Granule",
        "Alloc Recommended Granule",
        "Alloc Alignment",
        "Accessible by all",
        "ISA Info",
        "Machine Models",
        "Profiles",
        "Default Rounding Mode",
        "Fast f16",
        "Workgroup Max Size",
        "Workgroup Max Size per Dimension",
        "Grid Max Size",
        "Grid Max Size per Dimension",
        "FBarrier Max Size",
        "Wavefront Size",
        "Coherent Host Access",
        "Max Waves Per CU",
        "Max Work-item Per CU",
        "Packet Processor uCode",
        "SDMA engine uCode",
        "IOMMU Support",
    )
)
_HEADINGS = ("HSA System Attributes", "HSA Agents", "*** Done ***")
_NUMBERED = re.compile(r"(Agent|ISA|Pool) [0-9]+")
_GROUP = re.compile(r'is not member of "([^"]+)" group')

#: AMD's "Compatibility matrices" for Radeon list the Adrenalin driver of each ROCm for WSL
#: release (https://rocm.docs.amd.com/projects/radeon/en/docs-6.2/docs/compatibility.html,
#: one page per ROCm version). The thunk_proxy assertion of ROCm/ROCm#4584 and #4460 was
#: such a mismatch: the 6.4 WSL release fixed it.
_WSL_MATRIX = "rocm.docs.amd.com, Radeon: Compatibility matrices, for your ROCm version"
_SEE_DMESG = "check `sudo dmesg | grep -i -e amdgpu -e kfd` for driver errors"
_OOR_HINT = (
    "HIP runtime initialisation failed (HSA_STATUS_ERROR_OUT_OF_RESOURCES): the runtime found "
    "no GPU it can use. Check that this GPU is supported by this ROCm build (an unsupported gfx "
    "target may need HSA_OVERRIDE_GFX_VERSION), that /dev/kfd and /dev/dri/renderD* are "
    "accessible (the render group; in a container `--device /dev/kfd --device /dev/dri`), and "
    f"{_SEE_DMESG}; a reboot clears a wedged driver"
)
_HSA_HINT = (
    "HIP runtime initialisation failed (an HSA runtime call returned an error). Check that "
    "the ROCm user space matches the kernel driver, that /dev/kfd and /dev/dri are "
    f"accessible, and {_SEE_DMESG}"
)
# (code, pattern, what failed and what to do); the first pattern that matches a line wins.
# Patterns stay text, compiled (and cached by `re`) only when an output looks like a failure.
_FAILURES: tuple[tuple[str, str, str], ...] = (
    (
        "wsl-driver-mismatch",
        r"thunk_proxy|QueryAdapterInfo|/wsl/\S*libhsakmt|props\.EngineId",
        "rocminfo crashed in ROCm's WSL layer (libhsakmt's thunk_proxy, which asks the Windows "
        "AMD driver through /dev/dxg): the Windows driver (Adrenalin) and this ROCm for WSL "
        "do not match, or the driver does not support this GPU under WSL. Install the Adrenalin "
        "version that AMD's compatibility matrix lists for this ROCm release under WSL "
        f"({_WSL_MATRIX}), or the ROCm for WSL release made for your driver, then run "
        "`wsl --shutdown` and try again. WSL has no amdgpu kernel module: dmesg will not help",
    ),
    (
        "rock-not-loaded",
        r"ROCk module is NOT loaded",
        "the amdgpu kernel module is not loaded. Load it with `sudo modprobe amdgpu`, then "
        "check `dmesg | grep amdgpu` for why it did not load (no supported GPU, missing "
        "firmware, Secure Boot, or a VM without a GPU passed through)",
    ),
    (
        "rock-not-live",
        r"ROCk module is NOT live",
        "the amdgpu kernel module is loaded but did not finish initialising; "
        f"{_SEE_DMESG} (firmware, unsupported GPU), then reload the module or reboot",
    ),
    (
        "kfd-permission-denied",
        r"Unable to open /dev/kfd.{0,200}Permission denied",
        "this user may not open /dev/kfd. Add the user to the {group} group "
        "(`sudo usermod -aG {group} $USER`; older systems also use `video`) and log in again",
    ),
    (
        "kfd-missing",
        r"Unable to open /dev/kfd.{0,200}No such file or directory",
        "/dev/kfd does not exist. Inside a container pass the devices "
        "(`docker run --device /dev/kfd --device /dev/dri ...`); on the host load amdgpu "
        f"(`sudo modprobe amdgpu`) and {_SEE_DMESG}",
    ),
    (
        "kfd-no-gpu",
        r"Unable to open /dev/kfd.{0,200}Cannot allocate memory",
        "the kernel driver could not set up any GPU for compute, so /dev/kfd cannot be opened "
        "(`Cannot allocate memory`); usually the GPU is not supported by KFD: look for "
        "`not supported` or `missing in supported_devices` in `sudo dmesg | grep -i kfd`",
    ),
    (
        "unsupported-gpu",
        r"GPU node has an unrecognized id",
        "the ROCm runtime does not know this GPU (`Agent creation failed`): this ROCm build "
        "predates the GPU or does not support it. Use a ROCm (or TheRock) release that lists "
        "its gfx target",
    ),
    (
        "kfd-open-failed",
        r"Unable to open /dev/kfd",
        "rocminfo could not open /dev/kfd. Check `ls -l /dev/kfd` and the user's groups; "
        "inside a container pass `--device /dev/kfd --device /dev/dri` (and allow them in the "
        f"device cgroup); {_SEE_DMESG}",
    ),
    (
        "out-of-resources",
        r"HSA_STATUS_ERROR_OUT_OF_RESOURCES|Call returned (?:4104|0x1008)\b",
        _OOR_HINT,
    ),
    ("hsa-init-failed", r"HSA_STATUS_ERROR_\w+|Call returned", _HSA_HINT),
    ("hsa-init-failed", r"hsa api call failure", _HSA_HINT),
    (
        "crashed",
        (
            r"Segmentation fault|Bus error|Illegal instruction|Assertion .{0,500} failed"
            r"|\(core dumped\)|^Aborted\b"
        ),
        f"rocminfo crashed. {_SEE_DMESG}; check that the ROCm user space matches the driver",
    ),
)


class RocminfoError(ValueError):
    """rocminfo failed; the message says what failed and what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self) -> tuple[type[RocminfoError], tuple[str, str]]:
        return type(self), (self.code, str(self))


class Pool(NamedTuple):
    """One memory pool of an agent."""

    segment: str  # "GLOBAL", "GROUP", ...
    flags: tuple[str, ...]  # ("KERNARG", "FINE GRAINED"); () for an empty flag list
    size_bytes: int | None  # rocminfo prints KB
    allocatable: bool | None


class Agent(NamedTuple):
    """One HSA agent (CPU, GPU, or DSP such as an NPU)."""

    name: str  # may be "" (empty CPU names exist)
    marketing_name: str | None
    vendor_name: str | None
    device_type: str  # "CPU", "GPU", "DSP"; "" if the line was missing
    node: int | None
    uuid: str | None
    chip_id: int | None
    compute_units: int | None
    simds_per_cu: int | None
    wavefront_size: int | None
    bdfid: int | None
    isa_names: tuple[str, ...]  # e.g. "amdgcn-amd-amdhsa--gfx942:sramecc+:xnack-"
    pools: tuple[Pool, ...]
    memory_properties: tuple[str, ...] = ()  # ("APU",) on an APU (ROCm 6.0+)

    @property
    def is_apu(self) -> bool:
        return "APU" in self.memory_properties

    @property
    def is_gpu(self) -> bool:
        return self.device_type == "GPU"

    @property
    def gfx_target(self) -> str | None:
        """``gfx942`` for a GPU: the first specific ISA (generic ones skipped), else the name."""
        if not self.is_gpu:
            return None
        for target in (*map(_gfx, self.isa_names), _gfx(self.name)):
            if target:
                return target
        return None

    @property
    def memory_bytes(self) -> int | None:
        """Size of the first GLOBAL pool, coarse grained preferred (what HIP reports)."""
        pools = [p for p in self.pools if p.segment == "GLOBAL"]
        coarse = [p for p in pools if "COARSE GRAINED" in p.flags]
        return (coarse or pools)[0].size_bytes if pools else None


class RocminfoReport(NamedTuple):
    """``rocminfo``'s output, parsed."""

    runtime_version: str | None
    kfd_version: str | None  # "6.16.6" from "ROCk module version 6.16.6 is loaded"
    wsl: bool  # "WSL environment detected."
    system: Mapping[str, str]  # HSA System Attributes, read-only
    agents: tuple[Agent, ...]
    #: What a cut output lacks: "its end (no `*** Done ***`)", "its beginning (...)",
    #: "agents 3 to 4"; empty for a whole output.
    missing: tuple[str, ...] = ()

    def __hash__(self) -> int:  # the mapping proxy is not hashable: hash what it came with
        return hash((self.runtime_version, self.kfd_version, self.wsl, self.agents, self.missing))

    @property
    def complete(self) -> bool:
        """The whole output, from its banner to ``*** Done ***``: its GPUs can be counted."""
        return not self.missing

    @property
    def gpus(self) -> tuple[Agent, ...]:
        return tuple(a for a in self.agents if a.is_gpu)

    def incomplete_reason(self) -> str | None:
        """One line saying the output is cut and what it lacks; None when complete."""
        if not self.missing:
            return None
        return (
            f"rocminfo output is incomplete (missing {' and '.join(self.missing)}): it lists "
            f"{len(self.gpus)} GPU agent(s) but cannot tell how many GPUs there are"
        )


def _gfx(name: str) -> str | None:
    # "amdgcn-amd-amdhsa--gfx90a:sramecc+:xnack-" or "gfx90a" -> "gfx90a"
    target = name.rpartition("--")[2].partition(":")[0].strip()
    return target if _GFX.fullmatch(target) else None


def _int(value: str | None) -> int | None:
    match = _INT.fullmatch(value) if value is not None else None
    return int(match.group(1)) if match else None


def _pool(fields: dict[str, str]) -> Pool:
    segment, _, flags = fields.get("Segment", "").partition(";")
    flags = flags.strip().removeprefix("FLAGS:")
    size = _SIZE.fullmatch(fields.get("Size", ""))
    allocatable = {"TRUE": True, "FALSE": False}.get(fields.get("Allocatable", ""))
    return Pool(
        segment=segment.strip(),
        flags=tuple(f.strip() for f in flags.split(",") if f.strip()),
        size_bytes=int(size.group(1)) * 1024 if size else None,
        allocatable=allocatable,
    )


class _Draft:
    """An agent while its lines arrive."""

    __slots__ = ("fields", "isas", "listed", "pools")

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.pools: list[dict[str, str]] = []
        self.isas: list[str] = []
        self.listed = False  # its "ISA Info:" line arrived, so its pools are complete

    def build(self) -> Agent:
        f = self.fields
        return Agent(
            name=f.get("Name", ""),
            marketing_name=f.get("Marketing Name"),
            vendor_name=f.get("Vendor Name"),
            device_type=f.get("Device Type", ""),
            node=_int(f.get("Node")),
            uuid=f.get("Uuid") or None,  # some GPUs print an empty Uuid
            chip_id=_int(f.get("Chip ID")),
            compute_units=_int(f.get("Compute Unit")),
            simds_per_cu=_int(f.get("SIMDs per CU")),
            wavefront_size=_int(f.get("Wavefront Size")),
            bdfid=_int(f.get("BDFID")),
            isa_names=tuple(self.isas),
            pools=tuple(_pool(p) for p in self.pools),
            memory_properties=tuple(f.get("Memory Properties", "").split()),
        )


def _excerpt(lines: list[str], last: bool) -> str:
    ordered = reversed(lines) if last else iter(lines)
    shown = list(itertools.islice((ln for ln in ordered if any(map(str.isalnum, ln))), 3))
    text = " | ".join(reversed(shown) if last else shown)[:200]  # "=====" rules skipped
    return repr(text) if text else "no output"


#: Every pattern of _FAILURES needs one of these: text with none is no failure output.
_FAILURE_WORDS = (
    "ROCk module is NOT",
    "Unable to open /dev/kfd",
    "unrecognized id",
    "HSA_STATUS_ERROR",
    "Call returned",
    "hsa api call failure",
    "Segmentation fault",
    "Bus error",
    "Illegal instruction",
    "Assertion",
    "(core dumped)",
    "Aborted",
    "thunk_proxy",
    "QueryAdapterInfo",
    "/wsl/",
    "EngineId",
)


#: Characters of a line the failure patterns look at (an error line is short).
_LINE_LIMIT = 4096


def _check_failure(lines: list[str]) -> None:
    # One search per pattern over the whole text (patterns never cross a line): the
    # first pattern that matches wins, and its first matching line is quoted.
    # Each line cut to _LINE_LIMIT: with the bounded patterns, linear work per line.
    text = "\n".join(line[:_LINE_LIMIT] for line in lines)
    if not any(word in text for word in _FAILURE_WORDS):
        return
    for code, pattern, advice in _FAILURES:
        found = re.search(pattern, text, re.MULTILINE)
        if found:
            start = text.rfind("\n", 0, found.start()) + 1
            end = text.find("\n", found.end())
            line = text[start : end if end >= 0 else len(text)]
            group = next((m[1] for m in map(_GROUP.search, lines) if m), "render")
            said = line if len(line) <= 300 else line[:300] + "..."
            advice = advice.replace("{group}", group)
            raise RocminfoError(code, f"rocminfo failed: {advice}. rocminfo said: {said!r}")


def parse_rocminfo(text: str) -> RocminfoReport:
    """Parse rocminfo output; raise :class:`RocminfoError` for a failure or unknown text."""
    lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
    _check_failure(lines)
    system: dict[str, str] = {}
    drafts: list[_Draft] = []
    section = ""  # "system", "agent", "pool", "isa"
    isa_pending = done = wsl = banner = False
    kfd_version = None
    numbers: list[int] = []  # "Agent N" headers, in order
    first = next((line for line in lines if line), "")
    known = False  # a line only rocminfo's normal output has, or two of its labels
    labels: set[str] = set()
    for line in lines:
        kfd = _KFD.fullmatch(line)
        numbered = _NUMBERED.fullmatch(line)
        label, colon, value = line.partition(":")
        label, value = " ".join(label.split()), value.lstrip(":").strip()
        if colon and label in _LABELS:
            labels.add(label)
        known = (
            known
            or bool(numbered or _FIRST.fullmatch(line))
            or line in _HEADINGS
            or len(labels) > 1  # one "Name:" or "Size:" line may be anybody's text
        )
        if kfd:
            kfd_version = kfd.group(1)
        elif line == "WSL environment detected.":
            wsl = True
        elif line == "HSA System Attributes":
            section = "system"
        elif line == "HSA Agents":
            section, banner = "", banner or not drafts
        elif line == "*** Done ***":
            done, section = True, ""
        elif numbered and numbered.group(1) == "Agent":
            drafts.append(_Draft())
            section = "agent"
            numbers.append(int(line.split()[1][:18]))  # int() refuses 4300+ digits
        elif numbered and numbered.group(1) == "ISA" and drafts:
            isa_pending, section = True, "isa"
        elif not colon or not label or numbered:
            continue  # "Pool N" (pools start at "Segment:"), "x  1024(0x400)", rules
        elif label == "Name" and not done:
            if section == "isa" and (isa_pending or value.startswith("amdgcn")):
                drafts[-1].isas.append(value)
                isa_pending = False
                continue
            if not drafts or "Name" in drafts[-1].fields:
                drafts.append(_Draft())  # `rocminfo --gpu` prints no "Agent N" headers
            drafts[-1].fields["Name"] = value
            section = "agent"
        elif section == "system":
            system.setdefault(label, value)
        elif label in ("Pool Info", "ISA Info") and drafts:
            section = "pool" if label == "Pool Info" else "isa"
            drafts[-1].listed |= section == "isa"
        elif label == "Segment" and section in ("agent", "pool"):
            drafts[-1].pools.append({label: value})
            section = "pool"
        elif section == "pool" and drafts[-1].pools:
            drafts[-1].pools[-1].setdefault(label, value)
        elif section == "agent":
            drafts[-1].fields.setdefault(label, value)
    agents = tuple(d.build() for d in drafts if done or d.listed)
    beginning = banner or numbers[:1] == [1] or bool(_FIRST.fullmatch(first))
    missing = _missing(first, beginning, numbers, done)
    if not any(map(str.isalnum, text)):
        raise RocminfoError(
            "empty",
            "rocminfo printed nothing (or its output was lost); run `rocminfo` by hand and "
            "keep its whole output",
        )
    if not agents and not (missing and known):  # a cut output is incomplete, not failed
        if done and known:
            code, what = "no-agents", "rocminfo listed no agents (no CPU, no GPU)"
        else:
            code, what = "unrecognised", "this is not rocminfo output"
        advice = f"run `rocminfo` by hand and {_SEE_DMESG}"
        raise RocminfoError(code, f"{what}; {advice}. Output: {_excerpt(lines, False)}")
    return RocminfoReport(
        runtime_version=system.get("Runtime Version"),
        kfd_version=kfd_version,
        wsl=wsl,
        system=MappingProxyType(system),
        agents=agents,
        missing=missing,
    )


def _missing(first: str, beginning: bool, numbers: list[int], done: bool) -> tuple[str, ...]:
    """What a cut output lacks (see the module docstring); () for a whole output."""
    missing = []
    if not beginning:
        missing.append(f"its beginning (it starts with {first[:60]!r})")
    for a, b in itertools.pairwise(numbers):
        if len(missing) >= 4:  # enough to say it is cut; hostile input has no end of gaps
            break
        if b <= a:
            missing.append(f"a consistent agent list (Agent {b} after Agent {a})")
        elif b > a + 1:
            missing.append(f"agent {a + 1}" if b == a + 2 else f"agents {a + 1} to {b - 1}")
    if not done:
        missing.append("its end (no `*** Done ***`)")
    return tuple(missing)
