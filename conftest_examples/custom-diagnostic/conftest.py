"""A project's own environment check, shown in the header like the built-in ones."""

import pytest

from pytest_therock import Diagnostic

NEEDED_GTT_GIB = 96


# optionalhook: the suite still runs with `-p no:therock` (pytest knows the hook only
# while the plugin is loaded).
@pytest.hookimpl(optionalhook=True)
def pytest_therock_diagnostics(env, config):
    from pytest_therock import gtt_info

    found = []
    for gpu in env.visible_gpus:
        usable = gtt_info(env, gpu).usable_bytes or 0
        have = f"{usable / 2**30:.1f} GiB of GTT"
        if usable < NEEDED_GTT_GIB * 2**30:
            found.append(
                Diagnostic(
                    code="lab-gtt",
                    severity="warning",
                    message=f"{gpu.gfx_target}: {have}, the eval suite needs {NEEDED_GTT_GIB}",
                    fix=f"add ttm.pages_limit={NEEDED_GTT_GIB * 262144} to the kernel command line",
                )
            )
    return found


@pytest.hookimpl(optionalhook=True)
def pytest_therock_report_header(env, config):
    return [f"lab: eval suite needs {NEEDED_GTT_GIB} GiB of GTT"]
