"""Hooks that pytest-therock adds; implement them in a ``conftest.py`` or a plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

    from .diagnostics import Diagnostic
    from .environment import Environment


def pytest_therock_diagnostics(env: Environment, config: pytest.Config) -> list[Diagnostic]:
    """Return extra diagnostics for ``env``: your project's own checks.

    They are shown in the header, by ``--therock-ignore`` silenced like the
    built-in ones, and listed in the JUnit properties.
    """


def pytest_therock_report_header(env: Environment, config: pytest.Config) -> str | list[str]:
    """Return extra lines for the session header (each is prefixed with ``therock:``):
    a list of lines, or one line as a str."""
