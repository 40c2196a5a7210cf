"""TheRock's support status per gfx target, on Linux.

From ROCm/TheRock ``SUPPORTED_GPUS.md`` (its prioritized roadmap), commit
0853618f9608121973b74fe2e19bfefb3dbe6449. "build": wheels are published but not
tested on hardware; "sanity": sanity-tested; "release": release-ready.
"""

from __future__ import annotations

SOURCE = "https://github.com/ROCm/TheRock/blob/main/SUPPORTED_GPUS.md"

LINUX_STATUS: dict[str, str] = {
    "gfx950": "build",
    "gfx942": "release",
    "gfx90a": "build",
    "gfx908": "build",
    "gfx906": "build",
    "gfx900": "build",
    "gfx1201": "release",
    "gfx1200": "release",
    "gfx1153": "build",
    "gfx1152": "release",
    "gfx1151": "release",
    "gfx1150": "release",
    "gfx1103": "release",
    "gfx1102": "release",
    "gfx1101": "release",
    "gfx1100": "release",
    "gfx1036": "release",
    "gfx1035": "release",
    "gfx1034": "release",
    "gfx1033": "release",
    "gfx1032": "release",
    "gfx1031": "release",
    "gfx1030": "release",
    "gfx1012": "release",
    "gfx1011": "release",
    "gfx1010": "release",
    "gfx90c": "planned",
}
